//! The IMAP side of the gateway: one [`serve`] call per client connection.
//!
//! A session goes through three stages, each in its own module: [`login`] (mailgate is the
//! server until the client has logged in), [`upstream`] (mailgate is the client of the real
//! server and logs in with the stored credential), and [`relay`] (bytes pass between the two).
//! What the relay changes in the bytes it passes is decided by the rules in [`rewrite`].

pub mod exchange;
pub mod folders;
pub mod framer;
pub mod login;
pub mod pop3;
pub mod relay;
pub mod rewrite;
#[cfg(test)]
pub(crate) mod script;
pub mod sent;
pub mod upstream;
pub mod warm;

use crate::session::NoTls;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tracing::info;

pub use crate::session::Session;

/// Serves one IMAP client connection to its end (see [`crate::session::serve`]).
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin + 'static>(stream: S, session: Session) {
    crate::session::serve(stream, session, Imap).await
}

/// IMAP's part of the shared session wrapper.
struct Imap;

impl crate::session::Protocol for Imap {
    const NAME: &'static str = "imap";

    async fn converse<S: AsyncRead + AsyncWrite + Unpin + 'static>(
        &mut self,
        stream: S,
        session: &mut Session,
        greet: bool,
        started: Instant,
    ) -> Option<S> {
        converse(stream, session, started, greet).await
    }

    fn no_tls(&mut self, why: NoTls) {
        match why {
            NoTls::NoCertificate => {
                info!("session ended: no [server.tls] certificate for a TLS connection")
            }
            NoTls::Handshake(e) => info!(error = %e, "session ended: TLS handshake failed"),
        }
    }

    /// IMAP logs its end where it knows the relay's figures, in [`converse`].
    fn ended(self, _: &Session, _: Instant) {}
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
            origin,
            account,
            client_leftover,
            folders,
        } => {
            let rules = rules(&upstream, &account, folders);
            let capabilities = upstream.capabilities;
            let opts = relay::Options {
                counters: crate::metrics::ByteCounters::new("imap", &account.email),
                idle_timeout: session.config.server.idle_timeout,
                upstream_timeout: session.config.server.upstream_timeout,
                shutdown: session.shutdown.clone(),
                rules,
            };
            let (stats, handed_back, ending) = relay::run(
                stream,
                client_leftover,
                upstream.stream,
                upstream.leftover,
                opts,
            )
            .await;
            let handed_back = handed_back.map(|stream| upstream::LoggedIn {
                stream,
                capabilities,
                leftover: Vec::new(),
            });
            warm::after_relay(
                ending,
                handed_back,
                origin,
                account,
                session.config.clone(),
                session.shutdown.clone(),
            );
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

/// The relay's rewrite rules for a session with this upstream: the folder names when the
/// session needs them (first: it may hold a literal mailbox name the others must see
/// rewritten), then mailgate's own; after them the [`rewrite::Track`] for this server, which
/// answers LOGOUT. A new rule (see [`rewrite::Rewrite`]) is added to this list.
fn rules(
    upstream: &upstream::LoggedIn,
    account: &crate::config::Account,
    folders: Option<std::sync::Arc<folders::View>>,
) -> rewrite::Rules {
    let caps = upstream.capabilities.iter().map(String::as_str);
    let nonsync = rewrite::nonsync_limit(caps);
    let mut list: Vec<Box<dyn rewrite::Rewrite>> = Vec::new();
    if let Some(view) = folders {
        let email = account.email.clone();
        list.push(Box::new(rewrite::FolderNames::new(
            view,
            Box::new(move || folders::cache::invalidate(&email)),
        )));
    }
    list.push(Box::new(rewrite::Gateway::new(nonsync)));
    rewrite::Rules::new(list)
        .with_nonsync_literal_max(nonsync)
        .with_track(rewrite::Track::new(&upstream.capabilities))
}
