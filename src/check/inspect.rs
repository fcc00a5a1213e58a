//! Seeing the server's certificate, also when it is refused: a certificate verifier that asks
//! the same WebPKI verifier the gateway uses (same roots, same `ca_file`) and records the
//! certificate and the verdict before returning that verdict unchanged. Nothing is ever
//! accepted that the gateway would refuse; the check only learns *why* it refuses.

use crate::config::Endpoint;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::sync::{Arc, Mutex};

/// The certificate a server presented and what verification said about it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The end-entity certificate (DER).
    pub end_entity: CertificateDer<'static>,
    /// `Ok` when it verified against the roots and matched the name.
    pub verdict: Result<(), rustls::Error>,
}

/// A verifier that delegates to WebPKI and remembers what it saw.
#[derive(Debug)]
pub struct Inspector {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Option<Seen>>,
}

impl Inspector {
    /// A TLS client configuration like `ep`'s, with an inspecting verifier. `None` for a
    /// plaintext endpoint, or if the trust cannot be rebuilt (then the endpoint's own
    /// configuration is used and the check shows the rustls error only).
    pub fn for_endpoint(ep: &Endpoint) -> Option<(Arc<ClientConfig>, Arc<Inspector>)> {
        let base = ep.target.tls_config.as_ref()?;
        let roots = crate::net::tls::roots(ep.target.ca_file.as_deref()).ok()?;
        let provider = base.crypto_provider().clone();
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .ok()?;
        let inspector = Arc::new(Inspector {
            inner,
            seen: Mutex::new(None),
        });
        let mut config = (**base).clone();
        config
            .dangerous()
            .set_certificate_verifier(inspector.clone());
        // A resumed session skips certificate verification; every check must verify afresh.
        config.resumption = Resumption::disabled();
        Some((Arc::new(config), inspector))
    }

    /// The last certificate seen, if a handshake got that far.
    pub fn seen(&self) -> Option<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl ServerCertVerifier for Inspector {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(Seen {
            end_entity: end_entity.clone().into_owned(),
            verdict: verdict.as_ref().map(|_| ()).map_err(Clone::clone),
        });
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What a certificate says about itself, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject alternative names (DNS names and IP addresses), else the subject's CN.
    pub names: Vec<String>,
    /// The issuer's distinguished name, e.g. `CN=mailgate test CA, O=mailgate tests`.
    pub issuer: String,
    /// `YYYY-MM-DD HH:MM:SS UTC`.
    pub not_before: String,
    /// `YYYY-MM-DD HH:MM:SS UTC`.
    pub not_after: String,
}

impl CertInfo {
    /// Parses a DER certificate; `None` if it does not parse (the server's bytes, not ours).
    pub fn parse(der: &[u8]) -> Option<CertInfo> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(n) => names.push((*n).to_owned()),
                    GeneralName::IPAddress(b) => names.push(ip_text(b)),
                    _ => {}
                }
            }
        }
        if names.is_empty() {
            names.extend(
                cert.subject()
                    .iter_common_name()
                    .filter_map(|cn| cn.as_str().ok().map(str::to_owned)),
            );
        }
        let when = |t: x509_parser::time::ASN1Time| {
            // Before 1970 cannot be a server certificate worth showing; clamp rather than fail.
            crate::oauth::authorize::format_utc(u64::try_from(t.timestamp()).unwrap_or(0))
        };
        Some(CertInfo {
            names,
            issuer: cert.issuer().to_string(),
            not_before: when(cert.validity().not_before),
            not_after: when(cert.validity().not_after),
        })
    }

    /// One line: `for localhost, 127.0.0.1; issued by CN=…; valid until …`.
    pub fn summary(&self) -> String {
        format!(
            "certificate for {}, issued by {}, valid until {}",
            if self.names.is_empty() {
                "(no names)".to_owned()
            } else {
                self.names.join(", ")
            },
            self.issuer,
            self.not_after
        )
    }
}

/// An IP address from a SAN's 4 or 16 bytes.
fn ip_text(bytes: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return std::net::Ipv4Addr::from(v4).to_string();
    }
    if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        return std::net::Ipv6Addr::from(v6).to_string();
    }
    format!("(IP address of {} bytes)", bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_render() {
        assert_eq!(ip_text(&[127, 0, 0, 1]), "127.0.0.1");
        assert_eq!(ip_text(&[0; 15]), "(IP address of 15 bytes)");
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(ip_text(&v6), "::1");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert_eq!(CertInfo::parse(b"not DER"), None);
    }
}
