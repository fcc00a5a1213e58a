//! The accounts: one row per account, its `[[account]]` table's text sealed whole under its
//! lower-cased address (the address stays readable, for `mailgate account list` and plain SQL
//! such as a `DELETE`). Sealing the whole table is the simplest sound choice: every secret an
//! account table can hold (upstream password, client secret) is covered without a list of
//! fields to keep in step with the schema; the local password hash is sealed too.

use super::{bounded, DbError, Shared};
use crate::config::StoredAccount;
use crate::sealed;
use crate::secret::Secret;

const MAGIC: &[u8; 8] = b"MGACCT01";

/// Whether a write replaces a stored account of the same address.
#[derive(Clone, Copy)]
enum Write {
    /// Added or replaced (`mailgate account add`).
    Replace,
    /// Added only when the address is new (`mailgate setup`).
    AddOnly,
}

/// One account as `mailgate account list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    /// The address, lower-cased.
    pub email: String,
    /// When it was last written, as the database prints it (UTC).
    pub updated: String,
}

impl Shared {
    /// Every account whose row opens, and the addresses of those that do not, with the reason.
    pub async fn accounts(&self) -> Result<(Vec<StoredAccount>, Vec<(String, String)>), DbError> {
        let rows = bounded("reading the accounts", async {
            let client = self.client().await?;
            client
                .query(
                    "SELECT email, sealed FROM mailgate_accounts ORDER BY email",
                    &[],
                )
                .await
                .map_err(|e| DbError::query("reading the accounts", &e))
        })
        .await?;
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for row in rows {
            let email: String = row.get(0);
            let bytes: Vec<u8> = row.get(1);
            let opened = sealed::unseal(self.key(), MAGIC, &email, &bytes)
                .map_err(|e| e.to_string())
                .and_then(|plain| {
                    String::from_utf8(plain.to_vec()).map_err(|_| "not UTF-8 text".to_owned())
                });
            match opened {
                Ok(text) => good.push(StoredAccount {
                    email,
                    text: Secret::new(text),
                }),
                Err(why) => bad.push((email, format!("the stored account does not open ({why}): damaged, or sealed with another key"))),
            }
        }
        Ok((good, bad))
    }

    /// Adds the accounts or replaces them, all in one statement (one notification).
    pub async fn put_accounts(&self, accounts: &[StoredAccount]) -> Result<(), DbError> {
        self.write_accounts(accounts, Write::Replace)
            .await
            .map(|_| ())
    }

    /// Adds the account unless the store has one of its address (`mailgate setup`, which adds
    /// and never replaces); whether it was added. One statement, so two set-ups of one
    /// address at once cannot both succeed.
    pub async fn add_account(&self, account: &StoredAccount) -> Result<bool, DbError> {
        self.write_accounts(std::slice::from_ref(account), Write::AddOnly)
            .await
            .map(|n| n > 0)
    }

    /// Writes the accounts sealed in one statement; how many rows were written.
    async fn write_accounts(&self, accounts: &[StoredAccount], how: Write) -> Result<u64, DbError> {
        let emails: Vec<String> = accounts
            .iter()
            .map(|a| a.email.to_ascii_lowercase())
            .collect();
        let sealed: Vec<Vec<u8>> = accounts
            .iter()
            .zip(&emails)
            .map(|(a, email)| {
                sealed::seal(self.key(), MAGIC, email, a.text.expose().as_bytes())
                    .unwrap_or_default()
            })
            .collect();
        let statement = match how {
            Write::Replace => {
                "INSERT INTO mailgate_accounts (email, sealed)
                 SELECT * FROM unnest($1::text[], $2::bytea[])
                 ON CONFLICT (email) DO UPDATE SET sealed = EXCLUDED.sealed, updated_at = now()"
            }
            Write::AddOnly => {
                "INSERT INTO mailgate_accounts (email, sealed)
                 SELECT * FROM unnest($1::text[], $2::bytea[])
                 ON CONFLICT (email) DO NOTHING"
            }
        };
        bounded("writing accounts", async {
            let client = self.client().await?;
            client
                .execute(statement, &[&emails, &sealed])
                .await
                .map_err(|e| DbError::query("writing accounts", &e))
        })
        .await
    }

    /// Removes the account; whether there was one.
    pub async fn remove_account(&self, email: &str) -> Result<bool, DbError> {
        let email = email.trim().to_ascii_lowercase();
        bounded("removing an account", async {
            let client = self.client().await?;
            client
                .execute("DELETE FROM mailgate_accounts WHERE email = $1", &[&email])
                .await
                .map_err(|e| DbError::query("removing an account", &e))
        })
        .await
        .map(|n| n > 0)
    }

    /// The accounts' addresses and when each was written.
    pub async fn account_rows(&self) -> Result<Vec<AccountRow>, DbError> {
        bounded("listing the accounts", async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT email, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
                     FROM mailgate_accounts ORDER BY email",
                    &[],
                )
                .await
                .map_err(|e| DbError::query("listing the accounts", &e))?;
            Ok(rows
                .iter()
                .map(|r| AccountRow {
                    email: r.get(0),
                    updated: r.get(1),
                })
                .collect())
        })
        .await
    }
}
