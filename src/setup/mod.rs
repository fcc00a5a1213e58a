//! `mailgate setup`: one new account from an email address and a credential, the way a mail
//! client's account wizard does it — settings found, credential tested live against the
//! provider, account appended to the config file — then what to type into the mail client.
//!
//! The steps here are the parts without a terminal; the binary's wizard asks the questions. Choices:
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
//! - With a `[store]` in the file, the account goes to the shared store instead
//!   ([`store_account`]): the same table, the provider password inline (the store seals the
//!   whole table, and every node must read it, so a node-local credential file would not do),
//!   checked as `mailgate account add` checks its input; the file is not touched.
//! - Settings from a preset are written as `provider = "…"` (a preset update then reaches the
//!   account); settings found by MX, autoconfig or a guess, or given on the command line, are
//!   written out as `server`/`tls`, so a start-up does not depend on discovery again.
//! - The live test is the gateway's own code: [`crate::imap::upstream::login`] and
//!   [`crate::smtp::submit::Upstream::connect`] on the account as it will be loaded.

mod account;
mod accounts;
mod block;
mod credential;
mod edit;
mod instructions;
mod live;
mod remove;
mod servers;
mod sign_in;
mod steps;
mod store;
mod target;
#[cfg(test)]
mod tests;

pub use accounts::{
    check_account, overview, AccountState, Auth, CheckOutcome, Step, StepFailure, StepKind,
    TokenState,
};
pub use credential::{credential_path, write};
pub use edit::{open_edit_shared, save_stored};
pub use instructions::{client_instructions, generate_password};
pub use live::{live_test, Tested};
pub use remove::{remove, Place, Removed, Tokens, Unreadable};
pub use servers::{
    default_security, host_port, manual, security, AddressError, Manual, ManualError, Which,
};
pub use sign_in::SignIn;
pub use steps::live_steps;
pub use store::store_account;
pub use target::{Target, EXAMPLE_EMAIL, NEW_FILE};

use crate::discover::Discovery;
use crate::secret::Secret;
use std::path::PathBuf;

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
    /// The account to change or remove is not there.
    #[error("{path} has no account {email}")]
    NoAccount {
        /// The file (for the shared store: `store:EMAIL`).
        path: PathBuf,
        /// The address.
        email: String,
    },
    /// The shared store failed.
    #[error("the shared store: {0}")]
    Store(#[from] crate::pgstore::DbError),
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
    /// The credential the account has now, unchanged (its password, or its OAuth settings
    /// and stored tokens): only for an edit ([`Target::open_edit`]), whose live test uses it.
    Keep,
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
    /// The mail client's folder names (`[account.folders] client`), when given.
    pub client: Option<crate::mailbox::Profile>,
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
