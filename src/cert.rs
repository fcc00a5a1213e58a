//! `mailgate cert generate`: a self-signed certificate for mailgate's own listeners.
//!
//! Local clients that insist on TLS (some refuse plaintext IMAP even to localhost) need a
//! certificate for the name they connect to. A self-signed one for `localhost`, `127.0.0.1` and
//! `::1` (plus any extra names) is enough once the client trusts it. Made with rcgen on ring (no
//! second crypto library); an ECDSA P-256 key, valid for 825 days by default, the longest
//! period Apple platforms accept for a server certificate.

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// File name of the certificate inside the output folder.
pub const CERT_FILE: &str = "mailgate.pem";
/// File name of the private key inside the output folder.
pub const KEY_FILE: &str = "mailgate.key";

/// Why no certificate was written.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file is already there and `--force` was not given.
    #[error("{0} exists; pass --force to replace it")]
    Exists(PathBuf),
    /// A `--name` is neither a DNS name nor an IP address.
    #[error("`{0}` is not a DNS name or an IP address")]
    BadName(String),
    /// rcgen refused the parameters.
    #[error("cannot make the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// Writing a file failed.
    #[error("cannot write {path}: {error}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error (in the message, not a `source`: an error chain would print it twice).
        error: std::io::Error,
    },
}

/// What was written.
#[derive(Debug)]
pub struct Generated {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The private key (PEM, mode 0600).
    pub key: PathBuf,
    /// Every name in the certificate.
    pub names: Vec<String>,
}

/// Writes `mailgate.pem` and `mailgate.key` into `out` (created if missing) for localhost,
/// 127.0.0.1, ::1 and `extra` names, valid for `days` from yesterday (clock skew).
pub fn generate(
    out: &Path,
    extra: &[String],
    days: u32,
    force: bool,
) -> Result<Generated, CertError> {
    let cert_path = out.join(CERT_FILE);
    let key_path = out.join(KEY_FILE);
    if !force {
        for p in [&cert_path, &key_path] {
            if p.exists() {
                return Err(CertError::Exists(p.clone()));
            }
        }
    }
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for n in extra {
        let n = n.trim().to_owned();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let mut params = CertificateParams::default();
    for n in &names {
        let san = match n.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => {
                // rcgen takes any printable ASCII; a client will only ever match a DNS name.
                let bad = || CertError::BadName(n.clone());
                rustls_pki_types::DnsName::try_from(n.as_str()).map_err(|_| bad())?;
                SanType::DnsName(n.clone().try_into().map_err(|_| bad())?)
            }
        };
        params.subject_alt_names.push(san);
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "mailgate on localhost");
    dn.push(DnType::OrganizationName, "mailgate (self-signed)");
    params.distinguished_name = dn;
    // Not a CA: trusting this certificate trusts it for these names only, nothing it could sign.
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(i64::from(days.max(1)));
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;

    std::fs::create_dir_all(out).map_err(|source| CertError::Write {
        path: out.to_owned(),
        error: source,
    })?;
    write_file(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(Generated {
        cert: cert_path,
        key: key_path,
        names,
    })
}

/// Writes `bytes` to a fresh file with `mode` (a replaced key never exists with wider rights,
/// not even for a moment: the old file is removed first and the new one created 0600).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| CertError::Write {
        path: path.to_owned(),
        error: source,
    };
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pair_loads_and_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let g = generate(
            dir.path(),
            &["mail.lan".into(), "10.0.0.5".into()],
            30,
            false,
        )
        .unwrap();
        assert_eq!(
            g.names,
            ["localhost", "127.0.0.1", "::1", "mail.lan", "10.0.0.5"]
        );
        assert!(crate::net::tls::server_config(&g.cert, &g.key).is_ok());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&g.key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = generate(dir.path(), &[], 30, false).unwrap_err();
        assert!(matches!(again, CertError::Exists(_)), "{again}");
        assert!(generate(dir.path(), &[], 30, true).is_ok());
        assert!(matches!(
            generate(dir.path(), &["bad name!".into()], 30, true),
            Err(CertError::BadName(_))
        ));
    }
}
