//! The part of serving a connection that IMAP and SMTP share: the log span, the implicit-TLS
//! handshake, and the STARTTLS upgrade, around a protocol's own conversation.

use super::Session;
use std::future::Future;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{info, Instrument};

/// Why a TLS connection could not start.
#[derive(Debug)]
pub enum NoTls {
    /// The gateway has no `[server.tls]` certificate.
    NoCertificate,
    /// The handshake failed.
    Handshake(std::io::Error),
}

/// What [`serve`] needs of a protocol.
pub trait Protocol {
    /// The `proto` field of the session's log span.
    const NAME: &'static str;

    /// One conversation on `stream`, greeting first unless it continues after STARTTLS.
    /// Returns the stream when the client was told to go ahead with STARTTLS; what it sent
    /// after that command in plaintext must already be discarded (no command injection,
    /// CVE-2011-0411 style).
    fn converse<S: AsyncRead + AsyncWrite + Unpin + 'static>(
        &mut self,
        stream: S,
        session: &mut Session,
        greet: bool,
        started: Instant,
    ) -> impl Future<Output = Option<S>>;

    /// A TLS connection could not start; the session ends.
    fn no_tls(&mut self, why: NoTls);

    /// The session is over (its closing log line, where the protocol writes one here).
    fn ended(self, session: &Session, started: Instant);
}

/// Serves one client connection to its end: the TLS handshake first on an implicit-TLS
/// listener; otherwise plaintext, upgraded in place when the client asks for STARTTLS.
pub async fn serve<S, P>(stream: S, mut session: Session, mut proto: P)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
    P: Protocol,
{
    let span = super::span(P::NAME, session.id, session.peer);
    async move {
        let started = Instant::now();
        info!("session started");
        // The TLS stages are boxed: inline, their state (a rustls connection) would be part of
        // every plaintext session's future too, and so of every idle session's memory.
        if session.tls {
            Box::pin(over_tls(stream, &mut session, &mut proto, true, started)).await;
        } else if let Some(plain) = proto.converse(stream, &mut session, true, started).await {
            Box::pin(over_tls(plain, &mut session, &mut proto, false, started)).await;
        }
        proto.ended(&session, started);
    }
    .instrument(span)
    .await
}

/// The TLS handshake, then the conversation over TLS.
async fn over_tls<S, P>(
    stream: S,
    session: &mut Session,
    proto: &mut P,
    greet: bool,
    started: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
    P: Protocol,
{
    let Some(local) = session.config.server.tls.as_ref() else {
        proto.no_tls(NoTls::NoCertificate);
        return;
    };
    // A stalled handshake is bounded like the rest of the pre-login phase.
    let timeout = crate::preauth::wait(
        session.config.server.preauth_timeout,
        session.preauth_deadline(),
    )
    .0;
    match crate::net::tls::accept(local.config.clone(), stream, timeout).await {
        Ok(tls) => {
            session.tls = true;
            // After TLS the client cannot ask for STARTTLS again, so no stream comes back.
            let _ = proto.converse(tls, session, greet, started).await;
        }
        Err(e) => proto.no_tls(NoTls::Handshake(e)),
    }
}
