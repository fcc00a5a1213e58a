//! Slow and abusive clients against the real mailgate binary (with a real Dovecot behind it
//! where a login is needed): a slowloris, a 1 GiB literal announced before login, 10,000
//! pipelined commands before and after login, a command line that never ends (IMAP and SMTP),
//! and 2,000 connections opened and dropped at once. Each checks the limit's response, that
//! other clients are served meanwhile, and that memory and file descriptors stay bounded.
//!
//! Every loop is bounded in count and time; nothing asserts a duration; all traffic is
//! loopback. Run: `cargo test --test abuse`

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use support::imap_client::{contains, tagged_status};
use support::proc::poll;
use support::procstat::{fd_count, rss_kib};
use support::scrape::{Scrape, SESSIONS_ACTIVE, SESSIONS_REFUSED};
use support::smtp_client::Raw;
use support::{Account, Dovecot, DovecotOpts, Gate, GateConfig, ImapClient, Upstream};

const EMAIL: &str = "ola@example.no";
const LOCAL_PW: &str = "Local-pw-abuse-4d1a";
const UPSTREAM_USER: &str = "ola";
const UPSTREAM_PW: &str = "Upstream-pw-abuse-93c0";
const SETTLE: Duration = Duration::from_secs(30);
const STEP: Duration = Duration::from_millis(50);
/// Pre-auth silence limit in these tests (seconds).
const PREAUTH_SECS: u64 = 3;
/// Sessions allowed at once in these tests.
const MAX_SESSIONS: usize = 200;

fn gate() -> Gate {
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user(UPSTREAM_USER, UPSTREAM_PW);
    let config = GateConfig::new()
        .limits(&[
            ("preauth_timeout_secs", PREAUTH_SECS),
            ("max_sessions", MAX_SESSIONS as u64),
            ("auth_failure_delay_ms", 10),
        ])
        .account(
            Account::password(EMAIL, LOCAL_PW)
                .imap(Upstream::plain(dovecot.imap_addr()).login(UPSTREAM_USER, UPSTREAM_PW)),
        )
        .metrics(None);
    Gate::start(dovecot, &config)
}

impl Gate {
    fn login(&self) -> ImapClient {
        self.login_as(EMAIL, LOCAL_PW)
    }

    fn scrape(&self) -> Option<Scrape> {
        self.try_scrape()
    }

    /// Waits (bounded) until no session is active; returns mailgate's fd count then.
    fn idle_fds(&self) -> usize {
        poll(SETTLE, STEP, || {
            let s = self.scrape()?;
            let active = s.value(SESSIONS_ACTIVE, &[("protocol", "imap")])
                + s.value(SESSIONS_ACTIVE, &[("protocol", "smtp")]);
            (active == 0.0).then(|| fd_count(self.mailgate.pid()))
        })
        .expect("sessions did not end")
    }

    /// Waits (bounded) until the fd count is back to `baseline` with no session active.
    fn assert_fds_back(&self, baseline: usize) {
        let back = poll(SETTLE, STEP, || (self.idle_fds() <= baseline).then_some(()));
        assert!(
            back.is_some(),
            "mailgate holds {} fds, baseline {baseline}",
            fd_count(self.mailgate.pid())
        );
    }
}

/// One byte a second for a few seconds — longer than the pre-auth silence limit in all —
/// keeps the session (each byte is activity) while another client is served; the dribbled
/// command is answered whole; then silence gets `* BYE` from the pre-auth limit.
#[test]
fn slowloris_is_served_then_cut_by_the_preauth_limit() {
    let g = gate();
    let mut slow = g.mailgate.connect();
    let command = b"s1 NOOP\r\n";
    let slow_part = PREAUTH_SECS as usize + 2;
    thread::scope(|scope| {
        // Meanwhile another client logs in and works.
        let other = scope.spawn(|| {
            let mut other = g.login();
            other.ok("o1", "SELECT INBOX");
            other.ok("o2", "LOGOUT");
        });
        for b in &command[..slow_part] {
            slow.send(&[*b]);
            thread::sleep(Duration::from_secs(1));
        }
        other.join().expect("the other client was served");
    });
    slow.send(&command[slow_part..]);
    let r = slow.read_until_tagged("s1");
    assert!(tagged_status(&r, "s1").starts_with("OK"));
    // Now silent: the pre-auth limit ends the session with BYE.
    match slow.read_to_eof(Duration::from_secs(60)) {
        Ok(rest) => assert!(
            contains(&rest, b"* BYE Disconnected for inactivity"),
            "{}",
            String::from_utf8_lossy(&rest)
        ),
        Err((rest, e)) => panic!(
            "still open after the pre-auth limit ({e}): {}",
            String::from_utf8_lossy(&rest)
        ),
    }
}

/// A 1 GiB literal announced before login: `{N}` is refused with BAD before a byte of it is
/// read (the next command is read as a command), `{N+}` (already on its way) ends the session
/// with BYE. Memory does not move.
#[test]
fn huge_literal_before_login_is_refused_unread() {
    let g = gate();
    let pid = g.mailgate.pid();
    let rss_before = rss_kib(pid);
    let mut c = g.mailgate.connect();
    c.send(b"a1 LOGIN {1073741824}\r\n");
    let r = c.read_response().expect("an answer to the literal");
    let text = String::from_utf8_lossy(&r);
    assert!(text.starts_with("a1 BAD Literal too large"), "{text}");
    // No continuation was offered, so the client goes on; this is a command, not literal data.
    c.ok("a2", "NOOP");
    c.send(b"a3 LOGIN {1073741824+}\r\n");
    match c.read_to_eof(Duration::from_secs(60)) {
        Ok(rest) => {
            let text = String::from_utf8_lossy(&rest);
            assert!(text.starts_with("* BYE Literal too large"), "{text}");
        }
        Err((rest, e)) => panic!("still open ({e}): {}", String::from_utf8_lossy(&rest)),
    }
    let grown = rss_kib(pid).saturating_sub(rss_before);
    assert!(grown < 16 * 1024, "mailgate grew by {grown} KiB");
}

/// Sends `count` pipelined NOOPs in one stream (a writer thread, so neither side's socket
/// buffer can block the other) and returns how many tagged OKs came back.
fn pipeline_noops(c: &mut ImapClient, prefix: &str, count: usize) -> usize {
    let mut all = Vec::with_capacity(count * 16);
    for i in 0..count {
        all.extend_from_slice(format!("{prefix}{i} NOOP\r\n").as_bytes());
    }
    let mut w = c.writer_clone();
    let sender = thread::spawn(move || w.write_all(&all).is_ok());
    let mut oks = 0;
    for _ in 0..count * 2 {
        let line = c.read_response().expect("a response");
        if line.starts_with(prefix.as_bytes()) {
            assert!(
                contains(&line, b" OK "),
                "{}",
                String::from_utf8_lossy(&line)
            );
            oks += 1;
            if oks == count {
                break;
            }
        }
    }
    assert!(
        sender.join().expect("writer"),
        "writing the pipeline failed"
    );
    oks
}

/// 10,000 pipelined commands before login (answered by mailgate) and after it (relayed to
/// Dovecot): every one is answered, in order, and mailgate's memory stays bounded.
#[test]
fn ten_thousand_pipelined_commands() {
    const N: usize = 10_000;
    let g = gate();
    let pid = g.mailgate.pid();
    let mut warm = g.login();
    warm.ok("w1", "LOGOUT");
    drop(warm);
    let rss_before = rss_kib(pid);

    let mut pre = g.mailgate.connect();
    assert_eq!(pipeline_noops(&mut pre, "p", N), N);
    let mut post = g.login();
    assert_eq!(pipeline_noops(&mut post, "q", N), N);
    post.ok("q", "LOGOUT");
    pre.ok("p", "LOGOUT");
    let grown = rss_kib(pid).saturating_sub(rss_before);
    // Generous: the point is "not proportional to the input" (the input was ~200 KB, and a
    // leak of a buffer per command would be megabytes), not a memory budget.
    assert!(grown < 32 * 1024, "mailgate grew by {grown} KiB");
}

/// Writes `chunk` repeatedly (bounded) until the peer stops reading or closes; the bytes
/// written then.
fn flood(stream: &mut TcpStream, chunk: &[u8], max: usize) -> usize {
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut sent = 0;
    while sent < max {
        match stream.write(chunk) {
            Ok(n) if n > 0 => sent += n,
            _ => break,
        }
    }
    sent
}

/// Sends one line without an end (bounded at 16 MiB) to `addr` until the server stops
/// reading or closes; returns everything the server said. Fails if all 16 MiB were taken.
fn flood_line(addr: std::net::SocketAddr) -> String {
    const MAX: usize = 16 * 1024 * 1024;
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut reader = stream.try_clone().expect("clone");
    let sent = flood(&mut stream, &[b'x'; 4096], MAX);
    assert!(sent < MAX, "{addr} read 16 MiB of one line");
    let mut got = Vec::new();
    // A reset after the close is expected (our unread bytes); what came before it counts.
    let _ = reader.read_to_end(&mut got);
    String::from_utf8_lossy(&got).into_owned()
}

/// A command line that never ends: IMAP before login is cut at the 8 KiB line limit with BYE;
/// SMTP answers 421 once 64 KiB of one line has been dropped, and closes. Neither reads on
/// for ever, and both keep serving others.
#[test]
fn endless_line_gets_bye_imap_and_421_smtp() {
    let g = gate();
    let text = flood_line(g.mailgate.imap_addr);
    assert!(text.starts_with("* OK"), "{text}");
    assert!(text.contains("\r\n* BYE Command line too long."), "{text}");
    let text = flood_line(g.mailgate.smtp_addr);
    assert!(text.starts_with("220 "), "{text}");
    assert!(
        text.contains("\r\n421 4.7.0 Line too long without a line end"),
        "{text}"
    );

    // Others are served.
    let mut c = g.login();
    c.ok("n1", "LOGOUT");
    let (mut s, greeting) = Raw::connect(g.mailgate.smtp_addr);
    assert!(greeting.starts_with("220"));
    assert!(s.cmd("QUIT").starts_with("221"));
}

/// 2,000 connections opened at once (more than `max_sessions`) and dropped: mailgate stays up,
/// never serves more than `max_sessions` at once (the rest get `* BYE Too many connections`),
/// releases every descriptor, and a normal login works afterwards.
#[test]
fn two_thousand_connections_opened_and_dropped() {
    const N: usize = 2_000;
    let g = gate();
    let mut warm = g.login();
    warm.ok("w1", "LOGOUT");
    drop(warm);
    let baseline = g.idle_fds();

    let mut conns = Vec::with_capacity(N);
    for _ in 0..N {
        match TcpStream::connect(g.mailgate.imap_addr) {
            Ok(c) => conns.push(c),
            Err(e) => panic!("connect #{}: {e}", conns.len()),
        }
    }
    // While they are open: bounded by max_sessions, the rest refused.
    let s = poll(SETTLE, STEP, || {
        let s = g.scrape()?;
        (s.value(SESSIONS_REFUSED, &[("protocol", "imap")]) > 0.0).then_some(s)
    })
    .expect("no session was refused although 2,000 > max_sessions");
    let active = s.value(SESSIONS_ACTIVE, &[("protocol", "imap")]);
    assert!(active <= MAX_SESSIONS as f64, "{active} sessions active");
    drop(conns);

    g.assert_fds_back(baseline);
    let mut c = g.login();
    c.ok("n1", "SELECT INBOX");
    c.ok("n2", "LOGOUT");
    let mut g = g;
    assert!(g.mailgate.is_running());
}
