//! Property tests (proptest) of the two stream state machines that see every byte:
//! - the IMAP framer: a random stream of lines and literals, cut at random points, gives
//!   exactly the lines and literals it was built from, whatever the hold limit;
//! - SMTP dot-stuffing: any message stuffed and un-stuffed, with the wire cut at random points,
//!   comes back as the message (by the documented rule for bare LF), and the end marker is
//!   found exactly at its end — never early.
//!
//! The fuzz targets in `fuzz/` check the same properties on arbitrary bytes for minutes; these
//! run in the normal suite on structured inputs in a few seconds. Run:
//! `cargo test --test properties`

use mailgate::imap::framer::{Frame, Framer, Literal};
use mailgate::smtp::data::{Stuffer, Unstuffer};
use proptest::prelude::*;

#[path = "support/dot_oracle.rs"]
mod dot_oracle;
use dot_oracle::round_trip;

/// One element of a generated IMAP stream.
#[derive(Debug, Clone)]
enum Item {
    /// A line (content without its ending), its ending, and an optional literal it announces
    /// (`{N}` or `{N+}`) with the literal's data.
    Line {
        content: Vec<u8>,
        crlf: bool,
        literal: Option<(bool, Vec<u8>)>,
    },
}

/// What the framer should report, pieces merged.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    Line(Vec<u8>, Option<Literal>),
    Lit(Vec<u8>),
}

/// Line content: printable bytes, CR, braces and digits (so that near-announcements occur),
/// never LF. A content that happens to end like an announcement (`}`) or a CR gets an `x`, so
/// the only announcements are the generated ones.
fn content() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => b'a'..=b'z',
            1 => Just(b'{'),
            1 => Just(b'}'),
            1 => Just(b'+'),
            1 => Just(b'\r'),
            1 => b'0'..=b'9',
            1 => Just(b' '),
            1 => any::<u8>().prop_filter("no LF", |b| *b != b'\n'),
        ],
        0..200,
    )
    .prop_map(|mut c| {
        if matches!(c.last(), Some(b'}') | Some(b'\r')) {
            c.push(b'x');
        }
        c
    })
}

fn item() -> impl Strategy<Value = Item> {
    (
        content(),
        any::<bool>(),
        prop::option::of((any::<bool>(), prop::collection::vec(any::<u8>(), 0..300))),
    )
        .prop_map(|(content, crlf, literal)| Item::Line {
            content,
            crlf,
            literal,
        })
}

/// The piece boundaries for a stream of `len` bytes cut at `cuts` (taken modulo `len + 1`):
/// sorted, from 0 to `len`, without repeats.
fn cut_points(len: usize, cuts: &[usize]) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
    points.push(0);
    points.push(len);
    points.sort_unstable();
    points.dedup();
    points
}

/// The stream bytes and the frames it must give.
fn build(items: &[Item]) -> (Vec<u8>, Vec<Want>) {
    let mut stream = Vec::new();
    let mut want = Vec::new();
    for Item::Line {
        content,
        crlf,
        literal,
    } in items
    {
        let mut line = content.clone();
        let announced = literal.as_ref().map(|(sync, data)| {
            line.extend_from_slice(
                format!("{{{}{}}}", data.len(), if *sync { "" } else { "+" }).as_bytes(),
            );
            Literal {
                length: data.len() as u64,
                sync: *sync,
            }
        });
        line.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
        stream.extend_from_slice(&line);
        want.push(Want::Line(line, announced));
        if let Some((_, data)) = literal {
            stream.extend_from_slice(data);
            if !data.is_empty() {
                want.push(Want::Lit(data.clone()));
            }
        }
    }
    (stream, want)
}

/// Frames `stream` cut at `cuts` (positions, any order); returns the merged frames.
fn frame(stream: &[u8], cuts: &[usize], max_held: usize) -> Vec<Want> {
    let points = cut_points(stream.len(), cuts);
    let mut f = Framer::new(max_held);
    let mut out = Vec::new();
    let mut long: Option<Vec<u8>> = None;
    let mut lit: Option<Vec<u8>> = None;
    for w in points.windows(2) {
        let piece = &stream[w[0]..w[1]];
        let mut pos = 0;
        while let Some((n, frame)) = f.next(&piece[pos..]) {
            pos += n;
            match frame {
                Frame::Line { bytes, literal } => {
                    assert!(long.is_none() && lit.is_none());
                    assert!(bytes.len() <= max_held);
                    out.push(Want::Line(bytes.to_vec(), literal));
                }
                Frame::LongLine { bytes, first, end } => {
                    assert_eq!(first, long.is_none(), "first piece flag");
                    let l = long.get_or_insert_with(Vec::new);
                    l.extend_from_slice(bytes);
                    if let Some(literal) = end {
                        out.push(Want::Line(long.take().unwrap_or_default(), literal));
                    }
                }
                Frame::Literal { bytes, last } => {
                    assert!(!bytes.is_empty());
                    let l = lit.get_or_insert_with(Vec::new);
                    l.extend_from_slice(bytes);
                    if last {
                        out.push(Want::Lit(lit.take().unwrap_or_default()));
                    }
                }
            }
        }
        // `None`: the rest of the piece is held as part of a line.
        assert!(f.held_len() <= max_held);
    }
    assert!(long.is_none() && lit.is_none(), "stream ended mid-frame");
    assert!(
        f.at_boundary(),
        "framer not at a boundary after complete frames"
    );
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn framer_gives_the_lines_and_literals_at_any_split(
        items in prop::collection::vec(item(), 1..12),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
        max_held in prop_oneof![Just(1usize), 2usize..64, Just(8192usize)],
    ) {
        let (stream, want) = build(&items);
        prop_assert_eq!(frame(&stream, &cuts, max_held), want);
    }
}

/// Message bytes with many of the characters dot-stuffing cares about.
fn message() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => Just(b'.'),
            3 => Just(b'\r'),
            3 => Just(b'\n'),
            2 => b'a'..=b'z',
            1 => any::<u8>(),
        ],
        0..300,
    )
}

/// Un-stuffs `wire` cut at `cuts`: (message, bytes consumed through the end marker).
fn unstuff(wire: &[u8], cuts: &[usize]) -> (Vec<u8>, Option<usize>) {
    let points = cut_points(wire.len(), cuts);
    let mut u = Unstuffer::new();
    let mut out = Vec::new();
    for w in points.windows(2) {
        if let Some(n) = u.feed(&wire[w[0]..w[1]], &mut out) {
            return (out, Some(w[0] + n));
        }
    }
    (out, None)
}

/// Stuffs `msg` cut at `cuts`, end marker included.
fn stuff(msg: &[u8], cuts: &[usize]) -> Vec<u8> {
    let points = cut_points(msg.len(), cuts);
    let mut s = Stuffer::new();
    let mut out = Vec::new();
    for w in points.windows(2) {
        s.feed(&msg[w[0]..w[1]], &mut out);
    }
    assert_eq!(s.len(), msg.len() as u64, "Stuffer::len");
    out.extend_from_slice(s.finish());
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn stuffed_message_comes_back_and_ends_exactly_at_the_marker(
        msg in message(),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        next in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        let wire = stuff(&msg, &cuts);
        prop_assert_eq!(&wire, &stuff(&msg, &[]), "stuffing depends on the cuts");
        // Whatever follows the end marker (the next command) is not part of the message.
        let mut with_next = wire.clone();
        with_next.extend_from_slice(&next);
        let (back, end) = unstuff(&with_next, &cuts);
        prop_assert_eq!(end, Some(wire.len()));
        prop_assert_eq!(back, round_trip(&msg));
    }

    #[test]
    fn unstuffing_does_not_depend_on_the_cuts(
        wire in message(),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let whole = unstuff(&wire, &[]);
        prop_assert_eq!(unstuff(&wire, &cuts), whole.clone());
        // stuff(unstuff(x)) reads back as unstuff(x), by the same rule.
        if let (msg, Some(_)) = whole {
            let again = stuff(&msg, &cuts);
            let (back, end) = unstuff(&again, &[]);
            prop_assert_eq!(end, Some(again.len()));
            prop_assert_eq!(back, round_trip(&msg));
        }
    }
}
