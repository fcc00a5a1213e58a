//! A private Dovecot (Debian's `dovecot-imapd`) per test, as an unprivileged process.
//!
//! What it takes to run Dovecot 2.3 without root (found by running it):
//! - the whole instance (master, login, auth, imap processes) runs as one user: when the
//!   tests run as root that is a system user `mailgate-test` made on first use, otherwise the
//!   current user. `default_login_user`, `default_internal_user` and `default_internal_group`
//!   must name that user/group, or the master fails to chown its sockets ("Failed to start
//!   listeners");
//! - `chroot =` for `imap-login` and `anvil` (chroot needs root);
//! - the built-in defaults declare an `imaps` listener on port 993: set its port to 0 when
//!   it is not wanted;
//! - `base_dir` (unix sockets) must be short: the temp dir lives in /tmp;
//! - with the master itself unprivileged, `mail_uid`/`mail_gid` are not needed: the
//!   passwd-file gives that uid/gid, and `first_valid_uid`/`first_valid_gid` allow them;
//! - Dovecot may greet with `* OK Waiting for authentication process to respond..` while
//!   its auth process starts, so "ready" means the real greeting `* OK [CAPABILITY`; the
//!   master binds every listener before it logs "starting up", so that line plus the
//!   greeting proves the port is this instance's and not another test's;
//! - `mail_save_crlf = yes` keeps appended messages byte for byte in the maildir files;
//!   `auth_verbose_passwords = plain` logs the password of each failed login (tests use it to
//!   prove which password reached the server); `auth_failure_delay = 0` keeps tests quick.
//!
//! The same launcher starts the SASL backend Postfix needs (`DovecotOpts::sasl_only`):
//! `protocols =` (no IMAP listener at all) and one more auth-client socket,
//! `service auth { unix_listener PATH { mode = 0666 } }`, for `smtpd_sasl_type = dovecot`.
//! Postfix's smtpd runs as user `postfix` and must reach that socket, so the instance folder is
//! 0711 (searchable, not listable) and the socket's own folder 0755. Ready then means: "starting
//! up" logged, and the socket answers with Dovecot's auth handshake (`VERSION` … `DONE`).
//! - OAuth (`DovecotOpts::oauth2_introspection_url`): an `oauth2` passdb with
//!   `mechanisms = xoauth2 oauthbearer` and `introspection_mode = post` (the token goes as
//!   `token=…` in a form body). `active_value = true` matches a JSON boolean `true`. A token it
//!   refuses falls through to the next passdb: without `mechanisms = plain login` on the
//!   passwd-file passdb, Dovecot then checks the token as a password and, with
//!   `auth_verbose_passwords = plain`, logs it. Its error challenge is
//!   `{"status":"401","schemes":"bearer","scope":"mail"}` (an HTTP-like status, not RFC 7628's
//!   `invalid_token`).

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use tempfile::TempDir;

use super::certs::CertFiles;
use super::imap_client::ImapClient;
use super::proc::{free_port, id, poll, stop_child, wait_timeout};

/// The system user that owns the Dovecot processes and maildirs when the tests run as root.
pub const TEST_USER: &str = "mailgate-test";

const DOVECOT: &str = "/usr/sbin/dovecot";
const START_ATTEMPTS: usize = 5;
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Which Dovecot runs Dovecot: uid/gid and names.
#[derive(Clone, Debug)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub group: String,
    /// Whether the test process is root (so Dovecot is started with dropped privileges).
    pub drop_from_root: bool,
}

/// Makes the `mailgate-test` system user once per process. `useradd` fails if another test
/// process creates the user at the same moment (or holds the passwd lock), so the loop only
/// ends when `id` sees the user, bounded in attempts.
fn ensure_test_user() {
    for _ in 0..40 {
        if id(&["-u", TEST_USER]).is_some() {
            return;
        }
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                TEST_USER,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if id(&["-u", TEST_USER]).is_some() {
            return;
        }
        thread::sleep(Duration::from_millis(250));
    }
    panic!("could not create the system user {TEST_USER} (useradd --system)");
}

pub fn run_as() -> &'static RunAs {
    static RUN_AS: OnceLock<RunAs> = OnceLock::new();
    RUN_AS.get_or_init(|| {
        let euid: u32 = id(&["-u"]).and_then(|s| s.parse().ok()).expect("id -u");
        if euid == 0 {
            ensure_test_user();
            RunAs {
                uid: id(&["-u", TEST_USER])
                    .and_then(|s| s.parse().ok())
                    .expect("uid"),
                gid: id(&["-g", TEST_USER])
                    .and_then(|s| s.parse().ok())
                    .expect("gid"),
                user: TEST_USER.to_string(),
                group: id(&["-gn", TEST_USER]).expect("group name"),
                drop_from_root: true,
            }
        } else {
            RunAs {
                uid: euid,
                gid: id(&["-g"]).and_then(|s| s.parse().ok()).expect("id -g"),
                user: id(&["-un"]).expect("id -un"),
                group: id(&["-gn"]).expect("id -gn"),
                drop_from_root: false,
            }
        }
    })
}

/// [`DovecotOpts::extra`] for a Dovecot that resumes TLS sessions: one imap-login process
/// serves every connection. By default each connection gets a login process of its own
/// (`service_count = 1`), and OpenSSL makes its session ticket keys per process, so no later
/// connection could use a ticket.
pub const ONE_LOGIN_PROCESS: &str =
    "service imap-login {\n  service_count = 0\n  process_min_avail = 1\n  process_limit = 1\n}\n";

/// What the Dovecot instance offers.
#[derive(Clone, Debug)]
pub struct DovecotOpts {
    /// Server certificate. `None` means `ssl = no`: the plaintext port does not offer
    /// STARTTLS and there is no implicit-TLS port.
    pub tls: Option<CertFiles>,
    /// Also listen for implicit TLS (imaps). Needs `tls`.
    pub implicit_tls: bool,
    /// Serve IMAP on a loopback port. Without it the instance is an authentication service
    /// only (`protocols =`), and `imap_port` is 0.
    pub imap: bool,
    /// Also serve Dovecot's authentication protocol on a unix socket anyone may connect to
    /// ([`Dovecot::sasl_socket`]): the SASL backend of Postfix (`smtpd_sasl_type = dovecot`).
    pub sasl_socket: bool,
    /// Also offer XOAUTH2 and OAUTHBEARER, checking tokens with an `oauth2` passdb against
    /// this RFC 7662 introspection URL (the test identity provider).
    pub oauth2_introspection_url: Option<String>,
    /// Lines appended to the `oauth2` passdb's settings (e.g. another `username_format`).
    pub oauth2_extra: String,
    /// Settings appended to the generated config (the benchmark raises process and
    /// connection limits with it).
    pub extra: String,
    /// The folder the instance's directory is made in (default `/tmp`). The benchmark gives
    /// a tmpfs, so that no side's figures depend on when the disk writes.
    pub dir_in: Option<PathBuf>,
}

impl DovecotOpts {
    /// Plaintext port only, STARTTLS not offered.
    pub fn plaintext_only() -> DovecotOpts {
        DovecotOpts {
            tls: None,
            implicit_tls: false,
            imap: true,
            sasl_socket: false,
            oauth2_introspection_url: None,
            oauth2_extra: String::new(),
            extra: String::new(),
            dir_in: None,
        }
    }

    /// Plaintext port offering STARTTLS, and an implicit-TLS port, with `cert`.
    pub fn tls(cert: &CertFiles) -> DovecotOpts {
        DovecotOpts {
            tls: Some(cert.clone()),
            implicit_tls: true,
            imap: true,
            sasl_socket: false,
            oauth2_introspection_url: None,
            oauth2_extra: String::new(),
            extra: String::new(),
            dir_in: None,
        }
    }

    /// No IMAP: only the authentication service, on [`Dovecot::sasl_socket`] (for Postfix).
    pub fn sasl_only() -> DovecotOpts {
        DovecotOpts {
            tls: None,
            implicit_tls: false,
            imap: false,
            sasl_socket: true,
            oauth2_introspection_url: None,
            oauth2_extra: String::new(),
            extra: String::new(),
            dir_in: None,
        }
    }
}

pub struct Dovecot {
    dir: TempDir,
    child: Child,
    /// Plaintext port (offers STARTTLS when TLS is configured); 0 without IMAP (`sasl_only`).
    pub imap_port: u16,
    /// Implicit-TLS port.
    pub imaps_port: Option<u16>,
    sasl_socket: Option<PathBuf>,
    run_as: RunAs,
    next_file: AtomicU64,
    users: Mutex<()>,
}

impl Dovecot {
    pub fn start(opts: DovecotOpts) -> Dovecot {
        assert!(
            Path::new(DOVECOT).exists(),
            "{DOVECOT} is missing: install Debian's dovecot-imapd"
        );
        assert!(
            opts.tls.is_some() || !opts.implicit_tls,
            "implicit TLS needs a certificate"
        );
        assert!(
            opts.imap || (opts.tls.is_none() && !opts.implicit_tls),
            "TLS settings need IMAP"
        );
        assert!(
            opts.imap || opts.sasl_socket,
            "neither IMAP nor SASL to serve"
        );
        let run_as = run_as().clone();
        // /tmp, not $TMPDIR: unix socket paths under base_dir must stay short, and the
        // unprivileged Dovecot user must be able to reach the directory.
        let dir = tempfile::Builder::new()
            .prefix("mailgate-dovecot-")
            .tempdir_in(opts.dir_in.as_deref().unwrap_or(Path::new("/tmp")))
            .expect("dovecot tempdir");
        let d = dir.path().to_path_buf();
        for sub in ["run", "state", "home", "ssl", "sasl"] {
            fs::create_dir(d.join(sub)).expect("mkdir");
        }
        let sasl_socket = opts.sasl_socket.then(|| d.join("sasl/auth"));
        if sasl_socket.is_some() {
            // The SASL client (Postfix's smtpd, user `postfix`) must reach sasl/auth.
            fs::set_permissions(&d, fs::Permissions::from_mode(0o711)).expect("chmod");
            fs::set_permissions(d.join("sasl"), fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        fs::write(d.join("users"), "").expect("users file");
        if let Some(tls) = &opts.tls {
            fs::copy(&tls.cert, d.join("ssl/cert.pem")).expect("copy cert");
            fs::copy(&tls.key, d.join("ssl/key.pem")).expect("copy key");
            fs::set_permissions(d.join("ssl/key.pem"), fs::Permissions::from_mode(0o600))
                .expect("chmod key");
        }
        for path in [
            d.clone(),
            d.join("run"),
            d.join("state"),
            d.join("home"),
            d.join("ssl"),
            d.join("sasl"),
            d.join("users"),
        ] {
            own(&path, &run_as);
        }
        if opts.tls.is_some() {
            own(&d.join("ssl/cert.pem"), &run_as);
            own(&d.join("ssl/key.pem"), &run_as);
        }

        let mut last_log = String::new();
        for _attempt in 0..START_ATTEMPTS {
            let imap_port = if opts.imap { free_port() } else { 0 };
            let imaps_port = opts.implicit_tls.then(free_port);
            if Some(imap_port) == imaps_port {
                continue;
            }
            let conf = config(
                &d,
                &run_as,
                &opts,
                imap_port,
                imaps_port,
                sasl_socket.as_deref(),
            );
            fs::write(d.join("dovecot.conf"), conf).expect("write dovecot.conf");
            own(&d.join("dovecot.conf"), &run_as);
            let _ = fs::remove_file(d.join("dovecot.log"));

            let stderr = fs::File::create(d.join("dovecot.stderr")).expect("stderr file");
            let mut cmd = Command::new(DOVECOT);
            cmd.arg("-F")
                .arg("-c")
                .arg(d.join("dovecot.conf"))
                .current_dir(&d)
                .stdin(Stdio::null())
                .stdout(stderr.try_clone().expect("dup"))
                .stderr(stderr);
            if run_as.drop_from_root {
                cmd.uid(run_as.uid).gid(run_as.gid);
            }
            let mut child = cmd.spawn().expect("spawn dovecot");
            match wait_ready(&d, &mut child, imap_port, sasl_socket.as_deref()) {
                Ok(()) => {
                    return Dovecot {
                        dir,
                        child,
                        imap_port,
                        imaps_port,
                        sasl_socket,
                        run_as,
                        next_file: AtomicU64::new(0),
                        users: Mutex::new(()),
                    }
                }
                Err(log) => {
                    stop_child(&mut child, Duration::from_secs(10));
                    // A port taken between free_port() and Dovecot's bind: try new ports.
                    if !log.contains("Address already in use") {
                        panic!("Dovecot did not start.\n{log}");
                    }
                    last_log = log;
                }
            }
        }
        panic!("Dovecot did not start after {START_ATTEMPTS} attempts.\n{last_log}");
    }

    /// The authentication socket for a SASL client (`DovecotOpts::sasl_socket`), mode 0666.
    pub fn sasl_socket(&self) -> Option<&Path> {
        self.sasl_socket.as_deref()
    }

    /// Directory holding config, logs and homes.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn imap_addr(&self) -> SocketAddr {
        assert!(
            self.imap_port != 0,
            "this Dovecot serves no IMAP (DovecotOpts::sasl_only)"
        );
        SocketAddr::from(([127, 0, 0, 1], self.imap_port))
    }

    pub fn imaps_addr(&self) -> Option<SocketAddr> {
        self.imaps_port
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Adds a passwd-file user with a plaintext password and makes its empty Maildir.
    /// Dovecot re-reads the passwd-file when it changes, so this works while it runs.
    pub fn add_user(&self, name: &str, password: &str) {
        assert!(
            !name.contains([':', '\n', '/']) && !password.contains([':', '\n']),
            "passwd-file fields cannot hold ':' or newlines"
        );
        let _guard = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let home = self.home(name);
        for sub in ["", "Maildir", "Maildir/cur", "Maildir/new", "Maildir/tmp"] {
            let path = home.join(sub);
            fs::create_dir_all(&path).expect("mkdir home");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).expect("chmod");
            own(&path, &self.run_as);
        }
        let line = format!(
            "{name}:{{PLAIN}}{password}:{}:{}::{}::\n",
            self.run_as.uid,
            self.run_as.gid,
            home.display()
        );
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(self.dir().join("users"))
            .expect("open users");
        file.write_all(line.as_bytes()).expect("write users");
    }

    fn home(&self, user: &str) -> PathBuf {
        self.dir().join("home").join(user)
    }

    /// The user's INBOX maildir.
    pub fn maildir(&self, user: &str) -> PathBuf {
        self.home(user).join("Maildir")
    }

    /// Writes messages straight into the user's INBOX (`Maildir/cur`), owned by the Dovecot
    /// user, in order: the file names sort in the given order, so Dovecot gives them UIDs in
    /// that order when it first indexes a fresh mailbox. Each file is written into `tmp/`
    /// and renamed, so Dovecot never sees a partial file.
    pub fn fill_maildir(&self, user: &str, messages: &[Vec<u8>]) -> Vec<PathBuf> {
        let maildir = self.maildir(user);
        assert!(
            maildir.join("cur").is_dir(),
            "no such user {user}: add_user first"
        );
        let mut paths = Vec::with_capacity(messages.len());
        for message in messages {
            let n = self.next_file.fetch_add(1, Ordering::SeqCst);
            let base = format!(
                "{}.M{}P{}Q{n}.mailgate-test",
                1_600_000_000 + n,
                n % 1_000_000,
                std::process::id()
            );
            let tmp = maildir.join("tmp").join(&base);
            fs::write(&tmp, message).expect("write message");
            own(&tmp, &self.run_as);
            let cur = maildir.join("cur").join(format!("{base}:2,"));
            fs::rename(&tmp, &cur).expect("rename into cur");
            paths.push(cur);
        }
        paths
    }

    /// Contents of every message file in the user's INBOX maildir (`new` and `cur`).
    pub fn maildir_messages(&self, user: &str) -> Vec<(PathBuf, Vec<u8>)> {
        self.folder_messages(user, "")
    }

    /// The maildir++ directory of mailbox `wire` (its name as the server sends it, hierarchy
    /// delimiter `/` or `.`; `""` or `INBOX` is the inbox).
    pub fn folder_dir(&self, user: &str, wire: &str) -> PathBuf {
        if wire.is_empty() || wire.eq_ignore_ascii_case("INBOX") {
            return self.maildir(user);
        }
        self.maildir(user)
            .join(format!(".{}", wire.replace('/', ".")))
    }

    /// Contents of every message file of mailbox `wire` (see [`Dovecot::folder_dir`]).
    pub fn folder_messages(&self, user: &str, wire: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.folder_dir(user, wire).join(sub);
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if let Ok(bytes) = fs::read(&path) {
                    out.push((path, bytes));
                }
            }
        }
        out.sort();
        out
    }

    /// Everything Dovecot logged so far (its log file, and anything it wrote to stderr).
    pub fn log(&self) -> String {
        read_logs(self.dir())
    }

    /// Waits (bounded) until the log contains `needle`; returns whether it did.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        poll(timeout, Duration::from_millis(50), || {
            self.log().contains(needle).then_some(())
        })
        .is_some()
    }

    /// A direct plaintext connection to Dovecot (greeting already read).
    pub fn connect(&self) -> ImapClient {
        ImapClient::connect(self.imap_addr())
    }

    /// A direct plaintext connection, logged in as `user`.
    pub fn login(&self, user: &str, password: &str) -> ImapClient {
        let mut client = self.connect();
        client.login(user, password);
        client
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(15));
        if thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "--- Dovecot log (last {} lines) from {}:\n{}",
                tail.len(),
                self.dir().display(),
                tail.join("\n")
            );
        }
    }
}

fn own(path: &Path, run_as: &RunAs) {
    if run_as.drop_from_root {
        chown(path, Some(run_as.uid), Some(run_as.gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

fn read_logs(dir: &Path) -> String {
    let mut out = fs::read_to_string(dir.join("dovecot.log")).unwrap_or_default();
    let stderr = fs::read_to_string(dir.join("dovecot.stderr")).unwrap_or_default();
    if !stderr.is_empty() {
        out.push_str("\n--- dovecot stderr:\n");
        out.push_str(&stderr);
    }
    out
}

/// Ready means: our master logged "starting up" (it binds every listener before that, so the
/// port is ours and not another test's), is still running, the plaintext port (if any) gives
/// the real greeting, and the SASL socket (if any) gives the auth handshake. Err carries the log.
fn wait_ready(
    dir: &Path,
    child: &mut Child,
    imap_port: u16,
    sasl_socket: Option<&Path>,
) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], imap_port));
    let ready = poll(READY_TIMEOUT, Duration::from_millis(50), || {
        if let Ok(Some(_)) = child.try_wait() {
            return Some(false);
        }
        if !read_logs(dir).contains("starting up") {
            return None;
        }
        let imap_ok = imap_port == 0 || greeting_ok(addr);
        let sasl_ok = sasl_socket.is_none_or(auth_handshake_ok);
        (imap_ok && sasl_ok).then_some(true)
    });
    match ready {
        Some(true) if wait_timeout(child, Duration::ZERO).is_none() => Ok(()),
        Some(_) => Err(format!(
            "Dovecot exited during start-up.\n{}",
            read_logs(dir)
        )),
        None => Err(format!(
            "Dovecot was not ready (IMAP greeting on {addr}, auth handshake on {sasl_socket:?}) \
             within {READY_TIMEOUT:?}.\n{}",
            read_logs(dir)
        )),
    }
}

fn greeting_ok(addr: SocketAddr) -> bool {
    let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let ok = line_within(&stream, 5, |line| line.starts_with("* OK [CAPABILITY"));
    if ok {
        let _ = (&stream).write_all(b"r LOGOUT\r\n");
    }
    ok
}

/// The auth server speaks first on a client socket: `VERSION`, `MECH` lines, … `DONE`.
fn auth_handshake_ok(path: &Path) -> bool {
    let Ok(stream) = UnixStream::connect(path) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    line_within(&stream, 50, |line| line.trim_end() == "DONE")
}

/// Whether one of the first `max` lines read from `stream` satisfies `want`.
fn line_within(stream: impl Read, max: usize, want: impl Fn(&str) -> bool) -> bool {
    let mut reader = BufReader::new(stream);
    for _ in 0..max {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        if want(&line) {
            return true;
        }
    }
    false
}

/// The `oauth2` passdb's settings file: introspection by POST (`token=...` in the body, RFC
/// 7662), the user name in `username`, and only tokens with `active: true` accepted.
pub fn oauth2_ext(introspection_url: &str) -> String {
    format!(
        "introspection_mode = post\nintrospection_url = {introspection_url}\nforce_introspection = yes\n\
         username_attribute = username\nactive_attribute = active\nactive_value = true\n"
    )
}

fn config(
    d: &Path,
    run_as: &RunAs,
    opts: &DovecotOpts,
    imap_port: u16,
    imaps_port: Option<u16>,
    sasl_socket: Option<&Path>,
) -> String {
    let p = |sub: &str| d.join(sub).display().to_string();
    let mut c = String::new();
    let _ = writeln!(
        c,
        "# private test instance, written by tests/support/dovecot.rs"
    );
    let _ = writeln!(c, "protocols = {}", if opts.imap { "imap" } else { "" });
    let _ = writeln!(c, "listen = 127.0.0.1");
    let _ = writeln!(c, "base_dir = {}", p("run"));
    let _ = writeln!(c, "state_dir = {}", p("state"));
    let _ = writeln!(c, "log_path = {}", p("dovecot.log"));
    let _ = writeln!(c, "default_login_user = {}", run_as.user);
    let _ = writeln!(c, "default_internal_user = {}", run_as.user);
    let _ = writeln!(c, "default_internal_group = {}", run_as.group);
    let _ = writeln!(c, "first_valid_uid = {}", run_as.uid);
    let _ = writeln!(c, "first_valid_gid = {}", run_as.gid);
    let _ = writeln!(c, "mail_location = maildir:~/Maildir");
    // Store appended messages byte for byte (CRLF kept), so tests can compare files.
    let _ = writeln!(c, "mail_save_crlf = yes");
    // Tests open dozens of sessions of one user from 127.0.0.1 at once (mailgate's own
    // connections): Dovecot's default of 10 per user and address would refuse some of them.
    let _ = writeln!(c, "mail_max_userip_connections = 1000");
    let _ = writeln!(c, "mailbox_idle_check_interval = 1 secs");
    let _ = writeln!(c, "disable_plaintext_auth = no");
    match &opts.oauth2_introspection_url {
        None => {
            let _ = writeln!(c, "auth_mechanisms = plain login");
        }
        Some(url) => {
            let _ = writeln!(c, "auth_mechanisms = plain login xoauth2 oauthbearer");
            let ext = p("oauth2.conf.ext");
            let _ = fs::write(&ext, oauth2_ext(url) + &opts.oauth2_extra);
            own(Path::new(&ext), run_as);
            let _ = writeln!(
                c,
                "passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {ext}\n}}"
            );
        }
    }
    let _ = writeln!(c, "auth_verbose = yes");
    // Failed logins are logged with the password tried, so tests can prove which password
    // reached the upstream (and that the local one never does).
    let _ = writeln!(c, "auth_verbose_passwords = plain");
    let _ = writeln!(c, "auth_failure_delay = 0");
    match &opts.tls {
        Some(_) => {
            let _ = writeln!(c, "ssl = yes");
            let _ = writeln!(c, "ssl_cert = <{}", p("ssl/cert.pem"));
            let _ = writeln!(c, "ssl_key = <{}", p("ssl/key.pem"));
        }
        None => {
            let _ = writeln!(c, "ssl = no");
        }
    }
    let users = p("users");
    // With OAuth on, the passwd-file passdb serves PLAIN/LOGIN only: otherwise a token the
    // oauth2 passdb refused is tried as a password next, and logged as one.
    let only = if opts.oauth2_introspection_url.is_some() {
        "\n  mechanisms = plain login"
    } else {
        ""
    };
    let _ = writeln!(
        c,
        "passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {users}{only}\n}}"
    );
    let _ = writeln!(c, "userdb {{\n  driver = passwd-file\n  args = {users}\n}}");
    let _ = writeln!(c, "service anvil {{\n  chroot =\n}}");
    if let Some(path) = sasl_socket {
        let _ = writeln!(
            c,
            "service auth {{\n  unix_listener {} {{\n    mode = 0666\n  }}\n}}",
            path.display()
        );
    }
    c.push_str(&opts.extra);
    if !opts.imap {
        return c;
    }
    let _ = writeln!(c, "service imap-login {{");
    let _ = writeln!(c, "  chroot =");
    let _ = writeln!(
        c,
        "  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap_port}\n  }}"
    );
    let _ = writeln!(
        c,
        "  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {}\n    ssl = yes\n  }}",
        imaps_port.unwrap_or(0)
    );
    let _ = writeln!(c, "}}");
    c
}
