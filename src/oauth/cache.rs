//! The run-time token cache that hands access tokens to IMAP and SMTP logins.
//!
//! One refresh in flight per account: each account's tokens sit behind one async mutex, held
//! across the refresh request. Fifty sessions logging in at the moment the token expires queue
//! on the mutex; the first refreshes, the others find the fresh token when they get the lock.
//! The cache is process-wide and keyed by the state folder and the account (like the opened
//! store, see [`store::open`]), so a config reload (which builds new `Config` values) does not
//! lose it and cannot start a second refresh for the same account.
//!
//! The store is re-read whenever the cached token is not usable, so tokens written by
//! `mailgate oauth authorize` (another process) are picked up without a restart. A refresh that
//! failed is not retried for [`FAILURE_BACKOFF`] (an identity provider that is down is not
//! hammered by every login), and a revoked refresh token is not retried until the store changes.
//!
//! Several gateways on one shared store (PostgreSQL) make one refresh between them: the store's
//! own lock ([`TokenStore::refresh_lock`]) is taken inside the account's mutex, the tokens are
//! read again under it, and it is released once the new tokens are saved.
//!
//! Tokens that could not be saved (a full disk, a broken folder) are never dropped: a provider
//! that rotates refresh tokens (Microsoft, Google may) has already invalidated the one in the
//! store, so the newest tokens stay in memory and win over the older stored ones, the save is
//! retried at every use until it succeeds, and the log, the store's unsaved note and `mailgate
//! oauth status` say so meanwhile. Only stored tokens with another refresh token than the one
//! the failed save left behind (a new `mailgate oauth authorize`) replace them.

use super::store::{self, Grant, LastRefresh, RefreshLock, StoreError, TokenStore, Tokens};
use super::token::{self, TokenError};
use super::{authorize, tokens_from, unix_now, OAuthError, FAILURE_BACKOFF, REFRESH_MARGIN};
use crate::config::OAuth2;
use crate::config::ServerConfig;
use crate::metrics;
use crate::secret::Secret;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tracing::{error, info, warn};

mod failed;
use failed::{failed, Failed};

#[derive(Default)]
struct Cached {
    tokens: Option<Tokens>,
    /// When the last refresh failed, why, and how.
    failed: Option<(Instant, String, Failed)>,
    /// `tokens` are newer than the store's: saving them failed.
    unsaved: Option<Unsaved>,
}

/// Why the tokens in memory are not in the store yet.
struct Unsaved {
    /// The refresh token the store still holds (the one the newer tokens replaced).
    file_refresh: Option<Secret>,
    /// Unix time of the first failed save.
    since: u64,
    /// Failed saves so far.
    attempts: u32,
}

type Slot = Arc<tokio::sync::Mutex<Cached>>;

fn slot(state_dir: &Path, account: &str) -> Slot {
    static SLOTS: OnceLock<Mutex<HashMap<(PathBuf, String), Slot>>> = OnceLock::new();
    let mut slots = SLOTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // Lower-cased: the store's keys are case-insensitive too.
    let key = (state_dir.to_owned(), account.to_ascii_lowercase());
    slots.entry(key).or_default().clone()
}

/// The cached access token if it is good for at least [`REFRESH_MARGIN`] and is not the one
/// the upstream just rejected.
fn usable(tokens: Option<&Tokens>, now: u64, rejected: Option<&Secret>) -> Option<Secret> {
    let t = tokens?;
    let access = t.access_token.as_ref()?;
    let fresh = t
        .expires_at
        .is_none_or(|at| at > now.saturating_add(REFRESH_MARGIN.as_secs()));
    (fresh && Some(access) != rejected).then(|| access.clone())
}

/// One account in the shared store, for async code: each call runs on the blocking pool.
#[derive(Clone)]
struct AccountStore {
    store: Arc<dyn TokenStore>,
    account: String,
    state_dir: PathBuf,
}

impl AccountStore {
    async fn open(oauth: &OAuth2) -> Result<AccountStore, StoreError> {
        let dir = oauth.state_dir.clone();
        let store = blocking(move || store::open(&dir), &oauth.state_dir).await?;
        Ok(AccountStore {
            store,
            account: oauth.identity.clone(),
            state_dir: oauth.state_dir.clone(),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn TokenStore, &str) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (store, account) = (self.store.clone(), self.account.clone());
        blocking(move || f(store.as_ref(), &account), &self.state_dir).await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    state_dir: &Path,
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
    let store = AccountStore::open(oauth).await?;
    let slot = slot(&oauth.state_dir, &oauth.identity);
    let mut cached = slot.lock().await;
    if cached.unsaved.is_some() {
        save(&store, &mut cached).await;
    }
    if let Some(t) = usable(cached.tokens.as_ref(), unix_now(), rejected) {
        return Ok(t);
    }
    // Another process (`mailgate oauth authorize`, another gateway) may have written newer
    // tokens: read the store before deciding to refresh.
    reread(&store, &mut cached).await?;
    // A service account needs no sign-in: its first token is asked for here.
    let first = oauth
        .service_account
        .as_ref()
        .map(|_| Tokens::none(Grant::JwtBearer));
    let Some(tokens) = cached.tokens.clone().or(first) else {
        return Err(OAuthError::NotAuthorized {
            account: oauth.identity.clone(),
        });
    };
    if let Some(t) = usable(Some(&tokens), unix_now(), rejected) {
        return Ok(t);
    }
    cached.backoff(&oauth.identity)?;
    let (lock, tokens) = lock_and_reread(&store, &mut cached, tokens).await?;
    if let Some(t) = usable(Some(&tokens), unix_now(), rejected) {
        return Ok(t);
    }
    let refreshed = refresh(oauth, server, &tokens).await?;
    let result = record(&store, &mut cached, tokens.refresh_token, refreshed).await;
    // Released only now: the new tokens are saved, so a process waiting on it reads them.
    drop(lock);
    result
}

/// Takes the store's cross-process refresh lock, if it has one (a shared store; the file
/// store has none), and then reads the tokens again: another process may have refreshed while
/// this one waited. Returns the lock and the tokens to go on from (`tokens` without a lock, or
/// when the store has none under it).
async fn lock_and_reread(
    store: &AccountStore,
    cached: &mut Cached,
    tokens: Tokens,
) -> Result<(Option<RefreshLock>, Tokens), OAuthError> {
    let lock = store.run(|s, account| s.refresh_lock(account)).await?;
    if lock.is_none() {
        return Ok((None, tokens));
    }
    reread(store, cached).await?;
    let tokens = cached.tokens.clone().unwrap_or(tokens);
    Ok((lock, tokens))
}

/// Whether the refresh token was used (successfully) within `max_age`.
fn used_within(tokens: &Tokens, max_age: std::time::Duration) -> bool {
    let used = tokens
        .last_refresh
        .as_ref()
        .filter(|l| l.result == "ok")
        .map(|l| l.at);
    used.is_some_and(|at| unix_now().saturating_sub(at) < max_age.as_secs())
}

/// What [`keep_alive`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptAlive {
    /// The refresh token was used within `max_age` (by a login or an earlier upkeep).
    Fresh,
    /// It was used now, successfully.
    Refreshed,
    /// Nothing to keep alive (app-only tokens are asked for again, not refreshed).
    NotNeeded,
}

/// Upkeep: uses the account's refresh token when nothing has for `max_age`, so that it does
/// not die of disuse (Microsoft ends one unused for 90 days). The same single-flight lock as a
/// login's refresh: a login waiting meanwhile gets the new token.
pub async fn keep_alive(
    oauth: &OAuth2,
    server: &ServerConfig,
    max_age: std::time::Duration,
) -> Result<KeptAlive, OAuthError> {
    if oauth.service_account.is_some() {
        return Ok(KeptAlive::NotNeeded);
    }
    let store = AccountStore::open(oauth).await?;
    let slot = slot(&oauth.state_dir, &oauth.identity);
    let mut cached = slot.lock().await;
    if cached.unsaved.is_some() {
        save(&store, &mut cached).await;
    }
    reread(&store, &mut cached).await?;
    let Some(tokens) = cached.tokens.clone() else {
        return Err(OAuthError::NotAuthorized {
            account: oauth.identity.clone(),
        });
    };
    if tokens.grant.is_app_only() {
        return Ok(KeptAlive::NotNeeded);
    }
    if used_within(&tokens, max_age) {
        return Ok(KeptAlive::Fresh);
    }
    cached.backoff(&oauth.identity)?;
    let (lock, tokens) = lock_and_reread(&store, &mut cached, tokens).await?;
    if used_within(&tokens, max_age) {
        return Ok(KeptAlive::Fresh);
    }
    let refreshed = refresh(oauth, server, &tokens).await?;
    let result = record(&store, &mut cached, tokens.refresh_token, refreshed)
        .await
        .map(|_| KeptAlive::Refreshed);
    drop(lock);
    result
}

/// What `f` makes of the account's tokens as the cache holds them (as the last [`keep_alive`]
/// or login left them): no request, no store read. Upkeep's expiry metrics, and the expiry
/// of the token a warm upstream connection logged in with.
pub async fn peek<T>(oauth: &OAuth2, f: impl FnOnce(Option<&Tokens>) -> T) -> T {
    let slot = slot(&oauth.state_dir, &oauth.identity);
    let cached = slot.lock().await;
    f(cached.tokens.as_ref())
}

/// Adopts the stored tokens, unless they are the ones a failed save left behind (the newer
/// tokens in memory win over those). Other stored tokens (a new authorization) clear the
/// memory of a failed refresh.
async fn reread(store: &AccountStore, cached: &mut Cached) -> Result<(), StoreError> {
    let stored = store.run(|s, account| s.load(account)).await?;
    let stale = cached.unsaved.as_ref().is_some_and(|u| {
        stored.as_ref().and_then(|t| t.refresh_token.as_ref()) == u.file_refresh.as_ref()
    });
    if !stale {
        let changed = stored.as_ref().map(|t| &t.refresh_token)
            != cached.tokens.as_ref().map(|t| &t.refresh_token);
        if changed {
            cached.failed = None;
        }
        cached.tokens = stored;
        cached.unsaved = None;
    }
    Ok(())
}

impl Cached {
    /// The last refresh's failure again, without a new request, while it still stands: a
    /// revoked refresh token until the store changes, another failure for [`FAILURE_BACKOFF`].
    fn backoff(&self, account: &str) -> Result<(), OAuthError> {
        let Some((at, detail, how)) = &self.failed else {
            return Ok(());
        };
        let account = account.to_owned();
        if *how == Failed::Revoked {
            return Err(how.error(account, detail.clone()));
        }
        if at.elapsed() < FAILURE_BACKOFF {
            let detail = format!("{detail} (retried after {} s)", FAILURE_BACKOFF.as_secs());
            return Err(how.error(account, detail));
        }
        Ok(())
    }
}

/// What a refresh request brought: the tokens to keep (new ones, or the old ones with the
/// failure noted in `last_refresh`) and, if it failed, how and why.
struct Refreshed {
    tokens: Tokens,
    failure: Option<(Failed, String)>,
    /// Unix time of the request.
    at: u64,
}

impl Refreshed {
    /// The `result` label of the refresh metric and log line.
    fn label(&self) -> &'static str {
        match self.failure {
            None => "ok",
            Some((Failed::Revoked, _)) => "revoked",
            Some((Failed::Refused | Failed::Down, _)) => "error",
        }
    }
}

/// Asks the token endpoint for a new access token (with the refresh token, the client
/// credentials or the service account's assertion) and counts the outcome.
async fn refresh(
    oauth: &OAuth2,
    server: &ServerConfig,
    tokens: &Tokens,
) -> Result<Refreshed, OAuthError> {
    let grant = match oauth.service_account {
        Some(_) => Grant::JwtBearer,
        None => tokens.grant,
    };
    let result = match (grant, &tokens.refresh_token) {
        (Grant::JwtBearer, _) if oauth.service_account.is_some() => {
            token::jwt_bearer(oauth, server).await
        }
        (Grant::ClientCredentials, _) => token::client_credentials(oauth, server).await,
        (_, Some(refresh)) => token::refresh(oauth, refresh, server).await,
        (_, None) => {
            return Err(OAuthError::NotAuthorized {
                account: oauth.identity.clone(),
            })
        }
    };
    let at = unix_now();
    let refreshed = match result {
        Ok(resp) => {
            let new = tokens_from(grant, resp, Some(tokens), at);
            info!(account = %oauth.identity, expires_in = new.expires_at.map(|e| e.saturating_sub(at)), "OAuth access token refreshed");
            Refreshed {
                tokens: new,
                failure: None,
                at,
            }
        }
        Err(e) => {
            let how = failed(grant, &e);
            let detail = refresh_detail(&e);
            let mut old = tokens.clone();
            old.last_refresh = Some(LastRefresh {
                at,
                result: if how == Failed::Revoked {
                    "revoked"
                } else {
                    "error"
                }
                .into(),
                detail: detail.clone(),
            });
            Refreshed {
                tokens: old,
                failure: Some((how, detail)),
                at,
            }
        }
    };
    metrics::oauth_refresh(refreshed.label());
    Ok(refreshed)
}

/// Keeps a refresh's outcome: in memory, then in the store, and answers the login with the
/// new access token or the refresh's error. `file_refresh` is the refresh token the store
/// held before.
async fn record(
    store: &AccountStore,
    cached: &mut Cached,
    file_refresh: Option<Secret>,
    refreshed: Refreshed,
) -> Result<Secret, OAuthError> {
    let label = refreshed.label();
    let Refreshed {
        tokens,
        failure,
        at,
    } = refreshed;
    // The new tokens go to the store before anyone uses them: a refresh token the provider
    // rotated is only valid once, and losing it in a crash would lose the authorization. When
    // the save fails they stay in memory (newer than the store) and the save is retried at the
    // next use.
    cached.tokens = Some(tokens);
    if failure.is_none() && cached.unsaved.is_none() {
        cached.unsaved = Some(Unsaved {
            file_refresh,
            since: at,
            attempts: 0,
        });
    }
    if cached.unsaved.is_some() {
        save(store, cached).await;
    } else {
        // Only the refresh result is new: losing it loses no authorization.
        let t = cached.tokens.clone();
        let saved = store
            .run(move |s, account| t.map_or(Ok(()), |t| s.save(account, &t)))
            .await;
        if let Err(e) = saved {
            warn!(account = %store.account, error = %e, "cannot record the refresh result in the token file");
        }
    }
    let account = store.account.clone();
    match failure {
        None => {
            cached.failed = None;
            usable(cached.tokens.as_ref(), at, None).ok_or_else(|| OAuthError::Refresh {
                account,
                detail: "the new access token expires at once".into(),
            })
        }
        Some((how, detail)) => {
            cached.failed = Some((Instant::now(), detail.clone(), how));
            let err = how.error(account, detail);
            warn!(account = %store.account, result = label, error = %err, "OAuth token refresh failed");
            Err(err)
        }
    }
}

/// Saves the tokens in memory that are newer than the store's (`cached.unsaved`), unless the
/// store changed meanwhile (a new authorization, which then wins). A failure is logged and
/// noted in the store for `mailgate oauth status`; the tokens stay in memory either way.
async fn save(store: &AccountStore, cached: &mut Cached) {
    let (Some(u), Some(tokens)) = (cached.unsaved.as_ref(), cached.tokens.clone()) else {
        return;
    };
    let (first, since, file_refresh) = (u.attempts == 0, u.since, u.file_refresh.clone());
    let result = store
        .run(move |store, account| {
            // Unreadable stored tokens are no newer authorization: they are replaced.
            if let Ok(stored) = store.load(account) {
                if stored.as_ref().and_then(|t| t.refresh_token.as_ref()) != file_refresh.as_ref() {
                    store.clear_unsaved(account);
                    return Ok(stored);
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
            store.save(account, &tokens)?;
            store.clear_unsaved(account);
            Ok(Some(tokens))
        })
        .await;
    let account = &store.account;
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
            let _ = store
                .run(move |s, account| {
                    s.note_unsaved(account, &note);
                    Ok(())
                })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A store in memory whose next `fail` saves fail, as a full disk would.
    #[derive(Default)]
    struct Memory {
        tokens: Mutex<HashMap<String, Tokens>>,
        notes: Mutex<HashMap<String, String>>,
        fail: AtomicU32,
    }

    impl TokenStore for Memory {
        fn load(&self, account: &str) -> Result<Option<Tokens>, StoreError> {
            Ok(self.tokens.lock().unwrap().get(account).cloned())
        }
        fn save(&self, account: &str, tokens: &Tokens) -> Result<(), StoreError> {
            if self.fail.load(Ordering::SeqCst) > 0 {
                self.fail.fetch_sub(1, Ordering::SeqCst);
                return Err(StoreError::Io {
                    path: "/memory".into(),
                    what: "cannot write the token file",
                    error: std::io::Error::other("no space left"),
                });
            }
            let mut map = self.tokens.lock().unwrap();
            map.insert(account.to_owned(), tokens.clone());
            Ok(())
        }
        fn remove(&self, account: &str) -> Result<(), StoreError> {
            self.tokens.lock().unwrap().remove(account);
            Ok(())
        }
        fn unsaved(&self, account: &str) -> Option<String> {
            self.notes.lock().unwrap().get(account).cloned()
        }
        fn note_unsaved(&self, account: &str, note: &str) {
            let mut notes = self.notes.lock().unwrap();
            notes.insert(account.to_owned(), note.to_owned());
        }
        fn clear_unsaved(&self, account: &str) {
            self.notes.lock().unwrap().remove(account);
        }
    }

    const ACCOUNT: &str = "ola@example.no";

    fn tokens(refresh: &str) -> Tokens {
        Tokens {
            grant: Grant::AuthorizationCode,
            refresh_token: Some(Secret::from(refresh)),
            access_token: Some(Secret::from("access")),
            expires_at: Some(unix_now() + 3600),
            refresh_expires_at: None,
            scope: None,
            last_refresh: Some(LastRefresh {
                at: 1_000,
                result: "ok".into(),
                detail: String::new(),
            }),
        }
    }

    fn stored(memory: &Memory) -> Option<String> {
        let map = memory.tokens.lock().unwrap();
        let refresh = map.get(ACCOUNT)?.refresh_token.as_ref()?;
        Some(refresh.expose().to_owned())
    }

    /// A store holding refresh token `r1`, and a refresh that rotated it to `r2` whose save is
    /// pending.
    fn rotated() -> (Arc<Memory>, AccountStore, Cached) {
        let memory = Arc::new(Memory::default());
        memory.save(ACCOUNT, &tokens("r1")).unwrap();
        let store = AccountStore {
            store: memory.clone(),
            account: ACCOUNT.into(),
            state_dir: "/memory".into(),
        };
        let cached = Cached {
            tokens: Some(tokens("r2")),
            failed: None,
            unsaved: Some(Unsaved {
                file_refresh: Some(Secret::from("r1")),
                since: 1_000,
                attempts: 0,
            }),
        };
        (memory, store, cached)
    }

    /// Rotated tokens that cannot be saved stay in memory and win over the older stored ones;
    /// the next save writes them, noting how late, and removes the note.
    #[tokio::test]
    async fn tokens_that_cannot_be_saved_are_kept_and_saved_later() {
        let (memory, store, mut cached) = rotated();
        memory.fail.store(1, Ordering::SeqCst);
        save(&store, &mut cached).await;
        assert_eq!(cached.unsaved.as_ref().map(|u| u.attempts), Some(1));
        assert_eq!(stored(&memory).as_deref(), Some("r1"));
        let note = memory.unsaved(ACCOUNT).expect("a note");
        assert!(
            note.starts_with("1000 ") && note.contains("cannot write"),
            "{note}"
        );

        // The store still holds what the failed save left: the newer tokens in memory win.
        reread(&store, &mut cached).await.unwrap();
        let refresh = cached.tokens.as_ref().and_then(|t| t.refresh_token.clone());
        assert_eq!(refresh, Some(Secret::from("r2")));
        assert!(cached.unsaved.is_some());

        save(&store, &mut cached).await;
        assert!(cached.unsaved.is_none());
        assert_eq!(stored(&memory).as_deref(), Some("r2"));
        assert_eq!(memory.unsaved(ACCOUNT), None);
        let detail = memory
            .load(ACCOUNT)
            .unwrap()
            .unwrap()
            .last_refresh
            .unwrap()
            .detail;
        assert!(detail.starts_with("saved late: "), "{detail}");
    }

    /// Tokens stored meanwhile with another refresh token (a new `mailgate oauth authorize`)
    /// replace the unsaved ones, whether the save or the re-read finds them.
    #[tokio::test]
    async fn a_new_authorization_replaces_unsaved_tokens() {
        let (memory, store, mut cached) = rotated();
        memory.save(ACCOUNT, &tokens("r3")).unwrap();
        save(&store, &mut cached).await;
        assert!(cached.unsaved.is_none());
        assert_eq!(stored(&memory).as_deref(), Some("r3"));
        let refresh = cached.tokens.as_ref().and_then(|t| t.refresh_token.clone());
        assert_eq!(refresh, Some(Secret::from("r3")));

        let (memory, store, mut cached) = rotated();
        cached.failed = Some((Instant::now(), "invalid_grant".into(), Failed::Revoked));
        memory.save(ACCOUNT, &tokens("r3")).unwrap();
        reread(&store, &mut cached).await.unwrap();
        assert!(cached.unsaved.is_none() && cached.failed.is_none());
        assert!(cached.backoff(ACCOUNT).is_ok());
    }

    /// A revoked refresh token is not tried again until the store changes; another failure is
    /// repeated for the back-off time without a request.
    #[test]
    fn failed_refreshes_are_repeated_without_a_request() {
        let mut cached = Cached {
            failed: Some((Instant::now(), "invalid_grant".into(), Failed::Revoked)),
            ..Cached::default()
        };
        assert!(matches!(
            cached.backoff(ACCOUNT),
            Err(OAuthError::Revoked { .. })
        ));
        cached.failed = Some((Instant::now(), "HTTP 503".into(), Failed::Down));
        let e = cached.backoff(ACCOUNT).unwrap_err().to_string();
        assert!(e.contains("HTTP 503 (retried after 5 s)"), "{e}");
        if let Some(long_ago) = Instant::now().checked_sub(FAILURE_BACKOFF * 2) {
            cached.failed = Some((long_ago, "HTTP 503".into(), Failed::Down));
            assert!(cached.backoff(ACCOUNT).is_ok());
        }
    }
}
