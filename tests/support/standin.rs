//! Loopback stand-ins for servers the tests cannot run for real: a provider's IMAP server that
//! replays one exact tagged answer to every login (Gmail's, Microsoft's and Yahoo's words, the
//! internet being out of reach), and a POP3 server that only greets (Debian's dovecot-pop3d is
//! not installed by `.ci/run`). Each serves connections on a thread until dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What the stand-in says.
#[derive(Clone, Debug)]
enum Script {
    /// IMAP: greeting, CAPABILITY answers, and `TAG <login_answer>` to LOGIN/AUTHENTICATE.
    Imap {
        greeting: String,
        capabilities: String,
        login_answer: String,
    },
    /// POP3: `+OK` greeting, `-ERR` to everything.
    Pop3,
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
        StandIn::start(Script::Imap {
            greeting: greeting.to_string(),
            capabilities: capabilities.to_string(),
            login_answer: login_answer.to_string(),
        })
    }

    /// A POP3 server: `+OK POP3 ready`.
    pub fn pop3() -> StandIn {
        StandIn::start(Script::Pop3)
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
    let greeting = match script {
        Script::Imap { greeting, .. } => greeting.as_str(),
        Script::Pop3 => "+OK POP3 ready",
    };
    if out.write_all(format!("{greeting}\r\n").as_bytes()).is_err() {
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
        let reply = match script {
            Script::Pop3 => "-ERR unknown command\r\n".to_string(),
            Script::Imap {
                capabilities,
                login_answer,
                ..
            } => {
                let (tag, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                let verb = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                match verb.as_str() {
                    "CAPABILITY" => {
                        format!("* CAPABILITY {capabilities}\r\n{tag} OK CAPABILITY completed.\r\n")
                    }
                    "LOGIN" | "AUTHENTICATE" => format!("{tag} {login_answer}\r\n"),
                    "LOGOUT" => {
                        let _ = out.write_all(
                            format!("* BYE bye\r\n{tag} OK LOGOUT completed.\r\n").as_bytes(),
                        );
                        return;
                    }
                    _ => format!("{tag} BAD unknown command\r\n"),
                }
            }
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
