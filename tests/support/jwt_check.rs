//! What the stand-in identity provider checks of a JWT assertion: the RS256 signature against
//! a registered RSA public key (PKCS#1 `RSAPublicKey` DER, as `openssl rsa -RSAPublicKey_out`
//! writes it), then the claims. Every check returns a reason on failure, never panics.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use serde_json::Value;

/// A decoded JWT (not yet verified).
#[derive(Clone, Debug)]
pub struct Jwt {
    pub header: Value,
    pub claims: Value,
    signed: String,
    signature: Vec<u8>,
}

impl Jwt {
    /// The three parts of `text`, the first two as JSON objects.
    pub fn decode(text: &str) -> Result<Jwt, &'static str> {
        let mut parts = text.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not three parts");
        };
        let json = |p: &str| -> Result<Value, &'static str> {
            let bytes = URL_SAFE_NO_PAD.decode(p).map_err(|_| "not base64url")?;
            match serde_json::from_slice(&bytes) {
                Ok(v @ Value::Object(_)) => Ok(v),
                _ => Err("not a JSON object"),
            }
        };
        Ok(Jwt {
            header: json(h)?,
            claims: json(c)?,
            signed: format!("{h}.{c}"),
            signature: URL_SAFE_NO_PAD
                .decode(s)
                .map_err(|_| "signature not base64url")?,
        })
    }

    /// A claim or header field as text ("" when absent or not text).
    pub fn claim(&self, name: &str) -> &str {
        self.claims.get(name).and_then(Value::as_str).unwrap_or("")
    }

    pub fn header_field(&self, name: &str) -> &str {
        self.header.get(name).and_then(Value::as_str).unwrap_or("")
    }

    /// A numeric claim (0 when absent).
    pub fn time(&self, name: &str) -> u64 {
        self.claims.get(name).and_then(Value::as_u64).unwrap_or(0)
    }

    /// RS256 with `public_key` (PKCS#1 DER).
    pub fn verify(&self, public_key: &[u8]) -> Result<(), &'static str> {
        if self.header_field("alg") != "RS256" {
            return Err("alg is not RS256");
        }
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key)
            .verify(self.signed.as_bytes(), &self.signature)
            .map_err(|_| "bad signature")
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
