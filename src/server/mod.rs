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
//!
//! The server holds a list of [`Listener`]s (protocol, TLS kind, address); a new kind of
//! listener is a new row in [`listener::configured`]. A listener named in
//! `[server.proxy_protocol]` sits behind a proxy: its connections come from trusted networks
//! and start with a PROXY header (`proxy.rs`), whose client address is the session's.

mod connection;
pub mod listener;
mod proxy;
mod reload;

use crate::config::Config;
use crate::preauth::{Admission, Refused};
use connection::{Conn, Refusal};
pub use listener::{Client, Listener, Proto, Spec, Tls};
use reload::Reloads;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::Semaphore;
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
    /// In the order of [`listener::configured`].
    listeners: Vec<Listener>,
    /// The connect page's listener (`[web]`), if configured.
    web: Option<crate::web::Bound>,
    config: Arc<Config>,
}

impl Server {
    /// Binds the listeners named in `config`.
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        let mut listeners = Vec::new();
        for spec in listener::configured(&config.server) {
            listeners.push(Listener::bind(spec).await?);
        }
        let web = crate::web::bind(&config)
            .await
            .map_err(|error| ServerError::Bind {
                addr: config
                    .web
                    .as_ref()
                    .map_or(([0, 0, 0, 0], 0).into(), |w| w.listen),
                what: "web",
                error,
            })?;
        Ok(Server {
            listeners,
            web,
            config: Arc::new(config),
        })
    }

    /// The address of the first listener of this kind, if there is one.
    fn addr(&self, proto: Proto, tls: Tls) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|l| l.spec.proto == proto && l.spec.tls == tls)
            .and_then(|l| l.local_addr().ok())
    }

    /// The address the IMAP listener is bound to (useful with port 0).
    pub fn imap_addr(&self) -> std::io::Result<SocketAddr> {
        self.addr(Proto::Imap, Tls::Plain)
            .ok_or_else(|| std::io::Error::other("no IMAP listener"))
    }

    /// The address the SMTP listener is bound to (useful with port 0).
    pub fn smtp_addr(&self) -> std::io::Result<SocketAddr> {
        self.addr(Proto::Smtp, Tls::Plain)
            .ok_or_else(|| std::io::Error::other("no SMTP listener"))
    }

    /// The address of the implicit-TLS IMAP listener, if there is one.
    pub fn imaps_addr(&self) -> Option<SocketAddr> {
        self.addr(Proto::Imap, Tls::Implicit)
    }

    /// The address of the implicit-TLS SMTP listener, if there is one.
    pub fn smtps_addr(&self) -> Option<SocketAddr> {
        self.addr(Proto::Smtp, Tls::Implicit)
    }

    /// Serves until SIGTERM or Ctrl-C; reloads the config on SIGHUP.
    pub async fn run(self) -> Result<(), ServerError> {
        let mut signals = Signals::install()?;
        // Held for as long as the server runs.
        let _control = start_side_services(&self.config)?;
        let (trigger, shutdown) = crate::session::shutdown_channel();
        let max = self.config.server.max_sessions;
        let mut state = Accepting {
            shared: Shared {
                limit: Arc::new(Semaphore::new(max)),
                admission: Admission::new(
                    self.config.server.max_preauth_sessions,
                    self.config.server.max_connections_per_ip,
                ),
                config: self.config,
                shutdown,
            },
            next_id: 1,
        };
        for l in &self.listeners {
            if let Ok(addr) = l.local_addr() {
                info!("{} listening on {addr}", l.name());
            }
        }
        reload::log_accounts(&state.shared.config);
        crate::imap::warm::config_in_use(&state.shared.config);
        // OAuth upkeep follows the configuration of the moment (see `oauth::upkeep`).
        let (config_tx, config_rx) = tokio::sync::watch::channel(state.shared.config.clone());
        tokio::spawn(crate::oauth::upkeep::run(
            config_rx,
            state.shared.shutdown.clone(),
        ));
        // The connect page asks for a reload after it changed the accounts (capacity 1: a
        // request waiting already reads the file after every change before it).
        let (web_reload, mut web_reloads) = tokio::sync::mpsc::channel(1);
        if let Some(web) = self.web {
            if let Ok(addr) = web.local_addr() {
                info!("web listening on {addr}");
            }
            let (rx, shutdown) = (config_tx.subscribe(), state.shared.shutdown.clone());
            // The done page names the ports the mail listeners got (also for `…:0`).
            let listening = self
                .listeners
                .iter()
                .filter_map(|l| Some((l.name(), l.local_addr().ok()?)))
                .collect();
            tokio::spawn(crate::web::serve(web, rx, web_reload, listening, shutdown));
        }

        let mut reloads = Reloads::default();
        let mut next = 0;
        loop {
            tokio::select! {
                (i, accepted) = listener::accept_any(&self.listeners, &mut next) => {
                    state.accepted(&self.listeners[i], accepted).await;
                }
                _ = signals.hup.recv() => reloads.signal(&state.shared.config),
                Some(()) = web_reloads.recv() => {
                    info!("the connect page changed the accounts");
                    reloads.signal(&state.shared.config);
                }
                loaded = async {
                    match reloads.running.as_mut() {
                        Some(r) => r.await,
                        None => std::future::pending().await,
                    }
                }, if reloads.running.is_some() => {
                    reloads.ended(loaded, &mut state.shared.config);
                    config_tx.send_replace(state.shared.config.clone());
                }
                _ = signals.term.recv() => break,
                _ = signals.int.recv() => break,
            }
        }

        info!("shutting down: no new sessions; telling running sessions");
        drop(self.listeners);
        trigger.fire();
        let all = u32::try_from(max).unwrap_or(u32::MAX);
        match tokio::time::timeout(SHUTDOWN_GRACE, state.shared.limit.acquire_many(all)).await {
            Ok(_) => info!("all sessions ended"),
            Err(_) => warn!(
                grace_secs = SHUTDOWN_GRACE.as_secs(),
                "sessions still running after the grace period; exiting"
            ),
        }
        Ok(())
    }
}

/// The signals the server acts on.
struct Signals {
    term: Signal,
    hup: reload::Hup,
    int: Signal,
}

impl Signals {
    fn install() -> Result<Signals, ServerError> {
        let on = |kind| signal(kind).map_err(ServerError::Signals);
        Ok(Signals {
            term: on(SignalKind::terminate())?,
            hup: reload::Hup::new(on(SignalKind::hangup())?),
            int: on(SignalKind::interrupt())?,
        })
    }
}

/// Starts the metrics exporter (when configured; failing to is fatal) and the control socket
/// (`mailgate throttle`: a convenience, so mailgate runs on without it, said in the log).
fn start_side_services(config: &Config) -> Result<Option<crate::control::Control>, ServerError> {
    if let Some(m) = &config.metrics {
        crate::metrics::start(m.listen, m.per_account)?;
        info!("metrics listening on {}", m.listen);
    }
    Ok(match crate::control::start(&config.server.state_dir) {
        Ok(c) => {
            info!("control socket listening on {}", c.path().display());
            Some(c)
        }
        Err(e) => {
            warn!("{e}; `mailgate throttle` will not work");
            None
        }
    })
}

/// What the accept loop hands each new connection.
struct Accepting {
    shared: Shared,
    next_id: u64,
}

/// What every connection shares: the configuration of the moment, the session slots, the
/// pre-login and per-address counts, the shutdown signal.
#[derive(Clone)]
struct Shared {
    config: Arc<Config>,
    limit: Arc<Semaphore>,
    admission: Arc<Admission>,
    shutdown: crate::session::Shutdown,
}

impl Accepting {
    /// A connection came on `on` (or accepting failed). On a listener behind a proxy it must
    /// come from a trusted network, and its PROXY header is read in the connection's task
    /// (the accept loop never waits on a client); then it is admitted against the
    /// per-address limit (with the client's own address) and served in a task of its own.
    async fn accepted(
        &mut self,
        on: &Listener,
        accepted: std::io::Result<(TcpStream, SocketAddr)>,
    ) {
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let id = self.next_id;
        self.next_id += 1;
        let shared = self.shared.clone();
        let proxy = shared.config.server.proxy_protocol.as_ref();
        let Some(proxy) = proxy.filter(|p| p.covers(on.name())) else {
            let client = on.client(&stream, peer, None);
            if let Some(conn) = shared.admit(on.spec, stream, client, id) {
                tokio::spawn(connection::connection(conn));
            }
            return;
        };
        if !proxy.trusts(peer.ip()) {
            proxy::rejected(on.name(), peer, &proxy::Rejected::Untrusted);
            return;
        }
        let within = proxy.header_timeout;
        let (spec, name) = (on.spec, on.name());
        let local = stream.local_addr().ok();
        tokio::spawn(async move {
            let mut stream = stream;
            // Boxed: the header buffer costs heap only while the header is read.
            match Box::pin(proxy::read_header(&mut stream, within)).await {
                Err(why) => proxy::rejected(name, peer, &why),
                Ok(header) => {
                    let client = listener::client(peer, local, Some(&header.addresses));
                    if let Some(conn) = shared.admit(spec, stream, client, id) {
                        connection::connection(conn).await;
                    }
                }
            }
        });
    }
}

impl Shared {
    /// Admits a connection against `max_connections_per_ip` (refused with a BYE or 421 in a
    /// task of its own), or returns it ready to take a session slot.
    fn admit(self, spec: Spec, stream: TcpStream, client: Client, id: u64) -> Option<Conn> {
        let Spec { proto, tls, .. } = spec;
        let peer = client.peer;
        let ticket = match self.admission.admit(id, peer.ip()) {
            Ok(t) => t,
            Err(Refused::PerIp) => {
                let limit = self.config.server.max_connections_per_ip;
                warn!(%peer, limit, "per-address connection limit reached (max_connections_per_ip); connection refused");
                crate::metrics::session_refused(proto.label());
                connection::refuse_later(stream, proto, tls, Refusal::PerIp);
                return None;
            }
        };
        Some(Conn {
            proto,
            tls,
            stream,
            client,
            id,
            ticket,
            config: self.config,
            shutdown: self.shutdown,
            limit: self.limit,
            admission: self.admission,
        })
    }
}
