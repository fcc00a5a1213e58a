//! SMTP DATA dot-stuffing in both directions, for any message and any split of it into reads:
//! - the un-stuffer gives the same message and the same end position however the wire bytes
//!   are split;
//! - the stuffer gives the same wire bytes however the message is split;
//! - un-stuffing what the stuffer wrote finds the end marker exactly at its end (never early:
//!   no "SMTP smuggling" through mailgate) and gives the message back, except that a dot after
//!   a bare LF stays doubled (the stuffer doubles it on purpose, see `smtp::data`), and CRLF is
//!   added to a message that does not end in CRLF;
//! - so stuff(unstuff(x)) re-reads as unstuff(x), by the same rule.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailgate::smtp::data::{Stuffer, Unstuffer};

#[path = "../../tests/support/dot_oracle.rs"]
mod dot_oracle;
use dot_oracle::round_trip as expected_round_trip;

/// Splits `data` into pieces whose sizes come from `sizes` (cycled; 0 means 1).
fn pieces<'a>(data: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < data.len() {
        let step = if sizes.is_empty() {
            data.len()
        } else {
            (sizes[i % sizes.len()] as usize).max(1)
        };
        i += 1;
        let end = (pos + step).min(data.len());
        out.push(&data[pos..end]);
        pos = end;
    }
    out
}

/// Un-stuffs the pieces: (message, bytes consumed up to and including the end marker).
fn unstuff(pieces: &[&[u8]]) -> (Vec<u8>, Option<usize>) {
    let mut u = Unstuffer::new();
    let mut out = Vec::new();
    let mut consumed = 0;
    for p in pieces {
        match u.feed(p, &mut out) {
            Some(n) => {
                assert!(n <= p.len());
                assert!(u.is_done());
                return (out, Some(consumed + n));
            }
            None => consumed += p.len(),
        }
    }
    (out, None)
}

/// Stuffs the pieces and appends the end marker.
fn stuff(pieces: &[&[u8]]) -> Vec<u8> {
    let mut s = Stuffer::new();
    let mut out = Vec::new();
    let mut len = 0;
    for p in pieces {
        s.feed(p, &mut out);
        len += p.len() as u64;
    }
    assert_eq!(s.len(), len);
    out.extend_from_slice(s.finish());
    out
}

fn check_round_trip(msg: &[u8], sizes: &[u8]) {
    let wire = stuff(&[msg]);
    assert_eq!(
        stuff(&pieces(msg, sizes)),
        wire,
        "stuffing depends on the split"
    );
    let (back, end) = unstuff(&pieces(&wire, sizes));
    assert_eq!(end, Some(wire.len()), "end marker not exactly at the end");
    assert_eq!(back, expected_round_trip(msg));
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (data, sizes) = input;
    // The data as a message.
    check_round_trip(&data, &sizes);
    // The data as wire bytes after DATA.
    let whole = unstuff(&[&data]);
    assert_eq!(
        unstuff(&pieces(&data, &sizes)),
        whole,
        "un-stuffing depends on the split"
    );
    if let (msg, Some(_)) = &whole {
        check_round_trip(msg, &sizes);
    }
});
