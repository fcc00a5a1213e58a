//! The servers of one address and where they came from: a preset's, or what network
//! discovery (`crate::discover`) found. Config loading takes them in this form.

use super::Preset;
use crate::net::TlsMode;
use std::fmt;

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `provider = "…"` in the config or `--provider` on the command line.
    Provider(&'static str),
    /// The email domain is a preset's.
    Domain(&'static str),
    /// An MX host identified the preset.
    Mx {
        /// The MX host name.
        host: String,
        /// The preset it points to.
        preset: &'static str,
    },
    /// An autoconfig file.
    Autoconfig(String),
    /// A probe found a listener.
    Guess,
    /// Written in the config file or given on the command line.
    Given,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Provider(id) => write!(f, "preset {id} (named in the config)"),
            Source::Domain(id) => write!(f, "preset {id} (by email domain)"),
            Source::Mx { host, preset } => write!(f, "preset {preset} (MX {host})"),
            Source::Autoconfig(url) => write!(f, "autoconfig {url}"),
            Source::Guess => write!(f, "guess (a server answered)"),
            Source::Given => write!(f, "given"),
        }
    }
}

/// One discovered server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS mode.
    pub tls: TlsMode,
    /// The user name to log in with.
    pub username: String,
    /// Where this came from.
    pub source: Source,
}

impl Found {
    /// `host:port`.
    pub fn address(&self) -> String {
        crate::net::host_port(&self.host, self.port)
    }

    pub fn from_preset(s: &super::Server, email: &str, source: Source) -> Found {
        Found {
            host: s.host.to_owned(),
            port: s.port,
            tls: s.tls,
            username: s.username.apply(email),
            source,
        }
    }
}

/// What discovery found for one address.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The address.
    pub email: String,
    /// The preset, when one applies (help links, auth ways, OAuth provider).
    pub preset: Option<&'static Preset>,
    /// The IMAP server.
    pub imap: Found,
    /// The SMTP submission server, if one was found.
    pub smtp: Option<Found>,
    /// What was tried and did not give an answer, in order.
    pub notes: Vec<String>,
}

/// The domain of an address, lower case.
pub fn domain_of(email: &str) -> Option<String> {
    let (local, domain) = email.trim().rsplit_once('@')?;
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    (!local.is_empty() && !d.is_empty() && !d.contains(|c: char| c.is_whitespace() || c == '/'))
        .then_some(d)
}

/// The settings of a preset for `email`.
pub fn from_preset(email: &str, preset: &'static Preset, source: Source) -> Discovery {
    Discovery {
        email: email.to_owned(),
        preset: Some(preset),
        imap: Found::from_preset(&preset.imap, email, source.clone()),
        smtp: Some(Found::from_preset(&preset.smtp, email, source)),
        notes: Vec::new(),
    }
}
