//! Loading a config whose accounts may need discovery: parse, discover the servers of the
//! accounts that have none in the file and no preset, parse again with what was found. A step
//! of its own that uses config and discovery, so that parsing a config never touches the
//! network.

use crate::config::{self, Config, ConfigError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a config could not be loaded with discovery.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The file itself cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An account without servers in the file whose servers could not be discovered.
    #[error("{path}: account {email}: cannot discover its servers: {reason}\n  set them in the file: [account.imap] server = \"host:port\" and tls (and [account.smtp]), or provider = \"…\" (one of {known})")]
    Discovery {
        /// The config file.
        path: PathBuf,
        /// The account.
        email: String,
        /// What discovery tried.
        reason: String,
        /// The preset names.
        known: String,
    },
    /// The shared store (`[store]`) cannot be used; at reload the old accounts stay.
    #[error(transparent)]
    Store(#[from] crate::pgstore::DbError),
}

/// Reads the file and discovers the servers of accounts that need the network (`mailgate
/// run` at start-up and on SIGHUP). A failure names the account and what to set, and the
/// whole load fails: like nginx, which refuses a configuration whose upstream host does not
/// resolve, a gateway that silently dropped an account would leave its users with
/// "authentication failed" and no hint; at reload the old configuration stays.
pub async fn resolve(path: &Path) -> Result<Config, ResolveError> {
    let text = config::read(path)?;
    let (first, stored) = with_store(&text, path).await?;
    if first.undiscovered.is_empty() {
        return Ok(first);
    }
    let opts = super::Options {
        resolver: crate::net::dns::Resolver::new(first.server.resolver),
        timeout: first.server.connect_timeout.min(Duration::from_secs(10)),
        ca_file: None,
        network: true,
    };
    let mut found = HashMap::new();
    for email in &first.undiscovered {
        let d = super::discover(email, &opts)
            .await
            .map_err(|e| ResolveError::Discovery {
                path: path.to_owned(),
                email: email.clone(),
                reason: e.to_string(),
                known: crate::provider::known_ids(),
            })?;
        found.insert(email.to_ascii_lowercase(), d);
    }
    let (stored, unreadable) = stored;
    let mut config = Config::parse_stored(&text, path, &found, &stored)?;
    config.store_skipped.extend(unreadable);
    log_skipped(&config);
    Ok(config)
}

/// Reads the file and the shared store's accounts, without discovery (the commands that only
/// read accounts: `oauth`, `check`, `account`). Without `[store]`, [`Config::load`].
pub async fn load(path: &Path) -> Result<Config, ResolveError> {
    let text = config::read(path)?;
    Ok(with_store(&text, path).await?.0)
}

type Stored = (Vec<config::StoredAccount>, Vec<(String, String)>);

/// The config of `text` with the store's accounts (when it names a store), and those accounts
/// for the pass after discovery.
async fn with_store(text: &str, path: &Path) -> Result<(Config, Stored), ResolveError> {
    let first = Config::parse(text, path)?;
    if first.store.is_none() {
        return Ok((first, (Vec::new(), Vec::new())));
    }
    let (stored, unreadable) = crate::pgstore::stored_accounts(&first).await?;
    let mut config = Config::parse_stored(text, path, &HashMap::new(), &stored)?;
    config.store_skipped.extend(unreadable.iter().cloned());
    if config.undiscovered.is_empty() {
        log_skipped(&config);
    }
    Ok((config, (stored, unreadable)))
}

/// Says which of the store's accounts are left out, and why.
fn log_skipped(config: &Config) {
    for (email, why) in &config.store_skipped {
        tracing::warn!(account = %email, "shared store account not used: {why}");
    }
}
