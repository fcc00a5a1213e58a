//! AUTH PLAIN|LOGIN: the client logs in to mailgate with its local password. The conversation
//! is the shared [`crate::sasl::exchange`]; this file words its steps as SMTP replies and
//! checks the credentials it yields.

use super::command;
use super::session::{Input, Next, Smtp};
use crate::metrics;
use crate::sasl::exchange::{Exchange, Mechanism, Step};
use crate::sasl::{self, SaslError};
use crate::secret::Secret;
use crate::throttle::{self, Refusal};
use std::borrow::Cow;
use std::io;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::info;

/// What an exchange step says to the client.
pub(super) enum Said {
    /// A `334` line; the client's next line answers it.
    Challenge(String),
    /// Credentials to verify.
    Done(String, Secret),
    /// The refusal; the attempt counts as a protocol error.
    Failed(Cow<'static, str>),
}

/// Words one exchange step for SMTP.
pub(super) fn said(step: Step) -> Said {
    match step {
        Step::Challenge(c) => Said::Challenge(format!("334 {}", sasl::encode_b64(c))),
        Step::Done(login, password) => Said::Done(login, password),
        Step::Failed(e) => Said::Failed(failure(&e)),
    }
}

/// The reply to an exchange that ended without credentials.
fn failure(e: &SaslError) -> Cow<'static, str> {
    match e {
        SaslError::Cancelled => "501 5.7.0 Authentication cancelled".into(),
        SaslError::Base64 => "501 5.5.2 Invalid base64 data".into(),
        SaslError::TooLong => LINE_TOO_LONG.into(),
        SaslError::MalformedPlain | SaslError::AuthzidMismatch => format!("501 5.5.2 {e}").into(),
    }
}

/// The reply to a SASL response line over the command line bound.
const LINE_TOO_LONG: &str = "500 5.5.2 Line too long";

/// The reply to a mechanism mailgate does not offer.
const UNRECOGNIZED: &str = "504 5.5.4 Unrecognized authentication type; use PLAIN or LOGIN";

impl<S: AsyncRead + AsyncWrite + Unpin> Smtp<'_, S> {
    pub(super) async fn auth(&mut self, args: &str) -> io::Result<Next> {
        if let Err(reply) = self.state.may_auth() {
            self.reply(reply);
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
        let Some(mech) = Mechanism::parse(&mech) else {
            // An initial response that is not base64 is named before the mechanism.
            let bad_ir = ir.is_some_and(|r| sasl::decode_b64(r.as_bytes()).is_err());
            self.reply(&if bad_ir {
                failure(&SaslError::Base64)
            } else {
                UNRECOGNIZED.into()
            });
            return Ok(self.error());
        };
        let (mut exchange, mut step) = Exchange::start_b64(mech, ir.map(str::as_bytes));
        loop {
            match said(step) {
                Said::Done(login, password) => return Ok(self.log_in(login, password).await),
                Said::Failed(reply) => {
                    self.reply(&reply);
                    return Ok(self.error());
                }
                Said::Challenge(line) => self.reply(&line),
            }
            step = match self.read_line().await? {
                Input::Line(line) => exchange.respond(&line),
                Input::TooLong => Step::Failed(SaslError::TooLong),
                Input::Gone(g) => {
                    self.gone(g).await?;
                    return Ok(Next::Close(g.as_str()));
                }
            };
        }
    }

    /// Checks the credentials from AUTH against the account (and the login throttle).
    async fn log_in(&mut self, login: String, password: Secret) -> Next {
        let config = self.session.config.clone();
        let ip = self.session.peer.ip();
        match throttle::verify(&config, "smtp", ip, &login, password).await {
            Ok(account) => {
                tracing::Span::current().record("account", account.email.as_str());
                info!("authenticated");
                self.state.authenticated(account);
                self.login_uncounted = true;
                if let Some(ticket) = &self.session.ticket {
                    ticket.logged_in();
                }
                self.reply("235 2.7.0 Authentication successful");
                Next::Continue
            }
            Err(Refusal::Throttled(l)) => {
                // As Postfix's anvil rate limits: a temporary refusal, and the connection ends.
                self.reply(&format!(
                    "421 4.7.0 Too many failed logins, try again in {}; closing the connection",
                    l.wait_text()
                ));
                Next::Close("login throttled")
            }
            Err(Refusal::Failed(_)) => {
                self.auth_failures += 1;
                self.reply("535 5.7.8 Authentication credentials invalid");
                if self.auth_failures >= config.server.max_auth_failures {
                    self.reply(
                        "421 4.7.0 Too many failed authentication attempts; closing the connection",
                    );
                    return Next::Close("too many failed logins");
                }
                Next::Continue
            }
        }
    }

    /// Counts the session's successful AUTH once, as `result`: at the first contact with the
    /// provider (its verdict on the stored credential) or, if the session never needed it,
    /// as `ok` when it ends.
    pub(super) fn count_login(&mut self, result: &'static str) {
        if std::mem::take(&mut self.login_uncounted) {
            let account = self.state.account().map(|a| a.email.as_str());
            metrics::login("smtp", result, account);
            // `ok` is the one success label (see `diagnosis::login_result`).
            if let Some(email) = account.filter(|_| result == "ok") {
                crate::activity::login(email, crate::activity::Protocol::Smtp);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::state::State;

    fn challenge(step: Step) -> String {
        match said(step) {
            Said::Challenge(line) => line,
            _ => panic!("not a challenge"),
        }
    }

    fn failed(step: Step) -> String {
        match said(step) {
            Said::Failed(reply) => reply.into_owned(),
            _ => panic!("not a failure"),
        }
    }

    #[test]
    fn login_prompts_and_cancel() {
        let mut state = State::<&str>::Greeted;
        state.ehlo();
        assert_eq!(state.may_auth(), Ok(()));
        let (mut x, step) = Exchange::start_b64(Mechanism::Login, None);
        assert_eq!(challenge(step), "334 VXNlcm5hbWU6");
        assert_eq!(challenge(x.respond(b"dQ==\r\n")), "334 UGFzc3dvcmQ6");
        assert_eq!(
            failed(x.respond(b"*\r\n")),
            "501 5.7.0 Authentication cancelled"
        );
        // A cancelled AUTH leaves the session where it was: AUTH may start again.
        assert!(matches!(state, State::Ready));
        assert_eq!(state.may_auth(), Ok(()));
    }

    #[test]
    fn plain_and_its_failures() {
        let (mut x, step) = Exchange::start_b64(Mechanism::Plain, None);
        assert_eq!(challenge(step), "334 ");
        assert_eq!(
            failed(x.respond(b"!!\r\n")),
            "501 5.5.2 Invalid base64 data"
        );
        let (_, step) = Exchange::start_b64(Mechanism::Plain, Some(b"="));
        assert_eq!(failed(step), "501 5.5.2 malformed PLAIN credentials");
        let ir = sasl::encode_b64(b"x\0y\0z");
        let (_, step) = Exchange::start_b64(Mechanism::Plain, Some(ir.as_bytes()));
        assert_eq!(
            failed(step),
            "501 5.5.2 authorization identity must be empty or equal to the login name"
        );
        let ir = sasl::encode_b64(b"\0ola@example.no\0pw");
        let (_, step) = Exchange::start_b64(Mechanism::Plain, Some(ir.as_bytes()));
        assert!(
            matches!(said(step), Said::Done(l, p) if l == "ola@example.no" && p.expose() == "pw")
        );
        assert_eq!(failure(&SaslError::TooLong), LINE_TOO_LONG);
    }
}
