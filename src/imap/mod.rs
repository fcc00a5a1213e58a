//! The IMAP side of the gateway: one [`serve`] call per client connection.
//!
//! A session goes through three stages, each in its own module: [`login`] (mailgate is the
//! server until the client has logged in), [`upstream`] (mailgate is the client of the real
//! server and logs in with the stored credential), and [`relay`] (bytes pass between the two).

pub mod framer;
pub mod login;
pub mod pop3;
pub mod relay;
pub mod upstream;

use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tracing::{info, Instrument};

pub use crate::session::Session;

/// Serves one IMAP client connection to its end: the TLS handshake first on an implicit-TLS
/// listener; otherwise plaintext, upgraded in place when the client asks for STARTTLS.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin + 'static>(stream: S, mut session: Session) {
    let span = crate::server::session_span("imap", session.id, session.peer);
    async move {
        let started = Instant::now();
        info!("session started");
        // The TLS stages are boxed: inline, their state (a rustls connection) would be part of
        // every plaintext session's future too, and so of every idle session's memory.
        if session.tls {
            Box::pin(over_tls(stream, &mut session, started, true)).await;
            return;
        }
        let Some(plain) = converse(stream, &mut session, started, true).await else {
            return;
        };
        // STARTTLS was answered OK. Whatever the client sent after it in plaintext was
        // discarded with the login stage's buffer (no command injection, CVE-2011-0411 style).
        Box::pin(over_tls(plain, &mut session, started, false)).await;
    }
    .instrument(span)
    .await
}

/// The TLS handshake (logged when it fails), then the session over TLS.
async fn over_tls<S: AsyncRead + AsyncWrite + Unpin + 'static>(
    stream: S,
    session: &mut Session,
    started: Instant,
    greet: bool,
) {
    let Some(local) = session.config.server.tls.as_ref() else {
        info!("session ended: no [server.tls] certificate for a TLS connection");
        return;
    };
    let timeout = crate::preauth::wait(
        session.config.server.preauth_timeout,
        session.preauth_deadline(),
    )
    .0;
    match crate::tls::accept(local.config.clone(), stream, timeout).await {
        Ok(tls) => {
            session.tls = true;
            // After TLS the client cannot ask for STARTTLS again, so no stream comes back.
            converse(tls, session, started, greet).await;
        }
        Err(e) => info!(error = %e, "session ended: TLS handshake failed"),
    }
}

/// Greets (unless continuing after STARTTLS), runs the login stage and then the relay.
/// Returns the stream when the client asked for STARTTLS and was told to go ahead.
async fn converse<S: AsyncRead + AsyncWrite + Unpin + 'static>(
    mut stream: S,
    session: &mut Session,
    started: Instant,
    greet: bool,
) -> Option<S> {
    if greet {
        let greeting = format!(
            "* OK [CAPABILITY {}] mailgate ready.\r\n",
            login::capabilities(session)
        );
        if stream.write_all(greeting.as_bytes()).await.is_err() {
            info!("session ended: client gone before the greeting");
            return None;
        }
    }
    // Boxed: the login stage's state (upstream connect, TLS handshake, OAuth) is large and
    // short-lived; unboxed it would stay part of every session's future — and so of every
    // idle session's memory — for the whole session.
    let outcome = match Box::pin(login::run(&mut stream, session)).await {
        Ok(o) => o,
        Err(e) => {
            info!(error = %e, duration_ms = started.elapsed().as_millis() as u64, "session ended: client connection error before login");
            return None;
        }
    };
    match outcome {
        login::Outcome::StartTls => return Some(stream),
        login::Outcome::Closed(why) => {
            let _ = stream.shutdown().await;
            info!(
                duration_ms = started.elapsed().as_millis() as u64,
                "session ended before login: {why}"
            );
        }
        login::Outcome::Relay {
            upstream,
            account,
            client_leftover,
        } => {
            let opts = relay::Options {
                counters: crate::metrics::ByteCounters::new("imap", &account.email),
                idle_timeout: session.config.server.idle_timeout,
                upstream_timeout: session.config.server.upstream_timeout,
                shutdown: session.shutdown.clone(),
                nonsync_literal_max: relay::nonsync_limit(
                    upstream.capabilities.iter().map(String::as_str),
                ),
            };
            let stats = relay::run(
                stream,
                client_leftover,
                upstream.stream,
                upstream.leftover,
                opts,
            )
            .await;
            info!(
                duration_ms = started.elapsed().as_millis() as u64,
                bytes_from_client = stats.from_client,
                bytes_from_upstream = stats.from_upstream,
                bytes_spliced = stats.spliced,
                tls = session.tls,
                "session ended: {}",
                stats.end.as_str()
            );
        }
    }
    None
}
