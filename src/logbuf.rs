//! Log lines to stderr, gathered into one write while lines come fast.
//!
//! Why: at a thousand messages a second, one `write(2)` per log line is a system call and a
//! wake-up of whatever reads mailgate's stderr (journald under systemd) for every message —
//! about a tenth of mailgate's CPU per SMTP message in the benchmark. nginx (`access_log …
//! buffer= flush=`) and Envoy (access logs flushed every second) gather lines for the same
//! reason. Here the delay is short and only applies under load: a line that follows a quiet
//! spell (no write for [`DEFAULT_DELAY`]) is written at once, as before; lines that follow it
//! within the delay are appended to a buffer that a flusher thread writes when the delay is
//! up, or at once when it reaches [`MAX_BUFFER`]. Lines keep their order (every write happens
//! under one lock), and everything buffered is written when mailgate exits or panics.
//! `MAILGATE_LOG_FLUSH_MS=0` writes every line at once.

use std::io::Write;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::MakeWriter;

/// Longest a line waits in the buffer (unless set by `MAILGATE_LOG_FLUSH_MS`): short enough
/// that an operator watching the log sees nothing late, long enough to gather tens of lines
/// per write at a thousand lines a second.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(20);
/// Buffered bytes that are written at once, whatever the delay: bounds the memory.
pub const MAX_BUFFER: usize = 64 * 1024;

struct State {
    buf: Vec<u8>,
    /// When stderr was last written.
    last_write: Option<Instant>,
    /// The flusher has been told that lines wait.
    pending: bool,
    /// Zero: every line is written at once.
    delay: Duration,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent state (a buffer and flags).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One formatted line (tracing hands over each event in one write call).
    fn push(&self, line: &[u8]) {
        let mut st = self.lock();
        let now = Instant::now();
        let quiet = st
            .last_write
            .is_none_or(|t| now.duration_since(t) >= st.delay);
        if st.delay.is_zero() || (quiet && !st.pending) {
            write_stderr(line);
            st.last_write = Some(now);
            return;
        }
        st.buf.extend_from_slice(line);
        if st.buf.len() >= MAX_BUFFER {
            write_out(&mut st, now);
        } else if !st.pending {
            st.pending = true;
            self.wake.notify_one();
        }
    }

    /// The flusher thread: waits until lines are pending, lets the delay run out since the
    /// last write, and writes them.
    fn flusher(&self) {
        let mut st = self.lock();
        loop {
            while !st.pending {
                st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            loop {
                let now = Instant::now();
                let due = st.last_write.map_or(now, |t| t + st.delay);
                if now >= due || !st.pending {
                    break;
                }
                st = self
                    .wake
                    .wait_timeout(st, due - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if st.pending {
                write_out(&mut st, Instant::now());
            }
        }
    }
}

/// Writes and empties the buffer.
fn write_out(st: &mut State, now: Instant) {
    if !st.buf.is_empty() {
        write_stderr(&st.buf);
        st.buf.clear();
        if st.buf.capacity() > MAX_BUFFER * 2 {
            st.buf = Vec::new();
        }
    }
    st.last_write = Some(now);
    st.pending = false;
}

/// A log line that cannot be written (stderr closed) is dropped: logging must not stop the
/// gateway.
fn write_stderr(bytes: &[u8]) {
    let _ = std::io::stderr().lock().write_all(bytes);
}

static SHARED: OnceLock<Shared> = OnceLock::new();

/// The writer for tracing-subscriber's fmt layer; see the module documentation.
#[derive(Clone, Copy)]
pub struct Stderr {
    shared: &'static Shared,
}

impl Stderr {
    /// The process's batched stderr, with the delay from `MAILGATE_LOG_FLUSH_MS` (default
    /// [`DEFAULT_DELAY`]); the first call starts the flusher thread and installs a panic hook
    /// that writes out what is buffered before the panic message.
    pub fn install() -> Stderr {
        let mut first = false;
        let shared = SHARED.get_or_init(|| {
            first = true;
            let delay = std::env::var("MAILGATE_LOG_FLUSH_MS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .map_or(DEFAULT_DELAY, Duration::from_millis);
            Shared {
                state: Mutex::new(State {
                    buf: Vec::new(),
                    last_write: None,
                    pending: false,
                    delay,
                }),
                wake: Condvar::new(),
            }
        });
        if first && !shared.lock().delay.is_zero() {
            // Lines pushed before the thread runs are marked pending; it finds them.
            let spawned = std::thread::Builder::new()
                .name("log-flush".into())
                .spawn(move || shared.flusher());
            if spawned.is_err() {
                // No thread: every line is written at once instead.
                let mut st = shared.lock();
                write_out(&mut st, Instant::now());
                st.delay = Duration::ZERO;
            } else {
                let previous = std::panic::take_hook();
                std::panic::set_hook(Box::new(move |info| {
                    flush();
                    previous(info);
                }));
            }
        }
        Stderr { shared }
    }
}

/// Writes out buffered lines now (at exit, before printing an error, in the panic hook).
pub fn flush() {
    if let Some(shared) = SHARED.get() {
        let mut st = shared.lock();
        write_out(&mut st, Instant::now());
    }
}

/// The writer for one event.
pub struct Line {
    shared: &'static Shared,
}

impl Write for Line {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.shared.push(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl MakeWriter<'_> for Stderr {
    type Writer = Line;

    fn make_writer(&self) -> Line {
        Line {
            shared: self.shared,
        }
    }
}
