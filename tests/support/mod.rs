//! Shared support for the integration tests: real Dovecot, Postfix and mailgate processes on
//! loopback ports, a test PKI made at test time, byte-exact IMAP and SMTP clients, and a
//! `/metrics` scraper.
//!
//! Every test binary compiles this module on its own and uses a different part of it, so
//! unused items are expected.
#![allow(dead_code, unused_imports)]

pub mod autoconfig;
pub mod bad_certs;
pub mod certs;
pub mod dns;
pub mod dnsmasq;
pub mod dovecot;
pub mod faultproxy;
pub mod idp;
pub mod imap_client;
pub mod mailgate;
pub mod messages;
pub mod postfix;
pub mod proc;
pub mod procstat;
pub mod scrape;
pub mod smtp_client;
pub mod standin;
pub mod tls_client;

pub use certs::Pki;
pub use dovecot::{Dovecot, DovecotOpts};
pub use idp::Idp;
pub use imap_client::ImapClient;
pub use mailgate::Mailgate;
pub use postfix::Postfix;

use std::path::PathBuf;

/// Standard base64 (RFC 4648, with padding); the tests need it for SASL payloads.
pub fn b64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64; `None` on anything that is not canonical base64.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.len() % 4 != 0 {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    for chunk in text.as_bytes().chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
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
