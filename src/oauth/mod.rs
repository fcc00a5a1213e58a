//! OAuth 2.0 upstream credentials: token store, token endpoint, and the run-time
//! cache that hands access tokens to IMAP and SMTP logins (the settings are
//! [`crate::config::OAuth2`]).
//!
//! One refresh in flight per account: each account's tokens sit behind one async mutex, held
//! across the refresh request. Fifty sessions logging in at the moment the token expires queue
//! on the mutex; the first refreshes, the others find the fresh token when they get the lock.
//! The cache is process-wide and keyed by the token file, so a config reload (which builds new
//! `Config` values) does not lose it and cannot start a second refresh for the same account.
//!
//! The token file is re-read whenever the cached token is not usable, so tokens written by
//! `mailgate oauth authorize` (another process) are picked up without a restart. A refresh that
//! failed is not retried for [`FAILURE_BACKOFF`] (an identity provider that is down is not
//! hammered by every login), and a revoked refresh token is not retried until the file changes.
//!
//! Tokens that could not be saved (a full disk, a broken folder) are never dropped: a provider
//! that rotates refresh tokens (Microsoft, Google may) has already invalidated the one in the
//! file, so the newest tokens stay in memory and win over the older file, the save is retried
//! at every use until it succeeds, and the log, the token store's `.unsaved` note and `mailgate
//! oauth status` say so meanwhile. Only a file with another refresh token than the one the
//! failed save left behind (a new `mailgate oauth authorize`) replaces them.

pub mod authorize;
pub mod store;
pub mod token;

use crate::config::OAuth2;
use crate::config::ServerConfig;
use crate::metrics;
use crate::secret::Secret;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use store::{Grant, LastRefresh, Store, StoreError, Tokens};
use token::{TokenError, TokenResponse};
use tracing::{error, info, warn};

/// An access token with less than this left is refreshed before use.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// After a failed refresh, logins get the same error for this long without a new request.
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(5);

/// No access token could be had. Never carries a token.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The account was never authorized (no token file).
    #[error("no OAuth token for {account}; run `mailgate oauth authorize {account}`")]
    NotAuthorized {
        /// The account.
        account: String,
    },
    /// The identity provider refused the refresh token (`invalid_grant`): revoked, expired,
    /// or the password changed.
    #[error("the identity provider rejected the refresh token for {account} ({detail}); run `mailgate oauth authorize {account}`")]
    Revoked {
        /// The account.
        account: String,
        /// The provider's error code and description.
        detail: String,
    },
    /// The token file or key cannot be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The token endpoint failed (unreachable, 5xx, another OAuth error).
    #[error("token refresh for {account} failed: {detail}")]
    Refresh {
        /// The account.
        account: String,
        /// What failed.
        detail: String,
    },
}

impl OAuthError {
    /// The account the error is about, if known.
    pub fn account(&self) -> Option<&str> {
        match self {
            OAuthError::NotAuthorized { account }
            | OAuthError::Revoked { account, .. }
            | OAuthError::Refresh { account, .. }
            | OAuthError::Store(StoreError::Corrupt { account, .. }) => Some(account),
            OAuthError::Store(_) => None,
        }
    }

    /// What a mail client is told, after the protocol's status (`NO [AUTHENTICATIONFAILED]`,
    /// `451 4.7.0`): one sentence, the command the operator must run when there is one.
    pub fn client_text(&self) -> String {
        match (self.needs_authorize(), self.account()) {
            (true, Some(account)) => format!("mailgate has no valid OAuth authorization for this account (revoked or never made); the administrator must run `mailgate oauth authorize {account}`"),
            (true, None) => "mailgate has no valid OAuth authorization for this account; the administrator must run `mailgate oauth authorize` for it".into(),
            (false, _) => "mailgate could not get an OAuth access token from the identity provider; try again later".into(),
        }
    }

    /// Whether the operator must run `mailgate oauth authorize` (as opposed to waiting).
    pub fn needs_authorize(&self) -> bool {
        matches!(
            self,
            OAuthError::NotAuthorized { .. }
                | OAuthError::Revoked { .. }
                | OAuthError::Store(StoreError::Corrupt { .. })
        )
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Tokens from a token response, keeping the old refresh token when the provider sent none
/// (providers that do not rotate refresh tokens omit it on refresh).
pub fn tokens_from(
    grant: Grant,
    resp: TokenResponse,
    old_refresh: Option<&Secret>,
    now: u64,
) -> Tokens {
    Tokens {
        grant,
        refresh_token: resp.refresh_token.or_else(|| old_refresh.cloned()),
        access_token: Some(resp.access_token),
        expires_at: resp.expires_in.map(|s| now.saturating_add(s)),
        scope: resp.scope,
        last_refresh: Some(LastRefresh {
            at: now,
            result: "ok".into(),
            detail: String::new(),
        }),
    }
}

#[derive(Default)]
struct Cached {
    tokens: Option<Tokens>,
    /// When the last refresh failed, why, and whether the refresh token was revoked.
    failed: Option<(Instant, String, bool)>,
    /// `tokens` are newer than the file: saving them failed.
    unsaved: Option<Unsaved>,
}

/// Why the tokens in memory are not in the file yet.
struct Unsaved {
    /// The refresh token the file still holds (the one the newer tokens replaced).
    file_refresh: Option<Secret>,
    /// Unix time of the first failed save.
    since: u64,
    /// Failed saves so far.
    attempts: u32,
}

type Slot = Arc<tokio::sync::Mutex<Cached>>;

fn slot(key: PathBuf) -> Slot {
    static SLOTS: OnceLock<Mutex<HashMap<PathBuf, Slot>>> = OnceLock::new();
    let mut slots = SLOTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    slots.entry(key).or_default().clone()
}

/// The cached access token if it is good for at least [`REFRESH_MARGIN`] and is not the one
/// the upstream just rejected.
fn usable(tokens: Option<&Tokens>, now: u64, rejected: Option<&Secret>) -> Option<Secret> {
    let t = tokens?;
    let access = t.access_token.as_ref()?;
    let fresh = t
        .expires_at
        .map_or(true, |at| at > now.saturating_add(REFRESH_MARGIN.as_secs()));
    (fresh && Some(access) != rejected).then(|| access.clone())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    state_dir: &std::path::Path,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|_| {
        Err(StoreError::Io {
            path: state_dir.to_owned(),
            what: "the token store task failed",
            error: std::io::Error::other("task cancelled"),
        })
    })
}

/// An access token for the account, refreshed first if it expires within [`REFRESH_MARGIN`]
/// or if it is `rejected` (the upstream just refused it). One refresh per account at a time.
pub async fn access_token(
    oauth: &OAuth2,
    server: &ServerConfig,
    rejected: Option<&Secret>,
) -> Result<Secret, OAuthError> {
    let account = oauth.account.clone();
    let state_dir = oauth.state_dir.clone();
    let store = {
        let dir = state_dir.clone();
        Arc::new(blocking(move || Store::open(&dir), &state_dir).await?)
    };
    let slot = slot(store.path(&account));
    let mut cached = slot.lock().await;
    if cached.unsaved.is_some() {
        save(&store, &account, &mut cached, &state_dir).await;
    }
    if let Some(t) = usable(cached.tokens.as_ref(), unix_now(), rejected) {
        return Ok(t);
    }
    // Another process (`mailgate oauth authorize`, another gateway) may have written newer
    // tokens: read the file before deciding to refresh.
    let on_disk = {
        let (store, account) = (store.clone(), account.clone());
        blocking(move || store.load(&account), &state_dir).await?
    };
    let stale = cached.unsaved.as_ref().is_some_and(|u| {
        on_disk.as_ref().and_then(|t| t.refresh_token.as_ref()) == u.file_refresh.as_ref()
    });
    if !stale {
        let changed = on_disk.as_ref().map(|t| &t.refresh_token)
            != cached.tokens.as_ref().map(|t| &t.refresh_token);
        if changed {
            cached.failed = None;
        }
        cached.tokens = on_disk;
        cached.unsaved = None;
    }
    let Some(tokens) = cached.tokens.clone() else {
        return Err(OAuthError::NotAuthorized { account });
    };
    if let Some(t) = usable(Some(&tokens), unix_now(), rejected) {
        return Ok(t);
    }
    if let Some((at, detail, revoked)) = &cached.failed {
        if *revoked {
            return Err(OAuthError::Revoked {
                account,
                detail: detail.clone(),
            });
        }
        if at.elapsed() < FAILURE_BACKOFF {
            return Err(OAuthError::Refresh {
                account,
                detail: format!("{detail} (retried after {} s)", FAILURE_BACKOFF.as_secs()),
            });
        }
    }

    let result = match (tokens.grant, &tokens.refresh_token) {
        (Grant::ClientCredentials, _) => token::client_credentials(oauth, server).await,
        (_, Some(refresh)) => token::refresh(oauth, refresh, server).await,
        (_, None) => return Err(OAuthError::NotAuthorized { account }),
    };
    let now = unix_now();
    let (outcome, new_tokens) = match result {
        Ok(resp) => {
            let new = tokens_from(tokens.grant, resp, tokens.refresh_token.as_ref(), now);
            info!(account = %account, expires_in = new.expires_at.map(|e| e.saturating_sub(now)), "OAuth access token refreshed");
            (Ok(()), new)
        }
        Err(e) => {
            let revoked = e.code() == Some("invalid_grant");
            let detail = refresh_detail(&e);
            let mut t = tokens.clone();
            t.last_refresh = Some(LastRefresh {
                at: now,
                result: if revoked { "revoked" } else { "error" }.into(),
                detail: detail.clone(),
            });
            (Err((revoked, detail)), t)
        }
    };
    let label = match &outcome {
        Ok(()) => "ok",
        Err((true, _)) => "revoked",
        Err((false, _)) => "error",
    };
    metrics::oauth_refresh(label);
    // The new tokens go to disk before anyone uses them: a refresh token the provider rotated
    // is only valid once, and losing it in a crash would lose the authorization. When the save
    // fails they stay in memory (newer than the file) and the save is retried at the next use.
    let fresh = outcome.is_ok();
    let file_refresh = tokens.refresh_token.clone();
    cached.tokens = Some(new_tokens);
    if fresh && cached.unsaved.is_none() {
        cached.unsaved = Some(Unsaved {
            file_refresh,
            since: now,
            attempts: 0,
        });
    }
    if cached.unsaved.is_some() {
        save(&store, &account, &mut cached, &state_dir).await;
    } else {
        // Only the refresh result is new: losing it loses no authorization.
        let (store, account, t) = (store.clone(), account.clone(), cached.tokens.clone());
        let saved = blocking(
            move || t.map_or(Ok(()), |t| store.save(&account, &t)),
            &state_dir,
        )
        .await;
        if let Err(e) = saved {
            warn!(account = %oauth.account, error = %e, "cannot record the refresh result in the token file");
        }
    }
    match outcome {
        Ok(()) => {
            cached.failed = None;
            usable(cached.tokens.as_ref(), now, None).ok_or_else(|| OAuthError::Refresh {
                account,
                detail: "the new access token expires at once".into(),
            })
        }
        Err((revoked, detail)) => {
            cached.failed = Some((Instant::now(), detail.clone(), revoked));
            let err = if revoked {
                OAuthError::Revoked { account, detail }
            } else {
                OAuthError::Refresh { account, detail }
            };
            warn!(account = %oauth.account, result = label, error = %err, "OAuth token refresh failed");
            Err(err)
        }
    }
}

/// Saves the tokens in memory that are newer than the file (`cached.unsaved`), unless the file
/// changed meanwhile (a new authorization, which then wins). A failure is logged and noted
/// beside the token file for `mailgate oauth status`; the tokens stay in memory either way.
async fn save(store: &Arc<Store>, account: &str, cached: &mut Cached, state_dir: &std::path::Path) {
    let (Some(u), Some(tokens)) = (cached.unsaved.as_ref(), cached.tokens.clone()) else {
        return;
    };
    let (first, since, file_refresh) = (u.attempts == 0, u.since, u.file_refresh.clone());
    let result = {
        let (store, account) = (store.clone(), account.to_owned());
        blocking(
            move || {
                // An unreadable file is no newer authorization: it is replaced.
                if let Ok(on_disk) = store.load(&account) {
                    if on_disk.as_ref().and_then(|t| t.refresh_token.as_ref())
                        != file_refresh.as_ref()
                    {
                        store.clear_unsaved(&account);
                        return Ok(on_disk);
                    }
                }
                let mut tokens = tokens;
                if !first {
                    if let Some(r) = tokens.last_refresh.as_mut() {
                        r.detail = format!(
                            "saved late: saving the refreshed tokens failed from {} on",
                            authorize::format_utc(since)
                        );
                    }
                }
                store.save(&account, &tokens)?;
                store.clear_unsaved(&account);
                Ok(Some(tokens))
            },
            state_dir,
        )
        .await
    };
    match result {
        Ok(written) => {
            let adopted = written.as_ref().map(|t| &t.refresh_token)
                != cached.tokens.as_ref().map(|t| &t.refresh_token);
            if adopted {
                info!(account = %account, "the token file has new tokens (authorized again); they replace the unsaved ones");
            } else if !first {
                info!(account = %account, "the refreshed OAuth tokens are saved now");
            }
            cached.tokens = written;
            cached.unsaved = None;
        }
        Err(e) => {
            let Some(u) = cached.unsaved.as_mut() else {
                return;
            };
            u.attempts += 1;
            let note = format!("{} {e}", u.since);
            let (store, account_owned) = (store.clone(), account.to_owned());
            let _ = blocking(
                move || {
                    store.note_unsaved(&account_owned, &note);
                    Ok(())
                },
                state_dir,
            )
            .await;
            error!(account = %account, attempts = u.attempts, error = %e, "cannot save the refreshed OAuth tokens; they are kept in memory and the save is retried at the next login (a restart before it succeeds loses them)");
        }
    }
}

fn refresh_detail(e: &TokenError) -> String {
    match e {
        TokenError::Rejected {
            code, description, ..
        } if !description.is_empty() => format!("{code}: {description}"),
        TokenError::Rejected { code, .. } => code.clone(),
        other => other.to_string(),
    }
}

/// One account's token state for `mailgate oauth status`.
pub struct Status {
    /// The token file's tokens (`None`: never authorized).
    pub tokens: Result<Option<Tokens>, StoreError>,
    /// The note a running gateway left when it could not save newer tokens: the Unix time of
    /// the first failure, a space, the error (empty when the disk had no room for more).
    pub unsaved: Option<String>,
}

/// [`Status`] of one account.
pub fn status(oauth: &OAuth2) -> Result<Status, StoreError> {
    let store = Store::open(&oauth.state_dir)?;
    Ok(Status {
        tokens: store.load(&oauth.account),
        unsaved: store.unsaved(&oauth.account),
    })
}
