//! The schema, made and upgraded by mailgate itself: `mailgate_schema` holds one row with the
//! schema's version and the key check. Each migration runs once, in order, in the transaction
//! that records the new version, under an advisory lock so that nodes starting together
//! migrate once. A database whose version is newer than this build knows is refused: an older
//! mailgate must not write rows a newer schema reads differently.
//!
//! The key check is a value sealed with the first node's key: a node whose key does not open
//! it refuses to start, instead of failing every account and token one by one.

use super::{DbError, LOCK_CLASS};
use crate::config::StoreConfig;
use crate::sealed;
use tokio_postgres::Client;

/// Each migration's statements; the schema's version is the number of them applied.
const MIGRATIONS: &[&str] = &[
    // 1: accounts (the table text, sealed), tokens (sealed), and the notification every change
    // of the accounts sends, whoever makes it (mailgate or plain SQL).
    r#"
    CREATE TABLE mailgate_accounts (
        email text PRIMARY KEY CHECK (email = lower(email)),
        sealed bytea NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE mailgate_tokens (
        identity text PRIMARY KEY CHECK (identity = lower(identity)),
        sealed bytea NOT NULL,
        unsaved text,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE FUNCTION mailgate_accounts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('mailgate_accounts', '');
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER mailgate_accounts_notify
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mailgate_accounts
        FOR EACH STATEMENT EXECUTE FUNCTION mailgate_accounts_changed();
    "#,
];

/// The version this build makes.
pub const LATEST: i32 = MIGRATIONS.len() as i32;

/// What the key check seals.
const KEY_CHECK: &[u8] = b"mailgate shared store key";
const KEY_MAGIC: &[u8; 8] = b"MGKEYCK1";

/// Brings the schema to [`LATEST`] (refusing a newer one) and checks the key.
pub async fn migrate(client: &Client, settings: &StoreConfig) -> Result<(), DbError> {
    let q = |what| move |e: tokio_postgres::Error| DbError::query(what, &e);
    client
        .batch_execute("BEGIN")
        .await
        .map_err(q("starting the migration"))?;
    let result = steps(client, settings).await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = client
        .batch_execute(end)
        .await
        .map_err(q("ending the migration"));
    result.and(ended)
}

async fn steps(client: &Client, settings: &StoreConfig) -> Result<(), DbError> {
    let q = |what| move |e: tokio_postgres::Error| DbError::query(what, &e);
    // "already exists, skipping" is no news.
    client
        .batch_execute("SET LOCAL client_min_messages = warning")
        .await
        .map_err(q("setting up the migration"))?;
    client
        .execute("SELECT pg_advisory_xact_lock($1, 0)", &[&LOCK_CLASS])
        .await
        .map_err(q("locking the schema"))?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS mailgate_schema (
                one boolean PRIMARY KEY DEFAULT true CHECK (one),
                version integer NOT NULL,
                key_check bytea
            );
            INSERT INTO mailgate_schema (version) VALUES (0) ON CONFLICT DO NOTHING;",
        )
        .await
        .map_err(q("creating mailgate_schema"))?;
    let row = client
        .query_one("SELECT version, key_check FROM mailgate_schema", &[])
        .await
        .map_err(q("reading the schema version"))?;
    let found: i32 = row.get(0);
    if found > LATEST {
        return Err(DbError::NewerSchema {
            found,
            known: LATEST,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        client
            .batch_execute(sql)
            .await
            .map_err(q("migrating the schema"))?;
        tracing::info!(version = i + 1, "shared store schema migrated");
    }
    if found < LATEST {
        client
            .execute("UPDATE mailgate_schema SET version = $1", &[&LATEST])
            .await
            .map_err(q("recording the schema version"))?;
    }
    let key = settings.key.bytes();
    match row.get::<_, Option<Vec<u8>>>(1) {
        Some(check) => match sealed::unseal(key, KEY_MAGIC, "", &check) {
            Ok(plain) if plain.as_slice() == KEY_CHECK => Ok(()),
            _ => Err(DbError::WrongKey {
                key_source: settings.key_source.clone(),
            }),
        },
        None => {
            let check = sealed::seal(key, KEY_MAGIC, "", KEY_CHECK).unwrap_or_default();
            client
                .execute("UPDATE mailgate_schema SET key_check = $1", &[&check])
                .await
                .map_err(q("recording the key check"))?;
            Ok(())
        }
    }
}
