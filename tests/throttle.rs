//! Login throttling across connections (`login_throttle_threshold`,
//! `login_throttle_max_delay_ms`, `login_lockout_secs`), through the real binary with a real
//! Dovecot upstream for the logins that succeed, and `mailgate throttle list|clear` on the
//! running process.
//!
//! The growing delay is checked as the value mailgate computed and logged (`delay_ms=`), never
//! by measuring time. Every loop is bounded; all traffic stays on 127.0.0.1.
//!
//! Run: `cargo test --test throttle`

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::Duration;
use support::imap_client::{quote, tagged_status};
use support::mailgate::run;
use support::scrape::{fetch, Scrape, LOGINS};
use support::smtp_client::Raw;
use support::{
    b64, Account, Dovecot, DovecotOpts, Gate, GateConfig, ImapClient, Mailgate, Upstream,
};

const LOCAL_PW: &str = "Throttle-pw-93d1";
const UPSTREAM_USER: &str = "ola";
const UPSTREAM_PW: &str = "Upstream-pw-1f0e";
/// Locked out after 2 × 2 distinct wrong passwords.
const THRESHOLD: u32 = 2;
/// `login_lockout_secs`.
const LOCKOUT_SECS: u64 = 3600;
/// What a locked-out IMAP login hears, before the time left.
const IMAP_REFUSED: &str = "NO [UNAVAILABLE] Too many failed logins, try again in ";
/// What a locked-out SMTP AUTH hears, before the time left.
const SMTP_REFUSED: &str = "421 4.7.0 Too many failed logins, try again in ";

/// Dovecot plus mailgate with accounts `ola@`, `kari@`, `per@example.no` (one Dovecot user),
/// threshold 2, delays from 100 ms doubling to at most 400 ms, a lock-out longer than any test.
fn gate() -> Gate {
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user(UPSTREAM_USER, UPSTREAM_PW);
    let accounts = ["ola", "kari", "per"].map(|name| {
        Account::password(&format!("{name}@example.no"), LOCAL_PW)
            .imap(
                Upstream::plain(format!("127.0.0.1:{}", dovecot.imap_port))
                    .login(UPSTREAM_USER, UPSTREAM_PW),
            )
            .smtp(Upstream::plain("127.0.0.1:9"))
    });
    let config = GateConfig::new()
        .limits(&[
            ("auth_failure_delay_ms", 0),
            ("max_auth_failures", 20),
            ("login_throttle_threshold", THRESHOLD.into()),
            ("login_throttle_max_delay_ms", 400),
            ("login_lockout_secs", LOCKOUT_SECS),
        ])
        .accounts(accounts)
        .metrics(None);
    Gate::start(dovecot, &config)
}

/// The time left as mailgate words it: within the lock-out, which began during this test (so
/// at least an hour minus a few minutes is left).
fn assert_wait_text(text: &str) {
    let ok = text == "1 h 0 min"
        || text
            .strip_prefix("59 min ")
            .or_else(|| text.strip_prefix("58 min "))
            .and_then(|s| s.strip_suffix(" s"))
            .and_then(|s| s.parse::<u8>().ok())
            .is_some_and(|s| s < 60);
    assert!(ok, "time left {text:?} for a {LOCKOUT_SECS} s lock-out");
}

fn assert_imap_refused(status: &str) {
    let wait = status
        .strip_prefix(IMAP_REFUSED)
        .and_then(|s| s.strip_suffix('.'))
        .unwrap_or_else(|| panic!("not a lock-out refusal: {status}"));
    assert_wait_text(wait);
}

fn assert_smtp_refused(reply: &str) {
    let wait = reply
        .strip_prefix(SMTP_REFUSED)
        .and_then(|s| s.strip_suffix("; closing the connection\r\n"))
        .unwrap_or_else(|| panic!("not a lock-out refusal: {reply:?}"));
    assert_wait_text(wait);
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
    assert_imap_refused(&login(&mut c, "r1", "ola@example.no", LOCAL_PW));
    let mut fresh = gate.connect();
    assert_imap_refused(&login(&mut fresh, "r2", "OLA@example.no", LOCAL_PW));
    // Another account from the same client is not affected.
    let mut other = gate.connect();
    let status = login(&mut other, "k1", "kari@example.no", LOCAL_PW);
    assert!(status.starts_with("OK [CAPABILITY"), "{status}");
    other.ok("k2", "LOGOUT");

    let (mut s, _) = Raw::connect(gate.smtp_addr);
    let reply = s.login("ola@example.no", LOCAL_PW);
    assert_smtp_refused(&reply);
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

/// Log lines of mailgate containing `what` and `login=USER`.
fn count_logged(gate: &Mailgate, what: &str, user: &str) -> usize {
    let login = format!("login={user}");
    gate.lines()
        .iter()
        .filter(|l| l.contains(what) && l.split_whitespace().any(|w| w == login))
        .count()
}

/// Parallel connections from one IP get no more guesses than serial ones: 60 SMTP clients
/// send AUTH PLAIN for one login name with 60 distinct wrong passwords at the same moment.
/// Exactly 2 × threshold of them are verified (and fail); every other one is refused as
/// locked out without its password being checked, and afterwards the right password is
/// refused with the time left, over SMTP and IMAP.
#[test]
fn parallel_guesses_get_no_more_than_serial_ones() {
    const CLIENTS: usize = 60;
    let g = gate();
    let gate = &g.mailgate;
    let user = "kari@example.no";
    let ready = Arc::new(Barrier::new(CLIENTS));
    let addr = gate.smtp_addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let ready = ready.clone();
            std::thread::spawn(move || {
                let (mut s, _) = Raw::connect(addr);
                let ehlo = s.cmd("EHLO client.test");
                assert!(ehlo.starts_with("250"), "{ehlo}");
                let token = b64(format!("\0{user}\0guess-{i}").as_bytes());
                ready.wait();
                s.cmd(&format!("AUTH PLAIN {token}"))
            })
        })
        .collect();
    let replies: Vec<String> = clients
        .into_iter()
        .map(|c| c.join().expect("client thread"))
        .collect();
    let failed = replies.iter().filter(|r| r.starts_with("535 ")).count();
    let refused = replies
        .iter()
        .filter(|r| r.starts_with(SMTP_REFUSED))
        .count();
    let limit = 2 * THRESHOLD as usize;
    assert_eq!(
        (failed, refused),
        (limit, CLIENTS - limit),
        "replies (distinct): {:?}",
        replies.iter().collect::<std::collections::BTreeSet<_>>()
    );
    // The log agrees: as many verifications as wrong answers, the rest refused unchecked.
    support::proc::poll(Duration::from_secs(10), Duration::from_millis(10), || {
        let refused = count_logged(gate, "login refused: too many failed logins", user);
        let failed = count_logged(gate, "local login failed", user);
        (refused >= CLIENTS - limit && failed >= limit).then_some(())
    });
    assert_eq!(
        count_logged(gate, "local login failed", user),
        limit,
        "{}",
        gate.log()
    );
    assert_eq!(
        count_logged(gate, "login refused: too many failed logins", user),
        CLIENTS - limit
    );
    // The right password now: refused, with the time left.
    let (mut s, _) = Raw::connect(gate.smtp_addr);
    assert_smtp_refused(&s.login(user, LOCAL_PW));
    let mut c = gate.connect();
    assert_imap_refused(&login(&mut c, "r1", user, LOCAL_PW));
    assert_eq!(count_logged(gate, "local login failed", user), limit);
}

/// The control socket of a running mailgate: `state_dir/control.sock`.
fn control_socket(gate: &Mailgate) -> PathBuf {
    gate.config_path
        .parent()
        .expect("config folder")
        .join("state/control.sock")
}

fn throttle_cli(gate: &Mailgate, args: &[&str]) -> (bool, String) {
    let config = gate.config_path.to_str().expect("utf-8 path");
    let mut all = vec!["throttle"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--config", config]);
    let out = run(&all, None);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.success(),
        text + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A request written straight to the control socket; the reply up to the server's close.
fn raw_request(gate: &Mailgate, bytes: &[u8]) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(control_socket(gate)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).expect("write");
    let mut reply = String::new();
    s.take(64 * 1024).read_to_string(&mut reply).expect("read");
    reply
}

/// A lock-out is no black box: the refusal says how long it lasts, `mailgate throttle list`
/// shows it with the time left, and `mailgate throttle clear EMAIL` lifts it (logged), after
/// which the right password works at once. The socket is the owner's only (0600) and answers
/// a bad request with an error line within bounds.
#[test]
fn lock_out_is_listed_and_cleared_through_the_control_socket() {
    let mut g = gate();
    let gate = &g.mailgate;
    let user = "per@example.no";
    let mode = std::fs::metadata(control_socket(gate))
        .expect("control socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        throttle_cli(gate, &["list"]),
        (true, "no lock-outs\n".into())
    );

    let mut c = gate.connect();
    for i in 0..2 * THRESHOLD {
        login(&mut c, &format!("w{i}"), user, &format!("wrong-{i}"));
    }
    assert_imap_refused(&login(&mut c, "r1", user, LOCAL_PW));

    let (ok, listed) = throttle_cli(gate, &["list"]);
    assert!(ok, "{listed}");
    let fields: Vec<&str> = listed.trim_end().split('\t').collect();
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert_eq!(fields[..3], [user, "127.0.0.1", "4 failures"], "{listed}");
    let wait = fields[3]
        .strip_prefix("locked for ")
        .and_then(|w| w.strip_suffix(" more"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert_wait_text(wait);

    // Another name is not touched by clearing this one.
    assert_eq!(
        throttle_cli(gate, &["clear", "nobody@example.no"]),
        (
            true,
            "cleared the failed-login counts of nobody@example.no; 0 lock-out(s) lifted\n".into()
        )
    );
    assert_imap_refused(&login(&mut c, "r2", user, LOCAL_PW));
    assert_eq!(
        throttle_cli(gate, &["clear", "PER@example.no"]),
        (
            true,
            "cleared the failed-login counts of PER@example.no; 1 lock-out(s) lifted\n".into()
        )
    );
    assert!(gate.lines().iter().any(
        |l| l.contains("throttle cleared through the control socket")
            && l.contains("login=PER@example.no")
            && l.contains("lifted=1")
    ));
    let status = login(&mut c, "ok1", user, LOCAL_PW);
    assert!(status.starts_with("OK [CAPABILITY"), "{status}");
    c.ok("ok2", "LOGOUT");
    assert_eq!(
        throttle_cli(gate, &["list"]),
        (true, "no lock-outs\n".into())
    );

    // Bad requests: an error line, and the connection ends.
    assert_eq!(
        raw_request(gate, b"bogus\n"),
        "error: unknown request; use `list`, `clear` or `clear EMAIL`\n"
    );
    assert_eq!(
        raw_request(gate, &[b'x'; 600]),
        "error: send one request line of at most 512 bytes\n"
    );
    let logs = g.mailgate.stop();
    assert!(
        !control_socket(&g.mailgate).exists(),
        "the socket stayed after the process ended"
    );
    assert!(!logs.iter().any(|l| l.contains(LOCAL_PW)));
}

/// Without a running process the command says so, and fails.
#[test]
fn throttle_command_without_a_running_mailgate_fails_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("mailgate.toml");
    std::fs::write(&config, "[server]\n").expect("write config");
    let out = run(
        &[
            "throttle",
            "list",
            "--config",
            config.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the running mailgate at") && err.contains("control.sock"),
        "{err}"
    );
    // The cause once, not again as the next link of the error chain.
    assert_eq!(err.matches("(os error 2)").count(), 1, "{err}");
}
