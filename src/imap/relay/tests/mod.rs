//! The relay between a scripted client and a scripted server over loopback TCP, with test
//! rules: [`Verdict::Hold`] and [`Verdict::Peek`] in every case the relay knows, and that
//! ordinary traffic passes byte for byte. Each script ends with a NOOP round trip and both
//! sides closing, so a byte too many in either direction shows.

mod end;
mod hold;
mod peek;

use super::{run, End, Options, Stats};
use crate::imap::framer::announcement;
use crate::imap::rewrite::{Gateway, Line, Peeked, Rewrite, Rules, Verdict};
use crate::metrics::ByteCounters;
use crate::upstream::UpstreamStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest any one step may take before the test fails (a hang, not a measurement).
const PATIENCE: Duration = Duration::from_secs(20);

/// The gateway's own `+`.
const PLUS: &[u8] = b"+ Ready for literal data\r\n";

/// An upstream time-out no script reaches.
const NO_STALL: Duration = Duration::from_secs(600);

/// An idle time-out no script reaches.
const NO_IDLE: Duration = Duration::from_secs(600);

/// A running relay and both of its peers.
struct Pair {
    client: TcpStream,
    server: TcpStream,
    relay: tokio::task::JoinHandle<Stats>,
    _trigger: crate::session::Trigger,
}

/// The client's and the server's ends of a relay not started yet (with these upstream and
/// idle time-outs), and the relay.
async fn sockets(
    rules: Rules,
    upstream_timeout: Duration,
    idle_timeout: Duration,
) -> (
    TcpStream,
    TcpStream,
    impl std::future::Future<Output = (Stats, Option<UpstreamStream>, crate::imap::rewrite::Ending)>
        + Send,
    crate::session::Trigger,
) {
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let back = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(front.local_addr().unwrap())
        .await
        .unwrap();
    let (gate_client, _) = front.accept().await.unwrap();
    let up = TcpStream::connect(back.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = back.accept().await.unwrap();
    let (trigger, shutdown) = crate::session::shutdown_channel();
    let opts = Options {
        idle_timeout,
        upstream_timeout,
        shutdown,
        counters: ByteCounters::new("imap", "test"),
        rules,
    };
    let relay = run(
        gate_client,
        Vec::new(),
        UpstreamStream::Plain(up),
        Vec::new(),
        opts,
    );
    (client, server, relay, trigger)
}

impl Pair {
    async fn start(rules: Rules) -> Pair {
        let (client, server, relay, _trigger) = sockets(rules, NO_STALL, NO_IDLE).await;
        Pair {
            client,
            server,
            relay: tokio::spawn(async move { relay.await.0 }),
            _trigger,
        }
    }

    /// A NOOP round trip (anything left over in either direction would come first), then the
    /// client closes: the relay ends, and neither side gets another byte.
    async fn finish(mut self) -> Stats {
        round_trip(&mut self.client, &mut self.server).await;
        self.client.shutdown().await.unwrap();
        let stats = tokio::time::timeout(PATIENCE, self.relay)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stats.end, End::ClientClosed);
        assert_eq!(rest(&mut self.server).await, b"", "server got more");
        assert_eq!(rest(&mut self.client).await, b"", "client got more");
        stats
    }
}

/// `z NOOP` from the client, its `OK` from the server, each byte for byte.
async fn round_trip(client: &mut TcpStream, server: &mut TcpStream) {
    send(client, b"z NOOP\r\n").await;
    expect(server, b"z NOOP\r\n").await;
    send(server, b"z OK NOOP done\r\n").await;
    expect(client, b"z OK NOOP done\r\n").await;
}

async fn rest(s: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    tokio::time::timeout(PATIENCE, s.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    rest
}

async fn send(s: &mut TcpStream, bytes: &[u8]) {
    tokio::time::timeout(PATIENCE, s.write_all(bytes))
        .await
        .unwrap()
        .unwrap();
}

/// Reads exactly as many bytes as `want` and asserts they are `want`.
async fn expect(s: &mut TcpStream, want: &[u8]) {
    let got = read_n(s, want.len()).await;
    assert!(got == want, "{}", difference(&got, want));
}

async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut got = vec![0; n];
    let mut have = 0;
    while have < n {
        match tokio::time::timeout(PATIENCE, s.read(&mut got[have..])).await {
            Ok(Ok(0)) => panic!(
                "end of stream after {have} of {n} bytes: {}",
                tail(&got[..have])
            ),
            Ok(Ok(k)) => have += k,
            Ok(Err(e)) => panic!("reading: {e}"),
            Err(_) => panic!(
                "timed out after {have} of {n} bytes: {}",
                tail(&got[..have])
            ),
        }
    }
    got
}

/// The last bytes read, for a failure message.
fn tail(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(80)..]).into_owned()
}

/// Where two byte strings part, for a failure message (whole if short).
fn difference(got: &[u8], want: &[u8]) -> String {
    if got.len() + want.len() < 2000 {
        return format!(
            "got  {:?}\nwant {:?}",
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(want)
        );
    }
    let at = got.iter().zip(want).take_while(|(a, b)| a == b).count();
    let show = |b: &[u8]| String::from_utf8_lossy(&b[at..b.len().min(at + 60)]).into_owned();
    format!(
        "differ at byte {at}: got {:?}, want {:?}",
        show(got),
        show(want)
    )
}

/// `n` bytes of message-like data, with lines that look like protocol (`a OK`, `{5}`).
fn data(n: usize, seed: u8) -> Vec<u8> {
    let pattern = b"a OK done\r\n* 1 FETCH (BODY[] {5}\r\n+ go\r\nline {3+}\r\n\x00\xff";
    let mut out: Vec<u8> = pattern.iter().cycle().take(n).copied().collect();
    for (i, b) in out.iter_mut().enumerate().step_by(97) {
        *b = b.wrapping_add(seed).wrapping_add(i as u8);
    }
    out
}

/// Whether `word` occurs in `bytes`.
fn has(bytes: &[u8], word: &[u8]) -> bool {
    bytes.windows(word.len()).any(|w| w == word)
}

/// The lines of a command or response (several when held), each with the literal data it
/// announces, if any follows.
fn pieces(bytes: &[u8]) -> Vec<(&[u8], Option<&[u8]>)> {
    let mut pieces = Vec::new();
    let mut pos = 0;
    while let Some(i) = bytes[pos..].iter().position(|&b| b == b'\n') {
        let line = &bytes[pos..=pos + i];
        pos += i + 1;
        let data = match announcement(line) {
            Some(l) if pos < bytes.len() => {
                let data = &bytes[pos..pos + l.length as usize];
                pos += data.len();
                Some(data)
            }
            _ => None,
        };
        pieces.push((line, data));
    }
    pieces
}

/// Holds the first `literals` literals of each command and response containing `word`,
/// then, if `quote`, replaces every inline literal of the whole by a quoted string.
struct Holder {
    word: &'static [u8],
    literals: usize,
    quote: bool,
}

impl Holder {
    fn rule(word: &'static [u8], literals: usize, quote: bool) -> Box<dyn Rewrite> {
        Box::new(Holder {
            word,
            literals,
            quote,
        })
    }

    fn decide(&self, line: Line<'_>) -> Verdict {
        if !has(line.bytes, self.word) {
            return Verdict::Pass;
        }
        let inline = pieces(line.bytes).iter().filter(|p| p.1.is_some()).count();
        if line.literal.is_some() && inline < self.literals {
            return Verdict::Hold;
        }
        match self.quote && inline > 0 {
            true => Verdict::Replace(quoted(line.bytes)),
            false => Verdict::Pass,
        }
    }
}

impl Rewrite for Holder {
    fn command(&mut self, line: Line<'_>) -> Verdict {
        self.decide(line)
    }

    fn response(&mut self, line: Line<'_>) -> Verdict {
        self.decide(line)
    }
}

/// A held whole with each inline literal (`{9}\r\nSent Mail`) as a quoted string.
fn quoted(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (line, data) in pieces(bytes) {
        match data {
            Some(data) => {
                let open = line.iter().rposition(|&b| b == b'{').unwrap();
                out.extend_from_slice(&line[..open]);
                out.extend_from_slice(&[b"\"", data, b"\""].concat());
            }
            None => out.extend_from_slice(line),
        }
    }
    out
}

/// What a [`Peeker`] was shown: the line, the head, the literal's length.
type Seen = Arc<Mutex<Vec<(Vec<u8>, Vec<u8>, u64)>>>;

/// Peeks at the literal of each command containing `word`; forwards it, or swallows it
/// with `swallow`.
struct Peeker {
    word: &'static [u8],
    swallow: Option<Vec<u8>>,
    seen: Seen,
}

impl Peeker {
    fn rule(word: &'static [u8], swallow: Option<&[u8]>) -> (Box<dyn Rewrite>, Seen) {
        let seen = Seen::default();
        let rule = Peeker {
            word,
            swallow: swallow.map(<[u8]>::to_vec),
            seen: seen.clone(),
        };
        (Box::new(rule), seen)
    }
}

impl Rewrite for Peeker {
    fn command(&mut self, line: Line<'_>) -> Verdict {
        match line.literal.is_some() && has(line.bytes, self.word) {
            true => Verdict::Peek,
            false => Verdict::Pass,
        }
    }

    fn peek(&mut self, line: Line<'_>, head: &[u8], length: u64) -> Peeked {
        let seen = (line.bytes.to_vec(), head.to_vec(), length);
        self.seen.lock().unwrap().push(seen);
        match &self.swallow {
            Some(answer) => Peeked::Swallow(answer.clone()),
            None => Peeked::Forward(None),
        }
    }
}

/// `rules`, then the gateway's own rule, for a server taking non-synchronizing literals up
/// to `nonsync` bytes.
fn with_gateway(mut rules: Vec<Box<dyn Rewrite>>, nonsync: u64) -> Rules {
    rules.push(Box::new(Gateway::new(nonsync)));
    Rules::new(rules).with_nonsync_literal_max(nonsync)
}

/// Ordinary traffic, with rules that hold and peek but find nothing to do: FETCH responses
/// with small and large (spliced) literals, APPENDs with synchronizing and non-synchronizing
/// literals, pipelined commands — all byte for byte in both directions.
#[tokio::test]
async fn ordinary_traffic_is_byte_identical() {
    let (peeker, seen) = Peeker::rule(b"NEVER", None);
    let rules = vec![Holder::rule(b"NEVER", 1, true), peeker];
    let mut p = Pair::start(with_gateway(rules, 0)).await;
    let big = data(700 * 1024, 1);
    let small = data(3000, 2);

    send(&mut p.client, b"a UID FETCH 1:2 (BODY.PEEK[])\r\n").await;
    expect(&mut p.server, b"a UID FETCH 1:2 (BODY.PEEK[])\r\n").await;
    let mut fetch = b"* 1 FETCH (UID 1 BODY[] {3000}\r\n".to_vec();
    fetch.extend_from_slice(&small);
    fetch.extend_from_slice(
        format!(")\r\n* 2 FETCH (UID 2 BODY[] {{{}}}\r\n", big.len()).as_bytes(),
    );
    fetch.extend_from_slice(&big);
    fetch.extend_from_slice(b" FLAGS (\\Seen))\r\na OK done\r\n");
    let (_, got) = tokio::join!(
        send(&mut p.server, &fetch),
        read_n(&mut p.client, fetch.len())
    );
    assert!(got == fetch, "{}", difference(&got, &fetch));

    // A synchronizing APPEND: the server's own `+`, as it is.
    let line = format!("b APPEND INBOX {{{}}}\r\n", small.len());
    send(&mut p.client, line.as_bytes()).await;
    expect(&mut p.server, line.as_bytes()).await;
    send(&mut p.server, b"+ OK go ahead\r\n").await;
    expect(&mut p.client, b"+ OK go ahead\r\n").await;
    let mut rest = small.clone();
    rest.extend_from_slice(b"\r\n");
    send(&mut p.client, &rest).await;
    expect(&mut p.server, &rest).await;

    // Non-synchronizing, pipelined with a NOOP.
    let mut cmds = format!("c APPEND INBOX {{{}+}}\r\n", big.len()).into_bytes();
    cmds.extend_from_slice(&big);
    cmds.extend_from_slice(b"\r\nd NOOP\r\n");
    let (_, got) = tokio::join!(
        send(&mut p.client, &cmds),
        read_n(&mut p.server, cmds.len())
    );
    assert!(got == cmds, "{}", difference(&got, &cmds));
    send(&mut p.server, b"b OK\r\nc OK\r\nd OK\r\n").await;
    expect(&mut p.client, b"b OK\r\nc OK\r\nd OK\r\n").await;
    p.finish().await;
    assert!(seen.lock().unwrap().is_empty());
}
