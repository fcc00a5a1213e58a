//! Microbenchmarks of the per-byte and per-command hot paths:
//! - the relay's IMAP framer, per MiB of a FETCH-like server stream;
//! - SMTP DATA dot-unstuffing (client side) and re-stuffing (upstream side), per MiB;
//! - pre-auth command parsing (framer + imap-codec), per command.
//!
//! Run: `cargo bench --bench hot_paths`. The end-to-end comparison against a direct
//! connection is the `gateway` benchmark (see README, Performance).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use imap_codec::decode::Decoder;
use imap_codec::CommandCodec;
use mailgate::imap::framer::{Frame, Framer};
use mailgate::smtp::data::{Stuffer, Unstuffer};
use std::hint::black_box;

/// A server stream of FETCH responses: 10 KiB bodies with protocol-looking lines inside.
fn fetch_stream(total: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < 10 * 1024 {
        body.extend_from_slice(b"Line of a message body, with a {5} and a1 OK inside.\r\n");
    }
    let mut out = Vec::with_capacity(total + 20 * 1024);
    let mut uid = 1;
    while out.len() < total {
        out.extend_from_slice(
            format!("* {uid} FETCH (UID {uid} BODY[] {{{}}}\r\n", body.len()).as_bytes(),
        );
        out.extend_from_slice(&body);
        out.extend_from_slice(b")\r\n");
        uid += 1;
    }
    out
}

/// A message body with dot lines, as the client sends it (stuffed, with the end marker).
fn smtp_body(total: usize) -> Vec<u8> {
    let mut raw = Vec::with_capacity(total + 1024);
    let mut i = 0;
    while raw.len() < total {
        if i % 7 == 0 {
            raw.extend_from_slice(b"..a line that starts with a dot\r\n");
        } else {
            raw.extend_from_slice(b"An ordinary line of text in the message body.\r\n");
        }
        i += 1;
    }
    raw.extend_from_slice(b".\r\n");
    raw
}

fn framer(c: &mut Criterion) {
    let stream = fetch_stream(1 << 20);
    let mut g = c.benchmark_group("framer");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("fetch_stream_1MiB_in_64KiB_reads", |b| {
        b.iter(|| {
            let mut f = Framer::new(64 * 1024);
            let mut frames = 0usize;
            for chunk in stream.chunks(64 * 1024) {
                let mut pos = 0;
                while let Some((n, frame)) = f.next(&chunk[pos..]) {
                    pos += n;
                    frames += match frame {
                        Frame::Line { .. } | Frame::LongLine { .. } => 1,
                        Frame::Literal { bytes, .. } => bytes.len() & 1,
                    };
                }
            }
            black_box(frames)
        })
    });
    g.finish();
}

fn smtp_data(c: &mut Criterion) {
    let stuffed = smtp_body(1 << 20);
    let mut g = c.benchmark_group("smtp_data");
    g.throughput(Throughput::Bytes(stuffed.len() as u64));
    g.bench_function("unstuff_1MiB_in_64KiB_reads", |b| {
        let mut out = Vec::with_capacity(stuffed.len());
        b.iter(|| {
            out.clear();
            let mut u = Unstuffer::new();
            for chunk in stuffed.chunks(64 * 1024) {
                if u.feed(chunk, &mut out).is_some() {
                    break;
                }
            }
            black_box(out.len())
        })
    });
    let mut plain = Vec::new();
    let mut u = Unstuffer::new();
    u.feed(&stuffed, &mut plain);
    g.bench_function("stuff_1MiB_in_64KiB_writes", |b| {
        let mut out = Vec::with_capacity(stuffed.len() + 1024);
        b.iter(|| {
            out.clear();
            let mut s = Stuffer::new();
            for chunk in plain.chunks(64 * 1024) {
                s.feed(chunk, &mut out);
            }
            out.extend_from_slice(s.finish());
            black_box(out.len())
        })
    });
    g.finish();
}

fn preauth_parse(c: &mut Criterion) {
    let commands: [&[u8]; 4] = [
        b"a1 CAPABILITY\r\n",
        b"a2 LOGIN \"ola.nordmann@example.no\" \"correct horse battery staple\"\r\n",
        b"a3 AUTHENTICATE PLAIN AG9sYUBleGFtcGxlLm5vAHNlY3JldA==\r\n",
        b"a4 ID (\"name\" \"Thunderbird\" \"version\" \"128.0\")\r\n",
    ];
    let mut g = c.benchmark_group("preauth");
    g.throughput(Throughput::Elements(commands.len() as u64));
    g.bench_function("frame_and_decode_4_commands", |b| {
        let codec = CommandCodec::default();
        b.iter(|| {
            let mut ok = 0;
            let mut f = Framer::new(8 * 1024);
            for cmd in commands {
                if let Some((_, Frame::Line { bytes, .. })) = f.next(cmd) {
                    if codec.decode(bytes).is_ok() {
                        ok += 1;
                    }
                }
            }
            black_box(ok)
        })
    });
    g.finish();
}

criterion_group!(benches, framer, smtp_data, preauth_parse);
criterion_main!(benches);
