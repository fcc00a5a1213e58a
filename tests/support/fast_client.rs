//! Lean clients for the benchmark, the same whichever server they talk to: [`FastImap`] lets
//! mailgate's own framer find the tagged completion and keeps no response bytes (it counts
//! them), so a 50 MiB FETCH costs the client one pass over the bytes; [`FastSmtp`] sends in
//! lock-step. Both speak plaintext or TLS (verified against a given CA), with TCP_NODELAY by
//! default. The byte-exact [`super::ImapClient`] keeps every byte for assertions, which a
//! throughput measurement cannot afford.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use mailgate::imap::framer::{Frame, Framer};
use rustls::ClientConfig;

/// A byte stream: plain TCP, or TLS for the direct connection to Dovecot's implicit-TLS port.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// Connects with TCP_NODELAY and a read time-out; with TLS verified against `tls` when given.
pub fn open(addr: SocketAddr, tls: Option<&Arc<ClientConfig>>) -> Box<dyn Stream> {
    open_with(addr, tls, true)
}

/// [`open`], with Nagle's algorithm left on when `nodelay` is false (as python's imaplib does).
pub fn open_with(
    addr: SocketAddr,
    tls: Option<&Arc<ClientConfig>>,
    nodelay: bool,
) -> Box<dyn Stream> {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_nodelay(nodelay).expect("nodelay");
    tcp.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    match tls {
        None => Box::new(tcp),
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
            let conn = rustls::ClientConnection::new(config.clone(), name).expect("tls");
            Box::new(rustls::StreamOwned::new(conn, tcp))
        }
    }
}

pub struct FastImap {
    s: Box<dyn Stream>,
    buf: Vec<u8>,
    framer: Framer,
    /// Bytes read but not yet framed.
    pending: Vec<u8>,
}

impl FastImap {
    /// Connects in plaintext, or with TLS verified against `tls` (the test CA).
    pub fn connect(addr: SocketAddr, tls: Option<&Arc<ClientConfig>>) -> FastImap {
        FastImap::connect_with(addr, tls, true)
    }

    /// [`FastImap::connect`], with Nagle's algorithm on when `nodelay` is false.
    pub fn connect_with(
        addr: SocketAddr,
        tls: Option<&Arc<ClientConfig>>,
        nodelay: bool,
    ) -> FastImap {
        let s = open_with(addr, tls, nodelay);
        let mut c = FastImap {
            s,
            buf: vec![0; 256 * 1024],
            framer: Framer::new(64 * 1024),
            pending: Vec::new(),
        };
        c.read_until(|line| line.starts_with(b"* OK") || line.starts_with(b"* PREAUTH"));
        c
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write");
    }

    /// Reads until a complete line satisfies `done`; returns the bytes read (all of them).
    pub fn read_until(&mut self, mut done: impl FnMut(&[u8]) -> bool) -> u64 {
        let mut total = 0u64;
        for _ in 0..10_000_000 {
            let mut input = std::mem::take(&mut self.pending);
            if input.is_empty() {
                let n = match self.s.read(&mut self.buf) {
                    Ok(0) => panic!("server closed the connection"),
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => panic!("read: {e}"),
                };
                input.extend_from_slice(&self.buf[..n]);
            }
            total += input.len() as u64;
            let mut pos = 0;
            while let Some((n, frame)) = self.framer.next(&input[pos..]) {
                pos += n;
                if let Frame::Line {
                    bytes,
                    literal: None,
                } = frame
                {
                    if done(bytes) {
                        self.pending = input[pos..].to_vec();
                        total -= self.pending.len() as u64;
                        return total;
                    }
                }
            }
        }
        panic!("no end of response");
    }

    /// Sends `tag command` and waits for its tagged completion, which must be OK.
    pub fn ok(&mut self, tag: &str, command: &str) -> u64 {
        self.send(format!("{tag} {command}\r\n").as_bytes());
        let mut status = Vec::new();
        let n = self.read_until(|line| {
            if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                status = line.to_vec();
                true
            } else {
                false
            }
        });
        assert!(
            status[tag.len() + 1..].starts_with(b"OK"),
            "{tag} {command}: {}",
            String::from_utf8_lossy(&status)
        );
        n
    }

    pub fn login(&mut self, user: &str, password: &str) {
        self.ok("L", &format!("LOGIN \"{user}\" \"{password}\""));
    }

    pub fn logout(mut self) {
        self.send(b"Z LOGOUT\r\n");
        let mut rest = [0u8; 4096];
        for _ in 0..100 {
            match self.s.read(&mut rest) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    /// APPEND with a synchronizing literal; the literal and the CRLF that ends the command
    /// go in two writes, as python's imaplib sends them.
    pub fn append(&mut self, tag: &str, mailbox: &str, message: &[u8]) {
        self.send(format!("{tag} APPEND {mailbox} {{{}}}\r\n", message.len()).as_bytes());
        self.read_until(|line| line.starts_with(b"+"));
        self.send(message);
        self.send(b"\r\n");
        let mut ok = false;
        self.read_until(|line| {
            if line.starts_with(tag.as_bytes()) {
                ok = line[tag.len()..].starts_with(b" OK");
                true
            } else {
                false
            }
        });
        assert!(ok, "APPEND failed");
    }
}

/// A lock-step SMTP client: one command, one (possibly multi-line) reply, which must have the
/// expected code.
pub struct FastSmtp {
    s: Box<dyn Stream>,
    r: Vec<u8>,
}

impl FastSmtp {
    pub fn connect(addr: SocketAddr, tls: Option<&Arc<ClientConfig>>) -> FastSmtp {
        let s = open(addr, tls);
        let mut c = FastSmtp { s, r: Vec::new() };
        c.expect("220");
        c.cmd("EHLO bench.example", "250");
        c
    }

    /// Reads one reply; panics unless it starts with `code`.
    pub fn expect(&mut self, code: &str) {
        let mut buf = [0u8; 4096];
        for _ in 0..100_000 {
            // A complete reply: its last line has a space after the code.
            let mut start = 0;
            while let Some(i) = self.r[start..].iter().position(|&b| b == b'\n') {
                let line = &self.r[start..start + i + 1];
                if line.len() >= 4 && line[3] == b' ' {
                    let ok = line.starts_with(code.as_bytes());
                    let text = String::from_utf8_lossy(line).into_owned();
                    self.r.drain(..start + i + 1);
                    assert!(ok, "expected {code}, got {text}");
                    return;
                }
                start += i + 1;
            }
            match self.s.read(&mut buf) {
                Ok(0) => panic!("SMTP server closed the connection"),
                Ok(n) => self.r.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("SMTP read: {e}"),
            }
        }
        panic!("no SMTP reply");
    }

    pub fn cmd(&mut self, line: &str, code: &str) {
        self.s
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("smtp write");
        self.expect(code);
    }

    pub fn auth(&mut self, user: &str, password: &str) {
        let token = super::b64(format!("\0{user}\0{password}").as_bytes());
        self.cmd(&format!("AUTH PLAIN {token}"), "235");
    }

    pub fn send_message(&mut self, from: &str, to: &str, body: &[u8]) {
        self.cmd(&format!("MAIL FROM:<{from}>"), "250");
        self.cmd(&format!("RCPT TO:<{to}>"), "250");
        self.cmd("DATA", "354");
        // The caller's body has no line starting with a dot: no stuffing here.
        self.s.write_all(body).expect("smtp body");
        self.cmd(".", "250");
    }

    pub fn quit(mut self) {
        let _ = self.s.write_all(b"QUIT\r\n");
    }
}
