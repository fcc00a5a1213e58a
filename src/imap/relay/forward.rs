//! Framing and forwarding: each direction's bytes cut into lines and literals, each held line
//! shown to the rewrite rules and forwarded as they decide, literals passed on as they are
//! (or kept aside for the rules: `hold`, `peek`).

use super::aside::{Aside, Held};
use super::hold::nonsync;
use super::state::{Flow, State};
use super::Relay;
use crate::imap::framer::{announcement, Frame, Literal};
use crate::imap::rewrite::{command_name, Line, Verdict};
use crate::metrics;

impl Relay {
    /// Frames buffered client bytes into the upstream's output.
    pub(super) fn frame_c2s(&mut self) {
        let Relay { c2s: d, st, .. } = self;
        d.out_buf();
        while d.start < d.end {
            // While a head is read for a rule, the framer takes no more of the literal.
            let end = st
                .peek_room()
                .map_or(d.end, |room| d.end.min(d.start + room));
            let Some((n, frame)) = d.framer.next(&d.inbuf[d.start..end]) else {
                d.start = end;
                break;
            };
            d.start += n;
            let flow = match frame {
                Frame::Line { bytes, literal } => st.command_line(&mut d.out, bytes, literal),
                Frame::LongLine { bytes, first, end } => {
                    st.command_piece(&mut d.out, bytes, first, end)
                }
                Frame::Literal { bytes, .. } if st.c2s_aside.is_some() => {
                    st.aside_literal(&mut d.out, bytes)
                }
                Frame::Literal { .. } => {
                    d.pass_literal(n);
                    Flow::Go
                }
            };
            match flow {
                Flow::Go => {}
                Flow::Stop => return,
                Flow::Cancel => d.framer.cancel_literal(),
            }
        }
    }

    /// Frames buffered server bytes into the client's output.
    pub(super) fn frame_s2c(&mut self) {
        let Relay {
            s2c: d, c2s, st, ..
        } = self;
        d.out_buf();
        while d.start < d.end {
            let Some((n, frame)) = d.framer.next(&d.inbuf[d.start..d.end]) else {
                d.start = d.end;
                break;
            };
            d.start += n;
            match frame {
                Frame::Line { bytes, literal } => {
                    // After a literal the line goes on: its bytes are data, not a response.
                    let starts = !std::mem::replace(&mut st.s2c_mid, literal.is_some());
                    let (head, cancel) = match starts {
                        true => st.server_word(bytes),
                        false => (None, false),
                    };
                    if cancel {
                        c2s.framer.cancel_literal();
                    }
                    match head {
                        // The server's `+` for a literal whose `+` the client had from the
                        // relay: the head goes upstream, and the `+` no further.
                        Some(head) => c2s.out_buf().extend_from_slice(&head),
                        None => st.response_line(&mut d.out, bytes, literal, starts),
                    }
                }
                Frame::Literal { bytes, .. } if st.s2c_hold.is_some() => {
                    st.held_response_literal(&mut d.out, bytes)
                }
                Frame::Literal { .. } => d.pass_literal(n),
                Frame::LongLine { bytes, end, .. } => {
                    st.give_up_response(&mut d.out);
                    if let Some(literal) = end {
                        st.s2c_mid = literal.is_some();
                    }
                    d.out.extend_from_slice(bytes);
                }
            }
            // Stop at a boundary so that our own responses can be inserted there (a response
            // held for the rules is not over).
            let boundary = d.framer.at_boundary() && !st.s2c_mid && st.s2c_hold.is_none();
            if !st.local.is_empty() && boundary {
                break;
            }
        }
    }
}

impl State {
    /// A whole client line on its way to `out`.
    fn command_line(&mut self, out: &mut Vec<u8>, bytes: &[u8], literal: Option<Literal>) -> Flow {
        self.c2s_after_literal = literal.is_some();
        let starts = !std::mem::replace(&mut self.continuation, literal.is_some());
        if starts {
            self.command_starts(bytes);
        }
        if literal.is_none() {
            self.command_ends();
        }
        match self.c2s_aside.as_deref() {
            None => self.shown_command(out, bytes, literal, starts),
            Some(Aside::Hold(_)) => self.held_command(out, bytes, literal, starts),
            Some(Aside::Swallow(_)) => self.swallow_line(literal),
            // A head is read to the end of the peek before any line: not reached.
            Some(Aside::Peek(_)) => Flow::Go,
        }
    }

    /// A line without a literal ends the command: a tag of a junk line (tags are a few
    /// bytes) is not kept past it, so that an idle session holds nothing of it.
    fn command_ends(&mut self) {
        if self.tag.capacity() > 256 {
            self.tag = Vec::new();
        }
    }

    /// A line that starts a command: its tag is kept, its name counted.
    fn command_starts(&mut self, bytes: &[u8]) {
        let (tag, name) = command_name(bytes);
        self.tag.clear();
        self.tag.extend_from_slice(tag);
        let label = metrics::imap_command_label(name, subcommand(bytes));
        self.commands.count(label);
        // IDLE's DONE line and AUTHENTICATE's responses are not commands.
        self.continuation |= label == "IDLE" || label == "AUTHENTICATE";
    }

    /// A client line shown to the rules on its own.
    pub(super) fn shown_command(
        &mut self,
        out: &mut Vec<u8>,
        bytes: &[u8],
        literal: Option<Literal>,
        starts: bool,
    ) -> Flow {
        let line = Line {
            bytes,
            literal,
            starts,
        };
        match (self.rules.command(line), literal) {
            (Verdict::Hold, Some(l)) => self.keep_back(Held::new(bytes, starts), l, false),
            (Verdict::Peek, Some(l)) => self.keep_back(Held::new(bytes, starts), l, true),
            (verdict, _) => self.send_verdict(out, bytes, literal, verdict, false),
        }
    }

    /// Sends a command line (`held`: a whole the relay held, whose inline announcements had
    /// their `+` from it) as the rules decided.
    pub(super) fn send_verdict(
        &mut self,
        out: &mut Vec<u8>,
        bytes: &[u8],
        literal: Option<Literal>,
        verdict: Verdict,
        held: bool,
    ) -> Flow {
        let mut send = |forward: &[u8]| {
            match held {
                true => out.extend_from_slice(&nonsync(forward, false)),
                false => out.extend_from_slice(forward),
            }
            announcement(forward)
        };
        // What the server is sent announces the literal it will wait for.
        let sent = match verdict {
            Verdict::Pass | Verdict::Hold | Verdict::Peek => {
                send(bytes);
                literal
            }
            Verdict::Replace(forward) => send(&forward),
            Verdict::Answer(reply) => {
                debug_assert!(literal.is_none(), "a rule answered a literal's line");
                self.local.extend_from_slice(&reply);
                return Flow::Go;
            }
            Verdict::End(reply) => {
                debug_assert!(
                    literal.is_none(),
                    "a rule ended the relay on a literal's line"
                );
                self.local.extend_from_slice(&reply);
                // Nothing after this command goes upstream: the connection is handed back.
                self.ending = true;
                return Flow::Stop;
            }
            Verdict::ReplaceAndAnswer { forward, answer } => {
                self.local.extend_from_slice(&answer);
                send(&forward)
            }
        };
        debug_assert_eq!(
            sent.map(|l| l.length),
            literal.map(|l| l.length),
            "a rule changed a literal's length"
        );
        match sent {
            Some(l) if l.sync => self.await_server(None),
            _ => Flow::Go,
        }
    }

    /// A piece of a client line longer than the hold limit: passed on as it comes (a held
    /// command it continues is given up; one being swallowed goes on being swallowed).
    fn command_piece(
        &mut self,
        out: &mut Vec<u8>,
        bytes: &[u8],
        first: bool,
        end: Option<Option<Literal>>,
    ) -> Flow {
        let starts = first && !self.continuation;
        if let Some(literal) = end {
            self.continuation = literal.is_some();
            self.c2s_after_literal = literal.is_some();
        }
        if end == Some(None) {
            self.command_ends();
        }
        match self.c2s_aside.as_deref() {
            Some(Aside::Swallow(_)) => return end.map_or(Flow::Go, |l| self.swallow_line(l)),
            Some(Aside::Hold(_)) => self.give_up_command(out),
            Some(Aside::Peek(_)) | None => {}
        }
        if starts {
            self.command_starts(bytes);
            self.rules.unseen();
        }
        out.extend_from_slice(bytes);
        match end {
            Some(Some(l)) if l.sync => self.await_server(None),
            _ => Flow::Go,
        }
    }
}

/// The word after the command name (for `UID FETCH` and friends).
fn subcommand(line: &[u8]) -> &[u8] {
    let mut parts = line.splitn(4, |&b| b == b' ' || b == b'\r' || b == b'\n');
    parts.nth(2).unwrap_or_default()
}
