//! Removing an account: its `[[account]]` table cut out of the config file (with the comment
//! lines above it; every other byte kept) and its credential file deleted, or its row removed
//! from the shared store; then the OAuth tokens of the user it signed in as, unless another
//! account still signs in as that user (a shared mailbox's `sign_in_as`, or the user's own
//! account). Tokens are only removed when that is certain on this node: an account that does
//! not load here could be one of their users, so they stay. The mailbox at the provider is
//! not touched.

use super::{block, SetupError, Target};
use crate::config::{self, Config, StoredAccount};
use crate::oauth::store::TokenStore;
use crate::pgstore::{PgTokens, Shared};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml_edit::{DocumentMut, Item};

/// What [`remove`] removed.
#[derive(Debug)]
pub struct Removed {
    /// Where the account was: the config file, or the shared store.
    pub from: Place,
    /// The credential file deleted (`STATE_DIR/credentials/…`, the one `setup` writes), if
    /// the account had one there.
    pub credential_file: Option<PathBuf>,
    /// What became of its OAuth tokens.
    pub tokens: Tokens,
}

/// Where a removed account was.
#[derive(Debug, PartialEq, Eq)]
pub enum Place {
    /// Its `[[account]]` table in this file.
    File(PathBuf),
    /// The shared store's row.
    Store,
}

/// What became of the removed account's OAuth tokens.
#[derive(Debug, PartialEq, Eq)]
pub enum Tokens {
    /// A password account: it has none.
    None,
    /// Removed: no other account signs in as `identity`.
    Removed {
        /// Whose tokens they were.
        identity: String,
    },
    /// No other account signs in as `identity`, and none were stored.
    NoneStored {
        /// The user.
        identity: String,
    },
    /// Kept: these accounts still sign in as `identity`.
    InUse {
        /// The user.
        identity: String,
        /// The accounts (a file's marked `(config file)`).
        users: Vec<String>,
    },
    /// Kept: these accounts cannot be read on this node, so whether they sign in as
    /// `identity` is unknown.
    Unknown {
        /// The user.
        identity: String,
        /// The unreadable accounts.
        accounts: Vec<String>,
    },
    /// Kept, if it had any: whose tokens the account used cannot be told here.
    Unreadable(Unreadable),
}

/// Why the removed account's OAuth user cannot be told.
#[derive(Debug, PartialEq, Eq)]
pub enum Unreadable {
    /// Its servers need discovery, which removing does not run.
    NeedsDiscovery,
    /// It does not load on this node (the config error).
    DoesNotLoad(String),
    /// The stored row did not open with this node's key.
    NotOpened,
}

/// Removes the account `email` from the config file at `path` (its own `[[account]]`), or,
/// when the file has none for it, from the shared store `shared` (the file's `[store]`,
/// opened by the caller); then its credential file and, when certain, its OAuth tokens.
pub async fn remove(
    path: &Path,
    email: &str,
    shared: Option<&Arc<Shared>>,
) -> Result<Removed, SetupError> {
    let target = Target::open_edit(path, email)?;
    let server = target.server()?;
    let base = path.parent().unwrap_or(Path::new("."));
    let cfg = Config::parse(&target.text, path);
    let (stored, unopened) = match shared {
        Some(s) => s.accounts().await?,
        None => (Vec::new(), Vec::new()),
    };
    let key = email.trim().to_ascii_lowercase();
    let (from, credential_file, identity) = match target.old.as_ref().and_then(|o| o.index) {
        Some(index) => {
            let identity = match &cfg {
                Ok(c) => file_identity(c, email),
                Err(e) => Err(Unreadable::DoesNotLoad(e.to_string())),
            };
            let file = cut(&target, index, &server.state_dir)?;
            (Place::File(path.to_owned()), file, identity)
        }
        None => {
            let (Some(shared), Ok(cfg)) = (shared, &cfg) else {
                return Err(SetupError::NoAccount {
                    path: path.to_owned(),
                    email: email.to_owned(),
                });
            };
            let identity = match stored.iter().find(|s| s.email == key) {
                Some(s) => signs_in_as(s, cfg, base),
                None => Err(Unreadable::NotOpened),
            };
            if !shared.remove_account(email).await? {
                return Err(SetupError::NoAccount {
                    path: config::stored_path(email),
                    email: email.to_owned(),
                });
            }
            (Place::Store, None, identity)
        }
    };
    let identity = match identity {
        Ok(Some(id)) => id,
        Ok(None) => return Ok(removed(from, credential_file, Tokens::None)),
        Err(why) => return Ok(removed(from, credential_file, Tokens::Unreadable(why))),
    };
    let (users, unknown) = match &cfg {
        Ok(cfg) => {
            let others = stored.iter().filter(|s| s.email != key);
            let unopened = unopened.into_iter().filter(|(e, _)| *e != key);
            users_of(&identity, &key, others, unopened, cfg, base)
        }
        Err(_) => (
            Vec::new(),
            vec![format!("{} (config file)", path.display())],
        ),
    };
    let tokens = if !users.is_empty() {
        Tokens::InUse { identity, users }
    } else if !unknown.is_empty() {
        Tokens::Unknown {
            identity,
            accounts: unknown,
        }
    } else {
        let store: Arc<dyn TokenStore> = match shared {
            Some(s) => PgTokens::shared(s.clone()),
            None => crate::oauth::store::open(&server.state_dir).map_err(token_error)?,
        };
        let id = identity.clone();
        let had = tokio::task::spawn_blocking(move || {
            let had = store.load(&id)?.is_some();
            store.remove(&id).map(|()| had)
        })
        .await
        .map_err(|e| SetupError::OAuth(e.to_string()))?
        .map_err(token_error)?;
        if had {
            Tokens::Removed { identity }
        } else {
            Tokens::NoneStored { identity }
        }
    };
    Ok(removed(from, credential_file, tokens))
}

fn removed(from: Place, credential_file: Option<PathBuf>, tokens: Tokens) -> Removed {
    Removed {
        from,
        credential_file,
        tokens,
    }
}

fn token_error(e: crate::oauth::store::StoreError) -> SetupError {
    SetupError::OAuth(e.to_string())
}

/// Cuts the `index`-th `[[account]]` out of the file and writes it, then deletes the
/// credential file its table names when it is one `setup` wrote (below
/// `STATE_DIR/credentials`; a file of the operator's own elsewhere is left). Returns it.
fn cut(target: &Target, index: usize, state_dir: &Path) -> Result<Option<PathBuf>, SetupError> {
    let unusable = |reason: &str| SetupError::Write {
        path: target.path.clone(),
        reason: format!("{reason}; remove the account by hand"),
    };
    let (range, _) = block::account_range(&target.text, index)
        .ok_or_else(|| unusable("the account's table was not found in the text"))?;
    let mut text = target.text.clone();
    text.replace_range(range, "");
    let doc: DocumentMut = text
        .parse()
        .map_err(|_| unusable("the rest of the file would not be valid TOML"))?;
    let mut expected = block::emails(&target.doc);
    expected.remove(index);
    if block::emails(&doc) != expected {
        return Err(unusable("the file would not lose exactly that account"));
    }
    let named = target
        .old
        .as_ref()
        .and_then(|o| o.table.get("imap"))
        .and_then(|t| t.get("password_file"))
        .and_then(Item::as_str)
        .map(|f| target.path.parent().unwrap_or(Path::new(".")).join(f));
    super::credential::write_config(target, &text).map_err(|e| SetupError::Write {
        path: target.path.clone(),
        reason: e.to_string(),
    })?;
    // After the file: a config naming a file that is not there would not load.
    let credentials = state_dir.join("credentials");
    Ok(named
        .filter(|f| f.starts_with(&credentials))
        .filter(|f| std::fs::remove_file(f).is_ok()))
}

/// Whose tokens the file's account `email` uses (`None`: it has no OAuth 2.0 settings).
fn file_identity(cfg: &Config, email: &str) -> Result<Option<String>, Unreadable> {
    match cfg.account(email) {
        Some(a) => Ok(a.imap.credential.oauth().map(|o| o.identity.clone())),
        None => Err(Unreadable::NeedsDiscovery),
    }
}

/// Whose tokens the stored account uses (`None`: it has no OAuth 2.0 settings), or why that
/// cannot be told here.
fn signs_in_as(s: &StoredAccount, cfg: &Config, base: &Path) -> Result<Option<String>, Unreadable> {
    match config::stored_account(s, &cfg.server, base) {
        Ok(Some(a)) => Ok(a.imap.credential.oauth().map(|o| o.identity.clone())),
        Ok(None) => Err(Unreadable::NeedsDiscovery),
        Err(e) => Err(Unreadable::DoesNotLoad(e.to_string())),
    }
}

/// The remaining accounts that sign in as `identity` (the file's but `removed`, and the
/// store's), and those that cannot be read here (they might).
fn users_of<'a>(
    identity: &str,
    removed: &str,
    stored: impl Iterator<Item = &'a StoredAccount>,
    unopened: impl Iterator<Item = (String, String)>,
    cfg: &Config,
    base: &Path,
) -> (Vec<String>, Vec<String>) {
    let uses = |id: Option<&str>| id.is_some_and(|id| id.eq_ignore_ascii_case(identity));
    let mut users: Vec<String> = cfg
        .accounts
        .iter()
        .filter(|a| !a.email.eq_ignore_ascii_case(removed))
        .filter(|a| uses(a.imap.credential.oauth().map(|o| o.identity.as_str())))
        .map(|a| format!("{} (config file)", a.email))
        .collect();
    let mut unknown: Vec<String> = cfg
        .undiscovered
        .iter()
        .filter(|e| !e.eq_ignore_ascii_case(removed))
        .map(|e| format!("{e} (config file)"))
        .collect();
    for s in stored {
        match signs_in_as(s, cfg, base) {
            Ok(id) if uses(id.as_deref()) => users.push(s.email.clone()),
            Ok(_) => {}
            Err(_) => unknown.push(s.email.clone()),
        }
    }
    unknown.extend(unopened.map(|(e, _)| e));
    (users, unknown)
}

#[cfg(test)]
#[path = "remove_tests.rs"]
mod tests;
