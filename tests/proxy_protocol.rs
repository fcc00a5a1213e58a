//! Listeners behind a proxy (`[server.proxy_protocol]`): a real HAProxy (`send-proxy-v2` and
//! `send-proxy`) in front of mailgate, a real Dovecot behind it, and clients bound to 127.0.0.2
//! and 127.0.0.3 so that each has an address of its own. Hand-written headers stand in for a
//! proxy where the test needs a client address HAProxy cannot have (a remote one) or a broken
//! header. All traffic stays on 127.0.0.0/8.
//!
//! Run: `cargo test --test proxy_protocol`

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use support::config::metrics_toml;
use support::haproxy::{Frontend, Haproxy};
use support::imap_client::quote;
use support::proc::{closed_without_a_word, connect_from, poll};
use support::scrape::{fetch, Scrape};
use support::tls_client::{logged_addr, Conn};
use support::{Account, Dovecot, DovecotOpts, GateConfig, Mailgate, Pki, Upstream};

const EMAIL: &str = "ola@example.no";
const LOCAL_PW: &str = "Proxy-pw-5e21";
const UPSTREAM_USER: &str = "ola";
const UPSTREAM_PW: &str = "Upstream-pw-90ab";
const REJECTED: &str = "mailgate_proxy_header_rejected_total";
/// `header_timeout_ms` of these tests: short, so a slow header is closed quickly.
const HEADER_TIMEOUT_MS: u64 = 400;

/// Dovecot, and mailgate with one account on it, throttling after 2 distinct wrong passwords
/// (locked out at 4), its `[server.proxy_protocol]` table given by `proxy` (with metrics).
struct Setup {
    mailgate: Mailgate,
    _dovecot: Dovecot,
}

fn setup(proxy: &str, tls: Option<&Pki>) -> Setup {
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user(UPSTREAM_USER, UPSTREAM_PW);
    let mut config = GateConfig::new()
        .limits(&[
            ("auth_failure_delay_ms", 0),
            ("max_auth_failures", 20),
            ("login_throttle_threshold", 2),
            ("login_lockout_secs", 3600),
        ])
        .account(
            Account::password(EMAIL, LOCAL_PW)
                .imap(
                    Upstream::plain(format!("127.0.0.1:{}", dovecot.imap_port))
                        .login(UPSTREAM_USER, UPSTREAM_PW),
                )
                .smtp(Upstream::plain("127.0.0.1:9")),
        );
    if let Some(pki) = tls {
        config = config
            .tls(&pki.server.cert, &pki.server.key)
            .server("imaps_listen", "127.0.0.1:0");
    }
    let base = config.to_toml();
    let mailgate = Mailgate::start_with_metrics_env(
        |listen| {
            format!(
                "{base}\n[server.proxy_protocol]\n{proxy}\n{}",
                metrics_toml(listen, None)
            )
        },
        &[],
    );
    Setup {
        mailgate,
        _dovecot: dovecot,
    }
}

/// The table for `listener` behind a proxy that connects from `trusted`.
fn behind(listener: &str, trusted: &str) -> String {
    format!("listeners = [\"{listener}\"]\ntrusted = [\"{trusted}\"]\nheader_timeout_ms = {HEADER_TIMEOUT_MS}\n")
}

/// A plaintext line connection from `source` to `target`.
fn conn_from(source: [u8; 4], target: SocketAddr) -> Conn {
    Conn::plain_over(connect_from(source, target))
}

/// Reads the greeting, logs in; the tagged answer.
fn login(c: &mut Conn, tag: &str, password: &str) -> String {
    c.send(format!("{tag} LOGIN {} {}\r\n", quote(EMAIL), quote(password)).as_bytes())
        .expect("send LOGIN");
    c.until(&format!("{tag} ")).pop().unwrap_or_default()
}

/// The greeting of a new IMAP connection through `addr` from `source`.
fn greeted(source: [u8; 4], addr: SocketAddr) -> Conn {
    let mut c = conn_from(source, addr);
    let greeting = c.line().expect("greeting");
    assert!(greeting.starts_with("* OK"), "{greeting:?}");
    c
}

fn scrape(gate: &Mailgate) -> Scrape {
    let addr = gate.metrics_addr.expect("metrics");
    Scrape::parse(fetch(addr).expect("scrape")).expect("parse scrape")
}

/// A version 2 PROXY header for a TCP/IPv4 client `source` that connected to `destination`.
fn v2_header(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (source, destination) else {
        panic!("IPv4 only");
    };
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&s.ip().octets());
    h.extend_from_slice(&d.ip().octets());
    h.extend_from_slice(&s.port().to_be_bytes());
    h.extend_from_slice(&d.port().to_be_bytes());
    h
}

/// Through HAProxy's `send-proxy-v2` from 127.0.0.2 and its `send-proxy` from 127.0.0.3, both
/// clients log in to Dovecot (a loopback client behind a loopback proxy is local: LOGIN in
/// clear is fine) and mailgate logs each with its own address, never HAProxy's 127.0.0.1.
#[test]
fn clients_through_haproxy_are_seen_with_their_own_addresses() {
    let s = setup(&behind("imap", "127.0.0.1/32"), None);
    let gate = s.mailgate.imap_addr;
    let haproxy = Haproxy::start(&[
        Frontend::new(gate, "send-proxy-v2"),
        Frontend::new(gate, "send-proxy"),
    ]);
    for (source, front) in [([127, 0, 0, 2], 0), ([127, 0, 0, 3], 1)] {
        let mut c = greeted(source, haproxy.addrs[front]);
        assert!(login(&mut c, "a1", LOCAL_PW).starts_with("a1 OK"));
        // Dovecot answers: the session is relayed.
        c.send(b"a2 SELECT INBOX\r\n").expect("send");
        let select = c.until("a2 ");
        assert!(select.last().unwrap().starts_with("a2 OK"), "{select:?}");
        assert!(select.iter().any(|l| l.contains("EXISTS")), "{select:?}");
        c.send(b"a3 LOGOUT\r\n").expect("send");
        c.until("a3 ");
    }
    for peer in ["peer=127.0.0.2:", "peer=127.0.0.3:"] {
        s.mailgate.logged(&[peer, "session started"]);
        s.mailgate.logged(&[peer, "account="]);
    }
    let log = s.mailgate.log();
    assert!(
        !log.contains("peer=127.0.0.1:"),
        "HAProxy's address was logged:\n{log}"
    );
    let metrics = scrape(&s.mailgate);
    metrics.expect_only_nonzero(REJECTED, &[]);
}

/// Failed logins count against the client's own address: 127.0.0.2 locks itself out through
/// HAProxy, 127.0.0.3 through the same HAProxy still logs in.
#[test]
fn clients_behind_one_proxy_are_throttled_apart() {
    let s = setup(&behind("imap", "127.0.0.1/32"), None);
    let haproxy = Haproxy::start(&[Frontend::new(s.mailgate.imap_addr, "send-proxy-v2")]);
    let front = haproxy.addrs[0];
    let mut guesser = greeted([127, 0, 0, 2], front);
    for i in 0..4 {
        let r = login(&mut guesser, &format!("w{i}"), &format!("wrong-{i}"));
        assert!(
            r.starts_with(&format!("w{i} NO [AUTHENTICATIONFAILED]")),
            "{r}"
        );
    }
    let r = login(&mut guesser, "r1", LOCAL_PW);
    assert!(
        r.starts_with("r1 NO [UNAVAILABLE] Too many failed logins"),
        "{r}"
    );
    let mut other = greeted([127, 0, 0, 3], front);
    let r = login(&mut other, "o1", LOCAL_PW);
    assert!(r.starts_with("o1 OK"), "{r}");
    let failed = s
        .mailgate
        .logged(&["local login failed", "peer=127.0.0.2:"]);
    assert!(!failed.contains("127.0.0.1:"), "{failed}");
}

/// A client the header names as remote (192.0.2.7) is not local, though the proxy's hop is
/// loopback: LOGIN in clear is refused as for any remote client without TLS. The same
/// listener through HAProxy from 127.0.0.1 is local and logs in.
#[test]
fn a_client_the_header_names_remote_is_not_local() {
    let s = setup(&behind("imap", "127.0.0.1/32"), None);
    let gate = s.mailgate.imap_addr;
    let mut raw = TcpStream::connect(gate).expect("connect");
    // The first command in the same write as the header: it must reach the session whole.
    let mut bytes = v2_header(
        "192.0.2.7:40007".parse().unwrap(),
        "127.0.0.1:143".parse().unwrap(),
    );
    bytes.extend_from_slice(b"a0 NOOP\r\n");
    raw.write_all(&bytes).expect("header");
    let mut c = Conn::plain_over(raw);
    assert!(c.line().expect("greeting").starts_with("* OK"));
    assert_eq!(c.until("a0 ").pop().unwrap(), "a0 OK NOOP completed.\r\n");
    let r = login(&mut c, "a1", LOCAL_PW);
    assert_eq!(
        r,
        "a1 NO [PRIVACYREQUIRED] Use STARTTLS first: this listener does not take passwords in clear.\r\n"
    );
    s.mailgate
        .logged(&["peer=192.0.2.7:40007", "session started"]);

    let haproxy = Haproxy::start(&[Frontend::new(gate, "send-proxy-v2")]);
    let mut local = greeted([127, 0, 0, 1], haproxy.addrs[0]);
    assert!(login(&mut local, "b1", LOCAL_PW).starts_with("b1 OK"));
}

/// Only the trusted networks may send a header: with `trusted = 127.0.0.9/32`, a valid
/// header from 127.0.0.1 (by hand, or HAProxy's) is closed without a greeting.
#[test]
fn a_header_from_an_untrusted_source_is_refused() {
    let s = setup(&behind("imap", "127.0.0.9/32"), None);
    let gate = s.mailgate.imap_addr;
    let mut raw = TcpStream::connect(gate).expect("connect");
    raw.write_all(b"PROXY TCP4 127.0.0.2 127.0.0.1 40000 143\r\n")
        .expect("header");
    closed_without_a_word(raw);
    let haproxy = Haproxy::start(&[Frontend::new(gate, "send-proxy-v2")]);
    let through = connect_from([127, 0, 0, 2], haproxy.addrs[0]);
    closed_without_a_word(through);
    let line = s
        .mailgate
        .logged(&["reason=\"untrusted\"", "peer=127.0.0.1:"]);
    assert!(line.contains("listener=\"imap\""), "{line}");
    assert!(!s.mailgate.log().contains("session started"));
    poll(Duration::from_secs(30), Duration::from_millis(50), || {
        (scrape(&s.mailgate).value(REJECTED, &[("reason", "untrusted")]) == 2.0).then_some(())
    })
    .unwrap_or_else(|| panic!("{}", scrape(&s.mailgate).body));
}

/// From a trusted source, a connection without a valid header is closed without a greeting:
/// none at all, plain IMAP, garbage, a header too long, half a header that stops (past
/// `header_timeout_ms`). A session through HAProxy meanwhile is unaffected; mailgate runs on.
#[test]
fn connections_without_a_valid_header_are_closed() {
    let mut s = setup(&behind("imap", "127.0.0.0/8"), None);
    let gate = s.mailgate.imap_addr;
    let haproxy = Haproxy::start(&[Frontend::new(gate, "send-proxy-v2")]);
    let mut bystander = greeted([127, 0, 0, 3], haproxy.addrs[0]);
    assert!(login(&mut bystander, "a1", LOCAL_PW).starts_with("a1 OK"));

    let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 200], b"\r\n"].concat();
    let mut v2_huge = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff".to_vec();
    v2_huge.extend_from_slice(&[0u8; 64]);
    let cases: [(&[u8], &str); 6] = [
        (b"", "timeout"),
        (b"a1 LOGIN ola pw\r\n", "not_proxy"),
        (b"PROXY TCP4 1.2.3.4 nonsense\r\n", "malformed"),
        (&long, "too_long"),
        (&v2_huge, "too_long"),
        (b"PROXY TCP4 127.0.0.2 127.0.0", "timeout"),
    ];
    for (bytes, _) in cases {
        let mut raw = connect_from([127, 0, 0, 2], gate);
        raw.write_all(bytes).expect("write");
        closed_without_a_word(raw);
    }
    for reason in ["timeout", "not_proxy", "malformed", "too_long"] {
        s.mailgate
            .logged(&["peer=127.0.0.2:", &format!("reason=\"{reason}\"")]);
    }
    let want = |reason: &str| cases.iter().filter(|(_, r)| *r == reason).count() as f64;
    poll(Duration::from_secs(30), Duration::from_millis(50), || {
        let m = scrape(&s.mailgate);
        ["timeout", "not_proxy", "malformed", "too_long"]
            .iter()
            .all(|r| m.value(REJECTED, &[("reason", r)]) == want(r))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("{}", scrape(&s.mailgate).body));

    bystander.send(b"a2 SELECT INBOX\r\n").expect("send");
    assert!(bystander.until("a2 ").last().unwrap().starts_with("a2 OK"));
    assert!(s.mailgate.is_running());
    assert!(!s.mailgate.log().contains("panicked"));
}

/// The implicit-TLS listener reads the header before the handshake (where HAProxy sends it);
/// HAProxy's health checks (`check`: a LOCAL header) are served as the proxy's own
/// connections, not refused.
#[test]
fn implicit_tls_behind_haproxy_and_its_health_checks() {
    let pki = Pki::new();
    let s = setup(&behind("imaps", "127.0.0.1"), Some(&pki));
    let imaps = logged_addr(&s.mailgate, "imaps listening on");
    let haproxy = Haproxy::start(&[Frontend::new(imaps, "send-proxy-v2 check inter 300ms")]);
    let mut c = Conn::implicit_over(connect_from([127, 0, 0, 2], haproxy.addrs[0]), &pki.ca);
    assert!(c.line().expect("greeting").starts_with("* OK"));
    assert!(login(&mut c, "a1", LOCAL_PW).starts_with("a1 OK"));
    s.mailgate.logged(&["peer=127.0.0.2:", "account="]);
    // Two checks at least: sessions from HAProxy's own address, none refused.
    poll(Duration::from_secs(30), Duration::from_millis(50), || {
        let checks = s
            .mailgate
            .lines()
            .iter()
            .filter(|l| l.contains("peer=127.0.0.1:") && l.contains("session started"))
            .count();
        (checks >= 2).then_some(())
    })
    .unwrap_or_else(|| panic!("no health checks seen:\n{}", s.mailgate.log()));
    let log = s.mailgate.log();
    assert!(
        !log.contains("connection closed before its session"),
        "{log}"
    );
    // The plain IMAP listener is not behind the proxy: a direct client is served as before.
    let mut direct = Conn::plain(s.mailgate.imap_addr);
    assert!(direct.line().expect("greeting").starts_with("* OK"));
}

/// SMTP behind `send-proxy` (v1): a loopback client through HAProxy is offered AUTH and logs
/// in; a remote client named by a hand-written v1 header is not offered AUTH in clear and is
/// refused it (538), as a remote client without TLS.
#[test]
fn smtp_behind_a_v1_proxy() {
    let s = setup(&behind("smtp", "127.0.0.1"), None);
    let smtp = s.mailgate.smtp_addr;
    let auth = format!(
        "AUTH PLAIN {}\r\n",
        support::b64(format!("\0{EMAIL}\0{LOCAL_PW}").as_bytes())
    );
    let haproxy = Haproxy::start(&[Frontend::new(smtp, "send-proxy")]);
    let mut c = conn_from([127, 0, 0, 3], haproxy.addrs[0]);
    assert!(c.line().expect("greeting").starts_with("220 "));
    c.send(b"EHLO client.test\r\n").expect("send");
    let ehlo = c.until("250 ");
    assert!(
        ehlo.iter().any(|l| l.contains("AUTH PLAIN LOGIN")),
        "{ehlo:?}"
    );
    c.send(auth.as_bytes()).expect("send");
    let r = c.line().expect("reply");
    assert!(r.starts_with("235 "), "{r}");
    s.mailgate.logged(&["peer=127.0.0.3:", "proto=\"smtp\""]);

    let mut raw = TcpStream::connect(smtp).expect("connect");
    raw.write_all(b"PROXY TCP4 192.0.2.7 127.0.0.1 40007 587\r\n")
        .expect("header");
    let mut c = Conn::plain_over(raw);
    assert!(c.line().expect("greeting").starts_with("220 "));
    c.send(b"EHLO client.test\r\n").expect("send");
    let ehlo = c.until("250 ");
    assert!(!ehlo.iter().any(|l| l.contains("AUTH")), "{ehlo:?}");
    c.send(auth.as_bytes()).expect("send");
    let r = c.line().expect("reply");
    assert!(r.starts_with("538 5.7.11 "), "{r}");
    s.mailgate
        .logged(&["peer=192.0.2.7:40007", "session started"]);
}
