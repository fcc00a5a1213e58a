//! SMTP submission through mailgate to a real Postfix (Dovecot SASL), with python3 smtplib
//! (tests/py/smtp_send.py), swaks and a raw socket as clients. See `support::postfix` for how
//! Postfix is run and how what it stored is compared.
//!
//! The tests that count the 250s the clients heard also scrape mailgate's `/metrics` at the end
//! and check the SMTP counters against what the clients were told.
//!
//! Every loop is bounded; no test asserts a duration; all traffic stays on 127.0.0.1.
//!
//! Run: `cargo test --test smtp`

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::messages::Rng;
use support::postfix::{as_stored, DELIVERY_STEP, DELIVERY_TIMEOUT, DOMAIN};
use support::proc::{poll, python_done, run_with_timeout, RefusingPort, PROCESS_TIMEOUT};
use support::scrape::{
    assert_bounded, fetch, Scrape, LOGINS, SESSIONS_ACTIVE, SESSIONS_TOTAL, SMTP_MESSAGES,
    SMTP_MESSAGE_BYTES, UPSTREAM_ERRORS,
};
use support::smtp_client::{recording_tap, sections, Raw};
use support::{b64, describe_difference, Account, GateConfig, Mailgate, Postfix, Upstream};

/// Local password every test account uses with mailgate.
const LOCAL_PASSWORD: &str = "local-pw";
/// Upstream (Postfix/Dovecot) password of every test user.
const UPSTREAM_PASSWORD: &str = "upstream-secret";

const SMTP: (&str, &str) = ("protocol", "smtp");
/// How long (and how often) to poll a scrape for the sessions to end. Generous: this turns a
/// hang into a failure, it measures nothing.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
const SETTLE_STEP: Duration = Duration::from_millis(25);

/// `user@DOMAIN` with the local password, these aliases and `smtp` as its provider (its IMAP
/// upstream is never used).
fn account(user: &str, aliases: &[String], smtp: Upstream) -> Account {
    Account::password(&format!("{user}@{DOMAIN}"), LOCAL_PASSWORD)
        .aliases(aliases)
        .imap(Upstream::plain("127.0.0.1:9").password(UPSTREAM_PASSWORD))
        .smtp(smtp)
}

fn plain_upstream(port: u16) -> Upstream {
    Upstream::plain(format!("127.0.0.1:{port}"))
}

/// `[server]` with `auth_failure_delay_ms = 10`.
fn config() -> GateConfig {
    GateConfig::new().server("auth_failure_delay_ms", 10)
}

/// A deterministic pseudo-random byte stream, for attachments.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&rng.next().to_le_bytes());
    }
    v.truncate(len);
    v
}

/// A MIME message with a base64 attachment of `size` bytes, CRLF line ends.
fn with_attachment(size: usize) -> Vec<u8> {
    let b64 = b64(&noise(size, 0x9e37_79b9_7f4a_7c15));
    let mut m = b"Subject: attachment\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    for line in b64.as_bytes().chunks(76) {
        m.extend_from_slice(line);
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"--b1--\r\n");
    m
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write message");
    p.display().to_string()
}

fn count_ok(out: &str) -> usize {
    out.lines().filter(|l| l.starts_with("OK ")).count()
}

/// Sends with tests/py/smtp_send.py (smtplib); returns its output lines.
fn smtplib_send(args: &[String]) -> String {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    python_done("smtp_send.py", &refs)
}

/// What must never appear in mailgate's output or its `/metrics`: both passwords, plain and in
/// base64, and the SASL PLAIN tokens of `users` with either password.
fn secrets(users: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for pw in [LOCAL_PASSWORD, UPSTREAM_PASSWORD] {
        out.push(pw.to_owned());
        out.push(b64(pw.as_bytes()));
        for user in users {
            out.push(b64(format!("\0{user}@{DOMAIN}\0{pw}").as_bytes()));
        }
    }
    out
}

/// Stops mailgate and asserts that none of [`secrets`] appears in anything it wrote.
fn assert_no_secrets(gw: &mut Mailgate, users: &[&str]) {
    let secrets = secrets(users);
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    gw.assert_no_secrets(&refs);
}

/// Scrapes `/metrics` (checked for secrets) until no SMTP session is open any more, so every
/// counter of the traffic so far is final.
fn settled_scrape(gw: &Mailgate, users: &[&str]) -> Scrape {
    let addr: SocketAddr = gw.metrics_addr.expect("metrics address");
    let secrets = secrets(users);
    let mut last = String::new();
    let settled = poll(SETTLE_TIMEOUT, SETTLE_STEP, || {
        let body = fetch(addr).unwrap_or_else(|e| panic!("scrape {addr}: {e}"));
        for secret in &secrets {
            assert!(
                !body.contains(secret.as_str()),
                "a secret ({} chars) appears in the /metrics output:\n{body}",
                secret.len()
            );
        }
        let s = Scrape::parse(body).unwrap_or_else(|e| panic!("{e}"));
        if s.get(SESSIONS_ACTIVE, &[SMTP]) == Some(0.0) {
            return Some(s);
        }
        last = s.body;
        None
    });
    settled.unwrap_or_else(|| {
        panic!("waited {SETTLE_TIMEOUT:?} for the SMTP sessions to end; last scrape:\n{last}")
    })
}

/// Outcomes the clients were told, to compare with `mailgate_smtp_messages_total` and
/// `mailgate_logins_total{protocol="smtp"}`.
#[derive(Debug, Default)]
struct Told {
    /// 250 after the message data.
    ok: usize,
    /// The upstream's 5xx after the message data.
    rejected: usize,
    /// 4xx after the message data (the client keeps the message).
    deferred: usize,
    /// 552 after the message data: over `max_message_size`.
    too_big: usize,
    /// 235 to AUTH.
    logins_ok: usize,
    /// 535 to AUTH for a configured account with a wrong password.
    bad_password: usize,
    /// 535 to AUTH for a login name no account has.
    unknown_user: usize,
    /// 235 to AUTH, then `451` at MAIL FROM: the provider could not be reached or used.
    upstream_unavailable: usize,
    /// Connections to mailgate's SMTP listener.
    sessions: usize,
}

/// The SMTP counters agree exactly with what the clients were told, every series is in the
/// README's metric table, and the scrape names no account.
#[track_caller]
fn assert_smtp_metrics(s: &Scrape, told: &Told) {
    let results = [
        ("ok", told.ok),
        ("rejected", told.rejected),
        ("deferred", told.deferred),
        ("too_big", told.too_big),
    ];
    for (result, n) in results {
        s.expect(SMTP_MESSAGES, &[("result", result)], n as f64);
    }
    let nonzero: Vec<[(&str, &str); 1]> = results
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(result, _)| [("result", *result)])
        .collect();
    let nonzero: Vec<&[(&str, &str)]> = nonzero.iter().map(|l| &l[..]).collect();
    s.expect_only_nonzero(SMTP_MESSAGES, &nonzero);
    // One size per accepted message.
    s.expect(&format!("{SMTP_MESSAGE_BYTES}_count"), &[], told.ok as f64);
    s.expect(LOGINS, &[SMTP, ("result", "ok")], told.logins_ok as f64);
    s.expect(
        LOGINS,
        &[SMTP, ("result", "bad_password")],
        told.bad_password as f64,
    );
    s.expect(
        LOGINS,
        &[SMTP, ("result", "unknown_user")],
        told.unknown_user as f64,
    );
    s.expect(
        LOGINS,
        &[SMTP, ("result", "upstream_unavailable")],
        told.upstream_unavailable as f64,
    );
    s.expect(SESSIONS_TOTAL, &[SMTP], told.sessions as f64);
    assert_bounded(s, &[]);
    assert!(!s.body.contains(DOMAIN), "an address in\n{}", s.body);
}

/// Messages arrive byte-identical through both TLS modes, with smtplib, swaks and a raw
/// pipelining client, several per connection; the number of 250s equals the number stored.
#[test]
fn delivers_exact_bytes_through_postfix() {
    let pf = Postfix::start(&["alice", "bob"], UPSTREAM_PASSWORD);
    let mut gw = config()
        .server("max_message_size", 41943040)
        .account(account("alice", &[], pf.starttls_upstream()))
        .account(account("bob", &[], pf.implicit_upstream()))
        .metrics(None)
        .start();
    let mut told = Told::default();
    let files = tempfile::tempdir().expect("temp dir");
    let d = files.path();

    let mut eight_bit = b"Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nbl\xc3\xa5b\xc3\xa6rsyltet\xc3\xb8y, raw \xff\xfe\x80 bytes\r\n".to_vec();
    eight_bit.extend_from_slice(&[b'x'; 5000]);
    eight_bit.extend_from_slice(b" <- a 5000-byte line\r\n");
    let messages: Vec<(&str, Vec<u8>)> = vec![
        // A first line that starts with a dot (not a header: Postfix adds a blank line before
        // it, on both paths alike).
        (
            "leading-dot",
            b".first line starts with a dot\r\nsecond\r\n".to_vec(),
        ),
        (
            "dot-lines",
            b"Subject: dots\r\n\r\n.\r\n..\r\n...x\r\n. \r\n.\r\nend\r\n".to_vec(),
        ),
        ("8bit", eight_bit),
        // smtplib itself appends the missing CRLF before the end marker (so does every DATA
        // client: the CRLF before "." belongs to the message). Postfix stores "...CRLF".
        (
            "no-final-crlf",
            b"Subject: no final newline\r\n\r\nlast line without CRLF".to_vec(),
        ),
        ("20mib", with_attachment(20 * 1024 * 1024)),
        // Postfix stores a CR that is not before LF as a space (on both paths alike).
        ("bare-cr", b"Subject: bare CR\r\n\r\na\rb\r\n".to_vec()),
    ];

    // Through mailgate (alice: STARTTLS upstream), all on one connection.
    let mut args_gw = vec![
        "127.0.0.1".to_owned(),
        gw.smtp_addr.port().to_string(),
        format!("alice@{DOMAIN}"),
        LOCAL_PASSWORD.to_owned(),
        format!("alice@{DOMAIN}"),
    ];
    // Directly to Postfix, the same messages, for comparison.
    let mut args_direct = vec![
        "127.0.0.1".to_owned(),
        pf.plain_port.to_string(),
        format!("alice@{DOMAIN}"),
        UPSTREAM_PASSWORD.to_owned(),
        format!("alice@{DOMAIN}"),
    ];
    for (name, bytes) in &messages {
        let path = write(d, name, bytes);
        args_gw.push(format!("gw-{name}@{DOMAIN}"));
        args_gw.push(path.clone());
        args_direct.push(format!("direct-{name}@{DOMAIN}"));
        args_direct.push(path);
    }
    let out = smtplib_send(&args_gw);
    assert_eq!(count_ok(&out), messages.len(), "{out}\n{}", gw.log());
    let mut told_250 = count_ok(&out);
    told.sessions += 1;
    told.logins_ok += 1;
    let direct = smtplib_send(&args_direct);
    assert_eq!(count_ok(&direct), messages.len(), "{direct}");

    for (name, sent) in &messages {
        let via = pf.wait_for(&format!("gw-{name}@{DOMAIN}"));
        let dir = pf.wait_for(&format!("direct-{name}@{DOMAIN}"));
        assert!(
            via == dir,
            "{name}: stored differently through mailgate than sent directly"
        );
        if *name == "no-final-crlf" {
            let mut with_crlf = sent.clone();
            with_crlf.extend_from_slice(b"\r\n");
            assert_eq!(via, as_stored(&with_crlf), "{name}");
        } else if *name != "leading-dot" && *name != "bare-cr" {
            let want = as_stored(sent);
            assert!(
                via == want,
                "{name}: not the bytes sent (stored / sent): {}",
                describe_difference(&via, &want)
            );
        }
    }
    let leading = pf.wait_for(&format!("gw-leading-dot@{DOMAIN}"));
    assert!(
        leading.ends_with(b"\n.first line starts with a dot\nsecond\n"),
        "{}",
        String::from_utf8_lossy(&leading)
    );

    // swaks through mailgate (bob: implicit-TLS upstream), pipelining.
    let mut swaks = Command::new("swaks");
    swaks
        .args(["--server", &gw.smtp_addr.to_string()])
        .args(["--auth", "LOGIN", "--auth-user", &format!("bob@{DOMAIN}")])
        .args(["--auth-password", LOCAL_PASSWORD])
        .args([
            "--from",
            &format!("bob@{DOMAIN}"),
            "--to",
            &format!("gw-swaks@{DOMAIN}"),
        ])
        .args([
            "--header",
            "Subject: via swaks",
            "--body",
            "hello from swaks",
            "--pipeline",
        ]);
    let swaks = run_with_timeout(swaks, None, PROCESS_TIMEOUT);
    let swaks_out = String::from_utf8_lossy(&swaks.stdout);
    assert!(swaks.status.success(), "{swaks_out}\n{}", gw.log());
    assert!(
        // Postfix says "Ok: queued as …" after DATA, "Ok: N bytes queued as …" after BDAT.
        swaks_out.contains("<-  250 2.0.0 Ok: ") && swaks_out.contains(" queued as "),
        "{swaks_out}"
    );
    told_250 += 1;
    told.sessions += 1;
    told.logins_ok += 1;
    let stored = pf.wait_for(&format!("gw-swaks@{DOMAIN}"));
    assert!(String::from_utf8_lossy(&stored).contains("hello from swaks"));

    // A raw client: everything pipelined, DATA then BDAT chunks, QUIT in the same write.
    let (mut c, greeting) = Raw::connect(gw.smtp_addr);
    told.sessions += 1;
    assert!(greeting.starts_with("220 "), "{greeting}");
    let ehlo = c.cmd("EHLO client.test");
    for ext in [
        "PIPELINING",
        "SIZE 41943040",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "AUTH PLAIN LOGIN",
    ] {
        assert!(ehlo.contains(ext), "{ext} missing: {ehlo}");
    }
    let token = b64(format!("\0alice@{DOMAIN}\0{LOCAL_PASSWORD}").as_bytes());
    c.send(
        format!(
            "AUTH PLAIN {token}\r\nMAIL FROM:<alice@{DOMAIN}> BODY=8BITMIME\r\nRCPT TO:<gw-pipe@{DOMAIN}>\r\nDATA\r\n"
        )
        .as_bytes(),
    );
    for want in ["235 2.7.0", "250 2.1.0", "250 2.1.5", "354 "] {
        let r = c.reply();
        assert!(r.starts_with(want), "want {want}, got {r}\n{}", gw.log());
    }
    told.logins_ok += 1;
    let pipe_msg = b"Subject: pipelined\r\n\r\n.leading dot, stuffed by the client\r\n";
    let bdat_msg: &[u8] =
        b"Subject: bdat without final CRLF\r\n\r\n.a dot (BDAT is not stuffed)\r\nlast";
    let (part1, part2) = bdat_msg.split_at(20);
    let mut batch =
        b"Subject: pipelined\r\n\r\n..leading dot, stuffed by the client\r\n.\r\n".to_vec();
    batch.extend_from_slice(
        format!(
            "MAIL FROM:<alice@{DOMAIN}>\r\nRCPT TO:<gw-bdat@{DOMAIN}>\r\nBDAT {}\r\n",
            part1.len()
        )
        .as_bytes(),
    );
    batch.extend_from_slice(part1);
    batch.extend_from_slice(format!("BDAT {} LAST\r\n", part2.len()).as_bytes());
    batch.extend_from_slice(part2);
    batch.extend_from_slice(b"QUIT\r\n");
    c.send(&batch);
    for want in [
        "250 2.0.0 Ok: ",
        "250 2.1.0",
        "250 2.1.5",
        "250 2.0.0 20 octets",
        "250 2.0.0 Ok: ",
        "221 ",
    ] {
        let r = c.reply();
        assert!(r.starts_with(want), "want {want}, got {r}\n{}", gw.log());
    }
    told_250 += 2;
    assert_eq!(
        pf.wait_for(&format!("gw-pipe@{DOMAIN}")),
        as_stored(pipe_msg)
    );
    // The same BDAT message sent directly to Postfix is stored the same way: with a final
    // line end added.
    let (mut direct_c, _) = Raw::connect(
        format!("127.0.0.1:{}", pf.plain_port)
            .parse()
            .expect("addr"),
    );
    assert!(direct_c
        .login(&format!("alice@{DOMAIN}"), UPSTREAM_PASSWORD)
        .starts_with("235"));
    assert!(direct_c
        .cmd(&format!("MAIL FROM:<alice@{DOMAIN}>"))
        .starts_with("250"));
    assert!(direct_c
        .cmd(&format!("RCPT TO:<direct-bdat@{DOMAIN}>"))
        .starts_with("250"));
    direct_c.send(format!("BDAT {} LAST\r\n", bdat_msg.len()).as_bytes());
    direct_c.send(bdat_msg);
    assert!(direct_c.reply().starts_with("250"));
    let via = pf.wait_for(&format!("gw-bdat@{DOMAIN}"));
    assert_eq!(via, pf.wait_for(&format!("direct-bdat@{DOMAIN}")));
    let mut with_crlf = bdat_msg.to_vec();
    with_crlf.extend_from_slice(b"\r\n");
    assert_eq!(via, as_stored(&with_crlf));

    // Every 250 the clients heard is one stored message, and nothing else is on its way.
    let gw_count = || {
        pf.delivered()
            .iter()
            .filter(|(r, _)| r.starts_with("gw-"))
            .count()
    };
    let settled = poll(DELIVERY_TIMEOUT, DELIVERY_STEP, || {
        (gw_count() == told_250 && pf.queue_empty()).then_some(())
    });
    assert!(settled.is_some());
    assert_eq!(gw_count(), told_250);

    // The metrics tell the same: every 250 is one `ok` (and one size), nothing was refused.
    told.ok = told_250;
    let s = settled_scrape(&gw, &["alice", "bob"]);
    assert_smtp_metrics(&s, &told);
    s.expect_only_nonzero(UPSTREAM_ERRORS, &[]);
    let log = gw.log();
    assert!(!log.contains(UPSTREAM_PASSWORD) && !log.contains(LOCAL_PASSWORD));
    assert_no_secrets(&mut gw, &["alice", "bob"]);
}

/// What mailgate writes to the upstream is, byte for byte, what the client meant: seen on the
/// wire with a recording tap in front of Postfix's plaintext port. Postfix offers CHUNKING,
/// so a message that fits in mailgate's 32 KiB hold goes up as one `BDAT n LAST` with the
/// client's bytes unstuffed and nothing added (whether the client used DATA or BDAT); a longer
/// one goes up by DATA, stuffed exactly as the client stuffed it (CRLF endings, a leading dot,
/// dot lines, 8-bit bytes, a long line).
#[test]
fn upstream_wire_carries_the_clients_bytes() {
    let pf = Postfix::start(&["carol"], UPSTREAM_PASSWORD);
    let (tap, record) = recording_tap(pf.plain_port);
    let mut gw = config()
        .account(account("carol", &[], plain_upstream(tap)))
        .start();
    let carol = format!("carol@{DOMAIN}");
    let (mut c, _) = Raw::connect(gw.smtp_addr);
    assert!(c.login(&carol, LOCAL_PASSWORD).starts_with("235"));
    let send_data = |c: &mut Raw, rcpt: &str, wire: &[u8]| {
        assert!(c.cmd(&format!("MAIL FROM:<{carol}>")).starts_with("250"));
        assert!(c
            .cmd(&format!("RCPT TO:<{rcpt}@{DOMAIN}>"))
            .starts_with("250"));
        assert!(c.cmd("DATA").starts_with("354"));
        c.send(wire);
        let r = c.reply();
        assert!(r.starts_with("250 2.0.0"), "{r}");
    };

    // Already stuffed by the client, as on the client's wire after DATA.
    let head =
        b"..first line starts with a dot\r\nSubject: wire\r\n\r\n..\r\n...x\r\n\xc3\xa6\xff\r\n";
    let mut small = head.to_vec();
    small.extend_from_slice(&[b'z'; 3000]);
    small.extend_from_slice(b"\r\n\r\n.\r\n");
    send_data(&mut c, "gw-wire", &small);
    // Past the hold: 40 KiB more of ordinary lines.
    let mut big = head.to_vec();
    for i in 0..1000 {
        big.extend_from_slice(format!("line {i:04} of a long message, forty bytes\r\n").as_bytes());
    }
    big.extend_from_slice(b".\r\n");
    send_data(&mut c, "gw-wire-big", &big);

    let bdat: &[u8] = b"Subject: bdat\r\n\r\n.dot\r\nlast";
    assert!(c.cmd(&format!("MAIL FROM:<{carol}>")).starts_with("250"));
    assert!(c
        .cmd(&format!("RCPT TO:<gw-wire-bdat@{DOMAIN}>"))
        .starts_with("250"));
    c.send(format!("BDAT {} LAST\r\n", bdat.len()).as_bytes());
    c.send(bdat);
    assert!(c.reply().starts_with("250 2.0.0"));
    assert!(c.cmd("QUIT").starts_with("221"));
    pf.wait_for(&format!("gw-wire-bdat@{DOMAIN}"));

    let recorded = record.lock().map(|r| r.clone()).unwrap_or_default();
    let found = sections(&recorded);
    assert_eq!(found.len(), 3, "{}", String::from_utf8_lossy(&recorded));
    let mut small_unstuffed =
        b".first line starts with a dot\r\nSubject: wire\r\n\r\n.\r\n..x\r\n\xc3\xa6\xff\r\n"
            .to_vec();
    small_unstuffed.extend_from_slice(&[b'z'; 3000]);
    // The end marker's first CRLF ends the last line, which is empty here.
    small_unstuffed.extend_from_slice(b"\r\n\r\n");
    assert!(
        found[0].bdat.as_deref() == Some(&small_unstuffed[..]),
        "small DATA message: not one BDAT LAST with the unstuffed bytes: {:?}",
        found[0]
            .bdat
            .as_deref()
            .map(|b| String::from_utf8_lossy(&b[..b.len().min(120)]).into_owned())
    );
    assert!(
        found[1].data.as_deref() == Some(&big[..]),
        "long DATA message: bytes differ on the upstream wire"
    );
    assert_eq!(
        found[2].bdat.as_deref(),
        Some(bdat),
        "BDAT message: the client's bytes exactly"
    );
    // Each went up as a whole: one BDAT command for each small message.
    assert_eq!(
        recorded.windows(5).filter(|w| w == b"BDAT ").count(),
        2,
        "{}",
        String::from_utf8_lossy(&recorded)
    );
    // And arrived: the long one whole, the small ones as Postfix stores them.
    let stored = pf.wait_for(&format!("gw-wire-big@{DOMAIN}"));
    assert!(stored.ends_with(b"line 0999 of a long message, forty bytes\n"));
    pf.wait_for(&format!("gw-wire@{DOMAIN}"));
    assert_no_secrets(&mut gw, &["carol"]);
}

/// A fake upstream that answers like a server up to DATA and then never answers the end of
/// the message (or, with `greet = false`, accepts and never says anything).
fn stalled_upstream(greet: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        // A handful of connections at most; each ends when mailgate closes it.
        for _ in 0..4 {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
            let mut w = stream.try_clone().expect("clone");
            let mut r = BufReader::new(stream);
            if !greet {
                for _ in 0..100_000 {
                    let mut sink = String::new();
                    if r.read_line(&mut sink).map(|n| n == 0).unwrap_or(true) {
                        break;
                    }
                }
                continue;
            }
            let _ = w.write_all(b"220 stall.test ESMTP\r\n");
            let mut in_data = false;
            for _ in 0..100_000 {
                let mut line = String::new();
                if r.read_line(&mut line).map(|n| n == 0).unwrap_or(true) {
                    break;
                }
                if in_data {
                    continue; // Swallow the message and never answer.
                }
                let up = line.to_ascii_uppercase();
                let answer: &[u8] = if up.starts_with("EHLO") {
                    b"250-stall.test\r\n250 AUTH PLAIN\r\n"
                } else if up.starts_with("AUTH") {
                    b"235 2.7.0 ok\r\n"
                } else if up.starts_with("DATA") {
                    in_data = true;
                    b"354 go ahead\r\n"
                } else {
                    b"250 2.0.0 ok\r\n"
                };
                let _ = w.write_all(answer);
            }
        }
    });
    port
}

/// Every failure mode gets the right reply class, and nothing the client was not told 250
/// about is delivered.
#[test]
fn failures_get_the_right_replies() {
    let pf = Postfix::start(&["alice"], UPSTREAM_PASSWORD);
    let down = RefusingPort::new();
    let stall_data = stalled_upstream(true);
    let stall_greet = stalled_upstream(false);
    let aliases = ["Alias", "refused-sender", "data-refused", "data-deferred"]
        .map(|a| format!("{a}@{DOMAIN}"));
    let mut gw = config()
        .limits(&[
            ("max_message_size", 1048576),
            ("upstream_timeout_secs", 3),
            ("connect_timeout_secs", 3),
        ])
        .account(account("alice", &aliases, pf.starttls_upstream()))
        .account(account("down", &[], plain_upstream(down.port())))
        .account(account("stall", &[], plain_upstream(stall_data)))
        .account(account("silent", &[], plain_upstream(stall_greet)))
        .metrics(None)
        .start();
    let alice = format!("alice@{DOMAIN}");
    let mut told_250 = 0;
    let mut told = Told::default();

    // Wrong local password: 535 each time, the third closes the connection. The second and
    // third try are "\0a@b\0c" and "\0a@b\0d": a login name no account has.
    let (mut c, _) = Raw::connect(gw.smtp_addr);
    told.sessions += 1;
    assert!(c.login(&alice, "wrong").starts_with("535 5.7.8"));
    told.bad_password += 1;
    assert!(c.cmd("AUTH PLAIN AGFAYgBj").starts_with("535 5.7.8"));
    assert!(c.cmd("AUTH PLAIN AGFAYgBk").starts_with("535 5.7.8"));
    told.unknown_user += 2;
    assert!(c.reply().starts_with("421 4.7.0"));
    assert!(c.closed());

    // Sequence errors, garbage and limits on one connection.
    let (mut c, _) = Raw::connect(gw.smtp_addr);
    told.sessions += 1;
    assert!(c
        .cmd(&format!("MAIL FROM:<{alice}>"))
        .starts_with("530 5.7.0"));
    assert!(c.cmd("\u{1}\u{2}garbage").starts_with("500 5.5.2"));
    assert!(c.cmd(&"A".repeat(3000)).starts_with("500 5.5.2"));
    assert!(c.cmd("EXPN staff").starts_with("500 5.5.2"));
    assert!(c.cmd("STARTTLS").starts_with("502 5.5.1"));
    assert!(c.cmd("VRFY alice").starts_with("252"));
    assert!(c.cmd("HELP").starts_with("214"));
    assert!(
        c.cmd("AUTH PLAIN").starts_with("503 5.5.1"),
        "AUTH before EHLO"
    );
    assert!(c.cmd("EHLO client.test").starts_with("250"));
    assert!(c.cmd("AUTH CRAM-MD5").starts_with("504 5.5.4"));
    assert!(c.cmd("AUTH PLAIN").starts_with("334"));
    assert!(c.cmd("*").starts_with("501"));
    assert!(c.cmd("AUTH LOGIN").starts_with("334 VXNlcm5hbWU6"));
    assert!(c
        .cmd(&b64(alice.as_bytes()))
        .starts_with("334 UGFzc3dvcmQ6"));
    assert!(c
        .cmd(&b64(LOCAL_PASSWORD.as_bytes()))
        .starts_with("235 2.7.0"));
    told.logins_ok += 1;
    assert!(c.cmd("RCPT TO:<x@example.test>").starts_with("503 5.5.1"));
    assert!(c.cmd("DATA").starts_with("503 5.5.1"));
    assert!(c.cmd("MAIL FROM:alice").starts_with("501"));
    assert!(c
        .cmd(&format!("MAIL FROM:<{alice}> FOO=BAR"))
        .starts_with("555 5.5.4"));

    // MAIL FROM not allowed (a refused message); the alias is, in any case.
    let r = c.cmd(&format!("MAIL FROM:<mallory@{DOMAIN}>"));
    assert!(r.starts_with("553 5.7.1") && r.contains(&alice), "{r}");
    told.rejected += 1;
    assert!(c.cmd("MAIL FROM:<alias@EXAMPLE.test>").starts_with("250"));
    assert!(c.cmd("RSET").starts_with("250"));

    // The upstream refuses one recipient at RCPT time; the other gets the message.
    assert!(c.cmd(&format!("MAIL FROM:<{alice}>")).starts_with("250"));
    let refused = c.cmd(&format!("RCPT TO:<refused@{DOMAIN}>"));
    assert!(
        refused.starts_with("554 5.7.1") && refused.contains("test policy"),
        "{refused}"
    );
    assert!(c
        .cmd(&format!("RCPT TO:<gw-ok@{DOMAIN}>"))
        .starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let r = c.cmd("Subject: partly refused\r\n\r\nhi\r\n.");
    assert!(r.starts_with("250 2.0.0"), "{r}");
    told_250 += 1;

    // The provider refuses the sender. MAIL FROM goes upstream in one write with the first
    // RCPT, so the provider's refusal, in its code and words, answers every RCPT, and DATA
    // finds no recipient; the next transaction is unaffected.
    assert!(c
        .cmd(&format!("MAIL FROM:<refused-sender@{DOMAIN}>"))
        .starts_with("250"));
    for rcpt in ["gw-sender-a", "gw-sender-b"] {
        let r = c.cmd(&format!("RCPT TO:<{rcpt}@{DOMAIN}>"));
        assert!(
            r.starts_with("554 5.7.1") && r.contains("Sender refused by the test policy"),
            "{r}"
        );
    }
    assert!(c.cmd("DATA").starts_with("554 5.5.1"));
    assert!(c.cmd("RSET").starts_with("250"));
    // One message refused, counted once (at the first RCPT), not once per reply.
    told.rejected += 1;

    // The upstream refuses the message (5xx): the client hears the upstream's code and words.
    assert!(c.cmd(&format!("MAIL FROM:<{alice}>")).starts_with("250"));
    assert!(c
        .cmd(&format!("RCPT TO:<gw-rejected@{DOMAIN}>"))
        .starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let r = c.cmd("Subject: REJECT-ME\r\n\r\nspam\r\n.");
    assert!(
        r.starts_with("550 5.7.1") && r.contains("test content policy"),
        "{r}"
    );
    told.rejected += 1;

    // The provider refuses DATA itself. mailgate answers the client's DATA with 354 without
    // waiting for the provider's (one round trip fewer per message), so the refusal, in the
    // provider's code and words, answers the end of the data instead: for a small message
    // (read before the end marker would go out) and for one past the 32 KiB that are held
    // back (read before the first byte would go out), 5xx and 4xx. Never a 250, nothing
    // delivered, and the connection serves the next message.
    let big = format!(
        "Subject: big\r\n\r\n{}",
        format!("{}\r\n", "z".repeat(78)).repeat(600)
    );
    for (sender, body, code) in [
        ("data-refused", "Subject: small\r\n\r\nhi\r\n", "554 5.7.1"),
        ("data-deferred", big.as_str(), "450 4.7.1"),
        ("data-refused", big.as_str(), "554 5.7.1"),
    ] {
        assert!(c
            .cmd(&format!("MAIL FROM:<{sender}@{DOMAIN}>"))
            .starts_with("250"));
        assert!(c
            .cmd(&format!("RCPT TO:<gw-{sender}@{DOMAIN}>"))
            .starts_with("250"));
        assert!(c.cmd("DATA").starts_with("354"));
        c.send(body.as_bytes());
        let r = c.cmd(".");
        assert!(
            r.starts_with(code) && r.contains("by the test policy"),
            "{sender}, {} bytes: {r}",
            body.len()
        );
        if code.starts_with('5') {
            told.rejected += 1;
        } else {
            told.deferred += 1;
        }
    }
    assert!(c.cmd(&format!("MAIL FROM:<{alice}>")).starts_with("250"));
    assert!(c
        .cmd(&format!("RCPT TO:<gw-after-data@{DOMAIN}>"))
        .starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let r = c.cmd("Subject: after a refused DATA\r\n\r\nhi\r\n.");
    assert!(r.starts_with("250 2.0.0"), "{r}");
    told_250 += 1;

    // Over the size limit: announced (SIZE) and not announced. The SIZE refusal answers MAIL
    // FROM, before any message, and counts as a message too big.
    let r = c.cmd(&format!("MAIL FROM:<{alice}> SIZE=2000000"));
    assert!(r.starts_with("552 5.3.4"), "{r}");
    told.too_big += 1;
    assert!(c.cmd(&format!("MAIL FROM:<{alice}>")).starts_with("250"));
    assert!(c
        .cmd(&format!("RCPT TO:<gw-too-big@{DOMAIN}>"))
        .starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let line = format!("{}\r\n", "y".repeat(998));
    c.send(b"Subject: too big\r\n\r\n");
    for _ in 0..2100 {
        c.send(line.as_bytes());
    }
    let r = c.cmd(".");
    assert!(r.starts_with("552 5.3.4"), "{r}");
    told.too_big += 1;
    // 100 recipients at most.
    assert!(c.cmd(&format!("MAIL FROM:<{alice}>")).starts_with("250"));
    let mut batch = String::new();
    for i in 0..101 {
        batch.push_str(&format!("RCPT TO:<gw-many-{i}@{DOMAIN}>\r\n"));
    }
    c.send(batch.as_bytes());
    for i in 0..101 {
        let r = c.reply();
        let want = if i < 100 { "250" } else { "452 4.5.3" };
        assert!(r.starts_with(want), "rcpt {i}: {r}");
    }
    assert!(c.cmd("RSET").starts_with("250"));
    // The session still works after all that (a fresh upstream connection after the abort).
    assert!(c.cmd(&format!("MAIL FROM:<{alice}>")).starts_with("250"));
    assert!(c
        .cmd(&format!("RCPT TO:<gw-after@{DOMAIN}>"))
        .starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    assert!(c
        .cmd("Subject: after\r\n\r\nstill here\r\n.")
        .starts_with("250"));
    told_250 += 1;
    assert!(c.cmd("QUIT").starts_with("221"));

    // The client disconnects in the middle of DATA: nothing is sent (and the client was told
    // nothing about the message, so no outcome is counted).
    let (mut c, _) = Raw::connect(gw.smtp_addr);
    told.sessions += 1;
    assert!(c.login(&alice, LOCAL_PASSWORD).starts_with("235"));
    told.logins_ok += 1;
    assert!(c.cmd(&format!("MAIL FROM:<{alice}>")).starts_with("250"));
    assert!(c
        .cmd(&format!("RCPT TO:<gw-aborted@{DOMAIN}>"))
        .starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: aborted\r\n\r\nhalf a message\r\n");
    drop(c);
    let aborted = poll(SETTLE_TIMEOUT, SETTLE_STEP, || {
        gw.log()
            .contains("client closed in the middle of DATA; message aborted upstream")
            .then_some(())
    });
    assert!(aborted.is_some(), "{}", gw.log());
    assert!(!gw.log().contains("client client"), "{}", gw.log());

    // Upstream down, silent, or stalled after DATA: 451 4.4.x, nothing reported as sent.
    for (user, at_mail) in [("down", true), ("silent", true), ("stall", false)] {
        let (mut c, _) = Raw::connect(gw.smtp_addr);
        told.sessions += 1;
        assert!(c
            .login(&format!("{user}@{DOMAIN}"), LOCAL_PASSWORD)
            .starts_with("235"));
        let r = c.cmd(&format!("MAIL FROM:<{user}@{DOMAIN}>"));
        if at_mail {
            // The provider could not be used: the login counts so, and the message deferred.
            assert!(r.starts_with("451 4.4.1"), "{user}: {r}");
            told.upstream_unavailable += 1;
            told.deferred += 1;
            continue;
        }
        told.logins_ok += 1;
        assert!(r.starts_with("250"), "{user}: {r}");
        assert!(c.cmd("RCPT TO:<someone@example.test>").starts_with("250"));
        assert!(c.cmd("DATA").starts_with("354"));
        let r = c.cmd("Subject: into the void\r\n\r\nhello\r\n.");
        assert!(r.starts_with("451 4.4."), "{user}: {r}");
        told.deferred += 1;
    }

    // Postfix saw the aborted message's connection end without the end of data.
    let lost = poll(DELIVERY_TIMEOUT, DELIVERY_STEP, || {
        pf.log()
            .contains("lost connection after DATA")
            .then_some(())
    });
    assert!(lost.is_some(), "{}", pf.log());
    // What the client was told 250 about is exactly what Postfix stored.
    let gw_msgs = || -> Vec<String> {
        pf.delivered()
            .into_iter()
            .map(|(r, _)| r)
            .filter(|r| r.starts_with("gw-"))
            .collect()
    };
    let settled = poll(DELIVERY_TIMEOUT, DELIVERY_STEP, || {
        (gw_msgs().len() >= told_250 && pf.queue_empty()).then_some(())
    });
    assert!(settled.is_some());
    let mut got = gw_msgs();
    got.sort();
    assert_eq!(
        got,
        vec![
            format!("gw-after-data@{DOMAIN}"),
            format!("gw-after@{DOMAIN}"),
            format!("gw-ok@{DOMAIN}")
        ]
    );
    assert_eq!(got.len(), told_250);

    // The metrics count every outcome exactly as the clients heard it.
    told.ok = told_250;
    let s = settled_scrape(&gw, &["alice", "down", "stall", "silent"]);
    assert_smtp_metrics(&s, &told);
    // The upstream failures provoked: nothing listening (down), no greeting (silent), no
    // answer to the end of the data (stall).
    let connect = [SMTP, ("kind", "connect")];
    let timeout = [SMTP, ("kind", "timeout")];
    s.expect(UPSTREAM_ERRORS, &connect, 1.0);
    s.expect(UPSTREAM_ERRORS, &timeout, 2.0);
    s.expect_only_nonzero(UPSTREAM_ERRORS, &[&connect, &timeout]);
    let log = gw.log();
    assert!(!log.contains(UPSTREAM_PASSWORD) && !log.contains(LOCAL_PASSWORD));
    assert_no_secrets(&mut gw, &["alice", "down", "stall", "silent"]);
}

/// `mailgate_bytes_total{protocol="smtp",direction="client_to_upstream"}` counts the message
/// bytes that reached the provider, as the client meant them (before dot-stuffing): a small
/// message (one BDAT) and one past the 32 KiB hold (DATA) count in full; a large message
/// whose DATA the provider refuses counts nothing — its first 32 KiB were held back and never
/// sent (they used to be counted when taken in).
#[test]
fn smtp_byte_counter_counts_what_reached_the_provider() {
    let pf = Postfix::start(&["alice"], UPSTREAM_PASSWORD);
    let mut gw = config()
        .account(account(
            "alice",
            &[format!("data-refused@{DOMAIN}")],
            pf.starttls_upstream(),
        ))
        .metrics(None)
        .start();
    let (mut c, _) = Raw::connect(gw.smtp_addr);
    assert!(c
        .login(&format!("alice@{DOMAIN}"), LOCAL_PASSWORD)
        .starts_with("235"));
    // On the wire, stuffed; what the client means has one dot less on that line.
    let small_wire = "Subject: small\r\n\r\n..starts with a dot\r\nhi\r\n";
    let small_meant = small_wire.len() - 1;
    let big = format!(
        "Subject: big\r\n\r\n{}",
        format!("{}\r\n", "b".repeat(98)).repeat(500)
    );
    let mut sent = 0;
    for (sender, body, meant, code) in [
        ("alice", small_wire, small_meant, "250"),
        ("alice", big.as_str(), big.len(), "250"),
        ("data-refused", big.as_str(), 0, "554"),
    ] {
        assert!(c
            .cmd(&format!("MAIL FROM:<{sender}@{DOMAIN}>"))
            .starts_with("250"));
        assert!(c
            .cmd(&format!("RCPT TO:<alice@{DOMAIN}>"))
            .starts_with("250"));
        assert!(c.cmd("DATA").starts_with("354"));
        // In two writes with a pause between, so that mailgate takes the message in over
        // more than one read (the miscount needed held bytes from an earlier read). The pause
        // only shapes the reads; the count must be exact however they fall.
        let (head, tail) = body.split_at(body.len() / 3);
        c.send(head.as_bytes());
        std::thread::sleep(Duration::from_millis(150));
        c.send(tail.as_bytes());
        let r = c.cmd(".");
        assert!(r.starts_with(code), "{sender}, {} bytes: {r}", body.len());
        sent += meant;
    }
    assert!(c.cmd("QUIT").starts_with("221"));
    let s = settled_scrape(&gw, &["alice"]);
    s.expect(
        support::scrape::BYTES,
        &[SMTP, ("direction", "client_to_upstream")],
        sent as f64,
    );
    assert_no_secrets(&mut gw, &["alice"]);
}

/// DSN (RFC 3461) passes through to a provider that offers it: EHLO advertises DSN, smtplib's
/// `RET=HDRS`, `ENVID`, `NOTIFY=SUCCESS,FAILURE` and `ORCPT` reach Postfix, whose success
/// notice to the sender carries them back. Malformed DSN parameters get `501`; a provider
/// without DSN gets no MAIL at all and the client a `555` that says why.
#[test]
fn dsn_parameters_pass_through() {
    let pf = Postfix::start(&["alice"], UPSTREAM_PASSWORD);
    let no_dsn = support::standin::StandIn::smtp("235 2.7.0 Authentication successful");
    let mut gw = config()
        .account(account("alice", &[], pf.starttls_upstream()))
        .account(account("nodsn", &[], plain_upstream(no_dsn.addr().port())))
        .start();
    let alice = format!("alice@{DOMAIN}");
    let envid = "mg-envid-42";
    let orcpt = "rfc822;orig-rcpt@example.test";
    let out = python_done(
        "smtp_dsn.py",
        &[
            "127.0.0.1",
            &gw.smtp_addr.port().to_string(),
            &alice,
            LOCAL_PASSWORD,
            &alice,
            &format!("gw-dsn@{DOMAIN}"),
            envid,
            orcpt,
        ],
    );
    assert!(out.contains("dsn True\nOK\n"), "{out}");
    pf.wait_for(&format!("gw-dsn@{DOMAIN}"));
    // Postfix's success notice goes back to the sender, with what the client asked for.
    let notice = String::from_utf8_lossy(&pf.wait_for(&alice)).into_owned();
    for want in [
        "Original-Envelope-Id: mg-envid-42",
        "Original-Recipient: rfc822;orig-rcpt@example.test",
        "Action: delivered",
        "text/rfc822-headers",
    ] {
        assert!(
            notice.contains(want),
            "{want:?} missing in the notice:\n{notice}"
        );
    }

    let (mut c, _) = Raw::connect(gw.smtp_addr);
    assert!(c.login(&alice, LOCAL_PASSWORD).starts_with("235"));
    for bad in [
        "RET=ALL".to_owned(),
        "RET=HDRS RET=FULL".to_owned(),
        "ENVID=a+2g".to_owned(),
        format!("ENVID={}", "e".repeat(101)),
    ] {
        let r = c.cmd(&format!("MAIL FROM:<{alice}> {bad}"));
        assert!(r.starts_with("501 5.5.4"), "{bad}: {r}");
    }
    assert!(c.cmd(&format!("MAIL FROM:<{alice}>")).starts_with("250"));
    for (bad, code) in [
        ("NOTIFY=NEVER,SUCCESS", "501 5.5.4"),
        ("ORCPT=x@y", "501 5.5.4"),
        ("FOO=1", "555 5.5.4"),
    ] {
        let r = c.cmd(&format!("RCPT TO:<gw-bad@{DOMAIN}> {bad}"));
        assert!(r.starts_with(code), "{bad}: {r}");
    }
    assert!(c.cmd("QUIT").starts_with("221"));

    let (mut c, _) = Raw::connect(gw.smtp_addr);
    let nodsn = format!("nodsn@{DOMAIN}");
    assert!(c.login(&nodsn, LOCAL_PASSWORD).starts_with("235"));
    let r = c.cmd(&format!("MAIL FROM:<{nodsn}> RET=HDRS"));
    assert!(
        r.starts_with("555 5.5.4") && r.contains("does not offer DSN"),
        "{r}"
    );
    assert!(c.cmd("QUIT").starts_with("221"));
    assert!(
        !no_dsn.received().iter().any(|l| l.starts_with("MAIL")),
        "{:?}",
        no_dsn.received()
    );
    assert_no_secrets(&mut gw, &["alice", "nodsn"]);
}
