//! OAuth upkeep as an operator sees it, with no client ever logging in: the token expiry
//! gauges after each upkeep pass, a refresh token revoked at the identity provider showing as
//! `needs_authorization` in the metrics and in `mailgate oauth status` (another process), and
//! the per-account series only with `per_account = true`. The account is authorized with the
//! real `mailgate oauth authorize --device` against the test identity provider
//! (`tests/support/idp.rs`), which states its refresh tokens' lifetime.
//!
//! Run: `cargo test --test oauth_upkeep`

mod support;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::idp::CLIENT_ID;
use support::mailgate::run;
use support::proc::{poll, sighup, PROCESS_TIMEOUT};
use support::scrape::{assert_bounded, fetch, Scrape};
use support::{Account, GateConfig, Idp, Mailgate, Upstream};

const EMAIL: &str = "ola@example.no";
/// The identity provider's access-token lifetime (`expires_in`, its default).
const ACCESS_LIFETIME: u64 = 3600;
/// The refresh-token lifetime it states (`refresh_token_expires_in`).
const REFRESH_LIFETIME: u64 = 30 * 86_400;

const STATE: &str = "mailgate_oauth_accounts";
const ACCESS_EARLIEST: &str = "mailgate_oauth_access_token_earliest_expiry_timestamp_seconds";
const REFRESH_EARLIEST: &str = "mailgate_oauth_refresh_token_earliest_expiry_timestamp_seconds";
const LAST_RUN: &str = "mailgate_oauth_upkeep_last_run_timestamp_seconds";
const ACCOUNT_ACCESS: &str = "mailgate_account_oauth_access_token_expiry_timestamp_seconds";
const ACCOUNT_REFRESH: &str = "mailgate_account_oauth_refresh_token_expiry_timestamp_seconds";

/// The config: one OAuth account at `idp` (its IMAP server is never reached: nobody logs in),
/// upkeep every second, `[metrics]` with `per_account`.
fn config(idp: &Idp, per_account: Option<bool>) -> GateConfig {
    let account = Account::password(EMAIL, "Local-pw-unused-4b1e")
        .imap(Upstream::plain("127.0.0.1:1"))
        .oauth2("client_id", CLIENT_ID)
        .oauth2("token_url", idp.url("/token"))
        .oauth2("device_authorization_url", idp.url("/device"))
        .oauth2("scopes", ["mail"].as_slice());
    GateConfig::new()
        .server("oauth_upkeep_secs", 1)
        .account(account)
        .metrics(per_account)
}

/// The identity provider (stating refresh-token lifetimes) and mailgate, with the account
/// authorized by `mailgate oauth authorize --device`. Also the Unix time before the
/// authorization: every expiry is its lifetime after a moment since then.
fn start(per_account: Option<bool>) -> (Idp, Mailgate, u64) {
    let idp = Idp::start(EMAIL);
    idp.set_refresh_token_expires_in(REFRESH_LIFETIME);
    let gate = config(&idp, per_account).start();
    let before = unix_now();
    let out = oauth(&gate, &["authorize", EMAIL, "--device"]);
    assert!(out.contains(&format!("Authorized {EMAIL}")), "{out}");
    (idp, gate, before)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// `mailgate oauth ARGS --config PATH`, a process of its own; asserts success, returns stdout.
fn oauth(gate: &Mailgate, args: &[&str]) -> String {
    let config = gate.config_path.to_str().expect("utf-8 path");
    let out = run(&[&["oauth"], args, &["--config", config]].concat(), None);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "mailgate oauth {args:?} failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Scrapes until `done` holds (bounded); the scrape that did.
fn wait(gate: &Mailgate, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let addr: SocketAddr = gate.metrics_addr.expect("metrics");
    let mut last = String::new();
    let found = poll(PROCESS_TIMEOUT, Duration::from_millis(100), || {
        let s = Scrape::parse(fetch(addr).ok()?).ok()?;
        if done(&s) {
            return Some(s);
        }
        last = s.body;
        None
    });
    found.unwrap_or_else(|| panic!("no scrape with {what}:\n{last}\n{}", gate.log()))
}

/// The accounts in each upkeep state are `[ok, expiring, needs_authorization]`.
fn states(s: &Scrape, want: [f64; 3]) -> bool {
    ["ok", "expiring", "needs_authorization"]
        .iter()
        .zip(want)
        .all(|(state, n)| s.get(STATE, &[("state", state)]) == Some(n))
}

/// Asserts `value` is `lifetime` after a moment between `from` and `to` (Unix seconds; the
/// provider counts whole seconds, so one more second of slack below).
#[track_caller]
fn assert_expiry(what: &str, value: Option<f64>, lifetime: u64, from: u64, to: u64) {
    let range = (from + lifetime - 1) as f64..=(to + lifetime) as f64;
    assert!(
        value.is_some_and(|v| range.contains(&v)),
        "{what} = {value:?}, want {range:?}"
    );
}

/// With `per_account = true`: the expiry gauges say what the provider's lifetimes imply; a
/// refresh token revoked at the provider shows as `needs_authorization` in the metrics and in
/// `mailgate oauth status` with the command to run, though no client logs in; its refresh
/// expiry is no longer shown (NaN), and neither is anything of an account a reload removed.
#[test]
fn a_revoked_token_shows_in_metrics_and_status_without_a_login() {
    let (idp, gate, before) = start(Some(true));
    let account = [("account", EMAIL)];
    let s = wait(&gate, "the account ok and its expiries", |s| {
        states(s, [1.0, 0.0, 0.0]) && s.get(ACCOUNT_REFRESH, &account).is_some()
    });
    let after = unix_now() + 1;
    let access = s.get(ACCOUNT_ACCESS, &account);
    assert_expiry("access expiry", access, ACCESS_LIFETIME, before, after);
    let refresh = s.get(ACCOUNT_REFRESH, &account);
    assert_expiry("refresh expiry", refresh, REFRESH_LIFETIME, before, after);
    assert_eq!(s.get(ACCESS_EARLIEST, &[]), access, "{}", s.body);
    assert_eq!(s.get(REFRESH_EARLIEST, &[]), refresh, "{}", s.body);
    assert_expiry("last upkeep", s.get(LAST_RUN, &[]), 0, before + 1, after);
    assert_bounded(&s, &[EMAIL]);
    let status = oauth(&gate, &["status"]);
    assert!(
        status.contains(&format!("{EMAIL}: token present (device code"))
            && status.contains("; refresh token expires ")
            && status.contains("; kept alive by upkeep: next use "),
        "{status}"
    );

    // Revoked at the provider: the next pass finds it, with nobody logging in.
    let refreshes = idp.refreshes();
    idp.revoke_refresh_tokens();
    let s = wait(&gate, "needs_authorization", |s| states(s, [0.0, 0.0, 1.0]));
    assert!(idp.refreshes() > refreshes);
    assert!(s.get(ACCOUNT_REFRESH, &account).is_some_and(f64::is_nan));
    assert!(s.get(REFRESH_EARLIEST, &[]).is_some_and(f64::is_nan));
    let access = s.get(ACCOUNT_ACCESS, &account);
    assert_expiry(
        "access expiry",
        access,
        ACCESS_LIFETIME,
        before,
        unix_now() + 1,
    );
    let status = oauth(&gate, &["status"]);
    let line = status.lines().find(|l| l.starts_with(EMAIL)).unwrap_or("");
    assert!(
        line.contains("; last refresh revoked at ")
            && line
                .ends_with("; needs authorization: run `mailgate oauth authorize ola@example.no`"),
        "{status}"
    );
    assert!(
        gate.log()
            .contains("needs authorization; run `mailgate oauth authorize ola@example.no`"),
        "{}",
        gate.log()
    );

    // A reload without the account: its series and the earliest expiries become NaN.
    let addr = gate.metrics_addr.expect("metrics");
    let none = GateConfig::new()
        .server("oauth_upkeep_secs", 1)
        .account(
            Account::password("kari@example.no", "Local-pw-unused-4b1e")
                .imap(Upstream::plain("127.0.0.1:1").login("kari", "Upstream-pw-unused")),
        )
        .metrics(Some(true))
        .to_toml_with_metrics(addr);
    std::fs::write(&gate.config_path, none).expect("rewrite the config");
    sighup(gate.pid());
    let s = wait(&gate, "no OAuth account", |s| {
        states(s, [0.0, 0.0, 0.0]) && s.get(ACCOUNT_ACCESS, &account).is_some_and(f64::is_nan)
    });
    assert!(s.get(ACCESS_EARLIEST, &[]).is_some_and(f64::is_nan));
}

/// Without `per_account`: the earliest expiries and the upkeep time, no account label, and no
/// address anywhere in the scrape.
#[test]
fn expiry_metrics_name_no_account_by_default() {
    let (_idp, gate, before) = start(None);
    let s = wait(&gate, "the account ok and the expiries", |s| {
        states(s, [1.0, 0.0, 0.0]) && s.get(REFRESH_EARLIEST, &[]).is_some()
    });
    let after = unix_now() + 1;
    let access = s.get(ACCESS_EARLIEST, &[]);
    assert_expiry("access expiry", access, ACCESS_LIFETIME, before, after);
    let refresh = s.get(REFRESH_EARLIEST, &[]);
    assert_expiry("refresh expiry", refresh, REFRESH_LIFETIME, before, after);
    assert!(
        !s.body.contains("mailgate_account_") && !s.body.contains(EMAIL),
        "{}",
        s.body
    );
    assert_bounded(&s, &[]);
}
