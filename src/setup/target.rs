//! The config file being added to: its text and parsed document, the shipped example
//! account, the `[server]` listen addresses, and the new account loaded as mailgate will.

use super::account::{account_table, accounts_doc, keep_unasked, CredentialLine};
use super::{Plan, SetupError};
use crate::config::Config;
use crate::secret::Secret;
use std::path::{Path, PathBuf};
use toml_edit::{DocumentMut, Item};
use zeroize::Zeroizing;

/// What a config file written by the first `mailgate setup` starts with: the shipped example,
/// which documents every setting; its example account is removed when setup adds the first one.
pub const NEW_FILE: &str = include_str!("../../conf/mailgate.toml");

/// The shipped example account's block in `conf/mailgate.toml` starts with a line beginning
/// so, and ends with the line [`EXAMPLE_END`]. Marked in the text (not found by address alone)
/// so that removing it takes its comments along and nothing else.
const EXAMPLE_START: &str = "# >>> The example account.";
const EXAMPLE_END: &str = "# <<< end of the example account\n";
/// The example account's address and local password hash ("change-me"): a block that no
/// longer holds exactly these was made someone's own and is never removed.
pub const EXAMPLE_EMAIL: &str = "you@gmail.com";
const EXAMPLE_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$zQPAotOgT5aiuPEOVbrekQ$I/B43x1W5eSyGqPyE27+vfNenDb4xMJf3oc1slmwOGM";

/// The file as it is now: text, parsed document, and the folder relative paths start from.
pub struct Target {
    /// The config file.
    pub path: PathBuf,
    pub(super) text: String,
    pub(super) doc: DocumentMut,
    /// The account being changed, for an edit ([`Target::open_edit`]).
    pub(super) old: Option<Old>,
}

/// The account an edit replaces.
pub(super) struct Old {
    /// Its `[[account]]` table as it is now (the file's, or the stored row's).
    pub(super) table: toml_edit::Table,
    /// Its place among the file's `[[account]]` tables; `None` for a shared store's row.
    pub(super) index: Option<usize>,
}

impl Target {
    /// Reads the config file (a missing one starts as [`NEW_FILE`]) and refuses a second
    /// account for `email`.
    pub fn open(path: &Path, email: &str) -> Result<Target, SetupError> {
        let target = Target::read(path, true)?;
        if super::block::index_of(&target.doc, email).is_some() {
            return Err(SetupError::Duplicate {
                path: path.to_owned(),
                email: email.to_owned(),
            });
        }
        Ok(target)
    }

    /// The file's text and document (`new_ok`: a missing file starts as [`NEW_FILE`]).
    fn read(path: &Path, new_ok: bool) -> Result<Target, SetupError> {
        let bad = |reason: String| SetupError::Config {
            path: path.to_owned(),
            reason,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            // A first set-up: start from the defaults, so one command gives a working file.
            Err(e) if new_ok && e.kind() == std::io::ErrorKind::NotFound => NEW_FILE.to_owned(),
            Err(e) => return Err(bad(e.to_string())),
        };
        let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            bad(format!("not valid TOML: {}", e.message().trim()))
        })?;
        Ok(Target {
            path: path.to_owned(),
            text,
            doc,
            old: None,
        })
    }

    /// Reads the config file to change (or remove) the account `email`: the file's own
    /// `[[account]]`, or — when the file has none for it but a `[store]` — the shared store's,
    /// given afterwards with [`Target::stored`].
    pub fn open_edit(path: &Path, email: &str) -> Result<Target, SetupError> {
        let mut target = Target::read(path, false)?;
        match super::block::index_of(&target.doc, email) {
            Some(index) => {
                target.old = table_at(&target.doc, index).map(|table| Old {
                    table,
                    index: Some(index),
                });
            }
            None if target.doc.get("store").is_some() => {}
            None => {
                return Err(SetupError::NoAccount {
                    path: path.to_owned(),
                    email: email.to_owned(),
                })
            }
        }
        Ok(target)
    }

    /// The shared store's row of the account being edited (for a target from
    /// [`Target::open_edit`] whose file does not have the account itself).
    pub fn stored(&mut self, row: &crate::config::StoredAccount) -> Result<(), SetupError> {
        if self.old.as_ref().is_some_and(|o| o.index.is_some()) {
            return Ok(());
        }
        let doc: DocumentMut =
            row.text.expose().parse().map_err(|_| {
                SetupError::Invalid("the stored account is not a TOML table".into())
            })?;
        // The row holds the table's keys at the top (`config::account_tables`).
        let table = doc.as_table().clone();
        if table.get("email").is_none() {
            return Err(SetupError::Invalid(
                "the stored row holds no account".into(),
            ));
        }
        self.old = Some(Old { table, index: None });
        Ok(())
    }

    /// Whether this target changes an account (it came from [`Target::open_edit`] and the
    /// account was found).
    pub fn is_edit(&self) -> bool {
        self.old.is_some()
    }

    /// Whether the file did not exist (it starts as [`NEW_FILE`]).
    pub fn is_new(&self) -> bool {
        !self.path.exists()
    }

    /// The byte range of the shipped example account (see [`EXAMPLE_START`]), when the file
    /// still holds it unchanged: one `[[account]]` with the example's address and local
    /// password hash, and nothing else but comments between the markers.
    fn example_range(&self) -> Option<std::ops::Range<usize>> {
        let start = self
            .text
            .match_indices(EXAMPLE_START)
            .map(|(i, _)| i)
            .find(|&i| i == 0 || self.text.as_bytes()[i - 1] == b'\n')?;
        let end = start + self.text[start..].find(EXAMPLE_END)? + EXAMPLE_END.len();
        let block: DocumentMut = self.text[start..end].parse().ok()?;
        let accounts = block.get("account")?.as_array_of_tables()?;
        let account = accounts.get(0)?;
        let field = |k: &str| account.get(k).and_then(Item::as_str);
        let unchanged = block.len() == 1
            && accounts.len() == 1
            && field("email") == Some(EXAMPLE_EMAIL)
            && field("local_password_hash") == Some(EXAMPLE_HASH);
        // The blank line that set the block apart goes with it.
        let start = if self.text[..start].ends_with("\n\n") {
            start - 1
        } else {
            start
        };
        unchanged.then_some(start..end)
    }

    /// Whether the file holds the shipped example account, unchanged.
    pub fn has_example(&self) -> bool {
        self.example_range().is_some()
    }

    /// Cuts the shipped example account (its block, comments included) out of the text to be
    /// written; the rest of the file stays byte for byte. The result must read as the same
    /// file with one account fewer, or nothing is changed.
    pub fn remove_example(&mut self) -> Result<(), SetupError> {
        let Some(range) = self.example_range() else {
            return Ok(());
        };
        let refuse = |reason: &str| SetupError::Config {
            path: self.path.clone(),
            reason: format!("cannot remove the example account: {reason}; remove it by hand"),
        };
        let mut text = self.text.clone();
        text.replace_range(range, "");
        let doc: DocumentMut = text
            .parse()
            .map_err(|_| refuse("the rest of the file would not be valid TOML"))?;
        let count = |d: &DocumentMut| {
            d.get("account")
                .and_then(Item::as_array_of_tables)
                .map_or(0, |a| a.len())
        };
        if count(&doc) + 1 != count(&self.doc) {
            return Err(refuse("the file would not lose exactly that account"));
        }
        self.text = text;
        self.doc = doc;
        Ok(())
    }

    /// Sets `[server] KEY = "ADDR"` (`imap_listen` or `smtp_listen`), keeping the line's
    /// comments: the one change `setup` makes to text already in the file. The rest must come
    /// out unchanged — one line replaced, or one added to `[server]` — or nothing is changed.
    pub fn set_listen(
        &mut self,
        key: &'static str,
        addr: std::net::SocketAddr,
    ) -> Result<(), SetupError> {
        let refuse = |reason: String| SetupError::Config {
            path: self.path.clone(),
            reason: format!("cannot set {key}: {reason}; edit [server] by hand"),
        };
        let mut doc = self.doc.clone();
        let server = doc
            .get_mut("server")
            .and_then(Item::as_table_mut)
            .ok_or_else(|| refuse("the file has no [server] table".into()))?;
        let mut new = toml_edit::Value::from(addr.to_string());
        // In place: the key keeps the comment lines above it, the value its own comment.
        match server.get_mut(key).and_then(Item::as_value_mut) {
            Some(old) => {
                *new.decor_mut() = old.decor().clone();
                *old = new;
            }
            None => {
                server.insert(key, Item::Value(new));
            }
        }
        let text = doc.to_string();
        // Lines with their endings, so a lost or added final newline counts as a change.
        let old: Vec<&str> = self.text.split_inclusive('\n').collect();
        let now: Vec<&str> = text.split_inclusive('\n').collect();
        let first = old.iter().zip(&now).take_while(|(a, b)| a == b).count();
        let added = now.len() == old.len() + 1;
        let rest_old = if added { first } else { first + 1 };
        let kept = (added || now.len() == old.len()) && old.get(rest_old..) == now.get(first + 1..);
        if !kept {
            return Err(refuse("the rest of the file would change".into()));
        }
        self.text = text;
        self.doc = doc;
        Ok(())
    }

    /// The `[server]` settings as mailgate will load them (listen addresses, state folder,
    /// time-outs), from the file's `[server]` table alone.
    pub fn server(&self) -> Result<crate::config::ServerConfig, SetupError> {
        Config::parse_server(&self.server_only(), &self.path).map_err(|e| SetupError::Config {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }

    /// The file's `[store]`, validated, when it has one: the new account then goes to the
    /// shared store and the file stays as it is. The whole file is loaded as `mailgate run`
    /// loads it (without discovery), so a file this node could not run on stops set-up here,
    /// with the error placed in it.
    pub fn store(&self) -> Result<Option<crate::config::StoreConfig>, SetupError> {
        if self.doc.get("store").is_none() {
            return Ok(None);
        }
        Config::parse(&self.text, &self.path)
            .map(|c| c.store)
            .map_err(|e| SetupError::Config {
                path: self.path.clone(),
                reason: e.to_string(),
            })
    }

    fn server_only(&self) -> String {
        let mut d = DocumentMut::new();
        if let Some(server) = self.doc.get("server") {
            d.insert("server", server.clone());
        }
        d.to_string()
    }

    /// The new account as mailgate will load it (without a password: for OAuth), in a config
    /// holding only this file's `[server]` table and the account.
    pub fn load_account(&self, plan: &Plan) -> Result<Config, SetupError> {
        self.load_alone(plan, CredentialLine::Inline(&Secret::default()))
    }

    /// The `[[account]]` table for `plan` with `credential`; for an edit, with the settings of
    /// the old table that an edit does not ask about ([`keep_unasked`]).
    pub(super) fn account(&self, plan: &Plan, credential: CredentialLine) -> toml_edit::Table {
        let mut table = account_table(plan, credential);
        if let Some(old) = &self.old {
            keep_unasked(&mut table, &old.table, plan.found.smtp.is_some());
        }
        table
    }

    /// The account as mailgate will load it, with `credential` as its credential, in a
    /// config holding only this file's `[server]` table and the new account.
    pub(super) fn load_alone(
        &self,
        plan: &Plan,
        credential: CredentialLine,
    ) -> Result<Config, SetupError> {
        let d: DocumentMut = self
            .server_only()
            .parse()
            .map_err(|e: toml_edit::TomlError| SetupError::Invalid(e.message().to_owned()))?;
        let text = Zeroizing::new(accounts_doc(d, self.account(plan, credential)).to_string());
        Config::parse(&text, &self.path).map_err(|e| SetupError::Invalid(e.to_string()))
    }
}

/// The `index`-th `[[account]]` table of `doc`, cloned.
fn table_at(doc: &DocumentMut, index: usize) -> Option<toml_edit::Table> {
    doc.get("account")?
        .as_array_of_tables()?
        .get(index)
        .cloned()
}
