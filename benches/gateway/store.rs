//! `MAILGATE_BENCH_STORE=postgres`: the accounts in the shared store on a real PostgreSQL
//! (`tests/support/postgres.rs`) instead of the config file, added with `mailgate account add`;
//! the config file keeps `[server]` and names the store. Everything else is the same run.

use std::path::PathBuf;

use super::support::config::GateConfig;
use super::support::mailgate::{run, Mailgate};
use super::support::postgres::{key_file, store_toml, Postgres};
use tempfile::TempDir;

pub struct Store {
    pg: Postgres,
    _keys: TempDir,
    key: PathBuf,
}

/// Whether the run asks for the PostgreSQL store.
pub fn wanted() -> bool {
    std::env::var("MAILGATE_BENCH_STORE").is_ok_and(|v| v == "postgres")
}

impl Store {
    /// A PostgreSQL holding `config`'s accounts.
    pub fn start(config: &GateConfig) -> Store {
        let pg = Postgres::start();
        let keys = TempDir::new().expect("key dir");
        let key = key_file(keys.path(), 7);
        let store = Store {
            pg,
            _keys: keys,
            key,
        };
        let cli = store.toml(config);
        let path = store._keys.path().join("cli.toml");
        std::fs::write(&path, cli).expect("cli config");
        let tables: String = config.accounts.iter().map(|a| a.to_toml()).collect();
        let path = path.display().to_string();
        let out = run(
            &["account", "add", "-", "--config", &path],
            Some(tables.as_bytes()),
        );
        assert!(
            out.status.success(),
            "mailgate account add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        store
    }

    /// `config` without its accounts, naming the store instead.
    pub fn toml(&self, config: &GateConfig) -> String {
        let mut file = config.clone();
        file.accounts.clear();
        format!("{}{}", file.to_toml(), store_toml(&self.pg, &self.key))
    }

    /// mailgate on `config`'s server settings and the store's accounts.
    pub fn start_gate(&self, config: &GateConfig, env: &[(&str, &str)]) -> Mailgate {
        Mailgate::start_with_env(&self.toml(config), env)
    }
}
