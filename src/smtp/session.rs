//! The SMTP server the client talks to: the command loop and its I/O. What each command may
//! do in which state is [`super::state`]; AUTH is [`super::auth`], MAIL/RCPT
//! [`super::envelope`], DATA/BDAT [`super::body`].
//!
//! Flow: greeting → EHLO → AUTH PLAIN|LOGIN with the local password → MAIL FROM (the account's
//! address or an alias; this is when the upstream connection is opened or reused) → RCPT TO
//! (each passed upstream, its reply passed back) → DATA or BDAT (the body streams upstream as
//! it arrives) → the upstream's verdict on the message is the client's reply.
//!
//! Truthfulness rules: `250` after the data only when the upstream said 2xx; an upstream that
//! times out, drops the connection or answers nonsense gives `451 4.4.x` (the client keeps the
//! message and retries); an upstream 4xx/5xx is passed back with its own code and words (a
//! `421` becomes `451`, because a 421 would tell the client that *our* connection closes). A
//! message that is aborted (client gone mid-DATA, size limit) never gets its end marker
//! upstream, so the upstream discards it.
//!
//! Bounds: 1000-octet command lines, 100 recipients, the configured message size, a 5-minute
//! silence limit for commands and for data once authenticated (before AUTH succeeds, the
//! pre-login silence time-out and whole-phase deadline instead, and a newer client may take
//! this one's place, see [`crate::preauth`]), 20 protocol errors (`max_bad_commands` before
//! AUTH), the configured number of failed AUTH attempts. Memory is a fixed read buffer and two
//! chunk buffers whatever the message size — plus, with `sent_copy = "gateway"`, the copy of the
//! message to file in Sent (at most 32 MiB, within a process-wide budget; see
//! `smtp::sent_copy`). Replies are collected and sent when the client's pipelined input is used up
//! (RFC 2920), so a pipelining client gets them in one write.

use super::command::{self, Verb};
use super::limits::{COMMAND_TIMEOUT, MAX_ENDLESS_LINE, MAX_ERRORS, MAX_LINE, READ_BUF};
use super::state::{Reset, State, AUTH_REQUIRED};
use super::submit::Upstream;
use crate::config::Account;
use crate::preauth::{self, Limit};
use crate::session::NoTls;
use crate::session::Session;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::info;
use zeroize::Zeroizing;

/// Why reading from the client stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gone {
    Closed,
    Timeout,
    Shutdown,
    /// A command line longer than [`MAX_ENDLESS_LINE`] without a line end.
    EndlessLine,
    /// `preauth_deadline_secs` passed before AUTH succeeded.
    Deadline,
    /// A newer client took this one's place among those not yet authenticated.
    Evicted,
}

impl Gone {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Gone::Closed => "client closed",
            Gone::Timeout => "client time-out",
            Gone::Shutdown => "shutdown",
            Gone::EndlessLine => "line too long",
            Gone::Deadline => "pre-auth deadline",
            Gone::Evicted => "connection queue full (a newer client took this one's place)",
        }
    }
}

/// One line from the client.
pub(super) enum Input {
    Line(Zeroizing<Vec<u8>>),
    TooLong,
    Gone(Gone),
}

/// One SMTP conversation: the client's stream and buffers, where the session stands, and the
/// upstream connection (kept from one transaction to the next).
pub(super) struct Smtp<'s, S> {
    stream: S,
    pub(super) session: &'s mut Session,
    pub(super) buf: Zeroizing<Vec<u8>>,
    pub(super) start: usize,
    pub(super) end: usize,
    /// Dropping the rest of an over-long line.
    discarding: bool,
    out: Vec<u8>,
    /// Message bytes (unstuffed) on their way upstream.
    pub(super) msg: Vec<u8>,
    pub(super) state: State<Arc<Account>>,
    pub(super) auth_failures: u32,
    errors: u32,
    pub(super) upstream: Option<Upstream>,
    /// Messages the provider accepted.
    pub(super) accepted: u64,
    /// The successful AUTH is not counted yet: it is counted once, with the provider's
    /// verdict, when the provider is first contacted (see [`Smtp::count_login`]).
    pub(super) login_uncounted: bool,
}

/// How one command left the session.
pub(super) enum Next {
    Continue,
    Close(&'static str),
    /// `220` to STARTTLS was sent: the TLS handshake comes next.
    StartTls,
}

/// How `Smtp::run` ended: closed (and why), or handing the stream to the TLS handshake.
enum Ended {
    Closed(&'static str),
    StartTls,
}

/// Why the plaintext part of a session ended when it continues in TLS.
const STARTTLS: &str = "starttls";

/// Serves one SMTP client connection to its end (see [`crate::session::serve`]).
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin + 'static>(stream: S, session: Session) {
    let smtp = SmtpProtocol {
        accepted: 0,
        why: "client closed",
    };
    crate::session::serve(stream, session, smtp).await
}

/// SMTP's part of the shared session wrapper: what the closing log line says.
struct SmtpProtocol {
    /// Messages the provider accepted in this session.
    accepted: u64,
    /// Why the session ended.
    why: &'static str,
}

impl crate::session::Protocol for SmtpProtocol {
    const NAME: &'static str = "smtp";

    async fn converse<S: AsyncRead + AsyncWrite + Unpin + 'static>(
        &mut self,
        stream: S,
        session: &mut Session,
        greet: bool,
        _: Instant,
    ) -> Option<S> {
        let (why, starttls) = converse(stream, session, greet, &mut self.accepted).await;
        self.why = why;
        starttls
    }

    fn no_tls(&mut self, why: NoTls) {
        self.why = match why {
            NoTls::NoCertificate => "no [server.tls] certificate for a TLS connection",
            NoTls::Handshake(e) => {
                info!(error = %e, "TLS handshake failed");
                "TLS handshake failed"
            }
        };
    }

    fn ended(self, session: &Session, started: Instant) {
        info!(
            duration_ms = started.elapsed().as_millis() as u64,
            messages = self.accepted,
            tls = session.tls,
            "session ended: {}",
            self.why
        );
    }
}

/// One SMTP conversation on `stream` (greeted unless it continues after STARTTLS). Returns why
/// it ended and, after STARTTLS, the stream for the handshake.
pub(super) async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    session: &mut Session,
    greet: bool,
    accepted: &mut u64,
) -> (&'static str, Option<S>) {
    let mut s = Smtp {
        stream,
        session,
        buf: Zeroizing::new(vec![0; READ_BUF]),
        start: 0,
        end: 0,
        discarding: false,
        out: Vec::with_capacity(1024),
        msg: Vec::with_capacity(READ_BUF + 16),
        state: State::Greeted,
        auth_failures: 0,
        errors: 0,
        upstream: None,
        accepted: 0,
        login_uncounted: false,
    };
    let ended = s.run(greet).await;
    *accepted += s.accepted;
    // Logged in and never needed the provider: the login is what the client saw, `ok`.
    s.count_login("ok");
    let why = match ended {
        // Nothing else is open yet: STARTTLS is refused inside a transaction.
        Ok(Ended::StartTls) => return (STARTTLS, Some(s.stream)),
        Ok(Ended::Closed(why)) => why,
        Err(_) => "client connection error",
    };
    if let Some(up) = s.upstream.take() {
        if s.state.mid_body() {
            // Mid-data: dropping the connection without the end marker aborts upstream.
            drop(up);
        } else {
            up.quit().await;
        }
    }
    let _ = s.stream.shutdown().await;
    (why, None)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Smtp<'_, S> {
    /// Queues one reply line (CRLF added); replies go out when the client's input is used up.
    pub(super) fn reply(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    pub(super) async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.stream.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Reads more client bytes into the buffer (after sending pending replies). `timeout` is
    /// the silence allowed once authenticated; before, the pre-login limits apply.
    pub(super) async fn fill(
        &mut self,
        timeout: Duration,
        watch_shutdown: bool,
    ) -> io::Result<Result<(), Gone>> {
        self.flush().await?;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let (timeout, limit) = if self.state.account().is_some() {
            (timeout, Limit::Silence)
        } else {
            let server = &self.session.config.server;
            preauth::wait(server.preauth_timeout, self.session.preauth_deadline())
        };
        let shutdown = &mut self.session.shutdown;
        let ticket = &self.session.ticket;
        let read = self.stream.read(&mut self.buf[self.end..]);
        let r = tokio::select! {
            r = tokio::time::timeout(timeout, read) => r,
            _ = shutdown.wait(), if watch_shutdown => return Ok(Err(Gone::Shutdown)),
            // Only a session not yet authenticated is ever told.
            _ = preauth::evicted(ticket) => return Ok(Err(Gone::Evicted)),
        };
        match r {
            Err(_) if limit == Limit::Deadline => Ok(Err(Gone::Deadline)),
            Err(_) => Ok(Err(Gone::Timeout)),
            Ok(Err(e)) => Err(e),
            Ok(Ok(0)) => Ok(Err(Gone::Closed)),
            Ok(Ok(n)) => {
                self.end += n;
                Ok(Ok(()))
            }
        }
    }

    /// The next command line (CRLF included), or why there is none.
    pub(super) async fn read_line(&mut self) -> io::Result<Input> {
        // Bytes of an over-long line dropped in this call (the line is still open).
        let mut dropped = 0usize;
        loop {
            if let Some(k) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let line = &self.buf[self.start..=self.start + k];
                self.start += k + 1;
                if self.discarding || line.len() > MAX_LINE {
                    self.discarding = false;
                    return Ok(Input::TooLong);
                }
                return Ok(Input::Line(Zeroizing::new(line.to_vec())));
            }
            if self.discarding || self.end - self.start > MAX_LINE {
                self.discarding = true;
                dropped += self.end - self.start;
                self.start = self.end;
                if dropped > MAX_ENDLESS_LINE {
                    return Ok(Input::Gone(Gone::EndlessLine));
                }
            }
            if let Err(gone) = self.fill(COMMAND_TIMEOUT, true).await? {
                return Ok(Input::Gone(gone));
            }
        }
    }

    async fn run(&mut self, greet: bool) -> io::Result<Ended> {
        if greet {
            self.reply("220 mailgate ESMTP ready");
        }
        loop {
            let line = match self.read_line().await? {
                Input::Line(line) => line,
                Input::TooLong => {
                    self.reply("500 5.5.2 Line too long (at most 1000 octets)");
                    if let Next::Close(why) = self.error() {
                        return self.close(why).await.map(Ended::Closed);
                    }
                    continue;
                }
                Input::Gone(gone) => return self.gone(gone).await.map(Ended::Closed),
            };
            let next = match command::parse_command(&line) {
                Err(_) => {
                    self.reply("500 5.5.2 Syntax error, command unrecognized");
                    self.error()
                }
                Ok(cmd) => {
                    let args = cmd.args.to_owned();
                    self.dispatch(cmd.verb, &args).await?
                }
            };
            match next {
                Next::Continue => {}
                Next::Close(why) => return self.close(why).await.map(Ended::Closed),
                Next::StartTls => {
                    self.flush().await?;
                    return Ok(Ended::StartTls);
                }
            }
        }
    }

    /// Counts a protocol error; too many end the session (`max_bad_commands` of them before
    /// AUTH has succeeded, as Postfix's `smtpd_hard_error_limit` with a lower bar for strangers).
    pub(super) fn error(&mut self) -> Next {
        self.errors += 1;
        let max = if self.state.account().is_some() {
            MAX_ERRORS
        } else {
            self.session.config.server.max_bad_commands.min(MAX_ERRORS)
        };
        if self.errors >= max {
            self.reply("421 4.7.0 Too many errors; closing the connection");
            return Next::Close("too many errors");
        }
        Next::Continue
    }

    async fn close(&mut self, why: &'static str) -> io::Result<&'static str> {
        self.flush().await?;
        Ok(why)
    }

    pub(super) async fn gone(&mut self, gone: Gone) -> io::Result<&'static str> {
        match gone {
            Gone::Closed => {}
            Gone::Timeout => {
                self.reply("421 4.4.2 Timeout waiting for input; closing the connection")
            }
            Gone::Shutdown => self.reply("421 4.3.2 Service shutting down; try again later"),
            Gone::EndlessLine => {
                self.reply("421 4.7.0 Line too long without a line end; closing the connection")
            }
            Gone::Deadline => self
                .reply("421 4.7.0 Time limit for authentication reached; closing the connection"),
            Gone::Evicted => self.reply(
                "421 4.7.0 Connection queue full: too many clients are logging in, try again later",
            ),
        }
        // The client may be gone already; the session ends either way.
        let _ = self.flush().await;
        Ok(gone.as_str())
    }

    async fn dispatch(&mut self, verb: Verb, args: &str) -> io::Result<Next> {
        let authed = self.state.account().is_some();
        match verb {
            Verb::Ehlo | Verb::Helo => return Ok(self.ehlo(verb, args).await),
            Verb::Noop => self.reply("250 2.0.0 Ok"),
            Verb::Rset => {
                self.reset().await;
                self.reply("250 2.0.0 Ok");
            }
            Verb::Quit => {
                self.reply("221 2.0.0 Bye");
                return Ok(Next::Close("quit"));
            }
            Verb::Vrfy => self.reply("252 2.5.0 Cannot VRFY user, but will accept the message and attempt delivery"),
            Verb::Help => self.reply("214 2.0.0 mailgate: EHLO, AUTH PLAIN|LOGIN, MAIL FROM, RCPT TO, DATA, BDAT, RSET, NOOP, QUIT"),
            Verb::Starttls => return Ok(self.starttls(args)),
            Verb::Unknown => {
                self.reply("500 5.5.2 Command unrecognized");
                return Ok(self.error());
            }
            Verb::Auth => return self.auth(args).await,
            Verb::Mail | Verb::Rcpt | Verb::Data if !authed => {
                self.reply(AUTH_REQUIRED);
                return Ok(self.error());
            }
            Verb::Mail => self.mail(args).await,
            Verb::Rcpt => self.rcpt(args).await,
            Verb::Data => return self.data(args).await,
            Verb::Bdat => return self.bdat(args).await,
        }
        Ok(Next::Continue)
    }

    /// EHLO or HELO: ends the transaction (as RSET) and lists what is offered.
    async fn ehlo(&mut self, verb: Verb, args: &str) -> Next {
        let domain = args.split_ascii_whitespace().next().unwrap_or("");
        if domain.is_empty() {
            self.reply("501 5.5.4 Syntax: EHLO hostname");
            return self.error();
        }
        let reset = self.state.ehlo();
        self.reset_upstream(reset).await;
        if verb == Verb::Helo {
            self.reply("250 mailgate");
            return Next::Continue;
        }
        let helo: String = domain.chars().take(255).collect();
        let mut caps = vec![
            format!("mailgate Hello {helo}"),
            "PIPELINING".into(),
            format!("SIZE {}", self.session.config.server.max_message_size),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            // Offered before the account (and so the provider) is known: a DSN
            // parameter is refused at MAIL or RCPT when the provider lacks DSN.
            "DSN".into(),
            "ENHANCEDSTATUSCODES".into(),
            "CHUNKING".into(),
        ];
        if !self.session.tls && self.session.config.server.tls.is_some() {
            caps.push("STARTTLS".into());
        }
        // As Postfix with smtpd_tls_auth_only: no AUTH in clear off loopback.
        if self.session.loopback || self.session.tls {
            caps.push("AUTH PLAIN LOGIN".into());
        }
        caps.push("HELP".into());
        let n = caps.len();
        for (i, c) in caps.iter().enumerate() {
            let sep = if i + 1 == n { ' ' } else { '-' };
            self.reply(&format!("250{sep}{c}"));
        }
        Next::Continue
    }

    /// STARTTLS (RFC 3207): refused once in TLS, without a certificate, before EHLO, with
    /// arguments, or inside a mail transaction; otherwise `220` and the handshake.
    fn starttls(&mut self, args: &str) -> Next {
        let refusal = if self.session.tls {
            "554 5.5.1 TLS is already active"
        } else if self.session.config.server.tls.is_none() {
            "502 5.5.1 STARTTLS is not offered on this listener"
        } else if !args.trim().is_empty() {
            "501 5.5.4 Syntax: STARTTLS"
        } else if let Err(refusal) = self.state.may_starttls() {
            refusal
        } else {
            self.reply("220 2.0.0 Ready to start TLS");
            return Next::StartTls;
        };
        self.reply(refusal);
        self.error()
    }

    /// Ends the transaction here and upstream (RSET, or dropping a connection that is mid-data).
    pub(super) async fn reset(&mut self) {
        let reset = self.state.reset();
        self.reset_upstream(reset).await;
    }

    /// Clears the upstream's transaction after the session's ended as `reset` says.
    async fn reset_upstream(&mut self, reset: Reset) {
        match reset {
            Reset::Idle => {}
            Reset::MidBody => self.upstream = None,
            Reset::Envelope => {
                if let Some(up) = self.upstream.as_mut() {
                    match up.command("RSET", "RSET").await {
                        Ok(r) if (200..300).contains(&r.code) => {}
                        _ => self.upstream = None,
                    }
                }
            }
        }
    }
}
