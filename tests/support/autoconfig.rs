//! Discovery stand-ins besides DNS: an HTTP server for Mozilla autoconfig files on a private
//! 127.x.y.z address (port 80, as `http://autoconfig.DOMAIN/` needs; the tests run as root),
//! and a TCP forwarder that puts a real server (Dovecot, Postfix) on a well-known port of such
//! an address, so a guess of `imap.DOMAIN:143` reaches the real thing.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A loopback address of its own for each call in this process (127.A.B.C, A from the
/// process id), so parallel tests and test binaries do not share ports 80/143/….
pub fn private_loopback() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let pid = std::process::id();
    Ipv4Addr::new(
        127,
        10 + (pid % 200) as u8,
        (pid / 200 % 250) as u8,
        (n % 250 + 2) as u8,
    )
}

/// Accepts connections on a std listener until dropped; `handle` serves each in a thread.
struct Acceptor {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    fn start(listen: SocketAddr, handle: Arc<dyn Fn(TcpStream) + Send + Sync>) -> Acceptor {
        let listener = TcpListener::bind(listen).unwrap_or_else(|e| panic!("bind {listen}: {e}"));
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let _ = s.set_nonblocking(false);
                            let h = handle.clone();
                            thread::spawn(move || h(s));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        };
        Acceptor {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An HTTP/1.1 server answering GET `path` (query included) with a fixed status and body.
pub struct HttpServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    _acceptor: Acceptor,
}

impl HttpServer {
    /// `routes`: (path with query, status, body); other paths get 404.
    pub fn start(listen: SocketAddr, routes: Vec<(String, u16, String)>) -> HttpServer {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let acceptor = Acceptor::start(
            listen,
            Arc::new(move |mut s: TcpStream| {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16384 {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let line = head.lines().next().unwrap_or_default().to_string();
                seen.lock().unwrap().push(head.clone());
                let path = line.split_whitespace().nth(1).unwrap_or_default();
                let (status, body) = routes
                    .iter()
                    .find(|(p, _, _)| p == path)
                    .map(|(_, st, b)| (*st, b.clone()))
                    .unwrap_or((404, "not found".into()));
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes());
                let _ = s.shutdown(Shutdown::Both);
            }),
        );
        HttpServer {
            addr: acceptor.addr,
            requests,
            _acceptor: acceptor,
        }
    }

    /// The request heads received so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// Forwards every connection on `listen` to `to`, byte for byte, both ways.
pub struct Forward {
    pub addr: SocketAddr,
    _acceptor: Acceptor,
}

impl Forward {
    pub fn start(listen: SocketAddr, to: SocketAddr) -> Forward {
        let acceptor = Acceptor::start(
            listen,
            Arc::new(move |client: TcpStream| {
                let Ok(server) = TcpStream::connect(to) else {
                    return;
                };
                let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
                    return;
                };
                let (mut c, mut s) = (client, server);
                let up = thread::spawn(move || {
                    let _ = std::io::copy(&mut c, &mut s2);
                    let _ = s2.shutdown(Shutdown::Write);
                });
                let _ = std::io::copy(&mut s, &mut c2);
                let _ = c2.shutdown(Shutdown::Write);
                let _ = up.join();
            }),
        );
        Forward {
            addr: acceptor.addr,
            _acceptor: acceptor,
        }
    }
}
