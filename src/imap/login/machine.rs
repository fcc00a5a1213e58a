//! The pre-login conversation without I/O: client bytes in, response bytes and a next step
//! out.
//!
//! [`Machine::feed`] frames the client's bytes into commands (answering literal
//! announcements on the way), answers what mailgate answers itself (CAPABILITY, NOOP, ID,
//! LOGOUT, STARTTLS, refusals), runs AUTHENTICATE's exchange, and stops at the first thing
//! it cannot do itself: checking credentials ([`Next::Verify`], answered with
//! [`Machine::checked`]), the TLS handshake, or the end of the session. What it answers waits
//! in [`Machine::output`] for the caller to send.

use crate::imap::framer::{Frame, Framer};
use crate::imap::pop3;
use crate::imap::rewrite::filter_capabilities;
use crate::sasl::exchange::{Exchange, Mechanism, Step};
use crate::sasl::SaslError;
use crate::secret::Secret;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::CommandCodec;
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

/// What the conversation depends on: the connection and the `[server]` limits.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The connection is TLS already.
    pub tls: bool,
    /// The listener is on a loopback address.
    pub loopback: bool,
    /// `[server.tls]` is set: STARTTLS is possible on a plaintext connection.
    pub starttls: bool,
    /// Commands answered BAD or refused before the connection ends.
    pub max_bad_commands: u32,
    /// Failed logins before the connection ends.
    pub max_auth_failures: u32,
    /// The listener's port (named in the answer to a POP3 client).
    pub local_port: u16,
}

impl Settings {
    /// The pre-login capabilities for this connection: [`CAPABILITIES`] on TLS or on a
    /// listener without a certificate; plus STARTTLS on a plaintext connection when
    /// `[server.tls]` is set; and on a plaintext non-loopback connection LOGINDISABLED instead
    /// of the AUTH= mechanisms (RFC 9051 6.2.3; Dovecot does the same before TLS when
    /// plaintext auth is off).
    pub fn capabilities(&self) -> &'static str {
        if self.tls || !self.starttls {
            CAPABILITIES
        } else if self.loopback {
            "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE STARTTLS AUTH=PLAIN AUTH=LOGIN"
        } else {
            "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE STARTTLS LOGINDISABLED"
        }
    }

    /// Passwords in clear only where they cannot cross a network (see `capabilities`).
    fn clear_refused(&self) -> bool {
        !self.tls && !self.loopback
    }
}

/// What the caller does next (after sending [`Machine::output`]).
#[derive(Debug)]
pub enum Next {
    /// All input was taken: read more.
    Read,
    /// Check these credentials (locally, then upstream) and report with [`Machine::checked`].
    Verify {
        /// The login name.
        login: String,
        /// The local password.
        password: Secret,
    },
    /// The logged-in session goes to the relay.
    Relay,
    /// The client was told to begin TLS: the handshake comes next.
    StartTls,
    /// The session is over (its BYE, if any, is in the output); why, for the log.
    Close(&'static str),
}

/// How a credential check came out.
#[derive(Debug)]
pub enum Checked<'a> {
    /// Unknown user or wrong password.
    Failed,
    /// Locked out after too many failures; the remaining time for people.
    Throttled(String),
    /// The local login was fine, the upstream one was not; the response text after the tag.
    Upstream(String),
    /// Logged in locally and upstream: the upstream's capabilities.
    LoggedIn(&'a [String]),
}

/// Where the conversation stands.
enum State {
    /// Waiting for a command.
    Command,
    /// AUTHENTICATE waits for the client's answer to a challenge.
    Sasl { tag: String, exchange: Exchange },
    /// Credentials are being checked: no input is taken.
    Verifying { tag: String },
}

/// The pre-login conversation of one connection.
pub struct Machine {
    settings: Settings,
    state: State,
    framer: Framer,
    /// The command read so far (lines and literals).
    cmd: Zeroizing<Vec<u8>>,
    /// Responses not yet sent.
    out: Vec<u8>,
    /// Commands answered BAD or refused so far.
    bad: u32,
    /// Failed logins so far.
    failures: u32,
    /// No command has been parsed yet (a POP3 client's first line is answered in POP3).
    first: bool,
}

impl Machine {
    /// The conversation after the greeting.
    pub fn new(settings: Settings) -> Machine {
        Machine {
            settings,
            state: State::Command,
            framer: Framer::new(MAX_LINE),
            cmd: Zeroizing::new(Vec::new()),
            out: Vec::new(),
            bad: 0,
            failures: 0,
            first: true,
        }
    }

    /// Responses to send before acting on a [`Next`]; empties the queue.
    pub fn output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Whether responses wait to be sent.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Takes the client's bytes up to the next step: how many of `input` were taken, and the
    /// step. Bytes not taken are the caller's to keep (for the next call, or for the relay).
    pub fn feed(&mut self, input: &[u8]) -> (usize, Next) {
        let mut at = 0;
        while at < input.len() {
            if let State::Verifying { .. } = self.state {
                break;
            }
            let Some((n, frame)) = self.framer.next(&input[at..]) else {
                return (input.len(), Next::Read);
            };
            at += n;
            let literal = match frame {
                Frame::Line { bytes, literal } => {
                    if self.cmd.len() + bytes.len() > MAX_COMMAND {
                        return (at, self.bye("Command too long.", "command too long"));
                    }
                    self.cmd.extend_from_slice(bytes);
                    match literal {
                        Some(l) => l,
                        None => match self.complete() {
                            Next::Read => continue,
                            next => return (at, next),
                        },
                    }
                }
                Frame::LongLine { .. } => {
                    return (at, self.bye("Command line too long.", "line too long"));
                }
                Frame::Literal { bytes, .. } => {
                    self.cmd.extend_from_slice(bytes);
                    continue;
                }
            };
            if literal.length > MAX_LITERAL
                || self.cmd.len() as u64 + literal.length > MAX_COMMAND as u64
            {
                if !literal.sync {
                    // LITERAL+ data is on its way and cannot be refused: end the session
                    // rather than read (and discard) an unbounded amount (RFC 7888 4).
                    return (at, self.bye("Literal too large.", "literal too large"));
                }
                self.framer.cancel_literal();
                let tag = tag_of(&self.cmd);
                self.cmd = Zeroizing::new(Vec::new());
                let reply = format!(
                    "{tag} BAD Literal too large (at most {MAX_LITERAL} bytes before login).\r\n"
                );
                if let Some(next) = self.refuse(&reply) {
                    return (at, next);
                }
                continue;
            }
            if literal.sync {
                self.out.extend_from_slice(b"+ Ready for literal data\r\n");
            }
        }
        (at, Next::Read)
    }

    /// The bytes of an unfinished line the framer holds, with `rest` (input not taken): what
    /// the client sent after its login command, for the relay.
    pub fn leftover(&mut self, rest: &[u8]) -> Vec<u8> {
        let mut leftover = self.framer.take_held();
        leftover.extend_from_slice(rest);
        leftover
    }

    /// The outcome of the check asked for with [`Next::Verify`].
    pub fn checked(&mut self, outcome: Checked<'_>) -> Next {
        let tag = match std::mem::replace(&mut self.state, State::Command) {
            State::Verifying { tag } => tag,
            other => {
                self.state = other;
                debug_assert!(false, "a check nobody asked for");
                return Next::Read;
            }
        };
        let text = match outcome {
            Checked::LoggedIn(caps) => {
                let caps = filter_capabilities(caps.iter().map(String::as_str));
                self.reply(format!("{tag} OK [CAPABILITY {caps}] Logged in.\r\n"));
                return Next::Relay;
            }
            Checked::Upstream(text) => {
                self.reply(format!("{tag} {text}\r\n"));
                return Next::Read;
            }
            Checked::Failed => "NO [AUTHENTICATIONFAILED] Authentication failed.".to_owned(),
            Checked::Throttled(wait) => {
                format!("NO [UNAVAILABLE] Too many failed logins, try again in {wait}.")
            }
        };
        self.failures += 1;
        self.reply(format!("{tag} {text}\r\n"));
        if self.failures >= self.settings.max_auth_failures {
            self.out
                .extend_from_slice(b"* BYE Too many failed logins.\r\n");
            return Next::Close("too many failed logins");
        }
        Next::Read
    }

    /// A whole command (or AUTHENTICATE response) has been read.
    fn complete(&mut self) -> Next {
        let cmd = std::mem::replace(&mut self.cmd, Zeroizing::new(Vec::new()));
        match std::mem::replace(&mut self.state, State::Command) {
            State::Sasl { tag, mut exchange } => {
                let step = exchange.respond(&cmd);
                self.sasl_step(tag, exchange, step)
            }
            State::Command => self.command(&cmd),
            verifying @ State::Verifying { .. } => {
                self.state = verifying;
                Next::Read
            }
        }
    }

    /// Parses and answers one command.
    fn command(&mut self, cmd: &[u8]) -> Next {
        let command = match CommandCodec::default().decode(cmd) {
            Ok(([], command)) => command,
            _ if std::mem::take(&mut self.first) && pop3::is_pop3_command(cmd) => {
                tracing::warn!(
                    "a POP3 client connected to the IMAP port; told it mailgate supports IMAP only"
                );
                self.reply(pop3::answer(self.settings.local_port));
                return Next::Close("POP3 client");
            }
            _ => {
                let tag = tag_of(cmd);
                let reply = format!(
                    "{tag} BAD Error in IMAP command: unknown command or invalid arguments.\r\n"
                );
                return self.refuse(&reply).unwrap_or(Next::Read);
            }
        };
        self.first = false;
        let tag = command.tag.inner().to_owned();
        let s = self.settings;
        let refusal = match command.body {
            CommandBody::Capability => {
                let caps = s.capabilities();
                self.reply(format!(
                    "* CAPABILITY {caps}\r\n{tag} OK Capability completed.\r\n"
                ));
                return Next::Read;
            }
            CommandBody::Noop => {
                self.reply(format!("{tag} OK NOOP completed.\r\n"));
                return Next::Read;
            }
            CommandBody::Logout => {
                self.reply(format!(
                    "* BYE Logging out.\r\n{tag} OK Logout completed.\r\n"
                ));
                return Next::Close("logout");
            }
            CommandBody::Id { .. } => {
                self.reply(format!(
                    "* ID (\"name\" \"mailgate\" \"version\" \"{}\")\r\n{tag} OK ID completed.\r\n",
                    env!("CARGO_PKG_VERSION")
                ));
                return Next::Read;
            }
            CommandBody::StartTLS if s.tls => format!("{tag} BAD TLS is already active.\r\n"),
            CommandBody::StartTLS if s.starttls => {
                self.reply(format!("{tag} OK Begin TLS negotiation now.\r\n"));
                return Next::StartTls;
            }
            CommandBody::StartTLS => {
                format!("{tag} BAD STARTTLS is not offered on this listener.\r\n")
            }
            CommandBody::Login { .. } | CommandBody::Authenticate { .. } if s.clear_refused() => {
                format!("{tag} NO [PRIVACYREQUIRED] Use STARTTLS first: this listener does not take passwords in clear.\r\n")
            }
            CommandBody::Login { username, password } => {
                let login = String::from_utf8_lossy(username.as_ref()).into_owned();
                let password = Secret::new(
                    String::from_utf8_lossy(password.declassify().as_ref()).into_owned(),
                );
                self.state = State::Verifying { tag };
                return Next::Verify { login, password };
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                let mech = match mechanism {
                    AuthMechanism::Plain => Mechanism::Plain,
                    AuthMechanism::Login => Mechanism::Login,
                    other => {
                        let reply = format!("{tag} NO [CANNOT] Unsupported authentication mechanism {other}; use PLAIN or LOGIN.\r\n");
                        return self.refuse(&reply).unwrap_or(Next::Read);
                    }
                };
                let initial = initial_response.map(|r| Zeroizing::new(r.declassify().to_vec()));
                let (exchange, step) = Exchange::start(mech, initial);
                return self.sasl_step(tag, exchange, step);
            }
            _ => {
                format!("{tag} BAD Log in first: this command needs an authenticated session.\r\n")
            }
        };
        self.refuse(&refusal).unwrap_or(Next::Read)
    }

    /// Acts on one step of an AUTHENTICATE exchange.
    fn sasl_step(&mut self, tag: String, exchange: Exchange, step: Step) -> Next {
        match step {
            Step::Challenge(challenge) => {
                let line = format!("+ {}\r\n", crate::sasl::encode_b64(challenge));
                self.reply(line);
                self.state = State::Sasl { tag, exchange };
                Next::Read
            }
            Step::Done(login, password) => {
                self.state = State::Verifying { tag };
                Next::Verify { login, password }
            }
            Step::Failed(SaslError::Cancelled) => {
                self.reply(format!("{tag} BAD Authentication cancelled.\r\n"));
                Next::Read
            }
            Step::Failed(e) => {
                self.reply(format!("{tag} BAD {e}.\r\n"));
                Next::Read
            }
        }
    }

    fn reply(&mut self, text: String) {
        self.out.extend_from_slice(text.as_bytes());
    }

    fn bye(&mut self, text: &str, why: &'static str) -> Next {
        self.reply(format!("* BYE {text}\r\n"));
        Next::Close(why)
    }

    /// Answers a command that was invalid or refused; past `max_bad_commands` of them the
    /// connection ends (with a BYE), as Dovecot's imap-login does.
    fn refuse(&mut self, reply: &str) -> Option<Next> {
        self.out.extend_from_slice(reply.as_bytes());
        self.bad += 1;
        if self.bad >= self.settings.max_bad_commands {
            self.out
                .extend_from_slice(b"* BYE Too many invalid commands.\r\n");
            return Some(Next::Close("too many invalid commands"));
        }
        None
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
