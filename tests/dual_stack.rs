//! Login throttling on a dual-stack listener (`[::]`): IPv4 clients arrive as
//! `::ffff:a.b.c.d` and must be keyed by their IPv4 address, not all by the /64 `::`, or one
//! guesser locks a login name out for every IPv4 client. Through the real binary, over implicit
//! TLS (a listener not on loopback needs `[server.tls]`), with clients bound to 127.0.0.2 and
//! 127.0.0.1. All traffic stays on loopback.
//!
//! Run: `cargo test --test dual_stack`

mod support;

use std::net::SocketAddr;
use support::proc::connect_from;
use support::tls_client::{logged_addr, Conn};
use support::{b64, Account, GateConfig, Pki, Upstream};

const LOCAL_PW: &str = "Dual-stack-pw-81d3";
const USER: &str = "ola@example.no";

/// One SMTP reply, all its lines.
fn reply(c: &mut Conn) -> String {
    let mut all = String::new();
    for _ in 0..100 {
        let line = c.line().unwrap_or_default();
        all.push_str(&line);
        if line.is_empty() || line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    }
    all
}

fn cmd(c: &mut Conn, line: &str) -> String {
    c.send(format!("{line}\r\n").as_bytes()).expect("write");
    reply(c)
}

/// One SMTPS session from `source`: EHLO and AUTH PLAIN; the AUTH reply.
fn auth_from(source: [u8; 4], port: u16, ca: &std::path::Path, password: &str) -> String {
    let mut c = Conn::implicit_over(
        connect_from(source, SocketAddr::from(([127, 0, 0, 1], port))),
        ca,
    );
    let greeting = reply(&mut c);
    assert!(greeting.starts_with("220"), "{greeting}");
    let ehlo = cmd(&mut c, "EHLO client.test");
    assert!(ehlo.starts_with("250"), "{ehlo}");
    let token = b64(format!("\0{USER}\0{password}").as_bytes());
    cmd(&mut c, &format!("AUTH PLAIN {token}"))
}

/// 127.0.0.2 locks itself out of `ola@` with 4 distinct wrong passwords (threshold 2); the right
/// password from 127.0.0.1 still logs in on the same `[::]` listener, while 127.0.0.2 is
/// refused with the time left.
#[test]
fn ipv4_clients_of_a_dual_stack_listener_are_throttled_apart() {
    let pki = Pki::new();
    let mut gate = GateConfig::new()
        .server("smtps_listen", "[::]:0")
        .limits(&[
            ("auth_failure_delay_ms", 0),
            ("login_throttle_threshold", 2),
            ("login_lockout_secs", 3600),
        ])
        .tls(&pki.server.cert, &pki.server.key)
        .account(
            Account::password(USER, LOCAL_PW)
                .imap(Upstream::plain("127.0.0.1:9").login("u", "p"))
                .smtp(Upstream::plain("127.0.0.1:9")),
        )
        .start();
    let listen = logged_addr(&gate, "smtps listening on");
    assert!(listen.ip().is_unspecified() && listen.is_ipv6(), "{listen}");
    let port = listen.port();
    for i in 0..4 {
        let r = auth_from([127, 0, 0, 2], port, &pki.ca, &format!("wrong-{i}"));
        assert!(r.starts_with("535 "), "{r}");
    }
    // Another IPv4 client first: before, it shared the guesser's key and was refused.
    let r = auth_from([127, 0, 0, 1], port, &pki.ca, LOCAL_PW);
    assert!(r.starts_with("235 "), "{r}");
    let r = auth_from([127, 0, 0, 2], port, &pki.ca, LOCAL_PW);
    assert!(
        r.starts_with("421 4.7.0 Too many failed logins, try again in "),
        "{r}"
    );
    let logs = gate.stop();
    assert!(!logs.iter().any(|l| l.contains(LOCAL_PW)));
}
