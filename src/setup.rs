//! `mailgate setup`: one new account from an email address and a credential, the way a mail
//! client's account wizard does it — settings found, credential tested live against the
//! provider, account appended to the config file — then what to type into the mail client.
//!
//! The steps here are the parts without a terminal; `main.rs` asks the questions. Choices:
//! - The config file is edited with toml_edit: the account is appended as a new `[[account]]`
//!   with comments, everything already in the file stays byte for byte. It is written only
//!   after the live test passed (temporary file + rename, the file's mode kept), so a failed
//!   set-up leaves the file as it was.
//! - The upstream password goes into its own file, `STATE_DIR/credentials/EMAIL.password`,
//!   mode 0600 (folder 0700, tightened if it was looser), named by `password_file`, owned by
//!   the state folder's owner (see `owner`): the config file stays free of secrets
//!   and readable by the group that runs mailgate, and nothing depends on an environment
//!   variable being set at every start. OAuth accounts store no password: the tokens go to the
//!   encrypted token store of `mailgate oauth authorize`.
//! - Settings from a preset are written as `provider = "…"` (a preset update then reaches the
//!   account); settings found by MX, autoconfig or a guess, or given on the command line, are
//!   written out as `server`/`tls`, so a start-up does not depend on discovery again.
//! - The live test is the gateway's own code: [`crate::imap::upstream::login`] and
//!   [`crate::smtp::submit::Upstream::connect`] on the account as it will be loaded.

use crate::config::{Config, TlsMode};
use crate::discover::{Discovery, Source};
use crate::secret::Secret;
use std::path::{Path, PathBuf};
use toml_edit::{value, DocumentMut, Item, Table};
use zeroize::Zeroizing;

/// Why the set-up stopped. Never carries a password.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The config file cannot be read or is not TOML.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The account exists already.
    #[error("{path} already has an account {email}; edit or remove it there")]
    Duplicate {
        /// The file.
        path: PathBuf,
        /// The address.
        email: String,
    },
    /// The new account does not validate (e.g. a bad CA file).
    #[error("the new account is not valid: {0}")]
    Invalid(String),
    /// The live test failed: what failed, and what to do.
    #[error("{step} failed: {reason}{}", if .advice.is_empty() { String::new() } else { format!("\n  {}", .advice) })]
    LiveTest {
        /// `IMAP login` or `SMTP AUTH`.
        step: &'static str,
        /// The error, in the server's words.
        reason: String,
        /// One line of advice (help link) when the preset has one.
        advice: String,
        /// The server's certificate chains to no trusted root: a CA file would fix it.
        untrusted_certificate: bool,
    },
    /// OAuth authorization failed.
    #[error("OAuth authorization failed: {0}")]
    OAuth(String),
    /// Writing the files failed.
    #[error("cannot write {path}: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
}

/// How the account logs in upstream.
#[derive(Debug)]
pub enum Credential {
    /// A password or app password.
    Password(Secret),
    /// OAuth 2.0 (`[account.oauth2]`).
    OAuth {
        /// `google` / `microsoft`, or `None` with explicit endpoints.
        provider: Option<&'static str>,
        /// `authorize_url` and `token_url` (an identity provider without a preset).
        endpoints: Option<(String, String)>,
        /// Scopes, when not the preset's.
        scopes: Vec<String>,
        /// The application (client) id.
        client_id: String,
        /// Environment variable holding the client secret, if the app has one.
        client_secret_env: Option<String>,
        /// Microsoft tenant.
        tenant: Option<String>,
    },
}

/// Everything needed to add the account.
#[derive(Debug)]
pub struct Plan {
    /// The address.
    pub email: String,
    /// The servers and where they came from.
    pub found: Discovery,
    /// The upstream credential.
    pub credential: Credential,
    /// Extra CA file for the provider's certificate (written as `ca_file`).
    pub ca_file: Option<PathBuf>,
    /// argon2 hash of the local password.
    pub local_password_hash: String,
}

/// What a config file written by the first `mailgate setup` starts with: the shipped example,
/// which documents every setting; its example account is removed when setup adds the first one.
pub const NEW_FILE: &str = include_str!("../conf/mailgate.toml");

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
    text: String,
    doc: DocumentMut,
}

impl SetupError {
    /// Whether the live test failed only because the server's certificate is not trusted, so
    /// that giving its CA file (`ca_file`) and testing again may succeed.
    pub fn untrusted_certificate(&self) -> bool {
        matches!(
            self,
            SetupError::LiveTest {
                untrusted_certificate: true,
                ..
            }
        )
    }
}

impl Target {
    /// Reads the config file (a missing one starts as [`NEW_FILE`]) and refuses a second
    /// account for `email`.
    pub fn open(path: &Path, email: &str) -> Result<Target, SetupError> {
        let bad = |reason: String| SetupError::Config {
            path: path.to_owned(),
            reason,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            // A first set-up: start from the defaults, so one command gives a working file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => NEW_FILE.to_owned(),
            Err(e) => return Err(bad(e.to_string())),
        };
        let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            bad(format!("not valid TOML: {}", e.message().trim()))
        })?;
        let exists = doc
            .get("account")
            .and_then(Item::as_array_of_tables)
            .is_some_and(|accounts| {
                accounts.iter().any(|a| {
                    a.get("email")
                        .and_then(Item::as_str)
                        .is_some_and(|e| e.trim().eq_ignore_ascii_case(email.trim()))
                })
            });
        if exists {
            return Err(SetupError::Duplicate {
                path: path.to_owned(),
                email: email.to_owned(),
            });
        }
        Ok(Target {
            path: path.to_owned(),
            text,
            doc,
        })
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

    /// The account as mailgate will load it, with `credential` as its credential, in a
    /// config holding only this file's `[server]` table and the new account.
    fn load_alone(&self, plan: &Plan, credential: CredentialLine) -> Result<Config, SetupError> {
        let mut d: DocumentMut = self
            .server_only()
            .parse()
            .map_err(|e: toml_edit::TomlError| SetupError::Invalid(e.message().to_owned()))?;
        let mut accounts = toml_edit::ArrayOfTables::new();
        accounts.push(account_table(plan, credential));
        d.insert("account", Item::ArrayOfTables(accounts));
        let text = Zeroizing::new(d.to_string());
        Config::parse(&text, &self.path).map_err(|e| SetupError::Invalid(e.to_string()))
    }
}

/// How the new account's upstream password is written.
#[derive(Clone, Copy)]
enum CredentialLine<'a> {
    /// Inline (only for the in-memory live-test config, never written to disk).
    Inline(&'a Secret),
    /// `password_file = "…"`.
    File(&'a str),
}

/// The `[[account]]` table for `plan`.
fn account_table(plan: &Plan, credential: CredentialLine) -> Table {
    let mut account = Table::new();
    account.insert("email", value(plan.email.as_str()));
    account.insert(
        "local_password_hash",
        value(plan.local_password_hash.as_str()),
    );
    if let Some(mut k) = account.key_mut("local_password_hash") {
        k.leaf_decor_mut().set_prefix(
            "# argon2 hash of the local password the mail client uses (new one: mailgate hash-password)\n",
        );
    }
    let preset_id = match (&plan.found.imap.source, plan.found.preset) {
        (Source::Provider(_) | Source::Domain(_) | Source::Mx { .. }, Some(p)) => Some(p.id),
        _ => None,
    };
    if let Some(id) = preset_id {
        account.insert("provider", value(id));
        if let Some(mut k) = account.key_mut("provider") {
            k.leaf_decor_mut().set_prefix(format!(
                "# Servers from the built-in preset (found by: {})\n",
                plan.found.imap.source
            ));
        }
    }
    let oauth = matches!(plan.credential, Credential::OAuth { .. });
    let endpoint = |f: Option<&crate::discover::Found>, with_credential: bool| {
        let mut t = Table::new();
        if let (None, Some(f)) = (preset_id, f) {
            t.insert("server", value(f.address()));
            t.insert("tls", value(f.tls.as_str()));
            if let Some(mut k) = t.key_mut("server") {
                k.leaf_decor_mut().set_prefix(match &f.source {
                    Source::Given => "# Given to `mailgate setup`\n".to_owned(),
                    found => format!("# Found by: {found}\n"),
                });
            }
            if f.tls == TlsMode::None {
                t.insert("allow_plaintext", value(true));
            }
            if f.username != plan.email {
                t.insert("username", value(f.username.as_str()));
            }
        }
        if let Some(ca) = &plan.ca_file {
            t.insert("ca_file", value(ca.display().to_string()));
        }
        if with_credential && !oauth {
            match credential {
                CredentialLine::Inline(s) => {
                    t.insert("password", value(s.expose()));
                }
                CredentialLine::File(path) => {
                    t.insert("password_file", value(path));
                    if let Some(mut k) = t.key_mut("password_file") {
                        k.leaf_decor_mut().set_prefix(
                            "# The provider password, in a file only its owner can read (mode 0600)\n",
                        );
                    }
                }
            }
        }
        t
    };
    let imap = endpoint(Some(&plan.found.imap), true);
    if !imap.is_empty() {
        account.insert("imap", Item::Table(imap));
    }
    if let Some(smtp) = &plan.found.smtp {
        let t = endpoint(Some(smtp), false);
        if !t.is_empty() {
            account.insert("smtp", Item::Table(t));
        }
    }
    if let Credential::OAuth {
        provider,
        endpoints,
        scopes,
        client_id,
        client_secret_env,
        tenant,
    } = &plan.credential
    {
        let mut t = Table::new();
        if let Some(p) = provider {
            t.insert("provider", value(*p));
        }
        if let Some((authorize, token)) = endpoints {
            t.insert("authorize_url", value(authorize.as_str()));
            t.insert("token_url", value(token.as_str()));
        }
        if !scopes.is_empty() {
            t.insert("scopes", value(scopes.iter().collect::<toml_edit::Array>()));
        }
        t.insert("client_id", value(client_id.as_str()));
        if let Some(var) = client_secret_env {
            t.insert("client_secret_env", value(var.as_str()));
        }
        if let Some(tenant) = tenant {
            t.insert("tenant", value(tenant.as_str()));
        }
        account.insert("oauth2", Item::Table(t));
    }
    account
        .decor_mut()
        .set_prefix(format!("\n# {} — added by `mailgate setup`.\n", plan.email));
    account
}

/// Where the upstream password of `email` is kept: (absolute path, path as written in the
/// config — relative to the config's folder when it lies below it).
pub fn credential_path(target: &Target, state_dir: &Path, email: &str) -> (PathBuf, String) {
    let safe: String = email
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '-' | '_' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let abs = state_dir
        .join("credentials")
        .join(format!("{safe}.password"));
    let base = target.path.parent().unwrap_or(Path::new("."));
    let written = abs
        .strip_prefix(base)
        .ok()
        .filter(|_| !base.as_os_str().is_empty())
        .map(|rel| rel.display().to_string())
        .unwrap_or_else(|| abs.display().to_string());
    (abs, written)
}

/// Logs in to the upstream IMAP and SMTP servers with the account as it will be loaded (the
/// password inline, in memory only). For OAuth, tokens must already be stored.
pub async fn live_test(target: &Target, plan: &Plan) -> Result<Config, SetupError> {
    let none = Secret::default();
    let password = match &plan.credential {
        Credential::Password(p) => p,
        Credential::OAuth { .. } => &none,
    };
    let cfg = target.load_alone(plan, CredentialLine::Inline(password))?;
    let account = cfg
        .accounts
        .first()
        .ok_or_else(|| SetupError::Invalid("the account did not load".into()))?;
    match crate::imap::upstream::login(account, &cfg.server).await {
        Ok(mut logged_in) => {
            use tokio::io::AsyncWriteExt;
            // Say goodbye politely; the answer does not matter.
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                logged_in.stream.write_all(b"mgz LOGOUT\r\n"),
            )
            .await;
        }
        Err(e) => return Err(live_test_error(plan, "IMAP login", &e)),
    }
    if let Some(smtp) = &account.smtp {
        match crate::smtp::submit::Upstream::connect(smtp, &cfg.server).await {
            Ok(up) => up.quit().await,
            Err(e) => return Err(live_test_error(plan, "SMTP AUTH", &e)),
        }
    }
    Ok(cfg)
}

/// A failed live test step: the error in words that fit set-up (nothing is stored yet), and
/// one line of advice from the error's kind and the preset's facts.
fn live_test_error(
    plan: &Plan,
    step: &'static str,
    e: &crate::upstream::UpstreamError,
) -> SetupError {
    use crate::upstream::{TlsFailure, UpstreamError};
    let untrusted = matches!(
        e,
        UpstreamError::Tls {
            failure: TlsFailure::UntrustedIssuer,
            ..
        }
    );
    let reason = match e {
        UpstreamError::Auth {
            address,
            username,
            reason,
        } => format!("{address} rejected the password for {username}: {reason}"),
        other => other.to_string(),
    };
    let advice = match e {
        UpstreamError::Auth { .. } => match plan.found.preset {
            Some(p) if !p.advice.is_empty() => {
                let link = p.help.app_password.or(p.help.enable_imap).unwrap_or_default();
                format!("{}: {} {link}", p.name, p.advice).trim_end().to_owned()
            }
            _ => "check the password (many providers want an app password when 2-step verification is on)".into(),
        },
        _ if untrusted => match &plan.ca_file {
            None => "the server's certificate is not trusted: give its CA file with --ca-file".into(),
            Some(f) => format!(
                "the server's certificate is not trusted, not even with the CA file {}: give the CA that issued it",
                f.display()
            ),
        },
        _ => String::new(),
    };
    SetupError::LiveTest {
        step,
        reason,
        advice,
        untrusted_certificate: untrusted,
    }
}

/// Writes the credential file (0600, folder 0700, both the state folder's owner) and appends
/// the account to the config file (temporary file + rename; the file's mode, owner and group
/// are kept). Returns the credential file, if any.
pub fn write(
    target: &Target,
    plan: &Plan,
    state_dir: &Path,
) -> Result<Option<PathBuf>, SetupError> {
    use crate::oauth::store::write_atomic_as;
    use crate::owner::Owner;
    use std::os::unix::fs::PermissionsExt;
    let werr = |path: &Path, e: std::io::Error| SetupError::Write {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let secret = match &plan.credential {
        Credential::Password(p) => {
            let (abs, written) = credential_path(target, state_dir, &plan.email);
            Some((p, abs, written))
        }
        Credential::OAuth { .. } => None,
    };
    let line = secret
        .as_ref()
        .map_or("", |(_, _, written)| written.as_str());
    let text = appended(target, account_table(plan, CredentialLine::File(line)))?;
    // The credential file first: a config naming a file that is not there would not load.
    if let Some((p, abs, _)) = &secret {
        let dir = abs.parent().unwrap_or(Path::new("."));
        if !state_dir.is_dir() {
            std::fs::create_dir_all(state_dir).map_err(|e| werr(state_dir, e))?;
            std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| werr(state_dir, e))?;
            if let Some(o) = state_dir.parent().and_then(Owner::for_new_in) {
                o.apply_to_path(state_dir).map_err(|e| werr(state_dir, e))?;
            }
        }
        let owner = Owner::of(state_dir);
        private_dir(dir, owner).map_err(|e| werr(dir, e))?;
        let mut bytes = Zeroizing::new(p.expose().as_bytes().to_vec());
        bytes.push(b'\n');
        write_atomic_as(abs, &bytes, 0o600, owner, &mut |_| Ok(())).map_err(|e| werr(abs, e))?;
    }
    let secret_file = secret.map(|(_, abs, _)| abs);
    // A new file holds no secret: owner read-write, group read (for a `mailgate` group). A
    // replaced one keeps its mode, owner and group, or the service could not read it.
    let (mode, owner) = match std::fs::metadata(&target.path) {
        Ok(m) => (m.permissions().mode() & 0o7777, Owner::of(&target.path)),
        Err(_) => (
            0o640,
            target.path.parent().and_then(|d| {
                Owner::for_new_in(if d.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    d
                })
            }),
        ),
    };
    if let Err(e) = write_atomic_as(&target.path, text.as_bytes(), mode, owner, &mut |_| Ok(())) {
        // No account names the credential file now: do not leave the secret behind.
        if let Some(f) = &secret_file {
            let _ = std::fs::remove_file(f);
        }
        return Err(werr(&target.path, e));
    }
    Ok(secret_file)
}

/// The credentials folder: made with mode 0700 for `owner`, or, when it exists, tightened to
/// 0700 if group or others could enter it (it holds nothing but provider passwords, and the
/// README promises 0700; like OpenSSH's `~/.ssh`, but fixed instead of refused, since
/// mailgate made it).
fn private_dir(dir: &Path, owner: Option<crate::owner::Owner>) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => match owner {
            Some(o) => o.apply_to_path(dir),
            None => Ok(()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {
            let mode = std::fs::metadata(dir)?.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The file's text with `account` added after its last byte: the old text stays exactly as it
/// was, whatever it ends with (a comment, a table, no newline). Editing the parsed document
/// instead would move a trailing comment below the new account. The result is parsed again:
/// it must hold one account more than before, the new one last.
fn appended(target: &Target, account: Table) -> Result<String, SetupError> {
    let count = |d: &DocumentMut| {
        d.get("account")
            .and_then(Item::as_array_of_tables)
            .map_or(0, |a| a.len())
    };
    let email = account
        .get("email")
        .and_then(Item::as_str)
        .map(str::to_owned);
    let mut alone = DocumentMut::new();
    append_account(&mut alone, account);
    let mut text = target.text.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&alone.to_string());
    let unusable = |reason: String| SetupError::Write {
        path: target.path.clone(),
        reason: format!("{reason}; add the account by hand"),
    };
    let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        unusable(format!(
            "the file with the account appended is not valid TOML: {}",
            e.message().trim()
        ))
    })?;
    let last = doc
        .get("account")
        .and_then(Item::as_array_of_tables)
        .and_then(|a| a.iter().last())
        .and_then(|a| a.get("email"))
        .and_then(Item::as_str);
    if count(&doc) != count(&target.doc) + 1 || last.map(str::to_owned) != email {
        return Err(unusable(
            "the appended account would not be read as a new [[account]]".into(),
        ));
    }
    Ok(text)
}

/// Appends `table` as the last `[[account]]`, after everything in the file (toml_edit places
/// tables by position; the new ones get positions after the last existing one).
fn append_account(doc: &mut DocumentMut, mut table: Table) {
    let mut last = 0;
    fn max_pos(t: &Table, last: &mut usize) {
        if let Some(p) = t.position() {
            *last = (*last).max(p);
        }
        for (_, item) in t.iter() {
            match item {
                Item::Table(sub) => max_pos(sub, last),
                Item::ArrayOfTables(a) => a.iter().for_each(|sub| max_pos(sub, last)),
                _ => {}
            }
        }
    }
    max_pos(doc.as_table(), &mut last);
    let mut next = last + 1;
    table.set_position(next);
    for (_, item) in table.iter_mut() {
        if let Item::Table(sub) = item {
            next += 1;
            sub.set_position(next);
        }
    }
    match doc
        .get_mut("account")
        .and_then(Item::as_array_of_tables_mut)
    {
        Some(accounts) => accounts.push(table),
        None => {
            let mut accounts = toml_edit::ArrayOfTables::new();
            accounts.push(table);
            doc.insert("account", Item::ArrayOfTables(accounts));
        }
    }
}

/// A random local password: 20 characters from an alphabet without look-alikes.
pub fn generate_password() -> Secret {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    Secret::new(
        (0..20)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect(),
    )
}

/// What to type into the mail client; `sends` is whether the account has an SMTP server
/// (without one, the client gets no outgoing server to set).
pub fn client_instructions(
    server: &crate::config::ServerConfig,
    email: &str,
    local_password: Option<&Secret>,
    sends: bool,
) -> String {
    // The address itself, as the README's client table gives it: "localhost" may resolve to
    // ::1 first, where mailgate does not listen.
    let host = |a: std::net::SocketAddr| a.ip().to_string();
    let password = match local_password {
        Some(p) => format!("{}   (generated; shown only now)", p.expose()),
        None => "the local password you chose".to_owned(),
    };
    let outgoing = if sends {
        format!(
            "server {}  port {}  connection security: none, authentication: normal password",
            host(server.smtp_listen),
            server.smtp_listen.port()
        )
    } else {
        "none (no SMTP server was set up: this account receives only)".to_owned()
    };
    format!(
        "In the mail client:\n  \
         incoming mail (IMAP): server {}  port {}  connection security: none\n  \
         outgoing mail (SMTP): {outgoing}\n  \
         user name: {email}\n  \
         password: {password}\n",
        host(server.imap_listen),
        server.imap_listen.port(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::Found;

    const HASH: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

    fn target(text: &str, email: &str) -> Result<Target, SetupError> {
        thread_local!(static DIR: tempfile::TempDir = tempfile::tempdir().unwrap());
        let path = DIR.with(|d| d.path().join(format!("{}.toml", rand::random::<u32>())));
        std::fs::write(&path, text).unwrap();
        Target::open(&path, email)
    }

    fn plan(email: &str, found: Discovery) -> Plan {
        Plan {
            email: email.into(),
            found,
            credential: Credential::Password(Secret::new("app-pw".into())),
            ca_file: None,
            local_password_hash: HASH.into(),
        }
    }

    /// ola@icloud.com, by the icloud preset.
    fn icloud_plan() -> Plan {
        plan(
            "ola@icloud.com",
            crate::discover::from_preset(
                "ola@icloud.com",
                crate::provider::by_id("icloud").unwrap(),
                Source::Domain("icloud"),
            ),
        )
    }

    const FILE: &str = "# my gateway\n[server]\nimap_listen = \"127.0.0.1:2143\" # local only\n\n[[account]]\nemail = \"a@example.no\"\nlocal_password_hash = \"x\"\n[account.imap]\nserver = \"h:993\"\npassword_env = \"P\"\n\n[metrics]\nlisten = \"127.0.0.1:9187\"\n";

    #[test]
    fn appends_after_everything_and_keeps_the_file() {
        let t = target(FILE, "ola@icloud.com").unwrap();
        let p = icloud_plan();
        let out = appended(
            &t,
            account_table(
                &p,
                CredentialLine::File("state/credentials/ola@icloud.com.password"),
            ),
        )
        .unwrap();
        assert!(out.starts_with(FILE), "{out}");
        let added = &out[FILE.len()..];
        assert!(
            added.contains("[[account]]\nemail = \"ola@icloud.com\""),
            "{added}"
        );
        assert!(added.contains("provider = \"icloud\""), "{added}");
        assert!(
            added.contains("password_file = \"state/credentials/ola@icloud.com.password\""),
            "{added}"
        );
        assert!(!added.contains("server ="), "{added}");
        // And mailgate loads it.
        let text = out
            .replace("password_env = \"P\"", "password = \"p\"")
            .replace(
                "local_password_hash = \"x\"",
                &format!("local_password_hash = \"{HASH}\""),
            );
        let e = Config::parse(&text, &t.path).unwrap_err().to_string();
        assert!(
            e.contains("password_file") && e.contains("cannot read"),
            "{e}"
        );
    }

    /// A file that ends with a comment, or without a newline, keeps every byte: toml_edit
    /// would move a trailing comment below the new account.
    #[test]
    fn a_file_ending_with_a_comment_or_without_a_newline_is_kept() {
        let p = icloud_plan();
        let table = || account_table(&p, CredentialLine::File("x.password"));
        for old in [
            format!("{FILE}# [[account]]\n# email = \"sketch@example.no\"\n"),
            FILE.trim_end().to_owned(),
            "# only a comment".to_owned(),
            String::new(),
        ] {
            let t = target(&old, "ola@icloud.com").unwrap();
            let out = appended(&t, table()).unwrap();
            assert!(out.starts_with(&old), "{out}");
            let doc: DocumentMut = out.parse().unwrap();
            let accounts = doc["account"].as_array_of_tables().unwrap();
            let last = accounts.iter().last().unwrap();
            assert_eq!(last["email"].as_str(), Some("ola@icloud.com"), "{out}");
            assert_eq!(last["imap"]["password_file"].as_str(), Some("x.password"));
        }
        // `account` as an inline array cannot take an [[account]] after it: refused, with
        // nothing written.
        let t = target("account = []\n", "ola@icloud.com").unwrap();
        let e = appended(&t, table()).unwrap_err().to_string();
        assert!(e.contains("add the account by hand"), "{e}");
    }

    #[test]
    fn discovered_servers_are_written_out_and_duplicates_refused() {
        let t = target(FILE, "ola@example.test").unwrap();
        let found = Discovery {
            email: "ola@example.test".into(),
            preset: None,
            imap: Found {
                host: "imap.example.test".into(),
                port: 143,
                tls: TlsMode::Starttls,
                username: "ola".into(),
                source: Source::Guess,
            },
            smtp: Some(Found {
                host: "127.0.0.1".into(),
                port: 25,
                tls: TlsMode::None,
                username: "ola@example.test".into(),
                source: Source::Given,
            }),
            notes: vec![],
        };
        let cfg = t
            .load_alone(
                &plan("ola@example.test", found),
                CredentialLine::Inline(&Secret::new("pw".into())),
            )
            .unwrap();
        let a = &cfg.accounts[0];
        assert_eq!(
            (
                a.imap.address(),
                a.imap.target.tls,
                a.imap.username.as_str()
            ),
            ("imap.example.test:143".into(), TlsMode::Starttls, "ola")
        );
        let s = a.smtp.as_ref().unwrap();
        assert_eq!(
            (
                s.address(),
                s.target.tls,
                s.credential.password().unwrap().expose()
            ),
            ("127.0.0.1:25".into(), TlsMode::None, "pw")
        );
        assert_eq!(cfg.server.imap_listen.port(), 2143);
        assert!(matches!(
            target(FILE, "A@Example.NO"),
            Err(SetupError::Duplicate { .. })
        ));
        assert!(matches!(
            target("[server\n", "a@b.c"),
            Err(SetupError::Config { .. })
        ));
    }

    /// The listeners change in place, comments kept; a missing one is added to [server]; a
    /// file without [server] is refused.
    #[test]
    fn listen_addresses_change_one_line() {
        let mut t = target(FILE, "x@y.z").unwrap();
        t.set_listen("imap_listen", "127.0.0.1:3143".parse().unwrap())
            .unwrap();
        assert_eq!(
            t.text,
            FILE.replace(
                "\"127.0.0.1:2143\" # local only",
                "\"127.0.0.1:3143\" # local only"
            )
        );
        t.set_listen("smtp_listen", "127.0.0.1:3587".parse().unwrap())
            .unwrap();
        let server = t.server().unwrap();
        assert_eq!(
            (server.imap_listen.port(), server.smtp_listen.port()),
            (3143, 3587)
        );
        let mut none = target("# nothing\n", "x@y.z").unwrap();
        let e = none
            .set_listen("imap_listen", "127.0.0.1:3143".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no [server] table"), "{e}");
    }

    #[test]
    fn a_missing_file_starts_from_the_defaults() {
        let path = tempfile::tempdir().unwrap().path().join("new.toml");
        let t = Target::open(&path, "ola@icloud.com").unwrap();
        assert_eq!(t.text, NEW_FILE);
        assert_eq!(t.server().unwrap().imap_listen.port(), 1143);
    }

    #[test]
    fn the_shipped_example_account_is_removed_whole_and_only_unchanged() {
        let path = tempfile::tempdir().unwrap().path().join("new.toml");
        let mut t = Target::open(&path, "ola@icloud.com").unwrap();
        assert!(t.has_example());
        t.remove_example().unwrap();
        assert!(!t.has_example());
        // The block is the file's end: what stays is the shipped text before it, metrics on,
        // no account left (so the one setup appends is the only one).
        assert!(NEW_FILE.starts_with(&t.text), "{}", t.text);
        assert!(t.text.ends_with("# tenant = \"common\"\n"), "{}", t.text);
        assert!(t.doc.get("metrics").is_some());
        assert!(t.doc.get("account").is_none());
        // An example made someone's own (another address) is theirs: never removed.
        let edited = NEW_FILE.replace("email = \"you@gmail.com\"", "email = \"me@gmail.com\"");
        let mut t = target(&edited, "ola@icloud.com").unwrap();
        assert!(!t.has_example());
        t.remove_example().unwrap();
        assert_eq!(t.text, edited);
        // A file without the block is left alone.
        let mut t = target(FILE, "ola@icloud.com").unwrap();
        t.remove_example().unwrap();
        assert_eq!(t.text, FILE);
    }

    #[test]
    fn instructions_and_generated_passwords() {
        let t = target(FILE, "x@y.z").unwrap();
        let s = t.server().unwrap();
        let text = client_instructions(&s, "x@y.z", None, true);
        assert!(text.contains("server 127.0.0.1  port 2143"), "{text}");
        assert!(text.contains("port 1587"), "{text}");
        let text = client_instructions(&s, "x@y.z", None, false);
        assert!(
            text.contains("outgoing mail (SMTP): none (no SMTP server was set up"),
            "{text}"
        );
        assert!(!text.contains("1587"), "{text}");
        let a = generate_password();
        assert_eq!(a.expose().len(), 20);
        assert_ne!(a, generate_password());
    }
}
