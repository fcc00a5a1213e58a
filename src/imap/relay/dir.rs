//! One direction of the relay: its framer, read and output buffers, and splice pipe.

use super::{pool, splice};
use crate::imap::framer::Framer;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

/// Lines up to this size are held whole (to inspect or rewrite); longer ones stream through.
pub(super) const MAX_HELD: usize = 64 * 1024;

/// One direction of the relay.
pub(super) struct Dir {
    pub(super) framer: Framer,
    pub(super) inbuf: Vec<u8>,
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) out: Vec<u8>,
    pub(super) out_pos: usize,
    pub(super) needs_flush: bool,
    pub(super) eof: bool,
    pub(super) bytes: u64,
    /// The pipe while a long literal is spliced (see [`splice`]); `None` otherwise.
    pub(super) pipe: Option<splice::Pipe>,
    /// Bytes of this direction's input that were spliced.
    pub(super) spliced: u64,
    /// splice(2) failed as unsupported: this direction reads into buffers from now on.
    pub(super) no_splice: bool,
    /// A read in this poll of the relay found nothing, so the task is woken when there is
    /// more: reading again before then only costs (a buffer taken and given back, the waker
    /// registered again) — several times per command, as the relay loops over both sides.
    pub(super) waiting: bool,
}

impl Dir {
    pub(super) fn new(leftover: Vec<u8>) -> Self {
        let end = leftover.len();
        Dir {
            framer: Framer::new(MAX_HELD),
            inbuf: leftover,
            start: 0,
            end,
            out: Vec::new(),
            out_pos: 0,
            needs_flush: false,
            eof: false,
            bytes: end as u64,
            pipe: None,
            spliced: 0,
            no_splice: false,
            waiting: false,
        }
    }

    /// Returns emptied buffers to the pool.
    pub(super) fn release(&mut self) {
        if self.start >= self.end && self.inbuf.capacity() > 0 {
            pool::give(std::mem::take(&mut self.inbuf));
            self.start = 0;
            self.end = 0;
        }
        if self.buffered_empty() && self.out.capacity() > 0 {
            pool::give(std::mem::take(&mut self.out));
            self.out_pos = 0;
        }
    }

    /// The output buffer, borrowed from the pool if this direction holds none.
    pub(super) fn out_buf(&mut self) -> &mut Vec<u8> {
        if self.out.capacity() == 0 {
            self.out = pool::take();
        }
        &mut self.out
    }

    /// Passes on the `n` literal bytes just framed (the last `n` before `start`; a literal
    /// frame is always the front of the input it was cut from). When they run to the end of
    /// this read and nothing else waits to go out, the read buffer itself becomes the output
    /// buffer: the bytes are written from where they were read, without a copy (a large
    /// literal — a FETCHed attachment, an APPENDed message — is nearly all of a session's
    /// bytes). Otherwise they are copied into the output buffer.
    pub(super) fn pass_literal(&mut self, n: usize) {
        let from = self.start - n;
        if !(self.out.is_empty() && self.start == self.end) {
            self.out.extend_from_slice(&self.inbuf[from..self.start]);
            return;
        }
        pool::give(std::mem::take(&mut self.out));
        self.out = std::mem::take(&mut self.inbuf);
        self.out.truncate(self.end);
        self.out_pos = from;
        self.start = 0;
        self.end = 0;
    }

    pub(super) fn pending_input(&self) -> bool {
        self.start < self.end
    }

    /// Nothing waits to go out: neither buffered output nor spliced bytes in the pipe.
    pub(super) fn out_empty(&self) -> bool {
        self.buffered_empty() && self.pipe_held() == 0
    }

    pub(super) fn buffered_empty(&self) -> bool {
        self.out_pos == self.out.len()
    }

    pub(super) fn pipe_held(&self) -> usize {
        self.pipe.as_ref().map_or(0, splice::Pipe::held)
    }

    /// Whether the next input should be spliced from `from` rather than read: only inside a
    /// literal (long enough to be worth a pipe, or one being spliced already), with nothing
    /// buffered, and only while the pipe can be had (when it cannot — out of file
    /// descriptors — the buffered path serves).
    pub(super) fn splice_next(&mut self) -> bool {
        let left = self.framer.literal_left();
        if self.pipe.is_some() {
            return left > 0;
        }
        if left < splice::MIN || self.pending_input() || self.no_splice {
            return false;
        }
        self.pipe = splice::Pipe::new().ok();
        self.pipe.is_some()
    }

    /// Splices the next piece of the current literal from `from` into the pipe (whose
    /// contents are written out before more is read); Ready(Ok(n)), 0 at end of stream.
    pub(super) fn poll_splice_in(
        &mut self,
        cx: &mut Context<'_>,
        from: &tokio::net::TcpStream,
    ) -> Poll<io::Result<u64>> {
        let Some(pipe) = self.pipe.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        let n = match std::task::ready!(pipe.poll_fill(cx, from, self.framer.literal_left())) {
            Ok(n) => n as u64,
            Err(e)
                if pipe.held() == 0
                    && matches!(
                        e.kind(),
                        io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
                    ) =>
            {
                // Nothing was moved: carry on with buffered reads (no such kernel here, or a
                // socket type splice does not serve; never seen with TCP).
                self.pipe = None;
                self.no_splice = true;
                return Poll::Ready(Ok(0));
            }
            Err(e) => return Poll::Ready(Err(e)),
        };
        if n == 0 {
            self.eof = true;
        }
        self.framer.skip_literal(n);
        self.bytes += n;
        self.spliced += n;
        Poll::Ready(Ok(n))
    }

    /// Writes the pipe's contents to `to`; Ready(Ok(true)) on progress. The pipe is closed
    /// once empty at the literal's end, so an idle session holds no pipe.
    pub(super) fn poll_splice_out(
        &mut self,
        cx: &mut Context<'_>,
        to: &tokio::net::TcpStream,
    ) -> Poll<io::Result<bool>> {
        let Some(pipe) = self.pipe.as_mut() else {
            return Poll::Pending;
        };
        let mut progress = false;
        while pipe.held() > 0 {
            match pipe.poll_drain(cx, to) {
                Poll::Ready(Ok(_)) => progress = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        if pipe.held() == 0 && self.framer.literal_left() == 0 {
            self.pipe = None;
        }
        if progress {
            Poll::Ready(Ok(true))
        } else {
            Poll::Pending
        }
    }

    /// Writes pending output; returns Ready(Err) on failure, Ready(Ok(true)) on progress.
    pub(super) fn poll_write<W: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        w: &mut W,
    ) -> Poll<io::Result<bool>> {
        let mut progress = false;
        while !self.buffered_empty() {
            match Pin::new(&mut *w).poll_write(cx, &self.out[self.out_pos..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.out_pos += n;
                    progress = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    return if progress {
                        Poll::Ready(Ok(true))
                    } else {
                        Poll::Pending
                    }
                }
            }
        }
        if progress {
            pool::give(std::mem::take(&mut self.out));
            self.out_pos = 0;
            self.needs_flush = true;
        }
        if self.needs_flush {
            match Pin::new(&mut *w).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.needs_flush = false;
                    progress = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        if progress {
            Poll::Ready(Ok(true))
        } else {
            Poll::Pending
        }
    }

    /// Runs `read` (a read or a splice of this direction's input) unless one found nothing
    /// earlier in this poll of the relay (see `waiting`), and remembers whether this one did.
    pub(super) fn read_once(
        &mut self,
        read: impl FnOnce(&mut Dir) -> Poll<io::Result<u64>>,
    ) -> Poll<io::Result<u64>> {
        if self.waiting {
            return Poll::Pending;
        }
        let polled = read(self);
        self.waiting = polled.is_pending();
        polled
    }

    /// Reads more input (only called when all earlier input is framed); Ready(Ok(n)) with
    /// the byte count (0 at EOF).
    pub(super) fn poll_read<R: AsyncRead + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        r: &mut R,
    ) -> Poll<io::Result<u64>> {
        if self.inbuf.capacity() < pool::BUF {
            // None yet, or the login's leftover bytes (already framed): a pool buffer.
            pool::give(std::mem::replace(&mut self.inbuf, pool::take()));
        }
        self.inbuf.clear();
        // Into the spare capacity: tokio's `read_buf` initializes only what it reads.
        let read = std::pin::pin!(r.read_buf(&mut self.inbuf));
        match read.poll(cx) {
            Poll::Ready(Ok(n)) => {
                if n == 0 {
                    self.eof = true;
                }
                self.start = 0;
                self.end = n;
                self.bytes += n as u64;
                Poll::Ready(Ok(n as u64))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                // Nothing to read: hold no buffer while waiting.
                pool::give(std::mem::take(&mut self.inbuf));
                self.framer.shrink();
                Poll::Pending
            }
        }
    }
}
