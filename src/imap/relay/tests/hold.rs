//! [`Verdict::Hold`](crate::imap::rewrite::Verdict::Hold) on client and server lines.

use super::*;

/// A mailbox name sent as a literal: the rule sees the whole command and the server gets the
/// quoted name. A synchronizing literal has its `+` from the gateway, a non-synchronizing one
/// none.
#[tokio::test]
async fn a_held_mailbox_literal_is_rewritten() {
    let rules = with_gateway(vec![Holder::rule(b"SELECT", 1, true)], 1 << 20);
    let mut p = Pair::start(rules).await;
    send(&mut p.client, b"a SELECT {9}\r\n").await;
    expect(&mut p.client, PLUS).await;
    send(&mut p.client, b"Sent Mail\r\n").await;
    expect(&mut p.server, b"a SELECT \"Sent Mail\"\r\n").await;
    send(&mut p.server, b"a OK [READ-WRITE] done\r\n").await;
    expect(&mut p.client, b"a OK [READ-WRITE] done\r\n").await;

    send(&mut p.client, b"b SELECT {9+}\r\nSent Mail\r\n").await;
    expect(&mut p.server, b"b SELECT \"Sent Mail\"\r\n").await;
    send(&mut p.server, b"b OK done\r\n").await;
    expect(&mut p.client, b"b OK done\r\n").await;
    p.finish().await;
}

/// Two literals in one command, each held in turn. Passed unchanged, the inline
/// announcements go upstream non-synchronizing (the client had its `+` from the gateway).
#[tokio::test]
async fn two_literals_of_one_command_are_held() {
    let rules = with_gateway(vec![Holder::rule(b"RENAME", 2, false)], 0);
    let mut p = Pair::start(rules).await;
    send(&mut p.client, b"a RENAME {3}\r\n").await;
    expect(&mut p.client, PLUS).await;
    send(&mut p.client, b"foo {3}\r\n").await;
    expect(&mut p.client, PLUS).await;
    send(&mut p.client, b"bar\r\n").await;
    expect(&mut p.server, b"a RENAME {3+}\r\nfoo {3+}\r\nbar\r\n").await;
    send(&mut p.server, b"a OK done\r\n").await;
    expect(&mut p.client, b"a OK done\r\n").await;
    p.finish().await;

    let rules = with_gateway(vec![Holder::rule(b"RENAME", 2, true)], 0);
    let mut p = Pair::start(rules).await;
    send(&mut p.client, b"b RENAME {3+}\r\nfoo {3}\r\n").await;
    expect(&mut p.client, PLUS).await;
    send(&mut p.client, b"bar\r\n").await;
    expect(&mut p.server, b"b RENAME \"foo\" \"bar\"\r\n").await;
    send(&mut p.server, b"b OK done\r\n").await;
    expect(&mut p.client, b"b OK done\r\n").await;
    p.finish().await;
}

/// An APPEND whose mailbox is a held literal and whose message literal is not: the message's
/// synchronizing announcement is the command's own and waits for the server's `+`.
#[tokio::test]
async fn a_held_mailbox_then_the_message_literal() {
    let rules = with_gateway(vec![Holder::rule(b"APPEND", 1, true)], 0);
    let mut p = Pair::start(rules).await;
    send(&mut p.client, b"a APPEND {9}\r\n").await;
    expect(&mut p.client, PLUS).await;
    send(&mut p.client, b"Sent Mail (\\Seen) {11}\r\n").await;
    expect(&mut p.server, b"a APPEND \"Sent Mail\" (\\Seen) {11}\r\n").await;
    send(&mut p.server, b"+ go ahead\r\n").await;
    expect(&mut p.client, b"+ go ahead\r\n").await;
    send(&mut p.client, b"hello world\r\n").await;
    expect(&mut p.server, b"hello world\r\n").await;
    send(&mut p.server, b"a OK [APPENDUID 1 5] done\r\n").await;
    expect(&mut p.client, b"a OK [APPENDUID 1 5] done\r\n").await;
    p.finish().await;
}

/// A literal longer than HOLD_MAX is never held: the line goes on as it is.
#[tokio::test]
async fn a_literal_over_hold_max_passes_unchanged() {
    let rules = with_gateway(vec![Holder::rule(b"SELECT", 1, true)], 0);
    let mut p = Pair::start(rules).await;
    send(&mut p.client, b"a SELECT {5000}\r\n").await;
    expect(&mut p.server, b"a SELECT {5000}\r\n").await;
    send(&mut p.server, b"+ go ahead\r\n").await;
    expect(&mut p.client, b"+ go ahead\r\n").await;
    let mut name = data(5000, 4);
    name.extend_from_slice(b"\r\n");
    send(&mut p.client, &name).await;
    expect(&mut p.server, &name).await;
    send(&mut p.server, b"a NO no such mailbox\r\n").await;
    expect(&mut p.client, b"a NO no such mailbox\r\n").await;
    p.finish().await;
}

/// A whole that outgrows the hold limit goes on as held so far (announcements the gateway
/// answered made non-synchronizing) and the rest streams: twenty literals of 4000 bytes, a
/// held command continued by a line longer than the limit, and one by a line that fits the
/// limit but not the whole.
#[tokio::test]
async fn a_whole_too_large_to_hold_is_given_up() {
    let rules = with_gateway(vec![Holder::rule(b"TEXT", 1000, false)], 0);
    let mut p = Pair::start(rules).await;
    let part = data(4000, 5);
    let mut want = b"a SEARCH TEXT {4000+}\r\n".to_vec();
    for i in 0..20 {
        let end: &[u8] = if i < 19 {
            b" TEXT {4000+}\r\n"
        } else {
            b"\r\n"
        };
        want.extend_from_slice(&[&part[..], end].concat());
    }
    let client = async {
        send(&mut p.client, b"a SEARCH TEXT {4000}\r\n").await;
        for i in 0..20 {
            expect(&mut p.client, PLUS).await;
            let end: &[u8] = if i < 19 { b" TEXT {4000}\r\n" } else { b"\r\n" };
            send(&mut p.client, &[&part[..], end].concat()).await;
        }
    };
    // The server reads as it comes: what was held goes on when the hold is given up.
    tokio::join!(client, expect(&mut p.server, &want));
    send(&mut p.server, b"a OK done\r\n").await;
    expect(&mut p.client, b"a OK done\r\n").await;

    let long = [&b"abc TEXT \""[..], &[b'x'; 70_000], b"\"\r\n"].concat();
    send(&mut p.client, b"b SEARCH TEXT {3}\r\n").await;
    expect(&mut p.client, PLUS).await;
    send(&mut p.client, &long).await;
    expect(
        &mut p.server,
        &[&b"b SEARCH TEXT {3+}\r\n"[..], &long].concat(),
    )
    .await;
    send(&mut p.server, b"b OK done\r\n").await;
    expect(&mut p.client, b"b OK done\r\n").await;

    // A line that fits the framer but not the whole: the hold is given up before it, and the
    // line, shown on its own, is held for its own literal.
    let line = [&b" TEXT \""[..], &[b'z'; 62_000], b"\" TEXT {3}\r\n"].concat();
    send(&mut p.client, b"c SEARCH TEXT {4000}\r\n").await;
    expect(&mut p.client, PLUS).await;
    send(&mut p.client, &[&part[..], &line].concat()).await;
    expect(&mut p.client, PLUS).await;
    send(&mut p.client, b"abc\r\n").await;
    let line = [&line[..line.len() - 3], b"+}\r\nabc\r\n"].concat();
    let want = [&b"c SEARCH TEXT {4000+}\r\n"[..], &part, &line].concat();
    expect(&mut p.server, &want).await;
    send(&mut p.server, b"c OK done\r\n").await;
    expect(&mut p.client, b"c OK done\r\n").await;
    p.finish().await;
}

/// A response with a mailbox literal is held and rewritten; other literals (a FETCH's, one
/// over HOLD_MAX) pass as they are.
#[tokio::test]
async fn a_held_response_is_rewritten() {
    let rules = with_gateway(vec![Holder::rule(b"* LIST", 1, true)], 0);
    let mut p = Pair::start(rules).await;
    send(&mut p.client, b"a LIST \"\" *\r\n").await;
    expect(&mut p.server, b"a LIST \"\" *\r\n").await;
    let long = data(5000, 6);
    let mut from_server = b"* LIST () \"/\" {9}\r\nSent Mail\r\n* LIST () \"/\" INBOX\r\n".to_vec();
    let mut want = b"* LIST () \"/\" \"Sent Mail\"\r\n* LIST () \"/\" INBOX\r\n".to_vec();
    for bytes in [&mut from_server, &mut want] {
        bytes.extend_from_slice(b"* 1 FETCH (BODY[] {5}\r\nhello)\r\n* LIST () \"/\" {5000}\r\n");
        bytes.extend_from_slice(&long);
        bytes.extend_from_slice(b"\r\na OK done\r\n");
    }
    send(&mut p.server, &from_server).await;
    expect(&mut p.client, &want).await;
    p.finish().await;
}

/// A held response too large to hold reaches the client as it came: one continued by a line
/// longer than the limit, one with twenty literals.
#[tokio::test]
async fn a_response_too_large_to_hold_passes_unchanged() {
    let rules = with_gateway(vec![Holder::rule(b"* LIST", 1000, false)], 0);
    let mut p = Pair::start(rules).await;
    let mut response = [
        &b"* LIST () \"/\" {3}\r\nabc \""[..],
        &[b'y'; 70_000],
        b"\"\r\n",
    ]
    .concat();
    response.extend_from_slice(b"* LIST () \"/\" {4000}\r\n");
    for i in 0..20 {
        response.extend_from_slice(&data(4000, i));
        response.extend_from_slice(if i < 19 { b" {4000}\r\n" } else { b"\r\n" });
    }
    send(&mut p.server, &response).await;
    expect(&mut p.client, &response).await;
    p.finish().await;
}

/// The gateway's `+` for a held client literal goes to the client between two responses,
/// never inside a response being held.
#[tokio::test]
async fn the_gateway_plus_never_splits_a_held_response() {
    let rules = vec![
        Holder::rule(b"* LIST", 1, true),
        Holder::rule(b"SELECT", 1, true),
    ];
    let mut p = Pair::start(with_gateway(rules, 0)).await;
    send(&mut p.server, b"* LIST () \"/\" {9}\r\n").await;
    send(&mut p.client, b"b SELECT {4}\r\n").await;
    send(&mut p.server, b"Sent Mail\r\n").await;
    let list: &[u8] = b"* LIST () \"/\" \"Sent Mail\"\r\n";
    let got = read_n(&mut p.client, list.len() + PLUS.len()).await;
    assert!(
        got == [list, PLUS].concat() || got == [PLUS, list].concat(),
        "{}",
        String::from_utf8_lossy(&got)
    );
    send(&mut p.client, b"Junk\r\n").await;
    expect(&mut p.server, b"b SELECT \"Junk\"\r\n").await;
    send(&mut p.server, b"b OK done\r\n").await;
    expect(&mut p.client, b"b OK done\r\n").await;
    p.finish().await;
}

/// Labels of the IMAP commands counted while it records.
#[derive(Default, Clone)]
struct Commands(Arc<Mutex<Vec<String>>>);

impl Commands {
    /// The labels counted while `script` runs on a runtime of its own.
    fn during<F: std::future::Future<Output = ()>>(script: impl FnOnce() -> F) -> Vec<String> {
        let commands = Commands::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        metrics::with_local_recorder(&commands, || runtime.block_on(script()));
        let counted = commands.0.lock().unwrap().clone();
        counted
    }
}

struct Count(Arc<Mutex<Vec<String>>>, String);

impl metrics::CounterFn for Count {
    fn increment(&self, n: u64) {
        let mut counted = self.0.lock().unwrap();
        counted.extend((0..n).map(|_| self.1.clone()));
    }

    fn absolute(&self, _: u64) {}
}

impl metrics::Recorder for Commands {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }

    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        if key.name() != crate::metrics::IMAP_COMMANDS_TOTAL {
            return metrics::Counter::noop();
        }
        let label = key.labels().find(|l| l.key() == "command");
        let label = label.map_or_else(String::new, |l| l.value().to_owned());
        metrics::Counter::from_arc(Arc::new(Count(self.0.clone(), label)))
    }

    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }

    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

/// A command held over two literals is counted once, like any other.
#[test]
fn a_held_command_is_counted_once() {
    let counted = Commands::during(|| async {
        let rules = with_gateway(vec![Holder::rule(b"RENAME", 2, true)], 0);
        let (mut client, mut server, relay, _trigger) = sockets(rules, NO_STALL, NO_IDLE).await;
        let script = async {
            send(&mut client, b"a RENAME {3}\r\n").await;
            expect(&mut client, PLUS).await;
            send(&mut client, b"foo {3}\r\n").await;
            expect(&mut client, PLUS).await;
            send(&mut client, b"bar\r\n").await;
            expect(&mut server, b"a RENAME \"foo\" \"bar\"\r\n").await;
            round_trip(&mut client, &mut server).await;
            client.shutdown().await.unwrap();
        };
        let ((stats, _, _), ()) = tokio::join!(relay, script);
        assert_eq!(stats.end, End::ClientClosed);
    });
    assert_eq!(counted, ["RENAME", "NOOP"]);
}

/// Each command is counted under its name, also past the counters a session keeps at hand
/// (ten names here, each sent twice, in both cases of letters).
#[test]
fn every_command_is_counted_past_the_kept_counters() {
    const NAMES: [&str; 10] = [
        "CHECK",
        "STATUS",
        "SEARCH",
        "FETCH",
        "STORE",
        "COPY",
        "EXPUNGE",
        "UID FETCH",
        "UID SEARCH",
        "NAMESPACE",
    ];
    let counted = Commands::during(|| async {
        let rules = with_gateway(vec![], 0);
        let (mut client, mut server, relay, _trigger) = sockets(rules, NO_STALL, NO_IDLE).await;
        let script = async {
            for (i, name) in NAMES.iter().chain(NAMES.iter()).enumerate() {
                let name = match i < NAMES.len() {
                    true => name.to_string(),
                    false => name.to_lowercase(),
                };
                let command = format!("c{i} {name}\r\n");
                send(&mut client, command.as_bytes()).await;
                expect(&mut server, command.as_bytes()).await;
                let done = format!("c{i} OK done\r\n");
                send(&mut server, done.as_bytes()).await;
                expect(&mut client, done.as_bytes()).await;
            }
            client.shutdown().await.unwrap();
        };
        let ((stats, _, _), ()) = tokio::join!(relay, script);
        assert_eq!(stats.end, End::ClientClosed);
    });
    let want: Vec<&str> = NAMES.iter().chain(NAMES.iter()).copied().collect();
    assert_eq!(counted, want);
}
