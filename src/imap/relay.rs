//! After login: the relay between the client and the upstream IMAP server.
//!
//! Everything passes byte for byte except what the gateway changes on purpose:
//! - capability lists (`* CAPABILITY …` and the `[CAPABILITY …]` code of a status response;
//!   never message data that looks like one) lose what the gateway must hide: STARTTLS,
//!   AUTH=…, LOGINDISABLED, and COMPRESS (the relay frames plain bytes);
//! - the client's STARTTLS and COMPRESS commands are answered by the gateway, not forwarded;
//! - on shutdown or idle time-out the client gets `* BYE`, inserted between two responses;
//! - an upstream that stops in the middle of a response (a literal, a line) for
//!   `upstream_timeout` ends the session: with `* BYE` when the client has seen nothing of that
//!   response yet, else by closing (anything inserted into a literal would be taken as message
//!   data; a cut connection is what a client can recognise).
//!
//! Both directions run in one task, polled by hand: each side is read only when what was read
//! before has been written to the other side, so memory per session is bounded by the buffers
//! whatever the traffic, and a full socket in one direction never blocks the other (a
//! single-task proxy that awaited a write could deadlock with a server that stops reading while
//! its own output is not drained).
//!
//! A synchronizing literal (`{N}`) makes the client wait for the server's `+`; if the server
//! answers with a tagged NO/BAD instead, the client never sends the data. To keep framing right
//! in both cases the relay stops reading the client after such an announcement until the
//! server has answered, and then continues in the state the server chose.

use crate::imap::framer::{Frame, Framer};
use crate::metrics::{self, ByteCounters};
use crate::upstream::UpstreamStream;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Lines up to this size are held whole (to inspect or rewrite); longer ones stream through.
const MAX_HELD: usize = 64 * 1024;

/// Buffers are borrowed from a per-thread pool for the moment they hold data and given back
/// as soon as they are empty, so an idle session — most sessions, most of the time: a mail
/// client sits in IDLE for hours — holds no buffer at all, and a busy one reuses the same few
/// buffers without a malloc per read. Read and output buffers come from one pool: a read
/// buffer whose whole content is literal data the relay passes on unchanged becomes the
/// output buffer as it is (see `Dir::pass_literal`), instead of being copied into one.
mod pool {
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
}

/// Long literals between two plain TCP sockets go through the kernel: splice(2) moves the
/// bytes from one socket into a pipe and from the pipe into the other socket by page
/// reference, so mailgate neither copies them into its memory nor back out (the two copies
/// that were its whole remaining cost on a large FETCH or APPEND: ~18 ms of CPU per 50 MiB).
/// HAProxy relays TCP the same way. Only literal data is spliced — its length is announced,
/// so the relay knows exactly where the protocol resumes — and only when neither side is TLS
/// (encrypted bytes must pass through rustls). Lines, short literals and TLS sessions take
/// the buffered path.
mod splice {
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
        pub fn poll_drain(
            &mut self,
            cx: &mut Context<'_>,
            to: &TcpStream,
        ) -> Poll<io::Result<usize>> {
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
}

/// Asks the client's kernel for an immediate ACK of what was read (TCP_QUICKACK), used while
/// the client is in the middle of a command — typically after an APPEND literal whose closing
/// CRLF has not come yet. A client that leaves Nagle's algorithm on (python's imaplib, many
/// others) writes the literal and the CRLF separately, and its kernel holds the CRLF until
/// the literal is ACKed; Linux delays that ACK up to 40 ms when it has nothing to send back,
/// and the relay has nothing to send until the server answers the whole command. The option
/// is not sticky (the kernel drops back to delayed ACKs by itself), hence once per such read;
/// reads that end a command — nearly all of them — cost nothing.
fn quickack<C: 'static>(client: &C) {
    let client = client as &dyn std::any::Any;
    let tcp = client.downcast_ref::<tokio::net::TcpStream>().or_else(|| {
        client
            .downcast_ref::<crate::net::tls::ServerStream<tokio::net::TcpStream>>()
            .map(|tls| tls.get_ref().0)
    });
    if let Some(tcp) = tcp {
        // Best effort: without it the ACK only comes later.
        let _ = rustix::net::sockopt::set_tcp_quickack(tcp, true);
    }
}

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client closed its side.
    ClientClosed,
    /// The upstream closed (normally after LOGOUT).
    UpstreamClosed,
    /// Reading or writing the client failed.
    ClientError,
    /// Reading or writing the upstream failed.
    UpstreamError,
    /// The client was silent longer than the idle time-out.
    IdleTimeout,
    /// The gateway is shutting down.
    Shutdown,
    /// The upstream sent nothing for the upstream time-out in the middle of a response.
    UpstreamStalled,
}

impl End {
    /// A label for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            End::ClientClosed => "client closed",
            End::UpstreamClosed => "upstream closed",
            End::ClientError => "client connection error",
            End::UpstreamError => "upstream connection error",
            End::IdleTimeout => "idle time-out",
            End::Shutdown => "shutdown",
            End::UpstreamStalled => {
                "upstream stalled in the middle of a response (upstream_timeout_secs)"
            }
        }
    }
}

/// What a relay did.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Bytes read from the client.
    pub from_client: u64,
    /// Bytes read from the upstream.
    pub from_upstream: u64,
    /// Of those bytes (both directions), how many went from socket to socket by splice(2).
    pub spliced: u64,
    /// Why it ended.
    pub end: End,
}

/// Settings for one relay.
pub struct Options {
    /// Close after this long without a byte from the client.
    pub idle_timeout: Duration,
    /// End the session when the upstream sends nothing for this long in the middle of a
    /// response.
    pub upstream_timeout: Duration,
    /// Becomes `true` when the gateway shuts down.
    pub shutdown: crate::session::Shutdown,
    /// Where relayed bytes are counted.
    pub counters: ByteCounters,
    /// Client synchronizing literals up to this size are sent upstream as non-synchronizing
    /// ones and the client gets its `+` from the gateway (0: never); see [`nonsync_limit`].
    pub nonsync_literal_max: u64,
}

/// Largest synchronizing literal the relay turns into a LITERAL+ one.
///
/// Why: a client's `{N}` costs a round trip to the provider before the data may follow — tens
/// of milliseconds per APPEND to a real provider, and two extra hops through the gateway on
/// loopback. When the server accepts non-synchronizing literals (RFC 7888), the gateway answers
/// the `+` itself and forwards `{N+}`: the server gets the same command and data, the client the
/// same responses. The price: if the server would have refused the command before the data
/// (no such mailbox, over quota), the client has sent the data for nothing before it hears the
/// same NO — so only literals up to this size are converted; larger ones keep the round trip.
pub const NONSYNC_CONVERT_MAX: u64 = 1024 * 1024;

/// The `nonsync_literal_max` for a server with these capabilities: LITERAL+ allows any size,
/// LITERAL- (RFC 7888) only up to 4096 bytes.
pub fn nonsync_limit<'a>(capabilities: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut limit = 0;
    for cap in capabilities {
        if cap.eq_ignore_ascii_case("LITERAL+") {
            return NONSYNC_CONVERT_MAX;
        }
        if cap.eq_ignore_ascii_case("LITERAL-") {
            limit = 4096;
        }
    }
    limit
}

/// `line` with its final `{N}` announcement rewritten as `{N+}`; `None` if it has none.
fn nonsync_announcement(line: &[u8]) -> Option<Vec<u8>> {
    let close = line.iter().rposition(|&b| b == b'}')?;
    let mut out = Vec::with_capacity(line.len() + 1);
    out.extend_from_slice(&line[..close]);
    out.push(b'+');
    out.extend_from_slice(&line[close..]);
    Some(out)
}

/// One direction of the relay.
struct Dir {
    framer: Framer,
    inbuf: Vec<u8>,
    start: usize,
    end: usize,
    out: Vec<u8>,
    out_pos: usize,
    needs_flush: bool,
    eof: bool,
    bytes: u64,
    /// The pipe while a long literal is spliced (see [`splice`]); `None` otherwise.
    pipe: Option<splice::Pipe>,
    /// Bytes of this direction's input that were spliced.
    spliced: u64,
    /// splice(2) failed as unsupported: this direction reads into buffers from now on.
    no_splice: bool,
}

impl Dir {
    fn new(leftover: Vec<u8>) -> Self {
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
        }
    }

    /// Returns emptied buffers to the pool.
    fn release(&mut self) {
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
    fn out_buf(&mut self) -> &mut Vec<u8> {
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
    fn pass_literal(&mut self, n: usize) {
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

    fn pending_input(&self) -> bool {
        self.start < self.end
    }

    /// Nothing waits to go out: neither buffered output nor spliced bytes in the pipe.
    fn out_empty(&self) -> bool {
        self.buffered_empty() && self.pipe_held() == 0
    }

    fn buffered_empty(&self) -> bool {
        self.out_pos == self.out.len()
    }

    fn pipe_held(&self) -> usize {
        self.pipe.as_ref().map_or(0, splice::Pipe::held)
    }

    /// Whether the next input should be spliced from `from` rather than read: only inside a
    /// literal (long enough to be worth a pipe, or one being spliced already), with nothing
    /// buffered, and only while the pipe can be had (when it cannot — out of file
    /// descriptors — the buffered path serves).
    fn splice_next(&mut self) -> bool {
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
    fn poll_splice_in(
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
    fn poll_splice_out(
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
    fn poll_write<W: AsyncWrite + Unpin>(
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

    /// Reads more input (only called when all earlier input is framed); Ready(Ok(n)) with
    /// the byte count (0 at EOF).
    fn poll_read<R: AsyncRead + Unpin>(
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

struct Relay {
    c2s: Dir,
    s2c: Dir,
    /// Tag of a client command whose synchronizing literal awaits the server's decision.
    awaiting: Option<Vec<u8>>,
    /// Tag of the client line being passed on in pieces (for a literal at its end).
    long_tag: Vec<u8>,
    /// Responses of the gateway's own, waiting for a boundary in the server's stream.
    local: Vec<u8>,
    /// Set when the session must end: the reason, and the BYE to send first.
    closing: Option<(End, &'static [u8])>,
    /// BYE has been queued; end once it is written.
    bye_queued: bool,
    /// The next client line continues the current command (after a literal, or IDLE's DONE).
    continuation: bool,
    /// The next server line continues the current response (after a literal).
    s2c_mid: bool,
    /// The next client line continues the current command after a literal.
    c2s_after_literal: bool,
    /// Bytes read from the upstream when the stall timer last fired (see [`Relay::stalled`]).
    s2c_mark: u64,
    counters: ByteCounters,
    last_client_activity: Instant,
    nonsync_literal_max: u64,
}

/// Relays between `client` and `upstream` until one side closes, the client idles out or the
/// gateway shuts down. `*_leftover` are bytes already read from each side and not yet relayed.
pub async fn run<C: AsyncRead + AsyncWrite + Unpin + 'static>(
    mut client: C,
    client_leftover: Vec<u8>,
    mut upstream: UpstreamStream,
    upstream_leftover: Vec<u8>,
    mut opts: Options,
) -> Stats {
    // Bytes read during login but not yet relayed are relayed traffic too.
    opts.counters.add_to_upstream(client_leftover.len() as u64);
    opts.counters.add_to_client(upstream_leftover.len() as u64);
    let mut relay = Relay {
        c2s: Dir::new(client_leftover),
        s2c: Dir::new(upstream_leftover),
        awaiting: None,
        long_tag: Vec::new(),
        local: Vec::new(),
        closing: None,
        bye_queued: false,
        continuation: false,
        s2c_mid: false,
        c2s_after_literal: false,
        s2c_mark: 0,
        counters: opts.counters,
        last_client_activity: Instant::now(),
        nonsync_literal_max: opts.nonsync_literal_max,
    };
    let idle = opts.idle_timeout;
    let mut sleep = Box::pin(tokio::time::sleep(idle));
    // Fires every upstream time-out; costs nothing per read (see `Relay::stalled`).
    let stall_every = opts.upstream_timeout;
    let mut stall = Box::pin(tokio::time::sleep(stall_every));
    let mut shutdown = Box::pin(async move { opts.shutdown.wait().await });
    let end = std::future::poll_fn(|cx| {
        if relay.closing.is_none() {
            if shutdown.as_mut().poll(cx).is_ready() {
                relay.closing = Some((End::Shutdown, b"* BYE Server shutting down.\r\n"));
            } else if sleep.as_mut().poll(cx).is_ready() {
                let deadline = relay.last_client_activity + idle;
                if Instant::now() >= deadline {
                    relay.closing =
                        Some((End::IdleTimeout, b"* BYE Disconnected for inactivity.\r\n"));
                } else {
                    sleep.as_mut().reset(deadline);
                    // Register the timer with the new deadline.
                    let _ = sleep.as_mut().poll(cx);
                }
            }
        }
        let polled = relay.poll(cx, &mut client, &mut upstream);
        // Checked after the relay has read all there was: a byte that arrived with the
        // timer's wake-up is counted first.
        if polled.is_pending() && relay.closing.is_none() && stall.as_mut().poll(cx).is_ready() {
            stall.as_mut().reset(Instant::now() + stall_every);
            let _ = stall.as_mut().poll(cx);
            if relay.stalled() {
                if !relay.client_mid_response() {
                    // The client has seen nothing of the response: drop the held part, and
                    // tell it why before closing.
                    relay.s2c.framer.take_held();
                    relay.closing = Some((
                        End::UpstreamStalled,
                        b"* BYE The mail provider's server stopped answering.\r\n",
                    ));
                    return relay.poll(cx, &mut client, &mut upstream);
                }
                return Poll::Ready(End::UpstreamStalled);
            }
        }
        polled
    })
    .await;
    // Best effort: a TLS client gets close_notify; a failed shutdown changes nothing.
    let _ = tokio::time::timeout(Duration::from_secs(5), client.shutdown()).await;
    Stats {
        from_client: relay.c2s.bytes,
        from_upstream: relay.s2c.bytes,
        spliced: relay.c2s.spliced + relay.s2c.spliced,
        end,
    }
}

/// The client's and the upstream's sockets when both are plain TCP: the case where literals
/// may be spliced (see [`splice`]). The client stream's type is generic (plain, TLS, or an
/// in-memory stream in tests), so it is asked by type.
fn plain_pair<'a, C: 'static>(
    client: &'a C,
    upstream: &'a UpstreamStream,
) -> Option<(&'a tokio::net::TcpStream, &'a tokio::net::TcpStream)> {
    let client = (client as &dyn std::any::Any).downcast_ref::<tokio::net::TcpStream>()?;
    match upstream {
        UpstreamStream::Plain(up) => Some((client, up)),
        UpstreamStream::Tls(_) => None,
    }
}

impl Relay {
    /// Whether the upstream has sent nothing since the stall timer last fired, one upstream
    /// time-out ago, while the relay waited for it in the middle of a response (nothing of it
    /// left to write to the client). Called when the timer fires, so a read costs nothing
    /// more: the mark is the byte count the relay keeps anyway. A server that takes long to
    /// *begin* a response (a big SEARCH, IDLE) is waited for as before.
    fn stalled(&mut self) -> bool {
        let d = &self.s2c;
        let waiting = d.out_empty() && !d.pending_input() && !d.eof;
        let mid = !d.framer.at_boundary() || self.s2c_mid;
        let still = std::mem::replace(&mut self.s2c_mark, d.bytes) == d.bytes;
        waiting && mid && still
    }

    /// Whether the client has been sent part of the current response (a line's start passed
    /// on in pieces, a literal, a line before a literal).
    fn client_mid_response(&self) -> bool {
        self.s2c.framer.passing() || self.s2c_mid
    }

    /// The client has sent part of a command and not its end: a line held in part, a literal
    /// under way, or the rest of a line after a literal.
    fn c2s_mid_command(&self) -> bool {
        !self.c2s.framer.at_boundary() || self.c2s_after_literal
    }

    /// Between two server responses, as the client sees them: only here may the gateway's
    /// own responses go in. (After a literal the framer is between frames, but the response
    /// goes on.)
    fn s2c_at_boundary(&self) -> bool {
        self.s2c.framer.at_boundary() && !self.s2c_mid
    }

    fn poll<C: AsyncRead + AsyncWrite + Unpin + 'static>(
        &mut self,
        cx: &mut Context<'_>,
        client: &mut C,
        upstream: &mut UpstreamStream,
    ) -> Poll<End> {
        loop {
            let mut progress = false;

            // Writes first: they free the buffers that gate the reads. Buffered output and
            // spliced bytes are never both pending in one direction (a splice starts only when
            // the buffer is empty, and nothing is buffered while the pipe holds bytes).
            let to_upstream = self.c2s.poll_write(cx, upstream);
            let to_client = self.s2c.poll_write(cx, client);
            let (spliced_up, spliced_client) = match plain_pair(&*client, &*upstream) {
                Some((c, u)) => (
                    self.c2s.poll_splice_out(cx, u),
                    self.s2c.poll_splice_out(cx, c),
                ),
                None => (Poll::Pending, Poll::Pending),
            };
            for (written, failed) in [
                (to_upstream, End::UpstreamError),
                (to_client, End::ClientError),
                (spliced_up, End::UpstreamError),
                (spliced_client, End::ClientError),
            ] {
                match written {
                    Poll::Ready(Ok(p)) => progress |= p,
                    Poll::Ready(Err(_)) => return Poll::Ready(failed),
                    Poll::Pending => {}
                }
            }

            if self.bye_queued {
                if self.s2c.out_empty() && !self.s2c.needs_flush {
                    return Poll::Ready(self.closing.map_or(End::Shutdown, |c| c.0));
                }
                if !progress {
                    return Poll::Pending;
                }
                continue;
            }

            // Server → client.
            if self.s2c.out_empty() {
                if self.s2c.pending_input() {
                    self.frame_s2c();
                    self.s2c.release();
                    progress = true;
                } else if self.s2c.eof {
                    if !self.s2c.needs_flush {
                        return Poll::Ready(End::UpstreamClosed);
                    }
                } else {
                    let read = match plain_pair(&*client, &*upstream) {
                        Some((_, u)) if self.s2c.splice_next() => self.s2c.poll_splice_in(cx, u),
                        _ => self.s2c.poll_read(cx, upstream),
                    };
                    match read {
                        Poll::Ready(Ok(n)) => {
                            self.counters.add_to_client(n);
                            progress = true;
                        }
                        Poll::Ready(Err(_)) => return Poll::Ready(End::UpstreamError),
                        Poll::Pending => {}
                    }
                }
            }

            // Our own responses and BYE go out only between two server responses.
            // (Not before spliced bytes still in the pipe have gone out.)
            if self.s2c_at_boundary() && !self.s2c.pending_input() && self.s2c.pipe_held() == 0 {
                if !self.local.is_empty() {
                    self.s2c.out_buf().append(&mut self.local);
                    progress = true;
                }
                if let Some((_, bye)) = self.closing {
                    self.s2c.out_buf().extend_from_slice(bye);
                    self.bye_queued = true;
                    progress = true;
                }
            }

            // Client → server: not while closing, nor while a literal awaits the server's word.
            if self.closing.is_none() && self.awaiting.is_none() && self.c2s.out_empty() {
                if self.c2s.pending_input() {
                    self.frame_c2s();
                    if !self.c2s.pending_input() && self.c2s_mid_command() {
                        quickack(&*client);
                    }
                    self.c2s.release();
                    progress = true;
                } else if self.c2s.eof {
                    if !self.c2s.needs_flush {
                        return Poll::Ready(End::ClientClosed);
                    }
                } else {
                    let read = match plain_pair(&*client, &*upstream) {
                        Some((c, _)) if self.c2s.splice_next() => {
                            let read = self.c2s.poll_splice_in(cx, c);
                            if matches!(read, Poll::Ready(Ok(n)) if n > 0) {
                                quickack(c);
                            }
                            read
                        }
                        _ => self.c2s.poll_read(cx, client),
                    };
                    match read {
                        Poll::Ready(Ok(n)) => {
                            self.counters.add_to_upstream(n);
                            self.last_client_activity = Instant::now();
                            progress = true;
                        }
                        Poll::Ready(Err(_)) => return Poll::Ready(End::ClientError),
                        Poll::Pending => {}
                    }
                }
            }

            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// Frames buffered client bytes into the upstream's output.
    fn frame_c2s(&mut self) {
        let d = &mut self.c2s;
        d.out_buf();
        while d.start < d.end {
            let Some((n, frame)) = d.framer.next(&d.inbuf[d.start..d.end]) else {
                d.start = d.end;
                break;
            };
            d.start += n;
            match frame {
                Frame::Line { bytes, literal } => {
                    self.c2s_after_literal = literal.is_some();
                    let (tag, name) = command_name(bytes);
                    if !std::mem::replace(&mut self.continuation, literal.is_some()) {
                        let label = metrics::imap_command_label(name, subcommand(bytes));
                        metrics::imap_command(label);
                        // IDLE's DONE line and AUTHENTICATE's responses are not commands.
                        self.continuation |= label == "IDLE" || label == "AUTHENTICATE";
                    }
                    if literal.is_none() {
                        if let Some(reply) = local_answer(tag, name) {
                            self.local.extend_from_slice(&reply);
                            continue;
                        }
                    }
                    match literal {
                        Some(l) if l.sync && l.length <= self.nonsync_literal_max => {
                            if let Some(line) = nonsync_announcement(bytes) {
                                // The gateway gives the `+`; the server needs none.
                                d.out.extend_from_slice(&line);
                                self.local
                                    .extend_from_slice(b"+ Ready for literal data\r\n");
                                continue;
                            }
                            d.out.extend_from_slice(bytes);
                            self.awaiting = Some(tag.to_vec());
                            return;
                        }
                        Some(l) if l.sync => {
                            d.out.extend_from_slice(bytes);
                            self.awaiting = Some(tag.to_vec());
                            return;
                        }
                        _ => d.out.extend_from_slice(bytes),
                    }
                }
                Frame::LongLine { bytes, first, end } => {
                    if first {
                        let (tag, name) = command_name(bytes);
                        self.long_tag = tag.to_vec();
                        if !self.continuation {
                            metrics::imap_command(metrics::imap_command_label(
                                name,
                                subcommand(bytes),
                            ));
                        }
                    }
                    if let Some(lit) = end {
                        self.continuation = lit.is_some();
                        self.c2s_after_literal = lit.is_some();
                    }
                    d.out.extend_from_slice(bytes);
                    if let Some(Some(l)) = end {
                        if l.sync {
                            self.awaiting = Some(std::mem::take(&mut self.long_tag));
                            return;
                        }
                    }
                }
                Frame::Literal { .. } => d.pass_literal(n),
            }
        }
    }

    /// Frames buffered server bytes into the client's output.
    fn frame_s2c(&mut self) {
        let d = &mut self.s2c;
        d.out_buf();
        while d.start < d.end {
            let Some((n, frame)) = d.framer.next(&d.inbuf[d.start..d.end]) else {
                d.start = d.end;
                break;
            };
            d.start += n;
            match frame {
                Frame::Line { bytes, literal } => {
                    // After a literal the line goes on: its bytes are data, not a response.
                    let starts_response = !std::mem::replace(&mut self.s2c_mid, literal.is_some());
                    if let Some(tag) = &self.awaiting {
                        if bytes.first() == Some(&b'+') {
                            // The server wants the literal: the client may send it now.
                            self.awaiting = None;
                        } else if bytes.starts_with(tag) && bytes.get(tag.len()) == Some(&b' ') {
                            // The server refused the literal; the client will not send it.
                            self.c2s.framer.cancel_literal();
                            self.awaiting = None;
                        }
                    }
                    match filter_capability_line(bytes).filter(|_| starts_response) {
                        Some(rewritten) => d.out.extend_from_slice(&rewritten),
                        None => d.out.extend_from_slice(bytes),
                    }
                }
                Frame::Literal { .. } => d.pass_literal(n),
                Frame::LongLine { bytes, end, .. } => {
                    if let Some(literal) = end {
                        self.s2c_mid = literal.is_some();
                    }
                    d.out.extend_from_slice(bytes);
                }
            }
            // Stop at a boundary so that our own responses can be inserted there.
            if !self.local.is_empty() && d.framer.at_boundary() && !self.s2c_mid {
                break;
            }
        }
    }
}

/// Tag and command name of a client line (the name upper-cased is the caller's job).
pub fn command_name(line: &[u8]) -> (&[u8], &[u8]) {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.splitn(3, |&b| b == b' ');
    let tag = parts.next().unwrap_or_default();
    let name = parts.next().unwrap_or_default();
    (tag, name)
}

/// The word after the command name (for `UID FETCH` and friends).
fn subcommand(line: &[u8]) -> &[u8] {
    let mut parts = line.splitn(4, |&b| b == b' ' || b == b'\r' || b == b'\n');
    parts.nth(2).unwrap_or_default()
}

/// The gateway's own answer to a command it must not forward, if `name` is one.
fn local_answer(tag: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let text: &[u8] = if name.eq_ignore_ascii_case(b"STARTTLS") {
        b" BAD STARTTLS is only possible before login.\r\n"
    } else if name.eq_ignore_ascii_case(b"COMPRESS") {
        b" NO [CANNOT] COMPRESS is not supported by this gateway.\r\n"
    } else {
        return None;
    };
    let mut reply = tag.to_vec();
    reply.extend_from_slice(text);
    Some(reply)
}

/// Whether a capability must not reach the client.
pub fn hidden_capability(cap: &str) -> bool {
    let upper = cap.to_ascii_uppercase();
    upper == "STARTTLS"
        || upper == "LOGINDISABLED"
        || upper.starts_with("AUTH=")
        || upper.starts_with("COMPRESS=")
}

/// The capability list minus what the gateway hides, space-separated.
pub fn filter_capabilities<'a>(caps: impl IntoIterator<Item = &'a str>) -> String {
    caps.into_iter()
        .filter(|c| !hidden_capability(c))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Rewrites `* CAPABILITY …` lines and the `[CAPABILITY …]` code of a status response
/// (`* OK [CAPABILITY …]`, `tag OK [CAPABILITY …]`); `None` for any other line. Only the code
/// right after the status word counts: the same words inside message data (a subject in an
/// ENVELOPE) are the message's, never touched. `line` must start a response.
fn filter_capability_line(line: &[u8]) -> Option<Vec<u8>> {
    const UNTAGGED: &[u8] = b"* CAPABILITY ";
    const CODE: &[u8] = b"[CAPABILITY ";
    if line.len() > UNTAGGED.len() && line[..UNTAGGED.len()].eq_ignore_ascii_case(UNTAGGED) {
        let text = std::str::from_utf8(line).ok()?;
        let body = text[UNTAGGED.len()..].trim_end_matches(['\r', '\n']);
        let ending = &text[UNTAGGED.len() + body.len()..];
        return Some(
            format!(
                "* CAPABILITY {}{ending}",
                filter_capabilities(body.split(' '))
            )
            .into_bytes(),
        );
    }
    let status_at = memchr::memchr(b' ', line)? + 1;
    let status_len = memchr::memchr(b' ', &line[status_at..])?;
    let status = &line[status_at..status_at + status_len];
    if !STATUS_WORDS.iter().any(|w| status.eq_ignore_ascii_case(w)) {
        return None;
    }
    let code_at = status_at + status_len + 1;
    let code = line.get(code_at..code_at + CODE.len())?;
    if !code.eq_ignore_ascii_case(CODE) {
        return None;
    }
    let text = std::str::from_utf8(line).ok()?;
    let list_start = code_at + CODE.len();
    let list_end = list_start + text[list_start..].find(']')?;
    Some(
        format!(
            "{}{}{}",
            &text[..list_start],
            filter_capabilities(text[list_start..list_end].split(' ')),
            &text[list_end..]
        )
        .into_bytes(),
    )
}

/// The words that make a line a status response (RFC 9051 7.1), which may carry a code.
const STATUS_WORDS: [&[u8]; 5] = [b"OK", b"NO", b"BAD", b"PREAUTH", b"BYE"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_lines_are_filtered() {
        let l = filter_capability_line(
            b"* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN LOGINDISABLED COMPRESS=DEFLATE IDLE\r\n",
        )
        .unwrap();
        assert_eq!(l, b"* CAPABILITY IMAP4rev1 IDLE\r\n");
        let l =
            filter_capability_line(b"a1 OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 MOVE] Logged in\r\n")
                .unwrap();
        assert_eq!(l, b"a1 OK [CAPABILITY IMAP4rev1 MOVE] Logged in\r\n");
        assert_eq!(filter_capability_line(b"* 1 FETCH (FLAGS ())\r\n"), None);
        // Message data that looks like a code is not one.
        assert_eq!(
            filter_capability_line(
                b"* 1 FETCH (ENVELOPE (NIL \"[CAPABILITY AUTH=PLAIN x]\" NIL))\r\n"
            ),
            None
        );
        assert_eq!(
            filter_capability_line(b"* OK see [CAPABILITY AUTH=PLAIN x]\r\n"),
            None
        );
    }

    #[test]
    fn sync_literals_become_nonsync_when_the_server_allows() {
        assert_eq!(
            nonsync_announcement(b"a1 APPEND INBOX (\\Seen) {310}\r\n").unwrap(),
            b"a1 APPEND INBOX (\\Seen) {310+}\r\n"
        );
        assert_eq!(
            nonsync_announcement(b"a1 APPEND INBOX ~{5}\n").unwrap(),
            b"a1 APPEND INBOX ~{5+}\n"
        );
        assert_eq!(
            nonsync_limit(["IMAP4rev1", "literal+"]),
            NONSYNC_CONVERT_MAX
        );
        assert_eq!(nonsync_limit(["IMAP4rev1", "LITERAL-"]), 4096);
        assert_eq!(nonsync_limit(["IMAP4rev1", "IDLE"]), 0);
    }

    #[test]
    fn local_answers() {
        assert_eq!(
            local_answer(b"a1", b"starttls").unwrap(),
            b"a1 BAD STARTTLS is only possible before login.\r\n"
        );
        assert!(local_answer(b"a1", b"COMPRESS").is_some());
        assert!(local_answer(b"a1", b"NOOP").is_none());
        assert_eq!(
            command_name(b"a1 UID FETCH 1 x\r\n"),
            (&b"a1"[..], &b"UID"[..])
        );
    }
}
