//! The IMAP side of the gateway: one [`serve`] call per client connection.
//!
//! A session goes through three stages, each in its own module: [`login`] (mailgate is the
//! server until the client has logged in), [`upstream`] (mailgate is the client of the real
//! server and logs in with the stored credential), and [`relay`] (bytes pass between the two).

pub mod framer;
pub mod login;
pub mod relay;
pub mod upstream;

use crate::config::Config;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tracing::{info, Instrument};

/// Per-connection context.
pub struct Session {
    /// Session number, unique per process, for correlating log lines.
    pub id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// The configuration this session started with (a reload does not change it).
    pub config: Arc<Config>,
    /// Becomes `true` when the gateway shuts down.
    pub shutdown: watch::Receiver<bool>,
}

/// Serves one IMAP client connection to its end.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, mut session: Session) {
    let span = crate::server::session_span("imap", session.id, session.peer);
    async move {
        let started = Instant::now();
        info!("session started");
        let greeting = format!("* OK [CAPABILITY {}] mailgate ready.\r\n", login::CAPABILITIES);
        if stream.write_all(greeting.as_bytes()).await.is_err() {
            info!("session ended: client gone before the greeting");
            return;
        }
        // Boxed: the login stage's state (upstream connect, TLS handshake, OAuth) is large and
        // short-lived; unboxed it would stay part of every session's future — and so of every
        // idle session's memory — for the whole session.
        let outcome = match Box::pin(login::run(&mut stream, &mut session)).await {
            Ok(o) => o,
            Err(e) => {
                info!(error = %e, duration_ms = started.elapsed().as_millis() as u64, "session ended: client connection error before login");
                return;
            }
        };
        match outcome {
            login::Outcome::Closed(why) => {
                let _ = stream.shutdown().await;
                info!(duration_ms = started.elapsed().as_millis() as u64, "session ended before login: {why}");
            }
            login::Outcome::Relay { upstream, account, client_leftover } => {
                let opts = relay::Options {
                    counters: crate::metrics::ByteCounters::new("imap", &account.email),
                    idle_timeout: session.config.server.idle_timeout,
                    shutdown: session.shutdown.clone(),
                    nonsync_literal_max: relay::nonsync_limit(upstream.capabilities.iter().map(String::as_str)),
                };
                let stats = relay::run(stream, client_leftover, upstream.stream, upstream.leftover, opts).await;
                info!(
                    duration_ms = started.elapsed().as_millis() as u64,
                    bytes_from_client = stats.from_client,
                    bytes_from_upstream = stats.from_upstream,
                    "session ended: {}",
                    stats.end.as_str()
                );
            }
        }
    }
    .instrument(span)
    .await
}
