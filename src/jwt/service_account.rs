//! A Google service account's JSON key file and the grant assertion it signs (RFC 7523
//! section 2.1, Google's "server-to-server" flow with domain-wide delegation): the JWT names
//! the service account (`iss`), the mailbox it acts for (`sub`) and the scope, and is swapped
//! at the token endpoint for an access token. There is no refresh token: asking again is how
//! the access token is renewed.

use super::{read_bounded, KeyError, SignError, Signer};
use crate::secret::Secret;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// The longest lifetime Google accepts for an assertion.
const LIFETIME_SECS: u64 = 3600;

/// A loaded service account key.
#[derive(Debug)]
pub struct ServiceAccount {
    /// The key file (for messages).
    pub file: PathBuf,
    /// The service account's address: the assertion's issuer.
    pub client_email: String,
    /// The service account's numeric client id (what domain-wide delegation is granted to).
    pub client_id: Option<String>,
    /// The key's id: the JWT header's `kid`.
    pub key_id: String,
    /// The token endpoint the key file names.
    pub token_uri: Option<String>,
    pub(super) signer: Signer,
}

impl ServiceAccount {
    /// Reads and checks the key file `path` (at most [`super::MAX_FILE`] bytes).
    pub fn load(path: &Path) -> Result<ServiceAccount, KeyError> {
        ServiceAccount::parse(&read_bounded(path)?, path)
    }

    /// Parses a key file's bytes; `path` names it in errors.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<ServiceAccount, KeyError> {
        let bad = |problem: String| KeyError::ServiceAccount {
            path: path.to_owned(),
            problem,
        };
        // Parsed as a `Value` first: serde_json's type errors quote the value they met, which
        // may be the key; syntax errors give only a position.
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            bad(format!(
                "not JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let Value::Object(mut obj) = value else {
            return Err(bad("not a JSON object".into()));
        };
        let text = |obj: &mut Map<String, Value>, k: &str| match obj.remove(k) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s),
            _ => None,
        };
        match text(&mut obj, "type").as_deref() {
            Some("service_account") => {}
            Some(other) => {
                let other: String = other.chars().filter(|c| !c.is_control()).take(40).collect();
                return Err(bad(format!(
                    "its type is \"{other}\", not \"service_account\" (a user's or an OAuth client's credentials file?)"
                )));
            }
            None => return Err(bad("no \"type\": \"service_account\"".into())),
        }
        let client_email = text(&mut obj, "client_email")
            .filter(|e| e.contains('@') && !e.contains(char::is_whitespace))
            .ok_or_else(|| bad("no usable \"client_email\"".into()))?;
        let key_id =
            text(&mut obj, "private_key_id").ok_or_else(|| bad("no \"private_key_id\"".into()))?;
        let pem = zeroize::Zeroizing::new(
            text(&mut obj, "private_key").ok_or_else(|| bad("no \"private_key\"".into()))?,
        );
        let signer = Signer::from_pem(pem.as_bytes(), path)?;
        Ok(ServiceAccount {
            file: path.to_owned(),
            client_email,
            client_id: text(&mut obj, "client_id"),
            key_id,
            token_uri: text(&mut obj, "token_uri"),
            signer,
        })
    }

    /// The grant assertion asking for `scope` on behalf of `subject` (the mailbox), for the
    /// token endpoint `audience`, issued at `now` (Unix seconds) and valid for an hour.
    pub fn assertion(
        &self,
        subject: &str,
        scope: &str,
        audience: &str,
        now: u64,
    ) -> Result<Secret, SignError> {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.key_id});
        let claims = json!({
            "iss": self.client_email,
            "sub": subject,
            "scope": scope,
            "aud": audience,
            "iat": now,
            "exp": now + LIFETIME_SECS,
        });
        self.signer.sign(&header, &claims)
    }
}
