//! A controllable TCP fault proxy for the fault-injection tests (`tests/faults.rs`): it sits
//! between mailgate and a real Dovecot or Postfix on loopback and, per connection, passes
//! bytes through until a trigger, then closes, stalls or injects bytes. Also a
//! [`GarbageServer`] that answers every connection with fixed bytes that are not the protocol,
//! and a [`Hostile`] server that floods or drip-feeds its answer.
//!
//! Each accepted connection takes a copy of the rules set at that moment ([`FaultProxy::set`]),
//! so a test can run a good session and a faulty one through the same proxy. Triggers count
//! bytes exactly (a chunk is split at the trigger), so "drop after N bytes" is byte-precise
//! whatever the TCP segmentation. Threads and sockets end when the proxy is dropped; every
//! loop is bounded by the connection's life.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::imap_client::find;

/// Which way bytes flow through the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Server → client (upstream → mailgate).
    ToClient,
    /// Client → server (mailgate → upstream).
    ToServer,
}

/// Where in one direction's byte stream a rule fires.
#[derive(Clone, Debug)]
pub enum Trigger {
    /// After this many bytes of the direction (0: before the first byte).
    Bytes(u64),
    /// After the first occurrence of `needle` and then `extra` more bytes.
    After(Vec<u8>, u64),
}

/// What happens when the trigger fires.
#[derive(Clone, Debug)]
pub enum Action {
    /// Close both connections. Nothing more is forwarded in either direction from the moment
    /// the trigger is reached (in particular no answer to what was just forwarded).
    Close,
    /// Stop forwarding this direction; the connections stay open until the proxy is dropped.
    Stall,
    /// Insert these bytes into this direction at this point, then pass through again.
    Inject(Vec<u8>),
}

/// One fault: in direction `dir`, at `at`, do `action`.
#[derive(Clone, Debug)]
pub struct Rule {
    pub dir: Dir,
    pub at: Trigger,
    pub action: Action,
}

impl Rule {
    pub fn new(dir: Dir, at: Trigger, action: Action) -> Rule {
        Rule { dir, at, action }
    }
}

struct Shared {
    target: SocketAddr,
    rules: Mutex<Vec<Rule>>,
    stop: AtomicBool,
    accepted: AtomicUsize,
    /// Every socket we opened, to shut down on drop (which ends the copy threads).
    sockets: Mutex<Vec<TcpStream>>,
}

/// The proxy: listens on 127.0.0.1, connects each client to `target`.
pub struct FaultProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// A pass-through proxy to `target` (set rules with [`FaultProxy::set`]).
    pub fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fault proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            target,
            rules: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
            sockets: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let acceptor = thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                s.accepted.fetch_add(1, Ordering::SeqCst);
                let rules = s.rules.lock().unwrap_or_else(|e| e.into_inner()).clone();
                serve(&s, client, rules);
            }
        });
        FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The rules for connections accepted from now on (an empty list passes everything).
    pub fn set(&self, rules: Vec<Rule>) {
        *self.shared.rules.lock().unwrap_or_else(|e| e.into_inner()) = rules;
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// `host:port` for a mailgate account's `server`.
    pub fn server(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for s in self
            .shared
            .sockets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wake the acceptor so it sees the stop flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

/// Connects `client` to the target and starts one copy thread per direction.
fn serve(shared: &Arc<Shared>, client: TcpStream, rules: Vec<Rule>) {
    let Ok(server) = TcpStream::connect(shared.target) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    {
        let mut sockets = shared.sockets.lock().unwrap_or_else(|e| e.into_inner());
        for s in [&client, &server] {
            if let Ok(c) = s.try_clone() {
                sockets.push(c);
            }
        }
    }
    // Set by a Close rule before it forwards its last bytes; the other direction checks it
    // before every write, so an answer to those bytes is never forwarded.
    let closed = Arc::new(AtomicBool::new(false));
    for dir in [Dir::ToClient, Dir::ToServer] {
        let (from, to) = match dir {
            Dir::ToClient => (server.try_clone(), client.try_clone()),
            Dir::ToServer => (client.try_clone(), server.try_clone()),
        };
        let (Ok(from), Ok(to)) = (from, to) else {
            return;
        };
        let mine: Vec<Rule> = rules.iter().filter(|r| r.dir == dir).cloned().collect();
        let closed = closed.clone();
        let both = [client.try_clone(), server.try_clone()];
        thread::spawn(move || copy(from, to, mine, &closed, both));
    }
}

/// Copies one direction, applying `rules` in order.
fn copy(
    mut from: TcpStream,
    mut to: TcpStream,
    mut rules: Vec<Rule>,
    closed: &AtomicBool,
    both: [std::io::Result<TcpStream>; 2],
) {
    let close_all = || {
        closed.store(true, Ordering::SeqCst);
        for s in both.iter().flatten() {
            let _ = s.shutdown(Shutdown::Both);
        }
    };
    rules.reverse(); // pop() takes the first rule
    let mut seen: Vec<u8> = Vec::new(); // bytes so far, while a needle is being looked for
    let mut total: u64 = 0;
    let mut buf = vec![0u8; 16 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        // Apply every rule whose trigger point is at `total` (the start of `pending`).
        while let Some(rule) = rules.last() {
            let at = match &rule.at {
                Trigger::Bytes(n) => Some(*n),
                Trigger::After(needle, extra) => {
                    find(&seen, needle).map(|i| (i + needle.len()) as u64 + extra)
                }
            };
            match at {
                Some(at) if at <= total => {}
                _ => break,
            }
            let rule = rules.pop().expect("checked above");
            match rule.action {
                Action::Close => {
                    close_all();
                    return;
                }
                Action::Stall => {
                    // Forward nothing more this way: read and discard until the connection
                    // ends (the peer closes, or the proxy's drop shuts the sockets down).
                    while matches!(from.read(&mut buf), Ok(n) if n > 0) {}
                    close_all();
                    return;
                }
                Action::Inject(bytes) => {
                    if closed.load(Ordering::SeqCst) || to.write_all(&bytes).is_err() {
                        return;
                    }
                }
            }
        }
        if pending.is_empty() {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                }
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
        }
        // Forward up to the next trigger point, so a rule fires at its exact byte.
        let limit = rules
            .last()
            .map(|r| match &r.at {
                Trigger::Bytes(n) => n.saturating_sub(total),
                // The needle may end inside this chunk: go byte by byte while searching.
                Trigger::After(needle, extra) => match find(&seen, needle) {
                    Some(i) => ((i + needle.len()) as u64 + extra).saturating_sub(total),
                    None => 1,
                },
            })
            .unwrap_or(u64::MAX);
        let take = (pending.len() as u64).min(limit.max(1)) as usize;
        let chunk: Vec<u8> = pending.drain(..take).collect();
        if rules.iter().any(|r| matches!(r.at, Trigger::After(..))) {
            seen.extend_from_slice(&chunk);
        }
        total += take as u64;
        if closed.load(Ordering::SeqCst) || to.write_all(&chunk).is_err() {
            close_all();
            return;
        }
    }
}

/// A server that greets every connection with fixed bytes (not the protocol), then reads and
/// discards what it is sent until the peer closes or `close_after_greeting` says to close.
pub struct GarbageServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl GarbageServer {
    pub fn start(greeting: Vec<u8>, close_after_greeting: bool) -> GarbageServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind garbage server");
        let addr = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let acceptor = thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let greeting = greeting.clone();
                thread::spawn(move || {
                    let _ = conn.write_all(&greeting);
                    if close_after_greeting {
                        let _ = conn.shutdown(Shutdown::Both);
                        return;
                    }
                    // Bounded by the peer: mailgate closes after its time-out or error.
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(120)));
                    let mut buf = [0u8; 4096];
                    while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
                });
            }
        });
        GarbageServer {
            addr,
            stop,
            acceptor: Some(acceptor),
        }
    }
}

impl Drop for GarbageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

/// A hostile upstream for one connection: greets with `greeting`, reads the client's first
/// command line, then runs `talk` on the socket (a script bounded by a count), which returns
/// how many bytes it got written before the client hung up or the script ended.
pub struct Hostile {
    pub addr: SocketAddr,
    sent: thread::JoinHandle<u64>,
}

impl Hostile {
    pub fn start(
        greeting: &'static [u8],
        talk: impl FnOnce(&mut TcpStream) -> u64 + Send + 'static,
    ) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind hostile server");
        let addr = listener.local_addr().expect("address");
        let sent = thread::spawn(move || {
            let Ok((mut s, _)) = listener.accept() else {
                return 0;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
            if s.write_all(greeting).is_err() {
                return 0;
            }
            // The first command, a byte at a time so that nothing after it is consumed.
            let mut b = [0u8; 1];
            while matches!(s.read(&mut b), Ok(1) if b[0] != b'\n') {}
            talk(&mut s)
        });
        Hostile { addr, sent }
    }

    /// Bytes `talk` got written (waits for it to end).
    pub fn sent(self) -> u64 {
        self.sent.join().expect("hostile server thread")
    }

    /// A `talk` that writes `line` up to `count` times, as fast as the client takes it.
    pub fn flood(line: Vec<u8>, count: u64) -> impl FnOnce(&mut TcpStream) -> u64 + Send {
        move |s| {
            let mut sent = 0;
            for _ in 0..count {
                if s.write_all(&line).is_err() {
                    break;
                }
                sent += line.len() as u64;
            }
            sent
        }
    }

    /// A `talk` that writes `answer` one byte per `every`.
    pub fn drip(
        answer: &'static [u8],
        every: Duration,
    ) -> impl FnOnce(&mut TcpStream) -> u64 + Send {
        move |s| {
            let mut sent = 0;
            for b in answer {
                if s.write_all(&[*b]).is_err() {
                    break;
                }
                sent += 1;
                thread::sleep(every);
            }
            sent
        }
    }
}
