//! A real DNS server for discovery tests: dnsmasq (Debian's `dnsmasq-base`, installed by
//! .ci/run) on 127.0.0.1 and a free port, over UDP and TCP, answering only from the records it
//! is given (`--mx-host`, `--host-record`: no upstream, no /etc/hosts). Where the stand-in in
//! dns.rs models one server's habits, this is how a widely deployed resolver behaves, e.g. how
//! it cuts an answer that does not fit the datagram the query offers.

use super::proc::{free_port, poll, stop_child};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One record dnsmasq serves.
pub enum Record<'a> {
    /// `--mx-host=NAME,EXCHANGE,PREFERENCE`.
    Mx(&'a str, &'a str, u16),
    /// `--host-record=NAME,ADDRESS`.
    Host(&'a str, &'a str),
}

/// A running dnsmasq; stopped (by PID, SIGTERM then SIGKILL) when dropped.
pub struct Dnsmasq {
    pub addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Starts dnsmasq with `records` and waits (at most 10 s per try) until it accepts TCP;
    /// a port another process took meanwhile makes it exit, and another port is tried.
    pub fn start(records: &[Record]) -> Dnsmasq {
        let dir = tempfile::tempdir().expect("tempdir");
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new("dnsmasq");
            cmd.args([
                "--keep-in-foreground",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--conf-file=/dev/null",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
            for r in records {
                cmd.arg(match r {
                    Record::Mx(name, host, pref) => format!("--mx-host={name},{host},{pref}"),
                    Record::Host(name, ip) => format!("--host-record={name},{ip}"),
                });
            }
            let mut child = cmd
                .spawn()
                .expect("start dnsmasq (apt-get install dnsmasq-base)");
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let up = poll(Duration::from_secs(10), Duration::from_millis(20), || {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return Some(false);
                }
                TcpStream::connect(addr).is_ok().then_some(true)
            });
            if up == Some(true) {
                return Dnsmasq {
                    addr,
                    child,
                    _dir: dir,
                };
            }
            stop_child(&mut child, Duration::from_secs(5));
        }
        panic!("dnsmasq did not start on any of 5 ports");
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(5));
    }
}
