//! Changing an account: its `[[account]]` table replaced in the file (every other byte kept),
//! or its row in the shared store; the password kept when none is given
//! ([`super::Credential::Keep`]).

use super::account::kept_lines;
use super::{block, Plan, SetupError, Target};
use crate::pgstore::Shared;
use toml_edit::{DocumentMut, Table};

/// The old account's table, for [`super::Credential::Keep`]: refused for a new account and for
/// one with neither a password nor OAuth settings to keep.
pub(super) fn kept(target: &Target) -> Result<&Table, SetupError> {
    let old = target.old.as_ref().ok_or_else(|| {
        SetupError::Invalid("there is no stored password to keep for a new account".into())
    })?;
    if kept_lines(&old.table, "imap").is_empty() && old.table.get("oauth2").is_none() {
        return Err(SetupError::Invalid(
            "the account has no stored password to keep: give one".into(),
        ));
    }
    Ok(&old.table)
}

/// The file's text with its `index`-th `[[account]]` (header and body) replaced by `account`;
/// the comments above it and every other byte kept. Read again, the file must hold the same
/// accounts in the same order.
pub(super) fn replaced(
    target: &Target,
    index: usize,
    mut account: Table,
) -> Result<String, SetupError> {
    let unusable = |reason: &str| SetupError::Write {
        path: target.path.clone(),
        reason: format!("{reason}; change the account by hand"),
    };
    let (_, body) = block::account_range(&target.text, index)
        .ok_or_else(|| unusable("the account's table was not found in the text"))?;
    // Its comments above stay; the new table's own note would repeat them.
    account.decor_mut().set_prefix("");
    let mut alone = DocumentMut::new();
    let mut accounts = toml_edit::ArrayOfTables::new();
    accounts.push(account);
    alone.insert("account", toml_edit::Item::ArrayOfTables(accounts));
    let mut text = target.text.clone();
    text.replace_range(body, &alone.to_string());
    let doc: DocumentMut = text
        .parse()
        .map_err(|_| unusable("the changed file would not be valid TOML"))?;
    let lower = |d: &DocumentMut| -> Vec<String> {
        block::emails(d)
            .iter()
            .map(|e| e.to_ascii_lowercase())
            .collect()
    };
    if lower(&doc) != lower(&target.doc) {
        return Err(unusable(
            "the changed file would not read as the same accounts",
        ));
    }
    Ok(text)
}

/// [`Target::open_edit`], then — when the file does not have the account itself — its row of
/// the shared store `shared` (the file's `[store]`, opened by the caller).
pub async fn open_edit_shared(
    path: &std::path::Path,
    email: &str,
    shared: Option<&Shared>,
) -> Result<Target, SetupError> {
    let mut target = Target::open_edit(path, email)?;
    if target.is_edit() {
        return Ok(target);
    }
    let no_account = || SetupError::NoAccount {
        path: crate::config::stored_path(email),
        email: email.to_owned(),
    };
    let shared = shared.ok_or_else(no_account)?;
    let key = email.trim().to_ascii_lowercase();
    let (rows, _) = shared.accounts().await?;
    let row = rows
        .iter()
        .find(|r| r.email == key)
        .ok_or_else(no_account)?;
    target.stored(row)?;
    Ok(target)
}

/// Writes the tested account `plan` into the shared store: a new one is added (refused with
/// [`SetupError::Duplicate`] when the address arrived there meanwhile), an edited one
/// ([`Target::open_edit`] + [`Target::stored`]) replaces its row.
pub async fn save_stored(shared: &Shared, target: &Target, plan: &Plan) -> Result<(), SetupError> {
    let account = super::store_account(target, plan)?;
    if target.is_edit() {
        shared.put_accounts(std::slice::from_ref(&account)).await?;
    } else if !shared.add_account(&account).await? {
        return Err(SetupError::Duplicate {
            path: crate::config::stored_path(&plan.email),
            email: plan.email.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "edit_tests.rs"]
mod tests;
