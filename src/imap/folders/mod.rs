//! The provider's folders as a client needs them: which mailbox plays which role (Sent,
//! Drafts, Trash, Junk, Archive), learned from the server's LIST replies — the RFC 6154
//! attributes where the server sends them (also in Gmail's legacy XLIST), else the names each
//! role goes by ([`Role::of_name`]). Names are modified UTF-7 on the wire ([`utf7`]) and UTF-8
//! here.
//!
//! The session's folder rule (`crate::imap::rewrite::FolderNames`) works from a [`View`]
//! built at login ([`prepare`]) from the learned list ([`learn`], kept per account in
//! [`cache`]); [`syntax`] reads mailbox arguments and [`pattern`] matches LIST wildcards.

pub mod cache;
pub mod learn;
pub mod mapping;
pub mod pattern;
pub mod prepare;
pub mod syntax;
pub mod utf7;
pub mod view;

pub use crate::mailbox::{Profile, Role};
pub use mapping::Mapping;
pub use view::{SentWatch, View};

use imap_codec::decode::Decoder;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::ResponseCodec;
use std::collections::BTreeMap;

/// One mailbox of a LIST (or XLIST) reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name, decoded from modified UTF-7 (kept as sent when it is not valid modified UTF-7).
    pub name: String,
    /// The name as the server sent it (what commands must carry back).
    pub wire: Vec<u8>,
    /// The hierarchy delimiter, if the server has one.
    pub delimiter: Option<char>,
    /// The attributes as sent (`\HasNoChildren`, `\Sent`, …).
    pub attributes: Vec<String>,
}

impl Entry {
    /// Whether the mailbox can be selected (no `\Noselect` or `\NonExistent`).
    pub fn selectable(&self) -> bool {
        !self.attributes.iter().any(|a| {
            a.eq_ignore_ascii_case("\\Noselect") || a.eq_ignore_ascii_case("\\NonExistent")
        })
    }
}

/// Reads one untagged `* LIST` or `* XLIST` reply (with its CRLF; a name sent as a literal
/// included); `None` for anything else or a reply that does not parse.
pub fn parse_list(reply: &[u8]) -> Option<Entry> {
    const XLIST: &[u8] = b"* XLIST ";
    // XLIST replies have LIST's form: read them as one.
    let relabeled;
    let reply = if reply.len() > XLIST.len() && reply[..XLIST.len()].eq_ignore_ascii_case(XLIST) {
        relabeled = [b"* LIST ", &reply[XLIST.len()..]].concat();
        &relabeled[..]
    } else {
        reply
    };
    let (_, response) = ResponseCodec::default().decode(reply).ok()?;
    let Response::Data(Data::List {
        items,
        delimiter,
        mailbox,
    }) = response
    else {
        return None;
    };
    let wire = match &mailbox {
        Mailbox::Inbox => b"INBOX".to_vec(),
        Mailbox::Other(other) => other.as_ref().to_vec(),
    };
    Some(Entry {
        name: utf7::decode(&wire).unwrap_or_else(|| String::from_utf8_lossy(&wire).into_owned()),
        wire,
        delimiter: delimiter.map(|d| d.inner()),
        attributes: items.iter().map(ToString::to_string).collect(),
    })
}

/// Which mailbox plays each role, and how that was learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folders {
    /// Role → the mailbox and whether the server marked it (`true`) or its name was
    /// recognized (`false`).
    pub roles: BTreeMap<Role, (Entry, bool)>,
}

impl Folders {
    /// The roles of `entries` (a whole LIST reply, in the server's order): a mailbox the server
    /// marks with a role's attribute wins; roles no mailbox is marked with go to the first
    /// selectable mailbox whose name is known for them. A mailbox the server marked is not also
    /// taken for a role by its name.
    pub fn learn(entries: &[Entry]) -> Folders {
        let mut roles = BTreeMap::new();
        for e in entries.iter().filter(|e| e.selectable()) {
            for role in e.attributes.iter().filter_map(|a| Role::from_attribute(a)) {
                roles.entry(role).or_insert_with(|| (e.clone(), true));
            }
        }
        for e in entries.iter().filter(|e| e.selectable()) {
            if roles.values().any(|(taken, _)| taken.wire == e.wire) {
                continue;
            }
            if let Some(role) = Role::of_name(&e.name, e.delimiter) {
                roles.entry(role).or_insert_with(|| (e.clone(), false));
            }
        }
        Folders { roles }
    }

    /// The mailbox that plays `role`, if any.
    pub fn get(&self, role: Role) -> Option<&Entry> {
        self.roles.get(&role).map(|(e, _)| e)
    }
}

#[cfg(test)]
mod tests;
