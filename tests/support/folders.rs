//! Dovecot set up the ways real providers present their folders, for the folder-mapping tests:
//! Gmail-like (`[Gmail]/Sent Mail`… marked with RFC 6154 attributes, SPECIAL-USE advertised),
//! localized without SPECIAL-USE (folders created per user in Norwegian, Danish or Dutch,
//! no attributes), and Exchange-like (English Outlook names, neither SPECIAL-USE nor
//! LIST-EXTENDED advertised).

use std::fmt::Write as _;

use super::imap_client::{quote, tagged_status};
use super::{Dovecot, DovecotOpts};

/// How the test Dovecot presents its folders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Gmail,
    Localized,
    Exchange,
}

/// Dovecot 2.3's own post-login capabilities, without SPECIAL-USE.
const WITHOUT_SPECIAL_USE: &str = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT \
    SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL \
    CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 CONDSTORE QRESYNC \
    ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY MOVE SNIPPET=FUZZY \
    PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY";

/// What Exchange Online says after login (its AUTH= mechanisms aside).
const EXCHANGE: &str = "IMAP4 IMAP4rev1 SASL-IR UIDPLUS ID UNSELECT CHILDREN IDLE NAMESPACE \
    LITERAL+ MOVE";

/// The Gmail-like folders: (name, attribute).
pub const GMAIL: &[(&str, &str)] = &[
    ("[Gmail]/Sent Mail", "\\Sent"),
    ("[Gmail]/Drafts", "\\Drafts"),
    ("[Gmail]/Trash", "\\Trash"),
    ("[Gmail]/Spam", "\\Junk"),
    ("[Gmail]/All Mail", "\\All"),
];

/// Exchange's English folders, no attributes: Sent, Drafts, Trash, Junk, Archive.
pub const EXCHANGE_NAMES: &[&str] = &[
    "Sent Items",
    "Drafts",
    "Deleted Items",
    "Junk Email",
    "Archive",
];

/// Microsoft 365 in Norwegian, Danish and Dutch, as modified UTF-7 wire names: Sent, Drafts,
/// Trash, Junk, Archive.
pub const NORWEGIAN: &[&str] = &[
    "Sendte elementer",
    "Utkast",
    "Slettede elementer",
    "S&APg-ppelpost",
    "Arkiv",
];
pub const DANISH: &[&str] = &[
    "Sendt post",
    "Kladder",
    "Slettet post",
    "U&APg-nsket mail",
    "Arkiv",
];
pub const DUTCH: &[&str] = &[
    "Verzonden items",
    "Concepten",
    "Verwijderde items",
    "Ongewenste e-mail",
    "Archief",
];

impl Layout {
    /// A plaintext Dovecot presenting this layout (hierarchy delimiter `/`).
    pub fn opts(self) -> DovecotOpts {
        let mut extra = String::from("namespace inbox {\n  inbox = yes\n  separator = /\n");
        match self {
            Layout::Gmail => {
                for (name, attribute) in GMAIL {
                    let _ = writeln!(
                        extra,
                        "  mailbox \"{name}\" {{\n    special_use = {attribute}\n    auto = create\n  }}"
                    );
                }
            }
            Layout::Exchange => {
                for name in EXCHANGE_NAMES {
                    let _ = writeln!(extra, "  mailbox \"{name}\" {{\n    auto = create\n  }}");
                }
            }
            Layout::Localized => {}
        }
        extra.push_str("}\n");
        match self {
            Layout::Gmail => {}
            Layout::Localized => {
                let _ = writeln!(extra, "imap_capability = {WITHOUT_SPECIAL_USE}");
            }
            Layout::Exchange => {
                let _ = writeln!(extra, "imap_capability = {EXCHANGE}");
            }
        }
        DovecotOpts {
            extra,
            ..DovecotOpts::plaintext_only()
        }
    }
}

/// Creates `wire` mailboxes (modified UTF-7 names) for `user` directly at Dovecot.
pub fn create(dovecot: &Dovecot, user: &str, password: &str, wire: &[&str]) {
    let mut c = dovecot.login(user, password);
    for (i, name) in wire.iter().enumerate() {
        let tag = format!("c{i}");
        let resp = c.command(&tag, &format!("CREATE {}", quote(name)));
        assert!(
            tagged_status(&resp, &tag).starts_with("OK"),
            "CREATE {name}: {}",
            String::from_utf8_lossy(&resp)
        );
    }
    c.command("z", "LOGOUT");
}

/// One `* LIST`/`* LSUB` reply line, read simply: attributes, delimiter and the name
/// (quoted or atom, quotes undone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub attributes: Vec<String>,
    pub name: String,
}

/// The `* LIST` (or `* LSUB`, per `kind`) replies in `resp`. Names sent as literals are read
/// too (`{n}` and the following line).
pub fn listed(resp: &[u8], kind: &str) -> Vec<Listed> {
    let text = String::from_utf8_lossy(resp);
    let prefix = format!("* {kind} (");
    let mut out = Vec::new();
    let mut lines = text.split("\r\n");
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let Some((attrs, rest)) = rest.split_once(") ") else {
            continue;
        };
        // The delimiter: `"/"` or NIL.
        let rest = rest
            .strip_prefix("NIL ")
            .or_else(|| rest.get(4..))
            .unwrap_or_default();
        let name = if let Some(len) = rest.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            let len: usize = len.trim_end_matches('+').parse().unwrap_or(0);
            let next = lines.next().unwrap_or_default();
            next.get(..len).unwrap_or(next).to_string()
        } else if let Some(q) = rest.strip_prefix('"') {
            let mut name = String::new();
            let mut chars = q.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => name.extend(chars.next()),
                    '"' => break,
                    c => name.push(c),
                }
            }
            name
        } else {
            rest.split(' ').next().unwrap_or_default().to_string()
        };
        out.push(Listed {
            attributes: attrs.split_whitespace().map(str::to_string).collect(),
            name,
        });
    }
    out
}

/// The names of [`listed`] replies.
pub fn names(resp: &[u8], kind: &str) -> Vec<String> {
    listed(resp, kind).into_iter().map(|l| l.name).collect()
}

/// The attributes `name` is listed with in `resp`; panics when it is not listed.
pub fn attributes_of(resp: &[u8], name: &str) -> Vec<String> {
    listed(resp, "LIST")
        .into_iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| {
            panic!(
                "{name:?} is not listed in:\n{}",
                String::from_utf8_lossy(resp)
            )
        })
        .attributes
}
