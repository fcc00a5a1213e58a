//! The folder names a client expects (`[account.folders] client = "…"`): what it looks for
//! when it saves a sent copy, a draft or a deleted message, so that it finds the provider's
//! folders under those names.

use super::Role;

/// A client whose folder names mailgate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// SuperOffice's Inbox: its preferences `NameSent`, `NameDrafts`, `NameDeleted` default to
    /// "Sent Items", "Drafts", "Deleted items"; it names no Junk or Archive folder.
    SuperOffice,
    /// Outlook's English names.
    Outlook,
    /// Thunderbird's defaults.
    Thunderbird,
    /// No names: the client sees the provider's.
    None,
}

impl Profile {
    /// Every profile, as written in the config.
    pub const ALL: [Profile; 4] = [
        Profile::SuperOffice,
        Profile::Outlook,
        Profile::Thunderbird,
        Profile::None,
    ];

    /// The config word.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::SuperOffice => "superoffice",
            Profile::Outlook => "outlook",
            Profile::Thunderbird => "thunderbird",
            Profile::None => "none",
        }
    }

    /// The profile a config word names.
    pub fn parse(word: &str) -> Option<Profile> {
        Profile::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(word.trim()))
    }

    /// The name this client expects for `role`, if it expects one.
    pub fn name(self, role: Role) -> Option<&'static str> {
        use Role::{Archive, Drafts, Junk, Sent, Trash};
        Some(match (self, role) {
            (Profile::SuperOffice | Profile::Outlook, Sent) => "Sent Items",
            (Profile::SuperOffice | Profile::Outlook | Profile::Thunderbird, Drafts) => "Drafts",
            (Profile::SuperOffice, Trash) => "Deleted items",
            (Profile::Outlook, Trash) => "Deleted Items",
            (Profile::Outlook, Junk) => "Junk Email",
            (Profile::Outlook, Archive) => "Archive",
            (Profile::Thunderbird, Sent) => "Sent",
            (Profile::Thunderbird, Trash) => "Trash",
            (Profile::Thunderbird, Junk) => "Junk",
            (Profile::Thunderbird, Archive) => "Archives",
            // SuperOffice names no Junk or Archive folder; `none` names nothing.
            (Profile::SuperOffice, Junk | Archive) | (Profile::None, _) => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_names() {
        for p in Profile::ALL {
            assert_eq!(Profile::parse(p.as_str()), Some(p));
        }
        assert_eq!(Profile::parse(" SuperOffice "), Some(Profile::SuperOffice));
        assert_eq!(Profile::parse("mutt"), None);
        assert_eq!(
            Profile::SuperOffice.name(Role::Trash),
            Some("Deleted items")
        );
        assert_eq!(Profile::SuperOffice.name(Role::Junk), None);
        assert_eq!(Profile::Outlook.name(Role::Junk), Some("Junk Email"));
        assert_eq!(Profile::Thunderbird.name(Role::Archive), Some("Archives"));
        assert!(Role::ALL.iter().all(|r| Profile::None.name(*r).is_none()));
    }
}
