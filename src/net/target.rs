//! Where a connection goes and how it is secured: everything needed to reach a server, and no
//! credential (logging in is the business of the layers above).

use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

/// How a connection to an upstream server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (IMAP 993, SMTP 465).
    Implicit,
    /// Plaintext greeting, then STARTTLS, which the server must offer (IMAP 143, SMTP 587).
    Starttls,
    /// No TLS at all. Allowed only with `allow_plaintext = true`.
    None,
}

impl TlsMode {
    /// The word used in the config file, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Implicit => "implicit",
            TlsMode::Starttls => "starttls",
            TlsMode::None => "none",
        }
    }
}

/// A server to connect to: host, port, TLS mode, the name its certificate must carry and the
/// trust to check it with.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host name or IP address to connect to.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// How the connection is secured.
    pub tls: TlsMode,
    /// Name checked against the server certificate and sent as SNI.
    pub server_name: rustls_pki_types::ServerName<'static>,
    /// TLS client configuration (roots + optional CA file); `None` for `tls = "none"`.
    pub tls_config: Option<Arc<rustls::ClientConfig>>,
    /// The CA file behind `tls_config`, resolved (`mailgate check` names it and rebuilds the
    /// same trust from it).
    pub ca_file: Option<PathBuf>,
}

impl Target {
    /// `host:port`, for logs and messages.
    pub fn address(&self) -> String {
        host_port(&self.host, self.port)
    }
}

/// `host:port`, or `[v6]:port` for an IPv6 address.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
