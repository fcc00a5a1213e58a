//! Shared support for the integration tests: real Dovecot, Postfix and mailgate processes on
//! loopback ports, a test PKI made at test time, byte-exact IMAP and SMTP clients, and a
//! `/metrics` scraper.
//!
//! Every test binary compiles this module on its own and uses a different part of it, so
//! unused items are expected.
#![allow(dead_code, unused_imports)]

pub mod app_keys;
pub mod autoconfig;
pub mod bad_certs;
pub mod browser;
pub mod certs;
pub mod config;
pub mod dns;
pub mod dnsmasq;
pub mod dovecot;
pub mod fast_client;
pub mod faultproxy;
pub mod folders;
pub mod gate;
pub mod haproxy;
pub mod idp;
pub mod imap_client;
pub mod jwt_check;
pub mod mailgate;
pub mod messages;
pub mod nodes;
pub mod oauth_cli;
pub mod postfix;
pub mod postgres;
pub mod proc;
pub mod procstat;
pub mod scrape;
pub mod smtp_client;
pub mod standin;
pub mod tls_client;
pub mod upstreams;
pub mod web_client;

pub use certs::Pki;
pub use config::{Account, GateConfig, Upstream};
pub use dovecot::{Dovecot, DovecotOpts};
pub use gate::Gate;
pub use idp::Idp;
pub use imap_client::ImapClient;
pub use mailgate::Mailgate;
pub use postfix::Postfix;

use std::path::PathBuf;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Standard base64 (RFC 4648, with padding); the tests need it for SASL payloads.
pub fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Decodes standard base64 (surrounding whitespace ignored); `None` on anything that is not
/// canonical base64.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text.trim()).ok()
}

/// Lower-case hex of `data` (for readable assertions on binary content).
pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Path of a helper script in `tests/py/`.
pub fn py_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("py")
        .join(name)
}

/// Where the first difference between `a` and `b` is, with a little context, for failure
/// messages about large byte strings (printing 40 MiB helps nobody).
pub fn describe_difference(a: &[u8], b: &[u8]) -> String {
    let first = a
        .iter()
        .zip(b.iter())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let ctx = |s: &[u8]| {
        let start = first.saturating_sub(120);
        let end = (first + 120).min(s.len());
        String::from_utf8_lossy(&s[start..end]).into_owned()
    };
    format!(
        "lengths {} and {}; first difference at byte {first}\n--- left around it:\n{}\n--- right around it:\n{}",
        a.len(),
        b.len(),
        ctx(a),
        ctx(b)
    )
}
