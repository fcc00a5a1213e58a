//! Buffers are borrowed from a per-thread pool for the moment they hold data and given back
//! as soon as they are empty, so an idle session — most sessions, most of the time: a mail
//! client sits in IDLE for hours — holds no buffer at all, and a busy one reuses the same few
//! buffers without a malloc per read. Read and output buffers come from one pool: a read
//! buffer whose whole content is literal data the relay passes on unchanged becomes the
//! output buffer as it is (see `Dir::pass_literal`), instead of being copied into one.

use std::cell::RefCell;

/// Capacity of a buffer: the most one read takes. 256 KiB rather than 64: a bulk FETCH
/// then takes a quarter of the reads, writes and wake-ups per MB (benchmark, same run:
/// bulk FETCH 0.99×/0.86× direct with 64 KiB, 1.08×/1.09× with 256 KiB; mailgate CPU per
/// 50 MiB message 27 ms → 22 ms). Reads go into the spare capacity, so a buffer is never
/// zeroed and only the pages a read touched are resident. Only busy sessions hold one.
pub const BUF: usize = 256 * 1024;
/// Free buffers kept per thread (at most 2 MiB per thread); more are freed.
const KEEP: usize = 8;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for one read.
pub fn take() -> Vec<u8> {
    FREE.with(|p| p.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(BUF))
}

/// Gives back a buffer; one of another size (login leftovers, one that grew far beyond a
/// read's worth) is simply freed.
pub fn give(mut v: Vec<u8>) {
    if v.capacity() >= BUF && v.capacity() <= 4 * BUF {
        v.clear();
        FREE.with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < KEEP {
                p.push(v);
            }
        });
    }
}
