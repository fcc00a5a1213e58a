//! A small scanner for the arguments of IMAP command and response lines, for the folder rule:
//! atoms, quoted strings, literals, parentheses — each token with its byte span, so that a rule
//! can replace one argument and keep every other byte as it came.
//!
//! A line is what the relay shows a rule: one line with its line ending, or a held whole in
//! which literals stand inline (`a SELECT {9}\r\nSent Mail\r\n`). A literal announced at the
//! very end of the line is [`Kind::Trailing`]: its data follows the line and is not here.
//! Scanning is iterative and never reads past the line; a form it does not know is
//! [`Malformed`], and callers then leave the line alone.

use std::borrow::Cow;
use std::ops::Range;

/// One argument (or parenthesis) of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: Kind,
    /// Its bytes in the line: a quoted string with its quotes, a literal with its
    /// announcement (and its data, when inline).
    pub span: Range<usize>,
}

/// The kinds of token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A run of bytes up to a space, parenthesis, quote, `{` or the line's end (also `NIL`,
    /// flags, `[Gmail]/Sent`, patterns with `*` and `%`).
    Atom,
    /// A quoted string (`\"` and `\\` escapes).
    Quoted,
    /// A literal whose data is in the line (a held whole): `data` is where.
    Literal {
        /// The data's bytes in the line.
        data: Range<usize>,
    },
    /// A literal announced at the end of the line: its data follows the line.
    Trailing {
        /// The announced length.
        length: u64,
    },
    /// `(`.
    Open,
    /// `)`.
    Close,
}

/// The line does not have a form the scanner knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl Token {
    /// The string this token stands for (an atom's bytes, a quoted string unescaped, a
    /// literal's data); `None` for parentheses and trailing literals.
    pub fn string<'a>(&self, line: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        let bytes = line.get(self.span.clone())?;
        match &self.kind {
            Kind::Atom => Some(Cow::Borrowed(bytes)),
            Kind::Quoted => {
                let inner = bytes.get(1..bytes.len().saturating_sub(1))?;
                Some(unescape(inner))
            }
            Kind::Literal { data } => line.get(data.clone()).map(Cow::Borrowed),
            Kind::Trailing { .. } | Kind::Open | Kind::Close => None,
        }
    }

    /// Whether the token is an atom equal to `word`, ignoring ASCII case.
    pub fn is_word(&self, line: &[u8], word: &[u8]) -> bool {
        self.kind == Kind::Atom
            && line
                .get(self.span.clone())
                .is_some_and(|b| b.eq_ignore_ascii_case(word))
    }

    /// Whether the token can stand for a mailbox name (an astring, or a literal still to come).
    pub fn is_string(&self) -> bool {
        matches!(
            self.kind,
            Kind::Atom | Kind::Quoted | Kind::Literal { .. } | Kind::Trailing { .. }
        )
    }
}

/// Where the line's final line ending (CRLF or LF) begins; the line's length if it has none.
pub fn line_end(line: &[u8]) -> usize {
    match line.strip_suffix(b"\n") {
        Some(l) => l.strip_suffix(b"\r").unwrap_or(l).len(),
        None => line.len(),
    }
}

/// Reads the tokens of one line, from a given offset.
#[derive(Debug, Clone)]
pub struct Scanner<'a> {
    line: &'a [u8],
    pos: usize,
    end: usize,
    /// The line has its line ending (only then can it announce a literal).
    ended: bool,
}

impl<'a> Scanner<'a> {
    /// Tokens of `line` from byte `from` on.
    pub fn new(line: &'a [u8], from: usize) -> Scanner<'a> {
        let end = line_end(line);
        Scanner {
            line,
            pos: from,
            end,
            ended: end < line.len(),
        }
    }

    /// The next token; `Ok(None)` at the line's end.
    pub fn next_token(&mut self) -> Result<Option<Token>, Malformed> {
        while self.line.get(self.pos) == Some(&b' ') && self.pos < self.end {
            self.pos += 1;
        }
        if self.pos >= self.end {
            return Ok(None);
        }
        let start = self.pos;
        let Some(&first) = self.line.get(start) else {
            return Ok(None);
        };
        let kind = match first {
            b'(' => {
                self.pos += 1;
                Kind::Open
            }
            b')' => {
                self.pos += 1;
                Kind::Close
            }
            b'"' => self.quoted()?,
            b'{' => self.literal(start)?,
            b'~' if self.line.get(start + 1) == Some(&b'{') => self.literal(start + 1)?,
            b'\r' | b'\n' => return Err(Malformed),
            _ => {
                let len = self.line[start..self.end]
                    .iter()
                    .position(|&b| matches!(b, b' ' | b'(' | b')' | b'"' | b'{' | b'\r' | b'\n'))
                    .unwrap_or(self.end - start);
                self.pos = start + len;
                Kind::Atom
            }
        };
        Ok(Some(Token {
            kind,
            span: start..self.pos,
        }))
    }

    /// A quoted string starting at `pos`.
    fn quoted(&mut self) -> Result<Kind, Malformed> {
        let mut i = self.pos + 1;
        while i < self.end {
            match self.line.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(Kind::Quoted);
                }
                Some(b'\\') => i += 2,
                Some(b'\r' | b'\n') | None => return Err(Malformed),
                Some(_) => i += 1,
            }
        }
        Err(Malformed)
    }

    /// A literal whose `{` is at `open`.
    fn literal(&mut self, open: usize) -> Result<Kind, Malformed> {
        let rest = self.line.get(open + 1..self.end).ok_or(Malformed)?;
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 20 {
            return Err(Malformed);
        }
        let mut length: u64 = 0;
        for &d in &rest[..digits] {
            length = length
                .checked_mul(10)
                .and_then(|l| l.checked_add(u64::from(d - b'0')))
                .ok_or(Malformed)?;
        }
        let mut close = open + 1 + digits;
        if self.line.get(close) == Some(&b'+') {
            close += 1;
        }
        if self.line.get(close) != Some(&b'}') {
            return Err(Malformed);
        }
        let after = close + 1;
        if after == self.end {
            if !self.ended {
                return Err(Malformed);
            }
            self.pos = after;
            return Ok(Kind::Trailing { length });
        }
        // Inline data follows the announcement's own line ending.
        let data_start = match self.line.get(after..after + 2) {
            Some(b"\r\n") => after + 2,
            _ if self.line.get(after) == Some(&b'\n') => after + 1,
            _ => return Err(Malformed),
        };
        let len = usize::try_from(length).map_err(|_| Malformed)?;
        let data_end = data_start.checked_add(len).ok_or(Malformed)?;
        if data_end > self.end {
            return Err(Malformed);
        }
        self.pos = data_end;
        Ok(Kind::Literal {
            data: data_start..data_end,
        })
    }

    /// After an [`Kind::Open`]: the tokens up to its matching [`Kind::Close`], each item at
    /// the first level as one span (a nested parenthesized group is one item).
    pub fn group(&mut self) -> Result<Vec<Range<usize>>, Malformed> {
        let mut items = Vec::new();
        let mut depth = 0usize;
        let mut item_start = 0;
        loop {
            let token = self.next_token()?.ok_or(Malformed)?;
            match token.kind {
                Kind::Open => {
                    if depth == 0 {
                        item_start = token.span.start;
                    }
                    depth += 1;
                }
                Kind::Close if depth == 0 => return Ok(items),
                Kind::Close => {
                    depth -= 1;
                    if depth == 0 {
                        items.push(item_start..token.span.end);
                    }
                }
                // The rule does not hold literals inside option lists.
                Kind::Trailing { .. } => return Err(Malformed),
                _ if depth == 0 => items.push(token.span),
                _ => {}
            }
        }
    }

    /// Where the scanner is.
    pub fn position(&self) -> usize {
        self.pos
    }
}

/// A quoted string's inside with its escapes undone.
fn unescape(inner: &[u8]) -> Cow<'_, [u8]> {
    if !inner.contains(&b'\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut escaped = false;
    for &b in inner {
        if b == b'\\' && !escaped {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(b);
    }
    Cow::Owned(out)
}

/// Whether `name` can go in a quoted string: no CR, LF or NUL, and no 8-bit byte unless
/// `eight_bit` (UTF8=ACCEPT is on).
pub fn quotable(name: &[u8], eight_bit: bool) -> bool {
    name.iter()
        .all(|&b| !matches!(b, b'\r' | b'\n' | 0) && (eight_bit || b.is_ascii()))
}

/// Appends `name` as a quoted string if it is [`quotable`], else as a literal with its data
/// inline (`{N+}` when `nonsync`, for a server; `{N}` for a client, which never waits).
pub fn push_string(out: &mut Vec<u8>, name: &[u8], eight_bit: bool, nonsync: bool) {
    if quotable(name, eight_bit) {
        out.push(b'"');
        for &b in name {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        let plus = if nonsync { "+" } else { "" };
        out.extend_from_slice(format!("{{{}{plus}}}\r\n", name.len()).as_bytes());
        out.extend_from_slice(name);
    }
}

/// `line` with each span replaced by its bytes (spans in order, not overlapping).
pub fn splice(line: &[u8], edits: &[(Range<usize>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 64);
    let mut at = 0;
    for (span, bytes) in edits {
        if span.start < at || span.end > line.len() || span.start > span.end {
            continue;
        }
        out.extend_from_slice(&line[at..span.start]);
        out.extend_from_slice(bytes);
        at = span.end;
    }
    out.extend_from_slice(&line[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(line: &[u8]) -> Result<Vec<(Kind, Vec<u8>)>, Malformed> {
        let mut s = Scanner::new(line, 0);
        let mut out = Vec::new();
        while let Some(t) = s.next_token()? {
            out.push((t.kind.clone(), line[t.span].to_vec()));
        }
        Ok(out)
    }

    #[test]
    fn atoms_quoted_strings_and_parentheses() {
        let line = b"a LIST (SPECIAL-USE) \"\" \"Sent \\\"x\\\\\" [Gmail]/%\r\n";
        let t = tokens(line).unwrap();
        let kinds: Vec<&Kind> = t.iter().map(|(k, _)| k).collect();
        assert_eq!(
            kinds,
            [
                &Kind::Atom,
                &Kind::Atom,
                &Kind::Open,
                &Kind::Atom,
                &Kind::Close,
                &Kind::Quoted,
                &Kind::Quoted,
                &Kind::Atom
            ]
        );
        assert_eq!(t[7].1, b"[Gmail]/%");
        let mut s = Scanner::new(line, 23);
        let q = s.next_token().unwrap().unwrap();
        assert_eq!(q.string(line).unwrap().as_ref(), b"Sent \"x\\");
    }

    #[test]
    fn literals_inline_and_trailing() {
        let line = b"a RENAME {3}\r\nabc {4+}\r\n";
        let t = tokens(line).unwrap();
        assert_eq!(t[2].0, Kind::Literal { data: 14..17 });
        assert_eq!(t[3].0, Kind::Trailing { length: 4 });
        let mut s = Scanner::new(line, 9);
        let lit = s.next_token().unwrap().unwrap();
        assert_eq!(lit.string(line).unwrap().as_ref(), b"abc");
        // Literal8 of APPEND is a literal too.
        let t = tokens(b"a APPEND x ~{5}\r\n").unwrap();
        assert_eq!(t[3].0, Kind::Trailing { length: 5 });
        // Data that would run past the line, and broken forms.
        for bad in [
            &b"a SELECT {9}\r\nabc\r\n"[..],
            b"a SELECT {x}\r\n",
            b"a SELECT {3}abc\r\n",
            b"a SELECT \"abc\r\n",
            b"a SELECT {99999999999999999999999}\r\n",
            // Without its line ending a line announces nothing.
            b"a SELECT {3}",
        ] {
            assert_eq!(
                tokens(bad),
                Err(Malformed),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn groups_are_read_as_items() {
        let line = b"(CHILDREN STATUS (MESSAGES UNSEEN) SPECIAL-USE) x\r\n";
        let mut s = Scanner::new(line, 1);
        let items = s.group().unwrap();
        let items: Vec<&[u8]> = items.into_iter().map(|r| &line[r]).collect();
        assert_eq!(
            items,
            [
                &b"CHILDREN"[..],
                b"STATUS",
                b"(MESSAGES UNSEEN)",
                b"SPECIAL-USE"
            ]
        );
        assert_eq!(Scanner::new(b"(a (b)\r\n", 1).group(), Err(Malformed));
    }

    #[test]
    fn strings_are_written_quoted_or_as_literals() {
        let mut out = Vec::new();
        push_string(&mut out, b"a \"b\" \\c", false, true);
        assert_eq!(out, b"\"a \\\"b\\\" \\\\c\"");
        out.clear();
        push_string(&mut out, "Entwürfe".as_bytes(), true, true);
        assert_eq!(out, "\"Entwürfe\"".as_bytes());
        out.clear();
        push_string(&mut out, "Entwürfe".as_bytes(), false, true);
        assert_eq!(out, "{9+}\r\nEntwürfe".as_bytes());
        out.clear();
        push_string(&mut out, b"a\r\nb", true, false);
        assert_eq!(out, b"{4}\r\na\r\nb");
        assert_eq!(
            splice(
                b"0123456789",
                &[(1..3, b"x".to_vec()), (5..5, b"y".to_vec())]
            ),
            b"0x34y56789"
        );
    }
}
