//! The relay's framer: for any byte stream and any split of it into reads, the frames are the
//! same, no input byte is lost or duplicated, and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailgate::imap::framer::{Frame, Framer};

/// Frames `data` fed in pieces of the given sizes; returns the concatenated output and the
/// positions where lines ended.
fn run(data: &[u8], sizes: &[u8], max_held: usize) -> (Vec<u8>, Vec<usize>) {
    let mut f = Framer::new(max_held);
    let mut out = Vec::new();
    let mut ends = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < data.len() {
        let step = (sizes.get(i).copied().unwrap_or(255) as usize).max(1);
        i += 1;
        let piece = &data[pos..(pos + step).min(data.len())];
        pos += piece.len();
        let mut at = 0;
        while let Some((n, frame)) = f.next(&piece[at..]) {
            at += n;
            match frame {
                Frame::Line { bytes, .. } => {
                    out.extend_from_slice(bytes);
                    ends.push(out.len());
                }
                Frame::LongLine { bytes, end, .. } => {
                    out.extend_from_slice(bytes);
                    if end.is_some() {
                        ends.push(out.len());
                    }
                }
                Frame::Literal { bytes, .. } => out.extend_from_slice(bytes),
            }
        }
    }
    (out, ends)
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (data, sizes) = input;
    let whole = run(&data, &[255; 1], 64);
    let split = run(&data, &sizes, 64);
    assert_eq!(whole.1, split.1);
    // Everything up to the last complete frame came out unchanged.
    let n = split.0.len();
    assert_eq!(&split.0[..], &data[..n]);
});
