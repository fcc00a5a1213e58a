//! A raw SMTP client (exact bytes out, replies in) and a recording TCP tap that shows what
//! a client wrote on the wire.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::b64;
use super::imap_client::find;

/// How long one read may wait for the server.
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// Lines in one (multi-line) reply, at most.
const MAX_REPLY_LINES: usize = 1000;
/// Connections one tap serves, at most.
const TAP_CONNECTIONS: usize = 8;

/// A raw SMTP client on a TCP socket: exact bytes out, replies in.
pub struct Raw {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Raw {
    /// Connects and reads the greeting.
    pub fn connect(addr: SocketAddr) -> (Raw, String) {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut raw = Raw { stream, reader };
        let greeting = raw.reply();
        (raw, greeting)
    }

    /// Sends bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads one complete (possibly multi-line) reply; empty when the server closed.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        for _ in 0..MAX_REPLY_LINES {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return all,
                Ok(_) => {}
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
        panic!("a reply of more than {MAX_REPLY_LINES} lines:\n{all}");
    }

    /// Sends `line` (CRLF added) and reads the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// EHLO and AUTH PLAIN as `user`; returns the AUTH reply.
    pub fn login(&mut self, user: &str, password: &str) -> String {
        let ehlo = self.cmd("EHLO client.test");
        assert!(ehlo.starts_with("250"), "{ehlo}");
        let token = b64(format!("\0{user}\0{password}").as_bytes());
        self.cmd(&format!("AUTH PLAIN {token}"))
    }

    /// Whether the server has closed the connection (reads until EOF, bounded by the timeout).
    pub fn closed(&mut self) -> bool {
        let mut buf = [0u8; 256];
        for _ in 0..1000 {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                // Interrupted by a signal (SIGCHLD from a stopped server): read again.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
                // Bytes before the close (e.g. a 421 line) are not the close itself.
                Ok(_) => continue,
            }
        }
        false
    }
}

/// A TCP tap on a free port that forwards to 127.0.0.1:`target` and records every byte sent
/// towards it, so a test can see exactly what a client (mailgate) wrote on the wire (Postfix's
/// stored copy has lost its CRs). Serves a few connections, each until either side closes or
/// is silent for the read time-out.
pub fn recording_tap(target: u16) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind tap");
    let port = listener.local_addr().expect("tap addr").port();
    let record = Arc::new(Mutex::new(Vec::new()));
    let sink = record.clone();
    thread::spawn(move || {
        for _ in 0..TAP_CONNECTIONS {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                return;
            };
            for s in [&client, &server] {
                let _ = s.set_read_timeout(Some(READ_TIMEOUT));
            }
            let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
                return;
            };
            let sink = sink.clone();
            let (mut client, mut server) = (client, server);
            thread::spawn(move || {
                let mut buf = [0u8; 65536];
                loop {
                    match client.read(&mut buf) {
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if let Ok(mut r) = sink.lock() {
                                r.extend_from_slice(&buf[..n]);
                            }
                            if server.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = server.shutdown(Shutdown::Write);
            });
            thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(Shutdown::Write);
            });
        }
    });
    (port, record)
}

/// The DATA sections (after `DATA\r\n`, up to and including `\r\n.\r\n`) in a recorded
/// client→server byte stream.
pub fn data_sections(wire: &[u8]) -> Vec<Vec<u8>> {
    sections(wire).into_iter().filter_map(|s| s.data).collect()
}

/// One message's bytes on a recorded client→server stream: a DATA section, or the
/// concatenated chunks of BDAT commands up to the one with LAST.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Section {
    /// After `DATA\r\n`, up to and including `\r\n.\r\n`.
    pub data: Option<Vec<u8>>,
    /// The BDAT chunks' bytes, joined (nothing added, nothing removed).
    pub bdat: Option<Vec<u8>>,
}

/// The messages (DATA sections and BDAT chunk runs) in a recorded client→server stream, in
/// order. Commands are recognised at line starts outside message bytes.
pub fn sections(wire: &[u8]) -> Vec<Section> {
    let mut out = Vec::new();
    let mut bdat: Option<Vec<u8>> = None;
    let mut rest = wire;
    while !rest.is_empty() {
        let Some(eol) = find(rest, b"\r\n") else {
            break;
        };
        let line = &rest[..eol];
        rest = &rest[eol + 2..];
        let upper = line.to_ascii_uppercase();
        if upper == b"DATA" {
            let end = if rest.starts_with(b".\r\n") {
                3
            } else {
                match find(rest, b"\r\n.\r\n") {
                    Some(e) => e + 5,
                    None => break,
                }
            };
            out.push(Section {
                data: Some(rest[..end].to_vec()),
                bdat: None,
            });
            rest = &rest[end..];
        } else if upper.starts_with(b"BDAT ") {
            let args = String::from_utf8_lossy(&line[5..]).into_owned();
            let mut words = args.split_ascii_whitespace();
            let Some(size) = words.next().and_then(|n| n.parse::<usize>().ok()) else {
                break;
            };
            let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
            if rest.len() < size {
                break;
            }
            bdat.get_or_insert_with(Vec::new)
                .extend_from_slice(&rest[..size]);
            rest = &rest[size..];
            if last {
                out.push(Section {
                    data: None,
                    bdat: bdat.take(),
                });
            }
        }
    }
    out
}
