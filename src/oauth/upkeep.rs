//! Upkeep: every OAuth account's refresh token is used at least every `oauth_upkeep_secs`
//! (default a day), also when no client logs in for weeks, so that no refresh token dies of
//! disuse (Microsoft ends one unused for 90 days, Google one unused for six months). A token
//! that can no longer be refreshed is reported at once — a log line with the command to run,
//! and `mailgate_oauth_accounts{state}` — instead of at the next client's failed login.
//!
//! The refresh goes through the same per-account lock as a login's ([`super::cache`]): at
//! most one refresh per account in flight, and a login waiting meanwhile gets the new token.

use super::cache::{keep_alive, KeptAlive};
use crate::config::{Config, OAuth2};
use crate::session::Shutdown;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{error, info, warn};

/// Longest wait between two passes: an account added by a reload, or one whose refresh
/// failed for a while, is looked at again within this.
const MAX_TICK: Duration = Duration::from_secs(3600);

/// Runs upkeep until `shutdown`, on the newest configuration `config` holds.
pub async fn run(mut config: watch::Receiver<Arc<Config>>, mut shutdown: Shutdown) {
    loop {
        let current = config.borrow_and_update().clone();
        let tick = match current.server.oauth_upkeep {
            Some(max_age) => {
                pass(&current, max_age).await;
                (max_age / 4).clamp(Duration::from_secs(1), MAX_TICK)
            }
            None => MAX_TICK,
        };
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            changed = config.changed() => if changed.is_err() { return },
            _ = shutdown.wait() => return,
        }
    }
}

/// The state gauge's label values, in its order.
#[derive(Clone, Copy)]
enum State {
    Ok,
    Expiring,
    NeedsAuthorization,
}

/// One look at every OAuth account: one refresh per token owner (the shared mailboxes of a
/// delegate share its tokens), then the state gauge, which counts accounts.
async fn pass(config: &Config, max_age: Duration) {
    let mut by_owner = HashMap::new();
    let mut counts = [0usize; 3];
    for account in &config.accounts {
        let Some(oauth) = account.imap.credential.oauth() else {
            continue;
        };
        let owner = (oauth.state_dir.clone(), oauth.identity.to_ascii_lowercase());
        let state = match by_owner.get(&owner) {
            Some(&state) => state,
            None => {
                let state = look_after(oauth, config, max_age).await;
                by_owner.insert(owner, state);
                state
            }
        };
        counts[state as usize] += 1;
    }
    let [ok, expiring, needs] = counts;
    crate::metrics::oauth_accounts(ok, expiring, needs);
}

/// Keeps one token owner's refresh token alive; its state.
async fn look_after(oauth: &OAuth2, config: &Config, max_age: Duration) -> State {
    let who = &oauth.identity;
    match keep_alive(oauth, &config.server, max_age).await {
        Ok(kept) => {
            if kept == KeptAlive::Refreshed {
                info!(account = %who, "OAuth upkeep: refresh token used, tokens renewed");
            }
            State::Ok
        }
        Err(e) if e.needs_authorize() => {
            error!(account = %who, error = %e, "OAuth upkeep: the account needs authorization; run `mailgate oauth authorize {who}`");
            State::NeedsAuthorization
        }
        Err(e) => {
            // The access token still works until it expires; the next pass tries again.
            warn!(account = %who, error = %e, "OAuth upkeep: refreshing fails for now; tried again later");
            State::Expiring
        }
    }
}
