//! The server side of a PLAIN or LOGIN exchange, without I/O.
//!
//! IMAP's `AUTHENTICATE` and SMTP's `AUTH` run the same conversation and differ only in how a
//! challenge and a failure are worded on the wire (`+ …` / `334 …`, `BAD` / `501`). The
//! protocol code starts an [`Exchange`], sends each [`Step::Challenge`] in its own framing,
//! feeds the client's answer line to [`Exchange::respond`], and words a [`Step::Failed`] from
//! its [`SaslError`] kind.

use super::{decode_b64, decode_plain, SaslError};
use crate::secret::Secret;
use zeroize::Zeroizing;

/// The longest base64 response line accepted (IMAP's pre-login line bound; SMTP's is shorter).
pub const MAX_RESPONSE: usize = 64 * 1024;

/// The password mechanisms a client may use to log in to mailgate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// The LOGIN mechanism (draft-murchison-sasl-login): user name and password prompts.
    Login,
}

impl Mechanism {
    /// The mechanism named `name` (any case), if mailgate offers it.
    pub fn parse(name: &str) -> Option<Mechanism> {
        if name.eq_ignore_ascii_case("PLAIN") {
            Some(Mechanism::Plain)
        } else if name.eq_ignore_ascii_case("LOGIN") {
            Some(Mechanism::Login)
        } else {
            None
        }
    }
}

/// What the protocol code does next.
#[derive(Debug)]
pub enum Step {
    /// Send this challenge (raw, not yet base64) and pass the client's next line to
    /// [`Exchange::respond`]. PLAIN's is empty.
    Challenge(&'static [u8]),
    /// The client gave a login name and a password.
    Done(String, Secret),
    /// The exchange is over without credentials; the kind says why.
    Failed(SaslError),
}

/// Where an exchange stands.
enum State {
    /// PLAIN: waiting for the `authzid NUL authcid NUL passwd` message.
    Plain,
    /// LOGIN: waiting for the user name.
    User,
    /// LOGIN: waiting for the password.
    Password(Zeroizing<Vec<u8>>),
    /// Finished; further responses fail.
    Over,
}

/// One PLAIN or LOGIN exchange.
pub struct Exchange {
    state: State,
}

const USERNAME: &[u8] = b"Username:";
const PASSWORD: &[u8] = b"Password:";

impl Exchange {
    /// Starts `mech` with the initial response, if the client sent one (already decoded from
    /// base64, as imap-codec hands it over).
    pub fn start(mech: Mechanism, initial: Option<Zeroizing<Vec<u8>>>) -> (Exchange, Step) {
        let mut x = Exchange {
            state: match mech {
                Mechanism::Plain => State::Plain,
                Mechanism::Login => State::User,
            },
        };
        let step = match initial {
            Some(data) => x.take(data),
            None => x.challenge(),
        };
        (x, step)
    }

    /// Starts `mech` with the initial response still in base64, as SMTP's `AUTH` line has it.
    pub fn start_b64(mech: Mechanism, initial: Option<&[u8]>) -> (Exchange, Step) {
        match initial.map(decode_checked) {
            None => Exchange::start(mech, None),
            Some(Ok(data)) => Exchange::start(mech, Some(data)),
            Some(Err(e)) => (Exchange { state: State::Over }, Step::Failed(e)),
        }
    }

    /// Takes the client's answer to the last challenge: one line, base64, or `*` to cancel.
    pub fn respond(&mut self, line: &[u8]) -> Step {
        let line = line.trim_ascii_end();
        if line == b"*" {
            self.state = State::Over;
            return Step::Failed(SaslError::Cancelled);
        }
        match decode_checked(line) {
            Ok(data) => self.take(data),
            Err(e) => {
                self.state = State::Over;
                Step::Failed(e)
            }
        }
    }

    /// The challenge for the current state.
    fn challenge(&self) -> Step {
        match self.state {
            State::Plain => Step::Challenge(b""),
            State::User => Step::Challenge(USERNAME),
            State::Password(_) => Step::Challenge(PASSWORD),
            State::Over => Step::Failed(SaslError::Cancelled),
        }
    }

    /// Moves on with one decoded response.
    fn take(&mut self, data: Zeroizing<Vec<u8>>) -> Step {
        match std::mem::replace(&mut self.state, State::Over) {
            State::Plain => match decode_plain(&data) {
                Ok((login, password)) => Step::Done(login, password),
                Err(e) => Step::Failed(e),
            },
            State::User => {
                self.state = State::Password(data);
                self.challenge()
            }
            State::Password(user) => Step::Done(
                String::from_utf8_lossy(&user).into_owned(),
                Secret::new(String::from_utf8_lossy(&data).into_owned()),
            ),
            State::Over => Step::Failed(SaslError::Cancelled),
        }
    }
}

/// Decodes one base64 response within [`MAX_RESPONSE`].
fn decode_checked(line: &[u8]) -> Result<Zeroizing<Vec<u8>>, SaslError> {
    if line.len() > MAX_RESPONSE {
        return Err(SaslError::TooLong);
    }
    decode_b64(line).map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::encode_b64;

    fn done(step: Step) -> (String, String) {
        match step {
            Step::Done(l, p) => (l, p.expose().to_owned()),
            other => panic!("not done: {other:?}"),
        }
    }

    #[test]
    fn plain_with_and_without_initial_response() {
        let msg = b"\0ola@example.no\0pw".to_vec();
        let (_, step) = Exchange::start(Mechanism::Plain, Some(Zeroizing::new(msg.clone())));
        assert_eq!(done(step), ("ola@example.no".into(), "pw".into()));

        let (mut x, step) = Exchange::start(Mechanism::Plain, None);
        assert!(matches!(step, Step::Challenge(b"")));
        let step = x.respond(format!("{}\r\n", encode_b64(&msg)).as_bytes());
        assert_eq!(done(step), ("ola@example.no".into(), "pw".into()));
    }

    #[test]
    fn login_prompts_for_user_then_password() {
        let (mut x, step) = Exchange::start(Mechanism::Login, None);
        assert!(matches!(step, Step::Challenge(b"Username:")));
        let step = x.respond(encode_b64(b"ola@example.no").as_bytes());
        assert!(matches!(step, Step::Challenge(b"Password:")));
        assert_eq!(
            done(x.respond(encode_b64(b"pw").as_bytes())),
            ("ola@example.no".into(), "pw".into())
        );
        // An initial response is the user name.
        let (mut x, step) =
            Exchange::start_b64(Mechanism::Login, Some(encode_b64(b"u").as_bytes()));
        assert!(matches!(step, Step::Challenge(b"Password:")));
        assert_eq!(done(x.respond(b"cHc=")), ("u".into(), "pw".into()));
    }

    #[test]
    fn cancel_bad_base64_and_bounds() {
        let (mut x, _) = Exchange::start(Mechanism::Login, None);
        assert!(matches!(
            x.respond(b"*\r\n"),
            Step::Failed(SaslError::Cancelled)
        ));
        assert!(matches!(
            x.respond(b"dQ=="),
            Step::Failed(SaslError::Cancelled)
        ));
        let (mut x, _) = Exchange::start(Mechanism::Plain, None);
        assert!(matches!(x.respond(b"!!"), Step::Failed(SaslError::Base64)));
        let (mut x, _) = Exchange::start(Mechanism::Plain, None);
        let long = vec![b'A'; MAX_RESPONSE + 4];
        assert!(matches!(x.respond(&long), Step::Failed(SaslError::TooLong)));
        let (_, step) = Exchange::start_b64(Mechanism::Plain, Some(b"%%"));
        assert!(matches!(step, Step::Failed(SaslError::Base64)));
        let (_, step) =
            Exchange::start_b64(Mechanism::Plain, Some(encode_b64(b"x\0y\0z").as_bytes()));
        assert!(matches!(step, Step::Failed(SaslError::AuthzidMismatch)));
        assert_eq!(Mechanism::parse("login"), Some(Mechanism::Login));
        assert_eq!(Mechanism::parse("CRAM-MD5"), None);
    }
}
