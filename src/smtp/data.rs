//! Dot-stuffing in both directions (RFC 5321 4.5.2), as state machines that accept input in
//! pieces of any size, so that a message split at any byte by TCP is handled the same.
//!
//! - [`Unstuffer`] reads what a client sends after `DATA`: it removes the extra dot at the start
//!   of a line and finds the end marker. A line starts after CRLF (or at the very start); the
//!   end marker is exactly `CRLF . CRLF` (the first CRLF belongs to the message). A bare LF
//!   neither starts a line nor ends the data, so `LF . LF` cannot end a message early (the
//!   "SMTP smuggling" family of attacks needs a receiver that accepts such an end).
//! - [`Stuffer`] writes a message towards the upstream: it doubles a dot after *any* LF, bare
//!   or not, because many servers (Postfix among them) treat a bare LF as a line end; stuffing
//!   there too means such a server still gets the exact bytes back and can never see an early
//!   end. Only a message that does not end in CRLF (possible with BDAT) gets bytes added: CRLF
//!   before the end marker, which is what a server receiving that message by BDAT stores too.

/// Where in the line structure the client's data stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnState {
    /// At the start of a line (after CRLF, or at the start of the data).
    LineStart,
    /// Inside a line.
    Mid,
    /// Inside a line, right after a CR (which has been emitted).
    Cr,
    /// A dot at the start of a line, held back.
    Dot,
    /// A dot and a CR at the start of a line, both held back.
    DotCr,
    /// The end marker has been seen.
    Done,
}

/// Removes SMTP dot-stuffing from the bytes after `DATA` and finds the end of the message.
#[derive(Debug, Clone)]
pub struct Unstuffer {
    state: UnState,
}

impl Default for Unstuffer {
    fn default() -> Self {
        Unstuffer {
            state: UnState::LineStart,
        }
    }
}

impl Unstuffer {
    /// A fresh unstuffer, at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the end marker has been seen.
    pub fn is_done(&self) -> bool {
        self.state == UnState::Done
    }

    /// Appends the message bytes found in `input` to `out`. Returns `Some(n)` when the end
    /// marker ended within `input` after `n` bytes (the rest belongs to the next command), or
    /// `None` when all of `input` was message data.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                UnState::Done => return Some(i),
                UnState::Mid => {
                    // Only a dot after CRLF needs a look: everything up to the next such dot
                    // is copied in one piece (a message has few of them; a copy per line
                    // took twice the instructions).
                    let rest = &input[i..];
                    let Some(k) = memchr::memmem::find(rest, b"\r\n.") else {
                        out.extend_from_slice(rest);
                        self.state = if rest.ends_with(b"\r\n") {
                            UnState::LineStart
                        } else if rest.ends_with(b"\r") {
                            UnState::Cr
                        } else {
                            UnState::Mid
                        };
                        return None;
                    };
                    out.extend_from_slice(&rest[..k + 2]);
                    i += k + 2;
                    self.state = UnState::LineStart;
                }
                UnState::Cr => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\n' => {
                            out.push(b);
                            self.state = UnState::LineStart;
                        }
                        b'\r' => out.push(b),
                        _ => {
                            out.push(b);
                            self.state = UnState::Mid;
                        }
                    }
                }
                UnState::LineStart => {
                    let b = input[i];
                    if b == b'.' {
                        i += 1;
                        self.state = UnState::Dot;
                    } else {
                        self.state = UnState::Mid;
                    }
                }
                UnState::Dot => {
                    if input[i] == b'\r' {
                        // May start the end marker; held until the next byte says.
                        i += 1;
                        self.state = UnState::DotCr;
                    } else {
                        // A dot line other than the end marker: the first dot is dropped and
                        // this byte is read as line content.
                        self.state = UnState::Mid;
                    }
                }
                UnState::DotCr => {
                    if input[i] == b'\n' {
                        self.state = UnState::Done;
                        return Some(i + 1);
                    }
                    // "." CR x: the dot was stuffing, the CR is data, x is read after a CR.
                    out.push(b'\r');
                    self.state = UnState::Cr;
                }
            }
        }
        if self.state == UnState::Done {
            Some(i)
        } else {
            None
        }
    }
}

/// Adds SMTP dot-stuffing to a message written towards the upstream, piece by piece.
#[derive(Debug, Clone)]
pub struct Stuffer {
    /// The last two message bytes written (0 before any).
    last: [u8; 2],
    /// Whether the next byte starts a line (after LF, or at the start).
    line_start: bool,
    /// Message bytes written (before stuffing).
    len: u64,
}

impl Default for Stuffer {
    fn default() -> Self {
        Stuffer {
            last: [0, 0],
            line_start: true,
            len: 0,
        }
    }
}

impl Stuffer {
    /// A fresh stuffer, at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Message bytes seen so far (without stuffing).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no message byte has been seen yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `input`, stuffed, to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if input.is_empty() {
            return;
        }
        self.len += input.len() as u64;
        let mut rest = input;
        while !rest.is_empty() {
            if self.line_start && rest[0] == b'.' {
                out.push(b'.');
            }
            match memchr::memchr(b'\n', rest) {
                Some(k) => {
                    out.extend_from_slice(&rest[..=k]);
                    rest = &rest[k + 1..];
                    self.line_start = true;
                }
                None => {
                    out.extend_from_slice(rest);
                    rest = &[];
                    self.line_start = false;
                }
            }
        }
        match input {
            [.., a, b] => self.last = [*a, *b],
            [b] => self.last = [self.last[1], *b],
            [] => {}
        }
    }

    /// The bytes that end the message: the end marker, preceded by CRLF when the message did
    /// not end in CRLF (the end marker's first CRLF must be the last line's own ending).
    pub fn finish(&self) -> &'static [u8] {
        if self.is_empty() || self.last == *b"\r\n" {
            b".\r\n"
        } else {
            b"\r\n.\r\n"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unstuffs `wire` fed in the given pieces; returns (message, bytes consumed) or None.
    fn unstuff_pieces(pieces: &[&[u8]]) -> Option<(Vec<u8>, usize)> {
        let mut u = Unstuffer::new();
        let mut out = Vec::new();
        let mut consumed = 0;
        for p in pieces {
            match u.feed(p, &mut out) {
                Some(n) => return Some((out, consumed + n)),
                None => consumed += p.len(),
            }
        }
        None
    }

    fn stuff_whole(msg: &[u8]) -> Vec<u8> {
        let mut s = Stuffer::new();
        let mut out = Vec::new();
        s.feed(msg, &mut out);
        out.extend_from_slice(s.finish());
        out
    }

    const CASES: &[(&[u8], &[u8])] = &[
        // (on the wire after DATA, message)
        (b".\r\n", b""),
        (b"..\r\n.\r\n", b".\r\n"),
        (b"..leading\r\nx\r\n.\r\n", b".leading\r\nx\r\n"),
        (b"a\r\n..\r\n...\r\nb\r\n.\r\n", b"a\r\n.\r\n..\r\nb\r\n"),
        (b"a\r\n.b\r\n.\r\n", b"a\r\nb\r\n"),
        (b"a\n.\nb\r\n.\r\n", b"a\n.\nb\r\n"),
        (b"a\r\n.\rb\r\n.\r\n", b"a\r\n\rb\r\n"),
        (b"a\r\n.\r\r\n.\r\n", b"a\r\n\r\r\n"),
        (b"a\rb\r\r\n\xff\xfe\r\n.\r\n", b"a\rb\r\r\n\xff\xfe\r\n"),
        (b"\r\n.\r\n", b"\r\n"),
    ];

    #[test]
    fn unstuffs_examples_at_every_split() {
        for (wire, msg) in CASES {
            let mut with_tail = wire.to_vec();
            with_tail.extend_from_slice(b"QUIT\r\n");
            for split in 0..=with_tail.len() {
                let (a, b) = with_tail.split_at(split);
                let (got, n) = unstuff_pieces(&[a, b]).expect("end found");
                assert_eq!(got, *msg, "wire {wire:?} split {split}");
                assert_eq!(n, wire.len(), "wire {wire:?} split {split}");
            }
            // Byte by byte.
            let singles: Vec<&[u8]> = with_tail.chunks(1).collect();
            assert_eq!(unstuff_pieces(&singles).map(|x| x.0), Some(msg.to_vec()));
        }
    }

    /// The rule written plainly, for comparison: a line starts at the start or after CRLF;
    /// there `.CRLF` ends the data and a leading dot is dropped.
    fn unstuff_reference(wire: &[u8]) -> Option<(Vec<u8>, usize)> {
        let (mut out, mut i, mut line_start) = (Vec::new(), 0, true);
        while i < wire.len() {
            if line_start {
                if wire[i..].starts_with(b".\r\n") {
                    return Some((out, i + 3));
                }
                line_start = false;
                if wire[i] == b'.' {
                    i += 1;
                    continue;
                }
            }
            out.push(wire[i]);
            line_start = wire[i] == b'\n' && i > 0 && wire[i - 1] == b'\r';
            i += 1;
        }
        None
    }

    #[test]
    fn every_short_input_at_every_pair_of_splits_matches_the_reference() {
        const ALPHABET: &[u8] = b"\r\n.a";
        for len in 0..=7u32 {
            for code in 0..ALPHABET.len().pow(len) {
                let mut wire = Vec::new();
                let mut c = code;
                for _ in 0..len {
                    wire.push(ALPHABET[c % ALPHABET.len()]);
                    c /= ALPHABET.len();
                }
                let want = unstuff_reference(&wire);
                for a in 0..=wire.len() {
                    for b in a..=wire.len() {
                        let got = unstuff_pieces(&[&wire[..a], &wire[a..b], &wire[b..]]);
                        assert_eq!(got, want, "{wire:?} split at {a} and {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn no_early_end() {
        for wire in [
            &b"a\n.\n"[..],
            b"a\r\n.\n",
            b"a\n.\r\n",
            b"a\r\n. \r\n",
            b".x",
        ] {
            assert_eq!(unstuff_pieces(&[wire]), None, "{wire:?}");
        }
    }

    #[test]
    fn stuffs_examples() {
        assert_eq!(stuff_whole(b""), b".\r\n");
        assert_eq!(stuff_whole(b".lead\r\n"), b"..lead\r\n.\r\n");
        assert_eq!(stuff_whole(b"a\r\n.\r\n"), b"a\r\n..\r\n.\r\n");
        assert_eq!(stuff_whole(b"no end"), b"no end\r\n.\r\n");
        assert_eq!(stuff_whole(b"a\n.b"), b"a\n..b\r\n.\r\n");
        assert_eq!(stuff_whole(b"a\r.b\r\n"), b"a\r.b\r\n.\r\n");
    }

    #[test]
    fn stuffing_at_every_split_matches_whole() {
        let msgs: &[&[u8]] = &[
            b".a\r\n..\r\n.\r\nb\n.c\r\n",
            b"x\r\n.",
            b"\r\n.\r\n\r\n",
            b"ends in cr\r",
        ];
        for msg in msgs {
            let whole = stuff_whole(msg);
            for split in 0..=msg.len() {
                for split2 in split..=msg.len() {
                    let mut s = Stuffer::new();
                    let mut out = Vec::new();
                    s.feed(&msg[..split], &mut out);
                    s.feed(&msg[split..split2], &mut out);
                    s.feed(&msg[split2..], &mut out);
                    out.extend_from_slice(s.finish());
                    assert_eq!(out, whole, "{msg:?} at {split}/{split2}");
                    assert_eq!(s.len(), msg.len() as u64);
                }
            }
        }
    }

    #[test]
    fn stuffed_then_unstuffed_is_the_message() {
        // Messages ending in CRLF without bare LF come back exactly (a bare LF gets a dot after
        // it on purpose; see the module comment).
        for (_, msg) in CASES.iter().filter(|(_, m)| !has_bare_lf(m)) {
            if msg.is_empty() || msg.ends_with(b"\r\n") {
                let wire = stuff_whole(msg);
                assert_eq!(
                    unstuff_pieces(&[&wire]),
                    Some((msg.to_vec(), wire.len())),
                    "{msg:?}"
                );
            }
        }
    }

    fn has_bare_lf(m: &[u8]) -> bool {
        m.iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && (i == 0 || m[i - 1] != b'\r'))
    }
}
