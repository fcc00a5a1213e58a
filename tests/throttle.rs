//! Login throttling across connections (`login_throttle_threshold`,
//! `login_throttle_max_delay_ms`, `login_lockout_secs`), through the real binary with a real
//! Dovecot upstream for the logins that succeed.
//!
//! The growing delay is checked as the value mailgate computed and logged (`delay_ms=`), never
//! by measuring time. Every loop is bounded; all traffic stays on 127.0.0.1.
//!
//! Run: `cargo test --test throttle`

mod support;

use std::time::Duration;
use support::imap_client::{quote, tagged_status};
use support::mailgate::{cached_hash, metrics_toml, toml_str};
use support::scrape::{fetch, Scrape, LOGINS};
use support::smtp_client::Raw;
use support::{b64, Dovecot, DovecotOpts, ImapClient, Mailgate};

const LOCAL_PW: &str = "Throttle-pw-93d1";
const UPSTREAM_USER: &str = "ola";
const UPSTREAM_PW: &str = "Upstream-pw-1f0e";
/// Locked out after 2 × 2 distinct wrong passwords.
const THRESHOLD: u32 = 2;

struct Gate {
    _dovecot: Dovecot,
    mailgate: Mailgate,
}

/// Dovecot plus mailgate with accounts `ola@`, `kari@`, `per@example.no` (one Dovecot user),
/// threshold 2, delays from 100 ms doubling to at most 400 ms, a lock-out longer than any test.
fn gate() -> Gate {
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user(UPSTREAM_USER, UPSTREAM_PW);
    let mut accounts = String::new();
    for name in ["ola", "kari", "per"] {
        accounts.push_str(&format!(
            "\n[[account]]\nemail = \"{name}@example.no\"\nlocal_password_hash = {}\n\
             [account.imap]\nserver = \"127.0.0.1:{}\"\ntls = \"none\"\nallow_plaintext = true\n\
             username = \"{UPSTREAM_USER}\"\npassword = \"{UPSTREAM_PW}\"\n\
             [account.smtp]\nserver = \"127.0.0.1:9\"\ntls = \"none\"\nallow_plaintext = true\n",
            toml_str(&cached_hash(LOCAL_PW)),
            dovecot.imap_port
        ));
    }
    let config = format!(
        "[server]\nimap_listen = \"127.0.0.1:0\"\nsmtp_listen = \"127.0.0.1:0\"\n\
         auth_failure_delay_ms = 0\nmax_auth_failures = 20\n\
         login_throttle_threshold = {THRESHOLD}\nlogin_throttle_max_delay_ms = 400\nlogin_lockout_secs = 3600\n{accounts}"
    );
    let mailgate =
        Mailgate::start_with_metrics(|listen| format!("{config}{}", metrics_toml(listen, None)));
    Gate {
        _dovecot: dovecot,
        mailgate,
    }
}

fn login(c: &mut ImapClient, tag: &str, user: &str, password: &str) -> String {
    let resp = c.command(tag, &format!("LOGIN {} {}", quote(user), quote(password)));
    tagged_status(&resp, tag)
}

/// `(delay_ms, throttle_failures, locked)` of each "local login failed" line for `user`, once
/// at least `count` of them have arrived (or after 10 s): mailgate may write a line after
/// the client already has its answer, and the test reads mailgate's output on another thread,
/// so the newest line can be a moment late.
fn failures_logged(gate: &Mailgate, user: &str, count: usize) -> Vec<(u64, u64, bool)> {
    let mut logged = Vec::new();
    support::proc::poll(Duration::from_secs(10), Duration::from_millis(10), || {
        logged = failures_in_log(gate, user);
        (logged.len() >= count).then_some(())
    });
    logged
}

/// The `failures_logged` lines found in mailgate's output so far.
fn failures_in_log(gate: &Mailgate, user: &str) -> Vec<(u64, u64, bool)> {
    let field = |line: &str, key: &str| -> String {
        line.split_whitespace()
            .find_map(|t| t.strip_prefix(key))
            .unwrap_or_default()
            .trim_matches('"')
            .to_string()
    };
    gate.lines()
        .iter()
        .filter(|l| l.contains("local login failed") && l.contains(&format!("login={user}")))
        .map(|l| {
            (
                field(l, "delay_ms=").parse().unwrap_or(u64::MAX),
                field(l, "throttle_failures=").parse().unwrap_or(u64::MAX),
                field(l, "locked=") == "true",
            )
        })
        .collect()
}

/// Distinct wrong passwords: no extra delay up to the threshold, then 200 and 400 ms, and at
/// twice the threshold a lock-out: the right password from the same client is then refused
/// unchecked (else guessing would go on at full speed), on new connections too, and SMTP AUTH
/// gets 421 and a closed connection. Another account logs in as usual; the `throttled` results
/// are counted.
#[test]
fn distinct_wrong_passwords_lock_out_that_login_only() {
    let mut g = gate();
    let gate = &g.mailgate;
    let mut c = gate.connect();
    for i in 0..2 * THRESHOLD {
        let status = login(
            &mut c,
            &format!("w{i}"),
            "ola@example.no",
            &format!("wrong-{i}"),
        );
        assert_eq!(status, "NO [AUTHENTICATIONFAILED] Authentication failed.");
    }
    assert_eq!(
        failures_logged(gate, "ola@example.no", 4),
        vec![
            (0, 1, false),
            (0, 2, false),
            (200, 3, false),
            (400, 4, true)
        ],
        "{}",
        gate.log()
    );
    let refused = "NO [UNAVAILABLE] Too many failed logins, try again later.";
    assert_eq!(login(&mut c, "r1", "ola@example.no", LOCAL_PW), refused);
    let mut fresh = gate.connect();
    assert_eq!(login(&mut fresh, "r2", "OLA@example.no", LOCAL_PW), refused);
    // Another account from the same client is not affected.
    let mut other = gate.connect();
    let status = login(&mut other, "k1", "kari@example.no", LOCAL_PW);
    assert!(status.starts_with("OK [CAPABILITY"), "{status}");
    other.ok("k2", "LOGOUT");

    let (mut s, _) = Raw::connect(gate.smtp_addr);
    let reply = s.login("ola@example.no", LOCAL_PW);
    assert!(
        reply.starts_with("421 4.7.0 Too many failed logins"),
        "{reply}"
    );
    assert!(s.closed(), "the SMTP connection stayed open after 421");

    let metrics = gate.metrics_addr.expect("metrics");
    let scrape = Scrape::parse(fetch(metrics).expect("scrape")).expect("parse");
    scrape.expect(
        LOGINS,
        &[("protocol", "imap"), ("result", "throttled")],
        2.0,
    );
    scrape.expect(
        LOGINS,
        &[("protocol", "smtp"), ("result", "throttled")],
        1.0,
    );
    scrape.expect(
        LOGINS,
        &[("protocol", "imap"), ("result", "bad_password")],
        4.0,
    );
    drop((c, fresh));
    let plain = b64(format!("\0ola@example.no\0{LOCAL_PW}").as_bytes());
    g.mailgate
        .assert_no_secrets(&[LOCAL_PW, UPSTREAM_PW, &plain]);
}

/// A client configured with a wrong password repeats the same one: it is delayed like any
/// failure but never counted twice, so it never locks the account out for everyone (as in
/// Dovecot's auth penalty). A success clears the client's count: the next failure starts at
/// one, without extra delay.
#[test]
fn repeated_password_never_locks_and_success_resets() {
    let g = gate();
    let gate = &g.mailgate;
    let mut c = gate.connect();
    for i in 0..3 * THRESHOLD {
        let status = login(&mut c, &format!("s{i}"), "per@example.no", "same-wrong");
        assert_eq!(status, "NO [AUTHENTICATIONFAILED] Authentication failed.");
    }
    let logged = failures_logged(gate, "per@example.no", 6);
    assert_eq!(logged.len(), 6, "{}", gate.log());
    assert!(logged.iter().all(|&l| l == (0, 1, false)), "{logged:?}");
    // Two more distinct ones pass the threshold (a delay), then the right password works.
    for i in 0..2 {
        login(
            &mut c,
            &format!("d{i}"),
            "per@example.no",
            &format!("other-{i}"),
        );
    }
    assert_eq!(
        failures_logged(gate, "per@example.no", 8).last(),
        Some(&(200, 3, false))
    );
    let status = login(&mut c, "ok1", "per@example.no", LOCAL_PW);
    assert!(status.starts_with("OK [CAPABILITY"), "{status}");
    c.ok("ok2", "LOGOUT");
    let mut c = gate.connect();
    login(&mut c, "n1", "per@example.no", "after-success");
    assert_eq!(
        failures_logged(gate, "per@example.no", 9).last(),
        Some(&(0, 1, false))
    );
}
