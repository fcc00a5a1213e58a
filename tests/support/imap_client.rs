//! A small raw IMAP client for byte-exact assertions.
//!
//! It frames server responses the way IMAP does: a line ending in `{n}` CRLF is followed by
//! exactly n literal bytes, after which the response goes on. Literal bytes are never
//! interpreted, so a message line such as `a1 OK` or `{5}` inside a FETCH literal cannot end
//! a read early. Every read has a timeout, so a hung server fails the test instead of hanging
//! it.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// Per-read timeout. Generous: the point is to turn a hang into a failure, not to measure.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound on one response (a FETCH of 1000 messages is one response per message).
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

pub struct ImapClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    pub addr: SocketAddr,
    /// The greeting line(s), when read by `connect`.
    pub greeting: Vec<u8>,
}

impl ImapClient {
    /// Connects and reads the greeting (skipping Dovecot's "Waiting for authentication
    /// process" notice, which comes before the real greeting when its auth process is slow).
    pub fn connect(addr: SocketAddr) -> ImapClient {
        let mut client = ImapClient::connect_raw(addr);
        for _ in 0..5 {
            let line = client
                .read_response()
                .unwrap_or_else(|e| panic!("reading the greeting from {addr}: {e}"));
            client.greeting.extend_from_slice(&line);
            if !line.starts_with(b"* OK Waiting for authentication") {
                break;
            }
        }
        client
    }

    /// Connects without reading anything.
    pub fn connect_raw(addr: SocketAddr) -> ImapClient {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
        stream
            .set_write_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
        let _ = stream.set_nodelay(true);
        let writer = stream.try_clone().expect("clone stream");
        ImapClient {
            reader: BufReader::with_capacity(256 * 1024, stream),
            writer,
            addr,
            greeting: Vec::new(),
        }
    }

    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.writer
            .set_read_timeout(Some(timeout))
            .expect("set timeout");
    }

    /// A second handle on the connection, for writing from another thread while this one
    /// reads (a long pipeline would otherwise fill both sides' buffers and stall).
    pub fn writer_clone(&self) -> TcpStream {
        self.writer.try_clone().expect("clone stream")
    }

    /// Writes raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write to {}: {e}", self.addr));
    }

    /// Like `send`, but reports a failed write (for peers that may have closed).
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Reads one complete response: a line plus any literals it announces, up to and
    /// including the final CRLF. Err on EOF (UnexpectedEof) or timeout.
    pub fn read_response(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let start = out.len();
            let n = (&mut self.reader)
                .take((MAX_RESPONSE - start) as u64)
                .read_until(b'\n', &mut out)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed after {} bytes of a response: {:?}",
                        out.len(),
                        String::from_utf8_lossy(&out)
                    ),
                ));
            }
            if !out.ends_with(b"\n") {
                if out.len() >= MAX_RESPONSE {
                    return Err(io::Error::other("response too long"));
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed mid-line: {:?}",
                        String::from_utf8_lossy(&out)
                    ),
                ));
            }
            match literal_len(&out[start..]) {
                Some(len) => {
                    if out.len() + len > MAX_RESPONSE {
                        return Err(io::Error::other("literal too long"));
                    }
                    let at = out.len();
                    out.resize(at + len, 0);
                    self.reader.read_exact(&mut out[at..])?;
                }
                None => return Ok(out),
            }
        }
    }

    /// Reads responses until the tagged completion for `tag`; returns all bytes read
    /// (untagged responses, continuation requests, and the tagged line), unmodified.
    pub fn read_until_tagged(&mut self, tag: &str) -> Vec<u8> {
        let mut all = Vec::new();
        let prefix = format!("{tag} ");
        for _ in 0..10_000_000u32 {
            match self.read_response() {
                Ok(resp) => {
                    let done = resp.starts_with(prefix.as_bytes());
                    all.extend_from_slice(&resp);
                    if done {
                        return all;
                    }
                }
                Err(e) => panic!(
                    "waiting for the tagged response to {tag} from {}: {e}\nread so far ({} bytes, last 2000 shown):\n{}",
                    self.addr,
                    all.len(),
                    tail(&all, 2000)
                ),
            }
        }
        panic!("no tagged response to {tag}");
    }

    /// Reads responses until a continuation request (`+ ...`), which is returned; anything
    /// before it is appended to `before`. Panics if a tagged response comes instead.
    pub fn read_continuation(&mut self) -> Vec<u8> {
        let mut before = Vec::new();
        for _ in 0..1000 {
            let resp = self.read_response().unwrap_or_else(|e| {
                panic!(
                    "waiting for a continuation request from {}: {e}\nread so far: {}",
                    self.addr,
                    String::from_utf8_lossy(&before)
                )
            });
            if resp.starts_with(b"+") {
                return resp;
            }
            if !resp.starts_with(b"* ") {
                panic!(
                    "expected a continuation request, got: {}",
                    String::from_utf8_lossy(&resp)
                );
            }
            before.extend_from_slice(&resp);
        }
        panic!("no continuation request");
    }

    /// Sends `tag command\r\n` and reads up to the tagged response.
    pub fn command(&mut self, tag: &str, command: &str) -> Vec<u8> {
        self.command_bytes(tag, command.as_bytes())
    }

    pub fn command_bytes(&mut self, tag: &str, command: &[u8]) -> Vec<u8> {
        let mut line = Vec::with_capacity(tag.len() + command.len() + 3);
        line.extend_from_slice(tag.as_bytes());
        line.push(b' ');
        line.extend_from_slice(command);
        line.extend_from_slice(b"\r\n");
        self.send(&line);
        self.read_until_tagged(tag)
    }

    /// Sends a command and asserts its tagged response is OK; returns all response bytes.
    pub fn ok(&mut self, tag: &str, command: &str) -> Vec<u8> {
        let resp = self.command(tag, command);
        assert_tagged(&resp, tag, "OK");
        resp
    }

    /// LOGIN with quoted strings; asserts OK.
    pub fn login(&mut self, user: &str, password: &str) -> Vec<u8> {
        let cmd = format!("LOGIN {} {}", quote(user), quote(password));
        let resp = self.command("L1", &cmd);
        assert_tagged(&resp, "L1", "OK");
        resp
    }

    /// APPEND with a synchronizing literal: waits for the continuation request.
    pub fn append_sync(&mut self, tag: &str, mailbox: &str, message: &[u8]) -> Vec<u8> {
        self.send(format!("{tag} APPEND {} {{{}}}\r\n", quote(mailbox), message.len()).as_bytes());
        self.read_continuation();
        self.send(message);
        self.send(b"\r\n");
        self.read_until_tagged(tag)
    }

    /// APPEND with a non-synchronizing literal (LITERAL+): one write, no round trip.
    pub fn append_nonsync(&mut self, tag: &str, mailbox: &str, message: &[u8]) -> Vec<u8> {
        let mut out =
            format!("{tag} APPEND {} {{{}+}}\r\n", quote(mailbox), message.len()).into_bytes();
        out.extend_from_slice(message);
        out.extend_from_slice(b"\r\n");
        self.send(&out);
        self.read_until_tagged(tag)
    }

    /// Reads until the peer closes the connection. Ok(bytes read before EOF), or Err(bytes)
    /// if the read timed out (the peer kept the connection open) or failed otherwise.
    pub fn read_to_eof(&mut self, timeout: Duration) -> Result<Vec<u8>, (Vec<u8>, io::Error)> {
        self.set_read_timeout(timeout);
        let mut all = Vec::new();
        let mut buf = [0u8; 8192];
        for _ in 0..100_000 {
            match self.reader.read(&mut buf) {
                Ok(0) => return Ok(all),
                Ok(n) => all.extend_from_slice(&buf[..n]),
                // A reset after the server closed is a close too.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(all),
                // A signal (e.g. SIGCHLD from a server the test stopped) interrupted the read.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err((all, e)),
            }
        }
        Err((all, io::Error::other("too much data")))
    }

    pub fn shutdown(&mut self) {
        let _ = self.writer.shutdown(Shutdown::Both);
    }
}

/// If `line` (one line of a server response, ending in LF) ends with a literal announcement
/// `{n}` (or `~{n}`, or a client-style `{n+}`/`{n-}`), returns n.
pub fn literal_len(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits
        .strip_suffix(b"+")
        .or_else(|| digits.strip_suffix(b"-"))
        .unwrap_or(digits);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The last line of a response block (the tagged completion for `read_until_tagged`).
pub fn last_line(resp: &[u8]) -> &[u8] {
    let body = resp.strip_suffix(b"\r\n").unwrap_or(resp);
    let start = body
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    &resp[start..]
}

/// The tagged completion line of `tag` in `resp`, as text without CRLF.
pub fn tagged_line(resp: &[u8], tag: &str) -> String {
    let line = last_line(resp);
    let text = String::from_utf8_lossy(line).trim_end().to_string();
    assert!(
        text.starts_with(&format!("{tag} ")),
        "expected a tagged response for {tag}, got {text:?}"
    );
    text
}

/// The tagged line without its tag: `OK [..] text`.
pub fn tagged_status(resp: &[u8], tag: &str) -> String {
    tagged_line(resp, tag)[tag.len() + 1..].to_string()
}

/// Asserts the tagged response for `tag` has status `status` (OK, NO, BAD).
pub fn assert_tagged(resp: &[u8], tag: &str, status: &str) {
    let line = tagged_line(resp, tag);
    assert!(
        line.starts_with(&format!("{tag} {status}")),
        "expected {tag} {status}, got {line:?}\nfull response (last 2000 bytes):\n{}",
        tail(resp, 2000)
    );
}

/// IMAP quoted string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Replaces Dovecot's per-command timing, e.g. ` (0.001 + 0.000 secs).` at the end of a
/// tagged line, with ` (TIME secs).`, so answers from two runs can be compared. Only
/// single-line responses are touched: literal content (a message may well contain such a
/// line) is left exactly as it is.
pub fn normalize_timing(resp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(resp.len());
    for response in split_responses(resp) {
        let first_nl = response.iter().position(|&b| b == b'\n');
        if first_nl.is_some_and(|nl| nl + 1 == response.len()) {
            out.extend_from_slice(&normalize_line(response));
        } else {
            out.extend_from_slice(response);
        }
    }
    out
}

fn normalize_line(line: &[u8]) -> Vec<u8> {
    let text = line;
    let Some(end) = find(text, b" secs)") else {
        return line.to_vec();
    };
    let Some(open) = text[..end].iter().rposition(|&b| b == b'(') else {
        return line.to_vec();
    };
    let inner = &text[open + 1..end];
    if inner.is_empty()
        || !inner
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'+' | b' '))
    {
        return line.to_vec();
    }
    let mut out = text[..open].to_vec();
    out.extend_from_slice(b"(TIME");
    out.extend_from_slice(&text[end..]);
    out
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

/// The last `n` bytes of `data`, lossily as text.
pub fn tail(data: &[u8], n: usize) -> String {
    String::from_utf8_lossy(&data[data.len().saturating_sub(n)..]).into_owned()
}

/// Splits a block of responses (as returned by `read_until_tagged`) into single responses,
/// honouring literals.
pub fn split_responses(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let mut end = 0;
        loop {
            let Some(nl) = data[end..].iter().position(|&b| b == b'\n') else {
                end = data.len();
                break;
            };
            let line_end = end + nl + 1;
            match literal_len(&data[end..line_end]) {
                Some(len) => end = (line_end + len).min(data.len()),
                None => {
                    end = line_end;
                    break;
                }
            }
        }
        out.push(&data[..end]);
        data = &data[end..];
    }
    out
}

/// The literal payloads of FETCH responses in a block, in order (`BODY[] {n}` literals).
pub fn fetch_literals(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for resp in split_responses(data) {
        if !resp.starts_with(b"* ") || !contains(resp, b" FETCH (") {
            continue;
        }
        let Some(nl) = resp.iter().position(|&b| b == b'\n') else {
            continue;
        };
        if let Some(len) = literal_len(&resp[..nl + 1]) {
            out.push(resp[nl + 1..nl + 1 + len].to_vec());
        }
    }
    out
}
