//! The PROXY header parser on arbitrary connection starts, read as the listener reads them
//! (never more than `parse` asks for, in fuzzed read sizes): nothing panics; no read goes
//! past the header's end; the bounds hold; the answer does not depend on the read sizes or on
//! the bytes after the header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailgate::net::proxy_header::{parse, Header, HeaderError, Step, Version, V1_MAX, V2_MAX};

/// What reading `data` gives: the header, an error, or the data ran out first; and how many
/// bytes were read.
#[derive(Debug, PartialEq)]
enum End {
    Header(Header),
    Error(HeaderError),
    Short,
}

fn drive(data: &[u8], sizes: &[u8]) -> (End, usize) {
    let mut have = 0;
    for i in 0.. {
        let step = match parse(&data[..have]) {
            Ok(s) => s,
            Err(e) => return (End::Error(e), have),
        };
        match step {
            Step::Done(h) => return (End::Header(h), have),
            Step::Need(n) => {
                assert!(n >= 1);
                assert!(have + n <= V2_MAX.max(V1_MAX), "{have} + {n}");
                if have == data.len() {
                    return (End::Short, have);
                }
                // A read returns 1 to n bytes.
                let got = sizes.get(i).map_or(n, |&s| usize::from(s) % n + 1);
                have = (have + got).min(data.len());
            }
        }
    }
    unreachable!()
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (data, sizes) = input;
    let (end, read) = drive(&data, &sizes);
    let (whole, whole_read) = drive(&data, &[]);
    assert_eq!(end, whole);
    if let End::Header(h) = end {
        // Exactly the header was read: the session starts on the next byte.
        assert_eq!((h.len, whole_read), (read, read));
        match h.version {
            Version::V1 => assert!(h.len <= V1_MAX && data[..h.len].ends_with(b"\r\n")),
            Version::V2 => assert!(h.len >= 16 && h.len <= V2_MAX),
        }
        // The same header whatever follows it.
        assert_eq!(parse(&data), Ok(Step::Done(h)));
    }
    if let End::Error(_) = end {
        assert!(parse(&data).is_err());
    }
});
