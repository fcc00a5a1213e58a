//! The shared store on PostgreSQL (`[store]`): the accounts and the OAuth tokens of several
//! mailgate nodes in one database, every secret sealed (see [`crate::sealed`]) with the key
//! each node has from a file or its environment, so the database never holds one in clear.
//!
//! By file: `migrate.rs` the schema, created and upgraded by mailgate itself (versioned,
//! refusing a newer one) and the key check; `accounts.rs` the accounts (each `[[account]]`
//! table's text, sealed whole); `tokens.rs` the [`crate::oauth::store::TokenStore`] on the
//! database and the cross-node refresh lock; `listen.rs` LISTEN/NOTIFY, which tells the server
//! to reload when the accounts change; `tls.rs` TLS to the database on our rustls.
//!
//! One [`Shared`] per process and connection string ([`Shared::open`]), holding one client
//! connection that is made again after it breaks; each call is bounded by [`TIMEOUT`]. A call
//! that cannot reach the database fails with a kind that says so ([`DbError::is_unavailable`]),
//! never with something a login could take for a wrong password.

mod accounts;
mod listen;
mod migrate;
mod tls;
mod tokens;

pub use accounts::AccountRow;
pub use listen::{changes, listen};
pub use tokens::PgTokens;

use crate::config::{Config, StoreConfig, StoredAccount};
use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio_postgres::Client;

/// How long one call to the database may take (connecting included).
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The first key of every advisory lock mailgate takes (the second is per purpose), so that
/// its locks never meet another application's in the same database.
const LOCK_CLASS: i32 = 0x6d67_7431;

/// The shared store cannot be used. Never carries a secret or the connection string.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The connection string does not parse.
    #[error("[store] postgres: the connection string cannot be used: {reason}")]
    Settings {
        /// What is wrong.
        reason: String,
    },
    /// The database cannot be reached or refused the connection.
    #[error("cannot connect to the shared store (PostgreSQL at {at}): {reason}")]
    Connect {
        /// Where: host, port and database (never the user or password).
        at: String,
        /// Why.
        reason: String,
    },
    /// The database did not answer in time.
    #[error("the shared store (PostgreSQL) did not answer within {} s ({what})", TIMEOUT.as_secs())]
    Timeout {
        /// What was asked.
        what: &'static str,
    },
    /// A statement failed (the connection broke, or the database refused it).
    #[error("the shared store (PostgreSQL) failed {what}: {reason}")]
    Query {
        /// What was asked.
        what: &'static str,
        /// The database's words.
        reason: String,
        /// The connection was lost (as opposed to a refused statement).
        lost: bool,
    },
    /// The schema is newer than this mailgate.
    #[error("the shared store's schema is version {found}, newer than this mailgate knows ({known}); upgrade mailgate on this node (a schema is never downgraded)")]
    NewerSchema {
        /// The database's version.
        found: i32,
        /// The newest this build knows.
        known: i32,
    },
    /// This node's key is not the one the store's secrets are sealed with.
    #[error("the shared store's secrets were sealed with another key than this node's ({key_source}); every node needs the same key")]
    WrongKey {
        /// Where this node's key came from.
        key_source: String,
    },
}

impl DbError {
    /// Whether the database could not be reached (waiting may help), as opposed to a setting
    /// or data problem an operator must fix.
    pub fn is_unavailable(&self) -> bool {
        match self {
            DbError::Connect { .. } | DbError::Timeout { .. } => true,
            DbError::Query { lost, .. } => *lost,
            DbError::Settings { .. } | DbError::NewerSchema { .. } | DbError::WrongKey { .. } => {
                false
            }
        }
    }

    fn query(what: &'static str, e: &tokio_postgres::Error) -> DbError {
        DbError::Query {
            what,
            reason: reason(e),
            lost: e.is_closed() || e.as_db_error().is_none(),
        }
    }
}

/// The database's own words for `e` (its message, or the I/O error), never the statement.
fn reason(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}

/// Where `pg` connects, for messages: hosts and ports, and the database; nothing else of the
/// connection string (it may hold the password).
fn place(pg: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let ports = pg.get_ports();
    let hosts: Vec<String> = pg
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(dir) => dir.display().to_string(),
            };
            // One port for all hosts, or one each; 5432 when none is given.
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let hosts = if hosts.is_empty() {
        "the default host".to_owned()
    } else {
        hosts.join(",")
    };
    match pg.get_dbname() {
        Some(db) => format!("{hosts}, database {db}"),
        None => hosts,
    }
}

/// `f` within [`TIMEOUT`].
async fn bounded<T>(
    what: &'static str,
    f: impl Future<Output = Result<T, DbError>>,
) -> Result<T, DbError> {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .unwrap_or(Err(DbError::Timeout { what }))
}

/// The shared store of one connection string, open in this process.
pub struct Shared {
    settings: StoreConfig,
    pg: tokio_postgres::Config,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    /// The runtime the connections run on (the sync token store calls go through it).
    handle: tokio::runtime::Handle,
}

impl Shared {
    /// The store of `settings`, opened on first use in this process: connected, its schema
    /// created or upgraded, and this node's key checked against it. A failed open is not kept.
    pub async fn open(settings: &StoreConfig) -> Result<Arc<Shared>, DbError> {
        static OPENED: OnceLock<Mutex<HashMap<String, Arc<Shared>>>> = OnceLock::new();
        let opened = || {
            OPENED
                .get_or_init(Default::default)
                .lock()
                .unwrap_or_else(|e| e.into_inner())
        };
        let id = settings.postgres.expose().to_owned();
        if let Some(s) = opened().get(&id) {
            return Ok(s.clone());
        }
        let mut pg = tokio_postgres::Config::from_str(settings.postgres.expose())
            .map_err(|e| DbError::Settings { reason: reason(&e) })?;
        pg.application_name("mailgate").connect_timeout(TIMEOUT);
        let shared = Arc::new(Shared {
            settings: settings.clone(),
            pg,
            client: tokio::sync::Mutex::new(None),
            handle: tokio::runtime::Handle::current(),
        });
        let client = shared.client().await?;
        bounded(
            "migrating the schema",
            migrate::migrate(&client, &shared.settings),
        )
        .await?;
        Ok(opened().entry(id).or_insert(shared).clone())
    }

    /// A new connection of its own (its task on this runtime).
    async fn connect(&self) -> Result<Client, DbError> {
        let tls = tls::MakeRustls(self.settings.tls.clone());
        let connect = async {
            let (client, connection) =
                self.pg.connect(tls).await.map_err(|e| DbError::Connect {
                    at: place(&self.pg),
                    reason: reason(&e),
                })?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %reason(&e), "shared store connection ended");
                }
            });
            Ok(client)
        };
        bounded("connecting", connect).await
    }

    /// The shared connection, made again if it broke.
    async fn client(&self) -> Result<Arc<Client>, DbError> {
        let mut held = self.client.lock().await;
        if let Some(c) = held.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let c = Arc::new(self.connect().await?);
        *held = Some(c.clone());
        Ok(c)
    }

    /// The key that seals every secret.
    fn key(&self) -> &[u8; 32] {
        self.settings.key.bytes()
    }
}

/// The store accounts `config` asks for: none without `[store]`; with one, the store opened
/// (and made this process's token store for `config`'s `state_dir`), its accounts read. Rows
/// that do not open are returned apart, with the reason, to be logged.
pub async fn stored_accounts(
    config: &Config,
) -> Result<(Vec<StoredAccount>, Vec<(String, String)>), DbError> {
    let Some(settings) = &config.store else {
        return Ok((Vec::new(), Vec::new()));
    };
    let shared = Shared::open(settings).await?;
    crate::oauth::store::install(&config.server.state_dir, PgTokens::shared(shared.clone()));
    shared.accounts().await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages name the hosts, ports and database, never the user or password.
    #[test]
    fn place_names_the_database_not_the_credentials() {
        let at = |s: &str| place(&tokio_postgres::Config::from_str(s).unwrap());
        assert_eq!(
            at("postgres://mg:Pw-secret@db.example.no:6432/mailgate?sslmode=require"),
            "db.example.no:6432, database mailgate"
        );
        assert_eq!(
            at("host=a,b port=5433 user=mg password=Pw-secret"),
            "a:5433,b:5433"
        );
        assert_eq!(
            at("host=/run/postgresql dbname=m"),
            "/run/postgresql:5432, database m"
        );
        assert!(!at("postgres://mg:Pw-secret@h/d").contains("Pw-secret"));
    }
}
