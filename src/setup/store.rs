//! The new account for the shared store (`[store]`): the same `[[account]]` table as for the
//! file, with the provider password inline — the store seals the whole table, so there is no
//! credential file for the other nodes to lack — checked as `mailgate account add` checks
//! its input ([`crate::config::account_tables`]).

use super::account::{accounts_doc, CredentialLine};
use super::{Credential, Plan, SetupError, Target};
use crate::config::{self, StoredAccount};
use crate::secret::Secret;
use std::path::Path;
use toml_edit::DocumentMut;
use zeroize::Zeroizing;

/// The account `plan` as the store keeps it, validated with the node's `[server]` (relative
/// paths against the config file's folder, as every node reads them).
pub fn store_account(target: &Target, plan: &Plan) -> Result<StoredAccount, SetupError> {
    let none = Secret::default();
    let text = Zeroizing::new(
        accounts_doc(
            DocumentMut::new(),
            target.account(plan, inline_credential(target, plan, &none)?),
        )
        .to_string(),
    );
    let server = target.server()?;
    let base = target.path.parent().unwrap_or(Path::new("."));
    // Errors name the account as the store's rows are named, not the config file.
    let path = config::stored_path(&plan.email);
    let mut tables = config::account_tables(&text, &path, &server, base)
        .map_err(|e| SetupError::Invalid(e.to_string()))?;
    match (tables.pop(), tables.is_empty()) {
        (Some(t), true) if t.email.eq_ignore_ascii_case(&plan.email) => Ok(t),
        _ => Err(SetupError::Invalid(
            "the account table did not read back as one account of this address".into(),
        )),
    }
}

/// The upstream password inline, the changed account's own password lines (kept), or nothing
/// (OAuth: the token is the credential); `none` is the empty secret to point at.
pub(super) fn inline_credential<'a>(
    target: &'a Target,
    plan: &'a Plan,
    none: &'a Secret,
) -> Result<CredentialLine<'a>, SetupError> {
    Ok(match &plan.credential {
        Credential::Password(p) => CredentialLine::Inline(p),
        Credential::OAuth { .. } => CredentialLine::Inline(none),
        Credential::Keep => CredentialLine::Kept(super::edit::kept(target)?),
    })
}
