//! The control socket: `mailgate throttle list|clear` talking to the running process.
//!
//! A Unix socket `control.sock` in the config's `state_dir`, mode 0600 (the folder is made 0700
//! when missing), and only peers with the process's own user id (or root) are served: whoever
//! may use it may lift lock-outs. The protocol is one request line (`list`, `clear`,
//! `clear EMAIL`) and a reply of text lines, then the server closes. Each exchange must end within [`DEADLINE`], and at
//! most [`MAX_REQUEST`] bytes of request are looked at.

use crate::throttle;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::{info, warn};

/// The socket's file name in `state_dir`.
pub const SOCKET: &str = "control.sock";
/// Longest request line.
const MAX_REQUEST: u64 = 512;
/// Bytes read and thrown away after the reply, at most.
const MAX_DRAIN: u64 = 64 * 1024;
/// Longest reply the client reads (10,000 client keys of about 100 bytes fit).
const MAX_REPLY: u64 = 4 << 20;
/// Time for one request and its reply, on both sides.
const DEADLINE: Duration = Duration::from_secs(5);

/// Why the control socket could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The socket could not be made.
    #[error("cannot make the control socket {path}: {error}")]
    Bind {
        /// The socket's path.
        path: PathBuf,
        /// The OS error (in the message, not a `source`: the error chain would print it twice).
        error: std::io::Error,
    },
    /// Another process answers on the socket.
    #[error("{0} is in use by another running mailgate")]
    InUse(PathBuf),
    /// The client could not reach the running process.
    #[error(
        "cannot reach the running mailgate at {path} (is it running with this config?): {error}"
    )]
    Connect {
        /// The socket's path.
        path: PathBuf,
        /// The OS error (in the message, not a `source`: the error chain would print it twice).
        error: std::io::Error,
    },
    /// The exchange failed half-way.
    #[error("control socket {path}: {error}")]
    Io {
        /// The socket's path.
        path: PathBuf,
        /// The OS error (in the message, not a `source`: the error chain would print it twice).
        error: std::io::Error,
    },
}

/// The socket path for a `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET)
}

/// A listening control socket; the file is removed when this is dropped.
pub struct Control {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Control {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Control {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Makes the socket in `state_dir` and serves it until the returned handle is dropped.
pub fn start(state_dir: &Path) -> Result<Control, ControlError> {
    let path = socket_path(state_dir);
    let bind_err = |error| ControlError::Bind {
        path: path.clone(),
        error,
    };
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
    {
        Ok(()) => {}
        Err(e) if state_dir.is_dir() => drop(e),
        Err(e) => return Err(bind_err(e)),
    }
    if path.exists() {
        // Left by a process that is gone, unless one answers on it.
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(ControlError::InUse(path));
        }
        std::fs::remove_file(&path).map_err(bind_err)?;
    }
    let listener = UnixListener::bind(&path).map_err(bind_err)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(bind_err)?;
    let owner = std::fs::metadata(&path).map_err(bind_err)?.uid();
    let task = tokio::spawn(serve(listener, owner));
    Ok(Control { path, task })
}

async fn serve(listener: UnixListener, owner: u32) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(DEADLINE, answer(stream, owner)).await;
                });
            }
            Err(e) => {
                warn!(error = %e, "control socket: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(stream: UnixStream, owner: u32) -> std::io::Result<()> {
    let uid = stream.peer_cred()?.uid();
    let (read, mut write) = stream.into_split();
    if uid != owner && uid != 0 {
        warn!(uid, "control socket: refused a client of another user");
        return write.write_all(b"error: permission denied\n").await;
    }
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    (&mut reader)
        .take(MAX_REQUEST)
        .read_until(b'\n', &mut line)
        .await?;
    let reply = match line.strip_suffix(b"\n") {
        Some(l) => run(String::from_utf8_lossy(l).trim()),
        None => format!("error: send one request line of at most {MAX_REQUEST} bytes\n"),
    };
    write.write_all(reply.as_bytes()).await?;
    write.shutdown().await?;
    // Closing with unread bytes would reset the connection and could lose the reply: read
    // what the client still sends (bounded) until it closes.
    tokio::io::copy(&mut reader.take(MAX_DRAIN), &mut tokio::io::sink()).await?;
    Ok(())
}

/// Carries out one request; the reply text.
fn run(request: &str) -> String {
    let mut words = request.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("list"), None, _) => list(),
        (Some("clear"), login, None) => {
            let n = throttle::global().clear(login);
            let who = login.unwrap_or("every login name");
            let who: String = who.chars().filter(|c| !c.is_control()).take(256).collect();
            info!(login = %who, lifted = n, "throttle cleared through the control socket");
            format!("cleared the failed-login counts of {who}; {n} lock-out(s) lifted\n")
        }
        _ => "error: unknown request; use `list`, `clear` or `clear EMAIL`\n".to_owned(),
    }
}

fn list() -> String {
    let locked = throttle::global().list();
    if locked.is_empty() {
        return "no lock-outs\n".to_owned();
    }
    let mut out = String::new();
    for l in locked {
        let client = l
            .client
            .map_or_else(|| "all clients".to_owned(), |ip| ip.to_string());
        let wait = throttle::wait_text(l.remaining);
        let _ = writeln!(
            out,
            "{}\t{client}\t{} failures\tlocked for {wait} more",
            l.login, l.failures
        );
    }
    out
}

/// Sends one request to the running process at `state_dir` and returns its reply.
pub fn request(state_dir: &Path, line: &str) -> Result<String, ControlError> {
    let path = socket_path(state_dir);
    let mut s =
        std::os::unix::net::UnixStream::connect(&path).map_err(|error| ControlError::Connect {
            path: path.clone(),
            error,
        })?;
    let io = |error| ControlError::Io {
        path: path.clone(),
        error,
    };
    s.set_read_timeout(Some(DEADLINE)).map_err(io)?;
    s.set_write_timeout(Some(DEADLINE)).map_err(io)?;
    s.write_all(format!("{line}\n").as_bytes()).map_err(io)?;
    let mut reply = String::new();
    s.take(MAX_REPLY).read_to_string(&mut reply).map_err(io)?;
    Ok(reply)
}
