//! `[account.imap]` and `[account.smtp]`: where the server is ([`Target`]) and how the account
//! logs in there ([`Credential`]).

use super::file::EndpointFile;
use super::locate::FieldError;
use super::oauth2::OAuth2;
use super::TlsMode;
use crate::net::{tls, Target};
use crate::provider::Found;
use crate::secret::Secret;
use std::path::Path;
use std::sync::Arc;

/// An upstream server plus everything needed to log in there.
#[derive(Debug)]
pub struct Endpoint {
    /// Where the server is and how the connection is secured.
    pub target: Target,
    /// User name presented upstream.
    pub username: String,
    /// What proves the account upstream.
    pub credential: Credential,
}

/// How an account logs in upstream.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A stored password or app password.
    Password(Secret),
    /// OAuth 2.0 settings (`[account.oauth2]`): a token is had for each login; the same for
    /// the account's IMAP and SMTP endpoints.
    OAuth2(Arc<OAuth2>),
}

impl Credential {
    /// The OAuth 2.0 settings, if the account logs in with tokens.
    pub fn oauth(&self) -> Option<&Arc<OAuth2>> {
        match self {
            Credential::OAuth2(o) => Some(o),
            Credential::Password(_) => None,
        }
    }

    /// The stored password, if the account logs in with one.
    pub fn password(&self) -> Option<&Secret> {
        match self {
            Credential::Password(p) => Some(p),
            Credential::OAuth2(_) => None,
        }
    }
}

impl Endpoint {
    /// `host:port`, for logs and messages.
    pub fn address(&self) -> String {
        self.target.address()
    }
}

/// Validates one `[account.imap]`-style table.  Without a
/// credential in the table, `inherited` is used if given (SMTP reuses the IMAP one; with
/// `[account.oauth2]` it is the OAuth settings).
pub(super) fn endpoint(
    e: EndpointFile,
    email: &str,
    base: &Path,
    inherited: Option<&Credential>,
    found: Option<&Found>,
) -> Result<Endpoint, FieldError> {
    let target = target(&e, base, found)?;
    let credential = credential(&e, base, inherited)?;
    Ok(Endpoint {
        target,
        username: e
            .username
            .or_else(|| found.map(|f| f.username.clone()))
            .unwrap_or_else(|| email.to_owned()),
        credential,
    })
}

/// The server of an endpoint table: as written, else as `found` (a preset or discovery).
fn target(e: &EndpointFile, base: &Path, found: Option<&Found>) -> Result<Target, FieldError> {
    let bad = FieldError::new;
    let (host, port) = match (&e.server, &e.host) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "server",
                "give either `server = \"host:port\"` or `host` and `port`, not both".into(),
            ))
        }
        (Some(server), None) => {
            if e.port.is_some() {
                return Err(bad(
                    "port",
                    "the port is already part of `server = \"host:port\"`".into(),
                ));
            }
            split_host_port(server).ok_or_else(|| {
                bad(
                    "server",
                    format!("`{server}` is not host:port (e.g. \"imap.example.com:993\")"),
                )
            })?
        }
        (None, Some(host)) => {
            let port = e.port.ok_or_else(|| bad("port", "is missing".into()))?;
            (host.trim().to_owned(), port)
        }
        (None, None) => match found {
            Some(f) => (f.host.clone(), f.port),
            None => return Err(bad("server", "is missing (\"host:port\")".into())),
        },
    };
    // TLS as written, else the preset's / discovered mode when it is for the same port, else
    // implicit (the documented default).
    let tls = e.tls.unwrap_or(match found {
        Some(f) if f.port == port => f.tls,
        _ => TlsMode::Implicit,
    });
    if host.is_empty() || port == 0 {
        return Err(bad(
            "server",
            "needs a host name and a non-zero port".into(),
        ));
    }
    if tls == TlsMode::None && !e.allow_plaintext {
        return Err(bad(
            "tls",
            "`none` sends the password in clear text; set `allow_plaintext = true` to allow it"
                .into(),
        ));
    }
    let name_text = e.tls_server_name.clone().unwrap_or_else(|| host.clone());
    let server_name = rustls_pki_types::ServerName::try_from(name_text.clone()).map_err(|_| {
        bad(
            "tls_server_name",
            format!("`{name_text}` is not a valid TLS name"),
        )
    })?;
    let ca_file = e.ca_file.as_ref().map(|p| base.join(p));
    let tls_config = match tls {
        TlsMode::None => None,
        _ => Some(
            tls::upstream_config(ca_file.as_deref(), port)
                .map_err(|err| bad("ca_file", err.to_string()))?,
        ),
    };
    Ok(Target {
        host,
        port,
        tls,
        server_name,
        tls_config,
        ca_file,
    })
}

/// The credential of an endpoint table: the one password source it names, else `inherited`.
fn credential(
    e: &EndpointFile,
    base: &Path,
    inherited: Option<&Credential>,
) -> Result<Credential, FieldError> {
    let bad = FieldError::new;
    let given = one_secret(
        "password",
        e.password.as_deref(),
        e.password_env.as_deref(),
        e.password_file.as_deref(),
        base,
    )?;
    match (given, inherited) {
        (Some(secret), _) => Ok(Credential::Password(secret)),
        (None, Some(inherited)) => Ok(inherited.clone()),
        (None, None) => Err(bad(
            "password_env",
            "no upstream credential: set one of password_env, password_file or password".into(),
        )),
    }
}

/// The secret that one of `KEY`, `KEY_env` and `KEY_file` gives (`inline`, `env`, `file`), at
/// most one of them; `None` when none is set. A relative file is read against `base`.
pub(super) fn one_secret(
    key: &str,
    inline: Option<&str>,
    env: Option<&str>,
    file: Option<&Path>,
    base: &Path,
) -> Result<Option<Secret>, FieldError> {
    let bad = FieldError::new;
    match (inline, env, file) {
        (None, None, None) => Ok(None),
        (Some(value), None, None) => Ok(Some(Secret::new(value.to_owned()))),
        (None, Some(var), None) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(Secret::new(v))),
            _ => Err(bad(
                &format!("{key}_env"),
                format!("environment variable `{var}` is not set"),
            )),
        },
        (None, None, Some(file)) => {
            let file = base.join(file);
            crate::secret::read_file(&file).map(Some).map_err(|err| {
                bad(
                    &format!("{key}_file"),
                    format!("cannot read {}: {err}", file.display()),
                )
            })
        }
        _ => Err(bad(
            key,
            format!("give only one of {key}, {key}_env and {key}_file"),
        )),
    }
}

/// "host:port", "[v6]:port" → (host, port).
pub(super) fn split_host_port(s: &str) -> Option<(String, u16)> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        (h, p)
    } else {
        s.rsplit_once(':')?
    };
    if host.is_empty() || host.contains(':') && !s.starts_with('[') {
        return None;
    }
    Some((host.to_owned(), port.parse().ok()?))
}
