//! mailgate's own commands on a logged-in upstream connection (the folder LIST before the
//! relay starts, the Sent copy's APPEND): writes under a deadline, and reads whole responses —
//! a line and the literals it announces, inline — from the bytes the login left over and then
//! the connection. Every answer is bounded in bytes, in time (one deadline per step), in line
//! length and in literal size; bytes after what was read stay in [`LoggedIn::leftover`] for
//! whoever reads next (the relay).

use super::framer::announcement;
use super::upstream::LoggedIn;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// Longest response line (without its literals).
pub const MAX_LINE: usize = 64 * 1024;
/// Largest literal in a response.
pub const MAX_LITERAL: usize = 64 * 1024;

/// Why a command of mailgate's own on the upstream connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// Reading or writing failed.
    #[error("connection error: {0}")]
    Io(#[source] std::io::Error),
    /// The step's deadline passed.
    #[error("no complete answer within {secs} s")]
    Timeout { secs: u64 },
    /// The answer went past a bound (`what`: the answer, a line, a literal, the entries).
    #[error("{what} larger than {max}")]
    TooLarge { what: &'static str, max: usize },
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// The server answered the command NO or BAD (its words, control characters replaced).
    #[error("the server refused {command}: {text}")]
    Refused { command: &'static str, text: String },
    /// The server's answer is not what IMAP allows here.
    #[error("unexpected answer: {reason}")]
    Protocol { reason: String },
}

impl ExchangeError {
    /// A short fixed word for logs and labels.
    pub fn kind(&self) -> &'static str {
        match self {
            ExchangeError::Io(_) => "io",
            ExchangeError::Timeout { .. } => "timeout",
            ExchangeError::TooLarge { .. } => "too_large",
            ExchangeError::Closed => "closed",
            ExchangeError::Refused { .. } => "refused",
            ExchangeError::Protocol { .. } => "protocol",
        }
    }
}

/// Reading and writing on a logged-in connection; see the module documentation.
pub struct Exchange<'a> {
    up: &'a mut LoggedIn,
    /// Bytes of `up.leftover` already taken.
    taken: usize,
    timeout: Duration,
    deadline: Instant,
    /// Bytes the server may still send in this step.
    left: usize,
    max_answer: usize,
}

impl<'a> Exchange<'a> {
    /// Starts on `up`; each step ([`Exchange::begin`]) gets `timeout` and `max_answer` bytes.
    pub fn new(up: &'a mut LoggedIn, timeout: Duration, max_answer: usize) -> Exchange<'a> {
        Exchange {
            up,
            taken: 0,
            timeout,
            deadline: Instant::now() + timeout,
            left: max_answer,
            max_answer,
        }
    }

    /// Starts a step: a fresh deadline and byte allowance.
    pub fn begin(&mut self) {
        self.deadline = Instant::now() + self.timeout;
        self.left = self.max_answer;
    }

    /// The capabilities the server announced after login.
    pub fn capabilities(&self) -> &[String] {
        &self.up.capabilities
    }

    /// Writes `bytes` (and flushes) before the step's deadline.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), ExchangeError> {
        let stream = &mut self.up.stream;
        let write = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        match tokio::time::timeout_at(self.deadline, write).await {
            Err(_) => Err(self.timed_out()),
            Ok(Err(e)) => Err(ExchangeError::Io(e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// The next whole response: its line, with each literal it announces and the rest of the
    /// line after it, up to the final CRLF.
    pub async fn response(&mut self) -> Result<Vec<u8>, ExchangeError> {
        let mut out = Vec::new();
        loop {
            let line_len = self.line().await?;
            let line = self.take(line_len)?;
            let literal = announcement(line);
            out.extend_from_slice(line);
            let Some(literal) = literal else {
                return Ok(out);
            };
            let length = usize::try_from(literal.length)
                .ok()
                .filter(|&n| n <= MAX_LITERAL)
                .ok_or(ExchangeError::TooLarge {
                    what: "a literal",
                    max: MAX_LITERAL,
                })?;
            self.fill(length).await?;
            out.extend_from_slice(self.take(length)?);
        }
    }

    /// The length of the next line (LF included) in the buffer, reading until it is there.
    async fn line(&mut self) -> Result<usize, ExchangeError> {
        let mut searched = 0;
        loop {
            let unread = &self.up.leftover[self.taken..];
            if let Some(i) = memchr::memchr(b'\n', &unread[searched..]) {
                return Ok(searched + i + 1);
            }
            searched = unread.len();
            if searched > MAX_LINE {
                return Err(ExchangeError::TooLarge {
                    what: "a response line",
                    max: MAX_LINE,
                });
            }
            self.read().await?;
        }
    }

    /// Reads until at least `n` bytes are buffered past what was taken.
    async fn fill(&mut self, n: usize) -> Result<(), ExchangeError> {
        while self.up.leftover.len() - self.taken < n {
            self.read().await?;
        }
        Ok(())
    }

    /// Takes `n` buffered bytes, counting them against the step's allowance.
    fn take(&mut self, n: usize) -> Result<&[u8], ExchangeError> {
        self.left = self.left.checked_sub(n).ok_or(ExchangeError::TooLarge {
            what: "the answer",
            max: self.max_answer,
        })?;
        let start = self.taken;
        self.taken += n;
        Ok(&self.up.leftover[start..start + n])
    }

    async fn read(&mut self) -> Result<(), ExchangeError> {
        // What was taken is dropped first, so the buffer holds one line or literal at most.
        self.up.leftover.drain(..self.taken);
        self.taken = 0;
        self.up.leftover.reserve(16 * 1024);
        let read = self.up.stream.read_buf(&mut self.up.leftover);
        match tokio::time::timeout_at(self.deadline, read).await {
            Err(_) => Err(self.timed_out()),
            Ok(Err(e)) => Err(ExchangeError::Io(e)),
            Ok(Ok(0)) => Err(ExchangeError::Closed),
            Ok(Ok(_)) => Ok(()),
        }
    }

    fn timed_out(&self) -> ExchangeError {
        ExchangeError::Timeout {
            secs: self.timeout.as_secs(),
        }
    }
}

impl Drop for Exchange<'_> {
    /// What was taken is gone; the rest stays for the relay.
    fn drop(&mut self) {
        self.up.leftover.drain(..self.taken);
    }
}

/// `(STATUS, text)` if `response` is the tagged completion for `tag`: the status upper-cased,
/// the text printable (control characters replaced, at most 300 characters).
pub fn completion(response: &[u8], tag: &str) -> Option<(String, String)> {
    let (status, text) = super::upstream::tagged(response, tag)?;
    Some((status, text.chars().take(300).collect()))
}

/// `mailbox` as an IMAP quoted string, if it can be one (7-bit, no CR, LF or NUL).
pub fn quoted(mailbox: &[u8]) -> Option<Vec<u8>> {
    use crate::imap::folders::syntax::{push_string, quotable};
    if !quotable(mailbox, false) {
        return None;
    }
    let mut out = Vec::with_capacity(mailbox.len() + 2);
    push_string(&mut out, mailbox, false, false);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_quoting() {
        assert_eq!(
            completion(b"mgl OK [X] done\r\n", "mgl"),
            Some(("OK".into(), "[X] done".into()))
        );
        assert_eq!(
            completion(b"mgl no\x01 way\r\n", "mgl"),
            Some(("NO?".into(), "way".into()))
        );
        assert_eq!(completion(b"mgl2 OK\r\n", "mgl"), None);
        assert_eq!(completion(b"* OK\r\n", "mgl"), None);
        assert_eq!(quoted(b"Sent \"x\\y"), Some(br#""Sent \"x\\y""#.to_vec()));
        assert_eq!(quoted(b"a\r\nb"), None);
        assert_eq!(
            quoted("Sendt e-post".as_bytes()),
            Some(b"\"Sendt e-post\"".to_vec())
        );
        assert_eq!(quoted("Gesendete Elemente \u{e9}".as_bytes()), None);
    }
}
