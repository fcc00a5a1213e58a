//! The OAuth tokens on the database: a [`TokenStore`] whose rows are the token files' sealed
//! JSON, one per identity, and whose [`TokenStore::refresh_lock`] is a transaction-scoped
//! advisory lock on its own connection, so at most one node refreshes an identity at a time
//! and the others, waiting on it, read the new tokens afterwards.
//!
//! The trait is synchronous (the cache runs it on the blocking pool, the CLI from its own
//! thread): each call is a task on the store's runtime, waited for on a std channel, which
//! works from any thread that is not one of that runtime's own workers.

use super::{bounded, reason, DbError, Shared, LOCK_CLASS};
use crate::oauth::store::{wire, RefreshLock, StoreError, TokenStore, Tokens};
use crate::sealed;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_postgres::Client;

const MAGIC: &[u8; 8] = b"MGTOKDB1";
/// The advisory lock's second key is `hashtext` of this and the identity.
const LOCK_PREFIX: &str = "refresh:";
/// How long a node waits for another node's refresh of the same identity (a token endpoint
/// request, bounded by its own time-outs) before its login gets a temporary failure.
const LOCK_WAIT_SECS: u64 = 30;

/// The token store on the shared store.
pub struct PgTokens {
    shared: Arc<Shared>,
}

impl PgTokens {
    /// The token store of `shared`.
    pub fn shared(shared: Arc<Shared>) -> Arc<dyn TokenStore> {
        Arc::new(PgTokens { shared })
    }

    /// Runs `f` on the store's runtime and waits for it on this thread.
    fn block<T: Send + 'static>(
        &self,
        f: impl FnOnce(Arc<Shared>) -> Box<dyn Future<Output = Result<T, DbError>> + Send + Unpin>,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let fut = f(self.shared.clone());
        self.shared.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        match rx.recv() {
            Ok(result) => result.map_err(unavailable),
            Err(_) => Err(StoreError::Unavailable {
                reason: "the shared store's task ended (shutting down)".into(),
            }),
        }
    }
}

/// Every failure of the database is "unavailable" for a token: data problems (a row that does
/// not open) are [`StoreError::Corrupt`], made where they are found.
fn unavailable(e: DbError) -> StoreError {
    StoreError::Unavailable {
        reason: e.to_string(),
    }
}

/// The identity as the rows key it.
fn key(account: &str) -> String {
    account.trim().to_ascii_lowercase()
}

/// A query of the shared connection, bounded, as a boxed future for [`PgTokens::block`].
macro_rules! on_shared {
    ($shared:ident, $what:expr, |$client:ident| $body:expr) => {
        Box::new(Box::pin(async move {
            bounded($what, async {
                let $client = $shared.client().await?;
                $body.await.map_err(|e| DbError::query($what, &e))
            })
            .await
        }))
    };
}

impl TokenStore for PgTokens {
    fn load(&self, account: &str) -> Result<Option<Tokens>, StoreError> {
        let id = key(account);
        let row = self.block(move |s| {
            on_shared!(s, "reading tokens", |c| c.query_opt(
                "SELECT sealed FROM mailgate_tokens WHERE identity = $1",
                &[&id]
            ))
        })?;
        let Some(row) = row else { return Ok(None) };
        let bytes: Vec<u8> = row.get(0);
        let corrupt = |reason| StoreError::Corrupt {
            path: PathBuf::from(format!("postgres:mailgate_tokens/{}", key(account))),
            key: PathBuf::from(&self.shared.settings.key_source),
            account: account.to_owned(),
            reason,
        };
        let plain = sealed::unseal(self.shared.key(), MAGIC, &key(account), &bytes)
            .map_err(|e| corrupt(e.reason()))?;
        wire::from_json(&plain)
            .map(Some)
            .ok_or_else(|| corrupt("unreadable content"))
    }

    fn save(&self, account: &str, tokens: &Tokens) -> Result<(), StoreError> {
        let id = key(account);
        let plain = wire::to_json(tokens);
        let bytes = sealed::seal(self.shared.key(), MAGIC, &id, &plain).ok_or_else(|| {
            StoreError::Unavailable {
                reason: "sealing the tokens failed".into(),
            }
        })?;
        self.block(move |s| {
            on_shared!(s, "writing tokens", |c| c.execute(
                "INSERT INTO mailgate_tokens (identity, sealed) VALUES ($1, $2)
                 ON CONFLICT (identity) DO UPDATE SET sealed = EXCLUDED.sealed, updated_at = now()",
                &[&id, &bytes]
            ))
        })
        .map(|_| ())
    }

    fn remove(&self, account: &str) -> Result<(), StoreError> {
        let id = key(account);
        self.block(move |s| {
            on_shared!(s, "removing tokens", |c| c
                .execute("DELETE FROM mailgate_tokens WHERE identity = $1", &[&id]))
        })
        .map(|_| ())
    }

    fn unsaved(&self, account: &str) -> Option<String> {
        let id = key(account);
        let row = self.block(move |s| {
            on_shared!(s, "reading the unsaved note", |c| c.query_opt(
                "SELECT unsaved FROM mailgate_tokens WHERE identity = $1",
                &[&id]
            ))
        });
        row.ok().flatten().and_then(|r| r.get(0))
    }

    fn note_unsaved(&self, account: &str, note: &str) {
        self.set_note(account, Some(note.to_owned()));
    }

    fn clear_unsaved(&self, account: &str) {
        self.set_note(account, None);
    }

    fn refresh_lock(&self, account: &str) -> Result<Option<RefreshLock>, StoreError> {
        let id = format!("{LOCK_PREFIX}{}", key(account));
        let client = self.block(move |s| Box::new(Box::pin(async move { lock(&s, &id).await })))?;
        Ok(Some(RefreshLock::new(Held {
            client: Some(client),
            handle: self.shared.handle.clone(),
        })))
    }
}

impl PgTokens {
    /// Best effort, as the file store's note: the log says it too.
    fn set_note(&self, account: &str, note: Option<String>) {
        let id = key(account);
        let _ = self.block(move |s| {
            on_shared!(s, "writing the unsaved note", |c| c.execute(
                "UPDATE mailgate_tokens SET unsaved = $2 WHERE identity = $1",
                &[&id, &note]
            ))
        });
    }
}

/// A connection of its own with a transaction holding the identity's advisory lock (waiting
/// for it at most [`LOCK_WAIT_SECS`]).
async fn lock(shared: &Shared, id: &str) -> Result<Client, DbError> {
    let client = shared.connect().await?;
    let what = "waiting for another node's refresh";
    let wait = async {
        client
            .batch_execute(&format!(
                "BEGIN; SET LOCAL lock_timeout = '{LOCK_WAIT_SECS}s'"
            ))
            .await?;
        client
            .execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&LOCK_CLASS, &id],
            )
            .await
    };
    let waited =
        tokio::time::timeout(std::time::Duration::from_secs(LOCK_WAIT_SECS + 5), wait).await;
    match waited {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(e)) => Err(DbError::Query {
            what,
            reason: reason(&e),
            lost: true,
        }),
        Err(_) => Err(DbError::Timeout { what }),
    }
}

/// The held lock: ending the transaction releases it (so does the connection's end, should
/// this process die).
struct Held {
    client: Option<Client>,
    handle: tokio::runtime::Handle,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            self.handle.spawn(async move {
                let _ = client.batch_execute("COMMIT").await;
            });
        }
    }
}
