//! SMTP submission through mailgate to a real Postfix (Dovecot SASL), with python3 smtplib,
//! swaks and a raw socket as clients. See `support_smtp` for how Postfix is run and how what it
//! stored is compared.
//!
//! Every loop is bounded; no test asserts a duration; all traffic stays on 127.0.0.1.

mod support_smtp;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;
use support_smtp::*;

/// smtplib: log in, send each (recipient, file) on one connection; one line per message,
/// "OK rcpt" or "FAIL rcpt code text".
const SMTPLIB_SEND: &str = r#"
import smtplib, sys
host, port, user, pw, frm = sys.argv[1:6]
pairs = sys.argv[6:]
s = smtplib.SMTP(host, int(port), timeout=300)
s.ehlo()
s.login(user, pw)
for i in range(0, len(pairs), 2):
    rcpt, path = pairs[i], pairs[i + 1]
    data = open(path, 'rb').read()
    try:
        s.sendmail(frm, [rcpt], data, mail_options=["BODY=8BITMIME"])
        print("OK", rcpt, flush=True)
    except smtplib.SMTPResponseException as e:
        print("FAIL", rcpt, e.smtp_code, e.smtp_error.decode(errors="replace"), flush=True)
        s.rset()
s.quit()
"#;

fn account(user: &str, hash: &str, aliases: &str, smtp: &str) -> String {
    format!(
        "[[account]]\nemail = \"{user}@{DOMAIN}\"\nlocal_password_hash = \"{hash}\"\naliases = [{aliases}]\n\
         [account.imap]\nserver = \"127.0.0.1:9\"\ntls = \"none\"\nallow_plaintext = true\npassword = \"{UPSTREAM_PASSWORD}\"\n\
         [account.smtp]\n{smtp}\n"
    )
}

fn starttls_upstream(pf: &Postfix) -> String {
    format!(
        "server = \"127.0.0.1:{}\"\ntls = \"starttls\"\nca_file = \"{}\"\ntls_server_name = \"localhost\"",
        pf.starttls_port,
        pf.ca_file.display()
    )
}

fn implicit_upstream(pf: &Postfix) -> String {
    // No tls_server_name: the certificate's IP address SAN is checked.
    format!(
        "server = \"127.0.0.1:{}\"\ntls = \"implicit\"\nca_file = \"{}\"",
        pf.implicit_port,
        pf.ca_file.display()
    )
}

fn plain_upstream(port: u16) -> String {
    format!("server = \"127.0.0.1:{port}\"\ntls = \"none\"\nallow_plaintext = true")
}

fn server_section(extra: &str) -> String {
    format!(
        "[server]\nimap_listen = \"127.0.0.1:0\"\nsmtp_listen = \"127.0.0.1:0\"\nauth_failure_delay_ms = 10\n{extra}\n"
    )
}

/// A deterministic pseudo-random byte stream (xorshift), for attachments.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.extend_from_slice(&seed.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// A MIME message with a base64 attachment of `size` bytes, CRLF line ends.
fn with_attachment(size: usize) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(noise(size, 0x9e37_79b9_7f4a_7c15));
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

/// Messages arrive byte-identical through both TLS modes, with smtplib, swaks and a raw
/// pipelining client, several per connection; the number of 250s equals the number stored.
#[test]
fn delivers_exact_bytes_through_postfix() {
    let pf = Postfix::start(&["alice", "bob"]);
    let hash = hash_password(LOCAL_PASSWORD);
    let config = format!(
        "{}{}{}",
        server_section("max_message_size = 41943040"),
        account("alice", &hash, "", &starttls_upstream(&pf)),
        account("bob", &hash, "", &implicit_upstream(&pf)),
    );
    let gw = Gateway::start(&config);
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
        gw.smtp.port().to_string(),
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
    let refs: Vec<&str> = args_gw.iter().map(String::as_str).collect();
    let out = python(SMTPLIB_SEND, &refs);
    assert_eq!(count_ok(&out), messages.len(), "{out}\n{}", gw.log());
    let mut told_250 = count_ok(&out);
    let refs: Vec<&str> = args_direct.iter().map(String::as_str).collect();
    let direct = python(SMTPLIB_SEND, &refs);
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
            let at = via
                .iter()
                .zip(&want)
                .position(|(a, b)| a != b)
                .unwrap_or(via.len().min(want.len()));
            assert!(
                via == want,
                "{name}: not the bytes sent; first difference at {at}: stored {:?} / sent {:?}",
                String::from_utf8_lossy(&via[at.saturating_sub(20)..(at + 20).min(via.len())]),
                String::from_utf8_lossy(&want[at.saturating_sub(20)..(at + 20).min(want.len())])
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
    let swaks = std::process::Command::new("swaks")
        .args(["--server", &gw.smtp.to_string()])
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
        ])
        .output()
        .expect("run swaks");
    let swaks_out = String::from_utf8_lossy(&swaks.stdout);
    assert!(swaks.status.success(), "{swaks_out}\n{}", gw.log());
    assert!(
        swaks_out.contains("<-  250 2.0.0 Ok: queued as"),
        "{swaks_out}"
    );
    told_250 += 1;
    let stored = pf.wait_for(&format!("gw-swaks@{DOMAIN}"));
    assert!(String::from_utf8_lossy(&stored).contains("hello from swaks"));

    // A raw client: everything pipelined, DATA then BDAT chunks, QUIT in the same write.
    let (mut c, greeting) = Raw::connect(gw.smtp);
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
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("\0alice@{DOMAIN}\0{LOCAL_PASSWORD}"));
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
        "250 2.0.0 Ok: queued",
        "250 2.1.0",
        "250 2.1.5",
        "250 2.0.0 20 octets",
        "250 2.0.0 Ok: queued",
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
    assert!(wait_until(600, || gw_count() == told_250 && pf.queue_empty()));
    assert_eq!(gw_count(), told_250);
    let log = gw.log();
    assert!(!log.contains(UPSTREAM_PASSWORD) && !log.contains(LOCAL_PASSWORD));
}

/// What mailgate writes to the upstream is, byte for byte, what the client wrote: seen on the
/// wire with a recording tap in front of Postfix's plaintext port (CRLF endings, a leading
/// dot, dot lines, 8-bit bytes, a long line; and a BDAT message gets stuffing and a final CRLF).
#[test]
fn upstream_wire_carries_the_clients_bytes() {
    let pf = Postfix::start(&["carol"]);
    let hash = hash_password(LOCAL_PASSWORD);
    let (tap, record) = recording_tap(pf.plain_port);
    let config = format!(
        "{}{}",
        server_section(""),
        account("carol", &hash, "", &plain_upstream(tap)),
    );
    let gw = Gateway::start(&config);
    let carol = format!("carol@{DOMAIN}");
    let (mut c, _) = Raw::connect(gw.smtp);
    assert!(c.login(&carol, LOCAL_PASSWORD).starts_with("235"));

    // Already stuffed by the client, as on the client's wire after DATA.
    let mut wire =
        b"..first line starts with a dot\r\nSubject: wire\r\n\r\n..\r\n...x\r\n\xc3\xa6\xff\r\n"
            .to_vec();
    wire.extend_from_slice(&[b'z'; 3000]);
    wire.extend_from_slice(b"\r\n\r\n.\r\n");
    assert!(c.cmd(&format!("MAIL FROM:<{carol}>")).starts_with("250"));
    assert!(c
        .cmd(&format!("RCPT TO:<gw-wire@{DOMAIN}>"))
        .starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(&wire);
    let r = c.reply();
    assert!(r.starts_with("250 2.0.0"), "{r}\n{}", gw.log());

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
    let sections = data_sections(&recorded);
    assert_eq!(sections.len(), 2, "{}", String::from_utf8_lossy(&recorded));
    assert!(
        sections[0] == wire,
        "DATA bytes differ on the upstream wire"
    );
    assert_eq!(
        sections[1],
        b"Subject: bdat\r\n\r\n..dot\r\nlast\r\n.\r\n".to_vec(),
        "BDAT message as DATA upstream: stuffed, final CRLF added"
    );
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
                let mut sink = String::new();
                while r.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {}
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
    let pf = Postfix::start(&["alice"]);
    let hash = hash_password(LOCAL_PASSWORD);
    let down_port = free_port();
    let stall_data = stalled_upstream(true);
    let stall_greet = stalled_upstream(false);
    let config = format!(
        "{}{}{}{}{}",
        server_section(
            "max_message_size = 1048576\nupstream_timeout_secs = 3\nconnect_timeout_secs = 3"
        ),
        account(
            "alice",
            &hash,
            &format!("\"Alias@{DOMAIN}\""),
            &starttls_upstream(&pf)
        ),
        account("down", &hash, "", &plain_upstream(down_port)),
        account("stall", &hash, "", &plain_upstream(stall_data)),
        account("silent", &hash, "", &plain_upstream(stall_greet)),
    );
    let gw = Gateway::start(&config);
    let alice = format!("alice@{DOMAIN}");
    let mut told_250 = 0;

    // Wrong local password: 535 each time, the third closes the connection.
    let (mut c, _) = Raw::connect(gw.smtp);
    assert!(c.login(&alice, "wrong").starts_with("535 5.7.8"));
    assert!(c.cmd("AUTH PLAIN AGFAYgBj").starts_with("535 5.7.8"));
    assert!(c.cmd("AUTH PLAIN AGFAYgBk").starts_with("535 5.7.8"));
    assert!(c.reply().starts_with("421 4.7.0"));
    assert!(c.closed());

    // Sequence errors, garbage and limits on one connection.
    let (mut c, _) = Raw::connect(gw.smtp);
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
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    assert!(c.cmd(&b64(&alice)).starts_with("334 UGFzc3dvcmQ6"));
    assert!(c.cmd(&b64(LOCAL_PASSWORD)).starts_with("235 2.7.0"));
    assert!(c.cmd("RCPT TO:<x@example.test>").starts_with("503 5.5.1"));
    assert!(c.cmd("DATA").starts_with("503 5.5.1"));
    assert!(c.cmd("MAIL FROM:alice").starts_with("501"));
    assert!(c
        .cmd(&format!("MAIL FROM:<{alice}> FOO=BAR"))
        .starts_with("555 5.5.4"));

    // MAIL FROM not allowed; the alias is, in any case.
    let r = c.cmd(&format!("MAIL FROM:<mallory@{DOMAIN}>"));
    assert!(r.starts_with("553 5.7.1") && r.contains(&alice), "{r}");
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

    // Over the size limit: announced (SIZE) and not announced.
    let r = c.cmd(&format!("MAIL FROM:<{alice}> SIZE=2000000"));
    assert!(r.starts_with("552 5.3.4"), "{r}");
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

    // The client disconnects in the middle of DATA: nothing is sent.
    let (mut c, _) = Raw::connect(gw.smtp);
    assert!(c.login(&alice, LOCAL_PASSWORD).starts_with("235"));
    assert!(c.cmd(&format!("MAIL FROM:<{alice}>")).starts_with("250"));
    assert!(c
        .cmd(&format!("RCPT TO:<gw-aborted@{DOMAIN}>"))
        .starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"Subject: aborted\r\n\r\nhalf a message\r\n");
    drop(c);

    // Upstream down, silent, or stalled after DATA: 451 4.4.x, nothing reported as sent.
    for (user, at_mail) in [("down", true), ("silent", true), ("stall", false)] {
        let (mut c, _) = Raw::connect(gw.smtp);
        assert!(c
            .login(&format!("{user}@{DOMAIN}"), LOCAL_PASSWORD)
            .starts_with("235"));
        let r = c.cmd(&format!("MAIL FROM:<{user}@{DOMAIN}>"));
        if at_mail {
            assert!(r.starts_with("451 4.4.1"), "{user}: {r}");
            continue;
        }
        assert!(r.starts_with("250"), "{user}: {r}");
        assert!(c.cmd("RCPT TO:<someone@example.test>").starts_with("250"));
        assert!(c.cmd("DATA").starts_with("354"));
        let r = c.cmd("Subject: into the void\r\n\r\nhello\r\n.");
        assert!(r.starts_with("451 4.4."), "{user}: {r}");
    }

    // Postfix saw the aborted message's connection end without the end of data.
    assert!(
        wait_until(300, || pf.log().contains("lost connection after DATA")),
        "{}",
        pf.log()
    );
    // What the client was told 250 about is exactly what Postfix stored.
    let gw_msgs = || -> Vec<String> {
        pf.delivered()
            .into_iter()
            .map(|(r, _)| r)
            .filter(|r| r.starts_with("gw-"))
            .collect()
    };
    assert!(wait_until(600, || gw_msgs().len() >= told_250 && pf.queue_empty()));
    let mut got = gw_msgs();
    got.sort();
    assert_eq!(
        got,
        vec![format!("gw-after@{DOMAIN}"), format!("gw-ok@{DOMAIN}")]
    );
    assert_eq!(got.len(), told_250);
    let log = gw.log();
    assert!(!log.contains(UPSTREAM_PASSWORD) && !log.contains(LOCAL_PASSWORD));
}
