//! Config reload on SIGHUP (or a change of the shared store's accounts), beside the accept
//! loop: reading the file again (with discovery), what a reload cannot change, and the account
//! lines logged after start and each reload.

use super::listener;
use crate::config::Config;
use crate::discover::ResolveError;
use std::sync::Arc;
use tokio::signal::unix::Signal;
use tracing::{error, info, warn};

/// What starts a reload: SIGHUP, or a change of the shared store's accounts (see
/// [`crate::pgstore::changes`]; never fires without a `[store]`), so that an account added on
/// one node serves on every node without a signal.
pub struct Hup {
    signal: Signal,
    store: tokio::sync::watch::Receiver<u64>,
}

impl Hup {
    /// SIGHUP and the store's changes.
    pub fn new(signal: Signal) -> Hup {
        let store = crate::pgstore::changes();
        Hup { signal, store }
    }

    /// The next reason to reload; `None` when neither can fire again.
    pub async fn recv(&mut self) -> Option<()> {
        tokio::select! {
            got = self.signal.recv() => got,
            changed = self.store.changed() => match changed {
                Ok(()) => {
                    info!("the shared store's accounts changed");
                    Some(())
                }
                // The sender is process-wide and never dropped; should it be, SIGHUP remains.
                Err(_) => self.signal.recv().await,
            },
        }
    }
}

/// A configuration reload running next to the accept loop (see [`super::Server::run`]).
pub type Reload =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Config, ResolveError>> + Send>>;

/// The reload in progress: polled next to accept and the signals, so that discovery (DNS and
/// HTTP, each bounded by its time-out, but possibly many seconds for a broken resolver) never
/// stops new sessions or a shutdown, as nginx keeps serving while it reads its new
/// configuration. A SIGHUP during a reload is remembered and reads the file once more when the
/// running one ends, so the last signal always sees the last edit.
#[derive(Default)]
pub struct Reloads {
    /// The reload running now.
    pub running: Option<Reload>,
    again: bool,
}

impl Reloads {
    /// SIGHUP: starts a reload of `config`'s file, or marks one more for after the running one.
    pub fn signal(&mut self, config: &Config) {
        if self.running.is_some() {
            self.again = true;
            info!("SIGHUP during a reload: the file is read again when it ends");
        } else {
            info!("SIGHUP or store change: reading the configuration");
            self.running = Some(start(config));
        }
    }

    /// The running reload ended with `loaded`: swaps the new configuration into `config`
    /// (sessions starting later get it) or reports why not, then starts the reload a SIGHUP
    /// during this one asked for.
    pub fn ended(&mut self, loaded: Result<Config, ResolveError>, config: &mut Arc<Config>) {
        self.running = None;
        match loaded {
            Ok(new) => {
                if restart_only_changed(config, &new) {
                    warn!("listen addresses, max_sessions, max_preauth_sessions, max_connections_per_ip, [metrics] and [web] listen/tls change only on restart");
                }
                *config = Arc::new(new);
                // No upstream connection kept under the old configuration is used again.
                crate::imap::warm::config_in_use(config);
                crate::metrics::config_reload(true);
                info!(accounts = config.accounts.len(), "configuration reloaded");
                log_accounts(config);
            }
            Err(e) => {
                crate::metrics::config_reload(false);
                error!("configuration reload failed, keeping the previous configuration: {e}");
            }
        }
        if std::mem::take(&mut self.again) {
            info!("reading the configuration again for the SIGHUP that came during the reload");
            self.running = Some(start(config));
        }
    }
}

/// Starts reading `config`'s file again, with discovery for accounts that need it. The future
/// owns its copy of the path, so the running configuration can be replaced while it runs.
fn start(config: &Config) -> Reload {
    let path = config.path.clone();
    Box::pin(async move { crate::discover::resolve(&path).await })
}

/// Whether `new` changes a setting that takes effect only on restart.
fn restart_only_changed(old: &Config, new: &Config) -> bool {
    let (o, n) = (&old.server, &new.server);
    listener::configured(o) != listener::configured(n)
        || n.max_sessions != o.max_sessions
        || n.max_preauth_sessions != o.max_preauth_sessions
        || n.max_connections_per_ip != o.max_connections_per_ip
        || new.metrics.as_ref().map(|m| (m.listen, m.per_account))
            != old.metrics.as_ref().map(|m| (m.listen, m.per_account))
        || new
            .web
            .as_ref()
            .map(|w| (w.listen, w.tls.as_ref().map(|t| (&t.cert, &t.key))))
            != old
                .web
                .as_ref()
                .map(|w| (w.listen, w.tls.as_ref().map(|t| (&t.cert, &t.key))))
}

/// Logs each account with its resolved upstream and where the servers came from (never a
/// credential).
pub fn log_accounts(config: &Config) {
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
