//! End-to-end benchmark: the same work directly against Dovecot/Postfix and through mailgate,
//! interleaved (A B A B …) in one run, reporting medians and the ratio mailgate/direct.
//!
//! Run: `cargo bench --bench gateway` (root: it starts Dovecot and Postfix like the tests do).
//! `MAILGATE_BENCH_ROUNDS` (default 5) sets the number of interleaved rounds; `MAILGATE_BENCH_QUICK=1`
//! shrinks every workload tenfold for a smoke run; `MAILGATE_BENCH_ONLY=imap|smtp` runs one part;
//! `MAILGATE_BENCH_LOG` sets mailgate's RUST_LOG (default `info`, as in production);
//! `MAILGATE_BENCH_STEPS` (comma-separated step names, e.g. `append,nagle-append`) runs only those. The numbers reported in the README come
//! from a full run on the project's 2-core machine; the client, mailgate and the servers share
//! those two cores, so the ratios (not the absolute numbers) are what carries over.
//!
//! The NOOP and SMTP steps also run through [`minimal_relay`] (this binary started again with
//! `--minimal-relay`), printed beside mailgate's figures as the floor any relay pays here.
//!
//! Every loop is bounded by a count; every socket has a read time-out; all traffic is on
//! 127.0.0.1; the servers and relays started here are stopped by PID when the benchmark ends.

#[path = "../tests/support/mod.rs"]
mod support;

use mailgate::imap::framer::{Frame, Framer};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use support::dovecot::{Dovecot, DovecotOpts};
use support::mailgate::{cached_hash, toml_str, Mailgate};
use support::postfix::{Postfix, DOMAIN as PF_DOMAIN};
use support::Pki;

const LOCAL_PW: &str = "bench-local-password";
/// How often each side fetches the 50 MiB message per round (see the big-fetch step).
const BIG_FETCHES: usize = 3;
const UPSTREAM_PW: &str = "bench-upstream-password";
const DOMAIN: &str = "example.no";

/// Workload sizes (divided by 10 in quick mode).
struct Sizes {
    rounds: usize,
    logins: usize,
    first_logins: usize,
    noops: usize,
    bulk_messages: usize,
    appends: usize,
    nagle_appends: usize,
    held_sessions: usize,
    smtp_messages: usize,
}

fn sizes() -> Sizes {
    let quick = std::env::var("MAILGATE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let rounds = std::env::var("MAILGATE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5usize)
        .clamp(1, 50);
    let d = if quick { 10 } else { 1 };
    Sizes {
        rounds,
        logins: 200 / d,
        first_logins: 10,
        noops: 2000 / d,
        bulk_messages: 10_000 / d,
        appends: 1000 / d,
        nagle_appends: 100 / d,
        held_sessions: 1000 / d,
        smtp_messages: 1000 / d,
    }
}

// ------------------------------------------------------------------------------------------
// A small, fast IMAP client: mailgate's own framer finds the tagged completion, so the client
// costs the same whichever server it talks to and never parses literal bytes.

/// A byte stream: plain TCP, or TLS for the direct connection to Dovecot's implicit-TLS port.
trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// Connects with TCP_NODELAY and a read time-out; with TLS verified against `tls` when given.
fn open(addr: SocketAddr, tls: Option<&std::sync::Arc<rustls::ClientConfig>>) -> Box<dyn Stream> {
    open_with(addr, tls, true)
}

/// [`open`], with Nagle's algorithm left on when `nodelay` is false (as python's imaplib does).
fn open_with(
    addr: SocketAddr,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
    nodelay: bool,
) -> Box<dyn Stream> {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_nodelay(nodelay).expect("nodelay");
    tcp.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    match tls {
        None => Box::new(tcp),
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
            let conn = rustls::ClientConnection::new(config.clone(), name).expect("tls");
            Box::new(rustls::StreamOwned::new(conn, tcp))
        }
    }
}

struct Client {
    s: Box<dyn Stream>,
    buf: Vec<u8>,
    framer: Framer,
    /// Bytes read but not yet framed.
    pending: Vec<u8>,
}

impl Client {
    /// Connects in plaintext, or with TLS verified against `tls` (the test CA).
    fn connect(addr: SocketAddr, tls: Option<&std::sync::Arc<rustls::ClientConfig>>) -> Client {
        Client::connect_with(addr, tls, true)
    }

    /// [`Client::connect`], with Nagle's algorithm on when `nodelay` is false.
    fn connect_with(
        addr: SocketAddr,
        tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
        nodelay: bool,
    ) -> Client {
        let s = open_with(addr, tls, nodelay);
        let mut c = Client {
            s,
            buf: vec![0; 256 * 1024],
            framer: Framer::new(64 * 1024),
            pending: Vec::new(),
        };
        c.read_until(|line| line.starts_with(b"* OK") || line.starts_with(b"* PREAUTH"));
        c
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write");
    }

    /// Reads until a complete line satisfies `done`; returns the bytes read (all of them).
    fn read_until(&mut self, mut done: impl FnMut(&[u8]) -> bool) -> u64 {
        let mut total = 0u64;
        for _ in 0..10_000_000 {
            let mut input = std::mem::take(&mut self.pending);
            if input.is_empty() {
                let n = match self.s.read(&mut self.buf) {
                    Ok(0) => panic!("server closed the connection"),
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => panic!("read: {e}"),
                };
                input.extend_from_slice(&self.buf[..n]);
            }
            total += input.len() as u64;
            let mut pos = 0;
            while let Some((n, frame)) = self.framer.next(&input[pos..]) {
                pos += n;
                if let Frame::Line {
                    bytes,
                    literal: None,
                } = frame
                {
                    if done(bytes) {
                        self.pending = input[pos..].to_vec();
                        total -= self.pending.len() as u64;
                        return total;
                    }
                }
            }
        }
        panic!("no end of response");
    }

    /// Sends `tag command` and waits for its tagged completion, which must be OK.
    fn ok(&mut self, tag: &str, command: &str) -> u64 {
        self.send(format!("{tag} {command}\r\n").as_bytes());
        let mut status = Vec::new();
        let n = self.read_until(|line| {
            if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                status = line.to_vec();
                true
            } else {
                false
            }
        });
        assert!(
            status[tag.len() + 1..].starts_with(b"OK"),
            "{tag} {command}: {}",
            String::from_utf8_lossy(&status)
        );
        n
    }

    fn login(&mut self, user: &str) {
        let pw = if user.contains('@') {
            LOCAL_PW
        } else {
            UPSTREAM_PW
        };
        self.ok("L", &format!("LOGIN \"{user}\" \"{pw}\""));
    }

    fn logout(mut self) {
        self.send(b"Z LOGOUT\r\n");
        let mut rest = [0u8; 4096];
        for _ in 0..100 {
            match self.s.read(&mut rest) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    /// APPEND with a synchronizing literal; the literal and the CRLF that ends the command
    /// go in two writes, as python's imaplib sends them.
    fn append(&mut self, tag: &str, mailbox: &str, message: &[u8]) {
        self.send(format!("{tag} APPEND {mailbox} {{{}}}\r\n", message.len()).as_bytes());
        self.read_until(|line| line.starts_with(b"+"));
        self.send(message);
        self.send(b"\r\n");
        let mut ok = false;
        self.read_until(|line| {
            if line.starts_with(tag.as_bytes()) {
                ok = line[tag.len()..].starts_with(b" OK");
                true
            } else {
                false
            }
        });
        assert!(ok, "APPEND failed");
    }
}

// ------------------------------------------------------------------------------------------
// Statistics.

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let i = ((samples.len() - 1) as f64 * p).round() as usize;
    samples[i]
}

fn median(mut v: Vec<f64>) -> f64 {
    percentile(&mut v, 0.5)
}

/// One row of the report.
struct Row {
    name: String,
    unit: &'static str,
    direct: f64,
    gate: f64,
    /// How the row is judged, e.g. "ratio >= 0.90" or "diff <= 1.0".
    target: Target,
}

enum Target {
    RatioAtLeast(f64),
    DiffAtMost(f64),
    ValueAtMost(f64),
    None,
}

impl Row {
    fn verdict(&self) -> (String, String) {
        let ratio = self.gate / self.direct;
        match self.target {
            Target::RatioAtLeast(t) => (format!("≥ {t:.2}×"), pass(ratio >= t)),
            Target::DiffAtMost(t) => (
                format!("≤ direct + {t}"),
                pass(self.gate - self.direct <= t),
            ),
            Target::ValueAtMost(t) => (format!("≤ {t}"), pass(self.gate <= t)),
            Target::None => (String::new(), String::new()),
        }
    }
}

fn pass(ok: bool) -> String {
    if ok { "yes" } else { "NO" }.to_string()
}

// ------------------------------------------------------------------------------------------
// The setup.

struct Setup {
    /// mailgate's config, to start fresh instances for the memory measurements.
    config: String,
    _pki: Pki,
    postfix: Postfix,
    /// TLS client configuration trusting the test CA (for direct TLS sessions).
    tls: std::sync::Arc<rustls::ClientConfig>,
    /// The same for Postfix, whose certificate comes from its own test CA.
    smtp_tls: std::sync::Arc<rustls::ClientConfig>,
    _dovecot: Dovecot,
    mailgate: Mailgate,
    /// Direct address and the mailgate account for each upstream mode.
    modes: Vec<Mode>,
}

struct Mode {
    name: &'static str,
    direct: SocketAddr,
    tls: bool,
    /// Account prefix in mailgate: `{prefix}-{user}@example.no`.
    prefix: &'static str,
}

fn message(i: usize, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: bench@{DOMAIN}\r\nTo: ola@{DOMAIN}\r\nSubject: message {i}\r\nMessage-ID: <{i}@bench>\r\n\r\n"
    )
    .into_bytes();
    let line = b"The quick brown fox jumps over the lazy dog; 0123456789 abcdefghij.\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    while m.len() < size - 2 {
        m.push(b'x');
    }
    m.extend_from_slice(b"\r\n");
    m
}

/// Upstream users: `bench` (logins, NOOP, held sessions), `bulk` (10,000 × 10 KiB), `big`
/// (one 50 MiB message), `append` (APPEND target). Each exists in mailgate once per upstream
/// mode, plus `first-N` accounts for first logins.
fn setup(sz: &Sizes) -> Setup {
    let pki = Pki::new();
    let mut opts = DovecotOpts::tls(&pki.server);
    // Many sessions of one user from one address, a login process that serves many clients
    // (Dovecot's "high-performance" mode), and no fsync: the benchmark measures the gateway,
    // not Dovecot's process model or the disk.
    opts.extra = "mail_max_userip_connections = 5000\n\
                  mail_fsync = never\n\
                  auth_verbose = no\n\
                  auth_verbose_passwords = no\n\
                  default_client_limit = 10000\n\
                  service imap {\n  process_limit = 3000\n}\n\
                  service imap-login {\n  service_count = 0\n  client_limit = 5000\n  process_min_avail = 2\n}\n\
                  service anvil {\n  client_limit = 10000\n}\n\
                  service auth {\n  client_limit = 10000\n}\n"
        .to_string();
    let dovecot = Dovecot::start(opts);
    for user in ["bench", "bulk", "big", "append"] {
        dovecot.add_user(user, UPSTREAM_PW);
    }
    eprintln!(
        "filling mailboxes ({} × 10 KiB, 1 × 50 MiB)…",
        sz.bulk_messages
    );
    let bulk: Vec<Vec<u8>> = (0..sz.bulk_messages)
        .map(|i| message(i, 10 * 1024))
        .collect();
    dovecot.fill_maildir("bulk", &bulk);
    drop(bulk);
    dovecot.fill_maildir("big", &[message(0, 50 * 1024 * 1024)]);

    let imaps = dovecot.imaps_addr().expect("imaps port");
    let modes = vec![
        Mode {
            name: "plain upstream",
            direct: dovecot.imap_addr(),
            tls: false,
            prefix: "p",
        },
        Mode {
            name: "TLS upstream",
            direct: imaps,
            tls: true,
            prefix: "t",
        },
    ];
    let postfix = Postfix::start(&["bench", "rcpt"], UPSTREAM_PW);
    let hash = cached_hash(LOCAL_PW);
    let mut c = String::new();
    let _ = writeln!(
        c,
        "[server]\nimap_listen = \"127.0.0.1:0\"\nsmtp_listen = \"127.0.0.1:0\"\nmax_sessions = 5000\nauth_failure_delay_ms = 0\n"
    );
    let mut users: Vec<String> = ["bench", "bulk", "big", "append"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    users.extend((0..sz.first_logins * sz.rounds * 2).map(|i| format!("first{i}")));
    for m in &modes {
        for user in &users {
            let upstream_user = if user.starts_with("first") {
                "bench"
            } else {
                user
            };
            let _ = writeln!(
                c,
                "[[account]]\nemail = \"{}-{user}@{DOMAIN}\"\nlocal_password_hash = {}\n[account.imap]",
                m.prefix,
                toml_str(&hash)
            );
            if m.tls {
                let _ = writeln!(
                    c,
                    "server = \"127.0.0.1:{}\"\ntls = \"implicit\"\ntls_server_name = \"localhost\"\nca_file = {}",
                    m.direct.port(),
                    toml_str(&pki.ca.display().to_string())
                );
            } else {
                let _ = writeln!(
                    c,
                    "server = \"127.0.0.1:{}\"\ntls = \"none\"\nallow_plaintext = true",
                    m.direct.port()
                );
            }
            let _ = writeln!(
                c,
                "username = \"{upstream_user}\"\npassword = {}\n",
                toml_str(UPSTREAM_PW)
            );
        }
        // The SMTP account: sends as bench@PF_DOMAIN (an alias) through Postfix's plain or
        // implicit-TLS smtpd.
        let _ = writeln!(
            c,
            "[[account]]\nemail = \"{p}-smtp@{PF_DOMAIN}\"\nlocal_password_hash = {h}\naliases = [\"bench@{PF_DOMAIN}\"]\n\
             [account.imap]\nserver = \"127.0.0.1:{imap}\"\ntls = \"none\"\nallow_plaintext = true\npassword = \"unused\"\n\
             [account.smtp]\nusername = \"bench@{PF_DOMAIN}\"\npassword = {pw}",
            p = m.prefix,
            h = toml_str(&hash),
            imap = dovecot.imap_addr().port(),
            pw = toml_str(UPSTREAM_PW),
        );
        if m.tls {
            let _ = writeln!(
                c,
                "server = \"127.0.0.1:{}\"\ntls = \"implicit\"\ntls_server_name = \"localhost\"\nca_file = {}\n",
                postfix.implicit_port,
                toml_str(&postfix.ca_file.display().to_string())
            );
        } else {
            let _ = writeln!(
                c,
                "server = \"127.0.0.1:{}\"\ntls = \"none\"\nallow_plaintext = true\n",
                postfix.plain_port
            );
        }
    }
    let mailgate = start_gate(&c);
    let config = c;
    mailgate::net::tls::install_crypto_provider();
    let tls = mailgate::net::tls::client_config(Some(&pki.ca)).expect("test CA");
    let smtp_tls = mailgate::net::tls::client_config(Some(&postfix.ca_file)).expect("Postfix CA");
    Setup {
        config,
        tls,
        smtp_tls,
        _pki: pki,
        postfix,
        _dovecot: dovecot,
        mailgate,
        modes,
    }
}

/// Starts mailgate on `config` with the benchmark's log level.
fn start_gate(config: &str) -> Mailgate {
    let level = std::env::var("MAILGATE_BENCH_LOG").unwrap_or_else(|_| "info".to_string());
    // Logging as in production (the test harness writes every line at once instead).
    let flush = mailgate::logbuf::DEFAULT_DELAY.as_millis().to_string();
    Mailgate::start_with_env(
        config,
        &[("RUST_LOG", &level), ("MAILGATE_LOG_FLUSH_MS", &flush)],
    )
}

/// Which parts run (`MAILGATE_BENCH_ONLY`).
fn part(name: &str) -> bool {
    std::env::var("MAILGATE_BENCH_ONLY").map_or(true, |only| only == name)
}

/// [`session`] for a client that leaves Nagle's algorithm on.
fn nagle_session(s: &Setup, m: &Mode, direct: bool, user: &str) -> Client {
    let (addr, tls, login) = if direct {
        (m.direct, m.tls.then_some(&s.tls), user.to_string())
    } else {
        (
            s.mailgate.imap_addr,
            None,
            format!("{}-{user}@{DOMAIN}", m.prefix),
        )
    };
    let mut c = Client::connect_with(addr, tls, false);
    c.login(&login);
    c
}

/// Connects to either side and logs in: `direct` as the upstream user to Dovecot (with TLS
/// in the TLS mode, as a mail client would), else in plaintext to mailgate as the account
/// (mailgate then speaks TLS upstream): the two ways a user can run.
fn session(s: &Setup, m: &Mode, direct: bool, user: &str) -> Client {
    if direct {
        let mut c = Client::connect(m.direct, m.tls.then_some(&s.tls));
        c.login(user);
        c
    } else {
        gate_session(s.mailgate.imap_addr, m, user)
    }
}

/// A session through the mailgate listening on `addr`, logged in as `user`'s account.
fn gate_session(addr: SocketAddr, m: &Mode, user: &str) -> Client {
    let mut c = Client::connect(addr, None);
    c.login(&format!("{}-{user}@{DOMAIN}", m.prefix));
    c
}

// ------------------------------------------------------------------------------------------
// Measurements. Each returns (direct, mailgate) for one round; rounds alternate which side
// goes first so neither always runs on a warmer cache.

fn measure_pair<T>(
    round: usize,
    cpu: &mut CpuLog,
    step: &str,
    ops: usize,
    mut f: impl FnMut(bool) -> T,
) -> Option<(T, T)> {
    if !step_enabled(step) {
        return None;
    }
    let mut gate = |f: &mut dyn FnMut(bool) -> T| {
        let before = CpuSample::read(cpu.pid);
        let g = f(false);
        cpu.add(step, CpuSample::read(cpu.pid).since(&before), ops);
        g
    };
    Some(if round % 2 == 0 {
        let d = f(true);
        (d, gate(&mut f))
    } else {
        let g = gate(&mut f);
        (f(true), g)
    })
}

/// Which steps run (`MAILGATE_BENCH_STEPS`, comma-separated; all when unset): for profiling
/// one workload without the others.
fn step_enabled(name: &str) -> bool {
    std::env::var("MAILGATE_BENCH_STEPS")
        .map_or(true, |steps| steps.split(',').any(|s| s.trim() == name))
}

/// mailgate's own CPU time (user + system, all threads) per step: a figure that does not
/// depend on what else the machine is doing, unlike the wall-clock ratios.
struct CpuLog {
    pid: u32,
    /// Step name, CPU milliseconds, operations.
    steps: Vec<(String, f64, usize)>,
}

impl CpuLog {
    fn add(&mut self, step: &str, ms: f64, ops: usize) {
        match self.steps.iter_mut().find(|s| s.0 == step) {
            Some(s) => {
                s.1 += ms;
                s.2 += ops;
            }
            None => self.steps.push((step.to_string(), ms, ops)),
        }
    }

    /// One note line: microseconds of mailgate CPU per operation for each step (none when no
    /// step ran).
    fn note(&self, mode: &str) -> Option<String> {
        let parts: Vec<String> = self
            .steps
            .iter()
            .map(|(name, ms, ops)| format!("{name} {:.0} µs", ms * 1000.0 / (*ops).max(1) as f64))
            .collect();
        if parts.is_empty() {
            return None;
        }
        Some(format!(
            "{mode}: mailgate CPU per operation: {}",
            parts.join(", ")
        ))
    }
}

/// One reading of a process's CPU counters, taken before and after a step.
struct CpuSample {
    /// Threads alive at the reading.
    tids: Vec<u32>,
    /// Their CPU time from the scheduler's nanosecond counters (`/proc/PID/task/*/schedstat`).
    live_ns: u64,
    /// The whole process's user + system time in clock ticks (`/proc/PID/stat`), which also
    /// counts threads that have ended.
    ticks: u64,
}

impl CpuSample {
    fn read(pid: u32) -> CpuSample {
        let mut tids = Vec::new();
        let mut live_ns = 0u64;
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for t in tasks.flatten() {
                let Some(tid) = t.file_name().to_str().and_then(|n| n.parse().ok()) else {
                    continue;
                };
                let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
                live_ns += stat
                    .split(' ')
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                tids.push(tid);
            }
        }
        let ticks = stat_ticks(std::path::Path::new(&format!("/proc/{pid}/stat")));
        CpuSample {
            tids,
            live_ns,
            ticks,
        }
    }

    /// CPU milliseconds used since `before`. The nanosecond counters are exact but only cover
    /// live threads, so they are used when every thread of `before` is still there; when one
    /// ended in between (tokio's blocking-pool threads, which run the argon2 of first logins,
    /// end after 10 s idle) its time would be lost, and the process total in 10 ms ticks is
    /// used instead: coarse, but complete.
    fn since(&self, before: &CpuSample) -> f64 {
        if before.tids.iter().all(|t| self.tids.contains(t)) {
            self.live_ns.saturating_sub(before.live_ns) as f64 / 1e6
        } else {
            // USER_HZ is 100 on the Linux builds this runs on (sysconf(_SC_CLK_TCK)).
            self.ticks.saturating_sub(before.ticks) as f64 * 10.0
        }
    }
}

/// utime + stime in clock ticks from a `/proc/.../stat` file (fields 14 and 15; counted after
/// the parenthesised command name, which may itself hold spaces).
fn stat_ticks(path: &std::path::Path) -> u64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn rss_kib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == MINIMAL_RELAY_ARG) {
        let target = args
            .get(i + 1)
            .and_then(|a| a.parse().ok())
            .expect("target address");
        minimal_relay::serve(target);
        return;
    }
    let sz = sizes();
    let s = setup(&sz);
    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    // One minimal relay per upstream port, started when the NOOP step first needs it.
    let mut relays = std::collections::BTreeMap::new();
    for m in s.modes.iter().filter(|_| part("imap")) {
        eprintln!("== {} ==", m.name);
        let mut login_d = Vec::new();
        let mut login_g = Vec::new();
        let mut first_d = Vec::new();
        let mut first_g = Vec::new();
        let mut noop_d = Vec::new();
        let mut noop_g = Vec::new();
        let mut noop_r = Vec::new();
        let (mut bulk_d, mut bulk_g) = (Vec::new(), Vec::new());
        let (mut big_d, mut big_g) = (Vec::new(), Vec::new());
        let (mut app_d, mut app_g) = (Vec::new(), Vec::new());
        let (mut nagle_d, mut nagle_g) = (Vec::new(), Vec::new());
        let mut first_index = if m.tls {
            sz.first_logins * sz.rounds
        } else {
            0
        };
        let payload = message(0, 10 * 1024);
        let mut bulk_bytes = 0u64;
        let mut cpu = CpuLog {
            pid: s.mailgate.pid(),
            steps: Vec::new(),
        };

        for round in 0..sz.rounds {
            eprintln!("round {}/{}", round + 1, sz.rounds);
            // Repeat logins of one account.
            if let Some((d, g)) = measure_pair(round, &mut cpu, "login", sz.logins, |direct| {
                let mut v = Vec::with_capacity(sz.logins);
                for _ in 0..sz.logins {
                    let t = Instant::now();
                    let c = session(&s, m, direct, "bench");
                    c.logout();
                    v.push(ms(t.elapsed()));
                }
                v
            }) {
                login_d.extend(d);
                login_g.extend(g);
            }

            // First logins of accounts never seen (argon2 once each).
            if let Some((d, g)) =
                measure_pair(round, &mut cpu, "first-login", sz.first_logins, |direct| {
                    let mut v = Vec::new();
                    for i in 0..sz.first_logins {
                        let user = if direct {
                            "bench".to_string()
                        } else {
                            format!("first{}", first_index + i)
                        };
                        let t = Instant::now();
                        let c = session(&s, m, direct, &user);
                        c.logout();
                        v.push(ms(t.elapsed()));
                    }
                    v
                })
            {
                first_d.extend(d);
                first_g.extend(g);
            }
            first_index += sz.first_logins;

            // NOOP round trips in one session.
            if let Some((d, g)) = measure_pair(round, &mut cpu, "noop", sz.noops, |direct| {
                let mut c = session(&s, m, direct, "bench");
                let mut v = Vec::with_capacity(sz.noops);
                for i in 0..sz.noops {
                    let t = Instant::now();
                    c.ok(&format!("n{i}"), "NOOP");
                    v.push(ms(t.elapsed()));
                }
                c.logout();
                v
            }) {
                noop_d.extend(d);
                noop_g.extend(g);
                // The same NOOPs through the minimal relay, for reference (see below).
                let relay = relays
                    .entry(m.prefix)
                    .or_insert_with(|| minimal_relay::Relay::start(m.direct));
                let mut c = Client::connect(relay.addr, m.tls.then_some(&s.tls));
                c.login("bench");
                for i in 0..sz.noops {
                    let t = Instant::now();
                    c.ok(&format!("n{i}"), "NOOP");
                    noop_r.push(ms(t.elapsed()));
                }
                c.logout();
            }

            // Bulk FETCH of the whole 10 KiB mailbox, and the one 50 MiB message.
            if let Some((d, g)) =
                measure_pair(round, &mut cpu, "bulk-fetch", sz.bulk_messages, |direct| {
                    let mut c = session(&s, m, direct, "bulk");
                    c.ok("s", "EXAMINE INBOX");
                    let t = Instant::now();
                    let n = c.ok("f", "UID FETCH 1:* (BODY.PEEK[])");
                    let secs = t.elapsed().as_secs_f64();
                    c.logout();
                    (n, secs)
                })
            {
                bulk_bytes = d.0;
                assert!(
                    d.0.abs_diff(g.0) < 1024,
                    "FETCH sizes differ: {} vs {}",
                    d.0,
                    g.0
                );
                bulk_d.push(d.0 as f64 / d.1 / 1e6);
                bulk_g.push(g.0 as f64 / g.1 / 1e6);
            }

            // Three fetches of the one message per side and round: one takes ~35 ms here, too
            // short a time for a steady rate (single fetches gave 0.84–1.07× in one hour).
            if let Some((d, g)) =
                measure_pair(round, &mut cpu, "big-fetch", BIG_FETCHES, |direct| {
                    let mut c = session(&s, m, direct, "big");
                    c.ok("s", "EXAMINE INBOX");
                    let t = Instant::now();
                    let mut n = 0;
                    for i in 0..BIG_FETCHES {
                        n += c.ok(&format!("f{i}"), "UID FETCH 1 (BODY.PEEK[])");
                    }
                    let secs = t.elapsed().as_secs_f64();
                    c.logout();
                    (n, secs)
                })
            {
                big_d.push(d.0 as f64 / d.1 / 1e6);
                big_g.push(g.0 as f64 / g.1 / 1e6);
            }

            // APPEND of 10 KiB messages, synchronizing literals (what most clients send). Each
            // session appends into a mailbox of its own, created empty and deleted afterwards
            // (both untimed): Dovecot's cost per APPEND grows with the mailbox (it rewrites
            // dovecot-uidlist, O(messages), every few appends), so a shared INBOX made whichever
            // side went second in a round pay for the other's 1000 messages, and with an odd
            // number of rounds the medians came from rounds where mailgate went second.
            if let Some((d, g)) = measure_pair(round, &mut cpu, "append", sz.appends, |direct| {
                let mut c = session(&s, m, direct, "append");
                let mailbox = format!("append-{round}-{}", if direct { "d" } else { "g" });
                c.ok("c", &format!("CREATE {mailbox}"));
                let t = Instant::now();
                for i in 0..sz.appends {
                    c.append(&format!("a{i}"), &mailbox, &payload);
                }
                let secs = t.elapsed().as_secs_f64();
                c.ok("d", &format!("DELETE {mailbox}"));
                c.logout();
                sz.appends as f64 / secs
            }) {
                app_d.push(d);
                app_g.push(g);
            }

            // The same APPEND from a client that leaves Nagle's algorithm on (python's imaplib,
            // many others): its kernel holds the CRLF after the literal until the literal is
            // ACKed, so a receiver that delays its ACK (40 ms on Linux) delays the command.
            if let Some((d, g)) = measure_pair(
                round,
                &mut cpu,
                "nagle-append",
                sz.nagle_appends,
                |direct| {
                    let mut c = nagle_session(&s, m, direct, "append");
                    let mailbox = format!("nagle-{round}-{}", if direct { "d" } else { "g" });
                    c.ok("c", &format!("CREATE {mailbox}"));
                    let mut v = Vec::with_capacity(sz.nagle_appends);
                    for i in 0..sz.nagle_appends {
                        let t = Instant::now();
                        c.append(&format!("a{i}"), &mailbox, &payload);
                        v.push(ms(t.elapsed()));
                    }
                    c.ok("d", &format!("DELETE {mailbox}"));
                    c.logout();
                    v
                },
            ) {
                nagle_d.extend(d);
                nagle_g.extend(g);
            }
        }

        let label = |what: &str| format!("{what} ({})", m.name);
        let p = |v: &mut Vec<f64>, q: f64| percentile(v, q);
        rows.push(Row {
            name: label("repeat login p50"),
            unit: "ms",
            direct: p(&mut login_d, 0.5),
            gate: p(&mut login_g, 0.5),
            target: Target::DiffAtMost(1.0),
        });
        rows.push(Row {
            name: label("repeat login p99"),
            unit: "ms",
            direct: p(&mut login_d, 0.99),
            gate: p(&mut login_g, 0.99),
            target: Target::None,
        });
        rows.push(Row {
            name: label("first login p50"),
            unit: "ms",
            direct: p(&mut first_d, 0.5),
            gate: p(&mut first_g, 0.5),
            target: Target::None,
        });
        rows.push(Row {
            name: label("NOOP p50"),
            unit: "ms",
            direct: p(&mut noop_d, 0.5),
            gate: p(&mut noop_g, 0.5),
            target: Target::DiffAtMost(0.03),
        });
        if !noop_r.is_empty() {
            let (d, r, g) = (
                p(&mut noop_d, 0.5),
                p(&mut noop_r, 0.5),
                p(&mut noop_g, 0.5),
            );
            notes.push(format!(
                "{}: NOOP p50 direct {d:.3} ms, through a minimal relay {r:.3} ms ({:+.3}), \
                 through mailgate {g:.3} ms ({:+.3}); the minimal relay is a floor for any relay \
                 here: blocking reads and writes, a thread per direction, no parsing, no TLS of \
                 its own (the client's TLS passes through it)",
                m.name,
                r - d,
                g - d
            ));
        }
        rows.push(Row {
            name: label("NOOP p99"),
            unit: "ms",
            direct: p(&mut noop_d, 0.99),
            gate: p(&mut noop_g, 0.99),
            target: Target::DiffAtMost(0.1),
        });
        rows.push(Row {
            name: label(&format!(
                "bulk FETCH {} × 10 KiB ({:.0} MB)",
                sz.bulk_messages,
                bulk_bytes as f64 / 1e6
            )),
            unit: "MB/s",
            direct: median(bulk_d),
            gate: median(bulk_g),
            target: Target::RatioAtLeast(0.90),
        });
        rows.push(Row {
            name: label("FETCH one 50 MiB message"),
            unit: "MB/s",
            direct: median(big_d),
            gate: median(big_g),
            target: Target::RatioAtLeast(0.90),
        });
        rows.push(Row {
            name: label(&format!("APPEND {} × 10 KiB", sz.appends)),
            unit: "msg/s",
            direct: median(app_d),
            gate: median(app_g),
            target: Target::RatioAtLeast(0.90),
        });
        rows.push(Row {
            name: label("APPEND 10 KiB p50, client with Nagle on"),
            unit: "ms",
            direct: p(&mut nagle_d, 0.5),
            gate: p(&mut nagle_g, 0.5),
            target: Target::DiffAtMost(2.0),
        });

        notes.extend(cpu.note(m.name));

        if step_enabled("held") {
            // Held sessions and memory, each in a fresh mailgate so that memory freed by earlier
            // work (which the allocator keeps for reuse) neither hides nor inflates the figures.
            eprintln!("holding {} sessions…", sz.held_sessions);
            let fresh = start_gate(&s.config);
            let pid = fresh.pid();
            // One login first: the login cache entry and argon2's one-time cost are not per session.
            gate_session(fresh.imap_addr, m, "bench").logout();
            std::thread::sleep(Duration::from_millis(200));
            let idle = rss_kib(pid);
            let mut held = Vec::with_capacity(sz.held_sessions);
            for _ in 0..sz.held_sessions {
                held.push(gate_session(fresh.imap_addr, m, "bench"));
            }
            std::thread::sleep(Duration::from_millis(500));
            let holding = rss_kib(pid);
            let mut answered = 0;
            for (i, c) in held.iter_mut().enumerate() {
                c.ok(&format!("h{i}"), "NOOP");
                answered += 1;
            }
            for c in held {
                c.logout();
            }
            let per_session = (holding - idle) / sz.held_sessions as f64;
            notes.push(format!(
            "{}: a fresh mailgate's RSS after one login {:.0} KiB, holding {} sessions {:.0} KiB, {:.1} KiB per session; {answered}/{} answered NOOP afterwards",
            m.name, idle, sz.held_sessions, holding, per_session, sz.held_sessions
        ));
            rows.push(Row {
                name: label("RSS per held idle session"),
                unit: "KiB",
                direct: f64::NAN,
                gate: per_session,
                target: Target::ValueAtMost(if m.tls { 48.0 } else { 8.0 }),
            });
        }

        if step_enabled("rss") {
            // RSS while relaying the 50 MiB message: sampled from another thread.
            let fresh = start_gate(&s.config);
            let pid = fresh.pid();
            let mut c = gate_session(fresh.imap_addr, m, "big");
            c.ok("s", "EXAMINE INBOX");
            std::thread::sleep(Duration::from_millis(200));
            let before = rss_kib(pid);
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let sampler = {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut peak: f64 = 0.0;
                    for _ in 0..600_000 {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            break;
                        }
                        peak = peak.max(rss_kib(pid));
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    peak
                })
            };
            c.ok("f", "UID FETCH 1 (BODY.PEEK[])");
            c.logout();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let peak = sampler.join().unwrap_or(f64::NAN);
            rows.push(Row {
                name: label("RSS growth while relaying 50 MiB"),
                unit: "KiB",
                direct: f64::NAN,
                gate: peak - before,
                target: Target::ValueAtMost(2048.0),
            });
        }
    }

    if part("smtp") && step_enabled("smtp") {
        smtp(&s, &sz, &mut rows, &mut notes);
    }

    // The report.
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| measurement | unit | direct | mailgate | ratio | target | met |\n|---|---|---|---|---|---|---|"
    );
    for r in rows
        .iter()
        .filter(|r| !(r.direct.is_nan() && r.gate.is_nan()))
    {
        let (target, met) = r.verdict();
        let ratio = if r.direct.is_nan() {
            String::new()
        } else {
            format!("{:.3}", r.gate / r.direct)
        };
        let fmt = |v: f64| {
            if v.is_nan() {
                "–".to_string()
            } else if v >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.3}")
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.unit,
            fmt(r.direct),
            fmt(r.gate),
            ratio,
            target,
            met
        );
    }
    for n in &notes {
        let _ = writeln!(out, "\n{n}");
    }
    let _ = writeln!(
        out,
        "\n{} interleaved rounds; medians over rounds for rates, percentiles over all samples for latencies.",
        sz.rounds
    );
    println!("{out}");
}

// ------------------------------------------------------------------------------------------
// SMTP: 4 connections × (messages / 4), each message 10 KiB, directly to Postfix's
// submission port and through mailgate; every message verified delivered.

/// Where one side of the SMTP step sends, and as whom.
#[derive(Clone)]
struct SmtpSide {
    addr: SocketAddr,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    user: String,
    password: &'static str,
}

/// Sends `per_conn` messages on each of `conns` connections to `side` at once; returns the
/// rate (messages/s) and each message's latency (ms). Then waits, untimed, until Postfix has
/// delivered what was queued, so that the next side is not measured while competing with
/// the delivery of these messages (whichever went second paid for it before).
fn smtp_send(
    s: &Setup,
    side: &SmtpSide,
    conns: usize,
    per_conn: usize,
    body: &[u8],
) -> (f64, Vec<f64>) {
    let t = Instant::now();
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let (addr, tls, user, pw) = (
                side.addr,
                side.tls.clone(),
                side.user.clone(),
                side.password,
            );
            let body = body.to_vec();
            std::thread::spawn(move || {
                let mut c = SmtpClient::connect(addr, tls.as_ref());
                c.auth(&user, pw);
                let mut lat = Vec::with_capacity(per_conn);
                for _ in 0..per_conn {
                    let t = Instant::now();
                    c.send_message(
                        &format!("bench@{PF_DOMAIN}"),
                        &format!("rcpt@{PF_DOMAIN}"),
                        &body,
                    );
                    lat.push(ms(t.elapsed()));
                }
                c.quit();
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for th in threads {
        lat.extend(th.join().expect("smtp client thread"));
    }
    let secs = t.elapsed().as_secs_f64();
    let drained = Instant::now();
    while !s.postfix.queue_empty() && drained.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    (lat.len() as f64 / secs, lat)
}

fn smtp(s: &Setup, sz: &Sizes, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let body = message(0, 10 * 1024);
    let conns = 4;
    // One minimal relay per Postfix port, for reference (see [`minimal_relay`]).
    let mut relays = std::collections::BTreeMap::new();
    let per_conn = (sz.smtp_messages / conns).max(1);
    let mut expected = 0usize;
    for m in &s.modes {
        eprintln!("== SMTP, {} ==", m.name);
        let mut cpu = CpuLog {
            pid: s.mailgate.pid(),
            steps: Vec::new(),
        };
        // Warm-up: the account's first AUTH pays argon2 once (the first-login rows above show
        // that cost); the rounds measure sending, not four simultaneous first logins.
        let mut warm = SmtpClient::connect(s.mailgate.smtp_addr, None);
        warm.auth(&format!("{}-smtp@{PF_DOMAIN}", m.prefix), LOCAL_PW);
        warm.quit();
        let direct_addr = SocketAddr::from((
            [127, 0, 0, 1],
            if m.tls {
                s.postfix.implicit_port
            } else {
                s.postfix.plain_port
            },
        ));
        // The direct client's settings, sent to `addr` (Postfix itself or the minimal relay).
        let direct_side = |addr| SmtpSide {
            addr,
            tls: m.tls.then(|| s.smtp_tls.clone()),
            user: format!("bench@{PF_DOMAIN}"),
            password: UPSTREAM_PW,
        };
        let gate_side = SmtpSide {
            addr: s.mailgate.smtp_addr,
            tls: None,
            user: format!("{}-smtp@{PF_DOMAIN}", m.prefix),
            password: LOCAL_PW,
        };
        let relay = relays
            .entry(direct_addr)
            .or_insert_with(|| minimal_relay::Relay::start(direct_addr));
        let relay_side = direct_side(relay.addr);
        let (mut rate_d, mut rate_g, mut rate_r) = (Vec::new(), Vec::new(), Vec::new());
        let (mut lat_d, mut lat_g) = (Vec::new(), Vec::new());
        if step_enabled("smtp") {
            // An untimed warm-up round of each side: Postfix's rates rise over the first rounds
            // (processes started on demand, caches), which made the first rounds' ratios
            // depend on which side happened to go first.
            for side in [&direct_side(direct_addr), &gate_side, &relay_side] {
                smtp_send(s, side, conns, per_conn, &body);
                expected += conns * per_conn;
            }
        }
        for round in 0..sz.rounds {
            let Some((d, g)) = measure_pair(round, &mut cpu, "smtp", conns * per_conn, |direct| {
                if direct {
                    smtp_send(s, &direct_side(direct_addr), conns, per_conn, &body)
                } else {
                    smtp_send(s, &gate_side, conns, per_conn, &body)
                }
            }) else {
                continue;
            };
            // The same work through the minimal relay to the direct port, for reference.
            let (rate_relay, _) = smtp_send(s, &relay_side, conns, per_conn, &body);
            rate_r.push(rate_relay);
            // Direct, mailgate and the minimal relay each sent this round's messages.
            expected += 3 * conns * per_conn;
            eprintln!(
                "round {}/{}: direct {:.0} msg/s, mailgate {:.0} msg/s ({} first), minimal relay {:.0} msg/s",
                round + 1,
                sz.rounds,
                d.0,
                g.0,
                if round % 2 == 0 { "direct" } else { "mailgate" },
                rate_relay
            );
            rate_d.push(d.0);
            rate_g.push(g.0);
            lat_d.extend(d.1);
            lat_g.extend(g.1);
        }
        notes.extend(cpu.note(m.name));
        if !rate_r.is_empty() {
            let (d, r, g) = (
                median(rate_d.clone()),
                median(rate_r),
                median(rate_g.clone()),
            );
            notes.push(format!(
                "{}: SMTP direct {d:.0} msg/s, through the minimal relay {r:.0} msg/s ({:.3}×), \
                 through mailgate {g:.0} msg/s ({:.3}×)",
                m.name,
                r / d,
                g / d
            ));
        }
        let label = |what: &str| format!("{what} ({})", m.name);
        rows.push(Row {
            name: label(&format!(
                "SMTP {} × 10 KiB over {conns} connections",
                conns * per_conn
            )),
            unit: "msg/s",
            direct: median(rate_d),
            gate: median(rate_g),
            target: Target::RatioAtLeast(0.90),
        });
        rows.push(Row {
            name: label("SMTP message p50"),
            unit: "ms",
            direct: percentile(&mut lat_d, 0.5),
            gate: percentile(&mut lat_g, 0.5),
            target: Target::None,
        });
    }
    // Every message the clients were told 250 for must arrive.
    let mut delivered = 0;
    for _ in 0..1200 {
        delivered = count_files(&s.postfix.dir.path().join("mail"));
        if delivered >= expected {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    notes.push(format!(
        "SMTP: {expected} messages accepted (250), {delivered} delivered into Postfix's maildirs"
    ));
    assert_eq!(
        delivered, expected,
        "not every accepted message was delivered"
    );
}

/// Files below `dir` (delivered messages), counted without reading them.
fn count_files(dir: &std::path::Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    for _ in 0..100_000 {
        let Some(d) = stack.pop() else { break };
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() && (d.ends_with("new") || d.ends_with("cur")) => n += 1,
                _ => {}
            }
        }
    }
    n
}

/// A minimal SMTP client for the benchmark: one command, one (possibly multi-line) reply.
struct SmtpClient {
    s: Box<dyn Stream>,
    r: Vec<u8>,
}

impl SmtpClient {
    fn connect(addr: SocketAddr, tls: Option<&std::sync::Arc<rustls::ClientConfig>>) -> SmtpClient {
        let s = open(addr, tls);
        let mut c = SmtpClient { s, r: Vec::new() };
        c.expect("220");
        c.cmd("EHLO bench.example", "250");
        c
    }

    /// Reads one reply; panics unless it starts with `code`.
    fn expect(&mut self, code: &str) {
        let mut buf = [0u8; 4096];
        for _ in 0..100_000 {
            // A complete reply: its last line has a space after the code.
            let mut start = 0;
            while let Some(i) = self.r[start..].iter().position(|&b| b == b'\n') {
                let line = &self.r[start..start + i + 1];
                if line.len() >= 4 && line[3] == b' ' {
                    let ok = line.starts_with(code.as_bytes());
                    let text = String::from_utf8_lossy(line).into_owned();
                    self.r.drain(..start + i + 1);
                    assert!(ok, "expected {code}, got {text}");
                    return;
                }
                start += i + 1;
            }
            match self.s.read(&mut buf) {
                Ok(0) => panic!("SMTP server closed the connection"),
                Ok(n) => self.r.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("SMTP read: {e}"),
            }
        }
        panic!("no SMTP reply");
    }

    fn cmd(&mut self, line: &str, code: &str) {
        self.s
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("smtp write");
        self.expect(code);
    }

    fn auth(&mut self, user: &str, password: &str) {
        use base64::Engine;
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
        self.cmd(&format!("AUTH PLAIN {token}"), "235");
    }

    fn send_message(&mut self, from: &str, to: &str, body: &[u8]) {
        self.cmd(&format!("MAIL FROM:<{from}>"), "250");
        self.cmd(&format!("RCPT TO:<{to}>"), "250");
        self.cmd("DATA", "354");
        // `message()` has no line starting with a dot, so no stuffing is needed.
        self.s.write_all(body).expect("smtp body");
        self.cmd(".", "250");
    }

    fn quit(mut self) {
        let _ = self.s.write_all(b"QUIT\r\n");
    }
}

/// The argument that makes this binary run as [`minimal_relay::serve`] instead of the benchmark.
const MINIMAL_RELAY_ARG: &str = "--minimal-relay";

/// The least a relay can do, as a reference for mailgate's NOOP figure: a separate process
/// (this binary again) that accepts on loopback, connects to the target and copies bytes with
/// blocking reads and writes, one thread per direction, TCP_NODELAY on both sockets. No
/// parsing, no event loop, no TLS of its own. What it adds to a round trip is the price of one
/// more process in the path on this machine (two more wake-ups and a receive and a send in each
/// direction), which mailgate cannot go below.
mod minimal_relay {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};

    /// A running relay process; stopped (by PID) when dropped.
    pub struct Relay {
        pub addr: SocketAddr,
        child: Child,
    }

    impl Relay {
        /// Starts the relay towards `target` and waits for its listening address.
        pub fn start(target: SocketAddr) -> Relay {
            let exe = std::env::current_exe().expect("own executable");
            let mut child = Command::new(exe)
                .args([super::MINIMAL_RELAY_ARG, &target.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start the minimal relay");
            let mut line = String::new();
            let stdout = child.stdout.take().expect("relay stdout");
            BufReader::new(stdout)
                .read_line(&mut line)
                .expect("relay address");
            let addr = line.trim().parse().expect("relay printed its address");
            Relay { addr, child }
        }
    }

    impl Drop for Relay {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// The relay process: prints its address, serves until its stdin closes (the benchmark
    /// ended) or 10,000 connections.
    pub fn serve(target: SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        println!("{}", listener.local_addr().expect("addr"));
        let _ = std::io::stdout().flush();
        std::thread::spawn(|| {
            let mut sink = [0u8; 64];
            // Returns at EOF: the parent is gone.
            while std::io::stdin().read(&mut sink).is_ok_and(|n| n > 0) {}
            std::process::exit(0);
        });
        for _ in 0..10_000 {
            let Ok((client, _)) = listener.accept() else {
                break;
            };
            let Ok(server) = TcpStream::connect(target) else {
                continue;
            };
            for s in [&client, &server] {
                let _ = s.set_nodelay(true);
            }
            let (c2, s2) = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            std::thread::spawn(move || copy(client, server));
            std::thread::spawn(move || copy(s2, c2));
        }
    }

    /// Copies until EOF or an error (at most 100 million reads), then passes the EOF on.
    fn copy(mut from: TcpStream, mut to: TcpStream) {
        let mut buf = vec![0u8; 64 * 1024];
        for _ in 0..100_000_000u64 {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    }
}
