//! A TCP delay proxy on loopback: stands for the distance to a mail provider. It accepts,
//! connects to the real upstream and forwards each direction with a fixed one-way delay.
//!
//! Each chunk is stamped when read and released at read time + delay, in order, through a
//! bounded queue per direction: the writer sleeps until an absolute deadline, so a chunk that
//! waited behind another is not delayed again (the delay is fixed, not additive), and a slow
//! reader stops the other side's reads once the queue is full (bounded memory). TLS passes
//! through unchanged: it is only TCP here.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Chunks in flight per direction before the reader waits.
pub const QUEUE_CHUNKS: usize = 64;
/// Bytes per read: with [`QUEUE_CHUNKS`], at most 4 MiB held per direction.
const CHUNK: usize = 64 * 1024;
/// Connections one proxy accepts before it stops (every loop here is bounded).
const MAX_CONNECTIONS: usize = 100_000;
/// An idle connection is closed after this long (a peer that never closes).
const IDLE: Duration = Duration::from_secs(300);

/// A running proxy; stops accepting when dropped (connections in progress finish).
pub struct DelayProxy {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl DelayProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `target` with `one_way` delay in
    /// each direction.
    pub fn start(target: SocketAddr, one_way: Duration) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the delay proxy");
        let addr = listener.local_addr().expect("delay proxy address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        thread::spawn(move || {
            for _ in 0..MAX_CONNECTIONS {
                let Ok((client, _)) = listener.accept() else {
                    continue;
                };
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                splice(client, server, one_way);
            }
        });
        DelayProxy { addr, stop }
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Forwards both directions of one connection, each with its own reader and writer thread.
fn splice(client: TcpStream, server: TcpStream, one_way: Duration) {
    for s in [&client, &server] {
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(IDLE));
    }
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    direction(client, s2, one_way);
    direction(server, c2, one_way);
}

/// `from` → `to`: a reader that stamps chunks and a writer that releases them on time.
fn direction(mut from: TcpStream, to: TcpStream, one_way: Duration) {
    let (tx, rx) = sync_channel::<(Instant, Vec<u8>)>(QUEUE_CHUNKS);
    thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
        // Dropping `tx` ends the writer once the queue is drained.
    });
    thread::spawn(move || release(rx, to, one_way));
}

/// Writes each chunk at its read time + `one_way`, in order; at the end half-closes `to` so
/// that the peer sees the EOF (after the data, like the real network would deliver it).
fn release(rx: Receiver<(Instant, Vec<u8>)>, mut to: TcpStream, one_way: Duration) {
    while let Ok((read_at, chunk)) = rx.recv() {
        let due = read_at + one_way;
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        if to.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// The argument that runs [`selfcheck`] instead of the benchmark.
pub const SELFCHECK_ARG: &str = "--delay-selfcheck";

/// A self-check, run with `cargo bench --bench gateway -- --delay-selfcheck` (the benchmark
/// has no test harness): bytes arrive whole and in order, each round trip takes at least the
/// two one-way delays, a burst larger than the queue still arrives (the queue blocks, it does
/// not drop). Checks a lower bound of time only. Returns what failed.
pub fn selfcheck() -> Result<(), String> {
    let echo = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let echo_addr = echo.local_addr().map_err(|e| e.to_string())?;
    thread::spawn(move || {
        for _ in 0..4 {
            let Ok((mut s, _)) = echo.accept() else {
                continue;
            };
            thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let delay = Duration::from_millis(20);
    let proxy = DelayProxy::start(echo_addr, delay);
    let mut c = TcpStream::connect(proxy.addr).map_err(|e| e.to_string())?;
    c.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    // Small writes, one round trip each: order kept, delay applied in both directions.
    for i in 0..5u8 {
        let t = Instant::now();
        let msg = [b'a' + i; 10];
        c.write_all(&msg).map_err(|e| e.to_string())?;
        let mut got = [0u8; 10];
        c.read_exact(&mut got).map_err(|e| e.to_string())?;
        if got != msg {
            return Err(format!("round trip {i}: sent {msg:?}, got {got:?}"));
        }
        if t.elapsed() < 2 * delay {
            return Err(format!("round trip {i} faster than twice the delay"));
        }
    }
    // A burst well beyond the queue's chunks, written while the reader reads: every byte back
    // in order.
    let burst: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut w = c.try_clone().map_err(|e| e.to_string())?;
    let sent = burst.clone();
    let writer = thread::spawn(move || w.write_all(&sent).is_ok());
    let mut back = vec![0u8; burst.len()];
    c.read_exact(&mut back).map_err(|e| e.to_string())?;
    if !writer.join().unwrap_or(false) {
        return Err("burst write failed".into());
    }
    if back != burst {
        return Err("burst came back altered or out of order".into());
    }
    Ok(())
}
