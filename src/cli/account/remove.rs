//! `mailgate account remove EMAIL`: the stored account, then the OAuth tokens of the user it
//! signed in as, unless another account still signs in as that user (a shared mailbox's
//! `sign_in_as`, or the user's own account). Tokens are only removed when that is certain on
//! this node: an account that does not load here could be one of their users, so they stay.

use anyhow::{bail, Result};
use mailgate::config::{self, Config, StoredAccount};
use mailgate::pgstore::{PgTokens, Shared};
use std::path::Path;
use std::sync::Arc;

/// Removes `email` from `shared` and says what became of its tokens; `cfg` is the config
/// file alone (its accounts use the same tokens), `base` its folder.
pub(super) async fn remove(
    shared: &Arc<Shared>,
    cfg: &Config,
    base: &Path,
    email: &str,
) -> Result<()> {
    let key = email.trim().to_ascii_lowercase();
    let (stored, unopened) = shared.accounts().await?;
    let removed = stored.iter().find(|s| s.email == key);
    let identity = removed.map(|s| signs_in_as(s, cfg, base));
    if !shared.remove_account(email).await? {
        bail!("the shared store has no account {email}");
    }
    println!("Removed {email} from the shared store.");
    let identity = match identity {
        Some(Ok(Some(id))) => id,
        // A password account: no tokens.
        Some(Ok(None)) => return Ok(()),
        Some(Err(why)) => {
            println!("Its OAuth tokens, if it had any, are kept: the stored account {why}.");
            return Ok(());
        }
        None => {
            println!("Its OAuth tokens, if it had any, are kept: the stored account did not open with this node's key.");
            return Ok(());
        }
    };
    // The store's other accounts, as read before the removal.
    let others = stored.iter().filter(|s| s.email != key);
    let unopened = unopened.into_iter().filter(|(e, _)| *e != key);
    let (users, unknown) = users_of(&identity, others, unopened, cfg, base);
    if !users.is_empty() {
        println!(
            "Kept the OAuth tokens of {identity}: {} still sign{} in as {identity}.",
            users.join(", "),
            if users.len() == 1 { "s" } else { "" }
        );
    } else if !unknown.is_empty() {
        println!(
            "Kept the OAuth tokens of {identity}: {} cannot be read on this node, so whether they sign in as {identity} is unknown (remove the tokens with `DELETE FROM mailgate_tokens WHERE identity = '{}'` once none does).",
            unknown.join(", "),
            identity.to_ascii_lowercase()
        );
    } else {
        let tokens = PgTokens::shared(shared.clone());
        let id = identity.clone();
        let had = tokio::task::spawn_blocking(move || {
            let had = tokens.load(&id)?.is_some();
            tokens.remove(&id).map(|()| had)
        })
        .await??;
        if had {
            println!(
                "Removed the OAuth tokens of {identity}: no other account signs in as {identity}."
            );
        } else {
            println!("{identity} had no OAuth tokens stored.");
        }
    }
    Ok(())
}

/// Whose tokens the stored account uses (`None`: it has no OAuth 2.0 settings), or why that
/// cannot be told here.
fn signs_in_as(s: &StoredAccount, cfg: &Config, base: &Path) -> Result<Option<String>, String> {
    match config::stored_account(s, &cfg.server, base) {
        Ok(Some(a)) => Ok(a.imap.credential.oauth().map(|o| o.identity.clone())),
        Ok(None) => Err("needs discovery of its servers and was not read".into()),
        Err(e) => Err(format!("does not load on this node ({e})")),
    }
}

/// The remaining accounts that sign in as `identity` (the file's and the store's), and those
/// that cannot be read here (they might).
fn users_of<'a>(
    identity: &str,
    stored: impl Iterator<Item = &'a StoredAccount>,
    unopened: impl Iterator<Item = (String, String)>,
    cfg: &Config,
    base: &Path,
) -> (Vec<String>, Vec<String>) {
    let uses = |id: Option<&str>| id.is_some_and(|id| id.eq_ignore_ascii_case(identity));
    let mut users: Vec<String> = cfg
        .accounts
        .iter()
        .filter(|a| uses(a.imap.credential.oauth().map(|o| o.identity.as_str())))
        .map(|a| format!("{} (config file)", a.email))
        .collect();
    let mut unknown: Vec<String> = cfg
        .undiscovered
        .iter()
        .map(|e| format!("{e} (config file)"))
        .collect();
    for s in stored {
        match signs_in_as(s, cfg, base) {
            Ok(id) if uses(id.as_deref()) => users.push(s.email.clone()),
            Ok(_) => {}
            Err(_) => unknown.push(s.email.clone()),
        }
    }
    unknown.extend(unopened.map(|(e, _)| e));
    (users, unknown)
}
