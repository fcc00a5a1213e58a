//! `mailgate account add|list|remove`: the accounts of the shared store (`[store]`). Each
//! change notifies every running node, which reloads within a second; sessions already
//! running keep the account they started with.

mod remove;

use anyhow::{bail, Context, Result};
use mailgate::config::{self, Config};
use mailgate::pgstore::Shared;
use std::io::Read;
use std::path::{Path, PathBuf};

// (No doc comment: clap would take it into the help text.)
#[derive(clap::Subcommand)]
pub enum AccountCommand {
    /// Add the `[[account]]` tables of FILE (`-`: standard input) to the shared store, or
    /// replace the stored accounts of the same addresses; checked as the config file's are.
    Add {
        /// A TOML file of `[[account]]` tables.
        file: PathBuf,
    },
    /// Print the shared store's accounts, with when each was last written.
    List,
    /// Remove an account — the config file's `[[account]]` (and its password file), or the
    /// shared store's — and the OAuth tokens of the user it signed in as when no remaining
    /// account (the store's or this node's file's) signs in as that user.
    Remove {
        /// Its email address.
        email: String,
    },
}

/// Runs `command` on the store that `config` names.
pub fn run(command: AccountCommand, config: &Path) -> Result<()> {
    mailgate::net::tls::install_crypto_provider();
    let cfg = Config::load(config)?;
    if let (AccountCommand::Remove { email }, None) = (&command, &cfg.store) {
        // A file's own account: no store to open.
        return super::runtime()?.block_on(remove::remove(None, config, email));
    }
    let Some(settings) = cfg.store.clone() else {
        bail!(
            "{} has no [store]: its accounts are the [[account]] tables in the file (edit it, or `mailgate setup`)",
            config.display()
        );
    };
    super::runtime()?.block_on(async {
        let shared = Shared::open(&settings).await?;
        match command {
            AccountCommand::Add { file } => add(&shared, &cfg, config, &file).await,
            AccountCommand::List => list(&shared, &cfg).await,
            AccountCommand::Remove { email } => remove::remove(Some(&shared), config, &email).await,
        }
    })
}

async fn add(shared: &Shared, cfg: &Config, config: &Path, file: &Path) -> Result<()> {
    let text = if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the accounts from standard input")?;
        text
    } else {
        config::read(file)?
    };
    let base = config.parent().unwrap_or(Path::new("."));
    let tables = config::account_tables(&text, file, &cfg.server, base)?;
    for t in &tables {
        if cfg.account(&t.email).is_some() {
            bail!(
                "{} has an [[account]] {} too, and the file's account wins over the store's: remove it from the file first",
                config.display(),
                t.email
            );
        }
    }
    shared.put_accounts(&tables).await?;
    for t in &tables {
        println!("Stored {} in the shared store.", t.email);
    }
    Ok(())
}

async fn list(shared: &Shared, cfg: &Config) -> Result<()> {
    let rows = shared.account_rows().await?;
    if rows.is_empty() {
        println!("The shared store has no accounts.");
    }
    for row in rows {
        let note = if cfg.account(&row.email).is_some() {
            "  (not used: the config file has this account too)"
        } else {
            ""
        };
        println!("{}  written {}{note}", row.email, row.updated);
    }
    Ok(())
}
