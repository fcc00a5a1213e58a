//! The folders part of `mailgate check` and `mailgate setup`: which provider mailbox plays each
//! role, the name the client will see for it, and what to set in the client.

use crate::config::Folders as Settings;
use crate::imap::folders::{Entry, Folders, Mapping, Profile, Role};
use crate::mailbox::SentCopy;
use serde::Serialize;
use std::fmt::Write as _;

/// One role's row.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RoleRow {
    /// `sent`, `drafts`, …
    pub role: &'static str,
    /// The provider's mailbox (UTF-8), `None` when the provider has none for the role.
    pub provider: Option<String>,
    /// The name the client sees (the provider's when nothing is mapped).
    pub client: Option<String>,
    /// The provider marks the mailbox with the role's attribute (else it was recognised by
    /// its name).
    pub marked: bool,
}

/// What `check` says about an account's folders.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FolderReport {
    /// `[account.folders] client`.
    pub client: &'static str,
    /// `sent_copy` as it applies to this account (`provider`, `gateway` or `client`).
    pub sent_copy: &'static str,
    /// One row per role, in [`Role::ALL`]'s order.
    pub roles: Vec<RoleRow>,
    /// Client names that are also real mailboxes: the client cannot reach those.
    pub collisions: Vec<String>,
    /// What to set in the client, one line each.
    pub instructions: Vec<String>,
}

/// The report for an account with `settings` whose provider listed `entries`.
pub fn report(entries: &[Entry], settings: &Settings) -> FolderReport {
    let folders = Folders::learn(entries);
    let mapping = Mapping::new(&folders, &settings.names);
    let roles = Role::ALL
        .into_iter()
        .map(|role| {
            let found = folders.roles.get(&role);
            let provider = found.map(|(e, _)| e.name.clone());
            let client = provider
                .as_deref()
                .map(|p| mapping.to_client(p).unwrap_or_else(|| p.to_owned()));
            RoleRow {
                role: role.key(),
                provider,
                client,
                marked: found.is_some_and(|(_, marked)| *marked),
            }
        })
        .collect::<Vec<_>>();
    FolderReport {
        client: settings.profile.as_str(),
        sent_copy: settings.sent_copy_effective.as_str(),
        instructions: instructions(settings, &roles),
        collisions: mapping.collisions(entries),
        roles,
    }
}

/// Whether the client should save its own copy of sent mail.
fn save_sent(sent_copy: SentCopy) -> (&'static str, &'static str) {
    match sent_copy {
        SentCopy::Provider | SentCopy::Auto => ("off", "the provider files sent mail itself"),
        SentCopy::Gateway => ("off", "mailgate files a copy of each message sent"),
        SentCopy::Client => ("on", "nobody else files sent mail"),
    }
}

/// The client-specific settings, one line each.
fn instructions(settings: &Settings, roles: &[RoleRow]) -> Vec<String> {
    let seen = |role: Role| {
        roles
            .iter()
            .find(|r| r.role == role.key())
            .and_then(|r| r.client.clone())
    };
    let (save, why) = save_sent(settings.sent_copy_effective);
    match settings.profile {
        Profile::SuperOffice => {
            let mut prefs = vec!["NameInbox = \"Inbox\"".to_owned()];
            for (key, role) in [
                ("NameSent", Role::Sent),
                ("NameDrafts", Role::Drafts),
                ("NameDeleted", Role::Trash),
            ] {
                if let Some(name) = settings.names.get(&role) {
                    prefs.push(format!("{key} = \"{name}\""));
                }
            }
            vec![
                format!("SuperOffice Inbox preferences: {}", prefs.join(", ")),
                format!("SuperOffice Inbox preferences: SaveSentInSentItems = {save} ({why})"),
            ]
        }
        Profile::Outlook => vec![format!(
            "Outlook: save copies of sent items on the server: {save} ({why}); the folders appear as {}",
            shown(&seen)
        )],
        Profile::Thunderbird => vec![format!(
            "Thunderbird, Copies & Folders: \"Place a copy in\" {save} ({why}); the folders appear as {}",
            shown(&seen)
        )],
        Profile::None => vec![format!(
            "Mail client: save a copy of sent messages: {save} ({why}); clients that read \
             RFC 6154 (SPECIAL-USE) find the folders by themselves"
        )],
    }
}

/// `Sent Items, Drafts, …` for the roles the client sees.
fn shown(seen: &dyn Fn(Role) -> Option<String>) -> String {
    let names: Vec<String> = Role::ALL
        .into_iter()
        .filter_map(|r| Some(format!("\"{}\"", seen(r)?)))
        .collect();
    if names.is_empty() {
        "the provider's names".to_owned()
    } else {
        names.join(", ")
    }
}

/// The report as text lines, indented for `check`'s account block.
pub fn render(report: &FolderReport, out: &mut String) {
    let _ = writeln!(
        out,
        "  Folders (client = {}, sent copy: {})",
        report.client, report.sent_copy
    );
    let width = report
        .roles
        .iter()
        .filter_map(|r| r.provider.as_ref().map(|p| p.chars().count()))
        .max()
        .unwrap_or(0);
    for row in &report.roles {
        match (&row.provider, &row.client) {
            (Some(provider), Some(client)) => {
                let how = if row.marked { "marked" } else { "by name" };
                let _ = writeln!(
                    out,
                    "    {:<8} {provider:<width$}  →  {client}   ({how})",
                    row.role
                );
            }
            _ => {
                let _ = writeln!(out, "    {:<8} none found at the provider", row.role);
            }
        }
    }
    for name in &report.collisions {
        let _ = writeln!(
            out,
            "    ! \"{name}\" is also a folder of its own at the provider: through mailgate that name means the mapped folder, and the other one cannot be reached"
        );
    }
    for line in &report.instructions {
        let _ = writeln!(out, "    → {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::folders::parse_list;
    use std::collections::BTreeMap;

    fn entries(lines: &[&str]) -> Vec<Entry> {
        lines
            .iter()
            .map(|l| parse_list(format!("{l}\r\n").as_bytes()).unwrap())
            .collect()
    }

    fn settings(profile: Profile, sent_copy: SentCopy) -> Settings {
        let names: BTreeMap<Role, String> = Role::ALL
            .into_iter()
            .filter_map(|r| Some((r, profile.name(r)?.to_owned())))
            .collect();
        Settings {
            profile,
            names,
            sent_copy,
            sent_copy_effective: sent_copy.resolve(true),
        }
    }

    #[test]
    fn superoffice_on_gmail() {
        let e = entries(&[
            "* LIST (\\HasNoChildren) \"/\" INBOX",
            "* LIST (\\HasNoChildren \\Sent) \"/\" \"[Gmail]/Sent Mail\"",
            "* LIST (\\HasNoChildren \\Trash) \"/\" \"[Gmail]/Trash\"",
            "* LIST (\\HasNoChildren) \"/\" Drafts",
        ]);
        let r = report(&e, &settings(Profile::SuperOffice, SentCopy::Auto));
        assert_eq!(r.sent_copy, "provider");
        assert_eq!(
            r.roles[0],
            RoleRow {
                role: "sent",
                provider: Some("[Gmail]/Sent Mail".into()),
                client: Some("Sent Items".into()),
                marked: true,
            }
        );
        // Drafts is recognised by its name and already has the wanted one.
        assert_eq!(r.roles[1].client.as_deref(), Some("Drafts"));
        assert!(!r.roles[1].marked);
        assert_eq!(r.roles[3].provider, None);
        let mut text = String::new();
        render(&r, &mut text);
        assert!(
            text.contains("sent     [Gmail]/Sent Mail  →  Sent Items   (marked)"),
            "{text}"
        );
        assert!(text.contains("junk     none found"), "{text}");
        assert!(text.contains("SaveSentInSentItems = off"), "{text}");
        assert!(text.contains("NameDeleted = \"Deleted items\""), "{text}");
    }

    #[test]
    fn client_copy_means_save_on() {
        let e = entries(&["* LIST () \"/\" \"Sent Items\""]);
        let r = report(&e, &settings(Profile::Thunderbird, SentCopy::Client));
        assert_eq!(r.roles[0].client.as_deref(), Some("Sent"));
        assert!(
            r.instructions[0].contains("\"Place a copy in\" on"),
            "{r:?}"
        );
    }
}
