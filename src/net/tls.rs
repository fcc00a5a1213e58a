//! rustls configuration: the client side towards upstream servers, and the server side that
//! local clients see when `[server.tls]` is configured.
//!
//! Upstream certificates are verified by default against the system's trust store (falling
//! back to the Mozilla roots compiled in via `webpki-roots` where the system has none, e.g. a
//! minimal container), plus an optional per-account CA file for private servers. There is no
//! "accept any certificate" switch: a gateway that silently accepted any certificate would hand
//! stored credentials to whoever sits on the path.

use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

/// A CA, certificate or key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The local certificate file is missing, unreadable or holds no PEM certificate.
    #[error("cannot read the certificate from {path}: {reason}")]
    ServerCert {
        /// The file named in the config.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The local private key file is missing, unreadable, not a PEM key, or not the
    /// certificate's key.
    #[error("cannot use the private key in {path}: {reason}")]
    ServerKey {
        /// The file named in the config.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The file is missing, unreadable or holds no PEM certificate.
    #[error("cannot read CA certificates from {path}: {reason}")]
    CaFile {
        /// The file named in the config.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// Installs `ring` as the process-wide rustls crypto provider (once). mail-send builds its own
/// rustls configurations with the default provider, so one must be installed before it runs.
pub fn install_crypto_provider() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // An error only means another provider was installed first; ring stays ours regardless.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// System roots, loaded once per process (reading /etc/ssl/certs is not free).
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut store = RootCertStore::empty();
        let loaded = rustls_native_certs::load_native_certs();
        for cert in loaded.certs {
            // A malformed system certificate is skipped, as every TLS client does.
            let _ = store.add(cert);
        }
        if store.is_empty() {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        store
    })
}

// The one `expect` of the product: ring's default provider is compiled in with TLS 1.2 and
// 1.3 (the crate's `ring` and `tls12` features), so no input or network event can make it
// lack the default protocol versions.
#[allow(clippy::expect_used)]
fn build(roots: RootCertStore) -> Arc<ClientConfig> {
    install_crypto_provider();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // ring's default provider supports TLS 1.2 and 1.3, the protocol versions above.
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Client configuration trusting the system roots plus, if given, the certificates in `ca_file`.
/// Configurations without a CA file are one shared instance (so they share a session cache).
/// The accounts' mail servers use [`upstream_config`] instead.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    match ca_file {
        None => Ok(DEFAULT
            .get_or_init(|| build(system_roots().clone()))
            .clone()),
        Some(_) => Ok(build(roots(ca_file)?)),
    }
}

/// Most configurations [`upstream_config`] shares at once; more distinct (CA file contents,
/// port) pairs than this each get one of their own, which works but shares no sessions.
const MAX_SHARED: usize = 64;

/// One configuration [`upstream_config`] shares: its key and the configuration while some
/// loaded config (or a session holding one) uses it.
struct Shared {
    port: u16,
    /// The CA file's certificates (empty without one).
    ca: Vec<CertificateDer<'static>>,
    config: Weak<ClientConfig>,
}

/// The configurations [`upstream_config`] shares.
static SHARED: Mutex<Vec<Shared>> = Mutex::new(Vec::new());

/// Client configuration for an upstream mail server on `port`, trusting what
/// [`client_config`] trusts. rustls resumes TLS sessions from a cache inside each
/// configuration, so endpoints with the same CA file contents and port share one while any
/// loaded config uses it: an account's second login resumes its first, accounts at one
/// provider resume each other's sessions, and a reload that leaves the CA file alone keeps
/// them. Keyed by the certificates, not the path: a changed CA file is new trust, under which a
/// session verified before must not be resumed. Keyed by port too: rustls finds sessions by
/// server name alone and offers the newest, so IMAP and SMTP at one name (different servers,
/// whose tickets do not fit each other) would keep offering each other's and never resume.
pub fn upstream_config(ca_file: Option<&Path>, port: u16) -> Result<Arc<ClientConfig>, TlsError> {
    let (roots, ca) = roots_and_certificates(ca_file)?;
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    shared.retain(|s| s.config.strong_count() > 0);
    let found = shared
        .iter()
        .filter(|s| s.port == port && s.ca == ca)
        .find_map(|s| s.config.upgrade());
    if let Some(config) = found {
        return Ok(config);
    }
    let config = build(roots);
    if shared.len() < MAX_SHARED {
        shared.push(Shared {
            port,
            ca,
            config: Arc::downgrade(&config),
        });
    }
    Ok(config)
}

/// The trust anchors [`client_config`] uses: the system roots plus the certificates in
/// `ca_file`. Public so that `mailgate check` can verify with exactly the same trust.
pub fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    roots_and_certificates(ca_file).map(|(roots, _)| roots)
}

/// [`roots`], and the certificates read from `ca_file` (none without one).
fn roots_and_certificates(
    ca_file: Option<&Path>,
) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), TlsError> {
    let mut roots = system_roots().clone();
    let Some(path) = ca_file else {
        return Ok((roots, Vec::new()));
    };
    let err = |reason: String| TlsError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let mut added = Vec::new();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))? {
        let cert = cert.map_err(|e| err(e.to_string()))?;
        roots
            .add(cert.clone())
            .map_err(|e| err(format!("not a usable CA certificate: {e}")))?;
        added.push(cert);
    }
    if added.is_empty() {
        return Err(err("no PEM certificate found".into()));
    }
    Ok((roots, added))
}

/// Server configuration for local clients: the certificate chain in `cert` (leaf first) and the
/// private key in `key`, both PEM. TLS 1.2 and 1.3 with ring's safe defaults; no client
/// certificates. Checks that the key belongs to the certificate, so a mismatch is reported when
/// the config loads, not at the first handshake.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    install_crypto_provider();
    let cert_err = |reason: String| TlsError::ServerCert {
        path: cert.display().to_string(),
        reason,
    };
    let key_err = |reason: String| TlsError::ServerKey {
        path: key.display().to_string(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no PEM certificate found".into()));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| key_err(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| cert_err(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| key_err(format!("does not fit the certificate: {e}")))?;
    Ok(Arc::new(config))
}

/// A local client's TLS connection.
pub type ServerStream<S> = tokio_rustls::server::TlsStream<S>;

/// The server side of a TLS handshake with a local client (implicit TLS or after STARTTLS),
/// bounded by `timeout` so that a client that stops mid-handshake does not hold a session.
pub async fn accept<S>(
    config: Arc<ServerConfig>,
    stream: S,
    timeout: std::time::Duration,
) -> std::io::Result<ServerStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let handshake = tokio_rustls::TlsAcceptor::from(config).accept(stream);
    match tokio::time::timeout(timeout, handshake).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file holding one freshly made CA certificate, named `name` in `dir`.
    fn ca_file(dir: &Path, name: &str) -> std::path::PathBuf {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("CA certificate");
        let path = dir.join(name);
        std::fs::write(&path, cert.pem()).expect("write CA");
        path
    }

    /// One configuration (one session cache) per CA file contents and port, whatever the
    /// file's path; another port or other contents get their own. The ports are this test's
    /// own: the shared table is the process's.
    #[test]
    fn upstream_configs_are_shared_per_ca_contents_and_port() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = ca_file(dir.path(), "ca.pem");
        let copy = dir.path().join("copy.pem");
        std::fs::copy(&ca, &copy).expect("copy CA");
        let other = ca_file(dir.path(), "other.pem");
        let config = |file: Option<&Path>, port| upstream_config(file, port).expect("config");

        let first = config(Some(&ca), 60_993);
        assert!(Arc::ptr_eq(&first, &config(Some(&ca), 60_993)));
        assert!(Arc::ptr_eq(&first, &config(Some(&copy), 60_993)));
        assert!(!Arc::ptr_eq(&first, &config(Some(&ca), 60_465)));
        assert!(!Arc::ptr_eq(&first, &config(Some(&other), 60_993)));

        let system = config(None, 60_993);
        assert!(Arc::ptr_eq(&system, &config(None, 60_993)));
        assert!(!Arc::ptr_eq(&system, &first));
        assert!(!Arc::ptr_eq(&system, &config(None, 60_587)));
    }

    /// A CA file that cannot be used is an error, as for [`client_config`].
    #[test]
    fn an_unusable_ca_file_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").expect("write");
        for file in [empty, dir.path().join("missing.pem")] {
            assert!(matches!(
                upstream_config(Some(&file), 60_143),
                Err(TlsError::CaFile { .. })
            ));
        }
    }
}
