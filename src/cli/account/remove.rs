//! `mailgate account remove EMAIL`: [`mailgate::setup::remove`] on the config file's account,
//! or the shared store's, and what became of it in words.

use anyhow::Result;
use mailgate::pgstore::Shared;
use mailgate::setup::{self, Place, Tokens, Unreadable};
use std::path::Path;
use std::sync::Arc;

/// Removes `email` from the file at `config` (or from `shared`, the file's store) and says
/// what became of its credential file and tokens.
pub(super) async fn remove(shared: Option<&Arc<Shared>>, config: &Path, email: &str) -> Result<()> {
    let removed = setup::remove(config, email, shared).await?;
    match &removed.from {
        Place::File(path) => println!("Removed {email} from {}.", path.display()),
        Place::Store => println!("Removed {email} from the shared store."),
    }
    if let Some(f) = &removed.credential_file {
        println!("Deleted its provider password file {}.", f.display());
    }
    match removed.tokens {
        Tokens::None => {}
        Tokens::Unreadable(why) => {
            let why = match why {
                Unreadable::NeedsDiscovery => {
                    "needs discovery of its servers and was not read".to_owned()
                }
                Unreadable::DoesNotLoad(e) => format!("does not load on this node ({e})"),
                Unreadable::NotOpened => "did not open with this node's key".to_owned(),
            };
            println!("Its OAuth tokens, if it had any, are kept: the account {why}.");
        }
        Tokens::InUse { identity, users } => println!(
            "Kept the OAuth tokens of {identity}: {} still sign{} in as {identity}.",
            users.join(", "),
            if users.len() == 1 { "s" } else { "" }
        ),
        Tokens::Unknown { identity, accounts } => println!(
            "Kept the OAuth tokens of {identity}: {} cannot be read on this node, so whether they sign in as {identity} is unknown (remove the tokens with `DELETE FROM mailgate_tokens WHERE identity = '{}'` once none does).",
            accounts.join(", "),
            identity.to_ascii_lowercase()
        ),
        Tokens::Removed { identity } => println!(
            "Removed the OAuth tokens of {identity}: no other account signs in as {identity}."
        ),
        Tokens::NoneStored { identity } => println!("{identity} had no OAuth tokens stored."),
    }
    println!("The mailbox at the provider is untouched.");
    Ok(())
}
