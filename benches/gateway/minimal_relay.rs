//! The least a relay can do, as a reference for mailgate's NOOP and SMTP figures: a separate
//! process (this binary again) that accepts on loopback, connects to the target and copies
//! bytes with blocking reads and writes, one thread per direction, TCP_NODELAY on both sockets.
//! No parsing, no event loop. What it adds to a round trip is the price of one more process in
//! the path on this machine (two more wake-ups and a receive and a send in each direction),
//! which mailgate cannot go below.
//!
//! Towards a TLS upstream it does what mailgate does there: the client speaks plain text to it
//! and it speaks TLS to the server (rustls, the same client config and crypto as mailgate's),
//! so the TLS rows compare the same work. Its two threads share the one TLS connection under a
//! lock held only while records are encrypted or decrypted, never across a blocking read.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// The argument that makes this binary a minimal relay instead of the benchmark (see
/// [`super::relay_main`]).
pub const MINIMAL_RELAY_ARG: &str = "--minimal-relay";
/// With [`MINIMAL_RELAY_ARG`]: the relay on an event loop ([`super::event_relay`]).
pub const EVENT_LOOP_ARG: &str = "--event-loop";

/// How the relay waits for its sockets.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Blocking reads and writes, a thread per direction.
    Threads,
    /// tokio, as mailgate ([`super::event_relay`]).
    EventLoop,
}

/// A running relay process; stopped (by PID) when dropped.
pub struct Relay {
    pub addr: SocketAddr,
    child: Child,
}

impl Relay {
    /// Starts the relay of `kind` towards `target` (TLS towards it, trusting `ca`, when given)
    /// and waits for its listening address.
    pub fn start(kind: Kind, target: SocketAddr, ca: Option<&Path>) -> Relay {
        let exe = std::env::current_exe().expect("own executable");
        let mut args = vec![MINIMAL_RELAY_ARG.to_string(), target.to_string()];
        args.extend(ca.map(|p| p.display().to_string()));
        args.extend((kind == Kind::EventLoop).then(|| EVENT_LOOP_ARG.to_string()));
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the minimal relay");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("relay stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("relay address");
        let addr = line.trim().parse().expect("relay printed its address");
        Relay { addr, child }
    }

    /// The relay process's PID, for its CPU time (see [`super::smtp`]).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prints the relay's address for [`Relay::start`], and ends the process when its stdin
/// closes (the benchmark is gone).
pub fn announce(addr: SocketAddr) {
    println!("{addr}");
    let _ = std::io::stdout().flush();
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        // Returns at EOF: the parent is gone.
        while std::io::stdin().read(&mut sink).is_ok_and(|n| n > 0) {}
        std::process::exit(0);
    });
}

/// The blocking relay (see [`super::relay_main`]).
pub fn serve(target: SocketAddr, tls: Option<Arc<rustls::ClientConfig>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    announce(listener.local_addr().expect("addr"));
    for _ in 0..10_000 {
        let Ok((client, _)) = listener.accept() else {
            break;
        };
        let Ok(server) = TcpStream::connect(target) else {
            continue;
        };
        for s in [&client, &server] {
            let _ = s.set_nodelay(true);
        }
        let (c2, s2) = (
            client.try_clone().expect("clone"),
            server.try_clone().expect("clone"),
        );
        match &tls {
            None => {
                std::thread::spawn(move || copy(client, server));
                std::thread::spawn(move || copy(s2, c2));
            }
            Some(config) => {
                let Some(conn) = handshake(config, server) else {
                    continue;
                };
                let conn = Arc::new(Mutex::new(conn));
                let (up, s3) = (conn.clone(), s2.try_clone().expect("clone"));
                std::thread::spawn(move || encrypt(client, up, s3));
                std::thread::spawn(move || decrypt(s2, conn, c2));
            }
        }
    }
}

/// Copies until EOF or an error (at most 100 million reads), then passes the EOF on.
fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..100_000_000u64 {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// The TLS handshake with the server, blocking.
fn handshake(
    config: &Arc<rustls::ClientConfig>,
    mut server: TcpStream,
) -> Option<rustls::ClientConnection> {
    let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
    let mut conn = rustls::ClientConnection::new(config.clone(), name).ok()?;
    while conn.is_handshaking() {
        conn.complete_io(&mut server).ok()?;
    }
    Some(conn)
}

type Shared = Arc<Mutex<rustls::ClientConnection>>;

/// Writes whatever TLS records `conn` has to send.
fn flush(conn: &mut rustls::ClientConnection, mut server: &TcpStream) -> bool {
    while conn.wants_write() {
        if conn.write_tls(&mut server).is_err() {
            return false;
        }
    }
    true
}

/// Client to server: each read from the client is encrypted and sent as it came.
fn encrypt(mut client: TcpStream, conn: Shared, server: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..100_000_000u64 {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let Ok(mut c) = conn.lock() else { return };
        if c.writer().write_all(&buf[..n]).is_err() || !flush(&mut c, &server) {
            return;
        }
    }
    if let Ok(mut c) = conn.lock() {
        c.send_close_notify();
        flush(&mut c, &server);
    }
    let _ = server.shutdown(Shutdown::Write);
}

/// Server to client: each read from the server is decrypted and its plain text sent on.
fn decrypt(mut server: TcpStream, conn: Shared, mut client: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut plain = Vec::with_capacity(64 * 1024);
    'reads: for _ in 0..100_000_000u64 {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        plain.clear();
        {
            let Ok(mut c) = conn.lock() else { return };
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                if c.read_tls(&mut rest).is_err() || c.process_new_packets().is_err() {
                    break 'reads;
                }
                // Plain text until the reader has no more (WouldBlock) or the peer closed.
                let mut chunk = [0u8; 16 * 1024];
                loop {
                    match c.reader().read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => plain.extend_from_slice(&chunk[..k]),
                    }
                }
            }
            if !flush(&mut c, &server) {
                break;
            }
        }
        if !plain.is_empty() && client.write_all(&plain).is_err() {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Write);
}
