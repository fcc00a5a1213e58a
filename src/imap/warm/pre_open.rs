//! Pre-opening (`pre_open_secs`): for an account whose client polls at a steady interval
//! ([`Polls`]), a connection is opened `pre_open_secs` before the next expected login when
//! none will be kept for it then, and kept until `pre_open_secs` after it. A client polling
//! less often than `keep_secs` — a CRM inbox every 15 minutes — then finds one without the
//! gateway holding a provider session the whole time.
//!
//! Each session's end plans the account's next pre-open; a login cancels a planned one that
//! has not started (the session's end plans anew). So a client that stops polling costs at
//! most one connection, kept `2 × pre_open_secs` and ended as `expired`. A pre-open planned
//! under a configuration a reload has replaced does nothing.

use super::keeper;
use super::open;
use super::polls::Polls;
use super::pool;
use crate::config::{Account, Config};
use crate::session::Shutdown;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::{info, warn};

/// What pre-opening knows of an account.
#[derive(Default)]
struct Learned {
    polls: Polls,
    /// The task of the planned pre-open, while it has not started.
    planned: Option<AbortHandle>,
}

/// What pre-opening knows, by account.
type State = HashMap<String, Learned>;

fn state() -> MutexGuard<'static, State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    // A panic while holding the lock leaves at worst one account's logins half recorded.
    STATE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The account `key` logs in now: recorded, and a planned pre-open that has not started is
/// cancelled (this session's end plans the next).
pub(super) fn logged_in(key: &str) {
    let mut s = state();
    let learned = s.entry(key.to_owned()).or_default();
    learned.polls.login(Instant::now());
    if let Some(task) = learned.planned.take() {
        task.abort();
    }
}

/// A session of `account` has ended: when its client polls, plans the pre-open for its next
/// expected login.
pub(super) fn plan(account: Arc<Account>, config: Arc<Config>, shutdown: Shutdown) {
    let key = pool::key(&account.email);
    let mut s = state();
    let Some(learned) = s.get_mut(&key) else {
        return;
    };
    let ahead = config.server.warm_sessions.pre_open;
    // Not when another session of the account planned it already, or when the client's next
    // login is due sooner than `pre_open_secs` from now: then what this session leaves kept
    // serves it, and a connection opened at once would only race that one into the pool.
    let Some(expected) = learned.polls.next() else {
        return;
    };
    let Some(at) = expected
        .checked_sub(ahead)
        .filter(|at| *at > Instant::now())
    else {
        return;
    };
    if learned.planned.is_some() {
        return;
    }
    let task = tokio::spawn(run(key, at, expected, account, config, shutdown));
    learned.planned = Some(task.abort_handle());
}

/// Forgets the accounts `config` no longer has.
pub(super) fn config_in_use(config: &Config) {
    state().retain(|key, learned| {
        let kept = config.account(key).is_some();
        if !kept {
            if let Some(task) = learned.planned.take() {
                task.abort();
            }
        }
        kept
    });
}

/// Waits until `at`, then opens a connection and keeps it until `pre_open_secs` after
/// `expected` when none will be kept at `expected` and the configuration is still the one in
/// use.
async fn run(
    key: String,
    at: Instant,
    expected: Instant,
    account: Arc<Account>,
    config: Arc<Config>,
    mut shutdown: Shutdown,
) {
    tokio::select! {
        _ = tokio::time::sleep_until(at) => {}
        _ = shutdown.wait() => return,
    }
    // Started: a login no longer cancels it (a connection half opened would be dropped
    // without a LOGOUT); the pool decides whether it is kept.
    if let Some(learned) = state().get_mut(&key) {
        let me = tokio::task::try_id();
        if learned.planned.as_ref().is_some_and(|p| Some(p.id()) == me) {
            learned.planned = None;
        }
    }
    if !pool::is_current(&config) || pool::kept_at(&key, expected) {
        return;
    }
    match open::fresh(&account, &config).await {
        Ok((up, origin)) => {
            crate::metrics::imap_warm_pre_opened("opened");
            info!(account = %account.email, "upstream connection opened ahead of the client's expected poll");
            let until = expected + config.server.warm_sessions.pre_open;
            keeper::park(up, origin, account, config, until, shutdown).await;
        }
        Err(e) => {
            crate::metrics::imap_warm_pre_opened("failed");
            crate::metrics::upstream_error("imap", e.kind().label());
            warn!(account = %account.email, upstream = %account.imap.address(), kind = e.kind().label(), error = %e, "opening an upstream connection ahead of the client's expected poll failed");
        }
    }
}
