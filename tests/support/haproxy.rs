//! A real HAProxy (Debian's `haproxy`, installed by .ci/run) in front of mailgate: `mode tcp`
//! frontends on free loopback ports, each passing its connections to its backend servers in
//! turn (`balance roundrobin`) with the given `server` options (`send-proxy-v2`, `send-proxy`,
//! `check …`). Runs in the foreground (`-db`) as a child of the test, with its config in a temp
//! dir; stopped by PID.

use super::proc::{free_port, poll, stop_child};
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One frontend: where it sends connections and how (`server` line options).
pub struct Frontend {
    pub backends: Vec<SocketAddr>,
    pub options: String,
}

impl Frontend {
    pub fn new(backend: SocketAddr, options: &str) -> Frontend {
        Frontend::balanced(&[backend], options)
    }

    /// Connections spread over `backends` in turn, each `server` line with `options`.
    pub fn balanced(backends: &[SocketAddr], options: &str) -> Frontend {
        Frontend {
            backends: backends.to_vec(),
            options: options.to_string(),
        }
    }
}

/// A running HAProxy; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Haproxy {
    /// The frontends' addresses, in the order they were given.
    pub addrs: Vec<SocketAddr>,
    child: Child,
    dir: tempfile::TempDir,
}

impl Haproxy {
    /// Starts HAProxy with `frontends` and waits until it listens on all of them; a port
    /// another process took meanwhile makes it exit, and other ports are tried.
    pub fn start(frontends: &[Frontend]) -> Haproxy {
        let dir = tempfile::tempdir().expect("tempdir");
        for _ in 0..5 {
            let addrs: Vec<SocketAddr> = frontends
                .iter()
                .map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())))
                .collect();
            let config = dir.path().join("haproxy.cfg");
            std::fs::write(&config, config_text(frontends, &addrs)).expect("write haproxy.cfg");
            let stderr = std::fs::File::create(dir.path().join("stderr")).expect("stderr file");
            let mut child = Command::new("haproxy")
                .arg("-db")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("start haproxy (apt-get install haproxy)");
            // Bound when we can no longer bind the port ourselves (connecting would open a
            // session on mailgate behind it).
            let up = poll(Duration::from_secs(20), Duration::from_millis(20), || {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return Some(false);
                }
                addrs
                    .iter()
                    .all(|a| TcpListener::bind(a).is_err())
                    .then_some(true)
            });
            if up == Some(true) {
                return Haproxy { addrs, child, dir };
            }
            stop_child(&mut child, Duration::from_secs(5));
        }
        panic!(
            "haproxy did not start on any of 5 port sets:\n{}",
            std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default()
        );
    }

    /// What HAProxy wrote to stderr so far (warnings, alerts).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    /// Whether HAProxy has reported server `server` of frontend `frontend`'s backend down
    /// (its health check failed; with `fall 1`, at the first failure).
    pub fn marked_down(&self, frontend: usize, server: usize) -> bool {
        self.stderr()
            .contains(&format!("Server b{frontend}/m{server} is DOWN"))
    }

    /// The config file it runs.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("haproxy.cfg")
    }
}

/// `mode tcp` frontends `f0`, `f1`, … each with its backend `b0`, `b1`, … of servers `m0`,
/// `m1`, …
fn config_text(frontends: &[Frontend], addrs: &[SocketAddr]) -> String {
    let mut c = String::from(
        "global\n    maxconn 200\n\ndefaults\n    mode tcp\n    timeout connect 10s\n    timeout client 120s\n    timeout server 120s\n",
    );
    for (i, (f, addr)) in frontends.iter().zip(addrs).enumerate() {
        let _ = write!(
            c,
            "\nfrontend f{i}\n    bind {addr}\n    default_backend b{i}\n\nbackend b{i}\n    balance roundrobin\n"
        );
        for (j, backend) in f.backends.iter().enumerate() {
            let _ = writeln!(c, "    server m{j} {backend} {}", f.options);
        }
    }
    c
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(5));
    }
}
