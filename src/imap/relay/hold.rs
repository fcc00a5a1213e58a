//! [`Verdict::Hold`] in both directions: a line announcing a short literal (a mailbox name) is
//! kept back with the literal's data and the line after it, and the whole is shown to the
//! rules again, the literal inline; they may hold again for a later literal of the same
//! whole. A client's synchronizing literal being held gets its `+` from the gateway, so the
//! synchronizing announcements left inline in what goes upstream are made non-synchronizing.
//! A whole that outgrows the hold limit, or a line longer than it, ends the hold: what is
//! held goes on as it is (announcements converted) and the rest streams as usual.

use super::aside::{Aside, Held, Peeking};
use super::state::{Flow, State, CONTINUE};
use crate::imap::framer::{announcement, Literal};
use crate::imap::rewrite::{Line, Verdict};
use memchr::memchr;

impl State {
    /// Keeps back the client's command `held`, whose end announces `literal`, to hold it
    /// (`peek` false) or peek at its literal; gives a synchronizing literal its `+`.
    pub(super) fn keep_back(&mut self, held: Held, literal: Literal, peek: bool) -> Flow {
        if literal.sync {
            self.local.extend_from_slice(CONTINUE);
        }
        let aside = match peek {
            true => Aside::Peek(Peeking::new(held, literal)),
            false => Aside::Hold(held),
        };
        self.c2s_aside = Some(Box::new(aside));
        Flow::Go
    }

    /// A whole client line while a command is held: the whole with it goes to the rules.
    pub(super) fn held_command(
        &mut self,
        out: &mut Vec<u8>,
        bytes: &[u8],
        literal: Option<Literal>,
        starts: bool,
    ) -> Flow {
        let Some(Aside::Hold(mut held)) = self.c2s_aside.take().map(|a| *a) else {
            return self.shown_command(out, bytes, literal, starts);
        };
        if !held.keep(bytes) {
            out.extend_from_slice(&nonsync(&held.bytes, true));
            // The rules saw the start of this command only as held: it goes on unseen.
            self.rules.unseen();
            return self.shown_command(out, bytes, literal, starts);
        }
        match (self.rules.command(held.line(literal)), literal) {
            (Verdict::Hold, Some(l)) => self.keep_back(held, l, false),
            (Verdict::Peek, Some(l)) => self.keep_back(held, l, true),
            (verdict, _) => self.send_verdict(out, &held.bytes, literal, verdict, true),
        }
    }

    /// Literal data of a held command: held while the whole fits, else the hold ends.
    pub(super) fn held_command_literal(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        let kept = match self.c2s_aside.as_deref_mut() {
            Some(Aside::Hold(held)) => held.keep(bytes),
            _ => false,
        };
        if !kept {
            self.give_up_command(out);
            out.extend_from_slice(bytes);
        }
    }

    /// Ends the hold of a client command: what is held goes upstream, every synchronizing
    /// announcement in it made non-synchronizing (the client had each `+` from the relay).
    pub(super) fn give_up_command(&mut self, out: &mut Vec<u8>) {
        if let Some(Aside::Hold(held)) = self.c2s_aside.take().map(|a| *a) {
            out.extend_from_slice(&nonsync(&held.bytes, true));
            self.rules.unseen();
        }
    }

    /// A whole server line (`starts`: it begins a response) on its way to `out`, shown to
    /// the rules alone or, while a response is held, as the end of the whole.
    pub(super) fn response_line(
        &mut self,
        out: &mut Vec<u8>,
        bytes: &[u8],
        literal: Option<Literal>,
        starts: bool,
    ) {
        let Some(mut held) = self.s2c_hold.take() else {
            let line = Line {
                bytes,
                literal,
                starts,
            };
            match self.rules.response(line) {
                Verdict::Hold => self.s2c_hold = Some(Box::new(Held::new(bytes, starts))),
                verdict => emit_response(out, bytes, verdict),
            }
            return;
        };
        if !held.keep(bytes) {
            out.extend_from_slice(&held.bytes);
            return self.response_line(out, bytes, literal, starts);
        }
        match self.rules.response(held.line(literal)) {
            Verdict::Hold => self.s2c_hold = Some(held),
            verdict => emit_response(out, &held.bytes, verdict),
        }
    }

    /// Literal data of a held response: held while the whole fits, else the hold ends.
    pub(super) fn held_response_literal(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        if !self.s2c_hold.as_deref_mut().is_some_and(|h| h.keep(bytes)) {
            self.give_up_response(out);
            out.extend_from_slice(bytes);
        }
    }

    /// Ends the hold of a server response: what is held goes to the client as it is.
    pub(super) fn give_up_response(&mut self, out: &mut Vec<u8>) {
        if let Some(held) = self.s2c_hold.take() {
            out.extend_from_slice(&held.bytes);
        }
    }
}

/// A response line (or held whole) goes to the client as the rules decided; there is nobody
/// to answer on this side, so whatever a rule gives goes on.
fn emit_response(out: &mut Vec<u8>, bytes: &[u8], verdict: Verdict) {
    match verdict {
        Verdict::Pass | Verdict::Hold | Verdict::Peek => out.extend_from_slice(bytes),
        Verdict::Replace(forward)
        | Verdict::Answer(forward)
        | Verdict::End(forward)
        | Verdict::ReplaceAndAnswer { forward, .. } => out.extend_from_slice(&forward),
    }
}

/// `bytes` — lines and the literal data they announce — with every synchronizing
/// announcement made non-synchronizing (`{5}` → `{5+}`, `~{5}` → `~{5+}`), except the last
/// line's unless `last`.
pub(super) fn nonsync(bytes: &[u8], last: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 8);
    let mut pos = 0;
    while let Some(i) = memchr(b'\n', &bytes[pos..]) {
        let line = &bytes[pos..=pos + i];
        pos += i + 1;
        let literal = announcement(line);
        match (literal, line.iter().rposition(|&b| b == b'}')) {
            (Some(l), Some(close)) if l.sync && (last || pos < bytes.len()) => {
                out.extend_from_slice(&line[..close]);
                out.push(b'+');
                out.extend_from_slice(&line[close..]);
            }
            _ => out.extend_from_slice(line),
        }
        if let Some(l) = literal {
            let data = usize::try_from(l.length)
                .unwrap_or(usize::MAX)
                .min(bytes.len() - pos);
            out.extend_from_slice(&bytes[pos..pos + data]);
            pos += data;
        }
    }
    out.extend_from_slice(&bytes[pos..]);
    out
}

#[cfg(test)]
mod tests {
    use super::nonsync;

    #[test]
    fn inline_announcements_become_nonsync() {
        let whole = b"a RENAME {3}\r\nfoo {3}\r\nbar\r\n";
        assert_eq!(
            nonsync(whole, false),
            b"a RENAME {3+}\r\nfoo {3+}\r\nbar\r\n"
        );
        // The last line's announcement is the command's own, awaiting the server.
        let whole = b"a APPEND {4}\r\n{1}\n ~{5}\r\n";
        assert_eq!(nonsync(whole, false), b"a APPEND {4+}\r\n{1}\n ~{5}\r\n");
        assert_eq!(nonsync(whole, true), b"a APPEND {4+}\r\n{1}\n ~{5+}\r\n");
        // Literal data that looks like an announcement is data; a partial whole is fine.
        assert_eq!(nonsync(b"x {5}\r\n{2}\r\n", true), b"x {5+}\r\n{2}\r\n");
        assert_eq!(nonsync(b"x {60}\r\nab", false), b"x {60+}\r\nab");
        assert_eq!(
            nonsync(b"x {3+}\r\nabc y\r\n", true),
            b"x {3+}\r\nabc y\r\n"
        );
    }
}
