//! Splits an IMAP byte stream into lines and literals without parsing it.
//!
//! Both directions of IMAP share one framing rule: a line ends with LF (normally CRLF), and a
//! line that ends with `{N}`, `{N+}` (LITERAL+) or `~{N}` (BINARY) is followed by exactly N
//! bytes of literal data, after which the line continues. The gateway needs this much structure
//! to know where commands and responses begin (to count and filter them) and never to mistake
//! literal data — a message body that happens to contain `a1 OK` — for protocol.
//!
//! The framer holds a line while it is at most `max_held` bytes, so the caller can inspect or
//! rewrite it whole; longer lines are handed out in pieces as they arrive (memory stays bounded
//! however long a line is) and only their last bytes are kept, to spot a literal announcement.
//! Literal data is handed out in pieces as it arrives and is never held.

use memchr::memchr;

/// A literal announced at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Literal {
    /// Bytes of literal data that follow the line.
    pub length: u64,
    /// `{N}`: the client must wait for a `+` continuation. `{N+}`: it sends right away.
    pub sync: bool,
}

/// One piece of the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole line including its line ending, and the literal it announces, if any.
    Line {
        /// The line's bytes.
        bytes: &'a [u8],
        /// The literal that follows.
        literal: Option<Literal>,
    },
    /// A piece of a line longer than the hold limit, passed on as it arrives.
    LongLine {
        /// These bytes.
        bytes: &'a [u8],
        /// Whether this is the line's first piece.
        first: bool,
        /// `Some(literal)` when this piece ends the line.
        end: Option<Option<Literal>>,
    },
    /// Literal data.
    Literal {
        /// These bytes.
        bytes: &'a [u8],
        /// Whether the literal is complete with this piece.
        last: bool,
    },
}

/// Longest announcement we recognise: `{` + 20 digits + `+}` + CRLF.
const TAIL: usize = 32;

/// Stream framer; see the module documentation.
#[derive(Debug)]
pub struct Framer {
    /// Bytes of literal data still expected; 0 while in a line.
    literal: u64,
    /// The current line's bytes while it is short enough to hold.
    held: Vec<u8>,
    /// `held` was handed out in the previous call and must be cleared first.
    held_done: bool,
    /// The current line outgrew `max_held` and is being passed on in pieces.
    long: bool,
    /// Last bytes of a long line.
    tail: [u8; TAIL],
    tail_len: usize,
    max_held: usize,
}

impl Framer {
    /// A framer that holds lines of up to `max_held` bytes.
    pub fn new(max_held: usize) -> Self {
        Framer {
            literal: 0,
            held: Vec::new(),
            held_done: false,
            long: false,
            tail: [0; TAIL],
            tail_len: 0,
            max_held,
        }
    }

    /// Whether the framer is between lines: no partial line held, no literal pending. Only here
    /// may the gateway insert a response of its own into the stream.
    pub fn at_boundary(&self) -> bool {
        self.literal == 0 && !self.long && (self.held.is_empty() || self.held_done)
    }

    /// Whether part of the current line or literal has been handed out: a literal is under
    /// way, or a line longer than the hold limit is being passed on in pieces. (A held
    /// partial line has not been handed out yet.)
    pub fn passing(&self) -> bool {
        self.literal > 0 || self.long
    }

    /// Forgets a literal that was announced but will not be sent: the server refused a
    /// synchronizing literal, so the client goes on with the next command.
    pub fn cancel_literal(&mut self) {
        self.literal = 0;
    }

    /// Bytes of literal data still expected (0 while in a line).
    pub fn literal_left(&self) -> u64 {
        self.literal
    }

    /// Counts `n` bytes of the current literal as passed without being shown to the framer
    /// (the relay moved them from socket to socket with splice(2)). At most
    /// [`literal_left`](Self::literal_left) bytes are counted; the caller never moves more.
    pub fn skip_literal(&mut self, n: u64) {
        self.literal -= n.min(self.literal);
    }

    /// Bytes held for an incomplete line (for memory accounting and tests).
    pub fn held_len(&self) -> usize {
        if self.held_done {
            0
        } else {
            self.held.len()
        }
    }

    /// Takes the bytes of an incomplete line out of the framer (when another reader takes
    /// over the stream, e.g. the relay after login).
    pub fn take_held(&mut self) -> Vec<u8> {
        let held = std::mem::take(&mut self.held);
        if self.held_done {
            self.held_done = false;
            return Vec::new();
        }
        held
    }

    /// Releases the hold buffer's memory if it is empty (an idle session keeps nothing).
    pub fn shrink(&mut self) {
        if self.held_done || self.held.is_empty() {
            self.held = Vec::new();
            self.held_done = false;
        }
    }

    /// The next frame from `input`, and how many bytes of `input` it consumed. `None` means
    /// all of `input` was consumed (held as part of a line) and more bytes are needed.
    pub fn next<'a>(&'a mut self, input: &'a [u8]) -> Option<(usize, Frame<'a>)> {
        if self.held_done {
            self.held.clear();
            self.held_done = false;
        }
        if input.is_empty() {
            return None;
        }
        if self.literal > 0 {
            let take = self.literal.min(input.len() as u64) as usize;
            self.literal -= take as u64;
            let last = self.literal == 0;
            return Some((
                take,
                Frame::Literal {
                    bytes: &input[..take],
                    last,
                },
            ));
        }
        match memchr(b'\n', input) {
            Some(i) => Some(self.line_end(&input[..=i])),
            None => self.partial(input),
        }
    }

    /// `chunk` (ending with the line's LF) completes the current line.
    #[inline]
    fn line_end<'a>(&'a mut self, chunk: &'a [u8]) -> (usize, Frame<'a>) {
        let n = chunk.len();
        if self.long {
            self.push_tail(chunk);
            let lit = announcement(&self.tail[..self.tail_len]);
            self.end_line(lit);
            let end = Some(lit);
            return (
                n,
                Frame::LongLine {
                    bytes: chunk,
                    first: false,
                    end,
                },
            );
        }
        if self.held.is_empty() {
            let lit = announcement(chunk);
            self.end_line(lit);
            if chunk.len() <= self.max_held {
                return (
                    n,
                    Frame::Line {
                        bytes: chunk,
                        literal: lit,
                    },
                );
            }
            let end = Some(lit);
            return (
                n,
                Frame::LongLine {
                    bytes: chunk,
                    first: true,
                    end,
                },
            );
        }
        if self.held.len() + chunk.len() <= self.max_held {
            self.held.extend_from_slice(chunk);
            let lit = announcement(&self.held);
            self.end_line(lit);
            self.held_done = true;
            return (
                n,
                Frame::Line {
                    bytes: &self.held,
                    literal: lit,
                },
            );
        }
        self.spill_held()
    }

    /// `input` (without an LF) continues the current line: held while it fits, else passed on.
    #[inline]
    fn partial<'a>(&'a mut self, input: &'a [u8]) -> Option<(usize, Frame<'a>)> {
        let n = input.len();
        if self.long {
            self.push_tail(input);
            return Some((
                n,
                Frame::LongLine {
                    bytes: input,
                    first: false,
                    end: None,
                },
            ));
        }
        if self.held.len() + input.len() <= self.max_held {
            self.held.extend_from_slice(input);
            return None;
        }
        if self.held.is_empty() {
            self.long = true;
            self.push_tail(input);
            return Some((
                n,
                Frame::LongLine {
                    bytes: input,
                    first: true,
                    end: None,
                },
            ));
        }
        Some(self.spill_held())
    }

    /// The held start of a line turns out too long: hand it out as the first piece of a long
    /// line (consuming nothing new) and continue in long mode.
    fn spill_held(&mut self) -> (usize, Frame<'_>) {
        self.long = true;
        self.tail_len = 0;
        let held = std::mem::take(&mut self.held);
        self.push_tail(&held);
        self.held = held;
        self.held_done = true;
        (
            0,
            Frame::LongLine {
                bytes: &self.held,
                first: true,
                end: None,
            },
        )
    }

    fn end_line(&mut self, lit: Option<Literal>) {
        self.long = false;
        self.tail_len = 0;
        if let Some(l) = lit {
            self.literal = l.length;
        }
    }

    fn push_tail(&mut self, bytes: &[u8]) {
        if bytes.len() >= TAIL {
            self.tail.copy_from_slice(&bytes[bytes.len() - TAIL..]);
            self.tail_len = TAIL;
        } else {
            let keep = (TAIL - bytes.len()).min(self.tail_len);
            self.tail
                .copy_within(self.tail_len - keep..self.tail_len, 0);
            self.tail[keep..keep + bytes.len()].copy_from_slice(bytes);
            self.tail_len = keep + bytes.len();
        }
    }
}

/// Whether a server line is an untagged `BYE` (`* BYE …`, any case, text or not): the server
/// is closing the connection.
pub fn is_bye(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"* ") else {
        return false;
    };
    let word = rest.split(|&b| matches!(b, b' ' | b'\r' | b'\n')).next();
    word.is_some_and(|w| w.eq_ignore_ascii_case(b"BYE"))
}

/// The literal a complete line (ending in LF) announces: `{N}`, `{N+}` just before the line
/// ending. A number too large for u64 is not an announcement (the peer will reject the line).
pub fn announcement(line: &[u8]) -> Option<Literal> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let (inner, sync) = match inner.strip_suffix(b"+") {
        Some(i) => (i, false),
        None => (inner, true),
    };
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut length: u64 = 0;
    for d in digits {
        length = length.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(Literal { length, sync })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Literal bytes counted by `skip_literal` (spliced past the framer) are not expected
    /// again: framing resumes with the rest of the literal, then the line after it.
    #[test]
    fn skipped_literal_bytes_are_not_expected_again() {
        let mut f = Framer::new(1024);
        let (n, frame) = f.next(b"* 1 FETCH (BODY[] {10}\r\n0123").unwrap();
        assert_eq!(n, 24);
        assert!(matches!(
            frame,
            Frame::Line {
                literal: Some(Literal { length: 10, .. }),
                ..
            }
        ));
        assert_eq!(f.next(b"0123").unwrap().0, 4);
        assert_eq!(f.literal_left(), 6);
        f.skip_literal(5);
        assert_eq!(f.literal_left(), 1);
        let (n, frame) = f.next(b"9)\r\n").unwrap();
        assert_eq!(
            (n, frame),
            (
                1,
                Frame::Literal {
                    bytes: b"9",
                    last: true
                }
            )
        );
        assert!(f.at_boundary());
        let (n, frame) = f.next(b")\r\n").unwrap();
        assert_eq!(n, 3);
        assert!(matches!(
            frame,
            Frame::Line {
                bytes: b")\r\n",
                literal: None
            }
        ));
        f.skip_literal(7);
        assert_eq!(f.literal_left(), 0);
    }

    /// Frames `input` split into pieces of `step` bytes; returns a normalized description.
    fn frame_all(input: &[u8], step: usize, max: usize) -> Vec<(String, Vec<u8>)> {
        let mut f = Framer::new(max);
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        for piece in input.chunks(step) {
            let mut pos = 0;
            while let Some((n, frame)) = f.next(&piece[pos..]) {
                assert!(n > 0 || matches!(frame, Frame::LongLine { first: true, .. }));
                pos += n;
                let (kind, bytes) = match frame {
                    Frame::Line { bytes, literal } => (format!("line {literal:?}"), bytes),
                    Frame::LongLine { bytes, end, .. } => match end {
                        Some(l) => (format!("line {l:?}"), bytes),
                        None => ("long".to_string(), bytes),
                    },
                    Frame::Literal { bytes, last } => (format!("lit {last}"), bytes),
                };
                // Merge pieces of one logical frame so that every split compares equal.
                match out.last_mut() {
                    Some((k, b)) if k == "long" => {
                        b.extend_from_slice(bytes);
                        *k = kind;
                    }
                    Some((k, b)) if k == "lit false" && kind.starts_with("lit") => {
                        b.extend_from_slice(bytes);
                        *k = kind;
                    }
                    _ => out.push((kind, bytes.to_vec())),
                }
            }
            // `None` means the rest of the piece was taken in (held as part of a line).
        }
        out
    }

    #[test]
    fn announcements() {
        assert_eq!(
            announcement(b"a APPEND x {5}\r\n"),
            Some(Literal {
                length: 5,
                sync: true
            })
        );
        assert_eq!(
            announcement(b"a LOGIN {3+}\n"),
            Some(Literal {
                length: 3,
                sync: false
            })
        );
        assert_eq!(
            announcement(b"* 1 FETCH (BINARY[] ~{0}\r\n"),
            Some(Literal {
                length: 0,
                sync: true
            })
        );
        assert_eq!(announcement(b"a {x}\r\n"), None);
        assert_eq!(announcement(b"a {}\r\n"), None);
        assert_eq!(announcement(b"a {99999999999999999999}\r\n"), None);
        assert_eq!(announcement(b"a {5} \r\n"), None);
        assert_eq!(announcement(b"a {5}"), None);
    }

    #[test]
    fn literal_data_is_not_protocol() {
        let stream = b"* 1 FETCH (BODY[] {12}\r\na1 OK done\r\n)\r\na1 OK FETCH\r\n";
        let frames = frame_all(stream, 1000, 100);
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[1], ("lit true".into(), b"a1 OK done\r\n".to_vec()));
        assert_eq!(frames[2].1, b")\r\n");
        assert_eq!(frames[3].1, b"a1 OK FETCH\r\n");
    }

    #[test]
    fn every_split_gives_the_same_frames() {
        let mut stream = Vec::new();
        stream.extend_from_slice(b"a1 APPEND INBOX {20+}\r\n");
        stream.extend_from_slice(b"01234567890123456789");
        stream.extend_from_slice(b" {0}\r\n\r\n");
        stream.extend_from_slice(&[b'x'; 300]);
        stream.extend_from_slice(b" {3}\r\nabc\r\nshort\nlast line {7+}\r\n1234567)\r\n");
        let reference = frame_all(&stream, stream.len(), 64);
        for step in 1..40 {
            assert_eq!(frame_all(&stream, step, 64), reference, "step {step}");
        }
        // The 300-byte line was passed on in pieces but still announced its literal.
        assert!(reference
            .iter()
            .any(|(k, b)| k.contains("length: 3") && b.len() > 300));
    }

    #[test]
    fn boundary_and_cancel() {
        let mut f = Framer::new(100);
        assert!(f.at_boundary());
        let Some((n, Frame::Line { literal, .. })) = f.next(b"a APPEND x {10}\r\n") else {
            panic!("expected a line")
        };
        assert_eq!(n, 17);
        assert!(literal.unwrap().sync);
        assert!(!f.at_boundary());
        f.cancel_literal();
        assert!(f.at_boundary());
        assert!(f.next(b"b NO").is_none());
        assert!(!f.at_boundary());
        assert_eq!(f.held_len(), 4);
    }
}
