//! The upstream connection while mailgate talks to the server itself (the login steps, and
//! the warm sessions' UNSELECT and NOOP): one command and its tagged answer at a time, each
//! answer bounded in bytes ([`MAX_ANSWER`]) and by one deadline.

use super::{LoggedIn, MAX_ANSWER};
use crate::net::ConnectError;
use crate::upstream::{UpstreamError, UpstreamStream};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use zeroize::Zeroizing;

/// Longest line accepted from the upstream before login completes.
const MAX_LINE: usize = 64 * 1024;

/// The connection while we talk to the server ourselves.
pub(super) struct Conn {
    pub(super) stream: UpstreamStream,
    pub(super) buf: Vec<u8>,
    pub(super) address: String,
    pub(super) timeout: Duration,
    pub(super) next_tag: u32,
    /// When the current step's answer must be complete.
    pub(super) deadline: Instant,
    /// Bytes the server may still send in the current step.
    pub(super) left: usize,
}

impl Conn {
    pub(super) fn new(
        stream: UpstreamStream,
        buf: Vec<u8>,
        address: String,
        timeout: Duration,
    ) -> Conn {
        Conn {
            stream,
            buf,
            address,
            timeout,
            next_tag: 0,
            deadline: Instant::now() + timeout,
            left: MAX_ANSWER,
        }
    }

    /// Starts a step: a fresh deadline and byte allowance for the server's answer to it.
    pub(super) fn begin(&mut self) {
        self.deadline = Instant::now() + self.timeout;
        self.left = MAX_ANSWER;
    }

    pub(super) fn timed_out(&self, step: &'static str) -> UpstreamError {
        UpstreamError::Timeout {
            address: self.address.clone(),
            secs: self.timeout.as_secs(),
            step,
        }
    }

    pub(super) async fn read_line(&mut self, step: &'static str) -> Result<Vec<u8>, UpstreamError> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf) {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                return Err(self.protocol(format!(
                    "a response line longer than {MAX_LINE} bytes ({step})"
                )));
            }
            // Read into the Vec's spare room: a stack array here would live in the session's
            // future (and so in every session's memory) for the whole session.
            self.buf.reserve(4096);
            let read = self.stream.read_buf(&mut self.buf);
            let n = match tokio::time::timeout_at(self.deadline, read).await {
                Err(_) => return Err(self.timed_out(step)),
                Ok(Err(e)) => return Err(self.io_error(e, step)),
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                return Err(UpstreamError::Closed {
                    address: self.address.clone(),
                    step,
                });
            }
            self.left = match self.left.checked_sub(n) {
                Some(left) => left,
                None => {
                    return Err(
                        self.protocol(format!("an answer longer than {MAX_ANSWER} bytes ({step})"))
                    )
                }
            };
        }
    }

    pub(super) async fn send(
        &mut self,
        bytes: &[u8],
        step: &'static str,
    ) -> Result<(), UpstreamError> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout_at(self.deadline, write).await {
            Err(_) => Err(self.timed_out(step)),
            Ok(Err(e)) => Err(self.io_error(e, step)),
            Ok(Ok(())) => Ok(()),
        }
    }

    pub(super) fn tag(&mut self) -> String {
        self.next_tag += 1;
        format!("mg{}", self.next_tag)
    }

    /// Sends a command and reads up to its tagged completion. Returns (status word, rest of
    /// the tagged line, untagged lines). Continuation requests are answered by `on_continue`.
    pub(super) async fn command(
        &mut self,
        command: &[u8],
        step: &'static str,
        mut on_continue: Option<&[u8]>,
    ) -> Result<(String, String, Vec<Vec<u8>>), UpstreamError> {
        self.begin();
        let tag = self.tag();
        let mut line = Zeroizing::new(Vec::with_capacity(command.len() + tag.len() + 3));
        line.extend_from_slice(tag.as_bytes());
        line.push(b' ');
        line.extend_from_slice(command);
        line.extend_from_slice(b"\r\n");
        self.send(&line, step).await?;
        let mut untagged = Vec::new();
        loop {
            let resp = self.read_line(step).await?;
            if resp.starts_with(b"+") {
                match on_continue.take() {
                    Some(data) => {
                        let mut d = Zeroizing::new(data.to_vec());
                        d.extend_from_slice(b"\r\n");
                        self.send(&d, step).await?;
                        continue;
                    }
                    None => {
                        // Not expecting one: cancel the exchange rather than hang.
                        self.send(b"*\r\n", step).await?;
                        continue;
                    }
                }
            }
            if let Some((status, rest)) = tagged(&resp, &tag) {
                return Ok((status, rest, untagged));
            }
            if crate::imap::framer::announcement(&resp).is_some() {
                return Err(self.protocol(format!("unexpected literal in a response ({step})")));
            }
            untagged.push(resp);
        }
    }

    pub(super) fn protocol(&self, reason: String) -> UpstreamError {
        UpstreamError::Protocol {
            address: self.address.clone(),
            reason,
        }
    }

    pub(super) fn io_error(&self, e: std::io::Error, step: &'static str) -> UpstreamError {
        if let Some(r) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            return UpstreamError::Net(ConnectError::Tls {
                address: self.address.clone(),
                reason: r.to_string(),
                failure: crate::upstream::TlsFailure::of(r),
            });
        }
        UpstreamError::Protocol {
            address: self.address.clone(),
            reason: format!("{step}: {e}"),
        }
    }
}

/// Runs `command` (one that takes no continuation: NOOP, UNSELECT) on a logged-in connection,
/// bounded as a login step, and gives the connection back when the server answered `OK` and
/// sent nothing else but untagged responses other than `BYE`. Anything else — a tagged answer
/// to another command, a `+`, a `BYE`, a closed connection — means the connection is not in
/// the state its keeper believed (the warm sessions' proof of a clean, live connection).
pub async fn exchange(
    up: LoggedIn,
    command: &'static str,
    address: String,
    timeout: Duration,
) -> Result<LoggedIn, UpstreamError> {
    let LoggedIn {
        stream,
        capabilities,
        leftover,
    } = up;
    let mut conn = Conn::new(stream, leftover, address, timeout);
    conn.next_tag = 1000;
    conn.begin();
    let tag = conn.tag();
    // The command names its step in errors.
    let step = command;
    conn.send(format!("{tag} {command}\r\n").as_bytes(), step)
        .await?;
    loop {
        let resp = conn.read_line(step).await?;
        if let Some((status, text)) = tagged(&resp, &tag) {
            if status != "OK" {
                return Err(conn.protocol(format!("{step} failed: {status} {text}")));
            }
            return Ok(LoggedIn {
                stream: conn.stream,
                capabilities,
                leftover: conn.buf,
            });
        }
        if !resp.starts_with(b"* ") || crate::imap::framer::is_bye(&resp) {
            return Err(conn.protocol(format!(
                "{step}: unexpected {:?}",
                truncate(&printable(&resp), 80)
            )));
        }
        if crate::imap::framer::announcement(&resp).is_some() {
            return Err(conn.protocol(format!("unexpected literal in a response ({step})")));
        }
    }
}

/// `(STATUS, text)` if `resp` is the tagged completion for `tag`.
pub(crate) fn tagged(resp: &[u8], tag: &str) -> Option<(String, String)> {
    let rest = resp.strip_prefix(tag.as_bytes())?.strip_prefix(b" ")?;
    let text = printable(rest);
    let (status, rest) = text.split_once(' ').unwrap_or((text.as_str(), ""));
    Some((status.to_ascii_uppercase(), rest.to_owned()))
}

/// A response line as text safe to log: line ending removed, control characters replaced.
pub(super) fn printable(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(line)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
