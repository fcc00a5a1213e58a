//! Where an SMTP session stands, without I/O: which commands the client may give next, and
//! what each accepted one moves the session to.
//!
//! ```text
//! Greeted ─EHLO→ Ready ─AUTH→ Authenticated ─MAIL→ Mail ─DATA→ Data ─end→ Authenticated
//!                                                       └─BDAT→ Bdat ─LAST→ Authenticated
//! ```
//! RSET (and EHLO) from `Mail`, `Data` or `Bdat` goes back to `Authenticated`. The I/O side
//! ([`super::session`]) asks the state before it acts and moves it with one method per
//! transition; the state holds the account (`A`) from AUTH on, so a transaction without a
//! login cannot be built.

use super::limits::MAX_RECIPIENTS;
use crate::upstream::UpstreamError;

/// The session's state.
pub enum State<A> {
    /// The greeting was sent; no EHLO yet.
    Greeted,
    /// EHLO (or HELO) was answered; not logged in.
    Ready,
    /// Logged in as `A`; no mail transaction.
    Authenticated(A),
    /// MAIL FROM was accepted: the envelope is being built.
    Mail(A, Envelope),
    /// DATA's `354` was sent: the body is arriving.
    Data(A, Envelope, Body),
    /// The first BDAT chunk started the body (DATA is then a sequence error).
    Bdat(A, Envelope, Body),
}

/// One mail transaction's envelope, from an accepted MAIL FROM to the end of the data.
pub struct Envelope {
    pub from: String,
    /// RCPT commands taken (the recipient limit counts these).
    pub rcpt_attempts: usize,
    /// Recipients the provider accepted.
    pub rcpts: usize,
    /// Where the provider stands on MAIL FROM.
    pub sender: Sender,
    /// The message's outcome was counted already (a refusal before the data ended it for the
    /// client): `mailgate_smtp_messages_total` counts each transaction once.
    pub counted: bool,
}

/// The upstream's side of MAIL FROM.
pub enum Sender {
    /// Accepted here but not yet sent: it goes upstream with the first RCPT. `reused`: the
    /// upstream connection predates this transaction (it may have been closed meanwhile).
    Deferred { line: String, reused: bool },
    /// Sent upstream (and accepted, or on its way with the first RCPT).
    Sent,
    /// The provider refused the deferred MAIL FROM: the reply every RCPT gets. `closed`: it was
    /// a `421`, so the upstream connection is gone as well.
    Refused { reply: String, closed: bool },
    /// The upstream connection broke during the envelope: everything after gets `451`.
    Broken,
}

/// The message body in flight upstream.
pub struct Body {
    /// Message bytes received so far (unstuffed).
    pub size: u64,
    pub flow: Flow,
    /// What the Sent copy needs from the bytes (`None` until the body is known to flow).
    pub capture: Option<super::sent_copy::Capture>,
}

/// Where the body's bytes go.
pub enum Flow {
    /// Upstream, as they arrive.
    Flowing,
    /// Nowhere: the size limit was passed and the upstream was dropped.
    Over,
    /// Nowhere: writing to the upstream failed and it was dropped.
    Failed(UpstreamError),
    /// Nowhere: the reply is already decided (the upstream refused DATA, or for BDAT its DATA
    /// could not be sent).
    Refused(String),
}

/// What ending a transaction leaves to do upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reset {
    /// There was no transaction.
    Idle,
    /// An envelope was open: the upstream's is cleared with RSET.
    Envelope,
    /// A body was under way: the upstream connection is dropped without the end marker.
    MidBody,
}

/// What a BDAT chunk that was taken leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterChunk {
    /// `250 <n> octets received`; the client sends the next chunk.
    More,
    /// The message ends here: LAST, or a failed chunk, which fails the transaction (RFC 3030).
    Finish,
}

/// The reply when MAIL, RCPT, DATA or BDAT come before AUTH.
pub const AUTH_REQUIRED: &str = "530 5.7.0 Authentication required";
/// The reply to RCPT, DATA or BDAT outside a transaction.
pub const NEED_MAIL: &str = "503 5.5.1 Need MAIL command first";
/// The reply to a RCPT over [`MAX_RECIPIENTS`].
pub const TOO_MANY_RECIPIENTS: &str = "452 4.5.3 Too many recipients (at most 100 per message)";
/// The reply to AUTH or STARTTLS before EHLO.
pub const NEED_EHLO: &str = "503 5.5.1 Send EHLO first";

impl Envelope {
    /// A new envelope for MAIL FROM `from`, the sender upstream as `sender`.
    pub fn new(from: &str, sender: Sender) -> Envelope {
        Envelope {
            from: from.to_owned(),
            rcpt_attempts: 0,
            rcpts: 0,
            sender,
            counted: false,
        }
    }

    /// The upstream connection is gone for this transaction.
    pub fn broken(&self) -> bool {
        matches!(
            self.sender,
            Sender::Broken | Sender::Refused { closed: true, .. }
        )
    }

    /// Marks the upstream connection gone for this transaction.
    pub fn set_broken(&mut self) {
        match &mut self.sender {
            Sender::Refused { closed, .. } => *closed = true,
            other => *other = Sender::Broken,
        }
    }

    /// The deferred MAIL FROM line (and whether the connection was reused) to send now with
    /// the first RCPT; the sender counts as sent from here on.
    pub fn take_deferred(&mut self) -> Option<(String, bool)> {
        if !matches!(self.sender, Sender::Deferred { .. }) {
            return None;
        }
        match std::mem::replace(&mut self.sender, Sender::Sent) {
            Sender::Deferred { line, reused } => Some((line, reused)),
            _ => None,
        }
    }

    /// The transaction can carry no message any more (the provider refused the sender or the
    /// connection broke): the reply to a RCPT is its outcome.
    pub fn ended(&self) -> bool {
        matches!(self.sender, Sender::Broken | Sender::Refused { .. })
    }

    /// Counts one RCPT against the recipient limit; `Err(reply)` when it is over.
    pub fn take_rcpt(&mut self) -> Result<(), &'static str> {
        if self.rcpt_attempts >= MAX_RECIPIENTS {
            return Err(TOO_MANY_RECIPIENTS);
        }
        self.rcpt_attempts += 1;
        Ok(())
    }

    /// Books the provider's reply `code` to a RCPT.
    pub fn rcpt_answered(&mut self, code: u16) {
        if (200..300).contains(&code) {
            self.rcpts += 1;
        }
        if code == 421 {
            self.set_broken();
        }
    }
}

impl Body {
    /// A body whose bytes flow upstream, or whose reply is already `refused`.
    pub fn new(refused: Option<String>) -> Body {
        Body {
            size: 0,
            flow: refused.map_or(Flow::Flowing, Flow::Refused),
            capture: None,
        }
    }

    /// What follows a chunk that was taken (see [`AfterChunk`]).
    pub fn after_chunk(&self, last: bool) -> AfterChunk {
        if last || !matches!(self.flow, Flow::Flowing) {
            AfterChunk::Finish
        } else {
            AfterChunk::More
        }
    }
}

impl<A> State<A> {
    /// The logged-in account, from AUTH on.
    pub fn account(&self) -> Option<&A> {
        match self {
            State::Greeted | State::Ready => None,
            State::Authenticated(a)
            | State::Mail(a, _)
            | State::Data(a, _, _)
            | State::Bdat(a, _, _) => Some(a),
        }
    }

    /// The open transaction's envelope.
    pub fn envelope(&self) -> Option<&Envelope> {
        match self {
            State::Mail(_, e) | State::Data(_, e, _) | State::Bdat(_, e, _) => Some(e),
            _ => None,
        }
    }

    /// The open transaction's envelope, to change.
    pub fn envelope_mut(&mut self) -> Option<&mut Envelope> {
        match self {
            State::Mail(_, e) | State::Data(_, e, _) | State::Bdat(_, e, _) => Some(e),
            _ => None,
        }
    }

    /// The body under way, with its envelope.
    pub fn body_mut(&mut self) -> Option<(&mut Envelope, &mut Body)> {
        match self {
            State::Data(_, e, b) | State::Bdat(_, e, b) => Some((e, b)),
            _ => None,
        }
    }

    /// Whether a body is under way (the connection must not be reused as it is).
    pub fn mid_body(&self) -> bool {
        matches!(self, State::Data(..) | State::Bdat(..))
    }

    /// EHLO/HELO: the transaction ends (as RSET) and the session is ready for AUTH.
    pub fn ehlo(&mut self) -> Reset {
        let reset = self.reset();
        if let State::Greeted = self {
            *self = State::Ready;
        }
        reset
    }

    /// RSET: ends the transaction, if any; the login stays.
    pub fn reset(&mut self) -> Reset {
        let reset = match self {
            State::Greeted | State::Ready | State::Authenticated(_) => return Reset::Idle,
            State::Mail(..) => Reset::Envelope,
            State::Data(..) | State::Bdat(..) => Reset::MidBody,
        };
        self.end_transaction();
        reset
    }

    /// Whether AUTH may start now.
    pub fn may_auth(&self) -> Result<(), &'static str> {
        match self {
            State::Greeted => Err(NEED_EHLO),
            State::Ready => Ok(()),
            _ => Err("503 5.5.1 Already authenticated"),
        }
    }

    /// AUTH succeeded as `account`.
    pub fn authenticated(&mut self, account: A) {
        if let State::Ready = self {
            *self = State::Authenticated(account);
        }
    }

    /// Whether STARTTLS may be answered `220` (the listener's own conditions aside).
    pub fn may_starttls(&self) -> Result<(), &'static str> {
        match self {
            State::Greeted => Err(NEED_EHLO),
            State::Ready | State::Authenticated(_) => Ok(()),
            _ => Err("503 5.5.1 STARTTLS is not allowed during a mail transaction"),
        }
    }

    /// Whether MAIL FROM may start a transaction (the caller has checked the login).
    pub fn may_mail(&self) -> Result<(), &'static str> {
        match self {
            State::Greeted | State::Ready => Err(AUTH_REQUIRED),
            State::Authenticated(_) => Ok(()),
            _ => Err("503 5.5.1 Nested MAIL command"),
        }
    }

    /// MAIL FROM was accepted: the transaction starts with `envelope` (only from
    /// `Authenticated`, see [`State::may_mail`]).
    pub fn mail(&mut self, envelope: Envelope) {
        *self = match std::mem::replace(self, State::Greeted) {
            State::Authenticated(a) => State::Mail(a, envelope),
            other => other,
        };
    }

    /// The envelope a RCPT adds to, or the reply when there is none to add to.
    pub fn rcpt(&mut self) -> Result<&mut Envelope, &'static str> {
        match self {
            State::Mail(_, e) => Ok(e),
            State::Data(..) | State::Bdat(..) => {
                Err("503 5.5.1 RCPT is not allowed after the data started")
            }
            _ => Err(NEED_MAIL),
        }
    }

    /// Whether a body may start (DATA, or BDAT when `bdat`), with the upstream connection
    /// `upstream_alive`. `Some((reply, ends))` refuses it; `ends`: the refusal is the
    /// message's outcome (no recipient, or the provider is gone).
    pub fn body_refusal(&self, bdat: bool, upstream_alive: bool) -> Option<(&'static str, bool)> {
        let (env, in_bdat) = match self {
            State::Greeted | State::Ready => return Some((AUTH_REQUIRED, false)),
            State::Authenticated(_) => return Some((NEED_MAIL, false)),
            State::Mail(_, e) | State::Data(_, e, _) => (e, false),
            State::Bdat(_, e, _) => (e, true),
        };
        let ends = env.rcpts == 0 || env.broken() || !upstream_alive;
        let counts = ends && (bdat || !in_bdat);
        if env.rcpts == 0 && !env.broken() {
            return Some(("554 5.5.1 No valid recipients", counts));
        }
        if !bdat && in_bdat {
            return Some(("503 5.5.1 DATA is not allowed after BDAT", counts));
        }
        if env.broken() || !upstream_alive {
            return Some((closed(), counts));
        }
        None
    }

    /// The body starts (after DATA's `354`, or with the first BDAT chunk); only from `Mail`
    /// ([`State::body_refusal`] says when).
    pub fn start_body(&mut self, bdat: bool, body: Body) {
        *self = match std::mem::replace(self, State::Greeted) {
            State::Mail(a, e) if bdat => State::Bdat(a, e, body),
            State::Mail(a, e) => State::Data(a, e, body),
            other => other,
        };
    }

    /// Ends the transaction (message done, aborted or reset); returns what it held.
    pub fn end_transaction(&mut self) -> Option<(Envelope, Option<Body>)> {
        let (a, ended) = match std::mem::replace(self, State::Greeted) {
            State::Mail(a, e) => (a, (e, None)),
            State::Data(a, e, b) | State::Bdat(a, e, b) => (a, (e, Some(b))),
            other => {
                *self = other;
                return None;
            }
        };
        *self = State::Authenticated(a);
        Some(ended)
    }
}

/// The reply when the upstream connection is gone: the client should retry later.
pub fn closed() -> &'static str {
    crate::diagnosis::smtp_reply(
        UpstreamError::Closed {
            address: String::new(),
            step: "",
        }
        .kind(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    type S = State<&'static str>;

    fn authenticated() -> S {
        let mut s = S::Greeted;
        s.ehlo();
        s.authenticated("ola@example.no");
        s
    }

    fn in_mail(rcpts: usize) -> S {
        let mut s = authenticated();
        s.mail(Envelope::new("ola@example.no", Sender::Sent));
        for _ in 0..rcpts {
            let e = s.rcpt().unwrap();
            e.take_rcpt().unwrap();
            e.rcpt_answered(250);
        }
        s
    }

    #[test]
    fn commands_out_of_order_get_503() {
        let s = S::Greeted;
        assert_eq!(s.may_auth(), Err(NEED_EHLO));
        assert_eq!(s.may_starttls(), Err(NEED_EHLO));
        assert_eq!(s.may_mail(), Err(AUTH_REQUIRED));
        assert_eq!(s.body_refusal(false, true), Some((AUTH_REQUIRED, false)));

        let mut s = S::Greeted;
        assert_eq!(s.ehlo(), Reset::Idle);
        assert!(matches!(s, State::Ready));
        assert_eq!(s.may_auth(), Ok(()));
        assert_eq!(s.rcpt().err(), Some(NEED_MAIL));

        let mut s = authenticated();
        // Transitions from the wrong state change nothing.
        s.start_body(false, Body::new(None));
        assert!(matches!(s, State::Authenticated(_)));
        s.authenticated("someone@else");
        assert_eq!(s.account(), Some(&"ola@example.no"));
        assert_eq!(s.may_auth(), Err("503 5.5.1 Already authenticated"));
        assert_eq!(s.rcpt().err(), Some(NEED_MAIL));
        assert_eq!(s.body_refusal(false, true), Some((NEED_MAIL, false)));
        assert_eq!(s.may_mail(), Ok(()));

        let mut s = in_mail(0);
        s.mail(Envelope::new("other@example.no", Sender::Sent));
        assert_eq!(
            s.envelope().map(|e| e.from.as_str()),
            Some("ola@example.no")
        );
        assert_eq!(s.may_mail(), Err("503 5.5.1 Nested MAIL command"));
        assert_eq!(
            s.may_starttls(),
            Err("503 5.5.1 STARTTLS is not allowed during a mail transaction")
        );
        assert_eq!(
            s.body_refusal(false, true),
            Some(("554 5.5.1 No valid recipients", true))
        );
        assert!(s.rcpt().is_ok());

        let mut s = in_mail(1);
        assert_eq!(s.body_refusal(false, true), None);
        s.start_body(false, Body::new(None));
        assert_eq!(
            s.rcpt().err(),
            Some("503 5.5.1 RCPT is not allowed after the data started")
        );
        assert_eq!(s.may_mail(), Err("503 5.5.1 Nested MAIL command"));
    }

    #[test]
    fn rset_from_each_state() {
        let mut s = S::Greeted;
        assert_eq!(s.reset(), Reset::Idle);
        assert!(matches!(s, State::Greeted));

        let mut s = S::Greeted;
        s.ehlo();
        assert_eq!(s.reset(), Reset::Idle);
        assert!(matches!(s, State::Ready));

        let mut s = authenticated();
        assert_eq!(s.reset(), Reset::Idle);
        assert!(matches!(s, State::Authenticated("ola@example.no")));

        let mut s = in_mail(2);
        assert_eq!(s.reset(), Reset::Envelope);
        assert!(matches!(s, State::Authenticated(_)));

        for bdat in [false, true] {
            let mut s = in_mail(1);
            s.start_body(bdat, Body::new(None));
            assert!(s.mid_body());
            assert_eq!(s.reset(), Reset::MidBody);
            assert!(matches!(s, State::Authenticated(_)));
            assert!(s.envelope().is_none());
        }

        // EHLO inside a transaction ends it as RSET does and keeps the login.
        let mut s = in_mail(1);
        assert_eq!(s.ehlo(), Reset::Envelope);
        assert_eq!(s.account(), Some(&"ola@example.no"));
    }

    #[test]
    fn recipient_limit() {
        let mut s = in_mail(0);
        let e = s.rcpt().unwrap();
        for _ in 0..MAX_RECIPIENTS {
            assert!(e.take_rcpt().is_ok());
        }
        assert_eq!(
            e.take_rcpt(),
            Err("452 4.5.3 Too many recipients (at most 100 per message)")
        );
        assert!(TOO_MANY_RECIPIENTS.contains(&format!("at most {MAX_RECIPIENTS} ")));
        assert_eq!(e.rcpt_attempts, MAX_RECIPIENTS);
        // A refused recipient counts against the limit too, but is no recipient.
        e.rcpt_answered(550);
        assert_eq!(e.rcpts, 0);
    }

    #[test]
    fn bdat_last_versus_data() {
        let mut s = in_mail(1);
        s.start_body(true, Body::new(None));
        assert_eq!(
            s.body_refusal(false, true),
            Some(("503 5.5.1 DATA is not allowed after BDAT", false))
        );
        let (_, body) = s.body_mut().unwrap();
        assert_eq!(body.after_chunk(false), AfterChunk::More);
        assert_eq!(body.after_chunk(true), AfterChunk::Finish);
        body.flow = Flow::Over;
        assert_eq!(body.after_chunk(false), AfterChunk::Finish);
        let (env, body) = s.end_transaction().unwrap();
        assert_eq!(env.rcpts, 1);
        assert!(body.is_some());
        assert!(matches!(s, State::Authenticated(_)));
        assert!(Body::new(Some("550 no".into())).after_chunk(false) == AfterChunk::Finish);
    }

    #[test]
    fn deferred_mail_is_taken_once() {
        let mut s = authenticated();
        let line = "MAIL FROM:<ola@example.no>".to_owned();
        s.mail(Envelope::new(
            "ola@example.no",
            Sender::Deferred {
                line: line.clone(),
                reused: true,
            },
        ));
        let e = s.rcpt().unwrap();
        assert_eq!(e.take_deferred(), Some((line, true)));
        assert!(matches!(e.sender, Sender::Sent));
        assert_eq!(e.take_deferred(), None);
    }

    #[test]
    fn a_broken_upstream_refuses_the_body() {
        let mut s = in_mail(0);
        let e = s.rcpt().unwrap();
        e.sender = Sender::Refused {
            reply: "550 5.7.1 no".into(),
            closed: false,
        };
        assert!(e.ended() && !e.broken());
        assert_eq!(
            s.body_refusal(false, true),
            Some(("554 5.5.1 No valid recipients", true))
        );
        s.rcpt().unwrap().set_broken();
        assert!(matches!(
            s.envelope().unwrap().sender,
            Sender::Refused { closed: true, .. }
        ));
        assert_eq!(s.body_refusal(true, false), Some((closed(), true)));
        let mut s = in_mail(1);
        assert_eq!(s.body_refusal(false, false), Some((closed(), true)));
        s.rcpt().unwrap().rcpt_answered(421);
        assert!(s.envelope().unwrap().broken());
    }
}
