//! Finds a message's `Message-ID` while its bytes stream past, without I/O: fed the message
//! (after dot-unstuffing) in pieces of any size, it reads the header block — at most
//! [`MAX_HEADER`] bytes, up to the blank line that ends it — unfolds continuation lines and
//! keeps the first `Message-ID` header's value, in [`normalize`](crate::mailbox::submitted::normalize)d
//! form. Memory is one header line of at most [`MAX_KEPT`] bytes whatever the message.

use crate::mailbox::submitted::normalize;

/// Header bytes read at most; a Message-ID further down is not looked for.
pub const MAX_HEADER: usize = 64 * 1024;
/// Bytes of one physical header line kept (the name and a Message-ID need far fewer).
const MAX_KEPT: usize = 2048;
/// Bytes of an unfolded Message-ID value kept; a longer one is not a usable id.
const MAX_VALUE: usize = 2048;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct MessageIdScan {
    /// The physical line being read (its first [`MAX_KEPT`] bytes).
    line: Vec<u8>,
    /// The line went past [`MAX_KEPT`].
    long: bool,
    /// The unfolded value of the Message-ID header being read.
    value: Option<Vec<u8>>,
    /// The id, once its header is complete.
    found: Option<String>,
    /// Header bytes read.
    scanned: usize,
    /// The header block ended, the id was found, or [`MAX_HEADER`] was reached.
    done: bool,
}

impl MessageIdScan {
    /// A scan at the start of a message.
    pub fn new() -> MessageIdScan {
        MessageIdScan::default()
    }

    /// Reads the next piece of the message.
    pub fn feed(&mut self, input: &[u8]) {
        if self.done {
            return;
        }
        let room = MAX_HEADER - self.scanned;
        let input = &input[..input.len().min(room)];
        self.scanned += input.len();
        let mut rest = input;
        while !rest.is_empty() && !self.done {
            let (part, ended) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..i], true),
                None => (rest, false),
            };
            rest = &rest[(part.len() + usize::from(ended)).min(rest.len())..];
            self.keep(part);
            if ended {
                self.end_line();
            }
        }
        if self.scanned >= MAX_HEADER {
            self.complete();
        }
    }

    /// The Message-ID, once the message has ended (or as far as it came).
    pub fn finish(mut self) -> Option<String> {
        if !self.done && (!self.line.is_empty() || self.long) {
            self.end_line();
        }
        self.complete();
        self.found
    }

    fn keep(&mut self, part: &[u8]) {
        let room = MAX_KEPT.saturating_sub(self.line.len());
        self.line.extend_from_slice(&part[..part.len().min(room)]);
        self.long |= part.len() > room;
    }

    /// One physical line (without its LF) is complete.
    fn end_line(&mut self) {
        let mut line = std::mem::take(&mut self.line);
        let long = std::mem::replace(&mut self.long, false);
        if line.last() == Some(&b'\r') && !long {
            line.pop();
        }
        if line.is_empty() && !long {
            // The blank line: the header block is over.
            self.complete();
            return;
        }
        if matches!(line[0], b' ' | b'\t') {
            // A continuation of the header before.
            if let Some(value) = self.value.as_mut() {
                value.extend_from_slice(&line);
                if long || value.len() > MAX_VALUE {
                    self.value = None;
                    self.done = true;
                }
            }
            return;
        }
        self.complete_header();
        if self.done {
            return;
        }
        let Some(colon) = memchr::memchr(b':', &line) else {
            return;
        };
        if line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"message-id")
        {
            if long {
                // Too long to be a usable id.
                self.done = true;
                return;
            }
            self.value = Some(line[colon + 1..].to_vec());
        }
    }

    /// The header before a new one (or the end) is complete: if it was the Message-ID, that
    /// is the answer and the scan is over.
    fn complete_header(&mut self) {
        if let Some(value) = self.value.take() {
            self.found = normalize(&String::from_utf8_lossy(&value));
            self.done = true;
        }
    }

    fn complete(&mut self) {
        if !self.done {
            self.complete_header();
        }
        self.done = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_whole(message: &[u8]) -> Option<String> {
        let mut s = MessageIdScan::new();
        s.feed(message);
        s.finish()
    }

    #[test]
    fn finds_the_id_at_every_split() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (
                b"Subject: hi\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n",
                Some("<a@b>"),
            ),
            (b"message-id:<A@B>\r\nX: y\r\n\r\n", Some("<A@B>")),
            (
                b"MESSAGE-ID :\r\n <folded@\r\n\thost>\r\nTo: x\r\n\r\n",
                Some("<folded@host>"),
            ),
            (
                b"Subject: x\nMessage-Id: <lf@only>\n\nbody\n",
                Some("<lf@only>"),
            ),
            (
                b"Message-ID: <first@x>\r\nMessage-ID: <second@x>\r\n\r\n",
                Some("<first@x>"),
            ),
            (b"Subject: x\r\n\r\nMessage-ID: <in-body@x>\r\n", None),
            (b"Subject: no id\r\n\r\n", None),
            (b"X-Message-ID: <not@it>\r\n\r\n", None),
            (b"Message-ID: <no-body@x>", Some("<no-body@x>")),
            (b"Message-ID: <no-blank@x>\r\n", Some("<no-blank@x>")),
            (b"", None),
        ];
        for (message, want) in cases {
            let want = want.map(str::to_owned);
            assert_eq!(
                scan_whole(message),
                want,
                "{:?}",
                String::from_utf8_lossy(message)
            );
            for split in 0..=message.len() {
                let mut s = MessageIdScan::new();
                s.feed(&message[..split]);
                s.feed(&message[split..]);
                assert_eq!(s.finish(), want, "split at {split}");
            }
            let mut s = MessageIdScan::new();
            for b in message.chunks(1) {
                s.feed(b);
            }
            assert_eq!(s.finish(), want, "byte by byte");
        }
    }

    #[test]
    fn bounded() {
        // A Message-ID past the first 64 KiB of headers is not looked for.
        let mut m = Vec::new();
        while m.len() < MAX_HEADER {
            m.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
        }
        m.extend_from_slice(b"Message-ID: <late@x>\r\n\r\n");
        assert_eq!(scan_whole(&m), None);
        // An over-long header line elsewhere does not hide the id.
        let mut m = format!("X-Long: {}\r\n", "y".repeat(10_000)).into_bytes();
        m.extend_from_slice(b"Message-ID: <after-long@x>\r\n\r\n");
        assert_eq!(scan_whole(&m), Some("<after-long@x>".into()));
        // An over-long id is no id.
        let m = format!("Message-ID: <{}@x>\r\n\r\n", "z".repeat(5000));
        assert_eq!(scan_whole(m.as_bytes()), None);
        let m = format!("Message-ID: <a@\r\n {}>\r\n\r\n", "z".repeat(3000));
        assert_eq!(scan_whole(m.as_bytes()), None);
        // Binary junk never panics.
        assert_eq!(scan_whole(b"\xff\xfe:\r\n\t\r\n: \r\n\r\n"), None);
        assert_eq!(
            scan_whole(b"Message-ID: <\xff@x>\r\n\r\n"),
            Some("<\u{fffd}@x>".into())
        );
    }
}
