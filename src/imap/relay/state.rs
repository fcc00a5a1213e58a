//! What the relay remembers of the conversation between two frames: where each direction is
//! in its command or response, what it keeps aside ([`Verdict::Hold`], [`Verdict::Peek`]),
//! what waits for the server's word, and the gateway's own responses waiting to go in.
//!
//! [`Verdict::Hold`]: crate::imap::rewrite::Verdict::Hold
//! [`Verdict::Peek`]: crate::imap::rewrite::Verdict::Peek

use super::aside::{Aside, Held};
use crate::imap::rewrite::Rules;
use crate::metrics::CommandCounters;

/// The `+` the gateway gives a client's synchronizing literal it takes itself.
pub(super) const CONTINUE: &[u8] = b"+ Ready for literal data\r\n";

/// The conversation's state; see the module documentation.
pub(super) struct State {
    /// What the relay changes in the held lines it passes on.
    pub(super) rules: Rules,
    /// Tag of the client command being relayed (set by each line that starts one).
    pub(super) tag: Vec<u8>,
    /// A client command whose synchronizing literal awaits the server's decision.
    pub(super) awaiting: Option<Awaiting>,
    /// Responses of the gateway's own, waiting for a boundary in the server's stream.
    pub(super) local: Vec<u8>,
    /// The next client line continues the current command (after a literal, or IDLE's DONE).
    pub(super) continuation: bool,
    /// The next server line continues the current response (after a literal).
    pub(super) s2c_mid: bool,
    /// The next client line continues the current command after a literal.
    pub(super) c2s_after_literal: bool,
    /// What the relay keeps aside of the client's current command (boxed: an idle session
    /// holds nothing).
    pub(super) c2s_aside: Option<Box<Aside>>,
    /// A server response held for the rules ([`Verdict::Hold`](crate::imap::rewrite::Verdict::Hold)).
    pub(super) s2c_hold: Option<Box<Held>>,
    /// A rule ended the relay ([`Verdict::End`](crate::imap::rewrite::Verdict::End)): once its
    /// answer is written, the upstream connection is handed back.
    pub(super) ending: bool,
    /// The counters of the commands this session relayed.
    pub(super) commands: CommandCounters,
}

/// A client command whose synchronizing literal announcement went upstream: the client's
/// reads stop until the server answers with `+` or the command's tagged response.
pub(super) struct Awaiting {
    /// The command's tag.
    pub(super) tag: Vec<u8>,
    /// For a peeked literal, whose `+` the relay gave: its head, sent when the server's `+`
    /// comes (that `+` is not passed on).
    pub(super) head: Option<Vec<u8>>,
}

/// What framing does after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// Goes on with the next frame.
    Go,
    /// Stops: a literal awaits the server's word.
    Stop,
    /// The client will not send the literal just announced: the framer forgets it.
    Cancel,
}

impl State {
    pub(super) fn new(rules: Rules) -> State {
        State {
            rules,
            tag: Vec::new(),
            awaiting: None,
            local: Vec::new(),
            continuation: false,
            s2c_mid: false,
            c2s_after_literal: false,
            c2s_aside: None,
            s2c_hold: None,
            ending: false,
            commands: CommandCounters::default(),
        }
    }

    /// Waits for the server's word on the current command's synchronizing literal.
    pub(super) fn await_server(&mut self, head: Option<Vec<u8>>) -> Flow {
        self.awaiting = Some(Awaiting {
            tag: self.tag.clone(),
            head,
        });
        Flow::Stop
    }

    /// The server's line `bytes`, which starts a response, as an answer to an awaited
    /// literal: its `+` or the command's tagged response (a refusal; the client sends no
    /// data, or if it already had its `+` from the relay, the rest is discarded). Returns the
    /// head to send upstream now when the line is the server's `+` for a literal whose `+`
    /// the client had from the relay (that line is not for the client), and whether the
    /// client's framer must forget the announced literal.
    pub(super) fn server_word(&mut self, bytes: &[u8]) -> (Option<Vec<u8>>, bool) {
        let Some(a) = &self.awaiting else {
            return (None, false);
        };
        if bytes.first() == Some(&b'+') {
            return (self.awaiting.take().and_then(|a| a.head), false);
        }
        if !(bytes.starts_with(&a.tag) && bytes.get(a.tag.len()) == Some(&b' ')) {
            return (None, false);
        }
        let refused = self.awaiting.take().is_some_and(|a| a.head.is_none());
        if refused {
            // The client will not send the literal and goes on with its next command.
            self.continuation = false;
            self.c2s_after_literal = false;
        } else {
            // The client had its `+` and is sending the data: none of it may reach the server.
            self.c2s_aside = Some(Box::new(Aside::Swallow(None)));
        }
        (None, refused)
    }
}
