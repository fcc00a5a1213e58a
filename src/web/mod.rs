//! The connect page (`[web]`): a small server-rendered site where people add, check, edit and
//! remove the accounts of this gateway in a browser, the way the CRM's own set-up dialog works.
//! No JavaScript: every page is HTML from [`maud`] templates, every word from [`lang`].
//!
//! `server` binds the listener at start ([`bind`]) and runs [`serve`] next to the mail
//! listeners; the pages read the configuration of the moment from a watch channel, so a reload
//! (a new operator password, new OAuth apps) applies at once. What guards every page is in
//! [`guard`] and `front.rs`; the pages are in `page/`; the HTTP connections (TLS, time-outs, graceful
//! shutdown) in `conn.rs`.

mod conn;
mod front;
pub mod guard;
pub mod lang;
mod page;

pub use conn::{bind, serve, Bound, Peer};

use crate::config::Config;
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How long a page waits for the server to load a configuration it changed (the reload reads
/// the file and runs discovery for accounts that need it, each step bounded by its time-out).
const APPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// What every request shares. Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    config: watch::Receiver<Arc<Config>>,
    sessions: guard::Sessions,
    one_time: guard::OneTime,
    secure: bool,
    /// The listener's address.
    bound: SocketAddr,
    /// Asks the server to read the configuration again (as SIGHUP does).
    reload: mpsc::Sender<()>,
    /// The mail listeners (`imap`, `smtp`, …) and the addresses they are bound to.
    listening: Vec<(&'static str, SocketAddr)>,
}

impl App {
    /// The page's state over the configuration watch; `secure`: served over TLS; `bound`: the
    /// listener's address; `reload`: where a page that changed the accounts asks the server to
    /// read them again; `listening`: the mail listeners' names and bound addresses.
    pub fn new(
        config: watch::Receiver<Arc<Config>>,
        secure: bool,
        bound: SocketAddr,
        reload: mpsc::Sender<()>,
        listening: Vec<(&'static str, SocketAddr)>,
    ) -> App {
        App {
            inner: Arc::new(Inner {
                config,
                sessions: guard::Sessions::default(),
                one_time: guard::OneTime::default(),
                secure,
                bound,
                reload,
                listening,
            }),
        }
    }

    /// After a page changed the accounts: asks the server to reload and waits until a
    /// configuration loaded after the request satisfies `applied` (e.g. has the new account);
    /// the one in use may satisfy it already (an edit of the password only) without having
    /// the change. `false` when none did within [`APPLY_TIMEOUT`] (the reload failed, or the
    /// server is shutting down): the change is saved and serves from the next reload or start.
    pub async fn apply(&self, applied: impl Fn(&Config) -> bool) -> bool {
        let mut watch = self.inner.config.clone();
        watch.borrow_and_update();
        // A full channel holds a request already, which reads the file after this change.
        let _ = self.inner.reload.try_send(());
        let wait = async {
            while watch.changed().await.is_ok() {
                if applied(&watch.borrow_and_update()) {
                    return true;
                }
            }
            false
        };
        tokio::time::timeout(APPLY_TIMEOUT, wait)
            .await
            .unwrap_or(false)
    }

    /// Where the mail listener `name` (`imap`, `smtp`, `imaps`, `smtps`) is bound, if it is.
    pub fn listening(&self, name: &str) -> Option<SocketAddr> {
        let found = self.inner.listening.iter().find(|(n, _)| *n == name);
        found.map(|(_, a)| *a)
    }

    /// The configuration of the moment.
    pub fn config(&self) -> Arc<Config> {
        self.inner.config.borrow().clone()
    }

    /// The browser sessions.
    pub fn sessions(&self) -> &guard::Sessions {
        &self.inner.sessions
    }

    /// The one-time sign-in link.
    pub fn one_time(&self) -> &guard::OneTime {
        &self.inner.one_time
    }

    /// Whether the page is served over TLS (cookies get `Secure`).
    pub fn secure(&self) -> bool {
        self.inner.secure
    }

    /// The page's base address (`[web] public_url`, or the listener's).
    pub fn public_url(&self) -> String {
        self.config()
            .web
            .as_ref()
            .map(|w| w.base_url(self.inner.bound))
            .unwrap_or_default()
    }

    /// The origins of the identity providers the `[[web.oauth]]` apps send the browser to.
    pub fn idp_origins(&self) -> Vec<String> {
        let config = self.config();
        let mut out: Vec<String> = Vec::new();
        for app in config.web.iter().flat_map(|w| &w.oauth) {
            let url = match (&app.endpoints, app.provider) {
                (Some((authorize, _)), _) => Some(authorize.clone()),
                (None, Some(p)) => {
                    p.preset(app.tenant.as_deref().unwrap_or("common"))
                        .authorize
                }
                (None, None) => None,
            };
            if let Some(o) = url.as_deref().and_then(origin) {
                if !out.contains(&o) {
                    out.push(o);
                }
            }
        }
        out
    }
}

/// `scheme://host[:port]` of an http(s) URL, if it is one whose origin can stand in a CSP.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let fine = |c: char| c.is_ascii_alphanumeric() || "-.:[]".contains(c);
    (!authority.is_empty() && authority.chars().all(fine))
        .then(|| format!("{scheme}://{authority}"))
}

/// Every route of the page.
pub fn router(app: App) -> Router {
    use page::*;
    Router::new()
        .route("/", get(root))
        .route("/style.css", get(style::css))
        .route("/signin", get(signin::show).post(signin::submit))
        .route("/signout", post(signin::sign_out))
        .route("/connect", get(connect::show).post(connect::submit))
        .route("/connect/advanced", get(advanced::show))
        .route("/help", get(help::show))
        .route("/connect/password", post(password::submit))
        .route("/connect/oauth", post(oauth::connect))
        .route("/oauth/callback", get(oauth::callback))
        .route("/accounts", get(accounts::show))
        .route("/accounts/check", post(check::submit))
        .route("/accounts/reauthorize", post(oauth::reauthorize))
        .route("/accounts/edit", get(edit::show).post(edit::submit))
        .route("/accounts/remove", get(remove::show).post(remove::submit))
        .fallback(refusal::not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            front::layer,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(guard::MAX_FORM))
        .with_state(app)
}

#[cfg(test)]
mod tests {
    #[test]
    fn origins_of_idp_urls() {
        assert_eq!(
            super::origin("https://login.microsoftonline.com/common/oauth2/v2.0/authorize")
                .as_deref(),
            Some("https://login.microsoftonline.com")
        );
        assert_eq!(
            super::origin("http://127.0.0.1:9/a?b").as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(super::origin("javascript:x"), None);
        assert_eq!(super::origin("https://a b/"), None);
    }
}
