//! The SMTP server state machine that the client talks to.
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
//! AUTH), the configured number of failed AUTH attempts. Memory is a fixed read buffer and two chunk buffers whatever the
//! message size. Replies are collected and sent when the client's pipelined input is used up
//! (RFC 2920), so a pipelining client gets them in one write.

use crate::config::Account;
use crate::diagnosis::{self, Protocol};
use crate::metrics;
use crate::preauth::{self, Limit};
use crate::sasl;
use crate::secret::Secret;
use crate::session::NoTls;
use crate::smtp::command::{self, Verb};
use crate::smtp::data::Unstuffer;
use crate::smtp::submit::{reply_text, Reply, Upstream};
use crate::smtp::Session;
use crate::throttle::{self, Refusal};
use crate::upstream::UpstreamError;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{info, warn};
use zeroize::Zeroizing;

/// Read buffer size; also the largest piece of message written upstream at once.
pub const READ_BUF: usize = 64 * 1024;
/// Longest command line, CRLF included (RFC 5321 4.5.3.1.4 says 512; we allow text-line size).
pub const MAX_LINE: usize = 1000;
/// Recipients per message (RFC 5321 4.5.3.1.8 minimum is 100).
pub const MAX_RECIPIENTS: usize = 100;
/// Silence allowed while waiting for a command (RFC 5321 4.5.3.2.7: at least 5 minutes).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Silence allowed inside DATA/BDAT data.
const DATA_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Protocol errors on one connection before it is closed.
const MAX_ERRORS: u32 = 20;
/// Bytes of one command line without a line end read (and dropped) before the connection is
/// closed. A line a little over [`MAX_LINE`] gets `500` and the session goes on; a line that
/// never ends would otherwise keep a session busy for as long as the client sends (nginx's
/// mail proxy closes on a full command buffer too).
pub const MAX_ENDLESS_LINE: usize = 64 * 1024;

/// Why reading from the client stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
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
    fn as_str(self) -> &'static str {
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
enum Input {
    Line(Zeroizing<Vec<u8>>),
    TooLong,
    Gone(Gone),
}

/// The message body in flight upstream (after the upstream's 354).
#[derive(Default)]
struct Body {
    /// Message bytes received so far (unstuffed).
    size: u64,
    /// The size limit was passed; the upstream was dropped.
    over: bool,
    /// Writing to the upstream failed; the upstream was dropped.
    failed: Option<UpstreamError>,
    /// The reply already decided for this message: the upstream refused DATA (read when the
    /// first bytes were due, see `Upstream::send_data`) or, for BDAT, its DATA could not be sent.
    refused: Option<String>,
}

/// One mail transaction, from an accepted MAIL FROM to the end of the data (or RSET).
#[derive(Default)]
struct Tx {
    from: String,
    rcpt_attempts: usize,
    rcpts: usize,
    /// The upstream connection broke during the envelope: everything after gets 451.
    broken: bool,
    /// Set once DATA's 354 or the first BDAT chunk started the body.
    body: Option<Body>,
    /// BDAT was used (DATA is then a sequence error).
    bdat: bool,
    /// MAIL FROM accepted here but not yet sent: it goes upstream with the first RCPT.
    mail_line: Option<String>,
    /// The upstream connection predates this transaction (it may have been closed meanwhile).
    reused: bool,
    /// The provider refused the deferred MAIL FROM: the reply every RCPT gets.
    mail_refused: Option<String>,
    /// The message's outcome was counted already (a refusal before the data ended it for the
    /// client): `mailgate_smtp_messages_total` counts each transaction once.
    counted: bool,
}

struct Smtp<'s, S> {
    stream: S,
    session: &'s mut Session,
    buf: Zeroizing<Vec<u8>>,
    start: usize,
    end: usize,
    /// Dropping the rest of an over-long line.
    discarding: bool,
    out: Vec<u8>,
    msg: Vec<u8>,
    helo: Option<String>,
    account: Option<Arc<Account>>,
    auth_failures: u32,
    errors: u32,
    upstream: Option<Upstream>,
    tx: Option<Tx>,
    accepted: u64,
    /// The successful AUTH is not counted yet: it is counted once, with the provider's
    /// verdict, when the provider is first contacted (see [`Smtp::count_login`]).
    login_uncounted: bool,
}

/// How one command left the session.
enum Next {
    Continue,
    Close(&'static str),
    /// `220` to STARTTLS was sent: the TLS handshake comes next.
    StartTls,
}

/// `Smtp::run`'s answer when the session continues in TLS.
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
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
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
        helo: None,
        account: None,
        auth_failures: 0,
        errors: 0,
        upstream: None,
        tx: None,
        accepted: 0,
        login_uncounted: false,
    };
    let why = s.run(greet).await.unwrap_or("client connection error");
    *accepted += s.accepted;
    // Logged in and never needed the provider: the login is what the client saw, `ok`.
    s.count_login("ok");
    if why == STARTTLS {
        // Nothing else is open yet: STARTTLS is refused inside a transaction.
        return (why, Some(s.stream));
    }
    if let Some(up) = s.upstream.take() {
        if s.tx.as_ref().is_some_and(|t| t.body.is_some()) {
            // Mid-data: dropping the connection without the end marker aborts upstream.
            drop(up);
        } else {
            up.quit().await;
        }
    }
    let _ = s.stream.shutdown().await;
    (why, None)
}

/// The reply for an upstream failure that is not a reply: the client should retry later.
fn upstream_failure(e: &UpstreamError) -> &'static str {
    crate::diagnosis::smtp_reply(e.kind())
}

/// The reply when the upstream connection (and login) failed.
fn connect_failure(e: &UpstreamError) -> std::borrow::Cow<'static, str> {
    crate::diagnosis::smtp_login_reply(e)
}

/// An upstream reply as the client's reply: same code, enhanced code and text; multi-line kept.
/// Codes the client must not see as-is become `451` (421 would close *our* connection; 1xx/3xx
/// have no meaning at this step).
fn relay_reply(r: &Reply) -> String {
    let (code, esc) = match r.code {
        200..=299 | 400..=420 | 422..=599 => (r.code, r.esc),
        _ => (451, [4, 4, 0]),
    };
    let [a, b, c] = esc;
    let esc = if a == 0 || u16::from(a) != code / 100 {
        format!("{}.0.0", code / 100)
    } else {
        format!("{a}.{b}.{c}")
    };
    let lines: Vec<String> = r
        .message
        .split('\n')
        .take(20)
        .map(|l| {
            l.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(480)
                .collect::<String>()
        })
        .collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        if i > 0 {
            out.push_str("\r\n");
        }
        out.push_str(&format!("{code}{sep}{esc} {line}"));
    }
    out
}

/// The reply to a DSN parameter when the provider does not offer DSN: passing the request on
/// is impossible and dropping it would be a silent lie, so the client hears it (it may send
/// again without one).
const DSN_NOT_OFFERED: &str =
    "555 5.5.4 DSN parameters cannot be passed on: this account's mail provider does not offer DSN";

/// The reply to a malformed, over-long or repeated DSN parameter (RFC 3461: 501).
fn dsn_syntax(param: &str) -> String {
    let shown: String = param.chars().take(64).collect();
    format!("501 5.5.4 Syntax error in the DSN parameter {shown} (RFC 3461)")
}

/// The outcome label of a message the client was refused with `reply` before its data, by
/// the reply's code: `too_big` for 552 (size), `rejected` for another 5xx, else `deferred`.
fn refused_outcome(reply: &str) -> &'static str {
    match reply.get(..3).and_then(|c| c.parse::<u16>().ok()) {
        Some(552) => "too_big",
        Some(500..=599) => "rejected",
        _ => "deferred",
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Smtp<'_, S> {
    /// Counts the session's successful AUTH once, as `result`: at the first contact with the
    /// provider (its verdict on the stored credential) or, if the session never needed it,
    /// as `ok` when it ends.
    fn count_login(&mut self, result: &'static str) {
        if std::mem::take(&mut self.login_uncounted) {
            let account = self.account.as_ref().map(|a| a.email.as_str());
            metrics::login("smtp", result, account);
        }
    }

    /// Replies to a MAIL FROM that starts no transaction and counts the refused message.
    fn refuse_mail(&mut self, reply: &str) {
        metrics::smtp_message(refused_outcome(reply), 0);
        self.reply(reply);
    }

    /// Counts the current transaction's message as refused with `reply`, once.
    fn count_refused(&mut self, reply: &str) {
        if let Some(tx) = self.tx.as_mut().filter(|t| !t.counted) {
            tx.counted = true;
            metrics::smtp_message(refused_outcome(reply), 0);
        }
    }

    fn reply(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.stream.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Reads more client bytes into the buffer (after sending pending replies). `timeout` is
    /// the silence allowed once authenticated; before, the pre-login limits apply.
    async fn fill(
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
        let (timeout, limit) = if self.account.is_some() {
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
    async fn read_line(&mut self) -> io::Result<Input> {
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

    async fn run(&mut self, greet: bool) -> io::Result<&'static str> {
        if greet {
            self.reply("220 mailgate ESMTP ready");
        }
        loop {
            let line = match self.read_line().await? {
                Input::Line(line) => line,
                Input::TooLong => {
                    self.reply("500 5.5.2 Line too long (at most 1000 octets)");
                    if let Next::Close(why) = self.error() {
                        return self.close(why).await;
                    }
                    continue;
                }
                Input::Gone(gone) => return self.gone(gone).await,
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
                Next::Close(why) => return self.close(why).await,
                Next::StartTls => {
                    self.flush().await?;
                    return Ok(STARTTLS);
                }
            }
        }
    }

    /// Counts a protocol error; too many end the session (`max_bad_commands` of them before
    /// AUTH has succeeded, as Postfix's `smtpd_hard_error_limit` with a lower bar for strangers).
    fn error(&mut self) -> Next {
        self.errors += 1;
        let max = if self.account.is_some() {
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

    async fn gone(&mut self, gone: Gone) -> io::Result<&'static str> {
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
        let authed = self.account.is_some();
        match verb {
            Verb::Ehlo | Verb::Helo => {
                let domain = args.split_ascii_whitespace().next().unwrap_or("");
                if domain.is_empty() {
                    self.reply("501 5.5.4 Syntax: EHLO hostname");
                    return Ok(self.error());
                }
                self.reset().await;
                self.helo = Some(domain.chars().take(255).collect());
                if verb == Verb::Helo {
                    self.reply("250 mailgate");
                } else {
                    let mut caps = vec![
                        format!("mailgate Hello {}", self.helo.as_deref().unwrap_or("")),
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
                }
            }
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
                self.reply("530 5.7.0 Authentication required");
                return Ok(self.error());
            }
            Verb::Mail => self.mail(args).await,
            Verb::Rcpt => self.rcpt(args).await,
            Verb::Data => return self.data(args).await,
            Verb::Bdat => return self.bdat(args).await,
        }
        Ok(Next::Continue)
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
        } else if self.helo.is_none() {
            "503 5.5.1 Send EHLO first"
        } else if self.tx.is_some() {
            "503 5.5.1 STARTTLS is not allowed during a mail transaction"
        } else {
            self.reply("220 2.0.0 Ready to start TLS");
            return Next::StartTls;
        };
        self.reply(refusal);
        self.error()
    }

    /// Ends the transaction here and upstream (RSET, or dropping a connection that is mid-data).
    async fn reset(&mut self) {
        let Some(tx) = self.tx.take() else { return };
        if tx.body.is_some() {
            self.upstream = None;
            return;
        }
        if let Some(up) = self.upstream.as_mut() {
            match up.command("RSET", "RSET").await {
                Ok(r) if (200..300).contains(&r.code) => {}
                _ => self.upstream = None,
            }
        }
    }

    // --- AUTH -------------------------------------------------------------------------------

    /// Reads one SASL response line: `Ok(Some(data))`, `Ok(None)` when cancelled or invalid
    /// (the client has been answered), or `Err(next)` when the session must end.
    async fn sasl_line(&mut self) -> io::Result<Result<Option<Zeroizing<Vec<u8>>>, Next>> {
        let line = match self.read_line().await? {
            Input::Line(l) => l,
            Input::TooLong => {
                self.reply("500 5.5.2 Line too long");
                return Ok(Ok(None));
            }
            Input::Gone(g) => {
                self.gone(g).await?;
                return Ok(Err(Next::Close(g.as_str())));
            }
        };
        let trimmed = line.trim_ascii_end();
        if trimmed == b"*" {
            self.reply("501 5.7.0 Authentication cancelled");
            return Ok(Ok(None));
        }
        match sasl::decode_b64(trimmed) {
            Ok(d) => Ok(Ok(Some(Zeroizing::new(d)))),
            Err(_) => {
                self.reply("501 5.5.2 Invalid base64 data");
                Ok(Ok(None))
            }
        }
    }

    async fn auth(&mut self, args: &str) -> io::Result<Next> {
        if self.helo.is_none() {
            self.reply("503 5.5.1 Send EHLO first");
            return Ok(self.error());
        }
        if self.account.is_some() {
            self.reply("503 5.5.1 Already authenticated");
            return Ok(self.error());
        }
        if self.tx.is_some() {
            self.reply("503 5.5.1 AUTH is not allowed during a mail transaction");
            return Ok(self.error());
        }
        if !self.session.loopback && !self.session.tls {
            self.reply("538 5.7.11 Encryption required for requested authentication mechanism");
            return Ok(self.error());
        }
        let Ok((mech, ir)) = command::parse_auth(args) else {
            self.reply("501 5.5.4 Syntax: AUTH mechanism [initial-response]");
            return Ok(self.error());
        };
        let ir = match ir.map(|r| sasl::decode_b64(r.as_bytes())) {
            None => None,
            Some(Ok(d)) => Some(Zeroizing::new(d)),
            Some(Err(_)) => {
                self.reply("501 5.5.2 Invalid base64 data");
                return Ok(self.error());
            }
        };
        let credentials: Option<(String, Secret)> = match mech.as_str() {
            "PLAIN" => {
                let data = match ir {
                    Some(d) => Some(d),
                    None => {
                        self.reply("334 ");
                        match self.sasl_line().await? {
                            Err(next) => return Ok(next),
                            Ok(d) => d,
                        }
                    }
                };
                match data.map(|d| sasl::decode_plain(&d)) {
                    None => None,
                    Some(Ok(pair)) => Some(pair),
                    Some(Err(e)) => {
                        self.reply(&format!("501 5.5.2 {e}"));
                        None
                    }
                }
            }
            "LOGIN" => {
                let user = match ir {
                    Some(u) => Some(u),
                    None => {
                        self.reply(&format!("334 {}", sasl::encode_b64(b"Username:")));
                        match self.sasl_line().await? {
                            Err(next) => return Ok(next),
                            Ok(u) => u,
                        }
                    }
                };
                match user {
                    None => None,
                    Some(user) => {
                        self.reply(&format!("334 {}", sasl::encode_b64(b"Password:")));
                        match self.sasl_line().await? {
                            Err(next) => return Ok(next),
                            Ok(None) => None,
                            Ok(Some(pass)) => Some((
                                String::from_utf8_lossy(&user).into_owned(),
                                Secret::new(String::from_utf8_lossy(&pass).into_owned()),
                            )),
                        }
                    }
                }
            }
            _ => {
                self.reply("504 5.5.4 Unrecognized authentication type; use PLAIN or LOGIN");
                return Ok(self.error());
            }
        };
        let Some((login, password)) = credentials else {
            return Ok(self.error());
        };
        let config = self.session.config.clone();
        let ip = self.session.peer.ip();
        match throttle::verify(&config, "smtp", ip, &login, password).await {
            Ok(account) => {
                tracing::Span::current().record("account", account.email.as_str());
                info!("authenticated");
                self.account = Some(account);
                self.login_uncounted = true;
                if let Some(ticket) = &self.session.ticket {
                    ticket.logged_in();
                }
                self.reply("235 2.7.0 Authentication successful");
                Ok(Next::Continue)
            }
            Err(Refusal::Throttled(l)) => {
                // As Postfix's anvil rate limits: a temporary refusal, and the connection ends.
                self.reply(&format!(
                    "421 4.7.0 Too many failed logins, try again in {}; closing the connection",
                    l.wait_text()
                ));
                Ok(Next::Close("login throttled"))
            }
            Err(Refusal::Failed(_)) => {
                self.auth_failures += 1;
                self.reply("535 5.7.8 Authentication credentials invalid");
                if self.auth_failures >= config.server.max_auth_failures {
                    self.reply(
                        "421 4.7.0 Too many failed authentication attempts; closing the connection",
                    );
                    return Ok(Next::Close("too many failed logins"));
                }
                Ok(Next::Continue)
            }
        }
    }

    // --- Envelope ---------------------------------------------------------------------------

    async fn mail(&mut self, args: &str) {
        let Some(account) = self.account.clone() else {
            return;
        };
        if self.helo.is_none() {
            return self.reply("503 5.5.1 Send EHLO first");
        }
        if self.tx.is_some() {
            return self.reply("503 5.5.1 Nested MAIL command");
        }
        let path = match command::parse_path(args, "FROM:") {
            Ok(p) => p,
            Err(e) => return self.reply(&format!("501 5.5.4 {e}")),
        };
        let max = self.session.config.server.max_message_size;
        let mut dsn = Vec::new();
        for param in path.params.split_ascii_whitespace() {
            let Ok((key, value)) = command::parse_param(param) else {
                return self.reply("501 5.5.4 Syntax error in parameters");
            };
            match command::dsn_param(key, value, true) {
                Some(Ok(kind)) if !dsn.contains(&kind) => {
                    dsn.push(kind);
                    continue;
                }
                Some(_) => return self.reply(&dsn_syntax(param)),
                None => {}
            }
            let ok = match (key.to_ascii_uppercase().as_str(), value) {
                ("SIZE", Some(v)) => match v.parse::<u64>() {
                    Ok(size) if size > max => {
                        return self.refuse_mail(&format!(
                        "552 5.3.4 Message size exceeds fixed maximum message size ({max} bytes)"
                    ))
                    }
                    Ok(_) => true,
                    Err(_) => false,
                },
                ("BODY", Some(v)) => {
                    v.eq_ignore_ascii_case("7BIT") || v.eq_ignore_ascii_case("8BITMIME")
                }
                ("SMTPUTF8", None) => true,
                _ => false,
            };
            if !ok {
                return self.reply(&format!("555 5.5.4 Unsupported parameter {param}"));
            }
        }
        let sender = path.address.to_lowercase();
        let allowed = std::iter::once(&account.email)
            .chain(account.aliases.iter())
            .any(|a| a.to_lowercase() == sender);
        if !allowed {
            let aliases = if account.aliases.is_empty() {
                String::new()
            } else {
                format!(" or one of its aliases ({})", account.aliases.join(", "))
            };
            return self.refuse_mail(&format!(
                "553 5.7.1 Sender address rejected: this account may send only as <{}>{aliases}",
                account.email
            ));
        }
        if account.smtp.is_none() {
            return self.refuse_mail("550 5.3.5 No outgoing server is configured for this account in mailgate ([account.smtp] is missing)");
        }
        let line = if path.params.is_empty() {
            format!("MAIL FROM:<{}>", path.address)
        } else {
            format!("MAIL FROM:<{}> {}", path.address, path.params)
        };
        // A kept connection may have been closed by the server meanwhile: one fresh try.
        for attempt in 0..2 {
            let reused = match self.connect_upstream().await {
                Ok(reused) => reused,
                Err(reply) => return self.refuse_mail(&reply),
            };
            let Some(up) = self.upstream.as_mut() else {
                return;
            };
            if !dsn.is_empty() && !up.dsn() {
                return self.reply(DSN_NOT_OFFERED);
            }
            if up.pipelining() {
                // Deferred: MAIL goes upstream in one write with the first RCPT, which saves
                // the provider a round trip per message. A sender the provider refuses is
                // then refused at RCPT — where Postfix's default smtpd_delay_reject reports
                // sender refusals too, so clients handle it.
                self.tx = Some(Tx {
                    from: path.address.to_owned(),
                    mail_line: Some(line),
                    reused,
                    ..Tx::default()
                });
                return self.reply("250 2.1.0 Sender OK");
            }
            match up.command(&line, "MAIL FROM").await {
                Ok(r) => {
                    if (200..300).contains(&r.code) {
                        self.tx = Some(Tx {
                            from: path.address.to_owned(),
                            ..Tx::default()
                        });
                    }
                    if r.code == 421 {
                        self.upstream = None;
                    }
                    let reply = relay_reply(&r);
                    if (200..300).contains(&r.code) {
                        return self.reply(&reply);
                    }
                    info!(reply = %reply_text(&r), "upstream refused MAIL FROM");
                    return self.refuse_mail(&reply);
                }
                Err(e) => {
                    self.upstream = None;
                    if !(reused && attempt == 0) {
                        warn!(kind = e.kind().label(), error = %e, "upstream failed at MAIL FROM");
                        metrics::upstream_error("smtp", e.kind().label());
                        return self.refuse_mail(upstream_failure(&e));
                    }
                }
            }
        }
    }

    /// Connects and logs in upstream unless a connection is kept; `Ok(true)` when the kept
    /// one is used, `Err(reply)` with the client's reply when the provider cannot be reached.
    async fn connect_upstream(&mut self) -> Result<bool, String> {
        if self.upstream.is_some() {
            return Ok(true);
        }
        // The account is an Arc: a cheap clone that frees `self` for the connection.
        let account = self.account.clone();
        let Some(endpoint) = account.as_ref().and_then(|a| a.smtp.as_ref()) else {
            return Err("550 5.3.5 No outgoing server is configured for this account in mailgate ([account.smtp] is missing)".into());
        };
        let email = account.as_ref().map_or("", |a| a.email.as_str());
        let started = std::time::Instant::now();
        match Upstream::connect(endpoint, &self.session.config.server).await {
            Ok(mut up) => {
                metrics::upstream_connected("smtp", started.elapsed().as_secs_f64());
                info!(upstream = %up.address(), "upstream connected");
                up.count_bytes_for(email);
                self.upstream = Some(up);
                self.count_login("ok");
                Ok(false)
            }
            Err(e) => {
                let advice = diagnosis::log_advice(&e, Protocol::Smtp, email);
                warn!(upstream = %endpoint.address(), kind = e.kind().label(), error = %e, advice, "upstream connection failed");
                metrics::upstream_error("smtp", e.kind().label());
                self.count_login(diagnosis::login_result(&e));
                Err(connect_failure(&e).into_owned())
            }
        }
    }

    /// Sends the deferred MAIL FROM and the first RCPT TO in one write; the reply for the
    /// client's RCPT. A kept connection found dead gets one fresh try, as at MAIL FROM.
    async fn mail_and_first_rcpt(&mut self, mail: String, rcpt: &str) -> String {
        for attempt in 0..2 {
            let reused = self.tx.as_ref().is_some_and(|t| t.reused);
            if attempt > 0 {
                match self.connect_upstream().await {
                    Ok(_) => {}
                    Err(reply) => {
                        if let Some(tx) = self.tx.as_mut() {
                            tx.broken = true;
                        }
                        return reply;
                    }
                }
            }
            let Some(up) = self.upstream.as_mut() else {
                break;
            };
            match up.pipeline(&[&mail, rcpt], "MAIL FROM and RCPT TO").await {
                Ok(replies) => {
                    let (Some(m), Some(r)) = (replies.first(), replies.get(1)) else {
                        break;
                    };
                    let Some(tx) = self.tx.as_mut() else {
                        break;
                    };
                    if !(200..300).contains(&m.code) {
                        info!(reply = %reply_text(m), "upstream refused MAIL FROM");
                        let reply = relay_reply(m);
                        if m.code == 421 {
                            tx.broken = true;
                            self.upstream = None;
                        }
                        tx.mail_refused = Some(reply.clone());
                        return reply;
                    }
                    return self.rcpt_result(r);
                }
                Err(e) => {
                    self.upstream = None;
                    if !(reused && attempt == 0) {
                        warn!(kind = e.kind().label(), error = %e, "upstream failed at MAIL FROM / RCPT TO");
                        metrics::upstream_error("smtp", e.kind().label());
                        if let Some(tx) = self.tx.as_mut() {
                            tx.broken = true;
                        }
                        return upstream_failure(&e).into();
                    }
                    if let Some(tx) = self.tx.as_mut() {
                        tx.reused = false;
                    }
                }
            }
        }
        if let Some(tx) = self.tx.as_mut() {
            tx.broken = true;
        }
        upstream_failure(&UpstreamError::Closed {
            address: String::new(),
            step: "",
        })
        .into()
    }

    /// Books an upstream RCPT reply into the transaction; the reply for the client.
    fn rcpt_result(&mut self, r: &Reply) -> String {
        let Some(tx) = self.tx.as_mut() else {
            return relay_reply(r);
        };
        if (200..300).contains(&r.code) {
            tx.rcpts += 1;
        } else {
            info!(reply = %reply_text(r), "upstream refused a recipient");
        }
        if r.code == 421 {
            tx.broken = true;
            self.upstream = None;
        }
        relay_reply(r)
    }

    async fn rcpt(&mut self, args: &str) {
        let reply = self.rcpt_reply(args).await;
        if self
            .tx
            .as_ref()
            .is_some_and(|t| t.broken || t.mail_refused.is_some())
        {
            // The transaction can carry no message any more: this reply is its outcome.
            self.count_refused(&reply);
        }
        self.reply(&reply);
    }

    async fn rcpt_reply(&mut self, args: &str) -> String {
        let closed = || {
            upstream_failure(&UpstreamError::Closed {
                address: String::new(),
                step: "",
            })
            .to_owned()
        };
        let Some(tx) = self.tx.as_mut() else {
            return "503 5.5.1 Need MAIL command first".into();
        };
        if tx.body.is_some() || tx.bdat {
            return "503 5.5.1 RCPT is not allowed after the data started".into();
        }
        let path = match command::parse_path(args, "TO:") {
            Ok(p) if !p.address.is_empty() => p,
            Ok(_) => return "501 5.1.3 A recipient address is required".into(),
            Err(e) => return format!("501 5.5.4 {e}"),
        };
        let mut dsn = Vec::new();
        for param in path.params.split_ascii_whitespace() {
            let Ok((key, value)) = command::parse_param(param) else {
                return "501 5.5.4 Syntax error in parameters".into();
            };
            match command::dsn_param(key, value, false) {
                Some(Ok(kind)) if !dsn.contains(&kind) => dsn.push(kind),
                Some(_) => return dsn_syntax(param),
                None => return format!("555 5.5.4 Unsupported parameter {param}"),
            }
        }
        if !dsn.is_empty() && self.upstream.as_ref().is_some_and(|u| !u.dsn()) {
            return DSN_NOT_OFFERED.into();
        }
        if tx.rcpt_attempts >= MAX_RECIPIENTS {
            return format!("452 4.5.3 Too many recipients (at most {MAX_RECIPIENTS} per message)");
        }
        tx.rcpt_attempts += 1;
        if let Some(refused) = &tx.mail_refused {
            // The provider refused the (deferred) sender: every recipient hears why.
            return refused.clone();
        }
        let rcpt = if path.params.is_empty() {
            format!("RCPT TO:<{}>", path.address)
        } else {
            format!("RCPT TO:<{}> {}", path.address, path.params)
        };
        if let Some(mail) = tx.mail_line.take() {
            return self.mail_and_first_rcpt(mail, &rcpt).await;
        }
        let Some(up) = self.upstream.as_mut().filter(|_| !tx.broken) else {
            tx.broken = true;
            return closed();
        };
        match up.command(&rcpt, "RCPT TO").await {
            Ok(r) => self.rcpt_result(&r),
            Err(e) => {
                warn!(kind = e.kind().label(), error = %e, "upstream failed at RCPT TO");
                tx.broken = true;
                self.upstream = None;
                upstream_failure(&e).into()
            }
        }
    }

    /// Checks common to DATA and BDAT before the body; `Some(reply)` refuses it. A refusal
    /// that ends the transaction (no recipient, the provider gone) is its message's outcome.
    fn body_refusal(&mut self, bdat: bool) -> Option<String> {
        let refusal = self.body_refusal_reply(bdat)?;
        let ends =
            self.tx.as_ref().is_some_and(|t| t.rcpts == 0 || t.broken) || self.upstream.is_none();
        if ends && (bdat || !self.tx.as_ref().is_some_and(|t| t.bdat)) {
            self.count_refused(&refusal);
        }
        Some(refusal)
    }

    fn body_refusal_reply(&self, bdat: bool) -> Option<String> {
        let Some(tx) = self.tx.as_ref() else {
            return Some(if self.account.is_none() {
                "530 5.7.0 Authentication required".into()
            } else {
                "503 5.5.1 Need MAIL command first".into()
            });
        };
        if tx.rcpts == 0 && !tx.broken {
            return Some("554 5.5.1 No valid recipients".into());
        }
        if !bdat && tx.bdat {
            return Some("503 5.5.1 DATA is not allowed after BDAT".into());
        }
        if tx.broken || self.upstream.is_none() {
            return Some(
                upstream_failure(&UpstreamError::Closed {
                    address: String::new(),
                    step: "",
                })
                .into(),
            );
        }
        None
    }

    /// Sends DATA upstream without waiting for its reply (see [`Upstream::send_data`]): the
    /// client may be told 354 at once. Otherwise the reply for the client.
    async fn open_body(&mut self) -> Result<(), String> {
        let Some(up) = self.upstream.as_mut() else {
            return Err(upstream_failure(&UpstreamError::Closed {
                address: String::new(),
                step: "",
            })
            .into());
        };
        match up.send_data().await {
            Ok(()) => Ok(()),
            Err(e) => {
                warn!(kind = e.kind().label(), error = %e, "upstream failed at DATA");
                self.upstream = None;
                Err(upstream_failure(&e).into())
            }
        }
    }

    /// Forwards the message bytes in `self.msg` (then empties it), minding the size limit.
    async fn forward(&mut self) {
        let max = self.session.config.server.max_message_size;
        let Some(body) = self.tx.as_mut().and_then(|t| t.body.as_mut()) else {
            self.msg.clear();
            return;
        };
        body.size += self.msg.len() as u64;
        if body.size > max {
            if !body.over {
                body.over = true;
                // No end marker will follow: the upstream discards what it got.
                self.upstream = None;
            }
        } else if body.failed.is_none() && body.refused.is_none() {
            if let Some(up) = self.upstream.as_mut() {
                match up.write_body(&self.msg).await {
                    // Counted by the upstream when the bytes are written.
                    Ok(None) => {}
                    Ok(Some(r)) => {
                        // DATA itself was refused: the rest of the body is dropped and the
                        // client hears the refusal after its end marker.
                        info!(reply = %reply_text(&r), "upstream refused DATA");
                        if r.code == 421 {
                            self.upstream = None;
                        }
                        body.refused = Some(relay_reply(&r));
                    }
                    Err(e) => {
                        warn!(kind = e.kind().label(), error = %e, "upstream failed during the message data");
                        body.failed = Some(e);
                        self.upstream = None;
                    }
                }
            }
        }
        self.msg.clear();
    }

    /// The client's reply at the end of the body; ends the transaction.
    async fn finish_body(&mut self) -> String {
        let counted = self.tx.as_ref().is_some_and(|t| t.counted);
        let (reply, result, size) = self.finish_body_inner().await;
        if let (Some(result), false) = (result, counted) {
            metrics::smtp_message(result, size);
        }
        reply
    }

    /// Ends the message; returns the reply, the outcome label (`None` when no message was
    /// under way) and the message size.
    async fn finish_body_inner(&mut self) -> (String, Option<&'static str>, u64) {
        let max = self.session.config.server.max_message_size;
        let Some(mut tx) = self.tx.take() else {
            return ("503 5.5.1 Need MAIL command first".into(), None, 0);
        };
        let deferred_or_rejected = |reply: &str| {
            if reply.starts_with('5') {
                "rejected"
            } else {
                "deferred"
            }
        };
        let body = tx.body.take().unwrap_or_default();
        if body.over {
            info!(
                size = body.size,
                max, "message over the size limit; not sent"
            );
            let reply =
                format!("552 5.3.4 Message size exceeds fixed maximum message size ({max} bytes)");
            return (reply, Some("too_big"), body.size);
        }
        if let Some(refused) = body.refused {
            let result = deferred_or_rejected(&refused);
            return (refused, Some(result), body.size);
        }
        if let Some(e) = body.failed {
            metrics::upstream_error("smtp", e.kind().label());
            return (upstream_failure(&e).into(), Some("deferred"), body.size);
        }
        let Some(up) = self.upstream.as_mut() else {
            let reply = upstream_failure(&UpstreamError::Closed {
                address: String::new(),
                step: "",
            });
            return (reply.into(), Some("deferred"), body.size);
        };
        match up.finish_data().await {
            Ok(r) => {
                if (200..300).contains(&r.code) {
                    self.accepted += 1;
                    info!(from = %tx.from, rcpts = tx.rcpts, size = body.size, reply = %reply_text(&r), "message accepted by the upstream");
                } else {
                    info!(from = %tx.from, size = body.size, reply = %reply_text(&r), "upstream refused the message");
                }
                if r.code == 421 {
                    self.upstream = None;
                }
                let reply = relay_reply(&r);
                let result = if (200..300).contains(&r.code) {
                    "ok"
                } else {
                    deferred_or_rejected(&reply)
                };
                (reply, Some(result), body.size)
            }
            Err(e) => {
                warn!(kind = e.kind().label(), error = %e, size = body.size, "upstream failed at the end of the message");
                metrics::upstream_error("smtp", e.kind().label());
                self.upstream = None;
                (upstream_failure(&e).into(), Some("deferred"), body.size)
            }
        }
    }

    // --- DATA / BDAT ------------------------------------------------------------------------

    /// Makes sure message bytes are buffered. `Ok(Err(why))` when the client is gone: the
    /// upstream is then dropped without the end marker, which aborts the message there.
    async fn need_data(&mut self, what: &str) -> io::Result<Result<(), &'static str>> {
        if self.start < self.end {
            return Ok(Ok(()));
        }
        match self.fill(DATA_TIMEOUT, false).await? {
            Ok(()) => Ok(Ok(())),
            Err(gone) => {
                self.upstream = None;
                self.tx = None;
                warn!(
                    "{} in the middle of {what}; message aborted upstream",
                    gone.as_str()
                );
                Ok(Err(gone.as_str()))
            }
        }
    }

    async fn data(&mut self, args: &str) -> io::Result<Next> {
        if !args.is_empty() {
            self.reply("501 5.5.4 DATA takes no arguments");
            return Ok(self.error());
        }
        if let Some(refusal) = self.body_refusal(false) {
            self.reply(&refusal);
            return Ok(Next::Continue);
        }
        if let Err(reply) = self.open_body().await {
            // The message was refused before its data (as BDAT's path counts it too).
            self.count_refused(&reply);
            self.reset().await;
            self.reply(&reply);
            return Ok(Next::Continue);
        }
        if let Some(tx) = self.tx.as_mut() {
            tx.body = Some(Body::default());
        }
        self.reply("354 End data with <CR><LF>.<CR><LF>");
        self.flush().await?;
        let mut unstuffer = Unstuffer::new();
        loop {
            if let Err(why) = self.need_data("DATA").await? {
                return Ok(Next::Close(why));
            }
            let done = unstuffer.feed(&self.buf[self.start..self.end], &mut self.msg);
            self.start = done.map_or(self.end, |n| self.start + n);
            self.forward().await;
            if done.is_some() {
                break;
            }
        }
        let reply = self.finish_body().await;
        self.reply(&reply);
        Ok(Next::Continue)
    }

    async fn bdat(&mut self, args: &str) -> io::Result<Next> {
        let Ok((size, last)) = command::parse_bdat(args) else {
            // Without a size the chunk cannot be skipped; its bytes will read as commands.
            self.reply("501 5.5.4 Syntax: BDAT size [LAST]");
            return Ok(self.error());
        };
        // Decide before reading the chunk; the chunk is read (and maybe discarded) either way.
        let mut refusal = None;
        let starting = self.tx.as_ref().is_some_and(|t| t.body.is_none());
        if self.tx.as_ref().map_or(true, |t| t.body.is_none()) {
            refusal = self.body_refusal(true);
            if refusal.is_none() && starting {
                let opened = self.open_body().await;
                if let Some(tx) = self.tx.as_mut() {
                    tx.bdat = true;
                    tx.body = Some(Body {
                        refused: opened.err(),
                        ..Body::default()
                    });
                }
            }
        }
        let mut left = size;
        while left > 0 {
            if let Err(why) = self.need_data("BDAT").await? {
                return Ok(Next::Close(why));
            }
            let take = (self.end - self.start).min(usize::try_from(left).unwrap_or(usize::MAX));
            if refusal.is_none() {
                self.msg
                    .extend_from_slice(&self.buf[self.start..self.start + take]);
            }
            self.start += take;
            left -= take as u64;
            if refusal.is_none() {
                self.forward().await;
            }
        }
        if let Some(refusal) = refusal {
            self.reply(&refusal);
            return Ok(Next::Continue);
        }
        if last {
            let reply = self.finish_body().await;
            self.reply(&reply);
        } else {
            let body = self.tx.as_ref().and_then(|t| t.body.as_ref());
            let failed = body.is_some_and(|b| b.over || b.failed.is_some() || b.refused.is_some());
            if failed {
                // RFC 3030: a failed chunk fails the transaction; the client will stop sending.
                let reply = self.finish_body().await;
                self.reply(&reply);
            } else {
                self.reply(&format!("250 2.0.0 {size} octets received"));
            }
        }
        Ok(Next::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, esc: [u8; 3], message: &str) -> Reply {
        Reply {
            code,
            esc,
            message: message.into(),
        }
    }

    #[test]
    fn relayed_replies_keep_code_and_words() {
        assert_eq!(
            relay_reply(&reply(550, [5, 7, 1], "message content rejected")),
            "550 5.7.1 message content rejected"
        );
        assert_eq!(relay_reply(&reply(250, [0, 0, 0], "Ok")), "250 2.0.0 Ok");
        assert_eq!(
            relay_reply(&reply(554, [5, 7, 1], "a\nb")),
            "554-5.7.1 a\r\n554 5.7.1 b"
        );
        assert!(relay_reply(&reply(421, [4, 4, 2], "bye")).starts_with("451 4.4.0 "));
        assert!(relay_reply(&reply(354, [0, 0, 0], "go")).starts_with("451 4.4.0 "));
        assert_eq!(relay_reply(&reply(550, [2, 0, 0], "x\r")), "550 5.0.0 x ");
    }
}
