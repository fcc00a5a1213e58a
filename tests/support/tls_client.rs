//! A blocking TLS client (rustls, trusting one CA file) for byte-level tests of mailgate's own
//! TLS listeners, and the addresses of its implicit-TLS listeners from its log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::mailgate::{parse_listen_line, Mailgate};

/// How long one read may wait.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines read while looking for one, at most.
const MAX_LINES: usize = 1000;

/// The address mailgate logged after `marker` ("imaps listening on", "smtps listening on").
pub fn logged_addr(gate: &Mailgate, marker: &str) -> SocketAddr {
    gate.lines()
        .iter()
        .find_map(|l| parse_listen_line(l, marker))
        .unwrap_or_else(|| panic!("no \"{marker}\" line in:\n{}", gate.log()))
}

/// A client configuration trusting only the certificates in `ca` (ring provider).
pub fn client_config(ca: &Path) -> Arc<ClientConfig> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A line-oriented connection that starts in plaintext and can switch to TLS in place.
pub struct Conn {
    plain: Option<BufReader<TcpStream>>,
    tls: Option<BufReader<StreamOwned<ClientConnection, TcpStream>>>,
}

impl Conn {
    /// A plaintext connection.
    pub fn plain(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        s.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
        Conn {
            plain: Some(BufReader::new(s)),
            tls: None,
        }
    }

    /// A plaintext connection over a socket the caller connected (from a chosen source
    /// address, say).
    pub fn plain_over(stream: TcpStream) -> Conn {
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
        Conn {
            plain: Some(BufReader::new(stream)),
            tls: None,
        }
    }

    /// An implicit-TLS connection (handshake done on the first read or write).
    pub fn implicit(addr: SocketAddr, ca: &Path) -> Conn {
        let mut c = Conn::plain(addr);
        c.start_tls(ca);
        c
    }

    /// An implicit-TLS connection over a socket the caller connected (from a chosen source
    /// address, say).
    pub fn implicit_over(stream: TcpStream, ca: &Path) -> Conn {
        let mut c = Conn::plain_over(stream);
        c.start_tls(ca);
        c
    }

    /// Switches to TLS on the same socket. Panics if bytes the server sent in plaintext are
    /// still unread (they would be lost).
    pub fn start_tls(&mut self, ca: &Path) {
        let reader = self.plain.take().expect("still plaintext");
        assert!(
            reader.buffer().is_empty(),
            "unread plaintext before the TLS handshake: {:?}",
            String::from_utf8_lossy(reader.buffer())
        );
        let name = ServerName::try_from("localhost").expect("name");
        let conn = ClientConnection::new(client_config(ca), name).expect("client connection");
        self.tls = Some(BufReader::new(StreamOwned::new(conn, reader.into_inner())));
    }

    /// Writes `bytes` (one write on the socket while in plaintext).
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match (&mut self.plain, &mut self.tls) {
            (Some(p), _) => p.get_mut().write_all(bytes),
            (None, Some(t)) => {
                t.get_mut().write_all(bytes)?;
                t.get_mut().flush()
            }
            (None, None) => unreachable!("no stream"),
        }
    }

    /// Reads one line (with its CRLF); empty at EOF. Errors (a failed handshake) are returned.
    pub fn line(&mut self) -> std::io::Result<String> {
        let mut buf = Vec::new();
        match (&mut self.plain, &mut self.tls) {
            (Some(p), _) => p.read_until(b'\n', &mut buf)?,
            (None, Some(t)) => t.read_until(b'\n', &mut buf)?,
            (None, None) => unreachable!("no stream"),
        };
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Reads lines up to and including the first one that starts with `prefix`; panics (with
    /// what was read) at EOF or after too many lines.
    pub fn until(&mut self, prefix: &str) -> Vec<String> {
        let mut lines = Vec::new();
        for _ in 0..MAX_LINES {
            let line = self
                .line()
                .unwrap_or_else(|e| panic!("read error after {lines:?}: {e}"));
            if line.is_empty() {
                panic!("connection closed before `{prefix}`; read {lines:?}");
            }
            let done = line.starts_with(prefix);
            lines.push(line);
            if done {
                return lines;
            }
        }
        panic!("no `{prefix}` within {MAX_LINES} lines: {lines:?}");
    }

    /// Reads until EOF (bounded), returning what came.
    pub fn rest(&mut self) -> String {
        let mut all = String::new();
        let mut buf = [0u8; 4096];
        for _ in 0..MAX_LINES {
            let n = match (&mut self.plain, &mut self.tls) {
                (Some(p), _) => p.read(&mut buf),
                (None, Some(t)) => t.read(&mut buf),
                (None, None) => unreachable!("no stream"),
            };
            match n {
                Ok(0) | Err(_) => break,
                Ok(n) => all.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        all
    }
}
