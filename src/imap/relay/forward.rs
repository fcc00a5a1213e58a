//! Framing and forwarding: each direction's bytes cut into lines and literals, each held line
//! shown to the rewrite rules and forwarded as they decide, literals passed on as they are.

use super::Relay;
use crate::imap::framer::{announcement, Frame, Literal};
use crate::imap::rewrite::{command_name, Line, Verdict};
use crate::metrics;

impl Relay {
    /// Frames buffered client bytes into the upstream's output.
    pub(super) fn frame_c2s(&mut self) {
        let d = &mut self.c2s;
        d.out_buf();
        while d.start < d.end {
            let Some((n, frame)) = d.framer.next(&d.inbuf[d.start..d.end]) else {
                d.start = d.end;
                break;
            };
            d.start += n;
            match frame {
                Frame::Line { bytes, literal } => {
                    self.c2s_after_literal = literal.is_some();
                    let (tag, name) = command_name(bytes);
                    let starts = !std::mem::replace(&mut self.continuation, literal.is_some());
                    if starts {
                        let label = metrics::imap_command_label(name, subcommand(bytes));
                        metrics::imap_command(label);
                        // IDLE's DONE line and AUTHENTICATE's responses are not commands.
                        self.continuation |= label == "IDLE" || label == "AUTHENTICATE";
                    }
                    let line = Line {
                        bytes,
                        literal,
                        starts,
                    };
                    // What the server is sent announces the literal it will wait for.
                    let sent: Option<Literal> = match self.rules.command(line) {
                        Verdict::Pass | Verdict::Hold => {
                            d.out.extend_from_slice(bytes);
                            literal
                        }
                        Verdict::Replace(forward) => {
                            d.out.extend_from_slice(&forward);
                            announcement(&forward)
                        }
                        Verdict::Answer(reply) => {
                            debug_assert!(literal.is_none(), "a rule answered a literal's line");
                            self.local.extend_from_slice(&reply);
                            continue;
                        }
                        Verdict::ReplaceAndAnswer { forward, answer } => {
                            d.out.extend_from_slice(&forward);
                            self.local.extend_from_slice(&answer);
                            announcement(&forward)
                        }
                    };
                    debug_assert_eq!(
                        sent.map(|l| l.length),
                        literal.map(|l| l.length),
                        "a rule changed a literal's length"
                    );
                    if sent.is_some_and(|l| l.sync) {
                        self.awaiting = Some(tag.to_vec());
                        return;
                    }
                }
                Frame::LongLine { bytes, first, end } => {
                    if first {
                        let (tag, name) = command_name(bytes);
                        self.long_tag = tag.to_vec();
                        if !self.continuation {
                            metrics::imap_command(metrics::imap_command_label(
                                name,
                                subcommand(bytes),
                            ));
                        }
                    }
                    if let Some(lit) = end {
                        self.continuation = lit.is_some();
                        self.c2s_after_literal = lit.is_some();
                    }
                    d.out.extend_from_slice(bytes);
                    if let Some(Some(l)) = end {
                        if l.sync {
                            self.awaiting = Some(std::mem::take(&mut self.long_tag));
                            return;
                        }
                    }
                }
                Frame::Literal { .. } => d.pass_literal(n),
            }
        }
    }

    /// Frames buffered server bytes into the client's output.
    pub(super) fn frame_s2c(&mut self) {
        let d = &mut self.s2c;
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
                    let starts = !std::mem::replace(&mut self.s2c_mid, literal.is_some());
                    if let Some(tag) = &self.awaiting {
                        if bytes.first() == Some(&b'+') {
                            // The server wants the literal: the client may send it now.
                            self.awaiting = None;
                        } else if bytes.starts_with(tag) && bytes.get(tag.len()) == Some(&b' ') {
                            // The server refused the literal; the client will not send it.
                            self.c2s.framer.cancel_literal();
                            self.awaiting = None;
                        }
                    }
                    let line = Line {
                        bytes,
                        literal,
                        starts,
                    };
                    match self.rules.response(line) {
                        Verdict::Pass | Verdict::Hold => d.out.extend_from_slice(bytes),
                        // Nobody to answer on this side: whatever a rule gives goes on.
                        Verdict::Replace(forward)
                        | Verdict::Answer(forward)
                        | Verdict::ReplaceAndAnswer { forward, .. } => {
                            d.out.extend_from_slice(&forward)
                        }
                    }
                }
                Frame::Literal { .. } => d.pass_literal(n),
                Frame::LongLine { bytes, end, .. } => {
                    if let Some(literal) = end {
                        self.s2c_mid = literal.is_some();
                    }
                    d.out.extend_from_slice(bytes);
                }
            }
            // Stop at a boundary so that our own responses can be inserted there.
            if !self.local.is_empty() && d.framer.at_boundary() && !self.s2c_mid {
                break;
            }
        }
    }
}

/// The word after the command name (for `UID FETCH` and friends).
fn subcommand(line: &[u8]) -> &[u8] {
    let mut parts = line.splitn(4, |&b| b == b' ' || b == b'\r' || b == b'\n');
    parts.nth(2).unwrap_or_default()
}
