//! The limits on clients that have not logged in, against the real mailgate binary (with a real
//! Dovecot behind it where a login is needed; the logins are python3's imaplib and smtplib):
//! idle connections from one address or many cannot keep a real client out, invalid commands
//! and a trickling client are cut with the protocol's closing answer, the largest ID command
//! RFC 2971 allows is answered, and POP3 clients (curl, fetchmail) are told to use IMAP.
//!
//! Every loop is bounded in count and time; nothing asserts a duration; all traffic is
//! loopback (127.0.0.2 plays the other address). Run: `cargo test --test preauth`

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::Duration;

use support::imap_client::{contains, tagged_status};
use support::proc::{connect_from, poll, python, run_with_timeout};
use support::smtp_client::Raw;
use support::tls_client::Conn;
use support::{Account, Dovecot, DovecotOpts, Gate, GateConfig, Mailgate, Upstream};

const EMAIL: &str = "kari@example.no";
const LOCAL_PW: &str = "Local-pw-preauth-51c7";
const UPSTREAM_USER: &str = "kari";
const UPSTREAM_PW: &str = "Upstream-pw-preauth-0be2";
/// How long reads in these tests wait at most (every expected answer comes much sooner).
const READ_LIMIT: Duration = Duration::from_secs(60);

/// A mailgate with these `[server]` limits, its account on a real Dovecot.
fn gate_with_dovecot(limits: &[(&str, u64)]) -> Gate {
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user(UPSTREAM_USER, UPSTREAM_PW);
    let config = config(limits, &dovecot.imap_addr().to_string());
    Gate::start(dovecot, &config)
}

/// A mailgate for tests that never log in upstream (its account's server is never dialled).
fn gate(limits: &[(&str, u64)]) -> Mailgate {
    config(limits, "127.0.0.1:9").start()
}

fn config(limits: &[(&str, u64)], imap_server: &str) -> GateConfig {
    GateConfig::new()
        .server("auth_failure_delay_ms", 10)
        .limits(limits)
        .account(
            Account::password(EMAIL, LOCAL_PW)
                .imap(Upstream::plain(imap_server).login(UPSTREAM_USER, UPSTREAM_PW)),
        )
}

/// A connection from 127.0.0.2 (another address than the real clients' 127.0.0.1).
fn other(addr: SocketAddr) -> Conn {
    Conn::plain_over(connect_from([127, 0, 0, 2], addr))
}

/// imaplib logs in and out; smtplib logs in (AUTH) and quits.
fn real_clients_log_in(mailgate: &Mailgate) {
    let out = mailgate.imap_login(EMAIL, LOCAL_PW);
    assert!(out.contains("auth OK"), "{out}");
    let smtp = mailgate.smtp_addr;
    // No messages: EHLO, AUTH, QUIT, then "done" (smtplib raises on a refused AUTH).
    let out = python(
        "smtp_send.py",
        &[
            &smtp.ip().to_string(),
            &smtp.port().to_string(),
            EMAIL,
            LOCAL_PW,
            EMAIL,
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout == "done\n",
        "smtplib: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `max_sessions = 6`, `max_connections_per_ip = 2`: seven idle connections from 127.0.0.2
/// (more than max_sessions) get two places and a per-address refusal beyond them (the count
/// spans IMAP and SMTP), and a real client still logs in over IMAP and SMTP. (Before the
/// limit, six took every slot and imaplib got `* BYE Too many connections`.)
#[test]
fn idle_connections_from_one_address_leave_room_for_a_login() {
    let g = gate_with_dovecot(&[("max_sessions", 6), ("max_connections_per_ip", 2)]);
    let mailgate = &g.mailgate;
    let mut held = Vec::new();
    for i in 0..4 {
        let mut c = other(mailgate.imap_addr);
        let first = c.line().unwrap_or_default();
        if i < 2 {
            assert!(first.starts_with("* OK [CAPABILITY "), "#{i}: {first}");
            held.push(c);
        } else {
            assert_eq!(
                first, "* BYE Too many connections from your address, try again later.\r\n",
                "#{i}"
            );
            assert_eq!(c.rest(), "", "#{i}");
        }
    }
    for i in 0..3 {
        let mut c = other(mailgate.smtp_addr);
        let first = c.line().unwrap_or_default();
        assert_eq!(
            first, "421 4.7.0 Too many connections from your address, try again later\r\n",
            "smtp #{i}"
        );
    }
    real_clients_log_in(mailgate);
    // The two held are still served.
    for (i, c) in held.iter_mut().enumerate() {
        c.send(b"n1 NOOP\r\n").expect("send");
        assert_eq!(
            c.line().unwrap_or_default(),
            "n1 OK NOOP completed.\r\n",
            "held #{i}"
        );
    }
    assert!(
        mailgate
            .log()
            .contains("per-address connection limit reached"),
        "{}",
        mailgate.log()
    );
}

/// `max_sessions = 4`, `max_preauth_sessions = 2`, no per-address limit: a logged-in session,
/// then four idle connections. Each one past two pushes out the oldest pre-login connection
/// (`* BYE Connection queue full…`), never the logged-in one, and imaplib and smtplib log in.
/// (Before, the idle ones took every slot and the real clients were refused.)
#[test]
fn a_full_preauth_queue_pushes_out_the_oldest_never_a_logged_in_session() {
    let g = gate_with_dovecot(&[
        ("max_sessions", 4),
        ("max_preauth_sessions", 2),
        ("max_connections_per_ip", 0),
    ]);
    let mailgate = &g.mailgate;
    let mut logged_in = mailgate.connect();
    let r = logged_in.command("L1", &format!("LOGIN \"{EMAIL}\" \"{LOCAL_PW}\""));
    assert!(
        tagged_status(&r, "L1").starts_with("OK"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    let mut idle: Vec<Conn> = (0..4)
        .map(|i| {
            let mut c = other(mailgate.imap_addr);
            let greeting = c.line().unwrap_or_default();
            assert!(
                greeting.starts_with("* OK [CAPABILITY "),
                "#{i}: {greeting}"
            );
            c
        })
        .collect();
    let queue_full =
        "* BYE Connection queue full: too many clients are logging in, try again later.\r\n";
    for (i, c) in idle.iter_mut().take(2).enumerate() {
        assert_eq!(c.rest(), queue_full, "idle #{i}");
    }
    real_clients_log_in(mailgate);
    // imaplib pushed out the older of the two left; smtplib found a place free (imaplib had
    // logged in, so it was no longer waiting) and the newest is still served.
    assert_eq!(idle[2].rest(), queue_full, "idle #2");
    idle[3].send(b"n1 NOOP\r\n").expect("send");
    assert_eq!(
        idle[3].line().unwrap_or_default(),
        "n1 OK NOOP completed.\r\n"
    );
    logged_in.ok("L2", "SELECT INBOX");
    logged_in.ok("L3", "LOGOUT");
}

/// `max_bad_commands` (10 by default) invalid commands before login: the tenth gets its answer
/// and then `* BYE Too many invalid commands.` (IMAP) or `421 4.7.0` (SMTP, where a MAIL FROM
/// before AUTH counts too), and the connection closes. (Before, IMAP answered BAD for ever and
/// SMTP's 530 did not count.)
#[test]
fn invalid_commands_before_login_are_capped() {
    let mailgate = gate(&[]);
    let mut c = mailgate.connect();
    for i in 1..10 {
        let r = c.command(&format!("b{i}"), "FOO");
        assert!(tagged_status(&r, &format!("b{i}")).starts_with("BAD"));
    }
    c.send(b"b10 SELECT INBOX\r\n");
    match c.read_to_eof(READ_LIMIT) {
        Ok(rest) => assert_eq!(
            String::from_utf8_lossy(&rest),
            "b10 BAD Log in first: this command needs an authenticated session.\r\n\
             * BYE Too many invalid commands.\r\n"
        ),
        Err((rest, e)) => panic!("still open ({e}): {}", String::from_utf8_lossy(&rest)),
    }

    let (mut s, greeting) = Raw::connect(mailgate.smtp_addr);
    assert!(greeting.starts_with("220 "), "{greeting}");
    assert!(s.cmd("EHLO client.test").starts_with("250"));
    for i in 1..10 {
        let r = s.cmd(&format!("MAIL FROM:<x{i}@example.net>"));
        assert_eq!(r, "530 5.7.0 Authentication required\r\n", "#{i}");
    }
    s.send(b"MAIL FROM:<x10@example.net>\r\n");
    assert_eq!(s.reply(), "530 5.7.0 Authentication required\r\n");
    assert_eq!(
        s.reply(),
        "421 4.7.0 Too many errors; closing the connection\r\n"
    );
    assert!(s.closed());
}

/// Sends `bytes` one at a time, `pause` apart (bounded by their count), until the server
/// closes; returns everything it said.
fn trickle(addr: SocketAddr, bytes: &[u8], pause: Duration) -> String {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(READ_LIMIT)).expect("timeout");
    let mut reader = stream.try_clone().expect("clone");
    let listener = thread::spawn(move || {
        let mut all = Vec::new();
        let _ = reader.read_to_end(&mut all);
        String::from_utf8_lossy(&all).into_owned()
    });
    let mut writer = stream;
    for b in bytes {
        if writer.write_all(&[*b]).is_err() {
            break;
        }
        thread::sleep(pause);
    }
    listener.join().expect("reader")
}

/// A client that sends a byte every 500 ms never stays silent for `preauth_timeout_secs = 3`,
/// but the whole pre-login phase ends at `preauth_deadline_secs = 5`, with `* BYE` (IMAP) and
/// `421 4.7.0` (SMTP). SMTP before AUTH also uses the pre-login silence time-out, not RFC
/// 5321's five minutes. (Before, the trickle went on until its bytes ran out.)
#[test]
fn a_trickling_client_meets_the_preauth_deadline() {
    let mailgate = gate(&[("preauth_timeout_secs", 3), ("preauth_deadline_secs", 5)]);
    let pause = Duration::from_millis(500);
    // 60 bytes at 500 ms: 30 s, far past the deadline.
    let imap_bytes = b"t NOOP\r\n".repeat(8);
    let smtp_bytes = b"NOOP\r\n".repeat(10);
    let (imap, smtp) = thread::scope(|scope| {
        let imap = scope.spawn(|| trickle(mailgate.imap_addr, &imap_bytes[..60], pause));
        let smtp = scope.spawn(|| trickle(mailgate.smtp_addr, &smtp_bytes[..60], pause));
        (imap.join().expect("imap"), smtp.join().expect("smtp"))
    });
    assert!(imap.starts_with("* OK [CAPABILITY "), "{imap}");
    assert!(imap.contains("t OK NOOP completed.\r\n"), "{imap}");
    assert!(
        imap.ends_with("\r\n* BYE Time limit for logging in reached.\r\n"),
        "{imap}"
    );
    assert!(smtp.starts_with("220 "), "{smtp}");
    assert!(smtp.contains("250 2.0.0 Ok\r\n"), "{smtp}");
    assert!(
        smtp.ends_with(
            "\r\n421 4.7.0 Time limit for authentication reached; closing the connection\r\n"
        ),
        "{smtp}"
    );

    // Silent after EHLO: the pre-login silence time-out, not five minutes.
    let (mut s, _) = Raw::connect(mailgate.smtp_addr);
    assert!(s.cmd("EHLO client.test").starts_with("250"));
    assert_eq!(
        s.reply(),
        "421 4.4.2 Timeout waiting for input; closing the connection\r\n"
    );
}

/// The largest ID command RFC 2971 allows (30 pairs, 30-octet field names, 1024-octet values:
/// a 31,809-byte line with this tag; imaptest's is 31,807) is answered with `* ID` and `OK`.
/// (Before, the 8 KiB pre-login line limit answered `* BYE Command line too long.`)
#[test]
fn the_largest_id_command_is_answered() {
    let mailgate = gate(&[]);
    let pairs: Vec<String> = (0..30)
        .map(|i| {
            let field = format!("field-{i:02}-{}", "f".repeat(21));
            let value = format!("{i:02}{}", "v".repeat(1022));
            assert_eq!((field.len(), value.len()), (30, 1024));
            format!("\"{field}\" \"{value}\"")
        })
        .collect();
    let command = format!("ID ({})", pairs.join(" "));
    let mut c = mailgate.connect();
    let r = c.command("i1", &command);
    let text = String::from_utf8_lossy(&r);
    assert_eq!("i1 ".len() + command.len() + 2, 31_809);
    assert!(text.starts_with("* ID (\"name\" \"mailgate\""), "{text}");
    assert!(text.ends_with("i1 OK ID completed.\r\n"), "{text}");
    c.ok("i2", "NOOP");
}

/// `curl pop3://` on the IMAP port: curl waits silently for a `+OK` greeting (mailgate's is
/// `* OK`), so after the first-command wait it gets `* BYE` and a POP3 `-ERR` naming the IMAP
/// port, and exits at once with "unexpected pop3-server response" (8). fetchmail calls the
/// greeting a protocol error and sends `QUIT`: it gets the `-ERR` at once. mailgate logs both.
/// (Before, curl got only the inactivity BYE and a closed connection, fetchmail `QUIT BAD`.)
#[test]
fn pop3_clients_are_told_to_use_imap() {
    let mailgate = gate(&[("preauth_timeout_secs", 3)]);
    let port = mailgate.imap_addr.port();
    let err = format!(
        "-ERR this is an IMAP server: mailgate supports IMAP only; set the client to IMAP, port {port}"
    );

    let mut curl = Command::new("curl");
    curl.args(["-sS", "-v", "--max-time", "60"])
        .arg(format!("pop3://127.0.0.1:{port}/"));
    let out = run_with_timeout(curl, None, READ_LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains(&format!("< {err}")), "{stderr}");
    assert!(
        stderr.contains("Got unexpected pop3-server response"),
        "{stderr}"
    );
    let logged = poll(READ_LIMIT, Duration::from_millis(50), || {
        mailgate
            .lines()
            .into_iter()
            .find(|l| l.contains("client sent nothing after the greeting"))
    });
    assert!(logged.is_some(), "{}", mailgate.log());

    // fetchmail, as root or not, in a home of its own.
    let home = tempfile::tempdir().expect("home");
    let rc = home.path().join("fetchmailrc");
    std::fs::write(
        &rc,
        format!("poll 127.0.0.1 proto POP3 port {port} user kari password not-a-secret\n"),
    )
    .expect("rc");
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let mut fetchmail = Command::new("fetchmail");
    fetchmail
        .args(["-v", "--nosyslog", "--nodetach", "-f"])
        .arg(&rc)
        .env("HOME", home.path())
        .env("FETCHMAILHOME", home.path());
    let out = run_with_timeout(fetchmail, None, READ_LIMIT);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("POP3> QUIT"), "{text}");
    assert!(text.contains(&format!("POP3< {err}")), "{text}");
    // fetchmail's PS_PROTOCOL.
    assert_eq!(out.status.code(), Some(4), "{text}");
    let logged = poll(READ_LIMIT, Duration::from_millis(50), || {
        mailgate
            .lines()
            .into_iter()
            .find(|l| l.contains("a POP3 client connected to the IMAP port"))
    });
    assert!(logged.is_some(), "{}", mailgate.log());
    assert!(!contains(mailgate.log().as_bytes(), b"not-a-secret"));
}
