//! Signed JSON Web Tokens (RFC 7515/7519, RS256) for the app-only OAuth identities: a Google
//! service account's grant assertion ([`ServiceAccount`], RFC 7523 section 2.1) and a
//! confidential client's certificate credential ([`ClientCertificate`], RFC 7523 section 2.2,
//! Microsoft Entra's "certificate credentials").
//!
//! A leaf: the configuration loads the keys (so a bad key is an error at its line in the
//! file) and the token requests sign with them. Keys are read with a size bound, parsed from
//! PEM (PKCS#8 or PKCS#1) and held only as ring's key pair; no error or `Debug` output carries
//! key bytes or a signed token. Every token is a [`Secret`]: it is a bearer credential.

mod client_cert;
mod der;
mod service_account;

pub use client_cert::ClientCertificate;
pub use service_account::ServiceAccount;

use crate::secret::Secret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::PrivateKeyDer;
use std::io::Read;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The largest key, certificate or key file read (a real one is a few KiB).
pub const MAX_FILE: u64 = 64 * 1024;
/// RSA key sizes RS256 signing accepts here (ring's bounds for signing keys).
const MIN_BITS: usize = 2048;
const MAX_BITS: usize = 4096;

/// A key, certificate or key file that cannot be used. Names the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE`].
    #[error("{} is larger than {} KiB: not a key file", path.display(), MAX_FILE / 1024)]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// No PEM section of the kind needed.
    #[error("{} has no {wanted} in PEM form", path.display())]
    NotFound {
        /// The file.
        path: PathBuf,
        /// What was looked for, with its PEM label.
        wanted: &'static str,
    },
    /// The PEM text is damaged.
    #[error("{} is not valid PEM: {problem}", path.display())]
    BadPem {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words of our own (never the file's text).
        problem: &'static str,
    },
    /// The private key is not an RSA key (RS256 needs one).
    #[error("{} holds an {algorithm} key; RS256 needs an RSA key", path.display())]
    NotRsa {
        /// The file.
        path: PathBuf,
        /// The key's algorithm.
        algorithm: &'static str,
    },
    /// The RSA key is too small or too large.
    #[error("{} holds a {bits}-bit RSA key; {MIN_BITS} to {MAX_BITS} bits are needed", path.display())]
    Size {
        /// The file.
        path: PathBuf,
        /// The modulus size.
        bits: usize,
    },
    /// ring refused the RSA key (a damaged or unusual key).
    #[error("{} holds an RSA key that cannot be used for signing (damaged, or an unusual public exponent)", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
    },
    /// The certificate does not parse, or is not of the private key.
    #[error("{}: {problem}", path.display())]
    Certificate {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong.
        problem: &'static str,
    },
    /// A service account key file that is not one.
    #[error("{} is not a Google service account key: {problem}", path.display())]
    ServiceAccount {
        /// The key file.
        path: PathBuf,
        /// What is wrong (our words and the JSON position, never the file's text).
        problem: String,
    },
}

impl KeyError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            KeyError::Read { path, .. }
            | KeyError::TooLarge { path }
            | KeyError::NotFound { path, .. }
            | KeyError::BadPem { path, .. }
            | KeyError::NotRsa { path, .. }
            | KeyError::Size { path, .. }
            | KeyError::Invalid { path }
            | KeyError::Certificate { path, .. }
            | KeyError::ServiceAccount { path, .. } => path,
        }
    }
}

/// Signing failed: only the system's random generator can make RSA signing fail.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the JWT assertion: the system random number generator failed")]
pub struct SignError;

/// Reads at most [`MAX_FILE`] bytes of `path`; the bytes are zeroized when dropped.
pub fn read_bounded(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let read = |error| KeyError::Read {
        path: path.to_owned(),
        error,
    };
    let file = std::fs::File::open(path).map_err(read)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(KeyError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// The words for a PEM parse failure (rustls-pki-types' own text may quote the file's lines).
fn pem_problem(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a section is not valid base64",
        pem::Error::SectionTooLarge => "a section is too large",
        _ => "it does not parse",
    }
}

/// A PEM parse failure of `path`, where `wanted` was looked for.
fn pem_error(path: &Path, e: &pem::Error, wanted: &'static str) -> KeyError {
    match e {
        pem::Error::NoItemsFound => KeyError::NotFound {
            path: path.to_owned(),
            wanted,
        },
        other => KeyError::BadPem {
            path: path.to_owned(),
            problem: pem_problem(other),
        },
    }
}

/// An RSA private key that signs RS256 JWTs.
pub struct Signer {
    pair: RsaKeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Signer(RSA {} bits)",
            self.pair.public().modulus_len() * 8
        )
    }
}

impl Signer {
    /// The first private key in the PEM text `pem` (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA
    /// PRIVATE KEY`); `path` names where it came from in errors.
    pub fn from_pem(pem: &[u8], path: &Path) -> Result<Signer, KeyError> {
        const WANTED: &str = "private key (a PEM block of type PRIVATE KEY or RSA PRIVATE KEY)";
        let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| pem_error(path, &e, WANTED))?;
        let not_rsa = |algorithm| KeyError::NotRsa {
            path: path.to_owned(),
            algorithm,
        };
        let (pkcs1, pkcs8) = match &key {
            PrivateKeyDer::Pkcs1(k) => (k.secret_pkcs1_der(), None),
            PrivateKeyDer::Pkcs8(k) => {
                let der = k.secret_pkcs8_der();
                match der::pkcs8_algorithm(der) {
                    Some("RSA") => {}
                    Some(other) => return Err(not_rsa(other)),
                    None => {
                        return Err(KeyError::Invalid {
                            path: path.to_owned(),
                        })
                    }
                }
                (der::pkcs8_inner(der).unwrap_or_default(), Some(der))
            }
            // Sec1 (`EC PRIVATE KEY`) and anything newer.
            _ => return Err(not_rsa("EC")),
        };
        let bits = der::rsa_modulus_bits(pkcs1).ok_or_else(|| KeyError::Invalid {
            path: path.to_owned(),
        })?;
        if !(MIN_BITS..=MAX_BITS).contains(&bits) {
            return Err(KeyError::Size {
                path: path.to_owned(),
                bits,
            });
        }
        let pair = match pkcs8 {
            Some(der) => RsaKeyPair::from_pkcs8(der),
            None => RsaKeyPair::from_der(pkcs1),
        }
        .map_err(|_| KeyError::Invalid {
            path: path.to_owned(),
        })?;
        Ok(Signer { pair })
    }

    /// The key of the PEM file `path`, read with a size bound.
    pub fn load(path: &Path) -> Result<Signer, KeyError> {
        Signer::from_pem(&read_bounded(path)?, path)
    }

    /// The public key as PKCS#1 `RSAPublicKey` DER (what a certificate's key must equal).
    pub fn public_key_der(&self) -> &[u8] {
        self.pair.public().as_ref()
    }

    /// `header.claims.signature`, RS256, each part base64url without padding.
    pub fn sign(
        &self,
        header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> Result<Secret, SignError> {
        let mut text = Zeroizing::new(format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        ));
        let mut signature = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                text.as_bytes(),
                &mut signature,
            )
            .map_err(|_| SignError)?;
        text.push('.');
        text.push_str(&b64url(&signature));
        Ok(Secret::new(std::mem::take(&mut *text)))
    }
}

/// base64url without padding (RFC 7515 section 2).
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
pub(crate) mod tests;
