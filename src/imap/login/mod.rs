//! The pre-authentication state: mailgate itself is the IMAP server until the client has
//! logged in with its local password and the upstream login has succeeded.
//!
//! The conversation is [`machine::Machine`], without I/O; [`run`] is the loop that reads for
//! it, sends what it answers, and does what it asks: check credentials (locally, then with
//! the upstream login), hand over to STARTTLS or the relay, or close.
//!
//! Commands are framed with [`Framer`](crate::imap::framer::Framer) (so that pipelined bytes
//! after LOGIN are kept for the relay, which imap-codec's own fragmentizer cannot hand back)
//! and parsed with imap-codec. Everything is bounded: a 64 KiB line (RFC 2971's largest ID
//! command is about 32 KiB, twice that with every character of its values escaped), an 8 KiB
//! literal, 80 KiB per command, a silence time-out per read and a deadline for the whole
//! phase, a number of invalid commands and of failed logins per connection, and a place among
//! the pre-login sessions that a newer one may take (see [`crate::preauth`]).

pub mod machine;

pub use machine::{CAPABILITIES, MAX_LINE, MAX_LITERAL};

use crate::diagnosis::{self, Protocol};
use crate::imap::pop3;
use crate::imap::upstream::LoggedIn;
use crate::imap::warm::{self, Origin};
use crate::imap::Session;
use crate::metrics;
use crate::preauth::{self, Limit};
use crate::secret::Secret;
use crate::throttle::{self, Refusal};
use machine::{Checked, Machine, Next, Settings};
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{info, warn};
use zeroize::Zeroizing;

/// The pre-login conversation's settings for this connection.
fn settings(session: &Session) -> Settings {
    let server = &session.config.server;
    Settings {
        tls: session.tls,
        loopback: session.loopback,
        starttls: server.tls.is_some(),
        max_bad_commands: server.max_bad_commands,
        max_auth_failures: server.max_auth_failures,
        local_port: session.local_port,
    }
}

/// The pre-login capabilities for this connection (see [`Settings::capabilities`]).
pub fn capabilities(session: &Session) -> &'static str {
    settings(session).capabilities()
}

/// How pre-authentication ended.
pub enum Outcome {
    /// Logged in locally and upstream; relay from here.
    Relay {
        /// The upstream connection.
        upstream: LoggedIn,
        /// Where it came from (a new login or a kept one).
        origin: crate::imap::warm::Origin,
        /// The account logged in.
        account: Arc<crate::config::Account>,
        /// Client bytes already read after the login command.
        client_leftover: Vec<u8>,
        /// What the session's folder rule works from; `None`: no rule needed.
        folders: Option<Arc<crate::imap::folders::View>>,
    },
    /// The connection is over (LOGOUT, EOF, time-out, too many failures, shutdown).
    Closed(&'static str),
    /// The client asked for STARTTLS and was told `OK`: the TLS handshake comes next. Bytes
    /// it sent after the command were dropped with this stage's buffer.
    StartTls,
}

/// Runs pre-authentication on `stream` (the greeting has been sent).
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    session: &mut Session,
) -> io::Result<Outcome> {
    let mut machine = Machine::new(settings(session));
    let mut c = Client {
        stream,
        buf: Zeroizing::new(Vec::new()),
        start: 0,
        end: 0,
        session,
        heard: false,
    };
    loop {
        let (n, next) = machine.feed(&c.buf[c.start..c.end]);
        c.start += n;
        if machine.has_output() {
            c.send(&machine.output()).await?;
        }
        match next {
            Next::Read => {
                if let Err(why) = c.read().await? {
                    return Ok(Outcome::Closed(why));
                }
            }
            Next::Verify { login, password } => {
                let (next, logged_in) = match check(c.session, &login, password).await {
                    Ok((mut up, origin, account)) => {
                        // Before the client hears OK: the folders decide its capabilities.
                        let server = &c.session.config.server;
                        let folders =
                            crate::imap::folders::prepare::view(&account, &mut up, server).await;
                        let next = machine.checked(Checked::LoggedIn(&up.capabilities));
                        (next, Some((up, origin, account, folders)))
                    }
                    Err(failed) => (machine.checked(failed), None),
                };
                c.send(&machine.output()).await?;
                match (next, logged_in) {
                    (Next::Relay, Some((upstream, origin, account, folders))) => {
                        let client_leftover = machine.leftover(&c.buf[c.start..c.end]);
                        return Ok(Outcome::Relay {
                            upstream,
                            origin,
                            account,
                            client_leftover,
                            folders,
                        });
                    }
                    (Next::Close(why), _) => return Ok(Outcome::Closed(why)),
                    _ => {}
                }
            }
            Next::StartTls => return Ok(Outcome::StartTls),
            Next::Close(why) => return Ok(Outcome::Closed(why)),
            Next::Relay => unreachable!("the relay follows only a check"),
        }
    }
}

/// Checks the credentials locally (with throttling), then logs in upstream with the stored
/// credential (or takes a kept connection, see [`crate::imap::warm`]): the upstream
/// connection, or how it failed.
async fn check(
    session: &Session,
    login: &str,
    password: Secret,
) -> Result<(LoggedIn, Origin, Arc<crate::config::Account>), Checked<'static>> {
    let config = session.config.clone();
    let account = match throttle::verify(&config, "imap", session.peer.ip(), login, password).await
    {
        Ok(account) => account,
        Err(Refusal::Failed(_)) => return Err(Checked::Failed),
        Err(Refusal::Throttled(l)) => return Err(Checked::Throttled(l.wait_text())),
    };
    tracing::Span::current().record("account", account.email.as_str());
    let started = std::time::Instant::now();
    match warm::login(&account, &config).await {
        Ok((up, origin)) => {
            if !origin.warm {
                metrics::upstream_connected("imap", started.elapsed().as_secs_f64());
            }
            metrics::login("imap", "ok", Some(&account.email));
            crate::activity::login(&account.email, crate::activity::Protocol::Imap);
            info!(upstream = %account.imap.address(), tls = account.imap.target.tls.as_str(), warm = origin.warm, "logged in");
            if let Some(ticket) = &session.ticket {
                ticket.logged_in();
            }
            Ok((up, origin, account))
        }
        Err(e) => {
            let advice = diagnosis::log_advice(&e, Protocol::Imap, &account.email);
            warn!(upstream = %account.imap.address(), kind = e.kind().label(), error = %e, advice, "upstream login failed");
            metrics::upstream_error("imap", e.kind().label());
            let result = diagnosis::login_result(&e);
            metrics::login("imap", result, Some(&account.email));
            Err(Checked::Upstream(
                diagnosis::imap_login_text(&e).into_owned(),
            ))
        }
    }
}

/// The client connection while mailgate speaks for itself.
struct Client<'s, S> {
    stream: &'s mut S,
    buf: Zeroizing<Vec<u8>>,
    start: usize,
    end: usize,
    session: &'s mut Session,
    /// Whether the client has sent a byte on this connection since the greeting.
    heard: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<'_, S> {
    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    async fn bye(&mut self, text: &str, why: &'static str) -> io::Result<&'static str> {
        self.send(format!("* BYE {text}\r\n").as_bytes()).await?;
        Ok(why)
    }

    /// Reads the client's next bytes (all earlier ones have been taken): `Err(why)` when the
    /// connection is over instead (its BYE, if any, sent).
    async fn read(&mut self) -> io::Result<Result<(), &'static str>> {
        self.start = 0;
        self.end = 0;
        if self.buf.len() < 4096 {
            self.buf.resize(4096, 0);
        }
        let n = match self.fill().await? {
            Ok(n) => n,
            Err(why) => return Ok(Err(why)),
        };
        if n == 0 {
            return Ok(Err("client closed"));
        }
        self.end = n;
        Ok(Ok(()))
    }

    /// Waits for the client's next bytes within the pre-login limits: the silence time-out
    /// (shorter before the first byte, see [`pop3::FIRST_COMMAND_WAIT`]), the whole-phase
    /// deadline, shutdown, and a newer client taking this one's place.
    async fn fill(&mut self) -> io::Result<Result<usize, &'static str>> {
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
                "no command after the greeting"
            }
        };
        Ok(Err(closed))
    }
}

#[cfg(test)]
mod tests;
