//! A loopback stand-in for servers the tests cannot run for real: a provider's IMAP server that
//! replays one exact tagged answer to every login (Gmail's, Microsoft's and Yahoo's words, the
//! internet being out of reach). It serves connections on a thread until dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What the stand-in says: greeting, CAPABILITY answers, and `TAG <login_answer>` to LOGIN
/// and AUTHENTICATE.
#[derive(Clone, Debug)]
struct Script {
    greeting: String,
    capabilities: String,
    login_answer: String,
}

pub struct StandIn {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    received: Arc<Mutex<Vec<String>>>,
}

impl StandIn {
    /// An IMAP server greeting with `greeting` (a full `* OK …` line without CRLF), listing
    /// `capabilities`, and answering every LOGIN or AUTHENTICATE with `TAG login_answer`.
    pub fn imap(greeting: &str, capabilities: &str, login_answer: &str) -> StandIn {
        StandIn::start(Script {
            greeting: greeting.to_string(),
            capabilities: capabilities.to_string(),
            login_answer: login_answer.to_string(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every line the stand-in received, in order (to show what a client sent).
    pub fn received(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn start(script: Script) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (stop2, received2) = (stop.clone(), received.clone());
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    serve(conn, &script, &received2);
                }
            }
        });
        StandIn {
            addr,
            stop,
            thread: Some(thread),
            received,
        }
    }
}

/// Serves one connection to its end (bounded: 30 s per read, 100 lines).
fn serve(conn: TcpStream, script: &Script, received: &Mutex<Vec<String>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    if out
        .write_all(format!("{}\r\n", script.greeting).as_bytes())
        .is_err()
    {
        return;
    }
    let mut reader = BufReader::new(conn);
    for _ in 0..100 {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end().to_string();
        received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line.clone());
        let (tag, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let verb = rest
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "CAPABILITY" => format!(
                "* CAPABILITY {}\r\n{tag} OK CAPABILITY completed.\r\n",
                script.capabilities
            ),
            "LOGIN" | "AUTHENTICATE" => format!("{tag} {}\r\n", script.login_answer),
            "LOGOUT" => {
                let _ = out
                    .write_all(format!("* BYE bye\r\n{tag} OK LOGOUT completed.\r\n").as_bytes());
                return;
            }
            _ => format!("{tag} BAD unknown command\r\n"),
        };
        if out.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
