//! The pre-authentication state: mailgate itself is the IMAP server until the client has
//! logged in with its local password and the upstream login has succeeded.
//!
//! Commands are framed with [`Framer`] (so that pipelined bytes after LOGIN are kept for the
//! relay, which imap-codec's own fragmentizer cannot hand back) and parsed with imap-codec.
//! Everything is bounded: a 64 KiB line (RFC 2971's largest ID command is about 32 KiB, twice
//! that with every character of its values escaped), an 8 KiB literal, 80 KiB per command, a
//! silence time-out per read and a deadline for the whole phase, a number of invalid commands
//! and of failed logins per connection, and a place among the pre-login sessions that a newer
//! one may take (see [`crate::preauth`]).

use crate::diagnosis::{self, Protocol};
use crate::imap::framer::{Frame, Framer};
use crate::imap::pop3;
use crate::imap::relay::filter_capabilities;
use crate::imap::upstream::{self, LoggedIn};
use crate::imap::Session;
use crate::metrics;
use crate::preauth::{self, Limit};
use crate::sasl;
use crate::secret::Secret;
use crate::throttle::{self, Refusal};
use crate::upstream::UpstreamError;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::CommandCodec;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{info, warn};
use zeroize::Zeroizing;

/// Longest command line before login.
pub const MAX_LINE: usize = 64 * 1024;
/// Largest literal accepted before login (a user name or password does not need more).
pub const MAX_LITERAL: u64 = 8 * 1024;
/// Largest command (lines plus literals) before login.
const MAX_COMMAND: usize = MAX_LINE + 16 * 1024;

/// What the gateway offers before login. LITERAL+ lets clients send LOGIN literals without a
/// round trip; SASL-IR lets AUTHENTICATE PLAIN carry the credentials in the command.
pub const CAPABILITIES: &str = "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE AUTH=PLAIN AUTH=LOGIN";

/// The pre-login capabilities for this connection: [`CAPABILITIES`] on TLS or on a loopback
/// listener without a certificate; plus STARTTLS on a plaintext connection when `[server.tls]`
/// is set; and on a plaintext non-loopback connection LOGINDISABLED instead of the AUTH=
/// mechanisms (RFC 9051 6.2.3; Dovecot does the same before TLS when plaintext auth is off).
pub fn capabilities(session: &Session) -> std::borrow::Cow<'static, str> {
    if session.tls || session.config.server.tls.is_none() {
        CAPABILITIES.into()
    } else if session.loopback {
        "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE STARTTLS AUTH=PLAIN AUTH=LOGIN".into()
    } else {
        "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE STARTTLS LOGINDISABLED".into()
    }
}

/// How pre-authentication ended.
pub enum Outcome {
    /// Logged in locally and upstream; relay from here.
    Relay {
        /// The upstream connection.
        upstream: LoggedIn,
        /// The account logged in.
        account: std::sync::Arc<crate::config::Account>,
        /// Client bytes already read after the login command.
        client_leftover: Vec<u8>,
    },
    /// The connection is over (LOGOUT, EOF, time-out, too many failures, shutdown).
    Closed(&'static str),
    /// The client asked for STARTTLS and was told `OK`: the TLS handshake comes next. Bytes
    /// it sent after the command were dropped with this stage's buffer.
    StartTls,
}

/// The client connection while mailgate speaks for itself.
struct Client<'s, S> {
    stream: &'s mut S,
    buf: Zeroizing<Vec<u8>>,
    start: usize,
    end: usize,
    framer: Framer,
    session: &'s mut Session,
    /// Commands answered BAD or refused so far.
    bad: u32,
    /// Whether the client has sent a byte on this connection since the greeting.
    heard: bool,
}

/// What reading one command produced.
enum Read {
    /// A complete command (line plus literals).
    Command(Zeroizing<Vec<u8>>),
    /// The connection must end; the BYE (if any) was sent.
    Closed(&'static str),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<'_, S> {
    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    async fn bye(&mut self, text: &str, why: &'static str) -> io::Result<Read> {
        self.send(format!("* BYE {text}\r\n").as_bytes()).await?;
        Ok(Read::Closed(why))
    }

    /// Sends the answer to a command that was invalid or refused; past `max_bad_commands` of
    /// them the connection ends (`Some(why)`, the BYE sent), as Dovecot's imap-login does.
    async fn refuse(&mut self, reply: &str) -> io::Result<Option<&'static str>> {
        self.send(reply.as_bytes()).await?;
        self.bad += 1;
        if self.bad >= self.session.config.server.max_bad_commands {
            self.send(b"* BYE Too many invalid commands.\r\n").await?;
            return Ok(Some("too many invalid commands"));
        }
        Ok(None)
    }

    /// Waits for the client's next bytes within the pre-login limits: the silence time-out
    /// (shorter before the first byte, see [`pop3::FIRST_COMMAND_WAIT`]), the whole-phase
    /// deadline, shutdown, and a newer client taking this one's place.
    async fn fill(&mut self) -> io::Result<Result<usize, Read>> {
        let server = &self.session.config.server;
        let silence = if self.heard {
            server.preauth_timeout
        } else {
            server.preauth_timeout.min(pop3::FIRST_COMMAND_WAIT)
        };
        let (wait, limit) = preauth::wait(silence, self.session.preauth_deadline());
        // What ended the wait, other than the read: (BYE text, why).
        let read = tokio::select! {
            r = tokio::time::timeout(wait, self.stream.read(&mut self.buf)) => Ok(r),
            _ = self.session.shutdown.wait() => Err(("Server shutting down.", "shutdown")),
            _ = preauth::evicted(&self.session.ticket) => Err((
                "Connection queue full: too many clients are logging in, try again later.",
                "connection queue full (a newer client took this one's place)",
            )),
        };
        let read = match read {
            Ok(r) => r,
            Err((text, why)) => return self.bye(text, why).await.map(Err),
        };
        let closed = match (read, limit) {
            (Ok(r), _) => {
                let n = r?;
                self.heard |= n > 0;
                return Ok(Ok(n));
            }
            (Err(_), Limit::Deadline) => {
                self.bye("Time limit for logging in reached.", "pre-auth deadline")
                    .await?
            }
            (Err(_), Limit::Silence) if self.heard => {
                self.bye("Disconnected for inactivity.", "pre-auth time-out")
                    .await?
            }
            (Err(_), Limit::Silence) => {
                // Nothing since the greeting: a POP3 client waiting for `+OK` reads the -ERR
                // line; an IMAP client stops at the BYE.
                warn!("client sent nothing after the greeting (as a POP3 client does); told it this is an IMAP server");
                let text = format!(
                    "* BYE Disconnected for inactivity: no command since the greeting.\r\n{}",
                    pop3::answer(self.session.local_port)
                );
                self.send(text.as_bytes()).await?;
                Read::Closed("no command after the greeting")
            }
        };
        Ok(Err(closed))
    }

    /// Reads the next complete command, answering literal announcements on the way.
    async fn read_command(&mut self) -> io::Result<Read> {
        let mut cmd = Zeroizing::new(Vec::new());
        loop {
            while self.start < self.end {
                let Some((n, frame)) = self.framer.next(&self.buf[self.start..self.end]) else {
                    self.start = self.end;
                    break;
                };
                self.start += n;
                let literal = match frame {
                    Frame::Line { bytes, literal } => {
                        if cmd.len() + bytes.len() > MAX_COMMAND {
                            return self.bye("Command too long.", "command too long").await;
                        }
                        cmd.extend_from_slice(bytes);
                        match literal {
                            None => return Ok(Read::Command(cmd)),
                            Some(l) => l,
                        }
                    }
                    Frame::LongLine { .. } => {
                        return self.bye("Command line too long.", "line too long").await;
                    }
                    Frame::Literal { bytes, .. } => {
                        cmd.extend_from_slice(bytes);
                        continue;
                    }
                };
                if literal.length > MAX_LITERAL
                    || cmd.len() as u64 + literal.length > MAX_COMMAND as u64
                {
                    if !literal.sync {
                        // LITERAL+ data is on its way and cannot be refused: end the session
                        // rather than read (and discard) an unbounded amount (RFC 7888 4).
                        return self.bye("Literal too large.", "literal too large").await;
                    }
                    self.framer.cancel_literal();
                    let tag = tag_of(&cmd);
                    cmd.clear();
                    let reply = format!("{tag} BAD Literal too large (at most {MAX_LITERAL} bytes before login).\r\n");
                    if let Some(why) = self.refuse(&reply).await? {
                        return Ok(Read::Closed(why));
                    }
                    continue;
                }
                if literal.sync {
                    self.send(b"+ Ready for literal data\r\n").await?;
                }
            }
            // Need more bytes.
            self.start = 0;
            self.end = 0;
            if self.buf.len() < 4096 {
                self.buf.resize(4096, 0);
            }
            let n = match self.fill().await? {
                Ok(n) => n,
                Err(closed) => return Ok(closed),
            };
            if n == 0 {
                return Ok(Read::Closed("client closed"));
            }
            self.end = n;
        }
    }

    /// Reads one AUTHENTICATE continuation line: `Some(decoded)`, or `None` if cancelled/bad
    /// (the client has been answered).
    async fn read_sasl_line(&mut self, tag: &str) -> io::Result<Result<Option<Vec<u8>>, Read>> {
        let line = match self.read_command().await? {
            Read::Command(line) => line,
            closed @ Read::Closed(_) => return Ok(Err(closed)),
        };
        let trimmed = line.trim_ascii_end();
        if trimmed == b"*" {
            self.send(format!("{tag} BAD Authentication cancelled.\r\n").as_bytes())
                .await?;
            return Ok(Ok(None));
        }
        match sasl::decode_b64(trimmed) {
            Ok(data) => Ok(Ok(Some(data))),
            Err(e) => {
                self.send(format!("{tag} BAD {e}.\r\n").as_bytes()).await?;
                Ok(Ok(None))
            }
        }
    }
}

/// The best-effort tag of a command that did not parse, `*` if there is none usable.
fn tag_of(cmd: &[u8]) -> String {
    let first = cmd
        .split(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    let valid = !first.is_empty()
        && first.len() <= 64
        && first
            .iter()
            .all(|&b| b.is_ascii_graphic() && !b"(){%*\"\\+]".contains(&b));
    if valid {
        String::from_utf8_lossy(first).into_owned()
    } else {
        "*".to_owned()
    }
}

/// Runs pre-authentication on `stream` (the greeting has been sent).
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    session: &mut Session,
) -> io::Result<Outcome> {
    let mut c = Client {
        stream,
        buf: Zeroizing::new(Vec::new()),
        start: 0,
        end: 0,
        framer: Framer::new(MAX_LINE),
        session,
        bad: 0,
        heard: false,
    };
    let mut first = true;
    let mut failures = 0u32;
    // Passwords in clear only where they cannot cross a network (see `capabilities`).
    let clear_refused = !c.session.tls && !c.session.loopback;
    loop {
        let cmd = match c.read_command().await? {
            Read::Command(cmd) => cmd,
            Read::Closed(why) => return Ok(Outcome::Closed(why)),
        };
        let parsed = CommandCodec::default().decode(&cmd);
        let command = match parsed {
            Ok(([], command)) => command,
            _ if std::mem::take(&mut first) && pop3::is_pop3_command(&cmd) => {
                warn!(
                    "a POP3 client connected to the IMAP port; told it mailgate supports IMAP only"
                );
                c.send(pop3::answer(c.session.local_port).as_bytes())
                    .await?;
                return Ok(Outcome::Closed("POP3 client"));
            }
            _ => {
                let tag = tag_of(&cmd);
                let reply = format!(
                    "{tag} BAD Error in IMAP command: unknown command or invalid arguments.\r\n"
                );
                match c.refuse(&reply).await? {
                    Some(why) => return Ok(Outcome::Closed(why)),
                    None => continue,
                }
            }
        };
        first = false;
        let tag = command.tag.inner().to_owned();
        let credentials: Option<(String, Secret)> = match command.body {
            CommandBody::Capability => {
                let caps = capabilities(c.session);
                c.send(
                    format!("* CAPABILITY {caps}\r\n{tag} OK Capability completed.\r\n").as_bytes(),
                )
                .await?;
                None
            }
            CommandBody::Noop => {
                c.send(format!("{tag} OK NOOP completed.\r\n").as_bytes())
                    .await?;
                None
            }
            CommandBody::Logout => {
                c.send(format!("* BYE Logging out.\r\n{tag} OK Logout completed.\r\n").as_bytes())
                    .await?;
                return Ok(Outcome::Closed("logout"));
            }
            CommandBody::Id { .. } => {
                let id = format!(
                    "* ID (\"name\" \"mailgate\" \"version\" \"{}\")\r\n{tag} OK ID completed.\r\n",
                    env!("CARGO_PKG_VERSION")
                );
                c.send(id.as_bytes()).await?;
                None
            }
            CommandBody::StartTLS if c.session.tls => {
                if let Some(why) = c
                    .refuse(&format!("{tag} BAD TLS is already active.\r\n"))
                    .await?
                {
                    return Ok(Outcome::Closed(why));
                }
                None
            }
            CommandBody::StartTLS if c.session.config.server.tls.is_some() => {
                c.send(format!("{tag} OK Begin TLS negotiation now.\r\n").as_bytes())
                    .await?;
                return Ok(Outcome::StartTls);
            }
            CommandBody::StartTLS => {
                if let Some(why) = c
                    .refuse(&format!(
                        "{tag} BAD STARTTLS is not offered on this listener.\r\n"
                    ))
                    .await?
                {
                    return Ok(Outcome::Closed(why));
                }
                None
            }
            CommandBody::Login { .. } | CommandBody::Authenticate { .. } if clear_refused => {
                if let Some(why) = c.refuse(&format!("{tag} NO [PRIVACYREQUIRED] Use STARTTLS first: this listener does not take passwords in clear.\r\n")).await? {
                    return Ok(Outcome::Closed(why));
                }
                None
            }
            CommandBody::Login { username, password } => {
                let user = String::from_utf8_lossy(username.as_ref()).into_owned();
                let pass = Secret::new(
                    String::from_utf8_lossy(password.declassify().as_ref()).into_owned(),
                );
                Some((user, pass))
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                let ir: Option<Zeroizing<Vec<u8>>> =
                    initial_response.map(|r| Zeroizing::new(r.declassify().to_vec()));
                match mechanism {
                    AuthMechanism::Plain => {
                        let data = match ir {
                            Some(d) => Some(d),
                            None => {
                                c.send(b"+ \r\n").await?;
                                match c.read_sasl_line(&tag).await? {
                                    Err(Read::Closed(why)) => return Ok(Outcome::Closed(why)),
                                    Err(Read::Command(_)) => None,
                                    Ok(d) => d.map(Zeroizing::new),
                                }
                            }
                        };
                        match data.map(|d| sasl::decode_plain(&d)) {
                            None => None,
                            Some(Ok(pair)) => Some(pair),
                            Some(Err(e)) => {
                                c.send(format!("{tag} BAD {e}.\r\n").as_bytes()).await?;
                                None
                            }
                        }
                    }
                    AuthMechanism::Login => {
                        let user = match ir {
                            Some(u) => Some(u),
                            None => {
                                c.send(
                                    format!("+ {}\r\n", sasl::encode_b64(b"Username:")).as_bytes(),
                                )
                                .await?;
                                match c.read_sasl_line(&tag).await? {
                                    Err(Read::Closed(why)) => return Ok(Outcome::Closed(why)),
                                    Err(Read::Command(_)) => None,
                                    Ok(d) => d.map(Zeroizing::new),
                                }
                            }
                        };
                        match user {
                            None => None,
                            Some(user) => {
                                c.send(
                                    format!("+ {}\r\n", sasl::encode_b64(b"Password:")).as_bytes(),
                                )
                                .await?;
                                match c.read_sasl_line(&tag).await? {
                                    Err(Read::Closed(why)) => return Ok(Outcome::Closed(why)),
                                    Err(Read::Command(_)) | Ok(None) => None,
                                    Ok(Some(pass)) => {
                                        let pass = Zeroizing::new(pass);
                                        Some((
                                            String::from_utf8_lossy(&user).into_owned(),
                                            Secret::new(
                                                String::from_utf8_lossy(&pass).into_owned(),
                                            ),
                                        ))
                                    }
                                }
                            }
                        }
                    }
                    other => {
                        let reply = format!("{tag} NO [CANNOT] Unsupported authentication mechanism {other}; use PLAIN or LOGIN.\r\n");
                        if let Some(why) = c.refuse(&reply).await? {
                            return Ok(Outcome::Closed(why));
                        }
                        None
                    }
                }
            }
            _ => {
                if let Some(why) = c
                    .refuse(&format!(
                        "{tag} BAD Log in first: this command needs an authenticated session.\r\n"
                    ))
                    .await?
                {
                    return Ok(Outcome::Closed(why));
                }
                None
            }
        };
        let Some((login, password)) = credentials else {
            continue;
        };

        let config = c.session.config.clone();
        let ip = c.session.peer.ip();
        match throttle::verify(&config, "imap", ip, &login, password).await {
            Err(refusal) => {
                failures += 1;
                let text = match refusal {
                    Refusal::Failed(_) => "NO [AUTHENTICATIONFAILED] Authentication failed.".into(),
                    Refusal::Throttled(l) => format!(
                        "NO [UNAVAILABLE] Too many failed logins, try again in {}.",
                        l.wait_text()
                    ),
                };
                c.send(format!("{tag} {text}\r\n").as_bytes()).await?;
                if failures >= config.server.max_auth_failures {
                    c.send(b"* BYE Too many failed logins.\r\n").await?;
                    return Ok(Outcome::Closed("too many failed logins"));
                }
            }
            Ok(account) => {
                tracing::Span::current().record("account", account.email.as_str());
                let started = std::time::Instant::now();
                match upstream::login(&account, &config.server).await {
                    Ok(up) => {
                        metrics::upstream_connected("imap", started.elapsed().as_secs_f64());
                        metrics::login("imap", "ok", Some(&account.email));
                        info!(upstream = %account.imap.address(), tls = account.imap.target.tls.as_str(), "logged in");
                        if let Some(ticket) = &c.session.ticket {
                            ticket.logged_in();
                        }
                        let caps = filter_capabilities(up.capabilities.iter().map(String::as_str));
                        c.send(format!("{tag} OK [CAPABILITY {caps}] Logged in.\r\n").as_bytes())
                            .await?;
                        let mut leftover = c.framer.take_held();
                        leftover.extend_from_slice(&c.buf[c.start..c.end]);
                        return Ok(Outcome::Relay {
                            upstream: up,
                            account,
                            client_leftover: leftover,
                        });
                    }
                    Err(e) => {
                        let advice = diagnosis::log_advice(&e, Protocol::Imap, &account.email);
                        warn!(upstream = %account.imap.address(), kind = e.kind().label(), error = %e, advice, "upstream login failed");
                        metrics::upstream_error("imap", e.kind().label());
                        let result = diagnosis::login_result(&e);
                        metrics::login("imap", result, Some(&account.email));
                        let text = match &e {
                            UpstreamError::OAuth { source } if source.needs_authorize() => {
                                format!("NO [AUTHENTICATIONFAILED] {}.", source.client_text())
                            }
                            UpstreamError::OAuth { source } => {
                                format!("NO [UNAVAILABLE] {}.", source.client_text())
                            }
                            _ => diagnosis::imap_text(e.kind()).to_owned(),
                        };
                        c.send(format!("{tag} {text}\r\n").as_bytes()).await?;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_of_garbage() {
        assert_eq!(tag_of(b"a1 FOO\r\n"), "a1");
        assert_eq!(tag_of(b"\r\n"), "*");
        assert_eq!(tag_of(b"+ x\r\n"), "*");
        assert_eq!(tag_of(b"(a) x\r\n"), "*");
    }
}
