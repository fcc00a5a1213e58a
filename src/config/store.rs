//! `[store]`: the shared account and token store on PostgreSQL (several nodes, one set of
//! accounts). The connection string may hold the database password, so it is a secret and may
//! come from the environment or a file; the key that seals every secret in the database comes
//! from a file or the environment, never from the database itself.

use super::endpoint::one_secret;
use super::file::StoreFile;
use super::locate::FieldError;
use crate::net::tls;
use crate::secret::Secret;
use base64::Engine;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The store key: 32 bytes, given as base64 (`openssl rand -base64 32`). Prints as `***`.
#[derive(Clone)]
pub struct StoreKey(Arc<Zeroizing<[u8; 32]>>);

impl StoreKey {
    /// The key's bytes, for sealing and opening.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// `[store]`, validated: what every node needs to use the shared store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The libpq-style connection string or `postgres://` URL (may hold the password).
    pub postgres: Secret,
    /// The key that seals accounts and tokens in the database.
    pub key: StoreKey,
    /// Where the key came from (`key_file /path` or `key_env VAR`), for messages.
    pub key_source: String,
    /// The TLS client configuration for the database: the system roots plus `ca_file`.
    pub tls: Arc<rustls::ClientConfig>,
}

/// `[store]` of the file; `base` is the config file's folder.
pub(super) fn store(file: StoreFile, base: &Path) -> Result<StoreConfig, FieldError> {
    let bad = FieldError::new;
    let postgres = one_secret(
        "postgres",
        file.postgres.as_deref(),
        file.postgres_env.as_deref(),
        file.postgres_file.as_deref(),
        base,
    )?
    .ok_or_else(|| {
        bad(
            "postgres",
            "set one of postgres, postgres_env and postgres_file (the database's connection string)".into(),
        )
    })?;
    let (text, key_source) = match (&file.key_file, &file.key_env) {
        (Some(path), None) => {
            let path = base.join(path);
            (key_file(&path)?, format!("key_file {}", path.display()))
        }
        (None, Some(var)) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => (Zeroizing::new(v), format!("key_env {var}")),
            _ => {
                return Err(bad(
                    "key_env",
                    format!("environment variable `{var}` is not set"),
                ))
            }
        },
        (None, None) => return Err(bad("key_file", "set key_file or key_env: the key that seals the secrets in the database (make one with `openssl rand -base64 32`; every node needs the same)".into())),
        (Some(_), Some(_)) => return Err(bad("key_file", "give only one of key_file and key_env".into())),
    };
    let key = decode_key(text.trim()).ok_or_else(|| {
        bad(
            if file.key_env.is_some() { "key_env" } else { "key_file" },
            format!("{key_source}: the key is not 32 bytes in base64 (make one with `openssl rand -base64 32`)"),
        )
    })?;
    let ca = file.ca_file.map(|p| base.join(p));
    let tls = tls::client_config(ca.as_deref()).map_err(|e| bad("ca_file", e.to_string()))?;
    Ok(StoreConfig {
        postgres,
        key,
        key_source,
        tls,
    })
}

/// The key file's text; refused when others may read it (it opens every secret).
fn key_file(path: &PathBuf) -> Result<Zeroizing<String>, FieldError> {
    let bad = |m: String| FieldError::new("key_file", m);
    let meta =
        std::fs::metadata(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(bad(format!(
            "{} is accessible to other users (mode {mode:03o}); run `chmod 600` on it",
            path.display()
        )));
    }
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))
}

fn decode_key(text: &str) -> Option<StoreKey> {
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?,
    );
    let key: [u8; 32] = bytes.as_slice().try_into().ok()?;
    Some(StoreKey(Arc::new(Zeroizing::new(key))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_32_bytes_of_base64() {
        let b64 = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        assert_eq!(decode_key(&b64).map(|k| *k.bytes()), Some([9u8; 32]));
        let short = base64::engine::general_purpose::STANDARD.encode([9u8; 31]);
        assert!(decode_key(&short).is_none());
        assert!(decode_key("not base64!").is_none());
        assert_eq!(format!("{:?}", decode_key(&b64).unwrap()), "***");
    }
}
