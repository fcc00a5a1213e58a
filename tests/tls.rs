//! Local TLS: `[server.tls]`, STARTTLS on the IMAP and SMTP listeners, the implicit-TLS
//! listeners (`imaps_listen`, `smtps_listen`), `mailgate cert generate`, and the refusal to
//! take passwords in clear off loopback.
//!
//! Clients are real where one exists (python3 imaplib and smtplib, curl); the STARTTLS
//! injection checks use a raw rustls client so that the exact bytes on the wire are known.
//! Every loop is bounded; no test asserts a duration; all traffic stays on 127.0.0.1.
//!
//! Run: `cargo test --test tls`

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::config::toml_str;
use support::mailgate::{cached_hash, run};
use support::messages::simple;
use support::postfix::{as_stored, DOMAIN};
use support::proc::{python_done, python_ok, run_with_timeout, PROCESS_TIMEOUT};
use support::tls_client::{logged_addr, Conn};
use support::{b64, Account, Dovecot, DovecotOpts, GateConfig, Pki, Postfix, Upstream};

const USER: &str = "alice";
/// Distinctive, so a leak into any log line is unmistakable.
const LOCAL_PW: &str = "Local-tls-pw-4b1e";
const UPSTREAM_PW: &str = "Upstream-tls-pw-77c2";

fn email() -> String {
    format!("{USER}@{DOMAIN}")
}

/// `[server]` on loopback with `[server.tls]` and both implicit-TLS listeners, plus one
/// account whose IMAP upstream is `imap_port` (plaintext) and whose SMTP upstream is `smtp`.
fn config(cert: &Path, key: &Path, imap_port: u16, smtp: Upstream) -> GateConfig {
    GateConfig::new()
        .server("imaps_listen", "127.0.0.1:0")
        .server("smtps_listen", "127.0.0.1:0")
        .server("auth_failure_delay_ms", 10)
        .tls(cert, key)
        .account(
            Account::password(&email(), LOCAL_PW)
                .imap(Upstream::plain(format!("127.0.0.1:{imap_port}")).login(USER, UPSTREAM_PW))
                .smtp(smtp),
        )
}

/// An SMTP upstream never dialled.
fn unused_smtp() -> Upstream {
    Upstream::plain("127.0.0.1:9")
}

/// A plaintext Dovecot with user `alice` holding `message`.
fn dovecot(message: &[u8]) -> Dovecot {
    let d = Dovecot::start(DovecotOpts::plaintext_only());
    d.add_user(USER, UPSTREAM_PW);
    d.fill_maildir(USER, &[message.to_vec()]);
    d
}

fn imap_session(port: u16, tls: &str, ca: &Path, message: &[u8]) -> String {
    let port = port.to_string();
    let ca = ca.display().to_string();
    let out = python_ok(&[
        "session",
        "--port",
        &port,
        "--tls",
        tls,
        "--ca",
        &ca,
        "--user",
        &email(),
        "--password",
        LOCAL_PW,
    ]);
    assert!(out.contains("\nauth OK"), "{out}");
    assert!(
        out.contains(&format!("\nfetch1 OK {}\n", support::hex(message))),
        "{out}"
    );
    assert!(out.contains("\nlogout BYE"), "{out}");
    out
}

fn smtp_send(mode: &str, port: u16, ca: &Path, rcpt: &str, file: &Path) -> String {
    let out = python_done(
        "smtp_tls.py",
        &[
            mode,
            "127.0.0.1",
            &port.to_string(),
            &ca.display().to_string(),
            &email(),
            LOCAL_PW,
            &email(),
            rcpt,
            &file.display().to_string(),
        ],
    );
    assert!(out.contains(&format!("OK {rcpt}")), "{out}");
    out
}

/// imaplib (IMAP4_SSL and starttls()) logs in, lists, selects and fetches the message byte for
/// byte; smtplib (SMTP_SSL and starttls()) sends two messages that Postfix delivers unchanged;
/// curl fetches the message with `--ssl-reqd`. STARTTLS is advertised before TLS and not after;
/// no password reaches the log.
#[test]
fn real_clients_over_starttls_and_implicit_tls() {
    let pki = Pki::new();
    let message = simple("over TLS", "fetched through mailgate's own TLS");
    let dc = dovecot(&message);
    let pf = Postfix::start(&[USER], UPSTREAM_PW);
    let smtp = pf.starttls_upstream().login(&email(), UPSTREAM_PW);
    let mut gate = config(&pki.server.cert, &pki.server.key, dc.imap_port, smtp).start();
    let imaps = logged_addr(&gate, "imaps listening on");
    let smtps = logged_addr(&gate, "smtps listening on");

    let out = imap_session(imaps.port(), "implicit", &pki.ca, &message);
    assert!(!out.contains("STARTTLS"), "{out}");
    let out = imap_session(gate.imap_addr.port(), "starttls", &pki.ca, &message);
    let greeting = out
        .lines()
        .find(|l| l.starts_with("greeting"))
        .unwrap_or("");
    assert!(greeting.contains("STARTTLS"), "{out}");
    let after = out
        .lines()
        .find(|l| l.starts_with("capabilities "))
        .unwrap_or("");
    assert!(
        !after.contains("STARTTLS") && after.contains("AUTH=PLAIN"),
        "{out}"
    );

    // curl: IMAP with STARTTLS required, the message by UID.
    let mut cmd = Command::new("curl");
    cmd.args(["--silent", "--show-error", "--ssl-reqd", "--cacert"])
        .arg(&pki.ca)
        .arg("--user")
        .arg(format!("{}:{LOCAL_PW}", email()))
        .arg(format!(
            "imap://localhost:{}/INBOX;UID=1",
            gate.imap_addr.port()
        ))
        .args([
            "--resolve",
            &format!("localhost:{}:127.0.0.1", gate.imap_addr.port()),
        ]);
    let curl = run_with_timeout(cmd, None, PROCESS_TIMEOUT);
    assert!(
        curl.status.success(),
        "curl failed: {}\n{}",
        String::from_utf8_lossy(&curl.stderr),
        gate.log()
    );
    assert_eq!(curl.stdout, message, "curl fetched other bytes");

    let dir = tempfile::tempdir().expect("tempdir");
    for (mode, port) in [
        ("implicit", smtps.port()),
        ("starttls", gate.smtp_addr.port()),
    ] {
        let rcpt = format!("tls-{mode}@{DOMAIN}");
        let body = simple(
            &format!("sent with {mode} TLS"),
            "line one\r\n.leading dot\r\n",
        );
        let file = dir.path().join(mode);
        std::fs::write(&file, &body).expect("write message");
        let out = smtp_send(mode, port, &pki.ca, &rcpt, &file);
        if mode == "starttls" {
            let before = out
                .lines()
                .find(|l| l.starts_with("features-before-tls"))
                .unwrap_or("");
            assert!(before.contains("starttls"), "{out}");
            let after = out
                .lines()
                .find(|l| l.starts_with("features "))
                .unwrap_or("");
            assert!(
                !after.contains("starttls") && after.contains("auth"),
                "{out}"
            );
        }
        assert_eq!(
            pf.wait_for(&rcpt),
            as_stored(&body),
            "{mode}: stored bytes differ"
        );
    }
    let plain = b64(format!("\0{}\0{LOCAL_PW}", email()).as_bytes());
    gate.assert_no_secrets(&[LOCAL_PW, UPSTREAM_PW, &plain]);
}

/// Commands sent in the same packet as STARTTLS are discarded, not executed inside the TLS
/// session (CVE-2011-0411 style injection); STARTTLS once in TLS is refused; SMTP starts over
/// after TLS (AUTH before a new EHLO is a sequence error).
#[test]
fn starttls_discards_pipelined_commands() {
    let pki = Pki::new();
    let gate = config(&pki.server.cert, &pki.server.key, 9, unused_smtp()).start();

    // IMAP: `b CAPABILITY` rides along with `a STARTTLS`.
    let mut c = Conn::plain(gate.imap_addr);
    let greeting = c.line().expect("greeting");
    assert!(greeting.contains("STARTTLS"), "{greeting}");
    c.send(b"a STARTTLS\r\nb CAPABILITY\r\n").expect("send");
    let ok = c.until("a ");
    assert!(ok.last().is_some_and(|l| l.starts_with("a OK")), "{ok:?}");
    c.start_tls(&pki.ca);
    c.send(b"c NOOP\r\n").expect("send");
    let after = c.until("c ");
    assert_eq!(after, vec!["c OK NOOP completed.\r\n".to_string()]);
    c.send(b"d STARTTLS\r\n").expect("send");
    let again = c.until("d ");
    assert!(again[0].starts_with("d BAD"), "{again:?}");
    c.send(b"e CAPABILITY\r\n").expect("send");
    let caps = c.until("e ");
    assert!(
        caps[0].starts_with("* CAPABILITY") && !caps[0].contains("STARTTLS"),
        "{caps:?}"
    );

    // SMTP: `NOOP` rides along with STARTTLS; after TLS the first reply must be EHLO's.
    let mut s = Conn::plain(gate.smtp_addr);
    assert!(s.line().expect("greeting").starts_with("220 "));
    s.send(b"EHLO client.test\r\n").expect("send");
    let ehlo = s.until("250 ");
    assert!(ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    s.send(b"STARTTLS\r\nNOOP\r\n").expect("send");
    let go = s.until("220 ");
    assert_eq!(go, vec!["220 2.0.0 Ready to start TLS\r\n".to_string()]);
    s.start_tls(&pki.ca);
    let token = b64(format!("\0{}\0{LOCAL_PW}", email()).as_bytes());
    s.send(format!("AUTH PLAIN {token}\r\n").as_bytes())
        .expect("send");
    let first = s.line().expect("reply after TLS");
    assert!(first.starts_with("503 5.5.1"), "{first}");
    s.send(b"EHLO client.test\r\n").expect("send");
    let ehlo = s.until("250 ");
    assert!(ehlo[0].starts_with("250-mailgate Hello"), "{ehlo:?}");
    assert!(!ehlo.iter().any(|l| l.contains("STARTTLS")), "{ehlo:?}");
    assert!(
        ehlo.iter().any(|l| l.contains("AUTH PLAIN LOGIN")),
        "{ehlo:?}"
    );
    s.send(b"STARTTLS\r\n").expect("send");
    let again = s.line().expect("reply");
    assert!(again.starts_with("554 5.5.1"), "{again}");
    s.send(b"QUIT\r\n").expect("send");
    assert!(s.until("221 ")[0].starts_with("221"));
}

/// A client that reached a non-loopback address without TLS sees LOGINDISABLED and no AUTH=
/// (IMAP) or no AUTH (SMTP), and a password sent anyway is refused unchecked:
/// `NO [PRIVACYREQUIRED]` / `538 5.7.11`. Driven through the library over an in-memory stream,
/// since tests may only reach loopback addresses.
#[tokio::test]
async fn clear_passwords_refused_off_loopback() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let pki = Pki::new();
    let text = config(&pki.server.cert, &pki.server.key, 9, unused_smtp()).to_toml();
    let cfg = std::sync::Arc::new(
        mailgate::config::Config::parse(&text, Path::new("t.toml")).expect("config"),
    );
    let (_tx, shutdown) = mailgate::session::shutdown_channel();
    let peer: std::net::SocketAddr = "192.0.2.7:40000".parse().expect("addr");

    let (client, server) = tokio::io::duplex(64 * 1024);
    let session = mailgate::imap::Session {
        id: 1,
        peer,
        loopback: false,
        tls: false,
        config: cfg.clone(),
        shutdown: shutdown.clone(),
        ticket: None,
        accepted: std::time::Instant::now(),
        local_port: 143,
    };
    let task = tokio::spawn(mailgate::imap::serve(server, session));
    let (r, mut w) = tokio::io::split(client);
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await.expect("greeting");
    assert!(
        line.contains("STARTTLS LOGINDISABLED") && !line.contains("AUTH="),
        "{line}"
    );
    w.write_all(format!("a LOGIN {} {LOCAL_PW}\r\n", email()).as_bytes())
        .await
        .expect("send");
    line.clear();
    r.read_line(&mut line).await.expect("reply");
    assert!(line.starts_with("a NO [PRIVACYREQUIRED]"), "{line}");
    w.write_all(b"b AUTHENTICATE PLAIN\r\nc LOGOUT\r\n")
        .await
        .expect("send");
    line.clear();
    r.read_line(&mut line).await.expect("reply");
    assert!(line.starts_with("b NO [PRIVACYREQUIRED]"), "{line}");
    drop(w);
    drop(r);
    task.await.expect("imap session");

    let (client, server) = tokio::io::duplex(64 * 1024);
    let session = mailgate::smtp::Session {
        id: 2,
        peer,
        loopback: false,
        tls: false,
        config: cfg,
        shutdown,
        ticket: None,
        accepted: std::time::Instant::now(),
        local_port: 143,
    };
    let task = tokio::spawn(mailgate::smtp::serve(server, session));
    let (r, mut w) = tokio::io::split(client);
    let mut r = BufReader::new(r);
    w.write_all(b"EHLO client.test\r\nAUTH PLAIN AGFAYg==\r\nQUIT\r\n")
        .await
        .expect("send");
    let mut all = String::new();
    for _ in 0..30 {
        let mut l = String::new();
        if r.read_line(&mut l).await.expect("read") == 0 {
            break;
        }
        all.push_str(&l);
    }
    assert!(all.contains("250-STARTTLS\r\n"), "{all}");
    assert!(!all.contains("AUTH PLAIN"), "{all}");
    assert!(all.contains("\r\n538 5.7.11 "), "{all}");
    assert!(all.ends_with("221 2.0.0 Bye\r\n"), "{all}");
    drop(w);
    task.await.expect("smtp session");
}

/// A listener on a non-loopback address without `[server.tls]` is refused at load (check-config
/// and run), with a message that says why; with `[server.tls]` the same file is fine.
#[test]
fn non_loopback_listener_needs_tls() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let account = format!(
        "[[account]]\nemail = \"{}\"\nlocal_password_hash = \"{}\"\n[account.imap]\nserver = \"127.0.0.1:9\"\npassword = \"x\"\n",
        email(),
        cached_hash(LOCAL_PW)
    );
    let bare = dir.path().join("bare.toml");
    std::fs::write(
        &bare,
        format!("[server]\nimap_listen = \"0.0.0.0:0\"\n\n{account}"),
    )
    .expect("write");
    for cmd in ["check-config", "run"] {
        let out = run(&[cmd, "--config", &bare.display().to_string()], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{cmd} accepted it: {err}");
        assert!(
            err.contains("bare.toml:2:15: server.imap_listen:")
                && err.contains("not a loopback address")
                && err.contains("cross the network in clear"),
            "{cmd}: {err}"
        );
    }
    let with_tls = dir.path().join("tls.toml");
    std::fs::write(
        &with_tls,
        format!(
            "[server]\nimap_listen = \"0.0.0.0:0\"\n\n[server.tls]\ncert = {}\nkey = {}\n\n{account}",
            toml_str(&pki.server.cert.display().to_string()),
            toml_str(&pki.server.key.display().to_string()),
        ),
    )
    .expect("write");
    let out = run(
        &["check-config", "--config", &with_tls.display().to_string()],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A broken key file is named with its position.
    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        std::fs::read_to_string(&with_tls)
            .expect("read")
            .replace(&pki.server.key.display().to_string(), "nope.key"),
    )
    .expect("write");
    let out = run(
        &["check-config", "--config", &broken.display().to_string()],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("broken.toml:6:7: server.tls.key:"),
        "{err}"
    );
}

/// `mailgate cert generate` writes a certificate and a 0600 key, refuses to overwrite them
/// without --force, prints the `[server.tls]` lines and trust instructions, and imaplib logs
/// in over implicit TLS trusting exactly that certificate.
#[test]
fn generated_certificate_serves_tls_logins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("certs");
    let args = [
        "cert",
        "generate",
        "--out",
        out_dir.to_str().expect("utf-8"),
    ];
    let out = run(&args, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert: PathBuf = out_dir.join("mailgate.pem");
    let key: PathBuf = out_dir.join("mailgate.key");
    for needle in [
        "[server.tls]",
        &format!("cert = \"{}\"", cert.display()),
        &format!("key = \"{}\"", key.display()),
        "certmgr",
        "security add-trusted-cert",
        "update-ca-certificates",
        "Thunderbird",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in:\n{stdout}");
    }
    // The printed lines, the optional listeners uncommented where they are printed (under
    // [server], not [server.tls]), make a config that loads.
    let start = stdout
        .find("[server]\n")
        .unwrap_or_else(|| panic!("{stdout}"));
    let end = stdout
        .find("\nkey = ")
        .unwrap_or_else(|| panic!("{stdout}"));
    let snippet = stdout[start..end]
        .replace("# imaps_listen = ", "imaps_listen = ")
        .replace("# smtps_listen = ", "smtps_listen = ");
    assert!(
        snippet.find("imaps_listen") < snippet.find("[server.tls]"),
        "{snippet}"
    );
    let pasted = dir.path().join("pasted.toml");
    // (A file with no account loads only when it says so.)
    let pasted_text = format!("{snippet}\nkey = \"{}\"\n", key.display()).replacen(
        "[server]\n",
        "[server]\nallow_no_accounts = true\n",
        1,
    );
    std::fs::write(&pasted, pasted_text).expect("write");
    let loaded = run(
        &["check-config", "--config", pasted.to_str().expect("utf-8")],
        None,
    );
    assert!(
        loaded.status.success(),
        "{snippet}\n{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let before = std::fs::read(&cert).expect("cert");
    let again = run(&args, None);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--force"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read(&cert).expect("cert"), before, "overwritten");

    let message = simple("generated", "certificate");
    let dc = dovecot(&message);
    let gate = config(&cert, &key, dc.imap_port, unused_smtp()).start();
    let imaps = logged_addr(&gate, "imaps listening on");
    imap_session(imaps.port(), "implicit", &cert, &message);
}
