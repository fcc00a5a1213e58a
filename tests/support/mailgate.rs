//! Runs the real `mailgate` binary: `mailgate run --config PATH` with a config written into a
//! temp dir, stderr collected line by line, and the listening addresses (IMAP, SMTP, metrics)
//! parsed from the log.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tempfile::TempDir;

use super::imap_client::ImapClient;
use super::proc::{free_port, poll, run_with_timeout, stop_child, PROCESS_TIMEOUT};

pub const BIN: &str = env!("CARGO_BIN_EXE_mailgate");

/// How long `Mailgate::start` waits for "imap listening on" and "smtp listening on".
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Start attempts of `Mailgate::start_with_metrics_env` (each with a new metrics port).
const METRICS_START_ATTEMPTS: usize = 5;

pub struct Mailgate {
    dir: TempDir,
    child: Child,
    pub imap_addr: SocketAddr,
    /// The SMTP submission listener, from the "smtp listening on" line.
    pub smtp_addr: SocketAddr,
    /// The `/metrics` listener, from the "metrics listening on" line (`None` without
    /// a `[metrics]` table).
    pub metrics_addr: Option<SocketAddr>,
    pub config_path: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    stopped: bool,
}

impl Mailgate {
    /// Starts `mailgate run` with this config; panics (with everything it logged) if it does
    /// not report `imap listening on ADDR` and `smtp listening on ADDR` in time.
    pub fn start(config_toml: &str) -> Mailgate {
        Mailgate::start_with_env(config_toml, &[])
    }

    pub fn start_with_env(config_toml: &str, env: &[(&str, &str)]) -> Mailgate {
        match Mailgate::try_start(config_toml, env, "text") {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    /// `log_format`: "text" or "json". `env` is applied last (it may override RUST_LOG).
    pub fn try_start(
        config_toml: &str,
        env: &[(&str, &str)],
        log_format: &str,
    ) -> Result<Mailgate, String> {
        let dir = tempfile::Builder::new()
            .prefix("mailgate-run-")
            .tempdir()
            .expect("mailgate tempdir");
        let config_path = dir.path().join("mailgate.toml");
        fs::write(&config_path, config_toml).expect("write config");
        Mailgate::launch(dir, config_path, env, log_format)
    }

    /// Starts `mailgate run` on a config file that already exists (e.g. one `mailgate setup`
    /// wrote), so relative paths in it keep their meaning.
    pub fn start_file(config_path: &Path, env: &[(&str, &str)]) -> Mailgate {
        let dir = tempfile::Builder::new()
            .prefix("mailgate-run-")
            .tempdir()
            .expect("mailgate tempdir");
        match Mailgate::launch(dir, config_path.to_path_buf(), env, "text") {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    fn launch(
        dir: tempfile::TempDir,
        config_path: PathBuf,
        env: &[(&str, &str)],
        log_format: &str,
    ) -> Result<Mailgate, String> {
        let config_toml = fs::read_to_string(&config_path).unwrap_or_default();
        let mut cmd = Command::new(BIN);
        cmd.arg("run")
            .arg("--config")
            .arg(&config_path)
            .arg("--log-format")
            .arg(log_format)
            .env("RUST_LOG", "info")
            // Each line written at once: tests read lines right after the action that logs
            // them. Gathering under load has its own test (and the benchmark runs mailgate's
            // default); a caller's `env` may set this.
            .env("MAILGATE_LOG_FLUSH_MS", "0")
            .env("NO_COLOR", "1")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| format!("spawn {BIN}: {e}"))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect_lines(child.stderr.take().expect("stderr"), lines.clone(), ""),
            collect_lines(
                child.stdout.take().expect("stdout"),
                lines.clone(),
                "stdout: ",
            ),
        ];
        // Both listeners are bound before either line is logged; the lines come one after
        // the other, so wait for both.
        let found = poll(START_TIMEOUT, Duration::from_millis(20), || {
            let lines = lines.lock().unwrap_or_else(|e| e.into_inner());
            let find = |marker| lines.iter().find_map(|l| parse_listen_line(l, marker));
            if let (Some(imap), Some(smtp)) = (find("imap listening on"), find("smtp listening on"))
            {
                return Some(Ok((imap, smtp)));
            }
            drop(lines);
            match child.try_wait() {
                Ok(Some(status)) => Some(Err(format!("exited with {status}"))),
                _ => None,
            }
        });
        let mut gate = Mailgate {
            dir,
            child,
            imap_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            smtp_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_addr: None,
            config_path,
            lines,
            readers,
            stopped: false,
        };
        match found {
            Some(Ok((imap, smtp))) => {
                gate.imap_addr = imap;
                gate.smtp_addr = smtp;
                // Logged before "imap listening on", so it is there by now if at all.
                gate.metrics_addr = gate
                    .lines()
                    .iter()
                    .find_map(|l| parse_listen_line(l, "metrics listening on"));
                Ok(gate)
            }
            other => {
                let why = match other {
                    Some(Err(e)) => e,
                    _ => format!(
                        "no \"imap listening on\" and \"smtp listening on\" lines within \
                         {START_TIMEOUT:?}"
                    ),
                };
                let logs = gate.stop();
                Err(format!(
                    "mailgate run did not start ({why}).\nconfig:\n{config_toml}\noutput:\n{}",
                    logs.join("\n")
                ))
            }
        }
    }

    /// Starts `mailgate run` with a `[metrics]` listener on a free loopback port (see
    /// [`super::GateConfig::metrics`]): `config` gets that address and returns the whole config.
    /// The exporter cannot bind port 0 and report the port, so the port comes from
    /// `free_port()`; when another process takes it first, mailgate exits with "cannot start
    /// the metrics exporter" and this tries again with a new port (bounded). `env` as in
    /// [`Mailgate::try_start`].
    pub fn start_with_metrics_env(
        config: impl Fn(SocketAddr) -> String,
        env: &[(&str, &str)],
    ) -> Mailgate {
        let mut last = String::new();
        for _ in 0..METRICS_START_ATTEMPTS {
            let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
            match Mailgate::try_start(&config(listen), env, "text") {
                Ok(gate) => {
                    assert_eq!(
                        gate.metrics_addr,
                        Some(listen),
                        "mailgate did not log \"metrics listening on {listen}\":\n{}",
                        gate.lines().join("\n")
                    );
                    return gate;
                }
                Err(e) if e.contains("metrics exporter") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("mailgate did not start after {METRICS_START_ATTEMPTS} metrics ports:\n{last}");
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lines mailgate wrote so far (stderr; stdout lines prefixed "stdout: ").
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits (bounded) for a line containing all of `parts`; panics with the log if none comes.
    pub fn logged(&self, parts: &[&str]) -> String {
        poll(Duration::from_secs(30), Duration::from_millis(20), || {
            self.lines()
                .into_iter()
                .find(|l| parts.iter().all(|p| l.contains(p)))
        })
        .unwrap_or_else(|| panic!("no line with {parts:?} in:\n{}", self.log()))
    }

    /// [`Mailgate::lines`] as one text, for failure messages.
    pub fn log(&self) -> String {
        self.lines().join("\n")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A client connection (greeting already read).
    pub fn connect(&self) -> ImapClient {
        ImapClient::connect(self.imap_addr)
    }

    /// Stops the process (SIGTERM, then SIGKILL after a grace period), waits until both
    /// output pipes are drained, and returns every line it wrote.
    pub fn stop(&mut self) -> Vec<String> {
        if !self.stopped {
            self.stopped = true;
            stop_child(&mut self.child, Duration::from_secs(20));
            for reader in self.readers.drain(..) {
                let _ = reader.join();
            }
        }
        self.lines()
    }

    /// Logs in over IMAP with python3's imaplib as `user` / `password` and logs out; returns
    /// what the client printed (`auth OK …` on success).
    pub fn imap_login(&self, user: &str, password: &str) -> String {
        super::proc::python_ok(&[
            "login",
            "--port",
            &self.imap_addr.port().to_string(),
            "--user",
            user,
            "--password",
            password,
        ])
    }

    /// Stops mailgate and asserts that none of `secrets` (nor their base64 forms where given)
    /// appears in any line it wrote during the test.
    pub fn assert_no_secrets(&mut self, secrets: &[&str]) {
        let lines = self.stop();
        assert!(!lines.is_empty(), "mailgate wrote no log lines at all");
        for secret in secrets {
            assert!(!secret.is_empty());
            for line in &lines {
                assert!(
                    !line.contains(secret),
                    "a secret ({} chars) appears in mailgate's output: {line}",
                    secret.len()
                );
            }
        }
    }
}

impl Drop for Mailgate {
    fn drop(&mut self) {
        let lines = self.stop();
        if thread::panicking() {
            let tail: Vec<&String> = lines.iter().rev().take(80).collect();
            eprintln!("--- mailgate output (last {} lines):", tail.len());
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

fn collect_lines(
    pipe: impl Read + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
    prefix: &'static str,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        // Bounded by the pipe: ends at EOF, when the process exits.
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = format!("{prefix}{}", strip_ansi(line.trim_end()));
                    lines.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            }
        }
    })
}

/// Removes ANSI escape sequences (in case the logger colours its output anyway).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Finds the socket address after `marker` in a log line, tolerating structured-field
/// spellings such as `imap listening on addr=127.0.0.1:1234` or quotes.
pub fn parse_listen_line(line: &str, marker: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .take(4)
        .find_map(|token| {
            let token = token.rsplit('=').next().unwrap_or(token);
            let token =
                token.trim_matches(|c: char| matches!(c, '"' | '\'' | '`' | '.' | ';' | '{' | '}'));
            token.parse::<SocketAddr>().ok()
        })
}

/// Runs the mailgate binary with `args` (and optional stdin), bounded in time.
pub fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("RUST_LOG", "info").env("NO_COLOR", "1");
    run_with_timeout(cmd, stdin, PROCESS_TIMEOUT)
}

/// `mailgate hash-password` with the password on stdin; returns the PHC string.
pub fn hash_password(password: &str) -> String {
    let out = run(&["hash-password"], Some(format!("{password}\n").as_bytes()));
    assert!(
        out.status.success(),
        "mailgate hash-password failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let phc = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("$argon2"))
        .unwrap_or_else(|| panic!("no PHC string in hash-password output: {stdout:?}"));
    phc.to_string()
}

/// `hash_password`, computed once per password per test process (argon2 is slow in a debug
/// build, and every test needs the same few hashes).
pub fn cached_hash(password: &str) -> String {
    static CACHE: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(h) = cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(password)
    {
        return h.clone();
    }
    let h = hash_password(password);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(password.to_string(), h.clone());
    h
}
