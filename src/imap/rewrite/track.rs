//! What the gateway must know of a session's upstream connection when the client logs out:
//! the last of the session's rules, which follows every command that goes upstream and every
//! tagged answer.
//!
//! When no command is in flight at LOGOUT (an IDLE is in flight until its tagged answer), the
//! rule answers the client itself (`* BYE`, tagged `OK`) and the relay hands the connection
//! back ([`Verdict::End`]): the client is done one round trip to the provider sooner, and the
//! gateway keeps the connection (warm sessions) or logs it out in the background. Otherwise
//! — commands in flight, or one the rule did not see whole — the LOGOUT goes upstream as
//! it came.
//!
//! The connection may be kept only if it is also clean, so that the next session could not
//! tell it from a fresh login:
//! - every command was one that leaves no state in the session beyond the selected mailbox
//!   (the list below); no ENABLE, no CONDSTORE/QRESYNC-enabling parameter (RFC 7162 3.1: they
//!   turn CONDSTORE on for the rest of the session), no COMPRESS (the gateway refuses it
//!   anyway);
//! - no `BYE` from the server, no SELECT that ended in `BAD` (the selected state is then
//!   unknown);
//! - a selected mailbox only when the server can UNSELECT (never CLOSE: it expunges).
//!
//! The \Recent flags are the server's: a message some session has seen is no longer recent
//! for any later session, on a new connection as on a kept one.

use super::{command_name, Line, Rewrite, Verdict};

/// Commands that leave nothing behind in the session but the selected mailbox, which the
/// hand-back undoes (IDLE is over once answered; SEARCHRES's `$` and CONTEXT's updates end
/// with the mailbox).
const STATELESS: &[&[u8]] = &[
    b"CAPABILITY",
    b"NOOP",
    b"CHECK",
    b"SELECT",
    b"EXAMINE",
    b"CREATE",
    b"DELETE",
    b"RENAME",
    b"SUBSCRIBE",
    b"UNSUBSCRIBE",
    b"LIST",
    b"LSUB",
    b"XLIST",
    b"STATUS",
    b"APPEND",
    b"CLOSE",
    b"UNSELECT",
    b"EXPUNGE",
    b"SEARCH",
    b"FETCH",
    b"STORE",
    b"COPY",
    b"MOVE",
    b"SORT",
    b"THREAD",
    b"IDLE",
    b"NAMESPACE",
    b"ID",
    b"GETQUOTA",
    b"GETQUOTAROOT",
    b"GETACL",
    b"MYRIGHTS",
    b"LISTRIGHTS",
    b"GETMETADATA",
    b"REPLACE",
];

/// The sub-commands of UID that may follow.
const UID_STATELESS: &[&[u8]] = &[
    b"FETCH", b"STORE", b"COPY", b"MOVE", b"SEARCH", b"EXPUNGE", b"SORT", b"THREAD", b"REPLACE",
];

/// Words that make a command CONDSTORE-enabling (RFC 7162 3.1), or belong to QRESYNC.
const ENABLING: &[&[u8]] = &[
    b"MODSEQ",
    b"CHANGEDSINCE",
    b"CONDSTORE",
    b"QRESYNC",
    b"VANISHED",
];

/// Commands in flight the rule follows; a client that pipelines more is not worth the count.
const MAX_IN_FLIGHT: usize = 64;

/// Longest tag the rule keeps (a client's tags are a few bytes; the line limit is 64 KiB).
const MAX_TAG: usize = 64;

/// How the session's upstream connection ended, as the rule saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Still relaying (or ended some other way: client gone, time-out, upstream closed).
    Open,
    /// The rule answered the client's LOGOUT and ended the relay; no command was in flight.
    LoggedOut {
        /// A mailbox is selected: UNSELECT before the connection is kept.
        selected: bool,
        /// Why the connection may not be kept, if it may not.
        unclean: Option<&'static str>,
    },
    /// The client's LOGOUT went upstream: the rule could not be sure nothing was in flight.
    Passed(&'static str),
}

/// What a command does to the selected state when it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Select,
    Deselect,
    Idle,
    Other,
}

struct Pending {
    tag: Vec<u8>,
    kind: Kind,
}

/// The rule; see the module documentation.
pub struct Track {
    in_flight: Vec<Pending>,
    selected: bool,
    /// Why the connection can no longer be kept, once known.
    unclean: Option<&'static str>,
    /// Why `in_flight` can no longer be trusted, once known.
    blind: Option<&'static str>,
    /// The last client line announced a literal: the next line continues its command.
    rest_due: bool,
    can_unselect: bool,
    /// What the client's LOGOUT did, once it came.
    logout: Logout,
}

/// What the client's LOGOUT did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logout {
    NotYet,
    /// Answered here; a mailbox was selected, or not.
    Answered {
        selected: bool,
    },
    /// Sent upstream, for this reason.
    Passed(&'static str),
}

impl Track {
    /// The rule for a connection whose server announced `capabilities` after login.
    pub fn new(capabilities: &[String]) -> Track {
        let can_unselect = capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case("UNSELECT") || c.eq_ignore_ascii_case("IMAP4rev2"));
        Track {
            in_flight: Vec::new(),
            selected: false,
            unclean: None,
            blind: None,
            rest_due: false,
            can_unselect,
            logout: Logout::NotYet,
        }
    }

    /// How the session's upstream connection ended, as the rule saw it (a response that came
    /// between the LOGOUT's answer and the hand-back counts too).
    pub fn ending(&self) -> Ending {
        match self.logout {
            Logout::NotYet => Ending::Open,
            Logout::Answered { selected } => Ending::LoggedOut {
                selected,
                unclean: self.unclean,
            },
            Logout::Passed(why) => Ending::Passed(why),
        }
    }

    fn taint(&mut self, why: &'static str) {
        self.unclean.get_or_insert(why);
    }

    /// The rule no longer knows what is in flight (and so neither whether it is clean).
    fn blind(&mut self, why: &'static str) {
        self.blind.get_or_insert(why);
        self.taint(why);
    }

    fn logout(&mut self, tag: &[u8]) -> Verdict {
        let passed = match (self.blind, self.in_flight.is_empty()) {
            (Some(why), _) => Some(why),
            (None, false) => Some("a command was in flight"),
            (None, true) => None,
        };
        if let Some(why) = passed {
            self.logout = Logout::Passed(why);
            return Verdict::Pass;
        }
        if self.selected && !self.can_unselect {
            self.taint("a mailbox is selected and the server has no UNSELECT");
        }
        self.logout = Logout::Answered {
            selected: self.selected,
        };
        let mut answer = b"* BYE Logging out\r\n".to_vec();
        answer.extend_from_slice(tag);
        answer.extend_from_slice(b" OK Logout completed.\r\n");
        Verdict::End(answer)
    }
}

impl Rewrite for Track {
    fn command(&mut self, line: Line<'_>) -> Verdict {
        if line.bytes.is_empty() {
            // A line an earlier rule dropped: nothing went upstream.
            return Verdict::Pass;
        }
        let rest_due = std::mem::replace(&mut self.rest_due, line.literal.is_some());
        if !line.starts {
            self.continued(line.bytes, rest_due);
            return Verdict::Pass;
        }
        let (tag, name) = command_name(line.bytes);
        if tag.len() > MAX_TAG || matches!(tag, b"" | b"*" | b"+") {
            // Not a tag a server would answer (or one not worth keeping): follow no further.
            self.blind("a command with an unusable tag");
            return Verdict::Pass;
        }
        if name.eq_ignore_ascii_case(b"LOGOUT") && line.bytes.len() == tag.len() + 9 {
            // `tag LOGOUT\r\n` exactly: anything after it is the server's to refuse.
            return self.logout(tag);
        }
        let kind = if name.eq_ignore_ascii_case(b"SELECT") || name.eq_ignore_ascii_case(b"EXAMINE")
        {
            Kind::Select
        } else if name.eq_ignore_ascii_case(b"CLOSE") || name.eq_ignore_ascii_case(b"UNSELECT") {
            Kind::Deselect
        } else if name.eq_ignore_ascii_case(b"IDLE") {
            Kind::Idle
        } else {
            Kind::Other
        };
        if !stateless(name, line.bytes) {
            self.taint("a command that changes the session's state");
        } else if enabling(line.bytes) {
            self.taint("a CONDSTORE-enabling command");
        }
        if self.in_flight.iter().any(|p| p.tag == tag) {
            // Answers could no longer be told apart.
            self.blind("a tag used twice at once");
        } else if self.in_flight.len() >= MAX_IN_FLIGHT {
            self.blind("too many commands in flight");
        } else {
            self.in_flight.push(Pending {
                tag: tag.to_vec(),
                kind,
            });
        }
        Verdict::Pass
    }

    fn response(&mut self, line: Line<'_>) -> Verdict {
        let bytes = line.bytes;
        if !line.starts || bytes.is_empty() || bytes.first() == Some(&b'+') {
            // The rest of a response after a literal, a line an earlier rule dropped, or a
            // continuation request.
            return Verdict::Pass;
        }
        if bytes.starts_with(b"* ") {
            if crate::imap::framer::is_bye(bytes) {
                self.taint("the server said BYE");
            }
            return Verdict::Pass;
        }
        let (tag, status) = command_name(bytes);
        let Some(i) = self.in_flight.iter().position(|p| p.tag == tag) else {
            self.blind("an answer to a command the rule did not see");
            return Verdict::Pass;
        };
        let done = self.in_flight.remove(i);
        if self.in_flight.is_empty() {
            // An idle session holds nothing here (sessions idle for hours, by the thousand).
            self.in_flight = Vec::new();
        }
        let ok = status.eq_ignore_ascii_case(b"OK");
        match done.kind {
            Kind::Select if ok => self.selected = true,
            // A failed SELECT leaves no mailbox selected (RFC 9051 6.3.2); not every server
            // may do so, so after one that had a mailbox selected nothing is kept.
            Kind::Select if self.selected => self.taint("a SELECT failed with a mailbox selected"),
            Kind::Select if status.eq_ignore_ascii_case(b"NO") => {}
            Kind::Select => self.taint("a SELECT answered BAD"),
            Kind::Deselect if ok => self.selected = false,
            Kind::Deselect | Kind::Idle | Kind::Other => {}
        }
        Verdict::Pass
    }

    fn unseen(&mut self) {
        self.blind("a command the rule did not see whole");
    }
}

impl Track {
    /// A client line that continues something: the rest of a command after its literal (when
    /// one was announced), or IDLE's DONE. Anything else means the relay and the server see
    /// the conversation differently than this rule (a refused IDLE whose next command the
    /// relay took for DONE): follow no further.
    fn continued(&mut self, bytes: &[u8], rest_due: bool) {
        if rest_due {
            if enabling(bytes) {
                self.taint("a CONDSTORE-enabling command");
            }
            return;
        }
        let idling = self.in_flight.iter().any(|p| p.kind == Kind::Idle);
        if !(idling && bytes.eq_ignore_ascii_case(b"DONE\r\n")) {
            self.blind("a line that continues no command");
        }
    }
}

/// Whether the command `name` (its line `bytes`) is on the list.
fn stateless(name: &[u8], bytes: &[u8]) -> bool {
    let listed = |list: &[&[u8]], word: &[u8]| list.iter().any(|w| w.eq_ignore_ascii_case(word));
    if name.eq_ignore_ascii_case(b"UID") {
        let sub = bytes
            .split(|&b| b == b' ' || b == b'\r' || b == b'\n')
            .nth(2)
            .unwrap_or_default();
        return listed(UID_STATELESS, sub);
    }
    listed(STATELESS, name)
}

/// Whether the line names a CONDSTORE/QRESYNC word anywhere (a mailbox of that name too:
/// keeping the connection is never worth a doubt).
fn enabling(bytes: &[u8]) -> bool {
    // No copy: every command line of a session comes through here.
    ENABLING.iter().any(|w| {
        bytes
            .windows(w.len())
            .any(|window| window.eq_ignore_ascii_case(w))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(t: &mut Track, bytes: &[u8]) -> Verdict {
        t.command(Line {
            bytes,
            literal: crate::imap::framer::announcement(bytes),
            starts: true,
        })
    }

    fn response(t: &mut Track, bytes: &[u8]) {
        assert_eq!(
            t.response(Line {
                bytes,
                literal: None,
                starts: true,
            }),
            Verdict::Pass
        );
    }

    fn caps(list: &str) -> Vec<String> {
        list.split(' ').map(str::to_owned).collect()
    }

    /// `case`'s command and responses, then LOGOUT: its verdict and the ending.
    fn session_then_logout(case: &[&[u8]]) -> (Verdict, Ending) {
        let mut t = Track::new(&caps("IMAP4rev1 UNSELECT"));
        assert_eq!(command(&mut t, case[0]), Verdict::Pass);
        for r in &case[1..] {
            response(&mut t, r);
        }
        (command(&mut t, b"z LOGOUT\r\n"), t.ending())
    }

    fn ended(selected: bool, unclean: Option<&'static str>) -> Ending {
        Ending::LoggedOut { selected, unclean }
    }

    #[test]
    fn a_poll_is_handed_back_selected() {
        let mut t = Track::new(&caps("IMAP4rev1 UNSELECT"));
        assert_eq!(command(&mut t, b"a SELECT INBOX\r\n"), Verdict::Pass);
        response(&mut t, b"* 3 EXISTS\r\n");
        response(&mut t, b"a OK [READ-WRITE] Select completed.\r\n");
        assert_eq!(
            command(&mut t, b"b UID FETCH 4:* (FLAGS)\r\n"),
            Verdict::Pass
        );
        response(&mut t, b"b OK Fetch completed.\r\n");
        assert_eq!(
            command(&mut t, b"c LOGOUT\r\n"),
            Verdict::End(b"* BYE Logging out\r\nc OK Logout completed.\r\n".to_vec())
        );
        assert_eq!(t.ending(), ended(true, None));
    }

    #[test]
    fn failed_select_and_close_leave_nothing_selected() {
        let mut t = Track::new(&caps("IMAP4rev1"));
        command(&mut t, b"a SELECT Nope\r\n");
        response(&mut t, b"a NO [NONEXISTENT] no\r\n");
        command(&mut t, b"b SELECT INBOX\r\n");
        response(&mut t, b"b OK done\r\n");
        command(&mut t, b"c CLOSE\r\n");
        response(&mut t, b"c OK done\r\n");
        assert!(matches!(command(&mut t, b"z LOGOUT\r\n"), Verdict::End(_)));
        assert_eq!(t.ending(), ended(false, None));
    }

    /// Sessions the rule still answers LOGOUT for (nothing in flight), but whose connection
    /// may not be kept.
    #[test]
    fn what_makes_a_connection_unclean() {
        let cases: &[&[&[u8]]] = &[
            &[b"a ENABLE UTF8=ACCEPT\r\n", b"a OK\r\n"],
            &[b"a SELECT INBOX (CONDSTORE)\r\n", b"a OK\r\n"],
            &[b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5)\r\n", b"a OK\r\n"],
            &[b"a STATUS INBOX (HIGHESTMODSEQ)\r\n", b"a OK\r\n"],
            &[b"a COMPRESS DEFLATE\r\n", b"a OK\r\n"],
            &[b"a UNAUTHENTICATE\r\n", b"a OK\r\n"],
            &[b"a XYZZY\r\n", b"a OK\r\n"],
            &[b"a UID XYZZY 1\r\n", b"a OK\r\n"],
            &[b"a NOOP\r\n", b"* BYE going away\r\n", b"a OK\r\n"],
            &[b"a SELECT INBOX\r\n", b"a BAD syntax\r\n"],
        ];
        for case in cases {
            let (logout, ending) = session_then_logout(case);
            assert!(matches!(logout, Verdict::End(_)), "{case:?}");
            let unclean = matches!(
                ending,
                Ending::LoggedOut {
                    unclean: Some(_),
                    ..
                }
            );
            assert!(unclean, "{case:?}");
        }
    }

    /// Sessions whose LOGOUT goes upstream: something is (or may be) in flight.
    #[test]
    fn what_makes_logout_go_upstream() {
        let long_tag = [vec![b'a'; 65], b" NOOP\r\n".to_vec()].concat();
        let cases: &[&[&[u8]]] = &[
            &[b"a IDLE\r\n", b"+ idling\r\n"],
            &[b"a NOOP\r\n"],
            &[b"a NOOP\r\n", b"zz OK what\r\n"],
            &[&long_tag],
            &[b"* NOOP\r\n"],
        ];
        for case in cases {
            let (logout, ending) = session_then_logout(case);
            assert_eq!(logout, Verdict::Pass, "{case:?}");
            assert!(matches!(ending, Ending::Passed(_)), "{case:?}");
        }
    }

    #[test]
    fn selected_without_unselect_is_not_kept() {
        let mut t = Track::new(&caps("IMAP4rev1"));
        command(&mut t, b"a EXAMINE INBOX\r\n");
        response(&mut t, b"a OK\r\n");
        assert!(matches!(command(&mut t, b"z LOGOUT\r\n"), Verdict::End(_)));
        assert!(matches!(
            t.ending(),
            Ending::LoggedOut {
                selected: true,
                unclean: Some(_)
            }
        ));
        // IMAP4rev2 has UNSELECT built in.
        let mut t = Track::new(&caps("IMAP4rev2"));
        command(&mut t, b"a EXAMINE INBOX\r\n");
        response(&mut t, b"a OK\r\n");
        assert!(matches!(command(&mut t, b"z LOGOUT\r\n"), Verdict::End(_)));
        assert_eq!(t.ending(), ended(true, None));
    }

    #[test]
    fn an_idle_answered_is_over() {
        let mut t = Track::new(&caps("IMAP4rev1"));
        command(&mut t, b"a IDLE\r\n");
        response(&mut t, b"+ idling\r\n");
        t.command(Line {
            bytes: b"DONE\r\n",
            literal: None,
            starts: false,
        });
        response(&mut t, b"a OK Idle completed.\r\n");
        assert!(matches!(command(&mut t, b"z LOGOUT\r\n"), Verdict::End(_)));
        assert_eq!(t.ending(), ended(false, None));
    }

    #[test]
    fn an_unseen_command_sends_logout_upstream() {
        let mut t = Track::new(&caps("IMAP4rev1"));
        t.unseen();
        assert_passed_logout(&mut t);
    }

    /// LOGOUT is answered here, and the connection may not be kept.
    fn assert_unclean_logout(t: &mut Track) {
        assert!(matches!(command(t, b"z LOGOUT\r\n"), Verdict::End(_)));
        let unclean = matches!(
            t.ending(),
            Ending::LoggedOut {
                unclean: Some(_),
                ..
            }
        );
        assert!(unclean, "{:?}", t.ending());
    }

    /// LOGOUT goes upstream.
    fn assert_passed_logout(t: &mut Track) {
        assert_eq!(command(t, b"z LOGOUT\r\n"), Verdict::Pass);
        assert!(matches!(t.ending(), Ending::Passed(_)));
    }

    fn continues(t: &mut Track, bytes: &[u8]) {
        let literal = crate::imap::framer::announcement(bytes);
        let starts = false;
        assert_eq!(
            t.command(Line {
                bytes,
                literal,
                starts
            }),
            Verdict::Pass
        );
    }

    /// A line an earlier rule replaced by nothing (the folder rule hiding a LIST entry) is
    /// no answer to anything.
    #[test]
    fn a_dropped_line_is_nothing() {
        let mut t = Track::new(&caps("IMAP4rev1"));
        command(&mut t, b"a LIST \"\" *\r\n");
        response(&mut t, b"");
        response(&mut t, b"a OK List completed.\r\n");
        assert!(matches!(command(&mut t, b"z LOGOUT\r\n"), Verdict::End(_)));
        assert_eq!(t.ending(), ended(false, None));
    }

    /// After a literal the rest of a command is checked too; a line that continues nothing
    /// (an IDLE the server refused, whose next command the relay took for DONE) stops the
    /// rule following.
    #[test]
    fn continuation_lines() {
        let mut t = Track::new(&caps("IMAP4rev1 UNSELECT"));
        command(&mut t, b"a SELECT {5}\r\n");
        continues(&mut t, b" (CONDSTORE)\r\n");
        response(&mut t, b"a OK\r\n");
        assert_unclean_logout(&mut t);

        let mut t = Track::new(&caps("IMAP4rev1"));
        command(&mut t, b"a IDLE\r\n");
        response(&mut t, b"a NO not now\r\n");
        continues(&mut t, b"b ENABLE CONDSTORE\r\n");
        assert_passed_logout(&mut t);
    }

    /// `LOGOUT` with arguments is the server's to refuse; a tag used twice at once makes
    /// answers ambiguous.
    #[test]
    fn odd_logouts_and_tags() {
        let mut t = Track::new(&caps("IMAP4rev1"));
        assert_eq!(command(&mut t, b"a LOGOUT now\r\n"), Verdict::Pass);
        assert_eq!(t.ending(), Ending::Open);

        let mut t = Track::new(&caps("IMAP4rev1 UNSELECT"));
        command(&mut t, b"a SELECT X\r\n");
        command(&mut t, b"a CLOSE\r\n");
        response(&mut t, b"a OK\r\n");
        response(&mut t, b"a OK\r\n");
        assert_passed_logout(&mut t);
    }

    /// A failed SELECT with a mailbox selected: whether the server deselected is its own
    /// affair, so nothing is kept. A BYE after the LOGOUT's answer still counts.
    #[test]
    fn doubtful_selected_state_and_late_bye() {
        let mut t = Track::new(&caps("IMAP4rev1 UNSELECT"));
        command(&mut t, b"a SELECT INBOX\r\n");
        response(&mut t, b"a OK\r\n");
        command(&mut t, b"b SELECT Nope\r\n");
        response(&mut t, b"b NO [NONEXISTENT] no\r\n");
        assert_unclean_logout(&mut t);

        let mut t = Track::new(&caps("IMAP4rev1"));
        assert!(matches!(command(&mut t, b"z LOGOUT\r\n"), Verdict::End(_)));
        assert_eq!(t.ending(), ended(false, None));
        response(&mut t, b"* BYE\r\n");
        let unclean = matches!(
            t.ending(),
            Ending::LoggedOut {
                unclean: Some(_),
                ..
            }
        );
        assert!(unclean);
    }
}
