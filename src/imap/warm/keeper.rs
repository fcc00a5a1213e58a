//! One kept connection's task: it owns the connection until a login asks for it, the keep
//! time runs out, the provider closes it (or says anything at all: a kept connection has no
//! command in flight, so any byte is news of its end), a reload ends it, or the gateway shuts
//! down. Whatever ends it but a login takes it out of the pool and counts the reason.

use super::open::Origin;
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
struct Kept {
    up: LoggedIn,
    account: Arc<Account>,
    config: Arc<Config>,
    key: String,
    id: u64,
}

/// Puts a clean logged-in connection in the pool and keeps it until `until`, or ends it when
/// the pool has no place for it.
pub(super) async fn park(
    up: LoggedIn,
    origin: Origin,
    account: Arc<Account>,
    config: Arc<Config>,
    until: Instant,
    shutdown: Shutdown,
) {
    let key = pool::key(&account.email);
    let (id, ask) = match pool::admit(&key, &config, origin.token_expires, until) {
        Ok(admitted) => admitted,
        Err(reason) => return end(up, &account, &config.server, reason).await,
    };
    let kept = Kept {
        up,
        account,
        config,
        key,
        id,
    };
    keep(kept, ask, until, shutdown).await;
}

/// Keeps `kept` until `until` (see the module documentation).
async fn keep(kept: Kept, ask: oneshot::Receiver<Ask>, until: Instant, mut shutdown: Shutdown) {
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
