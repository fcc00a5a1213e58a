//! Fault injection between mailgate and its real upstreams: a TCP fault proxy
//! (`support::faultproxy`) in front of Dovecot and Postfix drops, stalls or corrupts the
//! upstream connection at chosen bytes; servers that speak garbage, a host name that cannot
//! resolve and an expired certificate complete the set. (Untrusted CA, self-signed and
//! wrong-name certificates, a server without STARTTLS and an upstream that goes away
//! mid-session are covered in `tests/imap/upstream.rs` and not repeated here.)
//!
//! Every case checks what the client is told (a protocol-correct error or a closed connection;
//! never a partial message presented as whole; never a false SMTP 250), that a session opened
//! before the faults still works after them and a new one works too, and that nothing leaks:
//! mailgate's open file descriptors return to their baseline and `mailgate_sessions_active`
//! to the number of sessions still open. Nothing asserts a duration; all traffic is loopback.
//!
//! Run: `cargo test --test faults`

mod support;

use std::time::Duration;

use support::faultproxy::{Action, Dir, FaultProxy, GarbageServer, Hostile, Rule, Trigger};
use support::imap_client::{contains, find, tagged_status};
use support::messages::simple;
use support::postfix::DOMAIN;
use support::proc::poll;
use support::procstat::{fd_count, fd_targets};
use support::scrape::{fetch, Scrape, SESSIONS_ACTIVE};
use support::smtp_client::Raw;
use support::{
    Account, Dovecot, DovecotOpts, GateConfig, ImapClient, Mailgate, Pki, Postfix, Upstream,
};

const EMAIL: &str = "ola@example.no";
const LOCAL_PW: &str = "Local-pw-faults-71c3";
const UPSTREAM_USER: &str = "ola";
const UPSTREAM_PW: &str = "Upstream-pw-faults-2b9e";
/// How long to wait for mailgate to release what a session held. Turns a leak into a failure;
/// measures nothing.
const SETTLE: Duration = Duration::from_secs(30);
const STEP: Duration = Duration::from_millis(50);

/// Waits (bounded) until mailgate holds at most `baseline` descriptors and `active` sessions
/// per protocol; panics with the figures otherwise.
pub fn assert_settles(gate: &Mailgate, baseline: usize, active: [(&str, f64); 2]) {
    let metrics = gate.metrics_addr.expect("started with metrics");
    let settled = poll(SETTLE, STEP, || {
        let fds = fd_count(gate.pid());
        let scrape = Scrape::parse(fetch(metrics).ok()?).ok()?;
        let sessions_ok = active
            .iter()
            .all(|(proto, n)| scrape.value(SESSIONS_ACTIVE, &[("protocol", proto)]) == *n);
        (fds <= baseline && sessions_ok).then_some(())
    });
    if settled.is_none() {
        let scrape = fetch(metrics).unwrap_or_default();
        panic!(
            "mailgate did not settle: {} fds (baseline {baseline}), want active {active:?}\n{}\n{}",
            fd_count(gate.pid()),
            scrape
                .lines()
                .filter(|l| l.starts_with(SESSIONS_ACTIVE))
                .collect::<Vec<_>>()
                .join("\n"),
            fd_targets(gate.pid())
        );
    }
}

fn login(c: &mut ImapClient, tag: &str) -> Vec<u8> {
    c.command(tag, &format!("LOGIN \"{EMAIL}\" \"{LOCAL_PW}\""))
}

fn status(resp: &[u8], tag: &str) -> String {
    tagged_status(resp, tag)
}

/// `[server]` with this `upstream_timeout_secs`, and a `[metrics]` listener.
fn config(upstream_timeout_secs: u64) -> GateConfig {
    GateConfig::new()
        .limits(&[
            ("auth_failure_delay_ms", 10),
            ("upstream_timeout_secs", upstream_timeout_secs),
        ])
        .metrics(None)
}

/// An account whose IMAP upstream is `imap`, with the upstream user and password.
fn imap_account(email: &str, imap: Upstream) -> Account {
    Account::password(email, LOCAL_PW).imap(imap.login(UPSTREAM_USER, UPSTREAM_PW))
}

/// A big message (~700 KB), so a FETCH literal spans many reads and, with a plaintext
/// upstream, most of it goes by splice(2) (the relay splices literals with more than 256 KiB
/// still to come).
fn big_message() -> Vec<u8> {
    let mut body = String::new();
    for i in 0..12_000 {
        body.push_str(&format!(
            "line {i:05} of a long message that the proxy cuts short\r\n"
        ));
    }
    simple("big", &body)
}

/// Dovecot holding [`big_message`], the fault proxy in front of it, and a gate whose account
/// reaches Dovecot through the proxy with `upstream_timeout_secs = 1`.
fn proxied_dovecot() -> (Vec<u8>, Dovecot, FaultProxy, Mailgate) {
    let message = big_message();
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user(UPSTREAM_USER, UPSTREAM_PW);
    dovecot.fill_maildir(UPSTREAM_USER, std::slice::from_ref(&message));
    let proxy = FaultProxy::start(dovecot.imap_addr());
    let gate = config(1)
        .account(imap_account(EMAIL, Upstream::plain(proxy.server())))
        .start();
    (message, dovecot, proxy, gate)
}

/// A new session gets the whole `message` (the gate serves on after a fault).
fn fetch_whole(gate: &Mailgate, message: &[u8]) {
    let mut after = gate.connect();
    assert!(status(&login(&mut after, "n1"), "n1").starts_with("OK"));
    after.ok("n2", "SELECT INBOX");
    assert!(contains(&after.ok("n3", "UID FETCH 1:* (BODY[])"), message));
    after.ok("n4", "LOGOUT");
}

/// Logs in, FETCHes `message` (UID 1) and reads until mailgate closes the connection, which
/// the proxy's rule makes the upstream cut short (`what` it did, for the message): the literal
/// is announced whole, and only a true prefix of it arrives. Returns all that was read.
fn fetch_cut_short(gate: &Mailgate, message: &[u8], what: &str) -> (Vec<u8>, ImapClient) {
    let mut c = gate.connect();
    assert!(status(&login(&mut c, "f1"), "f1").starts_with("OK"));
    c.ok("f2", "SELECT INBOX");
    c.send(b"f3 UID FETCH 1:* (BODY[])\r\n");
    let rest = match c.read_to_eof(Duration::from_secs(120)) {
        Ok(rest) => rest,
        Err((rest, e)) => panic!(
            "connection still open after the upstream {what} mid-literal ({e}); read {} bytes",
            rest.len()
        ),
    };
    let header_end = find(&rest, b"}\r\n").expect("the literal was announced") + 3;
    let announced = support::imap_client::literal_len(&rest[..header_end]).expect("length");
    assert_eq!(announced, message.len());
    let got = &rest[header_end..];
    assert!(
        got.len() < message.len(),
        "the literal arrived whole ({} bytes) although the upstream {what} mid-way",
        got.len()
    );
    assert_eq!(
        got,
        &message[..got.len()],
        "the literal's bytes are not a prefix of the message"
    );
    assert!(!contains(&rest, b"f3 OK"));
    (rest, c)
}

/// The IMAP upstream connection fails at each interesting point; each failed login is
/// `NO [UNAVAILABLE]` on a session that stays usable, a cut FETCH literal is never completed,
/// and a session opened before the faults keeps working.
#[test]
fn imap_upstream_faults() {
    let (message, _dovecot, proxy, mut gate) = proxied_dovecot();

    // Warm-up session (lazily created state, e.g. the blocking pool), then the baseline.
    let mut warm = gate.connect();
    assert_eq!(
        status(&login(&mut warm, "w1"), "w1").split(' ').next(),
        Some("OK")
    );
    warm.ok("w2", "LOGOUT");
    drop(warm);
    let baseline = poll(SETTLE, STEP, || {
        let m = Scrape::parse(fetch(gate.metrics_addr?).ok()?).ok()?;
        (m.value(SESSIONS_ACTIVE, &[("protocol", "imap")]) == 0.0).then(|| fd_count(gate.pid()))
    })
    .expect("warm-up session ended");

    // A session opened before the faults, logged in, that must survive them.
    let mut keeper = gate.connect();
    assert!(status(&login(&mut keeper, "k1"), "k1").starts_with("OK"));
    keeper.ok("k2", "SELECT INBOX");

    let cases: Vec<(&str, Vec<Rule>, &str)> = vec![
        (
            "drop mid-greeting",
            vec![Rule::new(Dir::ToClient, Trigger::Bytes(7), Action::Close)],
            "NO [UNAVAILABLE]",
        ),
        (
            "drop while mailgate sends its login",
            vec![Rule::new(Dir::ToServer, Trigger::Bytes(0), Action::Close)],
            "NO [UNAVAILABLE]",
        ),
        (
            "drop after the login command, before its answer",
            vec![Rule::new(
                Dir::ToServer,
                Trigger::After(b"AUTHENTICATE".to_vec(), 0),
                Action::Close,
            )],
            "NO [UNAVAILABLE]",
        ),
        (
            "stall before the greeting (upstream time-out)",
            vec![Rule::new(Dir::ToClient, Trigger::Bytes(0), Action::Stall)],
            "NO [UNAVAILABLE] The mail provider's server did not answer in time",
        ),
        (
            "garbage injected before the greeting",
            vec![Rule::new(
                Dir::ToClient,
                Trigger::Bytes(0),
                Action::Inject(b"\x00\xff\xfeSSH-2.0-garbage\r\n".to_vec()),
            )],
            "NO [UNAVAILABLE]",
        ),
    ];
    for (what, rules, want) in cases {
        proxy.set(rules);
        let mut c = gate.connect();
        let resp = login(&mut c, "a1");
        let got = status(&resp, "a1");
        assert!(
            got.starts_with(want),
            "{what}: got `a1 {got}`, want `a1 {want}…`"
        );
        // The session is still usable (and may try again).
        c.ok("a2", "NOOP");
        c.ok("a3", "LOGOUT");
    }

    // Dropped in the middle of a FETCH literal: the client must not get a complete literal
    // (no padding, no BYE inside it) — only a true prefix of the message, then the close.
    proxy.set(vec![Rule::new(
        Dir::ToClient,
        Trigger::After(b"BODY[] {".to_vec(), 400_000),
        Action::Close,
    )]);
    let (rest, c) = fetch_cut_short(&gate, &message, "dropped");
    assert!(!contains(&rest, b"f3 OK"));
    // The cut fell in the part of the literal that went by splice(2) (the session's end line
    // counts the spliced bytes): the drop is handled on that path too.
    let spliced = poll(SETTLE, STEP, || {
        gate.lines().iter().find_map(|l| {
            let n: u64 = l
                .split("bytes_spliced=")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()?;
            (l.contains("session ended: upstream") && n > 0).then_some(n)
        })
    });
    assert!(
        spliced.is_some(),
        "no session ended after splicing part of the cut literal:\n{}",
        gate.log()
    );

    // The session from before still works; a new one gets the whole message.
    proxy.set(vec![]);
    keeper.ok("k3", "NOOP");
    let fetched = keeper.ok("k4", "UID FETCH 1:* (BODY[])");
    assert!(contains(&fetched, &message));
    fetch_whole(&gate, &message);
    drop(c);
    assert!(gate.is_running());
    // Only the keeper is left.
    assert_settles(&gate, baseline + 2, [("imap", 1.0), ("smtp", 0.0)]);
    keeper.ok("k5", "LOGOUT");
    drop(keeper);
    assert_settles(&gate, baseline, [("imap", 0.0), ("smtp", 0.0)]);
    gate.assert_no_secrets(&[LOCAL_PW, UPSTREAM_PW]);
}

/// The upstream goes silent (no FIN, no RST) in the middle of a response after login. In
/// the middle of a FETCH literal (spliced: plaintext on both sides) the session ends by
/// closing — only a true prefix of the message reached the client, never a completed literal;
/// in the middle of a line the client has seen nothing of, it gets `* BYE` first. Both within
/// the upstream time-out rather than the client's idle time-out (30 min), the log says why, and
/// the gate keeps serving.
#[test]
fn imap_upstream_stalls_mid_response() {
    let (message, _dovecot, proxy, mut gate) = proxied_dovecot();

    // Mid-literal: the connection is closed after a true prefix of the message.
    proxy.set(vec![Rule::new(
        Dir::ToClient,
        Trigger::After(b"BODY[] {".to_vec(), 400_000),
        Action::Stall,
    )]);
    let (rest, _) = fetch_cut_short(&gate, &message, "stalled");
    assert!(!contains(&rest, b"* BYE"));

    // Mid-line, before the line's end: nothing of the response reached the client, so it is
    // told why.
    proxy.set(vec![Rule::new(
        Dir::ToClient,
        Trigger::After(b"* 1 FETCH (UID".to_vec(), 0),
        Action::Stall,
    )]);
    let mut c = gate.connect();
    assert!(status(&login(&mut c, "g1"), "g1").starts_with("OK"));
    c.ok("g2", "SELECT INBOX");
    c.send(b"g3 UID FETCH 1:* (UID FLAGS)\r\n");
    let rest = c
        .read_to_eof(Duration::from_secs(120))
        .unwrap_or_else(|(rest, e)| panic!("still open ({e}) after {rest:?}"));
    assert_eq!(
        String::from_utf8_lossy(&rest),
        "* BYE The mail provider's server stopped answering.\r\n"
    );

    let ended = poll(SETTLE, STEP, || {
        let n = gate
            .lines()
            .iter()
            .filter(|l| l.contains("session ended: upstream stalled in the middle of a response"))
            .count();
        (n == 2).then_some(())
    });
    assert!(ended.is_some(), "{}", gate.log());
    proxy.set(vec![]);
    fetch_whole(&gate, &message);
    gate.assert_no_secrets(&[LOCAL_PW, UPSTREAM_PW]);
}

/// Upstreams that cannot be used at all: speaking garbage (closing, or never ending a line), a
/// host name that cannot resolve, an expired certificate. Each is `NO [UNAVAILABLE]` with the
/// cause in the log, the credential never reaches a server that could not be verified, and
/// the gate keeps serving a good account.
#[test]
fn imap_unusable_upstreams() {
    let pki = Pki::new();
    let good = Dovecot::start(DovecotOpts::plaintext_only());
    good.add_user(UPSTREAM_USER, UPSTREAM_PW);
    let expired = Dovecot::start(DovecotOpts::tls(&pki.expired));
    expired.add_user(UPSTREAM_USER, UPSTREAM_PW);
    let http = GarbageServer::start(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(), true);
    // 100 KiB without a line end, and the connection stays open: the 64 KiB line limit ends it.
    let endless = GarbageServer::start(vec![b'A'; 100 * 1024], false);
    // Labels of 60 characters, 312 in all: longer than any DNS name may be (255), so the
    // resolver fails it without sending a query — the DNS error path with no traffic at all
    // (`nonexistent.invalid` would send a query to the machine's resolver).
    let unresolvable = vec!["a".repeat(60); 5].join(".") + ".invalid";
    let expired_port = expired.imaps_port.expect("imaps");
    let cases = [
        (
            "http@example.no",
            Upstream::plain(http.addr),
            "unexpected greeting",
        ),
        (
            "endless@example.no",
            Upstream::plain(endless.addr),
            "longer than",
        ),
        (
            "dns@example.no",
            Upstream::plain(format!("{unresolvable}:143")).tls_server_name("localhost"),
            "kind=\"dns\"",
        ),
        (
            "expired@example.no",
            Upstream::tls(
                format!("127.0.0.1:{expired_port}"),
                "implicit",
                Some(&pki.ca),
            )
            .tls_server_name("localhost"),
            "certificate expired",
        ),
    ];
    let mut gate = config(5)
        .account(imap_account(EMAIL, Upstream::plain(good.imap_addr())))
        .accounts(
            cases
                .iter()
                .map(|(email, imap, _)| imap_account(email, imap.clone())),
        )
        .start();
    let mut keeper = gate.connect();
    assert!(status(&login(&mut keeper, "k1"), "k1").starts_with("OK"));
    let baseline_before = fd_count(gate.pid());

    for (email, _, log_word) in &cases {
        let mut c = gate.connect();
        let resp = c.command("a1", &format!("LOGIN \"{email}\" \"{LOCAL_PW}\""));
        let got = status(&resp, "a1");
        assert!(
            got.starts_with("NO [UNAVAILABLE]"),
            "{email}: got `a1 {got}`"
        );
        c.ok("a2", "LOGOUT");
        let logged = poll(SETTLE, STEP, || {
            gate.lines()
                .iter()
                .any(|l| l.contains("upstream login failed") && l.contains(log_word))
                .then_some(())
        });
        assert!(
            logged.is_some(),
            "{email}: no `upstream login failed` log line naming `{log_word}`:\n{}",
            gate.log()
        );
    }
    let log = expired.log();
    assert!(
        !log.contains("Login: user=<"),
        "a login reached the expired server:\n{log}"
    );

    keeper.ok("k2", "SELECT INBOX");
    let mut after = gate.connect();
    assert!(status(&login(&mut after, "n1"), "n1").starts_with("OK"));
    after.ok("n2", "LOGOUT");
    drop(after);
    assert_settles(&gate, baseline_before, [("imap", 1.0), ("smtp", 0.0)]);
    gate.assert_no_secrets(&[LOCAL_PW, UPSTREAM_PW]);
}

/// An account whose SMTP upstream is plaintext at `server` (its IMAP one is never used).
fn smtp_account(email: &str, server: impl ToString) -> Account {
    Account::password(email, LOCAL_PW)
        .imap(Upstream::plain("127.0.0.1:9").password(UPSTREAM_PW))
        .smtp(Upstream::plain(server))
}

/// MAIL FROM, RCPT TO, DATA with a small message; returns the reply to the end of the data
/// (or to the first command that failed).
fn send_one(c: &mut Raw, from: &str, subject: &str) -> String {
    let r = c.cmd(&format!("MAIL FROM:<{from}>"));
    if !r.starts_with("250") {
        return r;
    }
    let r = c.cmd(&format!("RCPT TO:<rcpt@{DOMAIN}>"));
    if !r.starts_with("250") {
        return r;
    }
    let r = c.cmd("DATA");
    assert!(r.starts_with("354"), "{r}");
    c.send(format!("Subject: {subject}\r\n\r\nbody\r\n.\r\n").as_bytes());
    c.reply()
}

/// The SMTP upstream fails around the message: dropped after the final dot before its reply,
/// stalled there (the upstream time-out fires), dropped in the greeting, speaking garbage.
/// The client gets a 4xx every time — never a 250 for a message the provider did not confirm —
/// and a session opened before, and one after, send normally.
#[test]
fn smtp_upstream_faults() {
    let pf = Postfix::start(&["ola"], UPSTREAM_PW);
    let proxy = FaultProxy::start(std::net::SocketAddr::from(([127, 0, 0, 1], pf.plain_port)));
    let garbage = GarbageServer::start(b"* OK IMAP4rev1 wrong protocol\r\n".to_vec(), false);
    let from = format!("ola@{DOMAIN}");
    let mut gate = config(2)
        .account(smtp_account(&from, proxy.server()))
        .account(smtp_account(&format!("garbage@{DOMAIN}"), garbage.addr))
        .start();

    let (mut keeper, greeting) = Raw::connect(gate.smtp_addr);
    assert!(greeting.starts_with("220"), "{greeting}");
    assert!(keeper.login(&from, LOCAL_PW).starts_with("235"));
    let r = send_one(&mut keeper, &from, "before");
    assert!(r.starts_with("250"), "{r}");
    pf.wait_for(&format!("rcpt@{DOMAIN}"));
    let baseline = fd_count(gate.pid());

    // mailgate sends a small message as `BDAT n LAST` (Postfix offers CHUNKING), so the
    // message's last line is the last thing the server gets before its verdict; the reply to
    // RCPT TO is the last thing the client side hears before it.
    let cases: Vec<(&str, Vec<Rule>, &str)> = vec![
        (
            "drop after the message, before the reply",
            vec![Rule::new(
                Dir::ToServer,
                Trigger::After(b"\r\n\r\nbody\r\n".to_vec(), 0),
                Action::Close,
            )],
            "451 4.4.2",
        ),
        (
            "stall after the message (upstream time-out)",
            vec![Rule::new(
                Dir::ToClient,
                Trigger::After(b"250 2.1.5 Ok\r\n".to_vec(), 0),
                Action::Stall,
            )],
            "451 4.4.1",
        ),
        (
            "drop mid-greeting",
            vec![Rule::new(Dir::ToClient, Trigger::Bytes(6), Action::Close)],
            "451 4.4.2",
        ),
    ];
    for (what, rules, want) in cases {
        proxy.set(rules);
        let (mut c, _) = Raw::connect(gate.smtp_addr);
        assert!(c.login(&from, LOCAL_PW).starts_with("235"));
        let r = send_one(&mut c, &from, what);
        assert!(r.starts_with(want), "{what}: got {r:?}, want {want}…");
        // The client's session goes on: a reset and a clean quit.
        assert!(
            c.cmd("RSET").starts_with("250"),
            "{what}: RSET after the failure"
        );
        assert!(c.cmd("QUIT").starts_with("221"));
    }
    proxy.set(vec![]);

    let garbage_from = format!("garbage@{DOMAIN}");
    let (mut c, _) = Raw::connect(gate.smtp_addr);
    assert!(c.login(&garbage_from, LOCAL_PW).starts_with("235"));
    let r = c.cmd(&format!("MAIL FROM:<{garbage_from}>"));
    assert!(r.starts_with("451 4."), "garbage upstream: {r}");
    assert!(c.cmd("QUIT").starts_with("221"));

    // Before and after still deliver.
    let r = send_one(&mut keeper, &from, "keeper after");
    assert!(r.starts_with("250"), "{r}");
    let (mut c, _) = Raw::connect(gate.smtp_addr);
    assert!(c.login(&from, LOCAL_PW).starts_with("235"));
    let r = send_one(&mut c, &from, "new after");
    assert!(r.starts_with("250"), "{r}");
    assert!(c.cmd("QUIT").starts_with("221"));
    assert!(keeper.cmd("QUIT").starts_with("221"));
    assert!(gate.is_running());
    assert_settles(&gate, baseline, [("imap", 0.0), ("smtp", 0.0)]);
    gate.assert_no_secrets(&[LOCAL_PW, UPSTREAM_PW]);
}

/// SMTP upstreams that never finish a reply: one that streams `250-` EHLO lines without end,
/// one that drip-feeds its EHLO reply a byte at a time, each byte within the per-read wait but
/// the whole far beyond `upstream_timeout_secs`. mailgate stops reading at the reply's byte
/// bound and at the exchange's deadline: the client gets `451 4.x.x` (never a 250), the
/// servers got out only a bounded number of bytes, and the gate keeps serving.
#[test]
fn smtp_upstream_endless_and_dripping_replies() {
    const LINES: u64 = 64 * 1024; // 64 MiB at most
    const EHLO: &[u8] = b"250-smtp.example.no Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 CHUNKING\r\n";
    let line = format!("250-{}\r\n", "x".repeat(1018)).into_bytes();
    let flood = Hostile::start(b"220 flood ESMTP\r\n", Hostile::flood(line, LINES));
    let every = Duration::from_millis(250);
    let drip = Hostile::start(b"220 drip ESMTP\r\n", Hostile::drip(EHLO, every));
    let flood_from = format!("flood@{DOMAIN}");
    let drip_from = format!("drip@{DOMAIN}");
    let mut gate = config(1)
        .account(smtp_account(&flood_from, flood.addr))
        .account(smtp_account(&drip_from, drip.addr))
        .start();
    for from in [&flood_from, &drip_from] {
        let (mut c, _) = Raw::connect(gate.smtp_addr);
        assert!(c.login(from, LOCAL_PW).starts_with("235"));
        let r = c.cmd(&format!("MAIL FROM:<{from}>"));
        assert!(r.starts_with("451 4."), "{from}: {r}");
        assert!(c.cmd("QUIT").starts_with("221"));
    }
    let sent = flood.sent();
    assert!(
        sent < 16 * 1024 * 1024,
        "mailgate read {sent} bytes of one EHLO reply"
    );
    let sent = drip.sent();
    assert!(
        sent < EHLO.len() as u64 / 2,
        "mailgate waited for {sent} of {} dripped bytes",
        EHLO.len()
    );
    assert!(gate.is_running());
    gate.assert_no_secrets(&[LOCAL_PW, UPSTREAM_PW]);
}
