//! Test support for the SMTP side: a real Postfix (with Dovecot SASL) on loopback ports, the
//! mailgate binary, and small helpers for clients.
//!
//! Postfix is Debian's, started as `postfix -c DIR start` with everything private to a temp
//! folder: `queue_directory`, `data_directory`, `maillog_file`, its own `master.cf` with three
//! smtpd services on free 127.0.0.1 ports (STARTTLS required, implicit TLS, and plaintext for
//! the direct comparison sends), SASL through an auth-only Dovecot (`dovecot -F`, no
//! protocols, passwd-file users). It runs as root with `mail_owner = postfix` (its master
//! must be root to switch to that user; nothing listens outside 127.0.0.1). Delivery is
//! Postfix's `virtual` agent into one maildir (`virtual_mailbox_maps = static:box/`), as uid
//! 65534, so the test reads what Postfix really stored.
//!
//! What Postfix stores: LF line endings (a CR before LF is removed), and four trace headers
//! prepended (Return-Path, X-Original-To, Delivered-To, Received). [`Postfix::delivered`]
//! removes exactly those; the tests then compare with the sent bytes (CRLF → LF) *and* with
//! the same message sent directly to Postfix, so whatever Postfix itself does to a message
//! (e.g. a blank line before a first line that is not a header) is the same on both paths.
//! Header rewriting is off (`local_header_rewrite_clients =`), so Postfix adds no Date,
//! Message-ID or From of its own.
//!
//! Drop stops what was started: `postfix -c DIR stop` (our own master, by its pid file) and
//! the Dovecot and mailgate children by their PIDs.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Local password every test account uses with mailgate.
pub const LOCAL_PASSWORD: &str = "local-pw";
/// Upstream (Postfix/Dovecot) password of every test user.
pub const UPSTREAM_PASSWORD: &str = "upstream-secret";
/// The domain Postfix delivers for.
pub const DOMAIN: &str = "example.test";

/// A port nobody listens on right now (bound, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id")
        .arg("-u")
        .arg(user)
        .output()
        .expect("id -u");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("numeric uid")
}

/// Polls `ready` up to `tries` times, a short sleep apart. Bounded: never loops forever.
pub fn wait_until(tries: u32, mut ready: impl FnMut() -> bool) -> bool {
    for _ in 0..tries {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    ready()
}

/// A test CA and a server certificate for `localhost` / 127.0.0.1, made now with rcgen.
pub struct Pki {
    /// CA certificate (PEM), for mailgate's `ca_file`.
    pub ca_pem: String,
    /// Server certificate (PEM).
    pub cert_pem: String,
    /// Server key (PEM).
    pub key_pem: String,
}

impl Pki {
    /// Makes a fresh CA and server certificate.
    pub fn new() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "mailgate test CA");
        let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
        let key = KeyPair::generate().expect("server key");
        let mut p = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        p.subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        p.distinguished_name.push(DnType::CommonName, "localhost");
        let cert = p.signed_by(&key, &ca_cert, &ca_key).expect("server cert");
        Pki {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A private Postfix + Dovecot (SASL only) on loopback ports.
pub struct Postfix {
    /// The temp folder holding everything.
    pub dir: tempfile::TempDir,
    /// smtpd with STARTTLS required (like port 587).
    pub starttls_port: u16,
    /// smtpd with implicit TLS (like port 465).
    pub implicit_port: u16,
    /// smtpd without TLS (AUTH allowed), for direct comparison sends.
    pub plain_port: u16,
    /// The CA that signed Postfix's certificate (PEM file path).
    pub ca_file: PathBuf,
    dovecot: Option<Child>,
    started: bool,
}

impl Postfix {
    /// Starts Dovecot (auth only) and Postfix for `users` (local parts at example.test).
    pub fn start(users: &[&str]) -> Postfix {
        Postfix::start_with_oauth(users, None)
    }

    /// [`Postfix::start`], with Dovecot also offering XOAUTH2 and OAUTHBEARER and checking the
    /// tokens with an `oauth2` passdb whose settings file is `oauth2_ext`
    /// (`support::dovecot::oauth2_ext`).
    pub fn start_with_oauth(users: &[&str], oauth2_ext: Option<&str>) -> Postfix {
        let dir = tempfile::Builder::new()
            .prefix("mailgate-postfix-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path().to_path_buf();
        // Postfix's daemons (user postfix) and the virtual agent (uid 65534) must reach here.
        chmod(&d, 0o755);
        for sub in ["conf", "queue", "data", "mail", "sasl", "dovecot"] {
            std::fs::create_dir(d.join(sub)).expect("mkdir");
            chmod(&d.join(sub), 0o755);
        }
        chmod(&d.join("mail"), 0o1777);
        let postfix_uid = uid_of("postfix");
        std::os::unix::fs::chown(d.join("data"), Some(postfix_uid), None).expect("chown data");

        let pki = Pki::new();
        std::fs::write(d.join("conf/cert.pem"), &pki.cert_pem).expect("write cert");
        std::fs::write(d.join("conf/key.pem"), &pki.key_pem).expect("write key");
        chmod(&d.join("conf/key.pem"), 0o600);
        let ca_file = d.join("conf/ca.pem");
        std::fs::write(&ca_file, &pki.ca_pem).expect("write ca");

        // Dovecot: SASL only.
        let users_file: String = users
            .iter()
            .map(|u| format!("{u}@{DOMAIN}:{{PLAIN}}{UPSTREAM_PASSWORD}\n"))
            .collect();
        std::fs::write(d.join("dovecot/users"), users_file).expect("users");
        let dc = d.join("dovecot");
        let sasl = d.join("sasl/auth");
        let (mechanisms, oauth_passdb) = match oauth2_ext {
            None => ("plain login", String::new()),
            Some(text) => {
                let ext = dc.join("oauth2.conf.ext");
                std::fs::write(&ext, text).expect("oauth2.conf.ext");
                (
                    "plain login xoauth2 oauthbearer",
                    format!(
                        "passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {}\n}}\n",
                        ext.display()
                    ),
                )
            }
        };
        std::fs::write(
            dc.join("dovecot.conf"),
            format!(
                "protocols =\nbase_dir = {b}/run\nstate_dir = {b}/state\nlog_path = {b}/dovecot.log\n\
                 ssl = no\nauth_mechanisms = {mechanisms}\ndisable_plaintext_auth = no\n\
                 passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {b}/users\n}}\n{oauth_passdb}\
                 userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home=/nonexistent\n}}\n\
                 service auth {{\n  unix_listener {s} {{\n    mode = 0666\n  }}\n}}\n",
                b = dc.display(),
                s = sasl.display()
            ),
        )
        .expect("dovecot.conf");
        let dovecot = Command::new("dovecot")
            .arg("-F")
            .arg("-c")
            .arg(dc.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot");

        let (p1, p2, p3) = (free_port(), free_port(), free_port());
        let mut pf = Postfix {
            starttls_port: p1,
            implicit_port: p2,
            plain_port: p3,
            ca_file,
            dovecot: Some(dovecot),
            started: false,
            dir,
        };
        assert!(
            wait_until(100, || sasl.exists()),
            "dovecot did not create its auth socket; see {}",
            dc.join("dovecot.log").display()
        );

        let c = d.join("conf");
        std::fs::write(
            c.join("main.cf"),
            format!(
                "compatibility_level = 3.6\n\
                 queue_directory = {d}/queue\n\
                 data_directory = {d}/data\n\
                 mail_owner = postfix\n\
                 setgid_group = postdrop\n\
                 myhostname = upstream.test\n\
                 mydomain = upstream.test\n\
                 myorigin = upstream.test\n\
                 mydestination =\n\
                 inet_interfaces = 127.0.0.1\n\
                 inet_protocols = ipv4\n\
                 mynetworks = 127.0.0.0/8\n\
                 maillog_file_prefixes = {d}\n\
                 maillog_file = {d}/postfix.log\n\
                 smtputf8_enable = yes\n\
                 message_size_limit = 104857600\n\
                 virtual_mailbox_limit = 0\n\
                 mailbox_size_limit = 0\n\
                 virtual_mailbox_domains = {DOMAIN}\n\
                 virtual_mailbox_base = {d}/mail\n\
                 virtual_mailbox_maps = static:box/\n\
                 virtual_uid_maps = static:65534\n\
                 virtual_gid_maps = static:65534\n\
                 local_header_rewrite_clients =\n\
                 remote_header_rewrite_domain =\n\
                 smtpd_sasl_type = dovecot\n\
                 smtpd_sasl_path = {sasl}\n\
                 smtpd_sasl_auth_enable = yes\n\
                 smtpd_tls_cert_file = {d}/conf/cert.pem\n\
                 smtpd_tls_key_file = {d}/conf/key.pem\n\
                 smtpd_relay_restrictions = permit_sasl_authenticated, reject\n\
                 smtpd_recipient_restrictions = check_recipient_access texthash:{d}/conf/rcpt_access, permit_sasl_authenticated, reject\n\
                 header_checks = regexp:{d}/conf/header_checks\n",
                d = d.display(),
                sasl = sasl.display(),
            ),
        )
        .expect("main.cf");
        std::fs::write(
            c.join("rcpt_access"),
            format!("refused@{DOMAIN} REJECT Recipient refused by the test policy\n"),
        )
        .expect("rcpt_access");
        std::fs::write(
            c.join("header_checks"),
            "/^Subject: REJECT-ME/ REJECT Message refused by the test content policy\n",
        )
        .expect("header_checks");
        let services = [
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "tlsmgr unix - - n 1000? 1 tlsmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "local unix - n n - - local",
            "virtual unix - n n - - virtual",
            "lmtp unix - - n - - lmtp",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ];
        let master = format!(
            "127.0.0.1:{p1} inet n - n - - smtpd -o smtpd_tls_security_level=encrypt\n\
             127.0.0.1:{p2} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt\n\
             127.0.0.1:{p3} inet n - n - - smtpd -o smtpd_tls_security_level=none\n{}\n",
            services.join("\n")
        );
        std::fs::write(c.join("master.cf"), master).expect("master.cf");
        let out = Command::new("postfix")
            .arg("-c")
            .arg(&c)
            .arg("start")
            .stdin(Stdio::null())
            .output()
            .expect("run postfix");
        pf.started = true;
        assert!(
            out.status.success(),
            "postfix start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            pf.log()
        );
        for port in [p1, p2, p3] {
            assert!(
                wait_until(100, || TcpStream::connect(("127.0.0.1", port)).is_ok()),
                "postfix does not listen on {port}\n{}",
                pf.log()
            );
        }
        pf
    }

    /// Postfix's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postfix.log")).unwrap_or_default()
    }

    /// All delivered messages as (X-Original-To recipient, message as stored without the four
    /// trace headers Postfix prepended).
    pub fn delivered(&self) -> Vec<(String, Vec<u8>)> {
        let new = self.dir.path().join("mail/box/new");
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&new) else {
            return out;
        };
        for e in entries.flatten() {
            let Ok(bytes) = std::fs::read(e.path()) else {
                continue;
            };
            out.push(strip_trace(&bytes));
        }
        out
    }

    /// The stored message for `rcpt`, waiting (bounded) for its delivery.
    pub fn wait_for(&self, rcpt: &str) -> Vec<u8> {
        let mut found = None;
        wait_until(600, || {
            found = self.delivered().into_iter().find(|(r, _)| r == rcpt);
            found.is_some()
        });
        match found {
            Some((_, m)) => m,
            None => panic!("no message for {rcpt} arrived\n{}", self.log()),
        }
    }

    /// Whether Postfix's queue holds no message (nothing waiting to be delivered).
    pub fn queue_empty(&self) -> bool {
        ["maildrop", "incoming", "active", "deferred", "hold"]
            .iter()
            .all(|q| count_files(&self.dir.path().join("queue").join(q)) == 0)
    }
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// Splits a stored message into (X-Original-To, the rest after the prepended trace headers).
fn strip_trace(bytes: &[u8]) -> (String, Vec<u8>) {
    let mut rcpt = String::new();
    let mut rest = bytes;
    let mut removed = 0;
    while removed < 4 {
        let name = [
            "Return-Path:",
            "X-Original-To:",
            "Delivered-To:",
            "Received:",
        ][removed];
        if !rest.starts_with(name.as_bytes()) {
            break;
        }
        let mut end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        if name == "X-Original-To:" {
            rcpt = String::from_utf8_lossy(&rest[name.len()..end])
                .trim()
                .to_owned();
        }
        // Continuation lines of a folded header.
        while end < rest.len() && (rest[end] == b' ' || rest[end] == b'\t') {
            end += rest[end..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len() - end, |i| i + 1);
        }
        rest = &rest[end..];
        removed += 1;
    }
    (rcpt, rest.to_vec())
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if self.started {
            let _ = Command::new("postfix")
                .arg("-c")
                .arg(self.dir.path().join("conf"))
                .arg("stop")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut c) = self.dovecot.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What Postfix stores for a message sent with CRLF line ends: CR before LF removed.
pub fn as_stored(sent: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(sent.len());
    let mut i = 0;
    while i < sent.len() {
        if sent[i] == b'\r' && sent.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(sent[i]);
        i += 1;
    }
    out
}

/// The mailgate binary running with a config file; stderr is read continuously.
pub struct Gateway {
    child: Child,
    /// Where its SMTP listener is.
    pub smtp: SocketAddr,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

/// Hashes `password` with `mailgate hash-password`.
pub fn hash_password(password: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailgate"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run mailgate hash-password");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("hash-password output");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Gateway {
    /// Starts `mailgate run` with `config` (TOML text) and waits for its SMTP listener.
    pub fn start(config: &str) -> Gateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mailgate.toml");
        std::fs::write(&path, config).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_mailgate"))
            .arg("run")
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mailgate");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.split("smtp listening on ").nth(1) {
                    if let (Some(tx), Ok(a)) = (tx.take(), addr.trim().parse::<SocketAddr>()) {
                        let _ = tx.send(a);
                    }
                }
                if let Ok(mut l) = sink.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let smtp = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "mailgate did not report its SMTP listener:\n{}",
                    log.lock().map(|l| l.clone()).unwrap_or_default()
                );
            }
        };
        Gateway {
            child,
            smtp,
            log,
            _dir: dir,
        }
    }

    /// Everything mailgate logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw SMTP client on a TCP socket: exact bytes out, replies in.
pub struct Raw {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Raw {
    /// Connects and reads the greeting.
    pub fn connect(addr: SocketAddr) -> (Raw, String) {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut raw = Raw { stream, reader };
        let greeting = raw.reply();
        (raw, greeting)
    }

    /// Sends bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads one complete (possibly multi-line) reply; empty when the server closed.
    pub fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return all,
                Ok(_) => {}
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    /// Sends `line` (CRLF added) and reads the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// EHLO and AUTH PLAIN as `user`; returns the AUTH reply.
    pub fn login(&mut self, user: &str, password: &str) -> String {
        use base64::Engine;
        let ehlo = self.cmd("EHLO client.test");
        assert!(ehlo.starts_with("250"), "{ehlo}");
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        self.cmd(&format!("AUTH PLAIN {token}"))
    }

    /// Whether the server has closed the connection (reads until EOF, bounded by the timeout).
    pub fn closed(&mut self) -> bool {
        let mut buf = [0u8; 256];
        for _ in 0..1000 {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                // Interrupted by a signal (SIGCHLD from a stopped server): read again.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
                // Bytes before the close (e.g. a 421 line) are not the close itself.
                Ok(_) => continue,
            }
        }
        false
    }
}

/// Runs a python3 script with arguments; returns stdout, panics with stderr on failure.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A TCP tap on a free port that forwards to `target` and records every byte sent towards
/// it, so a test can see exactly what mailgate wrote on the wire (Postfix's stored copy has
/// lost its CRs). Serves a few connections, each until either side closes.
pub fn recording_tap(target: u16) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind tap");
    let port = listener.local_addr().expect("tap addr").port();
    let record = Arc::new(Mutex::new(Vec::new()));
    let sink = record.clone();
    std::thread::spawn(move || {
        for _ in 0..8 {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                return;
            };
            let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
                return;
            };
            let sink = sink.clone();
            let (mut client, mut server) = (client, server);
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                loop {
                    match client.read(&mut buf) {
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if let Ok(mut r) = sink.lock() {
                                r.extend_from_slice(&buf[..n]);
                            }
                            if server.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = server.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (port, record)
}

/// The DATA sections (after `DATA\r\n`, up to and including `\r\n.\r\n`) in a recorded
/// client→server byte stream.
pub fn data_sections(wire: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = wire;
    while let Some(i) = find(rest, b"\r\nDATA\r\n") {
        rest = &rest[i + 8..];
        let end = if rest.starts_with(b".\r\n") {
            3
        } else {
            match find(rest, b"\r\n.\r\n") {
                Some(e) => e + 5,
                None => break,
            }
        };
        out.push(rest[..end].to_vec());
        rest = &rest[end..];
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
