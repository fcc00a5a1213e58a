//! The folder roles a client looks for (RFC 6154 special-use), and the names each role goes by
//! at the providers and in the languages mailgate knows, for servers that do not mark them.

/// A special-use role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Copies of sent messages.
    Sent,
    /// Messages being composed.
    Drafts,
    /// Deleted messages.
    Trash,
    /// Spam.
    Junk,
    /// Archived messages.
    Archive,
}

impl Role {
    /// Every role, in the order they are shown.
    pub const ALL: [Role; 5] = [
        Role::Sent,
        Role::Drafts,
        Role::Trash,
        Role::Junk,
        Role::Archive,
    ];

    /// The key naming the role in `[account.folders]` (and in `check`'s table).
    pub fn key(self) -> &'static str {
        match self {
            Role::Sent => "sent",
            Role::Drafts => "drafts",
            Role::Trash => "trash",
            Role::Junk => "junk",
            Role::Archive => "archive",
        }
    }

    /// The RFC 6154 attribute.
    pub fn attribute(self) -> &'static str {
        match self {
            Role::Sent => "\\Sent",
            Role::Drafts => "\\Drafts",
            Role::Trash => "\\Trash",
            Role::Junk => "\\Junk",
            Role::Archive => "\\Archive",
        }
    }

    /// The role an attribute of a LIST (or Gmail's legacy XLIST, whose `\Spam` is `\Junk`)
    /// reply marks; `None` for the others (`\All`, `\Flagged`, `\HasChildren`, …).
    pub fn from_attribute(attribute: &str) -> Option<Role> {
        let a = attribute.strip_prefix('\\')?;
        Role::ALL
            .into_iter()
            .find(|r| r.attribute()[1..].eq_ignore_ascii_case(a))
            .or_else(|| a.eq_ignore_ascii_case("spam").then_some(Role::Junk))
    }

    /// The names this role goes by where the server does not say: provider defaults and the
    /// localized names of Exchange Online / Outlook.com, Gmail and common hosting set-ups.
    pub fn known_names(self) -> &'static [&'static str] {
        match self {
            Role::Sent => SENT,
            Role::Drafts => DRAFTS,
            Role::Trash => TRASH,
            Role::Junk => JUNK,
            Role::Archive => ARCHIVE,
        }
    }

    /// The role a mailbox name (UTF-8, as decoded) is known for: the whole name, or its last
    /// level under `INBOX` (`INBOX.Sent`, `INBOX/Sent` on servers that nest under the inbox),
    /// compared without regard to case.
    pub fn of_name(name: &str, delimiter: Option<char>) -> Option<Role> {
        let leaf = delimiter
            .and_then(|d| {
                let (first, rest) = name.split_once(d)?;
                first.eq_ignore_ascii_case("INBOX").then_some(rest)
            })
            .unwrap_or(name);
        Role::ALL.into_iter().find(|r| {
            r.known_names()
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name) || n.eq_ignore_ascii_case(leaf))
        })
    }
}

// Sources: Microsoft's and Google's localized folder names as mailboxes show them (Exchange
// Online follows the mailbox language; Gmail the UI language, under `[Gmail]/` or
// `[Google Mail]/`), Thunderbird's and Apple Mail's defaults, and Dovecot/cPanel set-ups.
// English first, then nb, da, nl, de, sv, fr, es, it, pt, pl, fi.
const SENT: &[&str] = &[
    "Sent",
    "Sent Items",
    "Sent Mail",
    "Sent Messages",
    "[Gmail]/Sent Mail",
    "[Google Mail]/Sent Mail",
    "Sendte elementer",
    "Sendt post",
    "Verzonden items",
    "Gesendete Elemente",
    "Gesendet",
    "[Gmail]/Gesendet",
    "[Google Mail]/Gesendet",
    "Skickade objekt",
    "Éléments envoyés",
    "Elementos enviados",
    "Posta inviata",
    "Itens Enviados",
    "Elementy wysłane",
    "Lähetetyt",
];

const DRAFTS: &[&str] = &[
    "Drafts",
    "[Gmail]/Drafts",
    "[Google Mail]/Drafts",
    "Utkast",
    "Kladder",
    "Concepten",
    "Entwürfe",
    "[Gmail]/Entwürfe",
    "[Google Mail]/Entwürfe",
    "Brouillons",
    "Borradores",
    "Bozze",
    "Rascunhos",
    "Wersje robocze",
    "Luonnokset",
];

const TRASH: &[&str] = &[
    "Trash",
    "Deleted Items",
    "Deleted Messages",
    "[Gmail]/Trash",
    "[Google Mail]/Trash",
    "Slettede elementer",
    "Slettet post",
    "Verwijderde items",
    "Gelöschte Elemente",
    "Papierkorb",
    "[Gmail]/Papierkorb",
    "[Google Mail]/Papierkorb",
    "Borttagna objekt",
    "Éléments supprimés",
    "Elementos eliminados",
    "Posta eliminata",
    "Itens Excluídos",
    "Elementy usunięte",
    "Poistetut",
];

const JUNK: &[&str] = &[
    "Junk",
    "Junk Email",
    "Junk E-mail",
    "Spam",
    "[Gmail]/Spam",
    "[Google Mail]/Spam",
    "Søppelpost",
    "Uønsket mail",
    "Uønsket e-mail",
    "Ongewenste e-mail",
    "Junk-E-Mail",
    "Skräppost",
    "Courrier indésirable",
    "Correo no deseado",
    "Posta indesiderata",
    "Lixo Eletrônico",
    "Wiadomości-śmieci",
    "Roskaposti",
];

const ARCHIVE: &[&str] = &[
    "Archive", "Archives", "Arkiv", "Archief", "Archiv", "Archivo", "Archivio", "Arquivo",
    "Archiwum", "Arkisto",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_name_roles() {
        assert_eq!(Role::from_attribute("\\Sent"), Some(Role::Sent));
        assert_eq!(Role::from_attribute("\\junk"), Some(Role::Junk));
        assert_eq!(Role::from_attribute("\\Spam"), Some(Role::Junk));
        assert_eq!(Role::from_attribute("\\ARCHIVE"), Some(Role::Archive));
        for other in ["\\All", "\\Flagged", "\\HasNoChildren", "Sent", "\\"] {
            assert_eq!(Role::from_attribute(other), None, "{other}");
        }
        for r in Role::ALL {
            assert_eq!(Role::from_attribute(r.attribute()), Some(r));
        }
    }

    #[test]
    fn names_in_the_languages_and_layouts_we_meet() {
        for (name, delimiter, role) in [
            ("Sendte elementer", Some('/'), Role::Sent),
            ("sendt post", Some('/'), Role::Sent),
            ("Verzonden items", Some('/'), Role::Sent),
            ("[Gmail]/Sent Mail", Some('/'), Role::Sent),
            ("[Google Mail]/Gesendet", Some('/'), Role::Sent),
            ("INBOX.Sent", Some('.'), Role::Sent),
            ("INBOX/Drafts", Some('/'), Role::Drafts),
            ("Entwürfe", Some('/'), Role::Drafts),
            ("Deleted Items", None, Role::Trash),
            ("Slettet post", Some('/'), Role::Trash),
            ("Junk Email", Some('/'), Role::Junk),
            ("Ongewenste e-mail", Some('/'), Role::Junk),
            ("Archives", Some('/'), Role::Archive),
        ] {
            assert_eq!(Role::of_name(name, delimiter), Some(role), "{name}");
        }
        for name in ["INBOX", "Sent/2019", "Projects.Sent", "Kunder"] {
            assert_eq!(Role::of_name(name, Some('.')), None, "{name}");
        }
    }

    #[test]
    fn no_name_stands_for_two_roles() {
        let mut all: Vec<String> = Role::ALL
            .iter()
            .flat_map(|r| r.known_names().iter().map(|n| n.to_lowercase()))
            .collect();
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count, "a name is listed twice");
    }
}
