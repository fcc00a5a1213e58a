//! `[account.folders]`: the names the client expects for the Sent, Drafts, Trash, Junk and
//! Archive folders (a client profile, each overridable), and who files the Sent copy.

use super::file::FoldersFile;
use super::locate::FieldError;
use crate::mailbox::{Profile, Role, SentCopy};
use std::collections::BTreeMap;

/// The validated `[account.folders]` of one account (all defaults when the table is absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folders {
    /// The client profile named (`none` by default).
    pub profile: Profile,
    /// Role → the name the client expects: the profile's names, overridden by the roles named
    /// in the table. Empty when the client is to see the provider's names.
    pub names: BTreeMap<Role, String>,
    /// `sent_copy` as written (`auto` by default).
    pub sent_copy: SentCopy,
    /// What `sent_copy` means for this account's provider (never `Auto`).
    pub sent_copy_effective: SentCopy,
}

impl Folders {
    /// The settings of an account without the table, at a provider that does (`true`) or does
    /// not file submissions itself.
    pub fn default_for(provider_files_sent: bool) -> Folders {
        Folders {
            profile: Profile::None,
            names: BTreeMap::new(),
            sent_copy: SentCopy::Auto,
            sent_copy_effective: SentCopy::Auto.resolve(provider_files_sent),
        }
    }
}

impl FoldersFile {
    fn named(&self, role: Role) -> Option<&String> {
        match role {
            Role::Sent => self.sent.as_ref(),
            Role::Drafts => self.drafts.as_ref(),
            Role::Trash => self.trash.as_ref(),
            Role::Junk => self.junk.as_ref(),
            Role::Archive => self.archive.as_ref(),
        }
    }

    /// The validated settings.
    pub(super) fn validate(self, provider_files_sent: bool) -> Result<Folders, FieldError> {
        let profile = match &self.client {
            None => Profile::None,
            Some(word) => Profile::parse(word).ok_or_else(|| {
                let known: Vec<&str> = Profile::ALL.iter().map(|p| p.as_str()).collect();
                FieldError::new(
                    "client",
                    format!(
                        "`{word}` is not a known client; use one of {}",
                        known.join(", ")
                    ),
                )
            })?,
        };
        let sent_copy = match &self.sent_copy {
            None => SentCopy::Auto,
            Some(word) => SentCopy::parse(word).ok_or_else(|| {
                let known: Vec<&str> = SentCopy::ALL.iter().map(|s| s.as_str()).collect();
                FieldError::new(
                    "sent_copy",
                    format!("`{word}` is not a setting; use one of {}", known.join(", ")),
                )
            })?,
        };
        let mut names = BTreeMap::new();
        for role in Role::ALL {
            let name = match self.named(role) {
                Some(n) => {
                    check_name(n).map_err(|why| FieldError::new(role.key(), why))?;
                    n.clone()
                }
                None => match profile.name(role) {
                    Some(n) => n.to_owned(),
                    None => continue,
                },
            };
            if let Some((other, _)) = names.iter().find(|(_, n)| *n == &name) {
                let other: &Role = other;
                return Err(FieldError::new(
                    role.key(),
                    format!(
                        "`{name}` is already the name of {}; two roles cannot share a folder name",
                        other.key()
                    ),
                ));
            }
            names.insert(role, name);
        }
        Ok(Folders {
            profile,
            names,
            sent_copy,
            sent_copy_effective: sent_copy.resolve(provider_files_sent),
        })
    }
}

/// Why `name` cannot be a folder name the client sees, if it cannot.
fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("is empty; leave the key out to keep the provider's name".into());
    }
    if name != name.trim() {
        return Err(format!("`{name}` begins or ends with a space"));
    }
    if name.eq_ignore_ascii_case("INBOX") {
        return Err("cannot be INBOX (the inbox keeps its name)".into());
    }
    if name.chars().any(|c| c.is_control() || c == '*' || c == '%') {
        return Err(format!(
            "`{}` holds a control character or a LIST wildcard (`*`, `%`)",
            name.escape_debug()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(client: Option<&str>, sent: Option<&str>, trash: Option<&str>) -> FoldersFile {
        FoldersFile {
            client: client.map(Into::into),
            sent: sent.map(Into::into),
            trash: trash.map(Into::into),
            ..FoldersFile::default()
        }
    }

    #[test]
    fn profile_names_and_overrides() {
        let f = file(Some("superoffice"), Some("Sendt"), None)
            .validate(true)
            .unwrap();
        assert_eq!(f.profile, Profile::SuperOffice);
        assert_eq!(f.names[&Role::Sent], "Sendt");
        assert_eq!(f.names[&Role::Trash], "Deleted items");
        assert!(!f.names.contains_key(&Role::Junk));
        assert_eq!(f.sent_copy_effective, SentCopy::Provider);
        let none = FoldersFile::default().validate(false).unwrap();
        assert!(none.names.is_empty());
        assert_eq!(none, Folders::default_for(false));
    }

    #[test]
    fn bad_values_are_named() {
        let e = file(Some("mutt"), None, None).validate(false).unwrap_err();
        assert!(format!("{e:?}").contains("superoffice, outlook"), "{e:?}");
        let e = file(None, Some("Trash"), Some("Trash"))
            .validate(false)
            .unwrap_err();
        assert!(
            format!("{e:?}").contains("already the name of sent"),
            "{e:?}"
        );
        for bad in ["", "INBOX", "a*", " x", "a\r\nb"] {
            assert!(
                file(None, Some(bad), None).validate(false).is_err(),
                "{bad:?}"
            );
        }
    }
}
