//! One kept connection's task: it owns the connection until a login asks for it, the keep
//! time runs out, the provider closes it (or says anything at all: a kept connection has no
//! command in flight, so any byte is news of its end), a reload ends it, or the gateway shuts
//! down. Whatever ends it but a login takes it out of the pool and counts the reason.

use super::pool::{self, Ask};
use super::reason::Reason;
use crate::config::{Account, Config, ServerConfig};
use crate::imap::upstream::{self, LoggedIn};
use crate::session::Shutdown;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::info;

/// A kept connection and what its task needs to end it well.
pub(super) struct Kept {
    pub(super) up: LoggedIn,
    pub(super) account: Arc<Account>,
    pub(super) config: Arc<Config>,
    pub(super) key: String,
    pub(super) id: u64,
}

/// Keeps `kept` until `until` (see the module documentation).
pub(super) async fn keep(
    kept: Kept,
    ask: oneshot::Receiver<Ask>,
    until: Instant,
    mut shutdown: Shutdown,
) {
    let Kept {
        mut up,
        account,
        config,
        key,
        id,
    } = kept;
    let mut byte = [0u8; 1];
    let reason = tokio::select! {
        biased;
        asked = ask => match asked {
            Ok(Ask::HandOver(to)) => {
                // The login may have given up meanwhile; the connection then just closes.
                let _ = to.send(up);
                return;
            }
            Ok(Ask::Discard(reason)) => reason,
            // The pool forgot the entry without a word: only a reload does that.
            Err(_) => Reason::Reload,
        },
        _ = up.stream.read(&mut byte) => Reason::Closed,
        _ = tokio::time::sleep_until(until) => Reason::Expired,
        _ = shutdown.wait() => Reason::Shutdown,
    };
    pool::forget(&key, id);
    end(up, &account, &config.server, reason).await;
}

/// Ends a connection that is not kept (any more), for `reason`: counted, logged, and logged
/// out when it can still take a LOGOUT.
pub(super) async fn end(up: LoggedIn, account: &Account, server: &ServerConfig, reason: Reason) {
    reason.count();
    info!(account = %account.email, reason = reason.label(), "warm upstream connection ended");
    if reason.logout() {
        // Best effort, bounded by upstream_timeout: the provider ends it either way.
        let _ = upstream::logout(up, &account.imap, server).await;
    }
}
