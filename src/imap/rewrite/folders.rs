//! The folder rule: the client sees the folder names it expects ([`View::mapping`]), the
//! provider gets its own. First in a session's rules, before [`super::Gateway`].
//!
//! - Commands that name mailboxes (SELECT … NOTIFY SET, see [`command`]) get the provider's
//!   name; LIST, LSUB and XLIST ([`list`]) get patterns that reach what the client's patterns
//!   match among the names the client sees, and the rule remembers the client's patterns.
//! - `* LIST`, `* LSUB`, `* XLIST` and `* STATUS` replies ([`reply`]) get the client's names,
//!   lose the entries the client's patterns do not match and the real mailboxes a client name
//!   shadows ([`View::hidden`]), and gain the role attributes the provider does not send
//!   ([`View::add_attributes`]).
//! - Capability lists gain SPECIAL-USE when the provider lacks it (the rule adds the
//!   attributes and does the selection).
//! - A tagged OK for the client's CREATE, DELETE or RENAME calls `on_change` (the account's
//!   learned folders are stale).
//! - With `sent_copy = "provider"`, an upload to the Sent folder of a message mailgate just
//!   submitted is answered without storing it ([`sent`]), and MULTIAPPEND is not offered.
//!
//! Names are modified UTF-7 on the wire until the server confirms `ENABLE UTF8=ACCEPT` (or
//! IMAP4rev2), UTF-8 after. A mailbox name sent as a literal is held ([`Verdict::Hold`]) and
//! the whole command or response is rewritten with the name as a quoted string. Lines that
//! name no mailbox (FETCH, SEARCH, IDLE, …) are recognised by their first words and pass
//! without an allocation.

mod command;
mod list;
mod reply;
mod sent;

use super::{Line, Peeked, Rewrite, Verdict};
use crate::imap::folders::syntax::push_string;
use crate::imap::folders::{utf7, View};
use crate::imap::framer::announcement;
use list::Pending;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

/// Most commands of one kind the rule waits on at once (LISTs, CREATE/DELETE/RENAME). Real
/// clients pipeline a few; beyond this the oldest is forgotten.
const MAX_PENDING: usize = 128;

/// See the module documentation.
pub struct FolderNames {
    view: Arc<View>,
    on_change: Box<dyn FnMut() + Send>,
    /// The server confirmed UTF8=ACCEPT (or IMAP4rev2): names are UTF-8 on the wire.
    utf8: bool,
    /// Tags of the client's CREATE, DELETE and RENAME commands awaiting their tagged reply.
    changes: VecDeque<Vec<u8>>,
    /// The client's LIST, LSUB and XLIST commands awaiting their tagged reply, oldest first.
    lists: VecDeque<Pending>,
    /// An upload to the Sent folder being peeked at (`sent_copy = "provider"`).
    upload: Option<sent::Upload>,
}

impl FolderNames {
    /// `on_change` is called when the provider confirmed (tagged OK) a CREATE, DELETE or RENAME
    /// the client sent: the account's learned folder list is then stale.
    pub fn new(view: Arc<View>, on_change: Box<dyn FnMut() + Send>) -> FolderNames {
        FolderNames {
            view,
            on_change,
            utf8: false,
            changes: VecDeque::new(),
            lists: VecDeque::new(),
            upload: None,
        }
    }

    fn names(&self) -> Names<'_> {
        Names {
            view: &self.view,
            utf8: self.utf8,
        }
    }

    fn expect_list(&mut self, pending: Pending) {
        if self.lists.len() >= MAX_PENDING {
            self.lists.pop_front();
        }
        self.lists.push_back(pending);
    }

    fn expect_change(&mut self, tag: &[u8]) {
        if self.changes.len() >= MAX_PENDING {
            // Its reply will not be recognised: count the change now.
            self.changes.pop_front();
            (self.on_change)();
        }
        self.changes.push_back(tag.to_vec());
    }

    /// A tagged reply: the command it ends is no longer pending.
    fn completed(&mut self, tag: &[u8], ok: bool) {
        if let Some(i) = self.lists.iter().position(|p| p.tag == tag) {
            self.lists.remove(i);
        }
        if let Some(i) = self.changes.iter().position(|t| t == tag) {
            self.changes.remove(i);
            if ok {
                (self.on_change)();
            }
        }
    }

    /// The verdict on a command the rule looks into.
    fn command_of(&mut self, bytes: &[u8], c: &command::Command) -> Verdict {
        if let command::Kind::List(kind) = c.kind {
            return match list::rewrite(self.names(), bytes, c, kind) {
                list::Outcome::Hold => Verdict::Hold,
                list::Outcome::Pass(pending) => {
                    self.expect_list(pending);
                    Verdict::Pass
                }
                list::Outcome::Replace(bytes, pending) => {
                    self.expect_list(pending);
                    Verdict::Replace(bytes)
                }
            };
        }
        let verdict = command::rewrite(self.names(), bytes, c);
        if c.changes_folders && verdict != Verdict::Hold {
            self.expect_change(bytes.get(c.tag.clone()).unwrap_or_default());
        }
        verdict
    }
}

impl Rewrite for FolderNames {
    fn command(&mut self, line: Line<'_>) -> Verdict {
        // Continuations after a literal, IDLE's DONE, AUTHENTICATE data: never commands.
        if !line.starts {
            return Verdict::Pass;
        }
        let Some(c) = command::classify(line.bytes) else {
            return Verdict::Pass;
        };
        let verdict = same_literal(line.bytes, self.command_of(line.bytes, &c));
        self.watch_upload(line, &c, verdict)
    }

    fn peek(&mut self, _line: Line<'_>, head: &[u8], _length: u64) -> Peeked {
        self.upload_peeked(head)
    }

    fn response(&mut self, line: Line<'_>) -> Verdict {
        // After a literal the line goes on: its bytes are data (a message), not a response.
        if !line.starts {
            return Verdict::Pass;
        }
        let verdict = match line.bytes.first() {
            Some(b'*') => self.untagged(line),
            Some(b'+') | None => Verdict::Pass,
            Some(_) => self.tagged(line),
        };
        same_literal(line.bytes, verdict)
    }
}

/// `verdict`, unless it would change the literal that follows `line` (which the relay passes
/// on as announced): then the line passes. The rule never means to; this keeps the stream
/// framed whatever a peer sends.
fn same_literal(line: &[u8], verdict: Verdict) -> Verdict {
    match &verdict {
        Verdict::Replace(out)
            if announcement(out).map(|l| l.length) != announcement(line).map(|l| l.length) =>
        {
            Verdict::Pass
        }
        _ => verdict,
    }
}

/// How names are read from and written to the wire in the session's current mode.
#[derive(Clone, Copy)]
struct Names<'a> {
    view: &'a View,
    utf8: bool,
}

impl Names<'_> {
    /// A name as sent, in UTF-8; `None` when it is not valid in the current form.
    fn decode<'b>(&self, wire: &'b [u8]) -> Option<Cow<'b, str>> {
        if self.utf8 {
            std::str::from_utf8(wire).ok().map(Cow::Borrowed)
        } else {
            utf7::decode(wire).map(Cow::Owned)
        }
    }

    /// A name in its wire form.
    fn encode(&self, name: &str) -> Vec<u8> {
        if self.utf8 {
            name.as_bytes().to_vec()
        } else {
            utf7::encode(name).into_bytes()
        }
    }

    /// Appends the wire form `wire` as a string (quoted when it can be; `nonsync` for a
    /// literal to the server).
    fn push(&self, out: &mut Vec<u8>, wire: &[u8], nonsync: bool) {
        push_string(out, wire, self.utf8, nonsync);
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod list_tests;

#[cfg(test)]
mod props;
