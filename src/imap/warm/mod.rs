//! Warm upstream sessions (`[server.warm_sessions]`): when a client logs out, the gateway may
//! keep its logged-in upstream connection for a short time and give it to the account's next
//! login, which then costs the provider one round trip (a NOOP proving it alive) instead of
//! TCP, TLS, greeting and authentication — what a client that polls every minute pays on
//! every poll, as up-imapproxy spares webmail.
//!
//! A connection is kept only when the gateway can prove it clean ([`crate::imap::rewrite::track`]): the client's
//! LOGOUT is then answered by the gateway (as it is whenever nothing is in flight, warm
//! sessions on or off: the client need not wait for the provider's answer to it), the
//! connection is brought back to the state of a fresh login (UNSELECT when a mailbox is selected, else NOOP — either proves no answer of
//! the old session is still on its way) and parked in its own task ([`keeper`]) until a login
//! asks for it, `keep_secs` pass, the provider closes it, or a reload ends it ([`pool`]).
//! Before it is handed out, a NOOP proves it alive; a dead one is replaced by the next kept
//! one or a new login, and the client notices nothing. Per account at most `per_account` are
//! kept (providers limit simultaneous connections per account; Gmail to 15). With
//! `pre_open_secs`, a client that polls at a steady interval longer than the keep time gets a
//! connection opened shortly before its next poll instead ([`pre_open`]).

mod keeper;
mod open;
mod polls;
mod pool;
mod pre_open;
mod reason;

pub use open::Origin;
pub use reason::Reason;

use crate::config::{Account, Config};
use crate::imap::rewrite::Ending;
use crate::imap::upstream::{self, LoggedIn};
use crate::session::Shutdown;
use crate::upstream::UpstreamError;
use pool::Ask;
use std::sync::Arc;
use tokio::sync::oneshot;
use tracing::info;

/// Longest wait for a kept connection's NOOP before it is given up for a new login. A
/// provider answers a NOOP at once; a closed connection is known at once (its task reads
/// it); only one dropped without a word on the way waits this long.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Sessions start with `config` from now on: every connection kept under another ends (see
/// [`pool::config_in_use`]), and pre-opening forgets accounts that are gone.
pub fn config_in_use(config: &Arc<Config>) {
    pool::config_in_use(config);
    pre_open::config_in_use(config);
}

/// A logged-in upstream connection for `account`: a kept one when there is one alive, else a
/// new login (see [`upstream::login`]).
pub async fn login(
    account: &Account,
    config: &Arc<Config>,
) -> Result<(LoggedIn, Origin), UpstreamError> {
    if config.server.warm_sessions.on() {
        if !config.server.warm_sessions.pre_open.is_zero() {
            pre_open::logged_in(&pool::key(&account.email));
        }
        if let Some(found) = take(account, config).await {
            crate::metrics::imap_warm_login("hit");
            return Ok(found);
        }
        crate::metrics::imap_warm_login("miss");
    }
    open::fresh(account, config).await
}

/// The account's kept connections, most recent first, until one proves alive.
async fn take(account: &Account, config: &Arc<Config>) -> Option<(LoggedIn, Origin)> {
    let key = pool::key(&account.email);
    // Bounded: each round takes an entry out of the pool, which holds at most per_account.
    loop {
        let (found, unusable) = pool::take(&key, config, crate::oauth::unix_now());
        for (entry, reason) in unusable {
            entry.ask(Ask::Discard(reason));
        }
        let entry = found?;
        let token_expires = entry.token_expires();
        let (tx, rx) = oneshot::channel();
        if !entry.ask(Ask::HandOver(tx)) {
            continue; // its task ended by itself a moment ago
        }
        let Ok(up) = rx.await else { continue };
        // A connection dropped silently on the way (a firewall's idle time-out) answers
        // nothing: it may cost the login this much, not a whole upstream_timeout.
        let timeout = config.server.upstream_timeout.min(PROBE_TIMEOUT);
        let address = account.imap.address();
        match upstream::exchange(up, "NOOP", address, timeout).await {
            Ok(up) => {
                let origin = Origin {
                    warm: true,
                    token_expires,
                };
                return Some((up, origin));
            }
            Err(e) => {
                Reason::Stale.count();
                info!(account = %account.email, error = %e, "warm upstream connection found dead; using another");
            }
        }
    }
}

/// After the relay: keeps the connection the relay handed back, or logs it out (in the
/// background: the client has had its answer); counts why it was not kept when warm sessions
/// are on. `handed_back` is the connection when the rule ended the relay.
pub fn after_relay(
    ending: Ending,
    handed_back: Option<LoggedIn>,
    origin: Origin,
    account: Arc<Account>,
    config: Arc<Config>,
    shutdown: Shutdown,
) {
    let warm = config.server.warm_sessions.on();
    if warm && !config.server.warm_sessions.pre_open.is_zero() {
        pre_open::plan(account.clone(), config.clone(), shutdown.clone());
    }
    let unclean = match (ending, handed_back) {
        (
            Ending::LoggedOut {
                selected,
                unclean: None,
            },
            Some(up),
        ) if warm => {
            // In a task of its own: the session is over for the client and its slot.
            tokio::spawn(keep(up, selected, origin, account, config, shutdown));
            return;
        }
        (Ending::LoggedOut { unclean, .. }, Some(up)) => {
            tokio::spawn(async move {
                let _ = upstream::logout(up, &account.imap, &config.server).await;
            });
            unclean
        }
        (Ending::Passed(why), _) => Some(why),
        _ => None,
    };
    if let (true, Some(why)) = (warm, unclean) {
        Reason::State.count();
        info!(
            why,
            "upstream connection not kept: its state could not be proven clean"
        );
    }
}

/// Brings a handed-back connection to the state of a fresh login and parks it.
async fn keep(
    up: LoggedIn,
    selected: bool,
    origin: Origin,
    account: Arc<Account>,
    config: Arc<Config>,
    shutdown: Shutdown,
) {
    let server = &config.server;
    let command = if selected { "UNSELECT" } else { "NOOP" };
    let address = account.imap.address();
    let up = match upstream::exchange(up, command, address, server.upstream_timeout).await {
        // Anything after the tagged OK came unasked: the connection is not as quiet as a
        // fresh one.
        Ok(up) if up.leftover.is_empty() => up,
        Ok(_) => {
            Reason::Cleanup.count();
            info!(account = %account.email, "upstream connection not kept: the server sent more after {command}");
            return;
        }
        Err(e) => {
            Reason::Cleanup.count();
            info!(account = %account.email, error = %e, "upstream connection not kept: it did not come back clean");
            return;
        }
    };
    let until = tokio::time::Instant::now() + server.warm_sessions.keep;
    keeper::park(up, origin, account, config, until, shutdown).await;
}
