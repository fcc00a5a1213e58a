//! What un-stuffing a stuffed message gives back, as the tests and the `smtp_dot` fuzz target
//! expect it (shared by `tests/properties.rs` and `fuzz/fuzz_targets/smtp_dot.rs` through
//! `#[path]`, so it is not in `support/mod.rs`).

/// `msg` after `Stuffer` then `Unstuffer`: a dot right after a bare LF stays doubled (the
/// stuffer doubles it because servers such as Postfix read a bare LF as a line end; the
/// un-stuffer only un-doubles after CRLF; see `smtp::data`), and a non-empty message that does
/// not end in CRLF gets one before the end marker.
pub fn round_trip(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 2);
    for (i, &b) in msg.iter().enumerate() {
        let after_bare_lf = i > 0 && msg[i - 1] == b'\n' && (i < 2 || msg[i - 2] != b'\r');
        if b == b'.' && after_bare_lf {
            out.push(b'.');
        }
        out.push(b);
    }
    if !msg.is_empty() && !msg.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}
