//! Prometheus metrics end to end: a real Dovecot upstream, the real `mailgate` binary with a
//! `[metrics]` listener, real IMAP sessions, and `/metrics` scraped over plain HTTP and parsed
//! from the text exposition format.
//!
//! Every test runs its own mailgate process, so every counter starts at zero and each
//! assertion is an exact count (or a fixed bound) after known traffic. Nothing asserts on time:
//! where a value moves after the client has seen its answer (the active-sessions gauge drops
//! when the session task ends), the scrape is polled a bounded number of times.
//!
//! Run: `cargo test --test metrics`

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::SocketAddr;
use std::time::Duration;

use support::imap_client::{assert_tagged, contains, fetch_literals, quote, tagged_status};
use support::messages::{varied, Rng};
use support::proc::{poll, sighup, RefusingPort};
use support::scrape::{
    assert_bounded, dechunk, documented_metrics, fetch, label, parse_exposition, Labels, Scrape,
    ACCOUNT_BYTES, ACCOUNT_LOGINS, BUILD_INFO, BYTES, CONFIG_RELOADS, CONNECT_SECONDS, DIRECTIONS,
    IMAP_COMMANDS, KNOWN_COMMANDS, LOGINS, SESSIONS_ACTIVE, SESSIONS_REFUSED, SESSIONS_TOTAL,
    SMTP_MESSAGES, SMTP_MESSAGE_BYTES, UPSTREAM_ERRORS,
};
use support::{b64, Account, Dovecot, DovecotOpts, Gate, GateConfig, ImapClient, Upstream};

/// The account that works.
const EMAIL: &str = "ola@example.no";
/// An account whose upstream port refuses connections.
const DOWN_EMAIL: &str = "down@example.no";
/// An account added by a config reload (same Dovecot user as `EMAIL`).
const NEW_EMAIL: &str = "kari@example.no";
/// A login name no config knows. It must never become a label value.
const UNKNOWN_USER: &str = "nobody-4e1f@example.no";
/// Distinctive, so a leak into a log line or the scrape is unmistakable.
const LOCAL_PW: &str = "Local-pw-7f3a91c2";
const WRONG_PW: &str = "Wrong-local-pw-2b8e60";
const UPSTREAM_USER: &str = "ola";
const UPSTREAM_PW: &str = "Upstream-pw-c40d5e19";

/// How long (and how often) to poll a scrape for a value that settles after the client has
/// its answer. Generous: this turns a hang into a failure, it measures nothing.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
const SETTLE_STEP: Duration = Duration::from_millis(25);

const IMAP: (&str, &str) = ("protocol", "imap");

// ---------------------------------------------------------------------------------------------
// Tests

/// One OK login, one wrong local password, one unknown user, one upstream that refuses the
/// connection: each counted exactly once under its result; sessions counted per connection;
/// the active gauge follows connections open and returns to 0.
#[test]
fn login_results_and_session_counts() {
    let g = gate(None, &[]);

    // Before any session: the main series exist, at zero.
    let s = g.scrape();
    s.expect(SESSIONS_TOTAL, &[IMAP], 0.0);
    s.expect(SESSIONS_ACTIVE, &[IMAP], 0.0);

    let mut connections = 0;

    // 1. An OK login, SELECT, LOGOUT.
    let mut c = g.login(EMAIL);
    connections += 1;
    c.ok("s1", "SELECT INBOX");
    logout(&mut c);

    // 2. The right account, a wrong local password.
    let mut c = g.connect();
    connections += 1;
    let resp = login_with(&mut c, "b1", EMAIL, WRONG_PW);
    assert_status_prefix(&resp, "b1", "NO [AUTHENTICATIONFAILED]");
    logout(&mut c);

    // 3. A login name no account has.
    let mut c = g.connect();
    connections += 1;
    let resp = login_with(&mut c, "u1", UNKNOWN_USER, LOCAL_PW);
    assert_status_prefix(&resp, "u1", "NO [AUTHENTICATIONFAILED]");
    c.shutdown();

    // 4. An account whose upstream port has nothing listening.
    let mut c = g.connect();
    connections += 1;
    let resp = login_with(&mut c, "d1", DOWN_EMAIL, LOCAL_PW);
    assert_status_prefix(&resp, "d1", "NO [UNAVAILABLE]");
    c.shutdown();
    drop(c);

    let s = g.settle();
    s.expect(LOGINS, &[IMAP, ("result", "ok")], 1.0);
    s.expect(LOGINS, &[IMAP, ("result", "bad_password")], 1.0);
    s.expect(LOGINS, &[IMAP, ("result", "unknown_user")], 1.0);
    s.expect(LOGINS, &[IMAP, ("result", "upstream_unavailable")], 1.0);
    s.expect_only_nonzero(
        LOGINS,
        &[
            &[IMAP, ("result", "ok")],
            &[IMAP, ("result", "bad_password")],
            &[IMAP, ("result", "unknown_user")],
            &[IMAP, ("result", "upstream_unavailable")],
        ],
    );
    s.expect(UPSTREAM_ERRORS, &[IMAP, ("kind", "connect")], 1.0);
    s.expect_only_nonzero(UPSTREAM_ERRORS, &[&[IMAP, ("kind", "connect")]]);
    s.expect(SESSIONS_TOTAL, &[IMAP], connections as f64);
    s.expect(SESSIONS_ACTIVE, &[IMAP], 0.0);
    s.expect_only_nonzero(SESSIONS_REFUSED, &[]);
    assert_bounded(&s, &[EMAIL, DOWN_EMAIL]);

    // N sessions held open (greeting read: mailgate counts a session before it greets).
    const HELD: usize = 3;
    let mut held: Vec<ImapClient> = (0..HELD).map(|_| g.connect()).collect();
    connections += HELD;
    let s = g.scrape();
    s.expect(SESSIONS_ACTIVE, &[IMAP], HELD as f64);
    s.expect(SESSIONS_TOTAL, &[IMAP], connections as f64);
    // Still open and served.
    for (i, c) in held.iter_mut().enumerate() {
        c.ok(&format!("n{i}"), "NOOP");
    }
    for c in &mut held {
        c.shutdown();
    }
    drop(held);
    let s = g.settle();
    s.expect(SESSIONS_ACTIVE, &[IMAP], 0.0);
    s.expect(SESSIONS_TOTAL, &[IMAP], connections as f64);
    // Pre-auth sessions moved no login counter.
    s.expect(LOGINS, &[IMAP, ("result", "ok")], 1.0);

    g.finish();
}

/// The upstream connect+login time is a real histogram: cumulative `le` buckets up to
/// `+Inf`, `_count` = successful upstream logins (failures are not timed), `_sum` > 0.
#[test]
fn upstream_connect_histogram() {
    let g = gate(None, &[]);

    const LOGGED_IN: usize = 3;
    let mut held: Vec<ImapClient> = (0..LOGGED_IN).map(|_| g.login(EMAIL)).collect();
    // A failed upstream and a failed local login are not timed.
    let mut c = g.connect();
    assert_status_prefix(
        &login_with(&mut c, "d1", DOWN_EMAIL, LOCAL_PW),
        "d1",
        "NO [UNAVAILABLE]",
    );
    assert_status_prefix(
        &login_with(&mut c, "b1", EMAIL, WRONG_PW),
        "b1",
        "NO [AUTHENTICATIONFAILED]",
    );
    c.shutdown();
    drop(c);

    let s = g.wait("the failed-login session to end", |s| {
        s.value(SESSIONS_ACTIVE, &[IMAP]) == LOGGED_IN as f64
    });
    s.expect(SESSIONS_ACTIVE, &[IMAP], LOGGED_IN as f64);
    s.expect(LOGINS, &[IMAP, ("result", "ok")], LOGGED_IN as f64);
    assert_eq!(
        s.types.get(CONNECT_SECONDS).map(String::as_str),
        Some("histogram"),
        "# TYPE of {CONNECT_SECONDS}\n{}",
        s.body
    );

    let buckets = s.buckets(CONNECT_SECONDS, &[IMAP]);
    let finite = buckets.iter().filter(|(le, _)| le.is_finite()).count();
    assert!(
        finite >= 5,
        "expected several finite `le` buckets, got {buckets:?}\n{}",
        s.body
    );
    assert_eq!(
        buckets.last().map(|b| b.0),
        Some(f64::INFINITY),
        "no le=\"+Inf\" bucket\n{}",
        s.body
    );
    for pair in buckets.windows(2) {
        assert!(
            pair[0].1 <= pair[1].1,
            "bucket counts must be cumulative: {buckets:?}"
        );
    }
    let count = s.value(&format!("{CONNECT_SECONDS}_count"), &[IMAP]);
    assert_eq!(count, LOGGED_IN as f64, "_count\n{}", s.body);
    assert_eq!(buckets.last().map(|b| b.1), Some(count), "+Inf bucket");
    let sum = s.value(&format!("{CONNECT_SECONDS}_sum"), &[IMAP]);
    assert!(sum > 0.0, "_sum = {sum}\n{}", s.body);
    // Only the imap series exists (protocol is the histogram's only label).
    let protocols: BTreeSet<Labels> = s
        .series(&format!("{CONNECT_SECONDS}_count"))
        .into_iter()
        .map(|(labels, _)| labels.clone())
        .collect();
    assert_eq!(protocols.len(), 1, "{protocols:?}");

    for c in &mut held {
        logout(c);
    }
    drop(held);
    let s = g.settle();
    s.expect(SESSIONS_ACTIVE, &[IMAP], 0.0);
    s.expect(SESSIONS_TOTAL, &[IMAP], (LOGGED_IN + 1) as f64);
    s.expect(
        &format!("{CONNECT_SECONDS}_count"),
        &[IMAP],
        LOGGED_IN as f64,
    );
    assert_bounded(&s, &[EMAIL, DOWN_EMAIL]);
    g.finish();
}

/// Bytes relayed after login, both directions: exactly what the client sent after its login
/// answer, and exactly what it received, which includes the whole fetched message.
#[test]
fn bytes_relayed_after_fetch() {
    let mut rng = Rng::new(0x6279_7465);
    let message = varied(1, 40 * 1024, &mut rng);
    let g = gate(None, std::slice::from_ref(&message));

    let mut c = g.login(EMAIL);
    let mut sent = 0usize;
    let mut received = 0usize;
    for (tag, command) in [
        ("s1", "SELECT INBOX"),
        ("f1", "FETCH 1 (BODY.PEEK[])"),
        ("z1", "LOGOUT"),
    ] {
        sent += tag.len() + 1 + command.len() + 2;
        let resp = c.command(tag, command);
        assert_tagged(&resp, tag, "OK");
        // mailgate answers the LOGOUT itself: those bytes never came from the upstream.
        if tag != "z1" {
            received += resp.len();
        }
        if tag == "f1" {
            assert_eq!(fetch_literals(&resp), vec![message.clone()]);
        }
    }
    c.shutdown();
    drop(c);

    let s = g.settle();
    let to_upstream = s.value(BYTES, &[IMAP, ("direction", "client_to_upstream")]);
    let to_client = s.value(BYTES, &[IMAP, ("direction", "upstream_to_client")]);
    assert!(to_upstream > 0.0 && to_client > 0.0, "{}", s.body);
    assert!(
        to_client >= message.len() as f64,
        "upstream_to_client = {to_client}, the fetched message alone is {} bytes",
        message.len()
    );
    assert_eq!(
        to_upstream, sent as f64,
        "client_to_upstream counts the command bytes sent after login"
    );
    assert_eq!(
        to_client, received as f64,
        "upstream_to_client counts the response bytes received after login"
    );
    s.expect_only_nonzero(
        IMAP_COMMANDS,
        &[
            &[("command", "SELECT")],
            &[("command", "FETCH")],
            &[("command", "LOGOUT")],
        ],
    );
    s.expect(IMAP_COMMANDS, &[("command", "FETCH")], 1.0);
    g.finish();
}

/// 1000 random unknown command names after login all count under `command="other"`; the
/// label sets stay within the documented values and the whole scrape stays small.
#[test]
fn label_sets_stay_bounded_under_random_commands() {
    const RANDOM: usize = 1000;
    const BATCH: usize = 10;
    const MAX_SERIES: usize = 200;
    let g = gate(None, &[]);
    let mut c = g.login(EMAIL);
    c.ok("s1", "SELECT INBOX");

    let mut rng = Rng::new(0x0c0f_fee5);
    let names = random_command_names(&mut rng, RANDOM);
    let mut noops = 0;
    for (b, batch) in names.chunks(BATCH).enumerate() {
        // One write per batch (pipelined), then every tagged answer in order.
        let mut out = Vec::new();
        let tags: Vec<String> = (0..batch.len()).map(|i| format!("r{b}x{i}")).collect();
        for (tag, name) in tags.iter().zip(batch) {
            // Some in the UID form: `UID <unknown>` must count as `other` too.
            let line = if rng.below(10) == 0 {
                format!("{tag} UID {name} 1:*\r\n")
            } else {
                format!("{tag} {name} arg\r\n")
            };
            out.extend_from_slice(line.as_bytes());
        }
        c.send(&out);
        for tag in &tags {
            let resp = c.read_until_tagged(tag);
            assert_tagged(&resp, tag, "BAD");
        }
        // Dovecot disconnects a client after 20 invalid commands in a row; one valid
        // command in between resets its count.
        let tag = format!("n{b}");
        c.ok(&tag, "NOOP");
        noops += 1;
    }
    logout(&mut c);
    drop(c);

    let s = g.settle();
    let mut want: BTreeMap<String, f64> = BTreeMap::new();
    want.insert("other".into(), RANDOM as f64);
    want.insert("NOOP".into(), noops as f64);
    want.insert("SELECT".into(), 1.0);
    want.insert("LOGOUT".into(), 1.0);
    let got: BTreeMap<String, f64> = s
        .series(IMAP_COMMANDS)
        .into_iter()
        .filter(|(_, v)| *v != 0.0)
        .map(|(labels, v)| {
            assert_eq!(labels.len(), 1, "{IMAP_COMMANDS} labels: {labels:?}");
            (label(labels, "command").unwrap_or_default().to_string(), v)
        })
        .collect();
    assert_eq!(got, want, "{IMAP_COMMANDS} by command\n{}", s.body);
    for (labels, _) in s.series(IMAP_COMMANDS) {
        let command = label(labels, "command").unwrap_or_default();
        assert!(
            command == "other" || KNOWN_COMMANDS.contains(&command),
            "command label {command:?} is not a known command name"
        );
    }
    for name in &names {
        assert!(
            !s.body.contains(name.as_str()),
            "a random command name ({name}) appears in the scrape"
        );
    }
    assert!(
        s.samples.len() < MAX_SERIES,
        "{} series in the scrape (bound {MAX_SERIES})\n{}",
        s.samples.len(),
        s.body
    );
    assert_bounded(&s, &[EMAIL, DOWN_EMAIL]);
    g.finish();
}

/// `mailgate_build_info{version="<crate version>"} 1`, from the first scrape on.
#[test]
fn build_info() {
    let g = gate(None, &[]);
    let s = g.scrape();
    let version = env!("CARGO_PKG_VERSION");
    s.expect(BUILD_INFO, &[("version", version)], 1.0);
    assert_eq!(
        s.series(BUILD_INFO).len(),
        1,
        "exactly one build_info series\n{}",
        s.body
    );
    assert_eq!(s.types.get(BUILD_INFO).map(String::as_str), Some("gauge"));
    assert_bounded(&s, &[EMAIL, DOWN_EMAIL]);
    g.finish();
}

/// `per_account = true`: per-account series for configured accounts (never for a login name
/// no account has), adding up to the global ones.
#[test]
fn per_account_series_when_enabled() {
    let g = gate(Some(true), &[]);
    per_account_traffic(&g);
    let s = g.settle();
    s.expect(ACCOUNT_LOGINS, &[("account", EMAIL), ("result", "ok")], 1.0);
    s.expect(
        ACCOUNT_LOGINS,
        &[("account", EMAIL), ("result", "bad_password")],
        1.0,
    );
    s.expect(
        ACCOUNT_LOGINS,
        &[("account", DOWN_EMAIL), ("result", "upstream_unavailable")],
        1.0,
    );
    s.expect_only_nonzero(
        ACCOUNT_LOGINS,
        &[
            &[("account", EMAIL), ("result", "ok")],
            &[("account", EMAIL), ("result", "bad_password")],
            &[("account", DOWN_EMAIL), ("result", "upstream_unavailable")],
        ],
    );
    s.expect(LOGINS, &[IMAP, ("result", "unknown_user")], 1.0);
    // Only the account that relayed has byte series, equal to the global counters.
    for direction in DIRECTIONS {
        let global = s.value(BYTES, &[IMAP, ("direction", direction)]);
        assert!(global > 0.0, "{direction}\n{}", s.body);
        s.expect(
            ACCOUNT_BYTES,
            &[("account", EMAIL), ("direction", direction)],
            global,
        );
    }
    for (labels, _) in s.series(ACCOUNT_BYTES) {
        assert_eq!(label(labels, "account"), Some(EMAIL), "{labels:?}");
    }
    assert_bounded(&s, &[EMAIL, DOWN_EMAIL]);
    g.finish();
}

/// `per_account` left out (default false): the same traffic makes no `mailgate_account_*`
/// series, and no account address appears in the scrape at all.
#[test]
fn no_per_account_series_by_default() {
    let g = gate(None, &[]);
    per_account_traffic(&g);
    let s = g.settle();
    s.expect(LOGINS, &[IMAP, ("result", "ok")], 1.0);
    let per_account: Vec<&String> = s
        .samples
        .keys()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("mailgate_account_"))
        .collect();
    assert!(per_account.is_empty(), "{per_account:?}\n{}", s.body);
    assert!(!s.body.contains("mailgate_account_"), "{}", s.body);
    for address in [EMAIL, DOWN_EMAIL] {
        assert!(!s.body.contains(address), "{address} in\n{}", s.body);
    }
    assert_bounded(&s, &[]);
    g.finish();
}

/// SIGHUP with a new account in the file: `result="ok"`, and the new account logs in while a
/// session from before the reload goes on. SIGHUP with a broken file: `result="error"`, and
/// the accounts of the last good config still log in.
#[test]
fn config_reload_counts_and_takes_effect() {
    let g = gate(None, &[]);
    let metrics_addr = g.metrics_addr();

    // A session from before the reload, and the new account not yet known.
    let mut before = g.login(EMAIL);
    before.ok("s1", "SELECT INBOX");
    let mut c = g.connect();
    assert_status_prefix(
        &login_with(&mut c, "k0", NEW_EMAIL, LOCAL_PW),
        "k0",
        "NO [AUTHENTICATIONFAILED]",
    );
    c.shutdown();
    drop(c);

    // Rewrite the file with one more account; same [metrics] table.
    let accounts = [
        account(EMAIL, g.dovecot.imap_port),
        account(DOWN_EMAIL, g.down_port()),
        account(NEW_EMAIL, g.dovecot.imap_port),
    ];
    let good = GateConfig::new()
        .accounts(accounts)
        .metrics(None)
        .to_toml_with_metrics(metrics_addr);
    fs::write(&g.mailgate.config_path, &good).expect("rewrite config");
    sighup(g.mailgate.pid());
    let s = g.wait("config_reloads_total{result=\"ok\"} = 1", |s| {
        s.value(CONFIG_RELOADS, &[("result", "ok")]) >= 1.0
    });
    s.expect(CONFIG_RELOADS, &[("result", "ok")], 1.0);
    s.expect(CONFIG_RELOADS, &[("result", "error")], 0.0);

    let mut k = g.login(NEW_EMAIL);
    k.ok("k1", "SELECT INBOX");
    logout(&mut k);
    before.ok("s2", "NOOP");

    // A broken file: reported, counted, and the last good config stays.
    fs::write(
        &g.mailgate.config_path,
        "[server\nimap_listen = \"127.0.0.1:0\"\n",
    )
    .expect("rewrite config");
    sighup(g.mailgate.pid());
    let s = g.wait("config_reloads_total{result=\"error\"} = 1", |s| {
        s.value(CONFIG_RELOADS, &[("result", "error")]) >= 1.0
    });
    s.expect(CONFIG_RELOADS, &[("result", "error")], 1.0);
    s.expect(CONFIG_RELOADS, &[("result", "ok")], 1.0);

    for (email, tag) in [(EMAIL, "o"), (NEW_EMAIL, "k")] {
        let mut c = g.login(email);
        c.ok(&format!("{tag}2"), "SELECT INBOX");
        logout(&mut c);
    }
    before.ok("s3", "NOOP");
    logout(&mut before);
    drop(before);

    let s = g.settle();
    // Logins: ola before, kari after the good reload, ola and kari after the bad one.
    s.expect(LOGINS, &[IMAP, ("result", "ok")], 4.0);
    s.expect(LOGINS, &[IMAP, ("result", "unknown_user")], 1.0);
    s.expect(SESSIONS_TOTAL, &[IMAP], 5.0);
    s.expect_only_nonzero(
        CONFIG_RELOADS,
        &[&[("result", "ok")], &[("result", "error")]],
    );
    assert_bounded(&s, &[EMAIL, DOWN_EMAIL, NEW_EMAIL]);
    g.finish();
}

/// Commands a client pipelines behind its LOGIN (in the same write) are relayed after login
/// like any other, so their bytes count in `client_to_upstream` too (regression: bytes read
/// past the LOGIN line during pre-auth were relayed and logged but not counted).
#[test]
fn pipelined_command_after_login_counts_its_bytes() {
    let g = gate(None, &[]);
    let mut c = g.connect();
    let login = format!("L1 LOGIN {} {}\r\n", quote(EMAIL), quote(LOCAL_PW));
    let select = "s1 SELECT INBOX\r\n";
    c.send(format!("{login}{select}").as_bytes());
    assert_tagged(&c.read_until_tagged("L1"), "L1", "OK");
    let received = c.read_until_tagged("s1");
    assert_tagged(&received, "s1", "OK");
    // mailgate answers the LOGOUT itself: not bytes from the upstream.
    assert_eq!(
        c.ok("z9", "LOGOUT"),
        b"* BYE Logging out\r\nz9 OK Logout completed.\r\n"
    );
    c.shutdown();
    drop(c);
    let sent = select.len() + "z9 LOGOUT\r\n".len();

    let s = g.settle();
    s.expect(IMAP_COMMANDS, &[("command", "SELECT")], 1.0);
    s.expect(
        BYTES,
        &[IMAP, ("direction", "client_to_upstream")],
        sent as f64,
    );
    s.expect(
        BYTES,
        &[IMAP, ("direction", "upstream_to_client")],
        received.len() as f64,
    );
    g.finish();
}

/// The scrape parser itself (no servers): escapes, histograms, duplicates, chunked bodies.
#[test]
fn exposition_parser() {
    let body = "# HELP a_total Things.\n# TYPE a_total counter\n\
        a_total{protocol=\"imap\",result=\"ok\"} 3\n\
        a_total{result=\"bad\",protocol=\"imap\"} 1 1700000000000\n\
        # TYPE h histogram\n\
        h_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.75\nh_count 2\n\
        odd{v=\"a\\\"b\\\\c\\nd\",w=\"x,y=z}\"} 7\nplain 1e3\n";
    let (types, samples) = parse_exposition(body).expect("parses");
    let s = Scrape {
        body: body.to_string(),
        types,
        samples,
    };
    assert_eq!(s.types.get("a_total").map(String::as_str), Some("counter"));
    assert_eq!(s.types.get("h").map(String::as_str), Some("histogram"));
    // Label order does not matter.
    s.expect("a_total", &[("result", "ok"), ("protocol", "imap")], 3.0);
    s.expect("a_total", &[("protocol", "imap"), ("result", "bad")], 1.0);
    assert_eq!(s.get("a_total", &[("protocol", "imap")]), None);
    assert_eq!(s.buckets("h", &[]), vec![(0.5, 1.0), (f64::INFINITY, 2.0)]);
    s.expect("h_sum", &[], 0.75);
    s.expect("odd", &[("v", "a\"b\\c\nd"), ("w", "x,y=z}")], 7.0);
    s.expect("plain", &[], 1000.0);
    assert_eq!(s.samples.len(), 8);

    assert!(parse_exposition("x 1\nx 2\n").is_err(), "duplicate series");
    assert!(
        parse_exposition("x{a=\"1} 1\n").is_err(),
        "unterminated value"
    );
    assert!(parse_exposition("1x 1\n").is_err(), "bad name");
    assert!(parse_exposition("x one\n").is_err(), "bad value");

    assert_eq!(
        dechunk(b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n").as_deref(),
        Some(&b"hello, world"[..])
    );
    assert_eq!(dechunk(b"5\r\nhel"), None);
}

/// The README's metric table as the bounds check reads it (no servers): the SMTP metrics with
/// their labels (`—` means none), and SMTP series pass or fail the check as documented.
#[test]
fn readme_table_covers_smtp_metrics() {
    let documented = documented_metrics();
    let labels = |name: &str| -> Vec<&str> {
        documented
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not in the README's metric table"))
            .iter()
            .map(String::as_str)
            .collect()
    };
    assert_eq!(labels(SMTP_MESSAGES), ["result"]);
    assert_eq!(labels(SMTP_MESSAGE_BYTES), Vec::<&str>::new());
    assert_eq!(labels(LOGINS), ["protocol", "result"]);

    let scrape = |body: &str| Scrape::parse(body.to_string()).expect("parses");
    let good = scrape(
        "mailgate_smtp_messages_total{result=\"ok\"} 2\n\
         mailgate_smtp_messages_total{result=\"too_big\"} 1\n\
         # TYPE mailgate_smtp_message_bytes histogram\n\
         mailgate_smtp_message_bytes_bucket{le=\"1024\"} 1\n\
         mailgate_smtp_message_bytes_bucket{le=\"+Inf\"} 2\n\
         mailgate_smtp_message_bytes_sum 5000\n\
         mailgate_smtp_message_bytes_count 2\n\
         mailgate_logins_total{protocol=\"smtp\",result=\"bad_password\"} 1\n",
    );
    assert_bounded(&good, &[]);
    for bad in [
        "mailgate_smtp_messages_total{result=\"spam\"} 1\n",
        "mailgate_smtp_messages_total{result=\"ok\",account=\"a\"} 1\n",
        "# TYPE mailgate_smtp_message_bytes histogram\n\
         mailgate_smtp_message_bytes_count{result=\"ok\"} 1\n",
    ] {
        let s = scrape(bad);
        let caught = std::panic::catch_unwind(|| assert_bounded(&s, &["a"]));
        assert!(caught.is_err(), "the bounds check passed:\n{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// Traffic helpers

/// The same sessions for both `per_account` settings: an OK login with a SELECT, a wrong
/// password for a known account, an unknown login name, an upstream that is down.
fn per_account_traffic(g: &Gate) {
    let mut c = g.login(EMAIL);
    c.ok("s1", "SELECT INBOX");
    logout(&mut c);
    let mut c = g.connect();
    assert_status_prefix(
        &login_with(&mut c, "b1", EMAIL, WRONG_PW),
        "b1",
        "NO [AUTHENTICATIONFAILED]",
    );
    assert_status_prefix(
        &login_with(&mut c, "u1", UNKNOWN_USER, LOCAL_PW),
        "u1",
        "NO [AUTHENTICATIONFAILED]",
    );
    c.shutdown();
    let mut c = g.connect();
    assert_status_prefix(
        &login_with(&mut c, "d1", DOWN_EMAIL, LOCAL_PW),
        "d1",
        "NO [UNAVAILABLE]",
    );
    c.shutdown();
}

/// `TAG LOGIN "user" "password"`; returns the raw response.
fn login_with(c: &mut ImapClient, tag: &str, user: &str, password: &str) -> Vec<u8> {
    c.command(tag, &format!("LOGIN {} {}", quote(user), quote(password)))
}

/// LOGOUT, asserting `* BYE` and the tagged OK; then closes the connection.
fn logout(c: &mut ImapClient) {
    let resp = c.ok("z9", "LOGOUT");
    assert!(
        contains(&resp, b"* BYE"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    c.shutdown();
}

fn assert_status_prefix(resp: &[u8], tag: &str, prefix: &str) {
    let status = tagged_status(resp, tag);
    assert!(
        status.starts_with(prefix),
        "expected `{tag} {prefix}...`, got `{tag} {status}`"
    );
}

/// `count` distinct random alphanumeric command names (4 to 8 characters) that are not
/// known IMAP commands (nor `UID`), deterministic for `rng`'s seed.
fn random_command_names(rng: &mut Rng, count: usize) -> Vec<String> {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut seen = BTreeSet::new();
    let mut names = Vec::with_capacity(count);
    for _ in 0..count * 10 {
        if names.len() == count {
            break;
        }
        let len = 4 + rng.below(5) as usize;
        let name: String = (0..len)
            .map(|_| ALNUM[rng.below(ALNUM.len() as u64) as usize] as char)
            .collect();
        let upper = name.to_ascii_uppercase();
        if upper == "UID" || upper == "DONE" || KNOWN_COMMANDS.contains(&upper.as_str()) {
            continue;
        }
        if seen.insert(upper) {
            names.push(name);
        }
    }
    assert_eq!(names.len(), count, "not enough random names");
    names
}

// ---------------------------------------------------------------------------------------------
// The gateway under test

/// The upstream settings for a Dovecot plaintext port.
fn account(email: &str, port: u16) -> Account {
    Account::password(email, LOCAL_PW)
        .imap(Upstream::plain(format!("127.0.0.1:{port}")).login(UPSTREAM_USER, UPSTREAM_PW))
}

/// Dovecot (user `ola`, holding `messages`) + mailgate with `EMAIL` (works) and `DOWN_EMAIL`
/// (refused), and a `[metrics]` listener (`per_account`: `None` leaves the key out).
fn gate(per_account: Option<bool>, messages: &[Vec<u8>]) -> Gate {
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user(UPSTREAM_USER, UPSTREAM_PW);
    if !messages.is_empty() {
        dovecot.fill_maildir(UPSTREAM_USER, messages);
    }
    let down = RefusingPort::new();
    let config = GateConfig::new()
        .account(account(EMAIL, dovecot.imap_port))
        .account(account(DOWN_EMAIL, down.port()))
        .metrics(per_account);
    Gate::start(dovecot, &config).hold(down)
}

impl Gate {
    /// The port `DOWN_EMAIL`'s upstream is on (it refuses connections).
    fn down_port(&self) -> u16 {
        self.held
            .iter()
            .find_map(|h| h.downcast_ref::<RefusingPort>())
            .expect("the gate holds a refusing port")
            .port()
    }

    /// A client logged in as `email` with the local password.
    fn login(&self, email: &str) -> ImapClient {
        let mut c = self.connect();
        let resp = login_with(&mut c, "L1", email, LOCAL_PW);
        assert_tagged(&resp, "L1", "OK");
        c
    }

    fn scrape(&self) -> Scrape {
        let addr = self.metrics_addr();
        scrape(addr).unwrap_or_else(|e| panic!("scrape {addr}: {e}"))
    }

    /// Scrapes until `done` holds, a bounded number of times; panics with the last scrape.
    fn wait(&self, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
        let mut last = None;
        let found = poll(SETTLE_TIMEOUT, SETTLE_STEP, || {
            let s = self.scrape();
            if done(&s) {
                return Some(s);
            }
            last = Some(s);
            None
        });
        found.unwrap_or_else(|| {
            panic!(
                "waited {SETTLE_TIMEOUT:?} for {what}; last scrape:\n{}",
                last.map(|s| s.body).unwrap_or_default()
            )
        })
    }

    /// Scrapes until no session is active (every client closed and every session task
    /// ended), so all counters of the traffic so far are final.
    fn settle(&self) -> Scrape {
        self.wait("mailgate_sessions_active{protocol=\"imap\"} = 0", |s| {
            s.value(SESSIONS_ACTIVE, &[IMAP]) == 0.0
        })
    }

    /// Stops mailgate and checks that no password (nor a base64 or SASL PLAIN form of it)
    /// appears in anything it wrote, and that no local password reached Dovecot. (Every
    /// scrape was checked for the same secrets when it was taken.)
    fn finish(mut self) {
        let secrets = secrets();
        let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        self.mailgate.assert_no_secrets(&refs);
        let log = self.dovecot.log();
        for local in [LOCAL_PW, WRONG_PW] {
            assert!(
                !log.contains(local) && !log.contains(&b64(local.as_bytes())),
                "a local password reached the upstream server:\n{log}"
            );
        }
    }
}

fn secrets() -> Vec<String> {
    let mut out = Vec::new();
    for pw in [LOCAL_PW, WRONG_PW, UPSTREAM_PW] {
        out.push(pw.to_string());
        out.push(b64(pw.as_bytes()));
    }
    for (user, pw) in [
        (EMAIL, LOCAL_PW),
        (EMAIL, WRONG_PW),
        (UPSTREAM_USER, UPSTREAM_PW),
    ] {
        out.push(b64(format!("\0{user}\0{pw}").as_bytes()));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Scraping (the parser and the README-table check are in support::scrape)

/// GET /metrics, parsed. Every scrape is also checked for secrets: no password, in any
/// encoding, and no login name that no account has, may ever appear in it.
fn scrape(addr: SocketAddr) -> Result<Scrape, String> {
    let body = fetch(addr)?;
    for secret in secrets() {
        assert!(
            !body.contains(&secret),
            "a secret ({} chars) appears in the /metrics output:\n{body}",
            secret.len()
        );
    }
    assert!(
        !body.contains(UNKNOWN_USER),
        "an unknown login name appears in the /metrics output:\n{body}"
    );
    Scrape::parse(body)
}

/// SMTP outcomes, each counted once under the label that says what happened, against a real
/// Postfix: a wrong provider password and an unreachable provider are `upstream_auth_failed`
/// and `upstream_unavailable` logins (not `ok` at AUTH, before the provider was asked), and
/// their `451` at MAIL FROM a deferred message; a sender the provider refuses is one rejected
/// message; a delivered message's bytes count for its account too.
#[test]
fn smtp_outcomes_are_counted_once_each() {
    use support::postfix::DOMAIN;
    use support::smtp_client::Raw;
    const SMTP: (&str, &str) = ("protocol", "smtp");
    let pf = support::Postfix::start(&["alice"], UPSTREAM_PW);
    let down = RefusingPort::new();
    let smtp_account = |user: &str, smtp: Upstream| {
        Account::password(&format!("{user}@{DOMAIN}"), LOCAL_PW)
            .aliases::<&str>(&[])
            .imap(Upstream::plain("127.0.0.1:9").password(UPSTREAM_PW))
            .smtp(smtp)
    };
    let postfix = |password: &str| {
        pf.starttls_upstream()
            .login(&format!("alice@{DOMAIN}"), password)
    };
    let refused_sender = format!("refused-sender@{DOMAIN}");
    let mut gw = GateConfig::new()
        .server("auth_failure_delay_ms", 10)
        .account(smtp_account("alice", postfix(UPSTREAM_PW)).aliases(&[&refused_sender]))
        .account(smtp_account("wrongpw", postfix(WRONG_PW)))
        .account(smtp_account(
            "down",
            Upstream::plain(format!("127.0.0.1:{}", down.port())),
        ))
        .metrics(Some(true))
        .start();
    let addr = gw.metrics_addr.expect("metrics address");
    let (alice, wrongpw, down_email) = (
        format!("alice@{DOMAIN}"),
        format!("wrongpw@{DOMAIN}"),
        format!("down@{DOMAIN}"),
    );

    // A delivered message, then a sender the provider refuses (every RCPT hears it, DATA
    // finds no recipient: one message, rejected).
    let (mut c, _) = Raw::connect(gw.smtp_addr);
    assert!(c.login(&alice, LOCAL_PW).starts_with("235"));
    let body = "Subject: counted\r\n\r\nthe bytes of this message count for alice\r\n";
    assert!(c.cmd(&format!("MAIL FROM:<{alice}>")).starts_with("250"));
    assert!(c
        .cmd(&format!("RCPT TO:<rcpt@{DOMAIN}>"))
        .starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let r = c.cmd(&format!("{body}."));
    assert!(r.starts_with("250"), "{r}");
    assert!(c
        .cmd(&format!("MAIL FROM:<refused-sender@{DOMAIN}>"))
        .starts_with("250"));
    for rcpt in ["a", "b"] {
        let r = c.cmd(&format!("RCPT TO:<{rcpt}@{DOMAIN}>"));
        assert!(r.starts_with("554"), "{r}");
    }
    assert!(c.cmd("DATA").starts_with("554 5.5.1"));
    assert!(c.cmd("QUIT").starts_with("221"));

    // The provider refuses the stored password; the provider is down.
    for (email, want) in [
        (
            &wrongpw,
            "451 4.7.0 The mail provider rejected the credential",
        ),
        (&down_email, "451 4.4.1"),
    ] {
        let (mut c, _) = Raw::connect(gw.smtp_addr);
        assert!(c.login(email, LOCAL_PW).starts_with("235"));
        let r = c.cmd(&format!("MAIL FROM:<{email}>"));
        assert!(r.starts_with(want), "{email}: {r}");
        assert!(c.cmd("QUIT").starts_with("221"));
    }

    let s = poll(SETTLE_TIMEOUT, SETTLE_STEP, || {
        let s = scrape(addr).unwrap_or_else(|e| panic!("scrape: {e}"));
        (s.get(SESSIONS_ACTIVE, &[SMTP]) == Some(0.0)).then_some(s)
    })
    .expect("the SMTP sessions to end");
    for (result, n) in [
        ("ok", 1.0),
        ("upstream_auth_failed", 1.0),
        ("upstream_unavailable", 1.0),
    ] {
        s.expect(LOGINS, &[SMTP, ("result", result)], n);
    }
    s.expect_only_nonzero(
        LOGINS,
        &[
            &[SMTP, ("result", "ok")],
            &[SMTP, ("result", "upstream_auth_failed")],
            &[SMTP, ("result", "upstream_unavailable")],
        ],
    );
    s.expect(
        ACCOUNT_LOGINS,
        &[("account", &alice), ("result", "ok")],
        1.0,
    );
    s.expect(
        ACCOUNT_LOGINS,
        &[("account", &wrongpw), ("result", "upstream_auth_failed")],
        1.0,
    );
    s.expect(
        ACCOUNT_LOGINS,
        &[("account", &down_email), ("result", "upstream_unavailable")],
        1.0,
    );
    s.expect(SMTP_MESSAGES, &[("result", "ok")], 1.0);
    s.expect(SMTP_MESSAGES, &[("result", "rejected")], 1.0);
    s.expect(SMTP_MESSAGES, &[("result", "deferred")], 2.0);
    s.expect_only_nonzero(
        SMTP_MESSAGES,
        &[
            &[("result", "ok")],
            &[("result", "rejected")],
            &[("result", "deferred")],
        ],
    );
    let upstream = [
        ("account", alice.as_str()),
        ("direction", "client_to_upstream"),
    ];
    s.expect(ACCOUNT_BYTES, &upstream, body.len() as f64);
    s.expect(
        BYTES,
        &[SMTP, ("direction", "client_to_upstream")],
        body.len() as f64,
    );
    s.expect(UPSTREAM_ERRORS, &[SMTP, ("kind", "auth")], 1.0);
    s.expect(UPSTREAM_ERRORS, &[SMTP, ("kind", "connect")], 1.0);
    assert_bounded(&s, &[&alice, &wrongpw, &down_email]);
    let secrets = secrets();
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    gw.assert_no_secrets(&refs);
}

/// The alert rules shipped in `conf/alerts.yml`: Prometheus's own `promtool` checks them and
/// runs their unit tests (`conf/alerts_test.yml`), and every mailgate series they use is one
/// the README's metric table documents (so a renamed metric cannot leave a rule that never
/// fires), with the labels they select on.
#[test]
fn alert_rules_pass_promtool_and_use_documented_series() {
    let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ] {
        let mut cmd = std::process::Command::new("promtool");
        cmd.args(args).current_dir(&conf);
        let out = support::proc::run_with_timeout(cmd, None, support::proc::PROCESS_TIMEOUT);
        assert!(
            out.status.success(),
            "promtool {args:?} (install Debian's prometheus):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rules = fs::read_to_string(conf.join("alerts.yml")).expect("conf/alerts.yml");
    let exprs = rules.lines().filter_map(|l| l.trim().strip_prefix("expr:"));
    assert!(documented_series_in("alerts.yml", exprs) >= 2);
}

/// Every query of `conf/grafana-dashboard.json` selects series (and labels) the README
/// documents.
#[test]
fn dashboard_queries_use_documented_series() {
    let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let text = fs::read_to_string(conf.join("grafana-dashboard.json")).expect("dashboard");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let exprs: Vec<String> = doc["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    let used = documented_series_in("grafana-dashboard.json", exprs.iter().map(String::as_str));
    assert!(used >= exprs.len(), "a query selects no mailgate series");
}

/// Asserts that each `mailgate_…` series the PromQL `exprs` select is in the README's metric
/// table with the labels they match on (Prometheus's own `instance`, `job` and `le` aside);
/// returns how many series selections there were.
fn documented_series_in<'a>(source: &str, exprs: impl Iterator<Item = &'a str>) -> usize {
    let documented = documented_metrics();
    let mut used = 0;
    for expr in exprs {
        for (at, _) in expr.match_indices("mailgate_") {
            let name: String = expr[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // Histograms are documented by their base name.
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| documented.contains_key(*b)))
                .unwrap_or(&name);
            let labels = documented
                .get(base)
                .unwrap_or_else(|| panic!("{name} ({source}) is not in the README's table"));
            let selector = expr[at + name.len()..]
                .strip_prefix('{')
                .unwrap_or_default();
            let selector = selector.split('}').next().unwrap_or_default();
            for label in selector
                .split(',')
                .filter_map(|m| m.split(['=', '!']).next())
            {
                let label = label.trim();
                assert!(
                    label.is_empty()
                        || ["instance", "job", "le"].contains(&label)
                        || labels.contains(label),
                    "{name}{{{label}}} in {source}: no such label in the README"
                );
            }
            used += 1;
        }
    }
    used
}
