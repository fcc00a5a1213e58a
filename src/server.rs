//! Listeners, the accept loop, the session limit, graceful shutdown and config reload.
//!
//! Shaped after mini-redis's `Listener`: a semaphore bounds concurrent sessions (when it is
//! full, the oldest session not yet logged in makes room, see [`crate::preauth`]; with none,
//! one more is greeted with `* BYE` and closed, as Dovecot does, instead of waiting unseen in
//! the backlog), the per-address limit is checked at accept, a watch channel broadcasts
//! shutdown, and each connection is one task. The configuration is
//! an `Arc<Config>` handed to each new session; SIGHUP builds a new one and swaps it in for
//! sessions that start later, and a broken file is reported while the old one stays. The
//! reload (which may wait on discovery) runs beside accept and the signals, never blocking them.

use crate::config::Config;
use crate::imap;
use crate::preauth::{Admission, Refused, Ticket};
use crate::session::Session;
use crate::smtp;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{error, info, warn};

/// How long running sessions get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long a new connection waits for the slot of the pre-login session it pushed out (that
/// session sees the notice at its next read; one busy logging in upstream may take longer).
const ROOM_WAIT: Duration = Duration::from_secs(5);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr} ({what}): {error}")]
    Bind {
        /// The address from the config.
        addr: SocketAddr,
        /// Which listener.
        what: &'static str,
        /// The OS error (in the message, not a `source`: an error chain would print it twice).
        error: std::io::Error,
    },
    /// The metrics exporter could not start.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// A bound, not yet running server.
pub struct Server {
    imap: TcpListener,
    smtp: TcpListener,
    /// Implicit-TLS listeners (`imaps_listen`, `smtps_listen`), when configured.
    imaps: Option<TcpListener>,
    smtps: Option<TcpListener>,
    config: Arc<Config>,
}

/// Accepts on an optional listener; without one, never returns.
async fn accept_on(listener: &Option<TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Which protocol a listener speaks.
#[derive(Clone, Copy)]
enum Proto {
    Imap,
    Smtp,
}

impl Proto {
    /// The `protocol` metric label.
    fn label(self) -> &'static str {
        match self {
            Proto::Imap => "imap",
            Proto::Smtp => "smtp",
        }
    }
}

async fn bind(addr: SocketAddr, what: &'static str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr,
            what,
            error: source,
        })
}

impl Server {
    /// Binds the listeners named in `config`.
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        let imap = bind(config.server.imap_listen, "imap_listen").await?;
        let smtp = bind(config.server.smtp_listen, "smtp_listen").await?;
        let imaps = match config.server.imaps_listen {
            Some(addr) => Some(bind(addr, "imaps_listen").await?),
            None => None,
        };
        let smtps = match config.server.smtps_listen {
            Some(addr) => Some(bind(addr, "smtps_listen").await?),
            None => None,
        };
        Ok(Server {
            imap,
            smtp,
            imaps,
            smtps,
            config: Arc::new(config),
        })
    }

    /// The address the IMAP listener is bound to (useful with port 0).
    pub fn imap_addr(&self) -> std::io::Result<SocketAddr> {
        self.imap.local_addr()
    }

    /// The address the SMTP listener is bound to (useful with port 0).
    pub fn smtp_addr(&self) -> std::io::Result<SocketAddr> {
        self.smtp.local_addr()
    }

    /// The address of the implicit-TLS IMAP listener, if there is one.
    pub fn imaps_addr(&self) -> Option<SocketAddr> {
        self.imaps.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address of the implicit-TLS SMTP listener, if there is one.
    pub fn smtps_addr(&self) -> Option<SocketAddr> {
        self.smtps.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until SIGTERM or Ctrl-C; reloads the config on SIGHUP.
    pub async fn run(self) -> Result<(), ServerError> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(ServerError::Signals)?;
        let mut hup = signal(SignalKind::hangup()).map_err(ServerError::Signals)?;
        let mut int = signal(SignalKind::interrupt()).map_err(ServerError::Signals)?;

        if let Some(m) = &self.config.metrics {
            crate::metrics::start(m.listen, m.per_account)?;
            info!("metrics listening on {}", m.listen);
        }
        // `mailgate throttle`: a convenience, so mailgate runs on without it (said in the log).
        let _control = match crate::control::start(&self.config.server.state_dir) {
            Ok(c) => {
                info!("control socket listening on {}", c.path().display());
                Some(c)
            }
            Err(e) => {
                warn!("{e}; `mailgate throttle` will not work");
                None
            }
        };
        let (shutdown_tx, shutdown_rx) = crate::session::shutdown_channel();
        let max = self.config.server.max_sessions;
        let limit = Arc::new(Semaphore::new(max));
        let admission = Admission::new(
            self.config.server.max_preauth_sessions,
            self.config.server.max_connections_per_ip,
        );
        let implicit = (self.imaps_addr(), self.smtps_addr());
        let mut config = self.config;
        let ids = AtomicU64::new(1);
        if let Ok(addr) = self.imap.local_addr() {
            info!("imap listening on {addr}");
        }
        if let Ok(addr) = self.smtp.local_addr() {
            info!("smtp listening on {addr}");
        }
        // Logged after the two lines above (the test support waits for those).
        if let Some(addr) = implicit.0 {
            info!("imaps listening on {addr}");
        }
        if let Some(addr) = implicit.1 {
            info!("smtps listening on {addr}");
        }
        log_accounts(&config);

        // The reload in progress: polled next to accept and the signals, so that discovery
        // (DNS and HTTP, each bounded by its time-out, but possibly many seconds for a broken
        // resolver) never stops new sessions or a shutdown, as nginx keeps serving while it
        // reads its new configuration. A SIGHUP during a reload is remembered and reads the
        // file once more when the running one ends, so the last signal always sees the last
        // edit.
        let mut reloading: Option<Reload> = None;
        let mut reload_again = false;

        loop {
            tokio::select! {
                accepted = async {
                    tokio::select! {
                        a = self.imap.accept() => (Proto::Imap, false, a),
                        a = self.smtp.accept() => (Proto::Smtp, false, a),
                        a = accept_on(&self.imaps) => (Proto::Imap, true, a),
                        a = accept_on(&self.smtps) => (Proto::Smtp, true, a),
                    }
                } => {
                    let (proto, tls, accepted) = accepted;
                    let (stream, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            // Out of file descriptors and the like: back off instead of spinning.
                            error!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let id = ids.fetch_add(1, Ordering::Relaxed);
                    let ticket = match admission.admit(id, peer.ip()) {
                        Ok(t) => t,
                        Err(Refused::PerIp) => {
                            let limit = config.server.max_connections_per_ip;
                            warn!(%peer, limit, "per-address connection limit reached (max_connections_per_ip); connection refused");
                            crate::metrics::session_refused(proto.label());
                            refuse_later(stream, proto, tls, Refusal::PerIp);
                            continue;
                        }
                    };
                    tokio::spawn(connection(Conn {
                        proto,
                        tls,
                        stream,
                        peer,
                        id,
                        ticket,
                        config: config.clone(),
                        shutdown: shutdown_rx.clone(),
                        limit: limit.clone(),
                        admission: admission.clone(),
                    }));
                }
                _ = hup.recv() => {
                    if reloading.is_some() {
                        reload_again = true;
                        info!("SIGHUP during a reload: the file is read again when it ends");
                    } else {
                        info!("SIGHUP: reading the configuration");
                        reloading = Some(start_reload(&config));
                    }
                }
                loaded = async {
                    match reloading.as_mut() {
                        Some(r) => r.await,
                        None => std::future::pending().await,
                    }
                }, if reloading.is_some() => {
                    reloading = None;
                    match loaded {
                        Ok(new) => {
                            if new.server.imap_listen != config.server.imap_listen
                                || new.server.smtp_listen != config.server.smtp_listen
                                || new.server.imaps_listen != config.server.imaps_listen
                                || new.server.smtps_listen != config.server.smtps_listen
                                || new.server.max_sessions != config.server.max_sessions
                                || new.server.max_preauth_sessions
                                    != config.server.max_preauth_sessions
                                || new.server.max_connections_per_ip
                                    != config.server.max_connections_per_ip
                                || new.metrics.as_ref().map(|m| (m.listen, m.per_account))
                                    != config.metrics.as_ref().map(|m| (m.listen, m.per_account))
                            {
                                warn!("listen addresses, max_sessions, max_preauth_sessions, max_connections_per_ip and [metrics] change only on restart");
                            }
                            config = Arc::new(new);
                            crate::metrics::config_reload(true);
                            info!(accounts = config.accounts.len(), "configuration reloaded");
                            log_accounts(&config);
                        }
                        Err(e) => {
                            crate::metrics::config_reload(false);
                            report_reload_error(&e);
                        }
                    }
                    if std::mem::take(&mut reload_again) {
                        info!("reading the configuration again for the SIGHUP that came during the reload");
                        reloading = Some(start_reload(&config));
                    }
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }

        info!("shutting down: no new sessions; telling running sessions");
        drop(self.imap);
        drop(self.smtp);
        drop(self.imaps);
        drop(self.smtps);
        shutdown_tx.fire();
        let all = u32::try_from(max).unwrap_or(u32::MAX);
        match tokio::time::timeout(SHUTDOWN_GRACE, limit.acquire_many(all)).await {
            Ok(_) => info!("all sessions ended"),
            Err(_) => warn!(
                grace_secs = SHUTDOWN_GRACE.as_secs(),
                "sessions still running after the grace period; exiting"
            ),
        }
        Ok(())
    }
}

/// A configuration reload running next to the accept loop (see [`Server::run`]).
type Reload = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Config, crate::discover::ResolveError>> + Send>,
>;

/// Starts reading `config`'s file again, with discovery for accounts that need it. The future
/// owns its copy of the path, so the running configuration can be replaced while it runs.
fn start_reload(config: &Config) -> Reload {
    let path = config.path.clone();
    Box::pin(async move { crate::discover::resolve(&path).await })
}

fn report_reload_error(e: &crate::discover::ResolveError) {
    error!("configuration reload failed, keeping the previous configuration: {e}");
}

/// Logs each account with its resolved upstream and where the servers came from (never a
/// credential).
fn log_accounts(config: &Config) {
    for a in &config.accounts {
        info!(
            account = %a.email,
            imap = %a.imap.address(),
            tls = a.imap.target.tls.as_str(),
            upstream_user = %a.imap.username,
            smtp = %a.smtp.as_ref().map_or("(none)".to_owned(), |e| format!("{} tls={}", e.address(), e.target.tls.as_str())),
            source = %a.source,
            "account"
        );
    }
}

/// Which limit refused a connection.
#[derive(Clone, Copy)]
enum Refusal {
    /// `max_sessions`.
    Full,
    /// `max_connections_per_ip`.
    PerIp,
}

/// One accepted connection, admitted against `max_connections_per_ip`, before it has a slot.
struct Conn {
    proto: Proto,
    tls: bool,
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    ticket: Ticket,
    config: Arc<Config>,
    shutdown: crate::session::Shutdown,
    limit: Arc<Semaphore>,
    admission: Arc<Admission>,
}

/// Takes a session slot for `c` and serves it. With every slot taken, the oldest pre-login
/// session is told to leave and its slot is awaited (bounded), so that clients which have not
/// logged in never keep a new one out; only when every session has logged in is it refused.
async fn connection(c: Conn) {
    let permit = match c.limit.clone().try_acquire_owned() {
        Ok(p) => Some(p),
        Err(_) if c.admission.make_room(c.id) => {
            tokio::select! {
                p = tokio::time::timeout(ROOM_WAIT, c.limit.clone().acquire_owned()) => {
                    p.ok().and_then(Result::ok)
                }
                _ = c.ticket.evicted() => None,
            }
        }
        Err(_) => None,
    };
    let Some(permit) = permit else {
        let max = c.config.server.max_sessions;
        warn!(peer = %c.peer, max, "session limit reached; connection refused");
        crate::metrics::session_refused(c.proto.label());
        refuse(c.stream, c.proto, c.tls, Refusal::Full).await;
        return;
    };
    serve(c, permit).await;
}

/// Runs the session of an admitted connection that holds a slot.
async fn serve(c: Conn, permit: OwnedSemaphorePermit) {
    let active = crate::metrics::ActiveSession::new(c.proto.label());
    let local = c.stream.local_addr().ok();
    // Only a client that reached us on a loopback address may log in without TLS (nothing
    // crosses a network).
    let loopback = local.is_some_and(|a| a.ip().is_loopback());
    let local_port = local.map_or(0, |a| a.port());
    let accepted = std::time::Instant::now();
    let session = Session {
        id: c.id,
        peer: c.peer,
        loopback,
        tls: c.tls,
        config: c.config,
        shutdown: c.shutdown,
        ticket: Some(c.ticket),
        accepted,
        local_port,
    };
    match c.proto {
        Proto::Imap => imap::serve(c.stream, session).await,
        Proto::Smtp => smtp::serve(c.stream, session).await,
    }
    drop(active);
    drop(permit);
}

/// [`refuse`] in its own task, so the accept loop never waits on a refused client.
fn refuse_later(stream: TcpStream, proto: Proto, tls: bool, why: Refusal) {
    tokio::spawn(refuse(stream, proto, tls, why));
}

/// Greets a connection over a limit with BYE (IMAP) or 421 (SMTP) and closes it. A TLS client
/// cannot read a plaintext answer, and a handshake just to refuse would cost more than the
/// refusal saves: it is closed without a word.
async fn refuse(mut stream: TcpStream, proto: Proto, tls: bool, why: Refusal) {
    if tls {
        return;
    }
    let text: &[u8] = match (proto, why) {
        (Proto::Imap, Refusal::Full) => b"* BYE Too many connections, try again later.\r\n",
        (Proto::Smtp, Refusal::Full) => b"421 4.3.2 Too many connections, try again later\r\n",
        (Proto::Imap, Refusal::PerIp) => {
            b"* BYE Too many connections from your address, try again later.\r\n"
        }
        (Proto::Smtp, Refusal::PerIp) => {
            b"421 4.7.0 Too many connections from your address, try again later\r\n"
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(text)).await;
    let _ = stream.shutdown().await;
}
