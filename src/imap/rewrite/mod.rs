//! The relay's one place for changing what passes: rewrite rules.
//!
//! The relay shows every line it holds whole — each client command line on its way to the
//! server, each server response line on its way to the client — to a list of [`Rewrite`]
//! rules, and each rule passes the line, replaces it, or (for a command) answers it itself.
//! [`gateway::Gateway`] is what mailgate itself must change (capability lists, STARTTLS and
//! COMPRESS, synchronizing literals); a new rule is a new implementation added to the list
//! the session builds ([`Rules::new`]).
//!
//! What rules never see: literal data (message bodies, spliced or buffered, pass as they are)
//! and lines longer than the relay's hold limit (64 KiB), which are passed on in pieces as they
//! arrive. A line no rule changes is forwarded from the read buffer as it is, without a copy.

pub mod folders;
pub mod gateway;

pub use folders::FolderNames;
pub use gateway::{filter_capabilities, hidden_capability, nonsync_limit, Gateway};

use crate::imap::framer::Literal;

/// One held line, as a rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// The whole line, with its line ending.
    pub bytes: &'a [u8],
    /// The literal it announces at its end, if any (its data follows the line).
    pub literal: Option<Literal>,
    /// Whether the line begins a command or response; `false` when it continues one after a
    /// literal (its bytes are then the rest of that command or response, not a new one) or,
    /// for client lines, when it answers a continuation request (IDLE's DONE, AUTHENTICATE
    /// responses).
    pub starts: bool,
}

/// What happens to a line.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The line goes on unchanged.
    Pass,
    /// These bytes go on in the line's place. They must announce the same literal length as
    /// the line (the data that follows is passed on as announced); a synchronizing
    /// announcement may become a non-synchronizing one.
    Replace(Vec<u8>),
    /// Commands only, and only a line that announces no literal: the line goes no further and
    /// mailgate answers the client with these bytes (between two server responses).
    Answer(Vec<u8>),
    /// Commands only: `forward` goes on in the line's place (as with [`Verdict::Replace`])
    /// and the client is also sent `answer` — e.g. the `+` for a literal whose announcement
    /// was made non-synchronizing.
    ReplaceAndAnswer {
        /// What the server gets.
        forward: Vec<u8>,
        /// What the client gets from mailgate.
        answer: Vec<u8>,
    },
    /// The line announces a literal the rule must read (a mailbox name sent as a literal):
    /// the relay keeps the line back, takes the literal's data (giving a client's
    /// synchronizing literal its `+` itself) and the rest of the command or response, and
    /// shows the whole to the rules again as one line whose bytes hold the literal inline
    /// (`… {5}\r\nDraft …\r\n`); a rule may hold again for a later literal of the same
    /// whole. Only literals of at most [`HOLD_MAX`] bytes are held, and a whole only while it
    /// fits the relay's hold limit; otherwise the relay passes what it holds unchanged and
    /// streams the rest as usual. Inline synchronizing announcements the rules leave in a
    /// held command are sent upstream as non-synchronizing ones (the client already has its
    /// `+`), so a rule should replace a held mailbox literal by a quoted string.
    Hold,
}

/// Longest literal a rule may ask the relay to hold ([`Verdict::Hold`]): a mailbox name is
/// never longer (servers refuse names of more than a few hundred bytes).
pub const HOLD_MAX: u64 = 4096;

/// A rewrite rule: sees each held line in one direction or both.
pub trait Rewrite: Send {
    /// A client command line on its way to the server.
    fn command(&mut self, line: Line<'_>) -> Verdict {
        let _ = line;
        Verdict::Pass
    }

    /// A server response line on its way to the client. Only [`Verdict::Pass`] and
    /// [`Verdict::Replace`] mean something here (there is nobody to answer).
    fn response(&mut self, line: Line<'_>) -> Verdict {
        let _ = line;
        Verdict::Pass
    }
}

/// The rules of one session, applied in order: each sees the line as the rules before it
/// left it; an [`Verdict::Answer`] ends the list (the line goes no further).
pub struct Rules(Vec<Box<dyn Rewrite>>);

impl Rules {
    /// These rules, in this order.
    pub fn new(rules: Vec<Box<dyn Rewrite>>) -> Rules {
        Rules(rules)
    }

    /// The verdict of all rules on a command line.
    pub fn command(&mut self, line: Line<'_>) -> Verdict {
        self.apply(line, |r, l| r.command(l))
    }

    /// The verdict of all rules on a response line.
    pub fn response(&mut self, line: Line<'_>) -> Verdict {
        self.apply(line, |r, l| r.response(l))
    }

    fn apply(
        &mut self,
        line: Line<'_>,
        mut rule: impl FnMut(&mut dyn Rewrite, Line<'_>) -> Verdict,
    ) -> Verdict {
        // The common case — one rule — needs no bookkeeping.
        if let [only] = &mut self.0[..] {
            return rule(only.as_mut(), line);
        }
        let mut forward: Option<Vec<u8>> = None;
        let mut answer: Option<Vec<u8>> = None;
        for r in &mut self.0 {
            let bytes = forward.as_deref().unwrap_or(line.bytes);
            match rule(r.as_mut(), Line { bytes, ..line }) {
                Verdict::Pass => {}
                // Held lines go no further now; the whole comes back to every rule.
                Verdict::Hold => return Verdict::Hold,
                Verdict::Replace(b) => forward = Some(b),
                Verdict::Answer(mut b) => {
                    if let Some(mut a) = answer {
                        a.append(&mut b);
                        b = a;
                    }
                    return Verdict::Answer(b);
                }
                Verdict::ReplaceAndAnswer {
                    forward: f,
                    answer: mut a,
                } => {
                    forward = Some(f);
                    answer.get_or_insert_with(Vec::new).append(&mut a);
                }
            }
        }
        match (forward, answer) {
            (None, None) => Verdict::Pass,
            (Some(f), None) => Verdict::Replace(f),
            (f, Some(answer)) => Verdict::ReplaceAndAnswer {
                forward: f.unwrap_or_else(|| line.bytes.to_vec()),
                answer,
            },
        }
    }
}

/// Tag and command name of a client line (the name upper-cased is the caller's job).
pub fn command_name(line: &[u8]) -> (&[u8], &[u8]) {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.splitn(3, |&b| b == b' ');
    let tag = parts.next().unwrap_or_default();
    let name = parts.next().unwrap_or_default();
    (tag, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upper-cases a command's mailbox name "inbox", and answers `x NOPE`.
    struct Upper;
    impl Rewrite for Upper {
        fn command(&mut self, line: Line<'_>) -> Verdict {
            if line.bytes.starts_with(b"x NOPE") {
                return Verdict::Answer(b"x NO nope\r\n".to_vec());
            }
            match line.bytes.strip_suffix(b"inbox\r\n") {
                Some(head) => Verdict::Replace([head, b"INBOX\r\n"].concat()),
                None => Verdict::Pass,
            }
        }
    }

    fn line(bytes: &[u8]) -> Line<'_> {
        Line {
            bytes,
            literal: crate::imap::framer::announcement(bytes),
            starts: true,
        }
    }

    #[test]
    fn rules_compose_in_order() {
        let mut rules = Rules::new(vec![Box::new(Upper), Box::new(Gateway::new(1 << 20))]);
        assert_eq!(rules.command(line(b"a NOOP\r\n")), Verdict::Pass);
        assert_eq!(
            rules.command(line(b"a SELECT inbox\r\n")),
            Verdict::Replace(b"a SELECT INBOX\r\n".to_vec())
        );
        assert_eq!(
            rules.command(line(b"x NOPE\r\n")),
            Verdict::Answer(b"x NO nope\r\n".to_vec())
        );
        assert_eq!(
            rules.command(line(b"a APPEND inbox {3}\r\n")),
            Verdict::ReplaceAndAnswer {
                forward: b"a APPEND inbox {3+}\r\n".to_vec(),
                answer: b"+ Ready for literal data\r\n".to_vec(),
            }
        );
        assert_eq!(
            rules.response(line(b"* CAPABILITY IMAP4rev1 STARTTLS\r\n")),
            Verdict::Replace(b"* CAPABILITY IMAP4rev1\r\n".to_vec())
        );
        assert_eq!(
            command_name(b"a1 UID FETCH 1 x\r\n"),
            (&b"a1"[..], &b"UID"[..])
        );
    }
}
