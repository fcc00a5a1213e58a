//! Upkeep: every OAuth account's refresh token is used at least every `oauth_upkeep_secs`
//! (default a day), also when no client logs in for weeks, so that no refresh token dies of
//! disuse (Microsoft ends one unused for 90 days, Google one unused for six months). A token
//! that can no longer be refreshed is reported at once — a log line with the command to run,
//! `mailgate_oauth_accounts{state}`, and the token file's last refresh result, which `mailgate
//! oauth status` shows — instead of at the next client's failed login. Each pass also sets the
//! token expiry gauges and the time it ended (an alert sees upkeep stop).
//!
//! The refresh goes through the same per-account lock as a login's ([`super::cache`]): at
//! most one refresh per account in flight, and a login waiting meanwhile gets the new token.

use super::cache::{keep_alive, peek, KeptAlive};
use super::{unix_now, OAuthError};
use crate::config::{Config, OAuth2};
use crate::metrics::{self, TokenExpiry};
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
/// delegate share its tokens), then the metrics, which count and label accounts.
async fn pass(config: &Config, max_age: Duration) {
    let mut by_owner = HashMap::new();
    let mut counts = [0usize; 3];
    let mut expiries = Vec::new();
    for account in &config.accounts {
        let Some(oauth) = account.imap.credential.oauth() else {
            continue;
        };
        let owner = (oauth.state_dir.clone(), oauth.identity.to_ascii_lowercase());
        let (state, access, refresh) = match by_owner.get(&owner) {
            Some(&seen) => seen,
            None => {
                let seen = look_after(oauth, config, max_age).await;
                by_owner.insert(owner, seen);
                seen
            }
        };
        counts[state as usize] += 1;
        expiries.push(TokenExpiry {
            account: oauth.account.clone(),
            access,
            refresh,
        });
    }
    let [ok, expiring, needs] = counts;
    metrics::oauth_accounts(ok, expiring, needs);
    metrics::oauth_expiries(&expiries);
    metrics::oauth_upkeep_ran(unix_now());
}

/// Keeps one token owner's refresh token alive; its state and token expiries.
async fn look_after(
    oauth: &OAuth2,
    config: &Config,
    max_age: Duration,
) -> (State, Option<u64>, Option<u64>) {
    let who = &oauth.identity;
    let outcome = keep_alive(oauth, &config.server, max_age).await;
    let state = match &outcome {
        Ok(kept) => {
            if *kept == KeptAlive::Refreshed {
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
    };
    let (access, refresh) = expiry(oauth, &outcome).await;
    (state, access, refresh)
}

/// The owner's token expiries as upkeep left them (read from the cache: no request just for
/// the metric). A refresh token that needs authorization has no expiry worth alerting on; a
/// store that could not be read leaves both unknown.
async fn expiry(
    oauth: &OAuth2,
    outcome: &Result<KeptAlive, OAuthError>,
) -> (Option<u64>, Option<u64>) {
    let (access, refresh) = match outcome {
        Err(OAuthError::Store(_)) => (None, None),
        _ => {
            peek(oauth, |t| {
                t.map_or((None, None), |t| {
                    let access = t.access_token.as_ref().and(t.expires_at);
                    let refresh = t.refresh_token.as_ref().and(t.refresh_expires_at);
                    (access, refresh)
                })
            })
            .await
        }
    };
    let working = !matches!(outcome, Err(e) if e.needs_authorize());
    (access, refresh.filter(|_| working))
}
