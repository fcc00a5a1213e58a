//! Child-process and port helpers: bounded waits, SIGTERM by PID, commands with a deadline,
//! free and refusing loopback ports.
//!
//! Only processes the tests started are ever signalled, and always by their own PID.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a test waits for a child process to do something it should do quickly.
/// Generous on purpose: a loaded 2-core machine running a debug build is slow, and a wait
/// that is too short is a flaky test. Nothing asserts on how long anything took.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// A free TCP port on 127.0.0.1 (bind to port 0, read the port, close). Another process can
/// take the port before we use it; callers that bind it retry with a new port.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// A loopback port that refuses connections while this value lives: the local end of a
/// connection the test holds open. Nothing listens on it, and no other process can bind it
/// meanwhile (a port from `free_port()` could be taken by another test's server, which would
/// turn "connection refused" into some other failure and break the exact counts).
pub struct RefusingPort {
    _server_side: TcpStream,
    client: TcpStream,
}

impl RefusingPort {
    pub fn new() -> RefusingPort {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server_side, _) = listener.accept().expect("accept");
        let port = RefusingPort {
            _server_side: server_side,
            client,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port.port()));
        match TcpStream::connect_timeout(&addr, Duration::from_secs(10)) {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            other => panic!("expected {addr} to refuse connections, got {other:?}"),
        }
        port
    }

    pub fn port(&self) -> u16 {
        self.client.local_addr().expect("local addr").port()
    }
}

impl Default for RefusingPort {
    fn default() -> Self {
        RefusingPort::new()
    }
}

/// Sends SIGTERM to one process we started, by PID. std has no signal API and the tests do
/// not depend on libc, so this uses the shell's `kill` builtin (/bin/sh is always there;
/// procps' /bin/kill is not, in minimal Debian images).
pub fn sigterm(pid: u32) {
    signal(pid, "TERM");
}

/// Sends SIGHUP (mailgate's "reload the config") to one process we started, by PID.
pub fn sighup(pid: u32) {
    signal(pid, "HUP");
}

/// `kill -SIGNAL PID` for one process we started; `signal` is a name such as "TERM".
fn signal(pid: u32, signal: &str) {
    let _ = Command::new("sh")
        .args([
            "-c",
            "kill -s \"$1\" \"$2\"",
            "sh",
            signal,
            &pid.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Waits at most `timeout` for `child` to exit.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(_) => return None,
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Stops a child we started: SIGTERM, wait up to `grace`, then SIGKILL, then reap it.
pub fn stop_child(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    sigterm(child.id());
    if let Some(status) = wait_timeout(child, grace) {
        return Some(status);
    }
    let _ = child.kill();
    wait_timeout(child, Duration::from_secs(10))
}

/// Runs `cmd` to completion with `stdin` fed to it, failing the test if it does not finish
/// within `timeout`. stdout and stderr are drained by threads so neither pipe can fill up.
pub fn run_with_timeout(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let description = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {description}: {e}"));
    let stdout = drain(child.stdout.take().expect("stdout piped"));
    let stderr = drain(child.stderr.take().expect("stderr piped"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin piped");
        // A child that exits without reading gives EPIPE; its exit status tells the story.
        let _ = pipe.write_all(input);
    }
    let status = match wait_timeout(&mut child, timeout) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let out = stdout.join().unwrap_or_default();
            let err = stderr.join().unwrap_or_default();
            panic!(
                "{description} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            );
        }
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Runs a python3 helper script from `tests/py/` with `args`.
pub fn python(script: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("python3");
    cmd.arg(super::py_script(script)).args(args);
    run_with_timeout(cmd, None, PROCESS_TIMEOUT)
}

/// Polls `f` until it returns `Some`, at most `timeout`, sleeping `step` between tries.
pub fn poll<T>(timeout: Duration, step: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(step);
    }
}

/// Runs `tests/py/imap_client.py` with `args`; see [`python_done`].
pub fn python_ok(args: &[&str]) -> String {
    python_done("imap_client.py", args)
}

/// Runs a helper script from `tests/py/`; panics with its output unless it exits 0 and
/// printed its closing `done` line (so a script that stopped early cannot pass). Returns its
/// stdout.
pub fn python_done(script: &str, args: &[&str]) -> String {
    let out = python(script, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains("\ndone"),
        "{script} {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `id ARGS` (user and group ids and names); `None` when it fails (e.g. no such user).
pub fn id(args: &[&str]) -> Option<String> {
    let out = Command::new("id")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A TCP connection from `source` (an address of 127/8 other than 127.0.0.1, say) to
/// `target`, in blocking mode.
pub fn connect_from(source: [u8; 4], target: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    let stream = rt
        .block_on(async {
            let s = tokio::net::TcpSocket::new_v4()?;
            s.bind(SocketAddr::from((source, 0)))?;
            s.connect(target).await?.into_std()
        })
        .unwrap_or_else(|e| panic!("connect {target} from {source:?}: {e}"));
    stream.set_nonblocking(false).expect("blocking");
    stream
}

/// The connection ends without a byte from the server (closed, or reset for the bytes it did
/// not read); panics if it answers or stays open for 30 s.
#[track_caller]
pub fn closed_without_a_word(mut s: TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                break
            }
            Err(e) => panic!("still open after 30 s ({e}); read {got:?}"),
        }
    }
    assert!(
        got.is_empty(),
        "the server answered: {:?}",
        String::from_utf8_lossy(&got)
    );
}
