//! rustls configuration: the client side towards upstream servers.
//!
//! Upstream certificates are verified by default against the system's trust store (falling
//! back to the Mozilla roots compiled in via `webpki-roots` where the system has none, e.g. a
//! minimal container), plus an optional per-account CA file for private servers. There is no
//! "accept any certificate" switch: a gateway that silently accepted any certificate would hand
//! stored credentials to whoever sits on the path.

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{pem::PemObject, CertificateDer};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// A CA file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
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
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    match ca_file {
        None => Ok(DEFAULT
            .get_or_init(|| build(system_roots().clone()))
            .clone()),
        Some(_) => Ok(build(roots(ca_file)?)),
    }
}

/// The trust anchors [`client_config`] uses: the system roots plus the certificates in
/// `ca_file`. Public so that `mailgate check` can verify with exactly the same trust.
pub fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = system_roots().clone();
    let Some(path) = ca_file else {
        return Ok(roots);
    };
    let err = |reason: String| TlsError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let mut added = 0;
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))? {
        let cert = cert.map_err(|e| err(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| err(format!("not a usable CA certificate: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(err("no PEM certificate found".into()));
    }
    Ok(roots)
}
