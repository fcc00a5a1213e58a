//! The configuration file: TOML schema (serde, `deny_unknown_fields`) → validated [`Config`].
//!
//! Two layers on purpose. The `*File` structs mirror the file one to one, so that serde rejects
//! typos and unknown keys with a position. [`Config`] is what the rest of the program sees:
//! every default applied, every path resolved against the config file's folder, every
//! credential read (from the file, the environment or a secret file) and every TLS client
//! configuration built — so a config that loads is a config that can run, and a broken one is
//! reported at start-up (or on reload) instead of at the first login.
//!
//! Errors name the file, line, column and the field path (`account[0].imap.tls`), the way an
//! operator wants to read them.
//!
//! By file: `file.rs` the schema as written; `server.rs` `[server]` and `[metrics]`; `proxy.rs`
//! `[server.proxy_protocol]`; `web.rs` `[web]`;
//! `account.rs` `[[account]]` (identity, where its servers come from); `endpoint.rs` one
//! server table (target and credential); `oauth2.rs` `[account.oauth2]`; `folders.rs` `[account.folders]`; `locate.rs` placing
//! an error in the file. Parsing never touches the network: accounts whose servers must be
//! discovered are listed in [`Config::undiscovered`] for `crate::discover::resolve`.

mod account;
mod address;
mod endpoint;
mod file;
mod folders;
mod locate;
mod located;
mod oauth2;
mod proxy;
mod server;
mod store;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod tests;
mod warm;
mod web;

pub use crate::net::TlsMode;
pub use account::Account;
pub use endpoint::{Credential, Endpoint};
pub use folders::Folders;
pub use oauth2::{ClientAuth, OAuth2};
pub use proxy::{ProxyProtocol, LISTENER_NAMES as PROXY_LISTENER_NAMES};
pub use server::{LocalTls, MetricsConfig, ServerConfig, ThrottleConfig};
pub use store::{StoreConfig, StoreKey};
pub use warm::WarmSessions;
pub use web::{WebConfig, WebOAuthApp};

use crate::provider::Discovery;
use file::{AccountFile, AccountsFile, FileConfig};
use locate::Locator;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where `mailgate run` looks when no `--config` is given.
pub const DEFAULT_PATH: &str = "conf/mailgate.toml";

/// A configuration file that cannot be used, with the place in it that says why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{path}: cannot read the config file: {error}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error (in the message, not a `source`: an error chain would print it twice).
        error: std::io::Error,
    },
    /// The file holds nothing but blanks and comments: an editor's half-written save or a full
    /// disk, never a configuration.
    #[error(
        "{path}: the config file is empty; it was not read (a half-written save or a full disk?)"
    )]
    Empty {
        /// The config file.
        path: PathBuf,
    },
    /// The file has no `[[account]]` table and does not say that this is meant: a file that
    /// lost its accounts would make every login fail.
    #[error("no accounts in {path}: every login would fail, so the file is refused (a file cut short by a half-written save or a full disk looks like this); add an [[account]] (`mailgate setup`), or set `allow_no_accounts = true` in [server] to run without accounts")]
    NoAccounts {
        /// The config file.
        path: PathBuf,
    },
    /// The file is not valid TOML, or does not match the schema, or a value is unusable.
    #[error("{path}:{line}:{column}: {field}: {message}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the offending value.
        line: usize,
        /// 1-based column of the offending value.
        column: usize,
        /// Dotted field path, e.g. `account[0].imap.tls`.
        field: String,
        /// What is wrong, in words.
        message: String,
    },
}

// ---------------------------------------------------------------------------------------------
// The validated configuration.

/// A loaded, validated configuration. Shared as `Arc<Config>`; a reload builds a new one.
#[derive(Debug)]
pub struct Config {
    /// The file this came from (for reload and messages).
    pub path: PathBuf,
    /// Listener and limit settings.
    pub server: ServerConfig,
    /// Accounts in file order.
    pub accounts: Vec<Arc<Account>>,
    /// The Prometheus endpoint; `None` when the file has no `[metrics]` table.
    pub metrics: Option<MetricsConfig>,
    /// Lower-cased login name → index into `accounts`.
    by_login: HashMap<String, usize>,
    /// Accounts left out because their servers need network discovery (no servers in the file
    /// and no preset for the domain); `crate::discover::resolve` fills them in.
    pub undiscovered: Vec<String>,
    /// `[store]`: the shared store on PostgreSQL, whose accounts join the file's.
    pub store: Option<StoreConfig>,
    /// Accounts of the store left out, and why (named in the file too, or invalid): the
    /// caller logs them; the other accounts serve on.
    pub store_skipped: Vec<(String, String)>,
    /// `[web]`: the connect page; `None` when the file has no `[web]` table.
    pub web: Option<WebConfig>,
}

/// An account kept in the shared store: its `[[account]]` table as a TOML document of its own
/// (`email = …`, `[imap]`, …), under its lower-cased address.
#[derive(Debug, Clone)]
pub struct StoredAccount {
    /// The address, lower-cased (the row's key).
    pub email: String,
    /// The table's text (holds the upstream password, if any).
    pub text: crate::secret::Secret,
}

/// The config file's text, or [`ConfigError::Read`].
pub fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read(path)?;
        Config::parse(&text, path)
    }

    /// Validates `text` as if it had been read from `path` (relative paths resolve against
    /// `path`'s folder; environment variables are read now). No network: accounts that need
    /// discovery are listed in [`Config::undiscovered`] and left out.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        Config::parse_with(text, path, &HashMap::new())
    }

    /// [`Config::parse`] with the servers discovered for some accounts (by lower-case email).
    /// A file without `[[account]]` tables is refused unless `[server]` says
    /// `allow_no_accounts = true`, and an empty one always: both are what a half-written save
    /// or a full disk leaves, and serving them would fail every login.
    pub fn parse_with(
        text: &str,
        path: &Path,
        discovered: &HashMap<String, Discovery>,
    ) -> Result<Config, ConfigError> {
        Config::parse_inner(text, path, discovered, true, &[])
    }

    /// [`Config::parse_with`] plus the accounts of the shared store. An account named in the
    /// file and in the store is the file's (the store's is left out, see
    /// [`Config::store_skipped`]); a store account that does not validate is left out too,
    /// so that one bad row never stops a node.
    pub fn parse_stored(
        text: &str,
        path: &Path,
        discovered: &HashMap<String, Discovery>,
        stored: &[StoredAccount],
    ) -> Result<Config, ConfigError> {
        Config::parse_inner(text, path, discovered, true, stored)
    }

    /// The `[server]` settings of `text`, whether or not it has accounts (`mailgate setup`
    /// reads them before the file has its first account).
    pub fn parse_server(text: &str, path: &Path) -> Result<ServerConfig, ConfigError> {
        Config::parse_inner(text, path, &HashMap::new(), false, &[]).map(|c| c.server)
    }

    /// [`Config::parse_server`] of the file at `path` (`mailgate throttle` needs only
    /// `state_dir`, whatever the accounts).
    pub fn load_server(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = read(path)?;
        Config::parse_server(&text, path)
    }

    fn parse_inner(
        text: &str,
        path: &Path,
        discovered: &HashMap<String, Discovery>,
        need_accounts: bool,
        stored: &[StoredAccount],
    ) -> Result<Config, ConfigError> {
        if need_accounts && text.trim().is_empty() {
            return Err(ConfigError::Empty {
                path: path.to_owned(),
            });
        }
        let loc = Locator { text, path };
        let file: FileConfig = toml::from_str(text).map_err(|e| loc.toml(&e))?;
        // With a store, the accounts live there: a file without any is the normal case.
        let accountless = file.account.is_empty() && file.store.is_none();
        if need_accounts && accountless && file.server.allow_no_accounts != Some(true) {
            return Err(ConfigError::NoAccounts {
                path: path.to_owned(),
            });
        }
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let server = server::server(file.server, &base, loc)?;
        let metrics = server::metrics(file.metrics, loc)?;
        let web = web::web(file.web, &base, loc)?;
        let store = match file.store {
            None => None,
            Some(spanned) => {
                let at = spanned.span().start;
                let s = store::store(spanned.into_inner(), &base)
                    .map_err(|e| loc.at(at, format!("store{}", e.field), e.message))?;
                Some(s)
            }
        };
        let cx = account::Context {
            loc,
            base: &base,
            state_dir: &server.state_dir,
            discovered,
        };
        let mut built = Built::default();
        for (i, spanned) in file.account.into_iter().enumerate() {
            let at = spanned.span().start;
            built.add(spanned.into_inner(), &format!("account[{i}]"), at, &cx)?;
        }
        let store_skipped = built.add_stored(stored, &cx);
        Ok(Config {
            path: path.to_owned(),
            server,
            accounts: built.accounts,
            metrics,
            by_login: built.by_login,
            undiscovered: built.undiscovered,
            store,
            store_skipped,
            web,
        })
    }

    /// The account a client logs in as, by email address (case-insensitive).
    pub fn account(&self, login: &str) -> Option<&Arc<Account>> {
        self.by_login
            .get(&login.trim().to_ascii_lowercase())
            .map(|&i| &self.accounts[i])
    }
}

/// The accounts validated so far.
#[derive(Default)]
struct Built {
    accounts: Vec<Arc<Account>>,
    by_login: HashMap<String, usize>,
    undiscovered: Vec<String>,
    identities: oauth2::Identities,
}

impl Built {
    /// Validates table `a` (`name` is `account[i]`, `at` its offset) and adds it; returns its
    /// address.
    fn add(
        &mut self,
        a: AccountFile,
        name: &str,
        at: usize,
        cx: &account::Context,
    ) -> Result<String, ConfigError> {
        let loc = cx.loc;
        let email = account::check_identity(&a, name, at, loc)?;
        let login = email.to_ascii_lowercase();
        if self.by_login.contains_key(&login) {
            return Err(loc.at(
                at,
                format!("{name}.email"),
                format!("`{email}` is configured twice"),
            ));
        }
        match account::account(a, email.clone(), name, at, cx)? {
            Some(account) => {
                if let Some(o) = account.imap.credential.oauth() {
                    if let Some(msg) = self.identities.add(name, o) {
                        return Err(loc.at(at, format!("{name}.oauth2"), msg));
                    }
                }
                self.by_login.insert(login, self.accounts.len());
                self.accounts.push(Arc::new(account));
            }
            None => self.undiscovered.push(email.clone()),
        }
        Ok(email)
    }

    /// Adds the store's accounts that the file does not name and that validate; returns the
    /// others with the reason.
    fn add_stored(
        &mut self,
        stored: &[StoredAccount],
        cx: &account::Context,
    ) -> Vec<(String, String)> {
        let mut skipped = Vec::new();
        for s in stored {
            if self.by_login.contains_key(&s.email) || self.undiscovered_has(&s.email) {
                skipped.push((
                    s.email.clone(),
                    "the config file has an account of this address too; the file's is used"
                        .to_owned(),
                ));
                continue;
            }
            let path = stored_path(&s.email);
            let cx = account::Context {
                loc: Locator {
                    text: s.text.expose(),
                    path: &path,
                },
                ..*cx
            };
            if let Err(e) = self.add_table(s, &cx) {
                skipped.push((s.email.clone(), e.to_string()));
            }
        }
        skipped
    }

    fn undiscovered_has(&self, login: &str) -> bool {
        self.undiscovered
            .iter()
            .any(|e| e.eq_ignore_ascii_case(login))
    }

    /// One stored table, which must name the address it is kept under.
    fn add_table(&mut self, s: &StoredAccount, cx: &account::Context) -> Result<(), ConfigError> {
        let loc = cx.loc;
        let a: AccountFile = toml::from_str(s.text.expose()).map_err(|e| loc.toml(&e))?;
        if !a.email.trim().eq_ignore_ascii_case(&s.email) {
            return Err(loc.at(
                0,
                "account.email".into(),
                format!("is not `{}`, the address the store keeps it under", s.email),
            ));
        }
        self.add(a, "account", 0, cx).map(|_| ())
    }
}

/// How messages name a stored account of address `email` (there is no file).
pub fn stored_path(email: &str) -> PathBuf {
    PathBuf::from(format!("store:{email}"))
}

/// One account of the shared store, alone, as a node with `server` loads it (relative paths
/// against the config file's folder `base`): `None` when its servers need discovery. What
/// `mailgate account remove` reads to learn whose OAuth tokens the accounts use.
pub fn stored_account(
    s: &StoredAccount,
    server: &ServerConfig,
    base: &Path,
) -> Result<Option<Arc<Account>>, ConfigError> {
    let path = stored_path(&s.email);
    let discovered = HashMap::new();
    let cx = account::Context {
        loc: Locator {
            text: s.text.expose(),
            path: &path,
        },
        base,
        state_dir: &server.state_dir,
        discovered: &discovered,
    };
    let mut built = Built::default();
    built.add_table(s, &cx)?;
    Ok(built.accounts.pop())
}

/// The `[[account]]` tables of `text` (a file of nothing but them, read from `path`), each
/// validated as the config file's accounts are, with `server`'s `state_dir` and relative paths
/// against the config file's folder `base`: (lower-cased address, the table as a TOML document
/// of its own). What `mailgate account add` puts into the shared store.
pub fn account_tables(
    text: &str,
    path: &Path,
    server: &ServerConfig,
    base: &Path,
) -> Result<Vec<StoredAccount>, ConfigError> {
    let loc = Locator { text, path };
    let file: AccountsFile = toml::from_str(text).map_err(|e| loc.toml(&e))?;
    let raw: toml::Table = toml::from_str(text).map_err(|e| loc.toml(&e))?;
    let cx = account::Context {
        loc,
        base,
        state_dir: &server.state_dir,
        discovered: &HashMap::new(),
    };
    let mut built = Built::default();
    let tables = raw.get("account").and_then(toml::Value::as_array);
    let mut out = Vec::new();
    for (i, spanned) in file.account.into_iter().enumerate() {
        let at = spanned.span().start;
        let email = built.add(spanned.into_inner(), &format!("account[{i}]"), at, &cx)?;
        let table = tables
            .and_then(|t| t.get(i))
            .and_then(toml::Value::as_table);
        let text = table
            .and_then(|t| toml::to_string(t).ok())
            .unwrap_or_default();
        out.push(StoredAccount {
            email: email.to_ascii_lowercase(),
            text: crate::secret::Secret::new(text),
        });
    }
    if out.is_empty() {
        return Err(ConfigError::NoAccounts {
            path: path.to_owned(),
        });
    }
    Ok(out)
}
