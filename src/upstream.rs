//! Connecting to an upstream server: DNS, TCP with a time-out per address, and TLS.
//!
//! The protocol-specific parts (greetings, STARTTLS commands, authentication) live in
//! `imap::upstream` and the SMTP submitter; this module only yields a byte stream and says, in
//! one error type, exactly which step failed. That error is what the operator reads in the log
//! and what the metrics count by `kind`.

use crate::config::Endpoint;
use rustls_pki_types::CertificateDer;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Why the upstream could not be reached or spoke nonsense. Never carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Dns {
        /// The host name.
        host: String,
        /// Resolver error text.
        reason: String,
    },
    /// No address accepted a TCP connection.
    #[error("cannot connect to {address}: {reason}")]
    Connect {
        /// host:port.
        address: String,
        /// The last error seen.
        reason: String,
        /// What the last address did.
        cause: ConnectCause,
    },
    /// The TLS handshake failed (untrusted or wrong certificate, protocol mismatch).
    #[error("TLS with {address} failed: {reason}")]
    Tls {
        /// host:port.
        address: String,
        /// rustls's explanation.
        reason: String,
        /// What kind of failure, for advice chosen without reading `reason`.
        failure: TlsFailure,
    },
    /// Implicit TLS was configured, but the port answered the TLS handshake with something
    /// that is not TLS (rustls: an invalid first record): a plaintext or STARTTLS port.
    #[error("{address} does not speak TLS on this port: it answered the TLS handshake in plaintext{}", greeting.as_ref().map(|g| format!(" (a plaintext connection is greeted with {g:?})")).unwrap_or_default())]
    NotTls {
        /// host:port.
        address: String,
        /// The port.
        port: u16,
        /// The first line a plaintext connection got, if a second connection got one.
        greeting: Option<String>,
    },
    /// STARTTLS or plaintext was configured, but the server sent no greeting and answers a
    /// TLS handshake: an implicit-TLS port, waiting for the client's TLS hello.
    #[error("{address} sent no greeting within {secs} s and answers a TLS handshake: it is an implicit-TLS port")]
    ExpectsTls {
        /// host:port.
        address: String,
        /// The port.
        port: u16,
        /// Seconds waited for the greeting.
        secs: u64,
    },
    /// The DNS lookup of the host name did not finish in time.
    #[error("{address} did not answer within {secs} s (DNS lookup)")]
    DnsTimeout {
        /// host:port.
        address: String,
        /// Seconds waited.
        secs: u64,
    },
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

/// How the last address answered a TCP connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectCause {
    /// Refused (nothing listens on the port).
    Refused,
    /// No answer within the time-out (the host is down or a firewall drops it).
    NoAnswer,
    /// Another error (unreachable network, …).
    Other,
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
}

/// The kind of a TLS failure that changes what the user is told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    /// The certificate chains to no trusted root: a private CA or a self-signed certificate,
    /// fixed by trusting its CA (`ca_file`).
    UntrustedIssuer,
    /// The certificate expired.
    Expired,
    /// The certificate is not for the name mailgate connected to.
    WrongName,
    /// Anything else: a certificate not valid yet, a protocol mismatch, no TLS configuration.
    Other,
}

impl TlsFailure {
    /// The kind of `e`.
    pub fn of(e: &rustls::Error) -> TlsFailure {
        use rustls::CertificateError as C;
        match e {
            rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
                TlsFailure::UntrustedIssuer
            }
            rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
                TlsFailure::Expired
            }
            rustls::Error::InvalidCertificate(
                C::NotValidForName | C::NotValidForNameContext { .. },
            ) => TlsFailure::WrongName,
            _ => TlsFailure::Other,
        }
    }
}

impl UpstreamError {
    /// The kind of failure (see [`FailureKind`]).
    pub fn kind(&self) -> FailureKind {
        match self {
            UpstreamError::Dns { .. } => FailureKind::Dns,
            UpstreamError::DnsTimeout { .. } => FailureKind::DnsTimeout,
            UpstreamError::Connect { cause, .. } => FailureKind::Connect(*cause),
            UpstreamError::Tls { failure, .. } => FailureKind::Tls(*failure),
            UpstreamError::NotTls { .. } => FailureKind::NotTls,
            UpstreamError::ExpectsTls { .. } => FailureKind::ExpectsTls,
            UpstreamError::NoStarttls { .. } => FailureKind::NoStarttls,
            UpstreamError::Timeout { .. } => FailureKind::Timeout,
            UpstreamError::Protocol { .. } | UpstreamError::Closed { .. } => FailureKind::Protocol,
            UpstreamError::Auth { .. } => FailureKind::Auth,
            UpstreamError::NoOAuthMechanism { .. } => FailureKind::NoOAuthMechanism,
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

/// The facts of a completed TLS handshake.
#[derive(Debug, Clone)]
pub struct TlsSummary {
    /// e.g. `TLSv1_3`.
    pub version: String,
    /// e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The server's certificate chain, end entity first.
    pub peer_certificates: Vec<CertificateDer<'static>>,
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

/// A connection to the upstream server, plaintext or TLS.
pub enum UpstreamStream {
    /// No TLS (`tls = "none"`, or before STARTTLS).
    Plain(TcpStream),
    /// TLS, implicit or after STARTTLS. Boxed: the rustls state is large.
    Tls(Box<TlsStream<TcpStream>>),
}

/// Resolves and connects to `endpoint` with the system resolver; see [`tcp_connect_via`].
pub async fn tcp_connect(
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<TcpStream, UpstreamError> {
    tcp_connect_via(endpoint, timeout, None).await
}

/// Resolves `endpoint`'s host (through `resolver` when given: `[server] resolver`, else the
/// system) and connects, trying each address in turn, each within `timeout`.
pub async fn tcp_connect_via(
    endpoint: &Endpoint,
    timeout: Duration,
    resolver: Option<SocketAddr>,
) -> Result<TcpStream, UpstreamError> {
    tcp_connect_traced(endpoint, timeout, resolver, &mut Trace::off()).await
}

/// [`tcp_connect_via`], recording the addresses found and the one connected in `trace`.
/// TCP_NODELAY is set: IMAP and SMTP are request/response protocols of small writes, and
/// Nagle's algorithm would add a round trip to each of them.
pub async fn tcp_connect_traced(
    endpoint: &Endpoint,
    timeout: Duration,
    resolver: Option<SocketAddr>,
    trace: &mut Trace,
) -> Result<TcpStream, UpstreamError> {
    let address = endpoint.address();
    let resolver = crate::discover::dns::Resolver::new(resolver);
    let addrs: Vec<_> =
        match tokio::time::timeout(timeout, resolver.lookup(&endpoint.host, endpoint.port)).await {
            Err(_) => {
                return Err(UpstreamError::DnsTimeout {
                    address,
                    secs: timeout.as_secs(),
                })
            }
            Ok(Err(e)) => {
                // The system resolver's error already names the host; keep only its words.
                let reason = match e {
                    crate::discover::dns::DnsError::System { reason, .. } => reason,
                    other => other.to_string(),
                };
                return Err(UpstreamError::Dns {
                    host: endpoint.host.clone(),
                    reason,
                });
            }
            Ok(Ok(a)) => a,
        };
    connect_addrs(address, &endpoint.host, addrs, timeout, trace).await
}

/// Connects to the first of `addrs` that accepts, each within `timeout`.
async fn connect_addrs(
    address: String,
    host: &str,
    addrs: Vec<SocketAddr>,
    timeout: Duration,
    trace: &mut Trace,
) -> Result<TcpStream, UpstreamError> {
    if addrs.is_empty() {
        return Err(UpstreamError::Dns {
            host: host.to_owned(),
            reason: "no addresses".into(),
        });
    }
    trace.record(|s| s.addresses.clone_from(&addrs));
    let mut last = String::new();
    let mut cause = ConnectCause::Other;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // Failing to set NODELAY only costs latency; the connection is still good.
                let _ = stream.set_nodelay(true);
                trace.record(|s| s.connected = Some(addr));
                return Ok(stream);
            }
            Ok(Err(e)) => {
                cause = match e.kind() {
                    io::ErrorKind::ConnectionRefused => ConnectCause::Refused,
                    _ => ConnectCause::Other,
                };
                last = format!("{addr}: {e}");
            }
            Err(_) => {
                cause = ConnectCause::NoAnswer;
                last = format!("{addr}: no answer within {} s", timeout.as_secs());
            }
        }
    }
    Err(UpstreamError::Connect {
        address,
        reason: last,
        cause,
    })
}

/// Runs the TLS handshake on `tcp`, verifying the certificate against the endpoint's roots and
/// name. Used for implicit TLS and after a STARTTLS command was accepted.
pub async fn tls_handshake(
    endpoint: &Endpoint,
    tcp: TcpStream,
    timeout: Duration,
) -> Result<UpstreamStream, UpstreamError> {
    tls_handshake_traced(endpoint, tcp, timeout, &mut Trace::off()).await
}

/// [`tls_handshake`], recording the session's facts in `trace` and using its TLS
/// configuration if it has one.
pub async fn tls_handshake_traced(
    endpoint: &Endpoint,
    tcp: TcpStream,
    timeout: Duration,
    trace: &mut Trace,
) -> Result<UpstreamStream, UpstreamError> {
    let address = endpoint.address();
    let own = trace.0.as_ref().and_then(|s| s.tls_config.clone());
    let config = match own {
        Some(c) if endpoint.tls_config.is_some() => Some(c),
        _ => endpoint.tls_config.clone(),
    };
    let Some(config) = config else {
        return Err(UpstreamError::Tls {
            address,
            reason: "no TLS configuration for a plaintext account".into(),
            failure: TlsFailure::Other,
        });
    };
    let peer = tcp.peer_addr().ok();
    let connector = tokio_rustls::TlsConnector::from(config);
    match tokio::time::timeout(
        timeout,
        connector.connect(endpoint.server_name.clone(), tcp),
    )
    .await
    {
        Err(_) => Err(UpstreamError::Timeout {
            address,
            secs: timeout.as_secs(),
            step: "TLS handshake",
        }),
        Ok(Err(e)) if not_tls(&e) && endpoint.tls == crate::config::TlsMode::Implicit => {
            // A second connection shows what the port speaks instead (its greeting), so the
            // log and `mailgate check` can say which setting is wrong.
            let greeting = match peer {
                Some(addr) => probe_plaintext(addr, timeout.max(PROBE_TIMEOUT)).await,
                None => None,
            };
            Err(UpstreamError::NotTls {
                address,
                port: endpoint.port,
                greeting,
            })
        }
        Ok(Err(e)) => Err(UpstreamError::Tls {
            address,
            reason: tls_reason(&e),
            failure: rustls_error(&e).map_or(TlsFailure::Other, TlsFailure::of),
        }),
        Ok(Ok(s)) => {
            let conn = s.get_ref().1;
            trace.record(|steps| {
                steps.tls = Some(TlsSummary {
                    version: conn
                        .protocol_version()
                        .map(|v| format!("{v:?}"))
                        .unwrap_or_default(),
                    cipher: conn
                        .negotiated_cipher_suite()
                        .map(|c| format!("{:?}", c.suite()))
                        .unwrap_or_default(),
                    peer_certificates: conn
                        .peer_certificates()
                        .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
                        .unwrap_or_default(),
                })
            });
            Ok(UpstreamStream::Tls(Box::new(s)))
        }
    }
}

/// The least time a diagnostic probe (a second connection after a failure) waits for its
/// answer: a short `connect_timeout` must not cost the diagnosis.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a failed handshake's error says the peer does not speak TLS at all: its answer to
/// the ClientHello is not a TLS record (rustls reports the first record as an invalid
/// message, e.g. `InvalidContentType` for the `*` of `* OK` or the `2` of `220`).
fn not_tls(e: &io::Error) -> bool {
    matches!(
        e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidMessage(_))
    )
}

/// Connects to `addr` without TLS and returns the first line the server sends, if it sends
/// a printable one within `timeout` (a plaintext greeting where implicit TLS was configured).
pub async fn probe_plaintext(addr: SocketAddr, timeout: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let read = async {
        let mut tcp = TcpStream::connect(addr).await.ok()?;
        let mut buf = Vec::with_capacity(512);
        while !buf.contains(&b'\n') && buf.len() < 512 {
            let n = (&mut tcp).take(512).read_buf(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
        }
        Some(buf)
    };
    let buf = tokio::time::timeout(timeout, read).await.ok()??;
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let text: String = String::from_utf8_lossy(line)
        .trim_end()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    // TLS alerts and other binary answers are not a greeting.
    (!text.is_empty() && text.is_ascii()).then_some(text)
}

/// Whether `addr` answers a TLS handshake with `config`: it completed, or failed for a reason
/// only a TLS server can cause (its certificate, an alert). Nothing is sent after it.
pub async fn probe_tls(
    endpoint: &Endpoint,
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    timeout: Duration,
) -> bool {
    let handshake = async {
        let tcp = TcpStream::connect(addr).await.ok()?;
        let connector = tokio_rustls::TlsConnector::from(config);
        Some(
            match connector.connect(endpoint.server_name.clone(), tcp).await {
                Ok(_) => true,
                Err(e) => matches!(
                    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
                    Some(r) if !matches!(r, rustls::Error::InvalidMessage(_))
                ),
            },
        )
    };
    matches!(
        tokio::time::timeout(timeout, handshake).await,
        Ok(Some(true))
    )
}

/// Waits for the server's greeting (`greeting`, which has its own time-out) on a connection
/// without TLS yet (`tls = "starttls"` or `"none"`). A server that stays silent for
/// `connect_timeout` is asked, on a second connection, whether it answers a TLS handshake:
/// an implicit-TLS port waits for the client's hello and never greets, so the time-out would
/// otherwise be all the operator learns. If it does, [`UpstreamError::ExpectsTls`] now;
/// otherwise the greeting is awaited as before.
pub async fn await_greeting<T>(
    endpoint: &Endpoint,
    peer: Option<SocketAddr>,
    connect_timeout: Duration,
    greeting: impl std::future::Future<Output = Result<T, UpstreamError>>,
) -> Result<T, UpstreamError> {
    tokio::pin!(greeting);
    let Some(addr) = peer.filter(|_| endpoint.tls != crate::config::TlsMode::Implicit) else {
        return greeting.await;
    };
    tokio::select! {
        r = &mut greeting => return r,
        _ = tokio::time::sleep(connect_timeout) => {}
    }
    let config = match &endpoint.tls_config {
        Some(c) => c.clone(),
        // A plaintext account has no TLS configuration of its own: the default trust will do,
        // the probe only asks whether the port speaks TLS.
        None => match crate::tls::client_config(None) {
            Ok(c) => c,
            Err(_) => return greeting.await,
        },
    };
    let probe = probe_tls(endpoint, config, addr, connect_timeout.max(PROBE_TIMEOUT));
    tokio::select! {
        r = &mut greeting => r,
        speaks_tls = probe => {
            if speaks_tls {
                Err(UpstreamError::ExpectsTls {
                    address: endpoint.address(),
                    port: endpoint.port,
                    secs: connect_timeout.as_secs(),
                })
            } else {
                greeting.await
            }
        }
    }
}

/// rustls errors arrive wrapped in io::Error; unwrap them so the log names the real cause
/// (e.g. "invalid peer certificate: UnknownIssuer").
fn tls_reason(e: &io::Error) -> String {
    match rustls_error(e) {
        Some(rustls_err) => rustls_err.to_string(),
        None if e.kind() == io::ErrorKind::InvalidData => {
            format!("{e} (is this port plaintext? check implicit vs starttls)")
        }
        None => e.to_string(),
    }
}

/// The rustls error inside an io::Error, if that is what it is.
fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_flush(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            UpstreamStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
