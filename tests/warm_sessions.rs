//! Warm upstream sessions (`[server.warm_sessions]`) against a real Dovecot: a client's
//! LOGOUT leaves the upstream connection logged in for the account's next login, and that
//! login gets a connection a fresh one could not be told from — no selected mailbox, no
//! enabled extension, the server's own \Recent, no IDLE left running. A connection the server
//! killed is replaced unnoticed; a reload, the account's removal and a changed credential end
//! kept connections; the per-account limit holds under 100 concurrent logins; an OAuth
//! account's connection is reused too.
//!
//! What the tests count: Dovecot's own log (`Login: user=<…>` once per upstream login,
//! `Logged out` / `Disconnected` once per upstream connection ended), mailgate's metrics, and
//! the bytes each client gets. Every wait is a bounded poll; no test asserts a duration.
//!
//! Run: `cargo test --test warm_sessions`

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use support::app_keys::AppKey;
use support::imap_client::{assert_tagged, contains, ImapClient};
use support::proc::{poll, sighup};
use support::scrape::{fetch, Scrape};
use support::{Account, Dovecot, DovecotOpts, GateConfig, Idp, Mailgate, Upstream};

const LOCAL_PW: &str = "Warm-local-pw-41c2";
const USER: &str = "ola";
const UPSTREAM_PW: &str = "Warm-upstream-pw-9e3a";
const EMAIL: &str = "ola@example.no";
const WAIT: Duration = Duration::from_secs(30);
const STEP: Duration = Duration::from_millis(20);

fn dovecot() -> Dovecot {
    let d = Dovecot::start(DovecotOpts::plaintext_only());
    d.add_user(USER, UPSTREAM_PW);
    d
}

/// Warm sessions on (kept a minute, `per_account` per account), metrics on, one account.
fn config(dc: &Dovecot, per_account: u64, upstream_pw: &str) -> GateConfig {
    GateConfig::new()
        .limits(&[("auth_failure_delay_ms", 0)])
        .server("warm_sessions.keep_secs", 60u64)
        .server("warm_sessions.per_account", per_account)
        .metrics(None)
        .account(
            Account::password(EMAIL, LOCAL_PW).imap(
                Upstream::plain(format!("127.0.0.1:{}", dc.imap_port)).login(USER, upstream_pw),
            ),
        )
}

fn message(subject: &str) -> Vec<u8> {
    format!("From: a@example.no\r\nTo: ola@example.no\r\nSubject: {subject}\r\n\r\nHello.\r\n")
        .into_bytes()
}

/// Dovecot's log lines containing `needle`.
fn dovecot_count(dc: &Dovecot, needle: &str) -> usize {
    std::fs::read_to_string(dc.dir().join("dovecot.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// Upstream logins Dovecot has seen for the test user.
fn upstream_logins(dc: &Dovecot) -> usize {
    dovecot_count(dc, &format!("Login: user=<{USER}>"))
}

/// Dovecot's log lines of the test user's IMAP processes containing `needle`. Each
/// connection's end is one line, `imap(ola)<pid><session>: Info: Disconnected: Logged out …`
/// after a LOGOUT, `… Disconnected: Connection closed …` or a kick's reason otherwise.
fn user_lines(dc: &Dovecot, needle: &str) -> usize {
    let user = format!("imap({USER})");
    std::fs::read_to_string(dc.dir().join("dovecot.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&user) && l.contains(needle))
        .count()
}

/// Upstream connections of the test user Dovecot has ended (logged out or disconnected).
fn upstream_ended(dc: &Dovecot) -> usize {
    user_lines(dc, "Disconnected")
}

/// Waits until Dovecot has logged `n` upstream logins of the test user (its log process
/// writes a moment after the login).
fn await_upstream_logins(dc: &Dovecot, n: usize) {
    let seen = poll(WAIT, STEP, || (upstream_logins(dc) >= n).then_some(()));
    assert!(seen.is_some(), "Dovecot never logged {n} logins");
    assert_eq!(upstream_logins(dc), n);
}

fn scrape(gate: &Mailgate) -> Scrape {
    let addr: SocketAddr = gate.metrics_addr.expect("metrics");
    Scrape::parse(fetch(addr).expect("scrape")).expect("parse")
}

fn metric(gate: &Mailgate, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape(gate).get(name, labels).unwrap_or(0.0)
}

/// Waits until `name{labels}` is `want`.
fn await_metric(gate: &Mailgate, name: &str, labels: &[(&str, &str)], want: f64) {
    let seen = poll(WAIT, STEP, || {
        (metric(gate, name, labels) == want).then_some(())
    });
    assert!(
        seen.is_some(),
        "{name}{labels:?} never became {want} (is {}):\n{}",
        metric(gate, name, labels),
        gate.log()
    );
}

fn await_kept(gate: &Mailgate, n: usize) {
    await_metric(gate, "mailgate_imap_warm_connections", &[], n as f64);
}

/// SIGHUP, then waits until `reason` has ended `count` kept connections and none is kept.
fn reload(gate: &Mailgate, reason: &str, count: f64) {
    sighup(gate.pid());
    let name = "mailgate_imap_warm_discarded_total";
    await_metric(gate, name, &[("reason", reason)], count);
    await_kept(gate, 0);
}

fn hits(gate: &Mailgate) -> f64 {
    metric(
        gate,
        "mailgate_imap_warm_logins_total",
        &[("result", "hit")],
    )
}

fn discarded(gate: &Mailgate, reason: &str) -> f64 {
    metric(
        gate,
        "mailgate_imap_warm_discarded_total",
        &[("reason", reason)],
    )
}

/// SELECT INBOX, which must hold `exists` messages; returns the responses.
fn select_inbox(c: &mut ImapClient, tag: &str, exists: usize) -> Vec<u8> {
    let select = c.ok(tag, "SELECT INBOX");
    let want = format!("* {exists} EXISTS");
    assert!(
        contains(&select, want.as_bytes()),
        "{}",
        String::from_utf8_lossy(&select)
    );
    select
}

fn login(gate: &Mailgate) -> ImapClient {
    let mut c = gate.connect();
    c.login(EMAIL, LOCAL_PW);
    c
}

/// LOGOUT: the client gets BYE and the tagged OK, then the connection closes.
fn logout(mut c: ImapClient) {
    let resp = c.command("Z9", "LOGOUT");
    assert!(
        contains(&resp, b"* BYE "),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    assert_tagged(&resp, "Z9", "OK");
    let rest = c
        .read_to_eof(WAIT)
        .expect("the connection closes after LOGOUT");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
}

/// A poll (LOGIN, SELECT, UID FETCH, LOGOUT) twice: the second reuses the first's upstream
/// connection, and gets the same answers.
#[test]
fn a_second_poll_reuses_the_upstream_connection() {
    let dc = dovecot();
    dc.fill_maildir(USER, &[message("one"), message("two")]);
    let gate = config(&dc, 2, UPSTREAM_PW).start();
    let poll_once = || {
        let mut c = login(&gate);
        select_inbox(&mut c, "a1", 2);
        let fetch = c.ok(
            "a2",
            "UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
        );
        assert!(
            contains(&fetch, b"Subject: two"),
            "{}",
            String::from_utf8_lossy(&fetch)
        );
        logout(c);
    };
    poll_once();
    await_kept(&gate, 1);
    poll_once();
    await_kept(&gate, 1);
    // One upstream login for two polls.
    await_upstream_logins(&dc, 1);
    assert_eq!(hits(&gate), 1.0);
    assert_eq!(
        metric(
            &gate,
            "mailgate_imap_warm_logins_total",
            &[("result", "miss")]
        ),
        1.0
    );
    assert!(gate
        .logged(&["logged in", "warm=true"])
        .contains("warm=true"));
}

/// Nothing of one session reaches the next on a kept connection.
#[test]
fn a_kept_connection_carries_no_state() {
    let dc = dovecot();
    dc.fill_maildir(USER, &[message("first")]);
    let gate = config(&dc, 2, UPSTREAM_PW).start();

    // Selected mailbox, \Recent, IDLE ended with DONE: all clean, the connection is kept.
    let mut c = login(&gate);
    let select = select_inbox(&mut c, "a1", 1);
    assert!(
        contains(&select, b"* 1 RECENT"),
        "{}",
        String::from_utf8_lossy(&select)
    );
    c.send(b"a2 IDLE\r\n");
    c.read_continuation();
    c.send(b"DONE\r\n");
    assert_tagged(&c.read_until_tagged("a2"), "a2", "OK");
    logout(c);
    await_kept(&gate, 1);
    dc.fill_maildir(USER, &[message("second")]);

    let mut c = login(&gate);
    assert_eq!(hits(&gate), 1.0);
    // No mailbox selected, as on a fresh login.
    let fetch = c.command("b1", "FETCH 1 (FLAGS)");
    assert_tagged(&fetch, "b1", "BAD");
    // \Recent is the server's: the first message was seen by a session already, the second
    // is new to this one — as for a fresh connection.
    let select = select_inbox(&mut c, "b2", 2);
    assert!(
        contains(&select, b"* 1 RECENT"),
        "{}",
        String::from_utf8_lossy(&select)
    );
    let flags = c.ok("b3", "FETCH 1:2 (FLAGS)");
    let text = String::from_utf8_lossy(&flags);
    assert!(text.contains("* 2 FETCH (FLAGS (\\Recent))"), "{text}");
    assert!(!text.contains("* 1 FETCH (FLAGS (\\Recent))"), "{text}");
    // No IDLE left running: a NOOP is answered as such.
    assert_tagged(&c.command("b4", "NOOP"), "b4", "OK");

    // ENABLE CONDSTORE: the connection cannot be proven clean, so it is not kept.
    assert_tagged(&c.command("b5", "ENABLE CONDSTORE"), "b5", "OK");
    let resp = c.command("Z9", "LOGOUT");
    assert_tagged(&resp, "Z9", "OK");
    await_metric(
        &gate,
        "mailgate_imap_warm_discarded_total",
        &[("reason", "state")],
        1.0,
    );
    await_kept(&gate, 0);
    let logins = upstream_logins(&dc);
    let mut c = login(&gate);
    // A fresh upstream login.
    await_upstream_logins(&dc, logins + 1);
    c.ok("c1", "SELECT INBOX");
    let flags = c.ok("c2", "FETCH 1 (FLAGS)");
    assert!(
        !contains(&flags, b"MODSEQ"),
        "CONDSTORE is not on for the next session: {}",
        String::from_utf8_lossy(&flags)
    );
    logout(c);

    // A client that leaves in the middle of IDLE: nothing is kept.
    await_kept(&gate, 1);
    let mut c = login(&gate);
    c.ok("d1", "SELECT INBOX");
    c.send(b"d2 IDLE\r\n");
    c.read_continuation();
    c.shutdown();
    drop(c);
    await_kept(&gate, 0);
    let logins = upstream_logins(&dc);
    let mut c = login(&gate);
    // A fresh upstream login.
    await_upstream_logins(&dc, logins + 1);
    assert_tagged(&c.command("e1", "NOOP"), "e1", "OK");
    logout(c);
}

/// A kept connection the server killed is noticed and replaced: the client's login works
/// as if nothing happened.
#[test]
fn a_killed_connection_is_replaced_unnoticed() {
    let dc = dovecot();
    dc.fill_maildir(USER, &[message("one")]);
    let gate = config(&dc, 2, UPSTREAM_PW).start();
    logout(login(&gate));
    await_kept(&gate, 1);
    let kick = Command::new("doveadm")
        .arg("-c")
        .arg(dc.dir().join("dovecot.conf"))
        .args(["kick", USER])
        .output()
        .expect("doveadm kick");
    assert!(kick.status.success(), "{kick:?}");
    let mut c = login(&gate);
    select_inbox(&mut c, "a1", 1);
    logout(c);
    // The dead connection was replaced by a new login.
    await_upstream_logins(&dc, 2);
    assert_eq!(hits(&gate), 0.0);
    assert_eq!(discarded(&gate, "closed") + discarded(&gate, "stale"), 1.0);
}

/// A reload ends every kept connection; so does the account's removal; after a changed
/// upstream password the next login uses the new one.
#[test]
fn reload_removal_and_credential_change_end_kept_connections() {
    let dc = dovecot();
    let gate = config(&dc, 2, UPSTREAM_PW).start();
    let path = gate.config_path.clone();
    // The second upstream user exists from the start: Dovecot reads its passwd-file again at
    // most once a second.
    dc.add_user("kari", "Warm-kari-pw-5b1f");
    dc.fill_maildir("kari", &[message("kari's own")]);

    // A reload with nothing changed.
    logout(login(&gate));
    await_kept(&gate, 1);
    reload(&gate, "reload", 1.0);
    let seen = poll(WAIT, STEP, || (upstream_ended(&dc) == 1).then_some(()));
    assert!(seen.is_some(), "Dovecot saw the kept connection end");
    logout(login(&gate));
    await_upstream_logins(&dc, 2);
    await_kept(&gate, 1);

    // A changed credential (another upstream user, with a message of its own): the next
    // session logs in with it, not on the connection kept under the old one.
    let toml = std::fs::read_to_string(&path).expect("config");
    let changed = toml
        .replace(&format!("\"{USER}\""), "\"kari\"")
        .replace(UPSTREAM_PW, "Warm-kari-pw-5b1f");
    std::fs::write(&path, changed).expect("write config");
    reload(&gate, "reload", 2.0);
    let mut c = login(&gate);
    // Dovecot's log process writes the line a moment after the login is answered.
    let kari = || dovecot_count(&dc, "Login: user=<kari>");
    let seen = poll(WAIT, STEP, || (kari() >= 1).then_some(()));
    assert!(seen.is_some(), "a new login as the new user");
    assert_eq!(kari(), 1, "one new login as the new user");
    select_inbox(&mut c, "a1", 1);
    logout(c);
    await_kept(&gate, 1);

    // The account removed (the [metrics] table after the accounts stays).
    let toml = std::fs::read_to_string(&path).expect("config");
    let (head, tail) = toml.split_once("[[account]]").expect("an account table");
    let metrics = &tail[tail.find("[metrics]").expect("a metrics table")..];
    let head = head.replace("[server]", "[server]\nallow_no_accounts = true");
    std::fs::write(&path, format!("{head}\n{metrics}")).expect("write config");
    reload(&gate, "removed", 1.0);
    assert_eq!(
        hits(&gate),
        0.0,
        "no kept connection was used across a reload"
    );
}

/// 100 clients log in at once and log out: every one is served, and no more than
/// `per_account` upstream connections stay open afterwards.
#[test]
fn the_per_account_limit_holds_under_100_concurrent_logins() {
    const CLIENTS: usize = 100;
    let dc = dovecot();
    dc.fill_maildir(USER, &[message("one")]);
    let gate = config(&dc, 3, UPSTREAM_PW).start();
    let addr = gate.imap_addr;
    let start = std::sync::Arc::new(std::sync::Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let start = start.clone();
            std::thread::spawn(move || {
                let mut c = ImapClient::connect(addr);
                start.wait();
                c.login(EMAIL, LOCAL_PW);
                select_inbox(&mut c, "a1", 1);
                logout(c);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client failed");
    }
    await_kept(&gate, 3);
    let logins = upstream_logins(&dc);
    let seen = poll(WAIT, STEP, || {
        (upstream_ended(&dc) == logins - 3).then_some(())
    });
    assert!(
        seen.is_some(),
        "{logins} upstream logins, {} ended: want exactly 3 open",
        upstream_ended(&dc)
    );
    let kept = metric(&gate, "mailgate_imap_warm_connections", &[]);
    assert_eq!(kept, 3.0);
    let hits = hits(&gate);
    let misses = metric(
        &gate,
        "mailgate_imap_warm_logins_total",
        &[("result", "miss")],
    );
    assert_eq!(hits + misses, CLIENTS as f64);
    assert_eq!(misses, logins as f64, "every miss is one upstream login");
}

/// An OAuth account (a service account, which needs no sign-in): its kept connection is
/// reused, with no new token and no new login at the provider. (That a connection whose token
/// is within the refresh margin is not reused is `imap::warm::pool`'s unit test: a token the
/// token cache takes is never inside the margin yet, so only time could show it here.)
#[test]
fn an_oauth_connection_is_reused() {
    const SERVICE_ACCOUNT: &str = "mailgate@proj.iam.gserviceaccount.com";
    let idp = Idp::start(EMAIL);
    let mut opts = DovecotOpts::plaintext_only();
    opts.oauth2_introspection_url = Some(idp.url("/introspect"));
    let dc = Dovecot::start(opts);
    dc.add_user(EMAIL, "Upstream-pw-unused-7c1d");
    let dir = tempfile::tempdir().expect("temp dir");
    let key = AppKey::new(dir.path(), "sa");
    let key_file = dir.path().join("sa.json");
    key.service_account_file(
        &key_file,
        SERVICE_ACCOUNT,
        "https://oauth2.googleapis.com/token",
    );
    idp.register_service_account(SERVICE_ACCOUNT, &key.public_der);
    let account = Account::password(EMAIL, LOCAL_PW)
        .imap(Upstream::plain(format!("127.0.0.1:{}", dc.imap_port)))
        .oauth2("provider", "google")
        .oauth2("token_url", idp.url("/token"))
        .oauth2(
            "service_account_key_file",
            key_file.to_str().expect("utf-8"),
        );
    let gate = GateConfig::new()
        .server("warm_sessions.keep_secs", 60u64)
        .metrics(None)
        .account(account)
        .start();
    let logins = || dovecot_count(&dc, &format!("Login: user=<{EMAIL}>"));
    logout(login(&gate));
    await_kept(&gate, 1);
    let mut c = login(&gate);
    assert_eq!((hits(&gate), logins(), idp.jwt_grants()), (1.0, 1, 1));
    assert_tagged(&c.command("a1", "SELECT INBOX"), "a1", "OK");
    logout(c);
    await_kept(&gate, 1);
}

/// With warm sessions off, a LOGOUT with nothing in flight is answered by the gateway (the
/// client does not wait for the provider) and the upstream connection is logged out behind
/// it; a LOGOUT pipelined behind a command goes to the provider, whose answer the client gets.
#[test]
fn logout_is_answered_by_the_gateway_when_nothing_is_in_flight() {
    let dc = dovecot();
    let gate =
        GateConfig::new()
            .limits(&[("auth_failure_delay_ms", 0)])
            .account(Account::password(EMAIL, LOCAL_PW).imap(
                Upstream::plain(format!("127.0.0.1:{}", dc.imap_port)).login(USER, UPSTREAM_PW),
            ))
            .start();
    let logged_out = || user_lines(&dc, "Disconnected: Logged out");

    let mut c = login(&gate);
    c.ok("a1", "SELECT INBOX");
    let resp = c.command("a2", "LOGOUT");
    assert_eq!(resp, b"* BYE Logging out\r\na2 OK Logout completed.\r\n");
    let seen = poll(WAIT, STEP, || (logged_out() == 1).then_some(()));
    assert!(seen.is_some(), "the upstream connection was logged out");

    // Pipelined: the NOOP is in flight when LOGOUT comes, so both go to Dovecot, which
    // answers LOGOUT with its own words (and its timing).
    let mut c = login(&gate);
    c.send(b"b1 NOOP\r\nb2 LOGOUT\r\n");
    let resp = c.read_until_tagged("b2");
    let text = String::from_utf8_lossy(&resp);
    assert!(
        text.contains("b1 OK NOOP completed") && text.contains("secs)"),
        "{text}"
    );
    let seen = poll(WAIT, STEP, || (logged_out() == 2).then_some(()));
    assert!(seen.is_some(), "Dovecot logged the second session out");
}

/// A client that polls at a steady interval longer than `keep_secs` finds a connection opened
/// ahead of its next poll (`pre_open_secs`) and kept for it; when it stops polling, the one
/// opened for the poll that never comes expires, and nothing more is opened.
#[test]
fn a_polling_client_finds_a_connection_opened_ahead_of_its_poll() {
    let (dc, gate, poll_at) = polling_client();
    assert_eq!(hits(&gate), 0.0);
    await_opened(&gate, 1.0);
    await_kept(&gate, 1);
    // Four polls and the one opened ahead.
    await_upstream_logins(&dc, 5);

    // The fifth poll takes it.
    poll_at(4);
    assert_eq!(hits(&gate), 1.0);
    assert_eq!(upstream_logins(&dc), 5);

    // No sixth poll: the connection opened for it expires unused, and that is all.
    await_opened(&gate, 2.0);
    // The fifth poll's own connection (kept two seconds) and the one opened for the sixth.
    let discarded = "mailgate_imap_warm_discarded_total";
    await_metric(&gate, discarded, &[("reason", "expired")], 6.0);
    await_kept(&gate, 0);
    assert_eq!(opened(&gate), 2.0);
    await_upstream_logins(&dc, 6);
}

/// A reload between a poll and the next ends the kept connection and cancels the pre-open
/// planned under the old configuration: the next poll logs in anew.
#[test]
fn a_reload_cancels_a_planned_pre_open() {
    let (dc, gate, poll_at) = polling_client();
    reload(&gate, "reload", 1.0);
    poll_at(4);
    assert_eq!(hits(&gate), 0.0);
    assert_eq!(
        opened(&gate),
        0.0,
        "nothing opened under the old configuration"
    );
    await_upstream_logins(&dc, 5);
}

const PRE_OPENED: &str = "mailgate_imap_warm_pre_opened_total";

fn opened(gate: &Mailgate) -> f64 {
    metric(gate, PRE_OPENED, &[("result", "opened")])
}

fn await_opened(gate: &Mailgate, n: f64) {
    await_metric(gate, PRE_OPENED, &[("result", "opened")], n);
}

/// Warm sessions with a keep time (two seconds) shorter than the client's poll interval (four
/// seconds) and pre-opening a second ahead; the client has polled four times, each on a new
/// upstream connection (the four logins show its interval). Also returns the client's poll:
/// LOGIN, SELECT, LOGOUT at the `i`th multiple of the interval after the first poll's login.
fn polling_client() -> (Dovecot, Mailgate, impl Fn(u32)) {
    let dc = dovecot();
    dc.fill_maildir(USER, &[message("one")]);
    let gate = config(&dc, 2, UPSTREAM_PW)
        .server("warm_sessions.keep_secs", 2u64)
        .server("warm_sessions.pre_open_secs", 1u64)
        .start();
    let period = Duration::from_secs(4);
    let addr = gate.imap_addr;
    let poll = move |at: Option<std::time::Instant>| {
        if let Some(at) = at {
            std::thread::sleep(at.saturating_duration_since(std::time::Instant::now()));
        }
        let mut c = ImapClient::connect(addr);
        c.login(EMAIL, LOCAL_PW);
        let logged_in = std::time::Instant::now();
        select_inbox(&mut c, "a1", 1);
        logout(c);
        logged_in
    };
    // The schedule starts when the first login is answered: that one checks the local
    // password (argon2), the later ones find it checked, and the gateway counts a login's
    // time from when the check is done.
    let start = poll(None);
    let poll_at = move |i: u32| {
        poll(Some(start + period * i));
    };
    for i in 1..4 {
        poll_at(i);
        assert_eq!(opened(&gate), 0.0, "nothing opened ahead before poll {i}");
    }
    (dc, gate, poll_at)
}
