//! A confidential client's certificate credential (RFC 7523 section 2.2; Microsoft Entra's
//! "certificate credentials"): instead of a client secret, each token request carries a JWT
//! the client signs with the certificate's private key. The identity provider finds the
//! certificate by the header's thumbprint (`x5t`, SHA-1 of the DER; `x5t#S256`, SHA-256) and
//! checks the signature with the certificate's public key.

use super::{b64url, read_bounded, KeyError, SignError, Signer};
use crate::secret::Secret;
use rand::RngCore;
use ring::digest;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::json;
use std::path::{Path, PathBuf};

/// How long an assertion is valid (Microsoft's examples use 10 minutes).
const LIFETIME_SECS: u64 = 600;

/// A loaded certificate and its private key.
#[derive(Debug)]
pub struct ClientCertificate {
    /// The certificate file (for messages).
    pub certificate_file: PathBuf,
    /// base64url SHA-1 of the certificate's DER (the JWT header's `x5t`).
    pub x5t: String,
    /// base64url SHA-256 of the certificate's DER (`x5t#S256`).
    pub x5t_s256: String,
    pub(super) signer: Signer,
}

impl ClientCertificate {
    /// Reads the certificate (PEM) and its private key (PEM, RSA), and checks that the
    /// certificate is of that key.
    pub fn load(certificate: &Path, key: &Path) -> Result<ClientCertificate, KeyError> {
        let bad = |problem| KeyError::Certificate {
            path: certificate.to_owned(),
            problem,
        };
        let pem = read_bounded(certificate)?;
        let der = CertificateDer::from_pem_slice(&pem).map_err(|e| {
            super::pem_error(certificate, &e, "certificate (-----BEGIN CERTIFICATE-----)")
        })?;
        let signer = Signer::load(key)?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|_| bad("the certificate does not parse as X.509"))?;
        let spki = cert.public_key();
        if spki.subject_public_key.data.as_ref() != signer.public_key_der() {
            return Err(bad(
                "the certificate is not of the private key in client_key_file (their public keys differ)",
            ));
        }
        Ok(ClientCertificate {
            certificate_file: certificate.to_owned(),
            x5t: b64url(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &der).as_ref()),
            x5t_s256: b64url(digest::digest(&digest::SHA256, &der).as_ref()),
            signer,
        })
    }

    /// A client assertion for `client_id` at the token endpoint `audience`, issued at `now`
    /// (Unix seconds), with a random `jti` (the provider refuses one it has seen).
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: u64,
    ) -> Result<Secret, SignError> {
        let mut jti = [0u8; 16];
        rand::rngs::OsRng
            .try_fill_bytes(&mut jti)
            .map_err(|_| SignError)?;
        let header =
            json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t, "x5t#S256": self.x5t_s256});
        let claims = json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": b64url(&jti),
            "nbf": now,
            "iat": now,
            "exp": now + LIFETIME_SECS,
        });
        self.signer.sign(&header, &claims)
    }
}
