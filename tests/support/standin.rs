//! A loopback stand-in for servers the tests cannot run for real: a provider's IMAP or SMTP
//! server that replays one exact answer to every login (Gmail's, Microsoft's and Yahoo's words,
//! the internet being out of reach). It serves connections on a thread until dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What the stand-in says: greeting, capabilities (IMAP CAPABILITY, SMTP EHLO), and
/// `login_answer` to IMAP LOGIN/AUTHENTICATE (after the tag) or SMTP AUTH.
#[derive(Clone, Debug)]
struct Script {
    smtp: bool,
    greeting: String,
    capabilities: String,
    login_answer: String,
    /// How long the login answer is held back (a provider that delays a refusal).
    login_delay: Duration,
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
            smtp: false,
            greeting: greeting.to_string(),
            capabilities: capabilities.to_string(),
            login_answer: login_answer.to_string(),
            login_delay: Duration::ZERO,
        })
    }

    /// An SMTP server offering AUTH PLAIN and answering every AUTH with `auth_answer` (the
    /// whole reply, lines separated by CRLF, without the final CRLF).
    pub fn smtp(auth_answer: &str) -> StandIn {
        StandIn::smtp_after(auth_answer, Duration::ZERO)
    }

    /// [`StandIn::smtp`] answering AUTH only after `delay` (as providers delay a refusal).
    pub fn smtp_after(auth_answer: &str, delay: Duration) -> StandIn {
        StandIn::start(Script {
            smtp: true,
            greeting: "220 stand-in ESMTP ready".to_string(),
            capabilities: "250-stand-in\r\n250-AUTH PLAIN\r\n250 8BITMIME".to_string(),
            login_answer: auth_answer.to_string(),
            login_delay: delay,
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
        let Some(reply) = reply(script, &line) else {
            return;
        };
        if matches!(
            verb(script, &line).as_str(),
            "AUTH" | "LOGIN" | "AUTHENTICATE"
        ) {
            thread::sleep(script.login_delay);
        }
        if out.write_all(reply.as_bytes()).is_err() || closing(script, &line) {
            return;
        }
    }
}

/// The command word of a line (IMAP: after the tag).
fn verb(script: &Script, line: &str) -> String {
    let words = line.split_whitespace();
    let mut words = words.skip(usize::from(!script.smtp));
    words.next().unwrap_or_default().to_ascii_uppercase()
}

/// Whether the stand-in closes after answering `line` (LOGOUT, QUIT).
fn closing(script: &Script, line: &str) -> bool {
    matches!(verb(script, line).as_str(), "LOGOUT" | "QUIT")
}

/// The answer to one command line; `None` ends the connection without one.
fn reply(script: &Script, line: &str) -> Option<String> {
    let verb = verb(script, line);
    if script.smtp {
        return Some(match verb.as_str() {
            "EHLO" | "HELO" => format!("{}\r\n", script.capabilities),
            "AUTH" => format!("{}\r\n", script.login_answer),
            "QUIT" => "221 2.0.0 Bye\r\n".to_string(),
            _ => "502 5.5.2 Error: command not recognized\r\n".to_string(),
        });
    }
    let tag = line.split_whitespace().next()?;
    Some(match verb.as_str() {
        "CAPABILITY" => format!(
            "* CAPABILITY {}\r\n{tag} OK CAPABILITY completed.\r\n",
            script.capabilities
        ),
        "LOGIN" | "AUTHENTICATE" => format!("{tag} {}\r\n", script.login_answer),
        "LOGOUT" => format!("* BYE bye\r\n{tag} OK LOGOUT completed.\r\n"),
        _ => format!("{tag} BAD unknown command\r\n"),
    })
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
