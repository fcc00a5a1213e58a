//! `[web]`: the connect page (`crate::web`). Off unless the table is there. Like the mail
//! listeners, a `listen` off loopback needs TLS (`[web.tls]`, the shape of `[server.tls]`):
//! the page carries the operator password, session cookies and the providers' passwords.

use super::file::{WebFile, WebOAuthFile};
use super::locate::{FieldError, Locator};
use super::located::Located;
use super::server::{local_tls, LocalTls};
use super::ConfigError;
use crate::provider::OAuthProvider;
use std::net::SocketAddr;
use std::path::Path;
use toml::Spanned;

/// `[web]`, validated.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Where the page listens. Bound at start: a change needs a restart.
    pub listen: SocketAddr,
    /// `[web.tls]`: the page is served over HTTPS (and its cookies are `Secure`).
    pub tls: Option<LocalTls>,
    /// argon2 hash of the operator password (`mailgate web-password`); `None`: a one-time
    /// sign-in link is printed at start instead.
    pub operator_password_hash: Option<String>,
    /// The page's address as the browser sees it, without a trailing `/` (the OAuth redirect
    /// is `{public_url}/oauth/callback`). Without `public_url` in the file: `listen`'s; see
    /// [`WebConfig::base_url`] for a port the system chose.
    pub public_url: String,
    /// `public_url` was given in the file (not derived from `listen`).
    pub public_url_given: bool,
    /// The OAuth apps behind "Sign in with …".
    pub oauth: Vec<WebOAuthApp>,
}

impl WebConfig {
    /// The page's address for links and the OAuth redirect: `public_url`, except that a
    /// derived one of `listen = "…:0"` names the port the listener got (`bound`).
    pub fn base_url(&self, bound: SocketAddr) -> String {
        if self.public_url_given || self.listen.port() != 0 {
            return self.public_url.clone();
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{bound}")
    }
}

/// One `[[web.oauth]]` app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebOAuthApp {
    /// `google` / `microsoft`, or `None` with explicit endpoints.
    pub provider: Option<OAuthProvider>,
    /// `authorize_url` and `token_url` (an identity provider without a preset).
    pub endpoints: Option<(String, String)>,
    /// The email domains this app serves (lower case); empty: those of its provider's presets.
    pub domains: Vec<String>,
    /// The application (client) id.
    pub client_id: String,
    /// Environment variable holding the client secret, if the app has one.
    pub client_secret_env: Option<String>,
    /// Microsoft tenant.
    pub tenant: Option<String>,
    /// Scopes; empty: the provider preset's.
    pub scopes: Vec<String>,
}

/// Validates `[web]`; relative paths resolve against `base`, the config file's folder.
pub(super) fn web(
    file: Option<Located<WebFile>>,
    base: &Path,
    loc: Locator,
) -> Result<Option<WebConfig>, ConfigError> {
    let Some(file) = file else { return Ok(None) };
    let table_at = file.span().start;
    let w = file.into_inner();
    let listen: SocketAddr = w.listen.get_ref().parse().map_err(|_| {
        loc.at(
            w.listen.span().start,
            "web.listen".into(),
            format!("`{}` is not an IP:port address", w.listen.get_ref()),
        )
    })?;
    let tls = match &w.tls {
        None => None,
        Some(t) => Some(local_tls(t.get_ref(), "web.tls", base, loc)?),
    };
    if tls.is_none() && !listen.ip().is_loopback() {
        return Err(loc.at(
            w.listen.span().start,
            "web.listen".into(),
            format!("`{listen}` is not a loopback address, and without [web.tls] the operator password, session cookies and mailbox passwords would cross the network in clear; listen on 127.0.0.1 or add [web.tls] with cert and key (see `mailgate cert generate`)"),
        ));
    }
    if let Some(h) = &w.operator_password_hash {
        if argon2::PasswordHash::new(h.get_ref()).is_err() {
            return Err(loc.at(
                h.span().start,
                "web.operator_password_hash".into(),
                "is not an argon2 PHC string; set it with `mailgate web-password`".into(),
            ));
        }
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = match &w.public_url {
        None => format!("{scheme}://{listen}"),
        Some(u) => public_url(u.get_ref())
            .ok_or_else(|| {
                loc.at(
                    u.span().start,
                    "web.public_url".into(),
                    format!("`{}` is not an http:// or https:// address without a path, query or fragment (e.g. https://mail.example.com:8025)", u.get_ref()),
                )
            })?,
    };
    let mut oauth = Vec::new();
    for (i, app) in w.oauth.into_iter().enumerate() {
        let at = app.span().start.max(table_at);
        let app = oauth_app(app.into_inner())
            .map_err(|e| loc.field(at, "web", &format!("oauth[{i}]"), e))?;
        oauth.push(app);
    }
    Ok(Some(WebConfig {
        listen,
        tls,
        operator_password_hash: w.operator_password_hash.map(Spanned::into_inner),
        public_url,
        public_url_given: w.public_url.is_some(),
        oauth,
    }))
}

/// `text` as the page's base address: scheme and authority only, trailing `/` dropped.
fn public_url(text: &str) -> Option<String> {
    let t = text.trim().trim_end_matches('/');
    let rest = t
        .strip_prefix("https://")
        .or_else(|| t.strip_prefix("http://"))?;
    let bad = |c: char| c.is_whitespace() || c.is_control() || "/?#@\"'<>\\".contains(c);
    (!rest.is_empty() && !rest.contains(bad)).then(|| t.to_owned())
}

/// One `[[web.oauth]]`: a provider preset or both endpoints, a client id, and, without a
/// preset, the domains it serves (else no address would ever reach it).
fn oauth_app(f: WebOAuthFile) -> Result<WebOAuthApp, FieldError> {
    let bad = FieldError::new;
    if f.client_id.trim().is_empty() {
        return Err(bad("client_id", "must not be empty".into()));
    }
    let endpoints =
        match (f.provider, f.authorize_url, f.token_url) {
            (Some(_), None, None) => None,
            (Some(_), _, _) => {
                return Err(bad(
                    "provider",
                    "give either provider or authorize_url and token_url, not both".into(),
                ))
            }
            (None, Some(a), Some(t)) => {
                for (key, url) in [("authorize_url", &a), ("token_url", &t)] {
                    if !url.starts_with("https://") && !url.starts_with("http://") {
                        return Err(bad(key, format!("`{url}` is not an http(s) URL")));
                    }
                }
                Some((a, t))
            }
            (None, _, _) => return Err(bad(
                "provider",
                "set provider = \"google\" or \"microsoft\", or both authorize_url and token_url"
                    .into(),
            )),
        };
    if f.provider.is_none() && f.domains.is_empty() {
        return Err(bad(
            "domains",
            "an identity provider without a preset needs the email domains it serves (domains = [\"example.com\"])".into(),
        ));
    }
    if f.tenant.is_some() && f.provider != Some(OAuthProvider::Microsoft) {
        return Err(bad("tenant", "only for provider = \"microsoft\"".into()));
    }
    let domains = f
        .domains
        .iter()
        .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .collect::<Vec<_>>();
    if let Some(d) = domains
        .iter()
        .find(|d| d.is_empty() || d.contains(['@', ' ', '/']))
    {
        return Err(bad("domains", format!("`{d}` is not a domain")));
    }
    Ok(WebOAuthApp {
        provider: f.provider,
        endpoints,
        domains,
        client_id: f.client_id,
        client_secret_env: f.client_secret_env,
        tenant: f.tenant,
        scopes: f.scopes,
    })
}

#[cfg(test)]
#[path = "web_tests.rs"]
mod tests;
