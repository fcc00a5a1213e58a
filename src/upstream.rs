//! The upstream connection as the gateway sees it: one error type that says exactly which step
//! failed (connecting, TLS, the protocol, the credential), its [`FailureKind`], and the
//! [`Trace`] of the steps that `mailgate check` shows.
//!
//! Reaching the server (DNS, TCP, TLS) is [`crate::net`]'s; the protocol-specific parts
//! (greetings, STARTTLS commands, authentication) live in `imap::upstream` and the SMTP
//! submitter. The error is what the operator reads in the log and what the metrics count by
//! `kind`.

use crate::net::connect::{self as net, ConnectError, Observe};
use crate::net::Target;
use crate::oauth::store::StoreError;
use crate::oauth::OAuthError;
use rustls::HandshakeKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

pub use crate::net::connect::{ConnectCause, TlsFailure, TlsSummary, UpstreamStream};

/// Why the upstream could not be reached or spoke nonsense. Never carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Reaching the server failed: DNS, TCP, TLS, or a port that speaks the other TLS mode
    /// (see [`ConnectError`]). Never [`ConnectError::Timeout`]: a time-out is
    /// [`UpstreamError::Timeout`], whichever step it was.
    #[error(transparent)]
    Net(ConnectError),
    /// The server did not answer in time.
    #[error("{address} did not answer within {secs} s ({step})")]
    Timeout {
        /// host:port.
        address: String,
        /// Seconds waited.
        secs: u64,
        /// What we were waiting for.
        step: &'static str,
    },
    /// The server said something that is not the protocol we expected.
    #[error("{address}: {reason}")]
    Protocol {
        /// host:port.
        address: String,
        /// What was wrong.
        reason: String,
    },
    /// STARTTLS was configured, but the server does not offer it: mailgate does not send the
    /// credential in the clear.
    #[error("{address}: {reason}")]
    NoStarttls {
        /// host:port.
        address: String,
        /// What the server offered instead, in words.
        reason: String,
    },
    /// The account logs in with OAuth, but the server offers no OAuth SASL mechanism here.
    #[error("{address}: {reason}")]
    NoOAuthMechanism {
        /// host:port.
        address: String,
        /// Which mechanism was missing and what was offered, in words.
        reason: String,
    },
    /// The server refused or closed the connection before we were logged in.
    #[error("{address} closed the connection ({step})")]
    Closed {
        /// host:port.
        address: String,
        /// Where it happened.
        step: &'static str,
    },
    /// The server rejected the stored credential.
    #[error("{address} rejected the stored credential for {username}: {reason}")]
    Auth {
        /// host:port.
        address: String,
        /// The upstream user name (not secret).
        username: String,
        /// The server's own words, e.g. `[AUTHENTICATIONFAILED] Authentication failed.`.
        reason: String,
    },
    /// No OAuth 2.0 access token could be had for the account (see [`crate::oauth`]).
    /// Transparent: the cause's own words are the message (a `#[source]` shown in the text too
    /// would print it twice in an error chain).
    #[error(transparent)]
    OAuth {
        /// Why, with the account and, when it applies, the `mailgate oauth authorize` hint.
        #[from]
        source: crate::oauth::OAuthError,
    },
}

/// What kind of failure an [`UpstreamError`] is: the key of the wording table in
/// [`crate::diagnosis`] (client text, SMTP reply, metric label, log and `check` advice). Fine
/// enough that no advice needs to read an error's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The host name did not resolve.
    Dns,
    /// The DNS lookup timed out.
    DnsTimeout,
    /// No TCP connection, and how the last address answered.
    Connect(ConnectCause),
    /// The TLS handshake failed (certificate, protocol version).
    Tls(TlsFailure),
    /// `tls = "implicit"` on a port that does not speak TLS.
    NotTls,
    /// `tls = "starttls"` or `"none"` on an implicit-TLS port.
    ExpectsTls,
    /// `tls = "starttls"`, and the server does not offer STARTTLS.
    NoStarttls,
    /// No answer in time.
    Timeout,
    /// Not the protocol expected, or closed before login.
    Protocol,
    /// The stored credential was refused.
    Auth,
    /// An OAuth account, and the server offers no OAuth mechanism.
    NoOAuthMechanism,
    /// No OAuth access token right now (the identity provider failed): waiting may help.
    OAuthUnavailable,
    /// No OAuth access token until `mailgate oauth authorize` runs again: the refresh token was
    /// revoked, the account never authorized, or its token file unreadable.
    OAuthRevoked,
    /// The shared store (PostgreSQL) the login needed (a token to read or refresh) cannot be
    /// reached: waiting may help; the client's password was not judged.
    StoreUnavailable,
}

impl UpstreamError {
    /// The kind of failure (see [`FailureKind`]).
    pub fn kind(&self) -> FailureKind {
        match self {
            UpstreamError::Net(e) => match e {
                ConnectError::Dns { .. } => FailureKind::Dns,
                ConnectError::DnsTimeout { .. } => FailureKind::DnsTimeout,
                ConnectError::Connect { cause, .. } => FailureKind::Connect(*cause),
                ConnectError::Tls { failure, .. } => FailureKind::Tls(*failure),
                ConnectError::NotTls { .. } => FailureKind::NotTls,
                ConnectError::ExpectsTls { .. } => FailureKind::ExpectsTls,
                ConnectError::Timeout { .. } => FailureKind::Timeout,
            },
            UpstreamError::NoStarttls { .. } => FailureKind::NoStarttls,
            UpstreamError::Timeout { .. } => FailureKind::Timeout,
            UpstreamError::Protocol { .. } | UpstreamError::Closed { .. } => FailureKind::Protocol,
            UpstreamError::Auth { .. } => FailureKind::Auth,
            UpstreamError::NoOAuthMechanism { .. } => FailureKind::NoOAuthMechanism,
            UpstreamError::OAuth {
                source: OAuthError::Store(StoreError::Unavailable { .. }),
            } => FailureKind::StoreUnavailable,
            UpstreamError::OAuth { source } if source.needs_authorize() => {
                FailureKind::OAuthRevoked
            }
            UpstreamError::OAuth { .. } => FailureKind::OAuthUnavailable,
        }
    }
}

/// What a connection attempt got through, step by step, so that `mailgate check` can show
/// each step of the very code the gateway runs. The gateway's own sessions pass
/// [`Trace::off`]: one null pointer, so the login futures (and the SMTP session future that
/// awaits one) grow by 8 bytes, not by the whole record.
#[derive(Default)]
pub struct Trace(Option<Box<Steps>>);

/// The steps a [`Trace::on`] recorded.
#[derive(Default)]
pub struct Steps {
    /// Addresses the host name resolved to.
    pub addresses: Vec<SocketAddr>,
    /// The address that accepted the TCP connection.
    pub connected: Option<SocketAddr>,
    /// The server's first words (IMAP greeting line, SMTP greeting reply), control characters
    /// replaced; recorded before they are judged, so a POP3 or SMTP greeting is kept too.
    pub greeting: Option<String>,
    /// Whether the server accepted STARTTLS.
    pub starttls: bool,
    /// The TLS session, once a handshake completed.
    pub tls: Option<TlsSummary>,
    /// IMAP capabilities or SMTP EHLO extensions: the last list the server sent before login.
    pub capabilities: Option<Vec<String>>,
    /// A TLS client configuration to use instead of the endpoint's: `check` passes one whose
    /// verifier records the certificate and its verdict before deciding exactly as the
    /// endpoint's would.
    pub tls_config: Option<Arc<rustls::ClientConfig>>,
}

impl Trace {
    /// A trace that records nothing (the gateway's sessions).
    pub fn off() -> Trace {
        Trace(None)
    }

    /// A trace that records every step, handshaking with `tls_config` (if given) instead of
    /// the endpoint's TLS configuration.
    pub fn on(tls_config: Option<Arc<rustls::ClientConfig>>) -> Trace {
        Trace(Some(Box::new(Steps {
            tls_config,
            ..Steps::default()
        })))
    }

    /// What was recorded (nothing for [`Trace::off`]).
    pub fn into_steps(self) -> Steps {
        self.0.map(|b| *b).unwrap_or_default()
    }

    fn record(&mut self, f: impl FnOnce(&mut Steps)) {
        if let Some(steps) = self.0.as_deref_mut() {
            f(steps);
        }
    }

    /// Records the greeting text.
    pub fn greeting(&mut self, text: impl FnOnce() -> String) {
        self.record(|s| s.greeting = Some(text()));
    }

    /// Records that the server accepted STARTTLS. What it said before the handshake (its
    /// capability list) no longer counts: the list after TLS is recorded anew.
    pub fn starttls_accepted(&mut self) {
        self.record(|s| {
            s.starttls = true;
            s.capabilities = None;
        });
    }

    /// Records a capability or extension list.
    pub fn capabilities(&mut self, list: impl FnOnce() -> Vec<String>) {
        self.record(|s| s.capabilities = Some(list()));
    }
}

impl From<ConnectError> for UpstreamError {
    fn from(e: ConnectError) -> UpstreamError {
        match e {
            ConnectError::Timeout {
                address,
                secs,
                step,
            } => UpstreamError::Timeout {
                address,
                secs,
                step,
            },
            other => UpstreamError::Net(other),
        }
    }
}

impl Observe for Trace {
    fn resolved(&mut self, addresses: &[SocketAddr]) {
        self.record(|s| s.addresses = addresses.to_vec());
    }

    fn connected(&mut self, address: SocketAddr) {
        self.record(|s| s.connected = Some(address));
    }

    fn handshaken(&mut self, conn: &rustls::ClientConnection) {
        self.record(|s| s.tls = Some(TlsSummary::of(conn)));
    }

    fn tls_config(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.0.as_ref().and_then(|s| s.tls_config.clone())
    }
}

/// Resolves `target`'s host (through `resolver` when given: `[server] resolver`, else the
/// system) and connects (see [`net::tcp`]), recording the addresses found and the one
/// connected in `trace`.
pub async fn tcp_connect_traced(
    target: &Target,
    timeout: Duration,
    resolver: Option<SocketAddr>,
    trace: &mut Trace,
) -> Result<TcpStream, UpstreamError> {
    Ok(net::tcp(target, timeout, resolver, trace).await?)
}

/// The TLS handshake (see [`net::tls_handshake`]), recording the session's facts in `trace`
/// and using its TLS configuration if it has one; counted under `protocol` (`imap`, `smtp`)
/// with whether the server resumed an earlier session.
pub async fn tls_handshake_traced(
    target: &Target,
    tcp: TcpStream,
    timeout: Duration,
    protocol: &'static str,
    trace: &mut Trace,
) -> Result<UpstreamStream, UpstreamError> {
    let stream = net::tls_handshake(target, tcp, timeout, trace).await?;
    if let UpstreamStream::Tls(tls) = &stream {
        let kind = tls.get_ref().1.handshake_kind();
        crate::metrics::upstream_tls_handshake(protocol, kind == Some(HandshakeKind::Resumed));
    }
    Ok(stream)
}

pub use crate::net::connect::await_greeting;
