//! The least a relay can do, as a reference for mailgate's NOOP figure: a separate process
//! (this binary again) that accepts on loopback, connects to the target and copies bytes with
//! blocking reads and writes, one thread per direction, TCP_NODELAY on both sockets. No
//! parsing, no event loop, no TLS of its own. What it adds to a round trip is the price of one
//! more process in the path on this machine (two more wake-ups and a receive and a send in each
//! direction), which mailgate cannot go below.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

/// The argument that makes this binary run as [`serve`] instead of the benchmark.
pub const MINIMAL_RELAY_ARG: &str = "--minimal-relay";

/// A running relay process; stopped (by PID) when dropped.
pub struct Relay {
    pub addr: SocketAddr,
    child: Child,
}

impl Relay {
    /// Starts the relay towards `target` and waits for its listening address.
    pub fn start(target: SocketAddr) -> Relay {
        let exe = std::env::current_exe().expect("own executable");
        let mut child = Command::new(exe)
            .args([super::MINIMAL_RELAY_ARG, &target.to_string()])
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
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The relay process: prints its address, serves until its stdin closes (the benchmark
/// ended) or 10,000 connections.
pub fn serve(target: SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("{}", listener.local_addr().expect("addr"));
    let _ = std::io::stdout().flush();
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        // Returns at EOF: the parent is gone.
        while std::io::stdin().read(&mut sink).is_ok_and(|n| n > 0) {}
        std::process::exit(0);
    });
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
        std::thread::spawn(move || copy(client, server));
        std::thread::spawn(move || copy(s2, c2));
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
