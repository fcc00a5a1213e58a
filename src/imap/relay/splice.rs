//! Long literals between two plain TCP sockets go through the kernel: splice(2) moves the
//! bytes from one socket into a pipe and from the pipe into the other socket by page
//! reference, so mailgate neither copies them into its memory nor back out (the two copies
//! that were its whole remaining cost on a large FETCH or APPEND: ~18 ms of CPU per 50 MiB).
//! HAProxy relays TCP the same way. Only literal data is spliced — its length is announced,
//! so the relay knows exactly where the protocol resumes — and only when neither side is TLS
//! (encrypted bytes must pass through rustls). Lines, short literals and TLS sessions take
//! the buffered path.

use rustix::pipe::{fcntl_setpipe_size, pipe_with, splice, PipeFlags, SpliceFlags};
use std::io;
use std::os::fd::OwnedFd;
use std::task::{ready, Context, Poll};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Least literal length still to come from the socket that is worth a pipe (two file
/// descriptors and three system calls to set up): shorter literals — most messages — are
/// read with the line around them in one buffered read anyway.
pub const MIN: u64 = 256 * 1024;
/// Pipe capacity asked for: 1 MiB (Linux's default `pipe-max-size`) moves a large literal
/// in a sixteenth of the system calls of the 64 KiB default; if refused (a lower limit
/// for the user), the default serves, only with more calls.
const SIZE: usize = 1024 * 1024;

/// A pipe and how many bytes it holds.
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    held: usize,
}

impl Pipe {
    /// A non-blocking pipe.
    pub fn new() -> io::Result<Pipe> {
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        let _ = fcntl_setpipe_size(&write, SIZE);
        Ok(Pipe {
            read,
            write,
            held: 0,
        })
    }

    /// Bytes in the pipe, not yet written out.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Moves up to `max` bytes from `from` into the pipe; Ready(Ok(0)) at end of stream.
    /// Only called on an empty pipe: then "would block" can only mean that the socket has
    /// nothing to read, and clearing its read readiness is right. (With data in the pipe
    /// it could also mean the pipe is full, and clearing the socket's readiness then would
    /// wait for an edge that never comes.)
    pub fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        from: &TcpStream,
        max: u64,
    ) -> Poll<io::Result<usize>> {
        debug_assert_eq!(self.held, 0);
        let len = max.min(SIZE as u64) as usize;
        let n = ready!(poll_splice(cx, from, Interest::READABLE, || {
            splice(from, None, &self.write, None, len, FLAGS)
        }))?;
        self.held += n;
        Poll::Ready(Ok(n))
    }

    /// Moves what the pipe holds into `to`; Ready(Ok(n)) with the bytes moved. The pipe
    /// holds data, so "would block" means the socket is full.
    pub fn poll_drain(&mut self, cx: &mut Context<'_>, to: &TcpStream) -> Poll<io::Result<usize>> {
        let n = ready!(poll_splice(cx, to, Interest::WRITABLE, || {
            splice(&self.read, None, to, None, self.held, FLAGS)
        }))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        self.held -= n;
        Poll::Ready(Ok(n))
    }
}

/// Non-blocking, and moving page references rather than copying where the kernel can.
const FLAGS: SpliceFlags = SpliceFlags::NONBLOCK.union(SpliceFlags::MOVE);

/// Runs `op` once `socket` is ready for `interest`; on "would block" tokio forgets the
/// readiness and the wait starts again.
fn poll_splice(
    cx: &mut Context<'_>,
    socket: &TcpStream,
    interest: Interest,
    mut op: impl FnMut() -> rustix::io::Result<usize>,
) -> Poll<io::Result<usize>> {
    loop {
        ready!(if interest.is_readable() {
            socket.poll_read_ready(cx)
        } else {
            socket.poll_write_ready(cx)
        })?;
        match socket.try_io(interest, || Ok(op()?)) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            done => return Poll::Ready(done),
        }
    }
}
