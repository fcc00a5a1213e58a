//! The token store: where each account's OAuth tokens are kept between runs, behind one
//! interface ([`TokenStore`]) so that another backend is a new implementation, not a change to
//! the logins. The encrypted file store ([`FileStore`]) is the first one.
//!
//! A store is opened once per state folder and process ([`open`]) and shared by every login,
//! `mailgate oauth authorize` and `mailgate oauth status`: the run-time token cache is keyed the
//! same way, so a config reload (new `Config` values, the same `state_dir`) keeps both.

mod file;
pub(crate) mod wire;

pub use file::{write_atomic, write_atomic_as, FileStore, WriteStep};

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The token store cannot be used. Never carries a token or the key.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or folder could not be read or written.
    #[error("{path}: {what}: {error}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What we were doing.
        what: &'static str,
        /// The OS error (in the message, not a `source`: an error chain would print it twice).
        error: io::Error,
    },
    /// The key file exists but is unusable.
    #[error("{path}: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The token file does not decrypt or does not parse.
    #[error("{path}: cannot decrypt the token file ({reason}); it is damaged, belongs to another account, or was written with another key than {key}. Run `mailgate oauth authorize {account}` to start over")]
    Corrupt {
        /// The token file.
        path: PathBuf,
        /// The key file used.
        key: PathBuf,
        /// The account.
        account: String,
        /// What failed.
        reason: &'static str,
    },
    /// A shared store (PostgreSQL) cannot be reached or failed the request: waiting may help.
    #[error("the shared store is unavailable: {reason}")]
    Unavailable {
        /// Why (the database's words; never a secret).
        reason: String,
    },
}

/// How the tokens were obtained (decides how they are renewed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// Authorization code with PKCE: renewed with the refresh token.
    AuthorizationCode,
    /// Device code: renewed with the refresh token.
    DeviceCode,
    /// Client credentials (app-only): renewed by asking again with the client secret or
    /// certificate.
    ClientCredentials,
    /// A service account's signed assertion (RFC 7523; Google domain-wide delegation):
    /// renewed by asking again with a new assertion.
    JwtBearer,
}

impl Grant {
    /// Whether tokens of this grant are renewed by asking again (no refresh token, no user).
    pub fn is_app_only(self) -> bool {
        matches!(self, Grant::ClientCredentials | Grant::JwtBearer)
    }
}

/// The outcome of the last refresh, for `mailgate oauth status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRefresh {
    /// Unix time of the attempt.
    pub at: u64,
    /// `ok`, `revoked` or `error` (the metric's label values).
    pub result: String,
    /// The identity provider's error code or our reason (never a token).
    pub detail: String,
}

/// One account's tokens and their bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// How they were obtained.
    pub grant: Grant,
    /// The long-lived refresh token (absent for client credentials).
    pub refresh_token: Option<Secret>,
    /// The current access token.
    pub access_token: Option<Secret>,
    /// Unix time when the access token expires.
    pub expires_at: Option<u64>,
    /// Unix time when the refresh token expires, where the provider said
    /// (`refresh_token_expires_in`); `None`: unknown (most providers never say).
    pub refresh_expires_at: Option<u64>,
    /// Scopes the provider granted (space separated), for status output.
    pub scope: Option<String>,
    /// The last refresh attempt.
    pub last_refresh: Option<LastRefresh>,
}

impl Tokens {
    /// No tokens yet, of `grant`: what an app-only account starts from before its first
    /// request.
    pub fn none(grant: Grant) -> Tokens {
        Tokens {
            grant,
            refresh_token: None,
            access_token: None,
            expires_at: None,
            refresh_expires_at: None,
            scope: None,
            last_refresh: None,
        }
    }
}

/// Where an account's tokens are kept. The calls block (files, …): async code runs them on
/// the blocking pool. No method returns or logs a token in an error.
pub trait TokenStore: Send + Sync {
    /// The account's tokens; `None` if it was never authorized.
    fn load(&self, account: &str) -> Result<Option<Tokens>, StoreError>;

    /// Replaces the account's tokens, all or nothing.
    fn save(&self, account: &str, tokens: &Tokens) -> Result<(), StoreError>;

    /// Deletes the account's tokens, if any: `mailgate setup` undoes its sign-in this way when
    /// the live test fails, so no token outlives an account that was never added.
    fn remove(&self, account: &str) -> Result<(), StoreError>;

    /// The note saying that a running gateway holds newer tokens than the store, if any: the
    /// Unix time of the first failed save, a space, the error.
    fn unsaved(&self, account: &str) -> Option<String>;

    /// Leaves that note (best effort: where the save failed, the note may fail too; the log
    /// says it as well).
    fn note_unsaved(&self, account: &str, note: &str);

    /// Removes the note once the tokens are saved.
    fn clear_unsaved(&self, account: &str);

    /// Takes the store's own lock on the account's refresh, shared by every process using the
    /// store, held until the returned value is dropped: the run-time cache holds it around
    /// "read again, refresh if still needed, save" so that several gateways on one store make
    /// one refresh between them. `None`: the store has no such lock (the file store, one
    /// gateway per state folder, where the in-process lock is enough). Blocks while another
    /// process holds it.
    fn refresh_lock(&self, account: &str) -> Result<Option<RefreshLock>, StoreError> {
        let _ = account;
        Ok(None)
    }
}

/// A store's lock on one account's refresh (see [`TokenStore::refresh_lock`]): released
/// when dropped.
pub struct RefreshLock(#[allow(dead_code)] Box<dyn Send>);

impl RefreshLock {
    /// The lock that `guard` holds until it is dropped.
    pub fn new(guard: impl Send + 'static) -> RefreshLock {
        RefreshLock(Box::new(guard))
    }
}

fn opened() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Arc<dyn TokenStore>>> {
    static OPENED: OnceLock<Mutex<HashMap<PathBuf, Arc<dyn TokenStore>>>> = OnceLock::new();
    OPENED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Makes `store` the token store of `state_dir` in this process, instead of the file store:
/// the shared store, once its configuration is loaded (see `crate::pgstore`).
pub fn install(state_dir: &Path, store: Arc<dyn TokenStore>) {
    opened().insert(state_dir.to_owned(), store);
}

/// The store of `state_dir`, opened on first use (making the folder and the key) and then
/// shared: one per state folder and process. A failed open is not kept, so the next use tries
/// again. Blocks on first use.
pub fn open(state_dir: &Path) -> Result<Arc<dyn TokenStore>, StoreError> {
    if let Some(store) = opened().get(state_dir) {
        return Ok(store.clone());
    }
    // Opened without the lock held (it touches the disk); if two opened at once, the first
    // one kept wins and both use it.
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::open(state_dir)?);
    Ok(opened()
        .entry(state_dir.to_owned())
        .or_insert(store)
        .clone())
}
