//! The IMAP pre-authentication session (`imap::login::run`): client bytes in, responses out.
//!
//! No network: the client is an in-memory stream that hands out the input in reads of a
//! fuzzed size and then reports end of file. The configuration has one account (local password
//! `pw`, hashed with cheap argon2 parameters) whose upstream is `127.0.0.1` port 1 — nothing
//! listens there, so a correct login ends in the kernel's "connection refused" and
//! `NO [UNAVAILABLE]` without a packet leaving the host. Checked for every input:
//! - the session ends (end of input is end of session) and nothing panics;
//! - every response is a CRLF-ended line starting `* `, `+ ` or a tag, each tagged one with
//!   OK, NO or BAD;
//! - nothing follows a BYE except the tagged completion of LOGOUT;
//! - the stored upstream password never appears in what the client is sent.
#![no_main]

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use libfuzzer_sys::fuzz_target;
use mailgate::config::Config;
use mailgate::imap::{login, Session};
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const UPSTREAM_SECRET: &str = "UPSTREAM-secret-3f9c2a";

/// A client connection: reads come from `input` in pieces of at most `step` bytes, then EOF;
/// writes are collected.
struct Script<'a> {
    input: &'a [u8],
    step: usize,
    output: Vec<u8>,
}

impl AsyncRead for Script<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.input.len().min(self.step).min(buf.remaining());
        let (now, rest) = self.input.split_at(n);
        buf.put_slice(now);
        self.input = rest;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Script<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.output.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

struct World {
    runtime: tokio::runtime::Runtime,
    config: Arc<Config>,
    shutdown: (mailgate::session::Trigger, mailgate::session::Shutdown),
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let params = Params::new(8, 1, 1, None).expect("valid argon2 parameters");
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0").expect("valid salt");
        let hash = argon
            .hash_password(b"pw", &salt)
            .expect("hashing works")
            .to_string();
        let text = format!(
            r#"
[server]
auth_failure_delay_ms = 0
max_auth_failures = 3
# Throttling sleeps for real (up to seconds) and its state is process-wide: out of the way here.
login_throttle_threshold = 100000000
login_cache_secs = 0
connect_timeout_secs = 5
upstream_timeout_secs = 5

[[account]]
email = "user@example.com"
local_password_hash = "{hash}"

[account.imap]
host = "127.0.0.1"
port = 1
tls = "none"
allow_plaintext = true
password = "{UPSTREAM_SECRET}"
"#
        );
        let config = Config::parse(&text, Path::new("/nonexistent/mailgate-fuzz/mailgate.toml"))
            .expect("the fuzz configuration is valid");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        World {
            runtime,
            config: Arc::new(config),
            shutdown: mailgate::session::shutdown_channel(),
        }
    })
}

fn check_responses(input: &[u8], out: &[u8]) {
    // Unless the client sent it itself (tags are echoed; the first run of this target found
    // an input that used the secret as a tag).
    if memchr_find(input, UPSTREAM_SECRET.as_bytes()).is_none() {
        assert!(
            memchr_find(out, UPSTREAM_SECRET.as_bytes()).is_none(),
            "upstream password sent to the client"
        );
    }
    assert!(
        out.is_empty() || out.ends_with(b"\r\n"),
        "unterminated response"
    );
    let mut bye = false;
    let mut after_bye = 0;
    for line in out.split_inclusive(|&b| b == b'\n') {
        assert!(line.ends_with(b"\r\n"), "bare LF in {line:?}");
        let text = String::from_utf8_lossy(line);
        // The POP3 answer to a first line that is a POP3 command (or to silence after the
        // greeting, following the BYE) ends the output.
        if text.starts_with("-ERR this is an IMAP server:") {
            assert!(out.ends_with(line), "output after the POP3 answer");
            continue;
        }
        if bye {
            after_bye += 1;
            assert!(
                after_bye <= 1 && text.contains(" OK Logout"),
                "after BYE: {text:?}"
            );
        }
        if text.starts_with("* BYE ") {
            bye = true;
        } else if text.starts_with("* ") || text.starts_with("+ ") {
        } else {
            let mut words = text.splitn(3, ' ');
            let tag = words.next().unwrap_or_default();
            let status = words.next().unwrap_or_default();
            assert!(!tag.is_empty(), "empty tag: {text:?}");
            assert!(
                matches!(status, "OK" | "NO" | "BAD"),
                "tagged response without status: {text:?}"
            );
        }
    }
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, input)) = data.split_first() else {
        return;
    };
    let w = world();
    let mut script = Script {
        input,
        step: if step == 0 {
            usize::MAX
        } else {
            usize::from(step)
        },
        output: Vec::new(),
    };
    let mut session = Session {
        id: 1,
        peer: "127.0.0.1:40000".parse().expect("an address"),
        loopback: true,
        tls: false,
        config: w.config.clone(),
        shutdown: w.shutdown.1.clone(),
        ticket: None,
        accepted: std::time::Instant::now(),
        local_port: 143,
    };
    let outcome = w.runtime.block_on(login::run(&mut script, &mut session));
    if let Ok(login::Outcome::Relay { .. }) = outcome {
        panic!("relay without an upstream");
    }
    check_responses(input, &script.output);
});
