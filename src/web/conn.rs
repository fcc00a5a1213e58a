//! The page's HTTP connections: bound at start, accepted in a loop of their own, each served
//! in its own task (HTTP/1.1, optionally inside TLS) with bounded headers and time, and ended
//! gracefully on the server's [`Shutdown`].

use super::App;
use crate::config::Config;
use crate::session::Shutdown;
use axum::Extension;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// Connections served at once; one more waits in the backlog.
const MAX_CONNECTIONS: usize = 64;
/// The TLS handshake and each request's headers must arrive within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// However active, a connection ends after this long (the browser opens another).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// After a shutdown, requests in flight get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Read buffer, and so the largest request head.
const MAX_HEAD: usize = 16 * 1024;

/// The peer of a connection (for the sign-in throttle).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// The page's listener, bound at start.
pub struct Bound {
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Bound {
    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Binds `[web] listen` if the config has a `[web]` table.
pub async fn bind(config: &Config) -> std::io::Result<Option<Bound>> {
    let Some(web) = &config.web else {
        return Ok(None);
    };
    let listener = TcpListener::bind(web.listen).await?;
    Ok(Some(Bound {
        listener,
        tls: web.tls.as_ref().map(|t| t.config.clone()),
    }))
}

/// Serves the page until `shutdown`. Without an operator password, prints the one-time
/// sign-in link on standard output (never into the log).
/// `reload`: where the pages ask the server to read the accounts again after changing them;
/// `listening`: the mail listeners' names (`imap`, `smtp`, …) and bound addresses.
pub async fn serve(
    bound: Bound,
    config: watch::Receiver<Arc<Config>>,
    reload: tokio::sync::mpsc::Sender<()>,
    listening: Vec<(&'static str, std::net::SocketAddr)>,
    mut shutdown: Shutdown,
) {
    let Ok(addr) = bound.local_addr() else {
        tracing::error!("connect page: the listener has no address; not serving");
        return;
    };
    let app = App::new(config, bound.tls.is_some(), addr, reload, listening);
    let cfg = app.config();
    if cfg
        .web
        .as_ref()
        .is_some_and(|w| w.operator_password_hash.is_none())
    {
        let token = app.one_time().issue();
        println!(
            "Connect page: sign in once with {}/signin?token={token} (valid for 15 minutes; `mailgate web-password` sets a permanent password)",
            app.public_url()
        );
    }
    let router = super::router(app);
    let acceptor = bound.tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.wait() => return,
        };
        let accepted = tokio::select! {
            a = bound.listener.accept() => a,
            _ = shutdown.wait() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "connect page: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = router.clone().layer(Extension(Peer(peer)));
        let (acceptor, shutdown) = (acceptor.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let work = connection(stream, acceptor, service, shutdown);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, work).await;
        });
    }
}

/// One connection: the TLS handshake (bounded), then HTTP/1.1 until the client closes, the
/// lifetime ends, or shutdown (then in-flight requests finish, within the grace period).
async fn connection(
    stream: TcpStream,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    service: axum::Router,
    shutdown: Shutdown,
) {
    let _ = stream.set_nodelay(true);
    match acceptor {
        None => http(TokioIo::new(stream), service, shutdown).await,
        Some(acceptor) => {
            match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => http(TokioIo::new(tls), service, shutdown).await,
                _ => tracing::debug!("connect page: TLS handshake failed or timed out"),
            }
        }
    }
}

async fn http<I>(io: I, service: axum::Router, mut shutdown: Shutdown)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(service);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.wait() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}
