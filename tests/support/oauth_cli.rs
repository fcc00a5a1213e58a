//! The `mailgate oauth` command line in tests: runs it as a child, plays the browser for the
//! authorization-code flow (plain HTTP GETs of the printed address and of the redirect), and
//! reads `oauth status`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::mailgate::BIN;
use super::proc::{stop_child, wait_timeout, PROCESS_TIMEOUT};
use super::Mailgate;

/// A plain HTTP/1.1 GET of `http://IP:PORT/path`: the whole response as text.
pub fn http_get_text(url: &str) -> String {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr: SocketAddr = host.parse().expect("ip:port host");
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp
}

/// The test's "browser": a GET; returns (status line, Location header).
pub fn http_get(url: &str) -> (String, Option<String>) {
    let resp = http_get_text(url);
    let status = resp.lines().next().unwrap_or_default().to_string();
    let location = resp
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .map(|l| l.trim().to_string());
    (status, location)
}

/// `mailgate oauth status` for the gateway's config; asserts success.
pub fn oauth_status(gate: &Mailgate) -> String {
    let config = gate.config_path.to_str().expect("utf-8 path");
    let out = super::mailgate::run(&["oauth", "status", "--config", config], None);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "oauth status failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// `mailgate oauth ARGS --config PATH` as a child, its stdout lines on a channel.
pub fn spawn_oauth(config: &Path, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .arg("oauth")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mailgate oauth");
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("stdout");
    let err = child.stderr.take().expect("stderr");
    for pipe in [Box::new(out) as Box<dyn Read + Send>, Box::new(err)] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    (child, rx)
}

/// Waits (bounded) for a line containing `needle`; returns it and everything seen.
pub fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) -> String {
    let deadline = std::time::Instant::now() + PROCESS_TIMEOUT;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
            Err(_) => break,
        }
    }
    panic!(
        "no line with {needle:?}; output so far:\n{}",
        seen.join("\n")
    );
}

/// Finishes a child: exit status success, all output collected.
pub fn finish(mut child: Child, rx: &mpsc::Receiver<String>, mut seen: Vec<String>) -> Vec<String> {
    let status = wait_timeout(&mut child, PROCESS_TIMEOUT);
    if status.is_none() {
        stop_child(&mut child, Duration::from_secs(5));
    }
    // The reader threads end at EOF; take what is left.
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(2)) {
        seen.push(line);
    }
    assert!(
        status.is_some_and(|s| s.success()),
        "mailgate oauth failed ({status:?}):\n{}",
        seen.join("\n")
    );
    seen
}

/// `mailgate oauth authorize EMAIL` with the browser flow, the redirect delivered by an HTTP
/// GET to the loopback listener (or pasted on stdin when `paste`). Returns its output.
pub fn authorize_code_as(config: &Path, email: &str, paste: bool) -> Vec<String> {
    let (mut child, rx) = spawn_oauth(config, &["authorize", email]);
    let mut seen = Vec::new();
    let url_line = wait_line(&rx, "/authorize?", &mut seen);
    wait_line(&rx, "Waiting for the redirect", &mut seen);
    let (status, location) = http_get(url_line.trim());
    assert!(status.contains("302"), "authorize answered {status}");
    let location = location.expect("a redirect");
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    if paste {
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{location}").unwrap();
    } else {
        let (status, _) = http_get(&location);
        assert!(
            status.contains("200"),
            "redirect listener answered {status}"
        );
    }
    finish(child, &rx, seen)
}
