//! [`Verdict::Peek`]: a command is kept back until the rule that asked has seen the head of
//! its literal (at most [`PEEK_MAX`] bytes, read from the client after the relay gave a
//! synchronizing literal its `+`). Then either
//! - the command goes on ([`AfterPeek::Forward`]): the line as the rules leave it, the head,
//!   and the rest streamed as usual. The client has had its `+`, so a synchronizing
//!   announcement is sent non-synchronizing when the server takes that size
//!   ([`Rules::nonsync_literal_max`](crate::imap::rewrite::Rules::nonsync_literal_max)), else
//!   as it is: the relay then awaits the server's `+` (not passed on) before the head goes,
//!   and if the server refuses, the client's data is discarded to the command's end;
//! - or it is swallowed ([`AfterPeek::Swallow`]): the rest of the literal and of the command
//!   (a MULTIAPPEND's further literals, each synchronizing one given its `+`) is discarded,
//!   nothing goes upstream, and the client gets the rule's answer when its command has ended.

use super::aside::Aside;
use super::hold::nonsync;
use super::state::{Flow, State, CONTINUE};
use crate::imap::framer::{announcement, Literal};
use crate::imap::rewrite::{AfterPeek, Line, Verdict};

impl State {
    /// While a head is read: how many more bytes of it the framer may take (no further, so
    /// that the rest of the literal stays unread until the rule has decided).
    pub(super) fn peek_room(&self) -> Option<usize> {
        match self.c2s_aside.as_deref() {
            Some(Aside::Peek(p)) => Some(p.want() - p.head.len()),
            _ => None,
        }
    }

    /// Literal data of the command kept back: the head being read, or data discarded.
    pub(super) fn aside_literal(&mut self, out: &mut Vec<u8>, bytes: &[u8]) -> Flow {
        match self.c2s_aside.as_deref_mut() {
            Some(Aside::Hold(_)) => self.held_command_literal(out, bytes),
            Some(Aside::Peek(p)) => {
                p.head.extend_from_slice(bytes);
                if p.head.len() >= p.want() {
                    return self.peeked(out);
                }
            }
            Some(Aside::Swallow(_)) | None => {}
        }
        Flow::Go
    }

    /// The head is read: the rule decides.
    fn peeked(&mut self, out: &mut Vec<u8>) -> Flow {
        let Some(Aside::Peek(p)) = self.c2s_aside.take().map(|a| *a) else {
            return Flow::Go;
        };
        let line = Line {
            bytes: &p.line.bytes,
            literal: Some(p.literal),
            starts: p.line.starts,
        };
        let forward = match self.rules.peek(line, &p.head) {
            AfterPeek::Swallow(answer) => {
                self.c2s_aside = Some(Box::new(Aside::Swallow(Some(answer))));
                return Flow::Go;
            }
            AfterPeek::Forward(
                Verdict::Replace(f) | Verdict::ReplaceAndAnswer { forward: f, .. },
            ) => f,
            AfterPeek::Forward(_) => p.line.bytes,
        };
        let sent = announcement(&forward);
        debug_assert_eq!(
            sent.map(|l| l.length),
            Some(p.literal.length),
            "a rule changed a peeked literal's length"
        );
        // A line that lost its announcement waits for the server's word like a synchronizing
        // one (a tagged response, then the data is discarded): literal data never goes
        // upstream as a command.
        let now = sent.is_some_and(|l| !l.sync || l.length <= self.rules.nonsync_literal_max());
        out.extend_from_slice(&nonsync(&forward, now));
        if now {
            out.extend_from_slice(&p.head);
            return Flow::Go;
        }
        self.await_server(Some(p.head))
    }

    /// A line of a command being swallowed: its end (the answer goes to the client), or a
    /// further literal (a MULTIAPPEND's next message).
    pub(super) fn swallow_line(&mut self, literal: Option<Literal>) -> Flow {
        let Some(Aside::Swallow(answer)) = self.c2s_aside.as_deref_mut() else {
            return Flow::Go;
        };
        match literal {
            Some(l) if !l.sync => Flow::Go,
            // Swallowed by a rule: the client is given the `+` the server would give.
            Some(_) if answer.is_some() => {
                self.local.extend_from_slice(CONTINUE);
                Flow::Go
            }
            // Refused by the server: the client has its tagged response and, waiting for a
            // `+`, learns from it that the command is over.
            Some(_) => {
                self.c2s_aside = None;
                self.continuation = false;
                self.c2s_after_literal = false;
                Flow::Cancel
            }
            None => {
                if let Some(answer) = answer.take() {
                    self.local.extend_from_slice(&answer);
                }
                self.c2s_aside = None;
                Flow::Go
            }
        }
    }
}
