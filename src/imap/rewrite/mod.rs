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
//! Two exceptions, asked for line by line:
//! - [`Verdict::Hold`]: a short literal (a mailbox name, at most [`HOLD_MAX`] bytes) is
//!   collected with the rest of its command or response and the whole is shown again, the
//!   literal inline;
//! - [`Verdict::Peek`]: the first [`PEEK_MAX`] bytes of a command's literal (an APPEND's
//!   message headers) are shown to the rule that asked ([`Rewrite::peek`]), which lets the
//!   command go on or swallows it with an answer of its own.

pub mod folders;
pub mod gateway;
pub mod track;

pub use folders::FolderNames;
pub use gateway::{filter_capabilities, hidden_capability, nonsync_limit, Gateway};
pub use track::{Ending, Track};

use crate::imap::framer::{self, Literal};

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
    /// Commands only, and only a line that announces no literal: as [`Verdict::Answer`], and
    /// the relay then ends: once these bytes are written it reads and forwards nothing more
    /// and hands the upstream connection back ([`End::HandedBack`]) — a LOGOUT the gateway
    /// answers itself to keep the connection (`imap::warm`).
    ///
    /// [`End::HandedBack`]: crate::imap::relay::End::HandedBack
    End(Vec<u8>),
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
    /// (`… {5}\r\nDraft …\r\n`, `literal` the announcement at its end, `starts` the first
    /// line's); a rule may hold again for a later literal of the same whole. Only literals of at most [`HOLD_MAX`] bytes are held (for a longer one, or a
    /// line announcing none, `Hold` counts as [`Verdict::Pass`] of that rule), and a whole
    /// only while it fits the relay's hold limit (64 KiB); otherwise the relay passes what it
    /// holds unchanged and streams the rest as usual. Inline synchronizing announcements the
    /// rules leave in a held command are sent upstream as non-synchronizing ones (the client
    /// already has its `+`), so a rule should replace a held mailbox literal by a quoted
    /// string.
    Hold,
    /// Commands only, on a line that starts a command and announces a literal of at least
    /// one byte (else it counts as [`Verdict::Pass`] of that rule): the rule must see the
    /// literal's first bytes before the command may go on (the headers of an APPENDed
    /// message). The relay keeps the line back, gives a synchronizing literal its `+`
    /// itself, reads up to [`PEEK_MAX`] bytes of the data and calls [`Rewrite::peek`] of
    /// this rule (no other), which decides ([`Peeked`]). The rules after it see the line
    /// only if it goes on.
    Peek,
}

/// Longest literal a rule may ask the relay to hold ([`Verdict::Hold`]): a mailbox name is
/// never longer (servers refuse names of more than a few hundred bytes).
pub const HOLD_MAX: u64 = 4096;

/// Most bytes of a literal a rule is shown after [`Verdict::Peek`] (all of a shorter one):
/// a message's header section fits, and it is what the relay holds of a peeked literal.
pub const PEEK_MAX: usize = 64 * 1024;

/// What a rule decides once it has seen the head of a literal ([`Verdict::Peek`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Peeked {
    /// The command goes on: the line (as the rules before this one left it, or as this rule
    /// replaces it — announcing the same literal —, then shown to the rules after it, whose
    /// answers are dropped: the client has had its `+`), the head, the rest of the literal
    /// and of the command.
    Forward(Option<Vec<u8>>),
    /// The command goes no further: the relay discards the rest of the literal and of the
    /// command (a MULTIAPPEND's further messages too) and answers the client with these
    /// bytes (between two server responses).
    Swallow(Vec<u8>),
}

/// A rewrite rule: sees each held line in one direction or both.
pub trait Rewrite: Send {
    /// A client command line on its way to the server.
    fn command(&mut self, line: Line<'_>) -> Verdict {
        let _ = line;
        Verdict::Pass
    }

    /// A server response line on its way to the client. Only [`Verdict::Pass`],
    /// [`Verdict::Replace`] and [`Verdict::Hold`] mean something here (there is nobody to
    /// answer).
    fn response(&mut self, line: Line<'_>) -> Verdict {
        let _ = line;
        Verdict::Pass
    }

    /// After this rule's [`Verdict::Peek`] on `line`: `head` is the first bytes (at most
    /// [`PEEK_MAX`]) of the literal of `length` bytes the line announces.
    fn peek(&mut self, line: Line<'_>, head: &[u8], length: u64) -> Peeked {
        let _ = (line, head, length);
        Peeked::Forward(None)
    }

    /// A client command went upstream without this rule seeing all of its lines: one longer
    /// than the relay's hold limit (passed on in pieces), or a held command given up. A rule
    /// that follows the conversation can no longer know what the server was asked.
    fn unseen(&mut self) {}
}

/// What becomes of a peeked command ([`Rules::peek`]).
#[derive(Debug, PartialEq, Eq)]
pub enum AfterPeek {
    /// It goes on as this verdict of the rules says (never `Hold`, `Peek` or `Answer`; an
    /// answer of `ReplaceAndAnswer` is the relay's to drop: the client has had its `+`).
    Forward(Verdict),
    /// It is swallowed, and the client gets these bytes.
    Swallow(Vec<u8>),
}

/// The rule that asked to peek, and the line as the rules before it left it.
struct Peeking {
    index: usize,
    forward: Option<Vec<u8>>,
}

/// The rules of one session, applied in order: each sees the line as the rules before it
/// left it; an [`Verdict::Answer`] ends the list (the line goes no further), and so do
/// [`Verdict::Hold`] and [`Verdict::Peek`] (the line comes back later).
pub struct Rules {
    rules: Vec<Box<dyn Rewrite>>,
    /// See [`Rules::with_nonsync_literal_max`].
    nonsync_literal_max: u64,
    /// Set by a [`Verdict::Peek`] until [`Rules::peek`].
    peeking: Option<Box<Peeking>>,
    /// After the rules, every line as it goes on: what is in flight upstream, and the
    /// client's LOGOUT (see [`track`]). Not one of `rules`: it sees what the others decided,
    /// and it is every session's, so it is kept inline.
    track: Track,
}

impl Rules {
    /// These rules, in this order (and a [`Track`] for a server of no capabilities: see
    /// [`Rules::with_track`]).
    pub fn new(rules: Vec<Box<dyn Rewrite>>) -> Rules {
        Rules {
            rules,
            nonsync_literal_max: 0,
            peeking: None,
            track: Track::new(&[]),
        }
    }

    /// The session's [`Track`] (made for its server's capabilities).
    pub fn with_track(mut self, track: Track) -> Rules {
        self.track = track;
        self
    }

    /// How the session's upstream connection ended, as the [`Track`] saw it.
    pub fn ending(&self) -> Ending {
        self.track.ending()
    }

    /// Shows the track a command line as it goes upstream after `verdict`; its own verdict
    /// (the LOGOUT it answers) counts only for a line the rules passed unchanged.
    fn follow_command(&mut self, line: Line<'_>, verdict: Verdict) -> Verdict {
        match verdict {
            Verdict::Pass => match self.track.command(line) {
                Verdict::End(answer) => Verdict::End(answer),
                _ => Verdict::Pass,
            },
            Verdict::Replace(ref f) | Verdict::ReplaceAndAnswer { forward: ref f, .. } => {
                self.track.command(Line { bytes: f, ..line });
                verdict
            }
            // Nothing went upstream (yet).
            v => v,
        }
    }

    /// The server takes non-synchronizing literals up to this size ([`nonsync_limit`]): a
    /// peeked synchronizing literal (whose `+` the relay gave) goes on as a non-synchronizing
    /// one up to it, and waits for the server's `+` above it (default 0: always waits).
    pub fn with_nonsync_literal_max(mut self, max: u64) -> Rules {
        self.nonsync_literal_max = max;
        self
    }

    /// See [`Rules::with_nonsync_literal_max`].
    pub fn nonsync_literal_max(&self) -> u64 {
        self.nonsync_literal_max
    }

    /// The verdict of all rules on a command line.
    pub fn command(&mut self, line: Line<'_>) -> Verdict {
        let peek = line.starts && line.literal.is_some_and(|l| l.length > 0);
        let can = Can {
            hold: holdable(line),
            peek,
        };
        let verdict = self.apply(line, can, 0, None, |r, l| r.command(l));
        self.follow_command(line, verdict)
    }

    /// A client command went upstream unseen by the rules (see [`Rewrite::unseen`]).
    pub fn unseen(&mut self) {
        for rule in &mut self.rules {
            rule.unseen();
        }
        self.track.unseen();
    }

    /// The verdict of all rules on a response line.
    pub fn response(&mut self, line: Line<'_>) -> Verdict {
        let can = Can {
            hold: holdable(line),
            peek: false,
        };
        let verdict = self.apply(line, can, 0, None, |r, l| r.response(l));
        match &verdict {
            Verdict::Pass => {
                self.track.response(line);
            }
            Verdict::Replace(f) => {
                self.track.response(Line { bytes: f, ..line });
            }
            _ => {}
        }
        verdict
    }

    /// After [`Verdict::Peek`] on `line` (as it was shown to the rules): shows `head` to the
    /// rule that asked, and if it lets the command go on, the line to the rules after it.
    pub fn peek(&mut self, line: Line<'_>, head: &[u8]) -> AfterPeek {
        let Some(p) = self.peeking.take() else {
            return AfterPeek::Forward(Verdict::Pass);
        };
        let length = line.literal.map_or(0, |l| l.length);
        let bytes = p.forward.as_deref().unwrap_or(line.bytes);
        let peeked = match self.rules.get_mut(p.index) {
            Some(rule) => rule.peek(Line { bytes, ..line }, head, length),
            None => Peeked::Forward(None),
        };
        match peeked {
            Peeked::Swallow(answer) => AfterPeek::Swallow(answer),
            Peeked::Forward(replaced) => {
                let can = Can {
                    hold: false,
                    peek: false,
                };
                // A replacement must announce the literal being peeked at, as it was.
                let replaced = replaced.filter(|r| {
                    framer::announcement(r).map(|l| l.length) == line.literal.map(|l| l.length)
                });
                let forward = replaced.or(p.forward);
                let verdict = self.apply(line, can, p.index + 1, forward, |r, l| r.command(l));
                // A peeked line announces a literal: never a LOGOUT the track would answer.
                AfterPeek::Forward(self.follow_command(line, verdict))
            }
        }
    }

    /// The rules from `first` on, each seeing the line as left by those before (`forward`:
    /// as the rules before `first` left it).
    fn apply(
        &mut self,
        line: Line<'_>,
        can: Can,
        first: usize,
        mut forward: Option<Vec<u8>>,
        mut rule: impl FnMut(&mut dyn Rewrite, Line<'_>) -> Verdict,
    ) -> Verdict {
        // The common case — one rule — needs no bookkeeping.
        if let ([only], 0) = (&mut self.rules[..], first) {
            return match rule(only.as_mut(), line) {
                Verdict::Hold if !can.hold => Verdict::Pass,
                Verdict::Peek if !can.peek => Verdict::Pass,
                Verdict::Peek => {
                    self.peeking = Some(Box::new(Peeking {
                        index: 0,
                        forward: None,
                    }));
                    Verdict::Peek
                }
                v => v,
            };
        }
        let mut answer: Option<Vec<u8>> = None;
        for (index, r) in self.rules.iter_mut().enumerate().skip(first) {
            let bytes = forward.as_deref().unwrap_or(line.bytes);
            match rule(r.as_mut(), Line { bytes, ..line }) {
                Verdict::Pass => {}
                // Held lines go no further now; the whole comes back to every rule.
                Verdict::Hold if can.hold => return Verdict::Hold,
                // Answers of the rules before are dropped: a line announcing a literal has
                // nothing to answer but its `+`, which the relay gives.
                Verdict::Peek if can.peek => {
                    self.peeking = Some(Box::new(Peeking { index, forward }));
                    return Verdict::Peek;
                }
                Verdict::Hold | Verdict::Peek => {}
                Verdict::Replace(b) => forward = Some(b),
                Verdict::Answer(mut b) => {
                    if let Some(mut a) = answer {
                        a.append(&mut b);
                        b = a;
                    }
                    return Verdict::Answer(b);
                }
                Verdict::End(mut b) => {
                    if let Some(mut a) = answer {
                        a.append(&mut b);
                        b = a;
                    }
                    return Verdict::End(b);
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

/// Which of [`Verdict::Hold`] and [`Verdict::Peek`] a line allows.
#[derive(Clone, Copy)]
struct Can {
    hold: bool,
    peek: bool,
}

/// Whether a line's literal may be held ([`Verdict::Hold`]).
fn holdable(line: Line<'_>) -> bool {
    line.literal.is_some_and(|l| l.length <= HOLD_MAX)
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

    /// Says the same to every command and response; lets a peeked `{5}` literal holding
    /// `hello` go on and swallows anything else, answering with the line it was shown.
    struct Asks(Verdict);
    impl Rewrite for Asks {
        fn command(&mut self, _: Line<'_>) -> Verdict {
            again(&self.0)
        }
        fn response(&mut self, _: Line<'_>) -> Verdict {
            again(&self.0)
        }
        fn peek(&mut self, line: Line<'_>, head: &[u8], length: u64) -> Peeked {
            match line.bytes.ends_with(b" {5}\r\n") && head == b"hello" && length == 5 {
                true => Peeked::Forward(None),
                false => Peeked::Swallow(line.bytes.to_vec()),
            }
        }
    }

    fn again(v: &Verdict) -> Verdict {
        match v {
            Verdict::Hold => Verdict::Hold,
            Verdict::Peek => Verdict::Peek,
            _ => Verdict::Pass,
        }
    }

    /// Only the rule that asked is shown the head; the line it is shown is as the rules
    /// before it left it; when it goes on, the rules after it see it.
    #[test]
    fn a_peek_goes_to_the_rule_that_asked() {
        let mut rules = Rules::new(vec![
            Box::new(Upper),
            Box::new(Asks(Verdict::Peek)),
            Box::new(Gateway::new(9000)),
        ])
        .with_nonsync_literal_max(9000);
        assert_eq!(rules.nonsync_literal_max(), 9000);
        let append = line(b"a APPEND inbox {5}\r\n");
        // Upper only rewrites lines ending in "inbox": here it passes.
        assert_eq!(rules.command(append), Verdict::Peek);
        assert_eq!(
            rules.peek(append, b"hello"),
            AfterPeek::Forward(Verdict::ReplaceAndAnswer {
                forward: b"a APPEND inbox {5+}\r\n".to_vec(),
                answer: b"+ Ready for literal data\r\n".to_vec(),
            })
        );
        // Nothing asked to peek: nothing to decide.
        assert_eq!(
            rules.peek(append, b"hello"),
            AfterPeek::Forward(Verdict::Pass)
        );
        assert_eq!(rules.command(append), Verdict::Peek);
        assert_eq!(
            rules.peek(append, b"howdy"),
            AfterPeek::Swallow(b"a APPEND inbox {5}\r\n".to_vec())
        );
        // Not on a line without a literal, an empty literal, a line not starting a command,
        // nor a response.
        assert_eq!(rules.command(line(b"a NOOP\r\n")), Verdict::Pass);
        assert!(matches!(
            rules.command(line(b"a APPEND x {0}\r\n")),
            Verdict::ReplaceAndAnswer { .. }
        ));
        let rest = Line {
            starts: false,
            ..line(b" {5}\r\n")
        };
        assert!(matches!(
            rules.command(rest),
            Verdict::ReplaceAndAnswer { .. }
        ));
        assert_eq!(
            rules.response(line(b"* 1 FETCH (BODY[] {5}\r\n")),
            Verdict::Pass
        );
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
        // A literal too long to hold: the rule's Hold counts as a pass, the next rule acts.
        let mut rules = Rules::new(vec![
            Box::new(Asks(Verdict::Hold)),
            Box::new(Gateway::new(9000)),
        ]);
        assert!(matches!(
            rules.command(line(b"a SELECT {5000}\r\n")),
            Verdict::ReplaceAndAnswer { .. }
        ));
        assert_eq!(rules.command(line(b"a SELECT {50}\r\n")), Verdict::Hold);
        assert_eq!(
            rules.response(line(b"* LIST () \"/\" {5}\r\n")),
            Verdict::Hold
        );
        assert_eq!(
            command_name(b"a1 UID FETCH 1 x\r\n"),
            (&b"a1"[..], &b"UID"[..])
        );
    }
}
