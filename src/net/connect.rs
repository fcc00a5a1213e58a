//! Connecting to a [`Target`]: DNS, TCP with a time-out per address, and the TLS handshake.
//!
//! The protocol-specific parts (greetings, STARTTLS commands, authentication) live above; this
//! module only yields a byte stream and says, in one error type, exactly which step failed.

use super::dns::{DnsError, Resolver};
use super::probe::{self, rustls_error};
use super::target::{Target, TlsMode};
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

/// Which step of reaching a server failed. Never carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Dns {
        /// The host name.
        host: String,
        /// Resolver error text.
        reason: String,
    },
    /// The DNS lookup of the host name did not finish in time.
    #[error("{address} did not answer within {secs} s (DNS lookup)")]
    DnsTimeout {
        /// host:port.
        address: String,
        /// Seconds waited.
        secs: u64,
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
    /// Implicit TLS was asked for, but the port answered the TLS handshake with something
    /// that is not TLS: a plaintext or STARTTLS port.
    #[error("{address} does not speak TLS on this port: it answered the TLS handshake in plaintext{}", greeting.as_ref().map(|g| format!(" (a plaintext connection is greeted with {g:?})")).unwrap_or_default())]
    NotTls {
        /// host:port.
        address: String,
        /// The port.
        port: u16,
        /// The first line a plaintext connection got, if a second connection got one.
        greeting: Option<String>,
    },
    /// STARTTLS or plaintext was asked for, but the server sent no greeting and answers a TLS
    /// handshake: an implicit-TLS port.
    #[error("{address} sent no greeting within {secs} s and answers a TLS handshake: it is an implicit-TLS port")]
    ExpectsTls {
        /// host:port.
        address: String,
        /// The port.
        port: u16,
        /// Seconds waited for the greeting.
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

impl TlsSummary {
    /// The facts of `conn`'s handshake.
    pub fn of(conn: &rustls::ClientConnection) -> TlsSummary {
        TlsSummary {
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
        }
    }
}

/// What a caller wants to learn of a connection attempt, step by step (`mailgate check`
/// shows each step of the very code the gateway runs). Every method does nothing by default.
pub trait Observe {
    /// The addresses the host name resolved to.
    fn resolved(&mut self, _addresses: &[SocketAddr]) {}
    /// The address that accepted the TCP connection.
    fn connected(&mut self, _address: SocketAddr) {}
    /// A TLS handshake completed.
    fn handshaken(&mut self, _conn: &rustls::ClientConnection) {}
    /// A TLS client configuration to use instead of the target's (`check` verifies with one
    /// that records the certificate and its verdict before deciding exactly as the target's).
    fn tls_config(&self) -> Option<Arc<rustls::ClientConfig>> {
        None
    }
}

/// An [`Observe`] that learns nothing.
pub struct Unobserved;

impl Observe for Unobserved {}

/// A connection to a server, plaintext or TLS.
pub enum UpstreamStream {
    /// No TLS (`tls = "none"`, or before STARTTLS).
    Plain(TcpStream),
    /// TLS, implicit or after STARTTLS. Boxed: the rustls state is large.
    Tls(Box<TlsStream<TcpStream>>),
}

/// Resolves `target`'s host (through `resolver` when given, else the system) and connects,
/// trying each address in turn, each within `timeout`. TCP_NODELAY is set: IMAP and SMTP are
/// request/response protocols of small writes, and Nagle's algorithm would add a round trip
/// to each of them.
pub async fn tcp(
    target: &Target,
    timeout: Duration,
    resolver: Option<SocketAddr>,
    observe: &mut (dyn Observe + Send),
) -> Result<TcpStream, ConnectError> {
    let address = target.address();
    let resolver = Resolver::new(resolver);
    let addrs: Vec<_> =
        match tokio::time::timeout(timeout, resolver.lookup(&target.host, target.port)).await {
            Err(_) => {
                return Err(ConnectError::DnsTimeout {
                    address,
                    secs: timeout.as_secs(),
                })
            }
            Ok(Err(e)) => {
                // The system resolver's error already names the host; keep only its words.
                let reason = match e {
                    DnsError::System { reason, .. } => reason,
                    other => other.to_string(),
                };
                return Err(ConnectError::Dns {
                    host: target.host.clone(),
                    reason,
                });
            }
            Ok(Ok(a)) => a,
        };
    connect_addrs(address, &target.host, addrs, timeout, observe).await
}

/// Connects to the first of `addrs` that accepts, each within `timeout`.
async fn connect_addrs(
    address: String,
    host: &str,
    addrs: Vec<SocketAddr>,
    timeout: Duration,
    observe: &mut (dyn Observe + Send),
) -> Result<TcpStream, ConnectError> {
    if addrs.is_empty() {
        return Err(ConnectError::Dns {
            host: host.to_owned(),
            reason: "no addresses".into(),
        });
    }
    observe.resolved(&addrs);
    let mut last = String::new();
    let mut cause = ConnectCause::Other;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                // Failing to set NODELAY only costs latency; the connection is still good.
                let _ = stream.set_nodelay(true);
                observe.connected(addr);
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
    Err(ConnectError::Connect {
        address,
        reason: last,
        cause,
    })
}

/// Runs the TLS handshake on `tcp`, verifying the certificate against the target's roots and
/// name (or `observe`'s configuration, if it has one). Used for implicit TLS and after a
/// STARTTLS command was accepted.
pub async fn tls_handshake(
    target: &Target,
    tcp: TcpStream,
    timeout: Duration,
    observe: &mut (dyn Observe + Send),
) -> Result<UpstreamStream, ConnectError> {
    let address = target.address();
    let config = match observe.tls_config() {
        Some(c) if target.tls_config.is_some() => Some(c),
        _ => target.tls_config.clone(),
    };
    let Some(config) = config else {
        return Err(ConnectError::Tls {
            address,
            reason: "no TLS configuration for a plaintext account".into(),
            failure: TlsFailure::Other,
        });
    };
    let peer = tcp.peer_addr().ok();
    let connector = tokio_rustls::TlsConnector::from(config);
    match tokio::time::timeout(timeout, connector.connect(target.server_name.clone(), tcp)).await {
        Err(_) => Err(ConnectError::Timeout {
            address,
            secs: timeout.as_secs(),
            step: "TLS handshake",
        }),
        Ok(Err(e)) if not_tls(&e) && target.tls == TlsMode::Implicit => {
            // A second connection shows what the port speaks instead (its greeting), so the
            // log and `mailgate check` can say which setting is wrong.
            let greeting = match peer {
                Some(addr) => probe::plaintext(addr, timeout.max(probe::PROBE_TIMEOUT)).await,
                None => None,
            };
            Err(ConnectError::NotTls {
                address,
                port: target.port,
                greeting,
            })
        }
        Ok(Err(e)) => Err(ConnectError::Tls {
            address,
            reason: tls_reason(&e),
            failure: rustls_error(&e).map_or(TlsFailure::Other, TlsFailure::of),
        }),
        Ok(Ok(s)) => {
            observe.handshaken(s.get_ref().1);
            Ok(UpstreamStream::Tls(Box::new(s)))
        }
    }
}

/// Whether a failed handshake's error says the peer does not speak TLS at all: its answer to
/// the ClientHello is not a TLS record (rustls reports the first record as an invalid
/// message, e.g. `InvalidContentType` for the `*` of `* OK` or the `2` of `220`).
fn not_tls(e: &io::Error) -> bool {
    matches!(rustls_error(e), Some(rustls::Error::InvalidMessage(_)))
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

/// Waits for the server's greeting (`greeting`, which has its own time-out) on a connection
/// without TLS yet (`tls = "starttls"` or `"none"`). A server that stays silent for
/// `connect_timeout` is asked, on a second connection, whether it answers a TLS handshake:
/// an implicit-TLS port waits for the client's hello and never greets, so the time-out would
/// otherwise be all the operator learns. If it does, [`ConnectError::ExpectsTls`] now;
/// otherwise the greeting is awaited as before.
pub async fn await_greeting<T, E: From<ConnectError>>(
    target: &Target,
    peer: Option<SocketAddr>,
    connect_timeout: Duration,
    greeting: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::pin!(greeting);
    let Some(addr) = peer.filter(|_| target.tls != TlsMode::Implicit) else {
        return greeting.await;
    };
    tokio::select! {
        r = &mut greeting => return r,
        _ = tokio::time::sleep(connect_timeout) => {}
    }
    let config = match &target.tls_config {
        Some(c) => c.clone(),
        // A plaintext account has no TLS configuration of its own: the default trust will do,
        // the probe only asks whether the port speaks TLS.
        None => match super::tls::client_config(None) {
            Ok(c) => c,
            Err(_) => return greeting.await,
        },
    };
    let probe = probe::tls(
        target,
        config,
        addr,
        connect_timeout.max(probe::PROBE_TIMEOUT),
    );
    tokio::select! {
        r = &mut greeting => r,
        speaks_tls = probe => {
            if speaks_tls {
                Err(ConnectError::ExpectsTls {
                    address: target.address(),
                    port: target.port,
                    secs: connect_timeout.as_secs(),
                }.into())
            } else {
                greeting.await
            }
        }
    }
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
