//! At login: the folder view a session's rule works from, learned from the provider (or the
//! account's cached list) when the session needs one.

use super::{cache, learn, Folders, Role, SentWatch, View};
use crate::config::{Account, ServerConfig};
use crate::imap::upstream::{self, LoggedIn};
use crate::mailbox::SentCopy;
use std::sync::Arc;
use tracing::{info, warn};

/// Whether a session of `account` on a server with `capabilities` needs the folder rule:
/// names to map, a Sent folder to watch, or SPECIAL-USE to offer where the provider has none.
fn wanted(account: &Account, capabilities: &[String]) -> bool {
    !account.folders.names.is_empty()
        || account.folders.sent_copy_effective == SentCopy::Provider
        || !capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case("SPECIAL-USE"))
}

/// The view for this session, or `None` when the session needs no folder rule or the folders
/// could not be learned (the client then sees the provider's names; logged). When the view
/// offers SPECIAL-USE the provider lacks, it is added to `up.capabilities`, so the login's
/// answer says so too.
pub async fn view(
    account: &Account,
    up: &mut LoggedIn,
    server: &ServerConfig,
) -> Option<Arc<View>> {
    if !wanted(account, &up.capabilities) {
        return None;
    }
    let (entries, fresh) = match cache::get(&account.email) {
        Some(entries) => (entries, false),
        None => match learn::list(up, server.upstream_timeout).await {
            Ok(entries) => {
                let entries = Arc::new(entries);
                cache::put(&account.email, entries.clone());
                (entries, true)
            }
            Err(e) => {
                warn!(error = %e, "could not list the provider's folders: the client sees the provider's names this session");
                return None;
            }
        },
    };
    let folders = Folders::learn(&entries);
    let mut view = View::new(&entries, &folders, &account.folders.names, &up.capabilities);
    if account.folders.sent_copy_effective == SentCopy::Provider {
        view.sent_watch = folders.get(Role::Sent).map(|sent| SentWatch {
            account: account.email.clone(),
            sent: sent.name.clone(),
        });
    }
    if fresh {
        let found: Vec<String> = folders
            .roles
            .iter()
            .map(|(role, (e, marked))| {
                let how = if *marked { "marked" } else { "by name" };
                format!("{}={:?} ({how})", role.key(), e.name)
            })
            .collect();
        info!(
            folders = found.join(", "),
            count = entries.len(),
            "learned the provider's folders"
        );
        for name in &view.hidden {
            warn!(folder = %name, "a client folder name is also a real folder at the provider: that folder cannot be reached through mailgate; choose another name in [account.folders]");
        }
    }
    if !view.needed() {
        // E.g. the client's names are the provider's already: nothing to change.
        return None;
    }
    let mut capabilities = up.capabilities.to_vec();
    if !view.provider_special_use {
        capabilities.push("SPECIAL-USE".to_owned());
    }
    if view.sent_watch.is_some() {
        // A swallowed upload must not take other messages of the same command with it.
        capabilities.retain(|c| !c.eq_ignore_ascii_case("MULTIAPPEND"));
    }
    up.capabilities = upstream::shared_capabilities(capabilities);
    Some(Arc::new(view))
}
