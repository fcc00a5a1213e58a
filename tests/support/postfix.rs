//! A private Postfix (Debian's `postfix`) per test, the SMTP upstream, with Dovecot SASL.
//!
//! Started as `postfix -c DIR start` with everything private to a temp folder:
//! `queue_directory`, `data_directory`, `maillog_file`, its own `master.cf` with three smtpd
//! services on free 127.0.0.1 ports (STARTTLS required, implicit TLS, and plaintext for the
//! direct comparison sends). SASL goes through Dovecot's auth socket: a [`Dovecot`] started
//! with `DovecotOpts::sasl_only()` (the same launcher as the IMAP upstream, with no IMAP
//! listener), whose passwd-file holds the users. Postfix runs as root with
//! `mail_owner = postfix` (its master must be root to switch to that user; nothing listens
//! outside 127.0.0.1). Delivery is Postfix's `virtual` agent into one maildir
//! (`virtual_mailbox_maps = static:box/`), as uid 65534, so the test reads what Postfix really
//! stored.
//!
//! What Postfix stores: LF line endings (a CR before LF is removed), and four trace headers
//! prepended (Return-Path, X-Original-To, Delivered-To, Received). [`Postfix::delivered`]
//! removes exactly those; the tests then compare with the sent bytes (CRLF → LF, [`as_stored`])
//! *and* with the same message sent directly to Postfix, so whatever Postfix itself does to a
//! message (e.g. a blank line before a first line that is not a header) is the same on both
//! paths. Header rewriting is off (`local_header_rewrite_clients =`), so Postfix adds no Date,
//! Message-ID or From of its own.
//!
//! The test policy: RCPT `refused@DOMAIN` gets `554 5.7.1 … test policy`; a message with
//! `Subject: REJECT-ME` gets `550 5.7.1 … test content policy` at the end of DATA.
//!
//! The ports come from `free_port()`; when one is taken before Postfix's master binds it, the
//! master exits ("Address already in use") and the start is tried again with new ports
//! (bounded), as the Dovecot and mailgate launchers do.
//!
//! Drop stops what was started: `postfix -c DIR stop` (our own master, by its pid file) and
//! the Dovecot child by its PID.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use tempfile::TempDir;

use super::certs::Pki;
use super::config::Upstream;
use super::dovecot::{Dovecot, DovecotOpts};
use super::proc::{free_port, id, poll, run_with_timeout, PROCESS_TIMEOUT};

/// The domain Postfix delivers for.
pub const DOMAIN: &str = "example.test";

/// Start attempts (each with new ports) when a port was taken before Postfix bound it.
const START_ATTEMPTS: usize = 5;
/// How long to wait for a listener to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for a message to be delivered (and how often to look).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
pub const DELIVERY_STEP: Duration = Duration::from_millis(100);

/// A private Postfix + Dovecot (SASL only) on loopback ports.
pub struct Postfix {
    /// The temp folder holding everything but Dovecot's.
    pub dir: TempDir,
    /// smtpd with STARTTLS required (like port 587).
    pub starttls_port: u16,
    /// smtpd with implicit TLS (like port 465).
    pub implicit_port: u16,
    /// smtpd without TLS (AUTH allowed), for direct comparison sends.
    pub plain_port: u16,
    /// The CA that signed Postfix's certificate (PEM file path).
    pub ca_file: PathBuf,
    /// The SASL backend.
    pub dovecot: Dovecot,
    _pki: Pki,
    started: bool,
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn postfix(conf: &Path, action: &str) -> Output {
    let mut cmd = Command::new("postfix");
    cmd.arg("-c").arg(conf).arg(action);
    run_with_timeout(cmd, None, PROCESS_TIMEOUT)
}

impl Postfix {
    /// `[account.smtp]` to the STARTTLS port, trusting the test CA, name "localhost".
    pub fn starttls_upstream(&self) -> Upstream {
        Upstream::tls(
            format!("127.0.0.1:{}", self.starttls_port),
            "starttls",
            Some(&self.ca_file),
        )
        .tls_server_name("localhost")
    }

    /// `[account.smtp]` to the implicit-TLS port, trusting the test CA. No
    /// `tls_server_name`: the certificate's IP address SAN is checked.
    pub fn implicit_upstream(&self) -> Upstream {
        Upstream::tls(
            format!("127.0.0.1:{}", self.implicit_port),
            "implicit",
            Some(&self.ca_file),
        )
    }

    /// Starts Dovecot (auth only) and Postfix for `users` (local parts at [`DOMAIN`]), who
    /// all authenticate with `password`.
    pub fn start(users: &[&str], password: &str) -> Postfix {
        Postfix::start_with(users, password, DovecotOpts::sasl_only())
    }

    /// [`Postfix::start`] with the SASL Dovecot started from `opts` (a `sasl_only` base, e.g.
    /// with `oauth2_introspection_url` so that Postfix accepts XOAUTH2 and OAUTHBEARER).
    /// Postfix's own directory goes in `opts.dir_in` too (default: the system's temp dir).
    pub fn start_with(users: &[&str], password: &str, opts: DovecotOpts) -> Postfix {
        Postfix::start_checking_senders(users, password, opts, &[])
    }

    /// [`Postfix::start_with`], and with `sender_logins` (sender address, SASL login) Postfix
    /// lets a logged-in user send only as the addresses it owns by that list
    /// (`reject_sender_login_mismatch`), as a provider checks a "send as" right. Empty: no
    /// such check.
    pub fn start_checking_senders(
        users: &[&str],
        password: &str,
        opts: DovecotOpts,
        sender_logins: &[(&str, &str)],
    ) -> Postfix {
        let mut dir = tempfile::Builder::new();
        dir.prefix("mailgate-postfix-");
        let dir = match &opts.dir_in {
            Some(base) => dir.tempdir_in(base),
            None => dir.tempdir(),
        }
        .expect("temp dir");
        let d = dir.path().to_path_buf();
        // Postfix's daemons (user postfix) and the virtual agent (uid 65534) must reach here.
        chmod(&d, 0o755);
        for sub in ["conf", "queue", "data", "mail"] {
            fs::create_dir(d.join(sub)).expect("mkdir");
            chmod(&d.join(sub), 0o755);
        }
        chmod(&d.join("mail"), 0o1777);
        let postfix_uid: u32 = id(&["-u", "postfix"])
            .and_then(|s| s.parse().ok())
            .expect("no user postfix: install Debian's postfix");
        chown(d.join("data"), Some(postfix_uid), None).expect("chown data");

        let pki = Pki::new();
        // Copies readable by root only, in Postfix's own folder.
        let c = d.join("conf");
        fs::copy(&pki.server.cert, c.join("cert.pem")).expect("copy cert");
        fs::copy(&pki.server.key, c.join("key.pem")).expect("copy key");
        chmod(&c.join("key.pem"), 0o600);

        let dovecot = Dovecot::start(opts);
        for user in users {
            dovecot.add_user(&format!("{user}@{DOMAIN}"), password);
        }
        let sasl = dovecot.sasl_socket().expect("sasl socket").to_path_buf();

        let mut main = main_cf(&d, &sasl);
        if !sender_logins.is_empty() {
            let map: String = sender_logins
                .iter()
                .map(|(sender, login)| format!("{sender} {login}\n"))
                .collect();
            fs::write(c.join("sender_logins"), map).expect("sender_logins");
            main = main.replace(
                "smtpd_sender_restrictions = ",
                "smtpd_sender_restrictions = reject_sender_login_mismatch, ",
            );
            main.push_str(&format!(
                "smtpd_sender_login_maps = texthash:{}/conf/sender_logins\n",
                d.display()
            ));
        }
        fs::write(c.join("main.cf"), main).expect("main.cf");
        fs::write(
            c.join("rcpt_access"),
            format!("refused@{DOMAIN} REJECT Recipient refused by the test policy\n"),
        )
        .expect("rcpt_access");
        fs::write(
            c.join("sender_access"),
            format!("refused-sender@{DOMAIN} REJECT Sender refused by the test policy\n"),
        )
        .expect("sender_access");
        // Refused (or deferred) at DATA, after sender and recipient were accepted.
        fs::write(
            c.join("data_access"),
            format!(
                "data-refused@{DOMAIN} REJECT Data refused by the test policy\n\
                 data-deferred@{DOMAIN} DEFER Data deferred by the test policy\n"
            ),
        )
        .expect("data_access");
        fs::write(
            c.join("header_checks"),
            "/^Subject: REJECT-ME/ REJECT Message refused by the test content policy\n",
        )
        .expect("header_checks");
        let mut pf = Postfix {
            starttls_port: 0,
            implicit_port: 0,
            plain_port: 0,
            ca_file: pki.ca.clone(),
            dovecot,
            _pki: pki,
            started: false,
            dir,
        };
        for _attempt in 0..START_ATTEMPTS {
            let ports = [free_port(), free_port(), free_port()];
            if ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
                continue;
            }
            fs::write(c.join("master.cf"), master_cf(ports)).expect("master.cf");
            let log_before = pf.log().len();
            let out = postfix(&c, "start");
            if !out.status.success() {
                // The master exited: a port taken between free_port() and its bind is worth
                // another try with new ports; anything else is not.
                let log = pf.log();
                if log[log_before.min(log.len())..].contains("Address already in use") {
                    continue;
                }
                panic!(
                    "postfix start failed: {}\n{log}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            pf.started = true;
            [pf.starttls_port, pf.implicit_port, pf.plain_port] = ports;
            for port in ports {
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let listening = poll(READY_TIMEOUT, DELIVERY_STEP, || {
                    TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                        .ok()
                        .map(|_| ())
                });
                assert!(
                    listening.is_some(),
                    "postfix does not listen on {port}\n{}",
                    pf.log()
                );
            }
            return pf;
        }
        panic!(
            "postfix did not start after {START_ATTEMPTS} attempts\n{}",
            pf.log()
        );
    }

    /// Postfix's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("postfix.log")).unwrap_or_default()
    }

    /// All delivered messages as (X-Original-To recipient, message as stored without the four
    /// trace headers Postfix prepended).
    pub fn delivered(&self) -> Vec<(String, Vec<u8>)> {
        let new = self.dir.path().join("mail/box/new");
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(&new) else {
            return out;
        };
        for e in entries.flatten() {
            let Ok(bytes) = fs::read(e.path()) else {
                continue;
            };
            out.push(strip_trace(&bytes));
        }
        out
    }

    /// The stored message for `rcpt`, waiting (bounded) for its delivery.
    pub fn wait_for(&self, rcpt: &str) -> Vec<u8> {
        let found = poll(DELIVERY_TIMEOUT, DELIVERY_STEP, || {
            self.delivered().into_iter().find(|(r, _)| r == rcpt)
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

impl Drop for Postfix {
    fn drop(&mut self) {
        if self.started {
            let _ = postfix(&self.dir.path().join("conf"), "stop");
        }
        if thread::panicking() {
            eprintln!("--- Postfix log:\n{}", self.log());
        }
        // `dovecot` is dropped (stopped by its PID) after this.
    }
}

fn main_cf(d: &Path, sasl: &Path) -> String {
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
         header_checks = regexp:{d}/conf/header_checks\n\
         smtpd_sender_restrictions = check_sender_access texthash:{d}/conf/sender_access\n\
         smtpd_data_restrictions = check_sender_access texthash:{d}/conf/data_access\n\
         smtpd_delay_reject = no\n",
        d = d.display(),
        sasl = sasl.display(),
    )
}

/// Three smtpd services on `[starttls, implicit, plain]` ports, and Postfix's own services.
fn master_cf([starttls, implicit, plain]: [u16; 3]) -> String {
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
    format!(
        "127.0.0.1:{starttls} inet n - n - - smtpd -o smtpd_tls_security_level=encrypt\n\
         127.0.0.1:{implicit} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes -o smtpd_tls_security_level=encrypt\n\
         127.0.0.1:{plain} inet n - n - - smtpd -o smtpd_tls_security_level=none\n{}\n",
        services.join("\n")
    )
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
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
    const TRACE: [&str; 4] = [
        "Return-Path:",
        "X-Original-To:",
        "Delivered-To:",
        "Received:",
    ];
    let mut rcpt = String::new();
    let mut rest = bytes;
    for name in TRACE {
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
    }
    (rcpt, rest.to_vec())
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
