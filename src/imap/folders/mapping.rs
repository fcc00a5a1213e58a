//! Client names ↔ provider mailboxes: the translation the relay's folder rule will apply to
//! every mailbox name in a command (client → provider) and in a reply (provider → client).
//!
//! A mapped folder's children follow it (`Sent Items/2024` is `[Gmail]/Sent Mail/2024`), so
//! the client's view is a whole tree. The provider's own name of a mapped folder is not shown
//! to the client: it becomes the client's name. A client name that is also the name of another
//! real mailbox would hide that mailbox; [`Mapping::collisions`] lists them so that they can
//! be reported instead of silently shadowed.

use super::{Entry, Folders, Role};
use std::collections::BTreeMap;

/// One mapped folder.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pair {
    role: Role,
    /// What the client sees and names.
    client: String,
    /// The provider's mailbox (UTF-8).
    provider: String,
    delimiter: Option<char>,
}

/// The folders whose client name differs from the provider's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapping {
    pairs: Vec<Pair>,
}

impl Mapping {
    /// The mapping for `wanted` (role → the name the client expects) over the roles `folders`
    /// found. A role the provider has no mailbox for, or whose mailbox already has the wanted
    /// name, is not mapped.
    pub fn new(folders: &Folders, wanted: &BTreeMap<Role, String>) -> Mapping {
        let pairs = wanted
            .iter()
            .filter_map(|(role, client)| {
                let e: &Entry = folders.get(*role)?;
                (e.name != *client).then(|| Pair {
                    role: *role,
                    client: client.clone(),
                    provider: e.name.clone(),
                    delimiter: e.delimiter,
                })
            })
            .collect();
        Mapping { pairs }
    }

    /// Whether nothing is mapped (the rule can stay out of the session).
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The provider's name for what the client calls `name`; `None` when the name is not in a
    /// mapped tree (it passes as it is).
    pub fn to_provider(&self, name: &str) -> Option<String> {
        self.pairs
            .iter()
            .find_map(|p| swap_prefix(name, &p.client, &p.provider, p.delimiter))
    }

    /// The client's name for the provider's `name`; `None` when it is not in a mapped tree.
    pub fn to_client(&self, name: &str) -> Option<String> {
        self.pairs
            .iter()
            .find_map(|p| swap_prefix(name, &p.provider, &p.client, p.delimiter))
    }

    /// Each mapped folder as (client name, provider name, hierarchy delimiter): what the
    /// folder rule needs to widen a LIST whose patterns reach a client name.
    pub fn folders(&self) -> impl Iterator<Item = (&str, &str, Option<char>)> + '_ {
        self.pairs
            .iter()
            .map(|p| (p.client.as_str(), p.provider.as_str(), p.delimiter))
    }

    /// The role → (provider name, client name) table that `check` and `setup` show.
    pub fn table(&self) -> Vec<(Role, &str, &str)> {
        self.pairs
            .iter()
            .map(|p| (p.role, p.provider.as_str(), p.client.as_str()))
            .collect()
    }

    /// Client names that are also real mailboxes of `entries` (other than the mapped one):
    /// the client could not reach those mailboxes.
    pub fn collisions(&self, entries: &[Entry]) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|p| entries.iter().any(|e| e.name == p.client))
            .map(|p| p.client.clone())
            .collect()
    }
}

/// `name` with its leading `from` (the whole name, or a level above it) replaced by `to`.
fn swap_prefix(name: &str, from: &str, to: &str, delimiter: Option<char>) -> Option<String> {
    if name == from {
        return Some(to.to_owned());
    }
    let d = delimiter?;
    let rest = name.strip_prefix(from)?.strip_prefix(d)?;
    Some(format!("{to}{d}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::folders::{parse_list, Profile};
    use proptest::prelude::*;

    fn gmail() -> (Vec<Entry>, Mapping) {
        let entries: Vec<Entry> = [
            "* LIST (\\HasNoChildren) \"/\" INBOX\r\n",
            "* LIST (\\HasChildren \\Sent) \"/\" \"[Gmail]/Sent Mail\"\r\n",
            "* LIST (\\HasNoChildren \\Drafts) \"/\" \"[Gmail]/Drafts\"\r\n",
            "* LIST (\\HasNoChildren \\Trash) \"/\" \"[Gmail]/Trash\"\r\n",
            "* LIST (\\HasNoChildren) \"/\" Drafts\r\n",
        ]
        .iter()
        .map(|r| parse_list(r.as_bytes()).unwrap())
        .collect();
        let folders = Folders::learn(&entries);
        let wanted = Role::ALL
            .into_iter()
            .filter_map(|r| Some((r, Profile::SuperOffice.name(r)?.to_owned())))
            .collect();
        let mapping = Mapping::new(&folders, &wanted);
        (entries, mapping)
    }

    #[test]
    fn superoffice_on_gmail() {
        let (entries, m) = gmail();
        assert_eq!(
            m.table(),
            [
                (Role::Sent, "[Gmail]/Sent Mail", "Sent Items"),
                (Role::Drafts, "[Gmail]/Drafts", "Drafts"),
                (Role::Trash, "[Gmail]/Trash", "Deleted items"),
            ]
        );
        assert_eq!(
            m.to_provider("Sent Items").as_deref(),
            Some("[Gmail]/Sent Mail")
        );
        assert_eq!(
            m.to_provider("Sent Items/2024").as_deref(),
            Some("[Gmail]/Sent Mail/2024")
        );
        assert_eq!(m.to_provider("Sent Items2024"), None);
        assert_eq!(m.to_provider("INBOX"), None);
        assert_eq!(
            m.to_client("[Gmail]/Trash").as_deref(),
            Some("Deleted items")
        );
        assert_eq!(m.to_client("[Gmail]/All Mail"), None);
        // The user's own "Drafts" folder would be hidden behind the mapped one: reported.
        assert_eq!(m.collisions(&entries), ["Drafts"]);
    }

    #[test]
    fn nothing_to_map_when_the_names_already_fit() {
        let entries = vec![parse_list(b"* LIST (\\Sent) \"/\" \"Sent Items\"\r\n").unwrap()];
        let wanted = BTreeMap::from([(Role::Sent, "Sent Items".to_owned())]);
        assert!(Mapping::new(&Folders::learn(&entries), &wanted).is_empty());
    }

    proptest! {
        /// Any name the client may use comes back as it was after a trip to the provider.
        #[test]
        fn client_names_survive_a_round_trip(
            head in prop::sample::select(vec![
                "", "Sent Items", "Drafts", "Deleted items", "[Gmail]/Sent Mail", "INBOX",
            ]),
            tail in "[A-Za-z0-9 /\\[\\]éø._-]{0,20}",
        ) {
            let name = format!("{head}{tail}");
            let (_, m) = gmail();
            // The provider's own names of mapped folders are never shown to the client.
            prop_assume!(m.to_client(&name).is_none());
            let there = m.to_provider(&name).unwrap_or_else(|| name.clone());
            let back = m.to_client(&there).unwrap_or_else(|| there.clone());
            prop_assert_eq!(back, name);
        }
    }
}
