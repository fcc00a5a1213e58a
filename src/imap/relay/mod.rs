//! After login: the relay between the client and the upstream IMAP server.
//!
//! Everything passes byte for byte except what the gateway changes on purpose:
//! - what the session's rewrite rules change (see [`crate::imap::rewrite`]): each held command
//!   and response line is shown to them, and they pass it, replace it or answer it; they may
//!   also have a short literal collected with the rest of its command or response and the
//!   whole shown to them again (`Hold`, for mailbox names sent as literals), or see the first
//!   bytes of a command's literal before it goes on or is swallowed (`Peek`, for an APPEND's
//!   message headers). Either way the client's `+` for a synchronizing literal then comes from
//!   the gateway, and what is kept back is bounded (64 KiB a direction, freed when done);
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
//! server has answered, and then continues in the state the server chose. A peeked literal
//! whose `+` the gateway gave waits the same way when it must go on synchronizing (the server's
//! `+` is then not passed on, and after a refusal the client's data is discarded).
//!
//! The parts: `pool` (the buffers), `splice` (long literals socket to socket), `dir` (one
//! direction's buffers and I/O), `forward` (framing each direction and applying the rules),
//! `hold` and `peek` (what the rules have kept back), `state` (what the relay remembers of the
//! conversation between frames), and here the loop that drives both directions and the
//! time-outs.

mod aside;
mod dir;
mod forward;
mod hold;
mod peek;
mod pool;
mod splice;
mod state;
#[cfg(test)]
mod tests;

use crate::imap::rewrite::{Ending, Rules};
use crate::metrics::ByteCounters;
use crate::upstream::UpstreamStream;
use dir::Dir;
use state::State;
use std::future::Future;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

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
    /// A rule answered the client's last command and ended the relay
    /// ([`Verdict::End`](crate::imap::rewrite::Verdict::End)): the upstream connection is
    /// handed back to the caller, open.
    HandedBack,
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
            End::HandedBack => "client logged out",
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
    /// What the relay changes in the held lines it passes on.
    pub rules: Rules,
}

struct Relay {
    c2s: Dir,
    s2c: Dir,
    /// What the relay knows of the conversation (see [`state`]).
    st: State,
    /// Set when the session must end: the reason, and the BYE to send first.
    closing: Option<(End, &'static [u8])>,
    /// BYE has been queued; end once it is written.
    bye_queued: bool,
    /// Bytes read from the upstream when the stall timer last fired (see [`Relay::stalled`]).
    s2c_mark: u64,
    counters: ByteCounters,
    last_client_activity: Instant,
}

/// Relays between `client` and `upstream` until one side closes, the client idles out or the
/// gateway shuts down. `*_leftover` are bytes already read from each side and not yet relayed.
/// The upstream connection comes back when a rule ended the relay ([`End::HandedBack`]):
/// every byte read from it has then gone to the client, and nothing the client sent after
/// the ending command went to it. With it comes what the rules' track saw of the end.
pub async fn run<C: AsyncRead + AsyncWrite + Unpin + 'static>(
    mut client: C,
    client_leftover: Vec<u8>,
    mut upstream: UpstreamStream,
    upstream_leftover: Vec<u8>,
    mut opts: Options,
) -> (Stats, Option<UpstreamStream>, Ending) {
    // Bytes read during login but not yet relayed are relayed traffic too.
    opts.counters.add_to_upstream(client_leftover.len() as u64);
    opts.counters.add_to_client(upstream_leftover.len() as u64);
    let mut relay = Relay {
        c2s: Dir::new(client_leftover),
        s2c: Dir::new(upstream_leftover),
        st: State::new(opts.rules),
        closing: None,
        bye_queued: false,
        s2c_mark: 0,
        counters: opts.counters,
        last_client_activity: Instant::now(),
    };
    let idle = opts.idle_timeout;
    let mut sleep = Box::pin(tokio::time::sleep(idle));
    // Fires every upstream time-out; costs nothing per read (see `Relay::stalled`).
    let stall_every = opts.upstream_timeout;
    let mut stall = Box::pin(tokio::time::sleep(stall_every));
    let signal = opts.shutdown.clone();
    let mut shutdown = Box::pin(async move { opts.shutdown.wait().await });
    // The waker the shutdown signal and the timers were last polled with. They keep it, so
    // while it stays the task's they are polled again only once they may have fired: a poll
    // costs a lock (the signal's waiter list, shared by every session) or the timer's state,
    // on every read of every session.
    let mut registered: Option<std::task::Waker> = None;
    let end = std::future::poll_fn(|cx| {
        let anew = !registered.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if anew {
            registered = Some(cx.waker().clone());
        }
        if relay.closing.is_none() {
            if (anew || signal.may_have_fired()) && shutdown.as_mut().poll(cx).is_ready() {
                relay.closing = Some((End::Shutdown, b"* BYE Server shutting down.\r\n"));
            } else if (anew || sleep.is_elapsed()) && sleep.as_mut().poll(cx).is_ready() {
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
        // Also while the gateway's last words (a BYE, a LOGOUT's answer) wait for the end of
        // the server's response: a server that stopped in the middle of one must not hold
        // the session open. Once they are queued only the client is written to.
        if polled.is_pending()
            && !relay.bye_queued
            && (anew || stall.is_elapsed())
            && stall.as_mut().poll(cx).is_ready()
        {
            stall.as_mut().reset(Instant::now() + stall_every);
            let _ = stall.as_mut().poll(cx);
            if relay.stalled() {
                if !relay.client_mid_response() {
                    // The client has seen nothing of the response: drop the held part, and
                    // tell it why before closing.
                    relay.drop_response();
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
    let stats = Stats {
        from_client: relay.c2s.bytes,
        from_upstream: relay.s2c.bytes,
        spliced: relay.c2s.spliced + relay.s2c.spliced,
        end,
    };
    let ending = relay.st.rules.ending();
    (stats, (end == End::HandedBack).then_some(upstream), ending)
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
        let mid = !d.framer.at_boundary() || self.st.s2c_mid;
        let still = std::mem::replace(&mut self.s2c_mark, d.bytes) == d.bytes;
        waiting && mid && still
    }

    /// Whether the client has been sent part of the current response (a line's start passed
    /// on in pieces, a literal, a line before a literal). Of a response held for the rules it
    /// has seen nothing, unless the hold began after such a part.
    fn client_mid_response(&self) -> bool {
        match &self.st.s2c_hold {
            Some(held) => !held.starts,
            None => self.s2c.framer.passing() || self.st.s2c_mid,
        }
    }

    /// Forgets the part of the current response the client has not seen (before a BYE).
    fn drop_response(&mut self) {
        self.s2c.framer.take_held();
        self.s2c.framer.cancel_literal();
        self.st.s2c_hold = None;
        self.st.s2c_mid = false;
    }

    /// The client has sent part of a command and not its end: a line held in part, a literal
    /// under way, or the rest of a line after a literal.
    fn c2s_mid_command(&self) -> bool {
        !self.c2s.framer.at_boundary() || self.st.c2s_after_literal
    }

    /// Between two server responses, as the client sees them: only here may the gateway's
    /// own responses go in. (After a literal the framer is between frames, but the response
    /// goes on; a response held for the rules is not over either.)
    fn s2c_at_boundary(&self) -> bool {
        self.s2c.framer.at_boundary() && !self.st.s2c_mid && self.st.s2c_hold.is_none()
    }

    fn poll<C: AsyncRead + AsyncWrite + Unpin + 'static>(
        &mut self,
        cx: &mut Context<'_>,
        client: &mut C,
        upstream: &mut UpstreamStream,
    ) -> Poll<End> {
        self.c2s.waiting = false;
        self.s2c.waiting = false;
        loop {
            match self.step(cx, client, upstream) {
                Ok(true) => {}
                Ok(false) => return Poll::Pending,
                Err(end) => return Poll::Ready(end),
            }
        }
    }

    /// One round of writes and reads in both directions: `Ok(true)` if anything moved,
    /// `Err` when the relay is over.
    fn step<C: AsyncRead + AsyncWrite + Unpin + 'static>(
        &mut self,
        cx: &mut Context<'_>,
        client: &mut C,
        upstream: &mut UpstreamStream,
    ) -> Result<bool, End> {
        let mut progress = self.write(cx, client, upstream)?;
        if self.bye_queued {
            if self.s2c.out_empty() && !self.s2c.needs_flush {
                return Err(self.closing.map_or(End::Shutdown, |c| c.0));
            }
            return Ok(progress);
        }
        progress |= self.server_to_client(cx, client, upstream)?;
        progress |= self.insert_local();
        progress |= self.client_to_server(cx, client, upstream)?;
        Ok(progress)
    }

    /// Writes what each direction has for the other side; `Ok(true)` on progress, `Err` when a
    /// side failed. Writes come first: they free the buffers that gate the reads. Buffered
    /// output and spliced bytes are never both pending in one direction (a splice starts only
    /// when the buffer is empty, and nothing is buffered while the pipe holds bytes).
    fn write<C: AsyncRead + AsyncWrite + Unpin + 'static>(
        &mut self,
        cx: &mut Context<'_>,
        client: &mut C,
        upstream: &mut UpstreamStream,
    ) -> Result<bool, End> {
        let to_upstream = self.c2s.poll_write(cx, upstream);
        let to_client = self.s2c.poll_write(cx, client);
        let (spliced_up, spliced_client) = match plain_pair(&*client, &*upstream) {
            Some((c, u)) => (
                self.c2s.poll_splice_out(cx, u),
                self.s2c.poll_splice_out(cx, c),
            ),
            None => (Poll::Pending, Poll::Pending),
        };
        let mut progress = false;
        for (written, failed) in [
            (to_upstream, End::UpstreamError),
            (to_client, End::ClientError),
            (spliced_up, End::UpstreamError),
            (spliced_client, End::ClientError),
        ] {
            match written {
                Poll::Ready(Ok(p)) => progress |= p,
                Poll::Ready(Err(_)) => return Err(failed),
                Poll::Pending => {}
            }
        }
        Ok(progress)
    }

    /// Server → client: frames what was read, or reads more once the client has been sent
    /// everything before.
    fn server_to_client<C: AsyncRead + AsyncWrite + Unpin + 'static>(
        &mut self,
        cx: &mut Context<'_>,
        client: &mut C,
        upstream: &mut UpstreamStream,
    ) -> Result<bool, End> {
        if !self.s2c.out_empty() {
            return Ok(false);
        }
        if self.s2c.pending_input() {
            self.frame_s2c();
            self.s2c.release();
            return Ok(true);
        }
        if self.s2c.eof {
            return match self.s2c.needs_flush {
                false => Err(End::UpstreamClosed),
                true => Ok(false),
            };
        }
        let held = self.st.s2c_hold.is_some();
        let read = self
            .s2c
            .read_once(|d| match plain_pair(&*client, &*upstream) {
                Some((_, u)) if !held && d.splice_next() => d.poll_splice_in(cx, u),
                _ => d.poll_read(cx, upstream),
            });
        match read {
            Poll::Ready(Ok(n)) => {
                self.counters.add_to_client(n);
                Ok(true)
            }
            Poll::Ready(Err(_)) => Err(End::UpstreamError),
            Poll::Pending => Ok(false),
        }
    }

    /// Queues the gateway's own responses and the BYE, only between two server responses
    /// (and not before spliced bytes still in the pipe have gone out); `true` if it did.
    fn insert_local(&mut self) -> bool {
        if !self.s2c_at_boundary() || self.s2c.pending_input() || self.s2c.pipe_held() > 0 {
            return false;
        }
        let mut progress = false;
        if !self.st.local.is_empty() {
            self.s2c.out_buf().append(&mut self.st.local);
            progress = true;
        }
        if let Some((_, bye)) = self.closing {
            self.s2c.out_buf().extend_from_slice(bye);
            self.bye_queued = true;
            progress = true;
        }
        progress
    }

    /// Client → server, as [`Relay::server_to_client`]; not while closing, nor while a literal
    /// awaits the server's word.
    fn client_to_server<C: AsyncRead + AsyncWrite + Unpin + 'static>(
        &mut self,
        cx: &mut Context<'_>,
        client: &mut C,
        upstream: &mut UpstreamStream,
    ) -> Result<bool, End> {
        if self.closing.is_some() || self.st.awaiting.is_some() || !self.c2s.out_empty() {
            return Ok(false);
        }
        if self.c2s.pending_input() {
            self.frame_c2s();
            if self.st.ending {
                // The rule's answer is the last thing the client gets.
                self.closing = Some((End::HandedBack, b""));
                return Ok(true);
            }
            if !self.c2s.pending_input() && self.c2s_mid_command() {
                quickack(&*client);
            }
            self.c2s.release();
            return Ok(true);
        }
        if self.c2s.eof {
            return match self.c2s.needs_flush {
                false => Err(End::ClientClosed),
                true => Ok(false),
            };
        }
        let aside = self.st.c2s_aside.is_some();
        let read = self
            .c2s
            .read_once(|d| match plain_pair(&*client, &*upstream) {
                // Never while the command is kept aside: its literal is the relay's to read.
                Some((c, _)) if !aside && d.splice_next() => {
                    let read = d.poll_splice_in(cx, c);
                    if matches!(read, Poll::Ready(Ok(n)) if n > 0) {
                        quickack(c);
                    }
                    read
                }
                _ => d.poll_read(cx, client),
            });
        match read {
            Poll::Ready(Ok(n)) => {
                self.counters.add_to_upstream(n);
                self.last_client_activity = Instant::now();
                Ok(true)
            }
            Poll::Ready(Err(_)) => Err(End::ClientError),
            Poll::Pending => Ok(false),
        }
    }
}
