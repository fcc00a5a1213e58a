//! `sent_copy = "provider"`: the provider files each message submitted over SMTP in Sent, so a
//! client's upload of that message to the Sent folder would store it twice. An APPEND to the
//! watched Sent folder is peeked at ([`Verdict::Peek`]): when the head of its message carries
//! a Message-ID mailgate submitted for this account in the last minutes
//! ([`crate::mailbox::submitted`]), the upload is answered OK and not stored; any other goes on.

use super::command::Command;
use super::FolderNames;
use crate::imap::folders::syntax::{Kind as TokenKind, Scanner};
use crate::imap::rewrite::{Line, Peeked, Verdict};
use crate::mailbox::message_id::MessageIdScan;
use crate::mailbox::submitted;
use crate::metrics::{self, SentCopyAction};
use tracing::info;

/// An APPEND to the Sent folder whose message is being peeked at.
pub(super) struct Upload {
    /// The command's tag.
    tag: Vec<u8>,
    /// The line as the rule rewrote it (mailbox name mapped), if it did.
    replaced: Option<Vec<u8>>,
}

impl FolderNames {
    /// `verdict` on `line`, or [`Verdict::Peek`] when the line is an APPEND of one message to
    /// the watched Sent folder (its data the literal announced at the line's end, outside any
    /// parentheses: CATENATE parts are not peeked at).
    pub(super) fn watch_upload(
        &mut self,
        line: Line<'_>,
        c: &Command,
        verdict: Verdict,
    ) -> Verdict {
        let Some(watch) = &self.view.sent_watch else {
            return verdict;
        };
        let name = line.bytes.get(c.name.clone()).unwrap_or_default();
        if !name.eq_ignore_ascii_case(b"APPEND") || line.literal.is_none_or(|l| l.length == 0) {
            return verdict;
        }
        let bytes = match &verdict {
            Verdict::Pass => line.bytes,
            Verdict::Replace(b) => b.as_slice(),
            _ => return verdict,
        };
        let mut s = Scanner::new(bytes, c.name.end);
        let Ok(Some(first)) = s.next_token() else {
            return verdict;
        };
        let names = self.names();
        let to_sent = first
            .string(bytes)
            .and_then(|wire| names.decode(&wire).map(|n| n == watch.sent))
            .unwrap_or(false);
        if !to_sent || !message_follows(&mut s) {
            return verdict;
        }
        self.upload = Some(Upload {
            tag: line.bytes.get(c.tag.clone()).unwrap_or_default().to_vec(),
            replaced: match verdict {
                Verdict::Replace(b) => Some(b),
                _ => None,
            },
        });
        Verdict::Peek
    }

    /// The decision on a peeked upload: `head` is the start of its message.
    pub(super) fn upload_peeked(&mut self, head: &[u8]) -> Peeked {
        let (Some(upload), Some(watch)) = (self.upload.take(), &self.view.sent_watch) else {
            return Peeked::Forward(None);
        };
        let mut scan = MessageIdScan::new();
        scan.feed(head);
        match scan.finish() {
            Some(id) if submitted::claim(&watch.account, &id) => {
                info!(message_id = %id, folder = %watch.sent, action = "duplicate_dropped", "sent copy: the client's upload of a message the provider filed itself was not stored again");
                metrics::sent_copy(SentCopyAction::DuplicateDropped);
                let mut answer = upload.tag;
                answer.extend_from_slice(
                    b" OK APPEND completed (the provider filed this message when it was sent).\r\n",
                );
                Peeked::Swallow(answer)
            }
            _ => Peeked::Forward(upload.replaced),
        }
    }
}

/// Whether the rest of an APPEND's arguments is flags and a date (optional) and then the
/// message, announced at the end of the line outside any parentheses.
fn message_follows(s: &mut Scanner<'_>) -> bool {
    let mut depth = 0usize;
    loop {
        match s.next_token() {
            Ok(Some(t)) => match t.kind {
                TokenKind::Open => depth += 1,
                TokenKind::Close => match depth.checked_sub(1) {
                    Some(d) => depth = d,
                    None => return false,
                },
                TokenKind::Trailing { .. } => return depth == 0,
                _ => {}
            },
            Ok(None) | Err(_) => return false,
        }
    }
}
