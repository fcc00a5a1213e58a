//! What the relay keeps aside instead of passing on: a command or response held whole for the
//! rules ([`Verdict::Hold`]), a command whose literal's head a rule reads first
//! ([`Verdict::Peek`]), or the rest of a command being discarded. The data only; what the
//! relay does with it is in `hold.rs` and `peek.rs`.
//!
//! [`Verdict::Hold`]: crate::imap::rewrite::Verdict::Hold
//! [`Verdict::Peek`]: crate::imap::rewrite::Verdict::Peek

use super::dir::MAX_HELD;
use crate::imap::framer::Literal;
use crate::imap::rewrite::{Line, PEEK_MAX};

/// What the relay does with the client's current command instead of passing it on.
pub(super) enum Aside {
    /// Collects it for the rules ([`Verdict::Hold`](crate::imap::rewrite::Verdict::Hold)).
    Hold(Held),
    /// Reads the head of its literal for a rule ([`Verdict::Peek`](crate::imap::rewrite::Verdict::Peek)).
    Peek(Peeking),
    /// Discards the rest of it; at its end the client gets the answer, if any (`None`: the
    /// server refused it and said so itself).
    Swallow(Option<Vec<u8>>),
}

/// A command or response kept back for the rules.
pub(super) struct Held {
    /// The whole so far: the first line, each literal's data inline, the lines after them.
    pub(super) bytes: Vec<u8>,
    /// Whether the first line starts a command or response.
    pub(super) starts: bool,
}

impl Held {
    pub(super) fn new(line: &[u8], starts: bool) -> Held {
        Held {
            bytes: line.to_vec(),
            starts,
        }
    }

    /// Takes in more of the whole (literal data, a line) if it fits; `false` if the hold
    /// must end.
    pub(super) fn keep(&mut self, more: &[u8]) -> bool {
        let fits = self.bytes.len() + more.len() <= MAX_HELD;
        if fits {
            self.bytes.extend_from_slice(more);
        }
        fits
    }

    /// The whole as the rules see it, ending with a line that announces `literal`.
    pub(super) fn line(&self, literal: Option<Literal>) -> Line<'_> {
        Line {
            bytes: &self.bytes,
            literal,
            starts: self.starts,
        }
    }
}

/// A command kept back while the head of its literal is read.
pub(super) struct Peeking {
    /// The command as the rules were shown it (several lines when it was held first).
    pub(super) line: Held,
    /// The literal its end announces.
    pub(super) literal: Literal,
    /// The literal's first bytes read so far.
    pub(super) head: Vec<u8>,
}

impl Peeking {
    pub(super) fn new(line: Held, literal: Literal) -> Peeking {
        let mut peeking = Peeking {
            line,
            literal,
            head: Vec::new(),
        };
        peeking.head.reserve_exact(peeking.want());
        peeking
    }

    /// Bytes of the literal the rule is shown: all of it, up to [`PEEK_MAX`].
    pub(super) fn want(&self) -> usize {
        usize::try_from(self.literal.length).map_or(PEEK_MAX, |l| l.min(PEEK_MAX))
    }
}
