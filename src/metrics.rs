//! Metric names in one place, and the Prometheus exporter's start-up.
//!
//! Every metric mailgate emits is named here, with its labels, so that the README's table,
//! the Grafana dashboard and the code cannot drift apart. Label values come from small fixed
//! sets (protocol, result, kind, direction, known IMAP command names); the per-account metrics
//! exist only when `[metrics] per_account = true`, because one time series per account and
//! result is the operator's choice to pay for.
//!
//! Without a `[metrics]` section no recorder is installed and every call here is a no-op.

use metrics::{counter, gauge, histogram, Counter};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

mod imap_commands;
pub use imap_commands::{imap_command_label, CommandCounters, IMAP_COMMANDS};

/// Sessions accepted, by protocol (`imap`, `smtp`).
pub const SESSIONS_TOTAL: &str = "mailgate_sessions_total";
/// Sessions open now, by protocol.
pub const SESSIONS_ACTIVE: &str = "mailgate_sessions_active";
/// Login attempts by protocol and result: ok, bad_password, unknown_user, upstream_auth_failed,
/// upstream_unavailable, throttled (refused unchecked during a lock-out, see `throttle`).
pub const LOGINS_TOTAL: &str = "mailgate_logins_total";
/// Seconds from starting the upstream connection to a logged-in upstream session, by protocol.
pub const UPSTREAM_CONNECT_SECONDS: &str = "mailgate_upstream_connect_seconds";
/// Upstream failures by protocol and kind: dns, connect, tls, timeout, protocol, auth.
pub const UPSTREAM_ERRORS_TOTAL: &str = "mailgate_upstream_errors_total";
/// Bytes relayed by protocol and direction (`client_to_upstream`, `upstream_to_client`); for
/// SMTP, the message bytes written to the provider.
pub const BYTES_TOTAL: &str = "mailgate_bytes_total";
/// IMAP commands relayed after login, by command name (known names; anything else `other`).
pub const IMAP_COMMANDS_TOTAL: &str = "mailgate_imap_commands_total";
/// Logins with `[server.warm_sessions]` on, by result: `hit` (a kept upstream connection was
/// used), `miss` (none was kept: a new one was opened).
pub const IMAP_WARM_LOGINS_TOTAL: &str = "mailgate_imap_warm_logins_total";
/// Upstream connections not kept or no longer kept, by reason (see `imap::warm::Reason`).
pub const IMAP_WARM_DISCARDED_TOTAL: &str = "mailgate_imap_warm_discarded_total";
/// Upstream connections kept now for an account's next login.
pub const IMAP_WARM_CONNECTIONS: &str = "mailgate_imap_warm_connections";
/// Upstream connections opened ahead of a polling client's expected login
/// (`pre_open_secs`), by result: `opened`, `failed`.
pub const IMAP_WARM_PRE_OPENED_TOTAL: &str = "mailgate_imap_warm_pre_opened_total";
/// SMTP messages by result: `ok` (the provider accepted it), `rejected` (the provider refused
/// it for good, 5xx), `deferred` (4xx: the client was told to retry), `too_big` (over
/// `max_message_size`, never sent).
pub const SMTP_MESSAGES_TOTAL: &str = "mailgate_smtp_messages_total";
/// Sizes of messages the provider accepted, in bytes.
pub const SMTP_MESSAGE_BYTES: &str = "mailgate_smtp_message_bytes";
/// Connections refused because `max_sessions` was reached, by protocol.
pub const SESSIONS_REFUSED_TOTAL: &str = "mailgate_sessions_refused_total";
/// Connections to a listener behind a proxy closed before their session, by reason:
/// `untrusted` (not from `[server.proxy_protocol] trusted`), `timeout`, `closed`, `not_proxy`,
/// `too_long`, `malformed`, `unsupported` (the PROXY header's faults).
pub const PROXY_HEADER_REJECTED_TOTAL: &str = "mailgate_proxy_header_rejected_total";
/// Configuration reloads by result (`ok`, `error`).
pub const CONFIG_RELOADS_TOTAL: &str = "mailgate_config_reloads_total";
/// OAuth 2.0 access-token refreshes by result: `ok`, `revoked` (the identity provider refused
/// the refresh token: run `mailgate oauth authorize EMAIL`), `error` (endpoint unreachable or
/// another failure; retried later).
pub const OAUTH_REFRESH_TOTAL: &str = "mailgate_oauth_refresh_total";
/// OAuth accounts by state after the last upkeep pass: `ok`, `expiring` (refreshing fails for
/// now; the access token runs out), `needs_authorization` (run `mailgate oauth authorize
/// EMAIL`).
pub const OAUTH_ACCOUNTS: &str = "mailgate_oauth_accounts";
/// The Unix time at which the first of the OAuth accounts' access tokens expires, as of the
/// last upkeep pass.
pub const OAUTH_ACCESS_EARLIEST_EXPIRY: &str =
    "mailgate_oauth_access_token_earliest_expiry_timestamp_seconds";
/// The Unix time at which the first of the OAuth accounts' refresh tokens expires, among those
/// whose provider said (and that still work), as of the last upkeep pass.
pub const OAUTH_REFRESH_EARLIEST_EXPIRY: &str =
    "mailgate_oauth_refresh_token_earliest_expiry_timestamp_seconds";
/// The Unix time at which the last OAuth upkeep pass ended.
pub const OAUTH_UPKEEP_LAST_RUN: &str = "mailgate_oauth_upkeep_last_run_timestamp_seconds";
/// Sent copies by action: `appended` (mailgate filed it in the Sent folder), `append_failed`
/// (that upload failed; the message was sent all the same), `left_to_provider` (the provider
/// files it; the submission was recorded so a client's upload of it can be dropped),
/// `duplicate_dropped` (a client's upload of a message the provider already filed, answered
/// without storing), `left_to_client`, `not_copied` (too large, too many uploads at once, or
/// no Sent folder found).
pub const SENT_COPIES_TOTAL: &str = "mailgate_sent_copies_total";
/// Always 1, labelled with the running version.
pub const BUILD_INFO: &str = "mailgate_build_info";
/// Per account (only with `per_account = true`): logins by account and result.
pub const ACCOUNT_LOGINS_TOTAL: &str = "mailgate_account_logins_total";
/// Per account (only with `per_account = true`): bytes by account and direction.
pub const ACCOUNT_BYTES_TOTAL: &str = "mailgate_account_bytes_total";
/// Per account (only with `per_account = true`): when its access token expires.
pub const ACCOUNT_OAUTH_ACCESS_EXPIRY: &str =
    "mailgate_account_oauth_access_token_expiry_timestamp_seconds";
/// Per account (only with `per_account = true`): when its refresh token expires, where known.
pub const ACCOUNT_OAUTH_REFRESH_EXPIRY: &str =
    "mailgate_account_oauth_refresh_token_expiry_timestamp_seconds";
/// TLS handshakes with the provider, by protocol and `resumed` (`true`: the server took up a
/// session of an earlier connection, saving a round trip and the certificate check).
pub const UPSTREAM_TLS_HANDSHAKES_TOTAL: &str = "mailgate_upstream_tls_handshakes_total";

/// Histogram buckets for upstream connect+login time: providers answer in 50 ms to a few
/// seconds; the time-outs cap it at a minute.
const CONNECT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Protocols the gateway serves (the `protocol` label's values).
pub const PROTOCOLS: &[&str] = &["imap", "smtp"];

/// Message size buckets: 1 KiB to 64 MiB (the default limit is 50 MiB).
const MESSAGE_BUCKETS: &[f64] = &[
    1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0, 67108864.0,
];

static PER_ACCOUNT: AtomicBool = AtomicBool::new(false);

/// The exporter could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the metrics exporter on {addr}: {error}")]
pub struct MetricsError {
    addr: SocketAddr,
    error: BuildError,
}

/// Installs the Prometheus recorder and serves `/metrics` on `listen`. Call inside the runtime.
pub fn start(listen: SocketAddr, per_account: bool) -> Result<(), MetricsError> {
    PER_ACCOUNT.store(per_account, Ordering::Relaxed);
    let err = |source| MetricsError {
        addr: listen,
        error: source,
    };
    PrometheusBuilder::new()
        .with_http_listener(listen)
        .set_buckets_for_metric(
            Matcher::Full(UPSTREAM_CONNECT_SECONDS.to_owned()),
            CONNECT_BUCKETS,
        )
        .map_err(err)?
        .set_buckets_for_metric(
            Matcher::Full(SMTP_MESSAGE_BYTES.to_owned()),
            MESSAGE_BUCKETS,
        )
        .map_err(err)?
        .install()
        .map_err(err)?;
    describe();
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    for result in ["ok", "revoked", "error"] {
        counter!(OAUTH_REFRESH_TOTAL, "result" => result).absolute(0);
    }
    for action in SentCopyAction::ALL {
        counter!(SENT_COPIES_TOTAL, "action" => action.as_str()).absolute(0);
    }
    // Make the main series visible (at zero) before the first session.
    for &protocol in PROTOCOLS {
        counter!(SESSIONS_TOTAL, "protocol" => protocol).absolute(0);
        gauge!(SESSIONS_ACTIVE, "protocol" => protocol).set(0.0);
    }
    Ok(())
}

/// `# HELP` texts, so that Prometheus and Grafana show what each series means.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(SESSIONS_TOTAL, "Client connections accepted.");
    describe_gauge!(SESSIONS_ACTIVE, "Client connections open now.");
    describe_counter!(
        SESSIONS_REFUSED_TOTAL,
        "Connections refused at max_sessions."
    );
    describe_counter!(LOGINS_TOTAL, "Login attempts by result.");
    describe_histogram!(
        UPSTREAM_CONNECT_SECONDS,
        Unit::Seconds,
        "Time from connecting to the provider to a logged-in upstream session."
    );
    describe_counter!(UPSTREAM_ERRORS_TOTAL, "Upstream failures by kind.");
    describe_counter!(BYTES_TOTAL, Unit::Bytes, "Bytes relayed after login.");
    describe_counter!(IMAP_COMMANDS_TOTAL, "IMAP commands relayed after login.");
    describe_counter!(
        IMAP_WARM_LOGINS_TOTAL,
        "IMAP logins with warm sessions on, by result (hit: a kept upstream connection was used)."
    );
    describe_counter!(
        IMAP_WARM_DISCARDED_TOTAL,
        "Upstream IMAP connections not kept or no longer kept, by reason."
    );
    describe_gauge!(
        IMAP_WARM_CONNECTIONS,
        "Upstream IMAP connections kept now for an account's next login."
    );
    describe_counter!(
        IMAP_WARM_PRE_OPENED_TOTAL,
        "Upstream IMAP connections opened ahead of a polling client's expected login, by result."
    );
    describe_counter!(SMTP_MESSAGES_TOTAL, "SMTP messages by result.");
    describe_histogram!(
        SMTP_MESSAGE_BYTES,
        Unit::Bytes,
        "Sizes of messages the provider accepted."
    );
    describe_counter!(
        PROXY_HEADER_REJECTED_TOTAL,
        "Connections to a listener behind a proxy closed before their session, by reason."
    );
    describe_counter!(CONFIG_RELOADS_TOTAL, "Configuration reloads by result.");
    describe_counter!(
        OAUTH_REFRESH_TOTAL,
        "OAuth access-token refreshes by result (revoked: run mailgate oauth authorize)."
    );
    describe_gauge!(
        OAUTH_ACCOUNTS,
        "OAuth accounts by state after the last upkeep (needs_authorization: run mailgate oauth authorize)."
    );
    describe_gauge!(
        OAUTH_ACCESS_EARLIEST_EXPIRY,
        Unit::Seconds,
        "Unix time when the first OAuth access token expires (as of the last upkeep; a login refreshes it)."
    );
    describe_gauge!(
        OAUTH_REFRESH_EARLIEST_EXPIRY,
        Unit::Seconds,
        "Unix time when the first OAuth refresh token whose expiry the provider stated expires (run mailgate oauth authorize before)."
    );
    describe_gauge!(
        OAUTH_UPKEEP_LAST_RUN,
        Unit::Seconds,
        "Unix time when the last OAuth upkeep pass ended."
    );
    describe_gauge!(
        ACCOUNT_OAUTH_ACCESS_EXPIRY,
        Unit::Seconds,
        "Unix time when the account's OAuth access token expires (as of the last upkeep)."
    );
    describe_gauge!(
        ACCOUNT_OAUTH_REFRESH_EXPIRY,
        Unit::Seconds,
        "Unix time when the account's OAuth refresh token expires, where the provider stated it."
    );
    describe_counter!(
        SENT_COPIES_TOTAL,
        "What happened to the Sent copy of each message the provider accepted, by action."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the version label names the running build."
    );
    describe_counter!(
        ACCOUNT_LOGINS_TOTAL,
        "Login attempts by account and result."
    );
    describe_counter!(
        ACCOUNT_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes relayed by account."
    );
    describe_counter!(
        UPSTREAM_TLS_HANDSHAKES_TOTAL,
        "TLS handshakes with the provider, by whether an earlier session was resumed."
    );
}

/// Whether per-account series are enabled.
pub fn per_account() -> bool {
    PER_ACCOUNT.load(Ordering::Relaxed)
}

/// Counts a session as open until dropped.
pub struct ActiveSession {
    protocol: &'static str,
}

impl ActiveSession {
    /// Counts a new session of `protocol`.
    pub fn new(protocol: &'static str) -> Self {
        counter!(SESSIONS_TOTAL, "protocol" => protocol).increment(1);
        gauge!(SESSIONS_ACTIVE, "protocol" => protocol).increment(1.0);
        ActiveSession { protocol }
    }
}

impl Drop for ActiveSession {
    fn drop(&mut self) {
        gauge!(SESSIONS_ACTIVE, "protocol" => self.protocol).decrement(1.0);
    }
}

/// Counts one login attempt.
pub fn login(protocol: &'static str, result: &'static str, account: Option<&str>) {
    counter!(LOGINS_TOTAL, "protocol" => protocol, "result" => result).increment(1);
    if let (true, Some(account)) = (per_account(), account) {
        counter!(ACCOUNT_LOGINS_TOTAL, "account" => account.to_owned(), "result" => result)
            .increment(1);
    }
}

/// Records a successful upstream connect+login duration.
pub fn upstream_connected(protocol: &'static str, seconds: f64) {
    histogram!(UPSTREAM_CONNECT_SECONDS, "protocol" => protocol).record(seconds);
}

/// Counts an upstream failure of `kind`.
pub fn upstream_error(protocol: &'static str, kind: &'static str) {
    counter!(UPSTREAM_ERRORS_TOTAL, "protocol" => protocol, "kind" => kind).increment(1);
}

/// Counts one SMTP message outcome; `bytes` is its size (recorded for accepted messages).
pub fn smtp_message(result: &'static str, bytes: u64) {
    counter!(SMTP_MESSAGES_TOTAL, "result" => result).increment(1);
    if result == "ok" {
        histogram!(SMTP_MESSAGE_BYTES).record(bytes as f64);
    }
}

/// Adds message bytes written to the SMTP upstream (before dot-stuffing), to the account's
/// series too when `counters` has one.
pub fn smtp_body_bytes(counters: Option<&ByteCounters>, n: u64) {
    match counters {
        Some(c) => c.add_to_upstream(n),
        None => counter!(BYTES_TOTAL, "protocol" => "smtp", "direction" => "client_to_upstream")
            .increment(n),
    }
}

/// Counts a login with warm sessions on: `hit` or `miss`.
pub fn imap_warm_login(result: &'static str) {
    counter!(IMAP_WARM_LOGINS_TOTAL, "result" => result).increment(1);
}

/// Counts an upstream connection not kept, or no longer kept, for `reason`.
pub fn imap_warm_discarded(reason: &'static str) {
    counter!(IMAP_WARM_DISCARDED_TOTAL, "reason" => reason).increment(1);
}

/// Counts a connection opened ahead of a polling client's login: `opened` or `failed`.
pub fn imap_warm_pre_opened(result: &'static str) {
    counter!(IMAP_WARM_PRE_OPENED_TOTAL, "result" => result).increment(1);
}

/// The number of upstream connections kept now.
pub fn imap_warm_connections(n: usize) {
    gauge!(IMAP_WARM_CONNECTIONS).set(n as f64);
}

/// Counts a connection refused at the session limit.
pub fn session_refused(protocol: &'static str) {
    counter!(SESSIONS_REFUSED_TOTAL, "protocol" => protocol).increment(1);
}

/// Counts a connection to a listener behind a proxy closed before its session.
pub fn proxy_header_rejected(reason: &'static str) {
    counter!(PROXY_HEADER_REJECTED_TOTAL, "reason" => reason).increment(1);
}

/// Counts one OAuth token refresh (`ok`, `revoked`, `error`).
pub fn oauth_refresh(result: &'static str) {
    counter!(OAUTH_REFRESH_TOTAL, "result" => result).increment(1);
}

/// Sets the OAuth accounts per state (`ok`, `expiring`, `needs_authorization`) after an
/// upkeep pass.
pub fn oauth_accounts(ok: usize, expiring: usize, needs_authorization: usize) {
    for (state, n) in [
        ("ok", ok),
        ("expiring", expiring),
        ("needs_authorization", needs_authorization),
    ] {
        gauge!(OAUTH_ACCOUNTS, "state" => state).set(n as f64);
    }
}

/// One OAuth account's token expiries (Unix times; `None`: unknown) after an upkeep pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenExpiry {
    /// The account (the token file's).
    pub account: String,
    /// When the access token expires.
    pub access: Option<u64>,
    /// When the refresh token expires (`None` also when it no longer works).
    pub refresh: Option<u64>,
}

/// An expiry gauge: its name and account (empty for the aggregates, which have no label).
type ExpirySeries = (&'static str, String);

/// The expiry series shown so far. The exporter cannot remove a series, so one that has no
/// value any more (its account went in a reload, its expiry became unknown) is set to NaN,
/// which no alert comparison matches and `min` skips.
static EXPIRY_SHOWN: Mutex<BTreeSet<ExpirySeries>> = Mutex::new(BTreeSet::new());

/// Sets the expiry gauges after an upkeep pass over `found`: the earliest of each kind, and,
/// with `per_account`, each account's.
pub fn oauth_expiries(found: &[TokenExpiry]) {
    let mut shown = EXPIRY_SHOWN.lock().unwrap_or_else(|e| e.into_inner());
    for ((name, account), value) in expiry_values(&mut shown, found, per_account()) {
        if account.is_empty() {
            gauge!(name).set(value);
        } else {
            gauge!(name, "account" => account).set(value);
        }
    }
}

/// The values to set for `found`, given the series `shown` so far (updated): every known
/// expiry, and NaN for each series shown before that has none now.
fn expiry_values(
    shown: &mut BTreeSet<ExpirySeries>,
    found: &[TokenExpiry],
    per_account: bool,
) -> BTreeMap<ExpirySeries, f64> {
    let mut values = BTreeMap::new();
    type Expiry = fn(&TokenExpiry) -> Option<u64>;
    let kinds: [(&'static str, &'static str, Expiry); 2] = [
        (
            OAUTH_ACCESS_EARLIEST_EXPIRY,
            ACCOUNT_OAUTH_ACCESS_EXPIRY,
            |e| e.access,
        ),
        (
            OAUTH_REFRESH_EARLIEST_EXPIRY,
            ACCOUNT_OAUTH_REFRESH_EXPIRY,
            |e| e.refresh,
        ),
    ];
    for (earliest, each, at) in kinds {
        if let Some(first) = found.iter().filter_map(at).min() {
            values.insert((earliest, String::new()), first as f64);
        }
        for e in found.iter().filter(|_| per_account) {
            if let Some(t) = at(e) {
                values.insert((each, e.account.clone()), t as f64);
            }
        }
    }
    let gone: Vec<ExpirySeries> = shown
        .iter()
        .filter(|s| !values.contains_key(*s))
        .cloned()
        .collect();
    *shown = values.keys().cloned().collect();
    values.extend(gone.into_iter().map(|s| (s, f64::NAN)));
    values
}

/// Notes the end of an upkeep pass (Unix time).
pub fn oauth_upkeep_ran(at: u64) {
    gauge!(OAUTH_UPKEEP_LAST_RUN).set(at as f64);
}

/// What happened to the Sent copy of a message (the `action` label of [`SENT_COPIES_TOTAL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentCopyAction {
    Appended,
    AppendFailed,
    LeftToProvider,
    DuplicateDropped,
    LeftToClient,
    NotCopied,
}

impl SentCopyAction {
    /// Every action (each series is shown at zero from the start).
    pub const ALL: [SentCopyAction; 6] = [
        SentCopyAction::Appended,
        SentCopyAction::AppendFailed,
        SentCopyAction::LeftToProvider,
        SentCopyAction::DuplicateDropped,
        SentCopyAction::LeftToClient,
        SentCopyAction::NotCopied,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SentCopyAction::Appended => "appended",
            SentCopyAction::AppendFailed => "append_failed",
            SentCopyAction::LeftToProvider => "left_to_provider",
            SentCopyAction::DuplicateDropped => "duplicate_dropped",
            SentCopyAction::LeftToClient => "left_to_client",
            SentCopyAction::NotCopied => "not_copied",
        }
    }
}

/// Counts one Sent-copy decision.
pub fn sent_copy(action: SentCopyAction) {
    counter!(SENT_COPIES_TOTAL, "action" => action.as_str()).increment(1);
}

/// Counts a configuration reload.
pub fn config_reload(ok: bool) {
    counter!(CONFIG_RELOADS_TOTAL, "result" => if ok { "ok" } else { "error" }).increment(1);
}

/// Byte counters for one session, resolved once (the relay adds to them on every write).
pub struct ByteCounters {
    /// Client → upstream.
    pub to_upstream: Counter,
    /// Upstream → client.
    pub to_client: Counter,
    account: Option<(Counter, Counter)>,
}

impl ByteCounters {
    /// Counters for `protocol`, plus per-account ones when enabled.
    pub fn new(protocol: &'static str, account: &str) -> Self {
        let account = per_account().then(|| {
            (
                counter!(ACCOUNT_BYTES_TOTAL, "account" => account.to_owned(), "direction" => "client_to_upstream"),
                counter!(ACCOUNT_BYTES_TOTAL, "account" => account.to_owned(), "direction" => "upstream_to_client"),
            )
        });
        ByteCounters {
            to_upstream: counter!(BYTES_TOTAL, "protocol" => protocol, "direction" => "client_to_upstream"),
            to_client: counter!(BYTES_TOTAL, "protocol" => protocol, "direction" => "upstream_to_client"),
            account,
        }
    }

    /// Adds `n` bytes sent to the upstream.
    pub fn add_to_upstream(&self, n: u64) {
        self.to_upstream.increment(n);
        if let Some((up, _)) = &self.account {
            up.increment(n);
        }
    }

    /// Adds `n` bytes sent to the client.
    pub fn add_to_client(&self, n: u64) {
        self.to_client.increment(n);
        if let Some((_, down)) = &self.account {
            down.increment(n);
        }
    }
}

/// Counts one completed TLS handshake with the provider; `resumed`: the server took up an
/// earlier connection's session.
pub fn upstream_tls_handshake(protocol: &'static str, resumed: bool) {
    let resumed = if resumed { "true" } else { "false" };
    counter!(UPSTREAM_TLS_HANDSHAKES_TOTAL, "protocol" => protocol, "resumed" => resumed)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expiry(account: &str, access: Option<u64>, refresh: Option<u64>) -> TokenExpiry {
        TokenExpiry {
            account: account.into(),
            access,
            refresh,
        }
    }

    /// The earliest expiry of each kind without an account label; per-account series only
    /// when asked; a series that has no value any more is set to NaN once, then left alone.
    #[test]
    fn expiry_series_follow_the_accounts() {
        let key = |name, account: &str| (name, account.to_owned());
        let mut shown = BTreeSet::new();
        let two = [
            expiry("a@x", Some(5_000), None),
            expiry("b@x", Some(4_000), Some(90_000)),
        ];
        let v = expiry_values(&mut shown, &two, false);
        let want = BTreeMap::from([
            (key(OAUTH_ACCESS_EARLIEST_EXPIRY, ""), 4_000.0),
            (key(OAUTH_REFRESH_EARLIEST_EXPIRY, ""), 90_000.0),
        ]);
        assert_eq!(v, want);

        let v = expiry_values(&mut shown, &two, true);
        assert_eq!(v.len(), 5, "{v:?}");
        assert_eq!(v[&key(ACCOUNT_OAUTH_ACCESS_EXPIRY, "a@x")], 5_000.0);
        assert_eq!(v[&key(ACCOUNT_OAUTH_REFRESH_EXPIRY, "b@x")], 90_000.0);
        assert!(!v.contains_key(&key(ACCOUNT_OAUTH_REFRESH_EXPIRY, "a@x")));

        // b@x went in a reload: its series and the refresh aggregate become NaN.
        let v = expiry_values(&mut shown, &two[..1], true);
        assert_eq!(v[&key(OAUTH_ACCESS_EARLIEST_EXPIRY, "")], 5_000.0);
        for gone in [
            key(OAUTH_REFRESH_EARLIEST_EXPIRY, ""),
            key(ACCOUNT_OAUTH_ACCESS_EXPIRY, "b@x"),
            key(ACCOUNT_OAUTH_REFRESH_EXPIRY, "b@x"),
        ] {
            assert!(v[&gone].is_nan(), "{gone:?}: {v:?}");
        }
        assert_eq!(v.len(), 5, "{v:?}");
        let v = expiry_values(&mut shown, &two[..1], true);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(expiry_values(&mut shown, &[], true)
            .values()
            .all(|v| v.is_nan()));
        assert!(expiry_values(&mut shown, &[], true).is_empty());
    }
}
