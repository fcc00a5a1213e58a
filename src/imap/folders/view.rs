//! What one session's folder rule works from: the name mapping, the attributes to add, the
//! shadowed mailboxes to hide, and what the provider supports. Built at login from the folders
//! learned for the account and its `[account.folders]` settings.

use super::{Entry, Folders, Mapping, Role};
use std::collections::BTreeMap;

/// See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Client names ↔ provider names.
    pub mapping: Mapping,
    /// Provider mailbox (UTF-8 name) → the role whose attribute its LIST replies get, for
    /// roles the provider does not mark itself (recognised by name); empty when the provider
    /// marks every role it has.
    pub add_attributes: BTreeMap<String, Role>,
    /// Real mailboxes (UTF-8 names) a client name shadows: left out of LIST and LSUB replies
    /// (commands naming them reach the mapped folder).
    pub hidden: Vec<String>,
    /// The provider advertises SPECIAL-USE (RFC 6154).
    pub provider_special_use: bool,
    /// The provider advertises LIST-EXTENDED (RFC 5258): several patterns and selection
    /// options in one LIST.
    pub provider_list_extended: bool,
    /// `sent_copy = "provider"`: uploads to this Sent folder of messages mailgate just
    /// submitted are answered without storing them.
    pub sent_watch: Option<SentWatch>,
}

/// The Sent folder a session watches for duplicate uploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentWatch {
    /// The account (the key of [`crate::mailbox::submitted`]).
    pub account: String,
    /// The provider's Sent folder (UTF-8 name).
    pub sent: String,
}

impl View {
    /// The view for `folders` (learned from `entries`, the provider's whole LIST), the names
    /// the client expects, and the provider's capabilities.
    pub fn new(
        entries: &[Entry],
        folders: &Folders,
        wanted: &BTreeMap<Role, String>,
        capabilities: &[String],
    ) -> View {
        let has = |c: &str| capabilities.iter().any(|x| x.eq_ignore_ascii_case(c));
        let mapping = Mapping::new(folders, wanted);
        let add_attributes = folders
            .roles
            .iter()
            .filter(|(_, (_, marked))| !marked)
            .map(|(role, (e, _))| (e.name.clone(), *role))
            .collect();
        let hidden = mapping.collisions(entries);
        View {
            mapping,
            add_attributes,
            hidden,
            provider_special_use: has("SPECIAL-USE"),
            provider_list_extended: has("LIST-EXTENDED"),
            sent_watch: None,
        }
    }

    /// Whether capability lists change on their way to the client.
    pub fn edits_capabilities(&self) -> bool {
        !self.provider_special_use || self.sent_watch.is_some()
    }

    /// Whether the session needs the rule at all: something to rename, mark or hide, or
    /// SPECIAL-USE to offer where the provider has none.
    pub fn needed(&self) -> bool {
        !self.mapping.is_empty()
            || !self.add_attributes.is_empty()
            || !self.hidden.is_empty()
            || !self.provider_special_use
            || self.sent_watch.is_some()
    }
}
