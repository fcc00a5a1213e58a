//! A test PKI made at test time with rcgen, written as PEM into a temp dir.
//! No key is ever committed; every `Pki::new()` makes fresh keys.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use tempfile::TempDir;

/// A server certificate and its key, as PEM files.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Two independent CAs and server certificates for "localhost" + 127.0.0.1:
/// - `ca` signed `server`: the trusted path (point mailgate's `ca_file` at `ca`);
/// - `other_ca` signed `other_server`: a CA the tests do not trust (wrong-CA negative tests);
/// - `self_signed`: a server certificate that is its own issuer;
/// - `expired`: signed by `ca` for the right names, but valid only in 2020.
pub struct Pki {
    dir: TempDir,
    pub ca: PathBuf,
    pub server: CertFiles,
    pub other_ca: PathBuf,
    pub other_server: CertFiles,
    pub self_signed: CertFiles,
    pub expired: CertFiles,
}

/// A CA certificate and its key, for signing more certificates.
pub struct Ca {
    pub cert: Certificate,
    pub key: KeyPair,
}

/// A CA named `name` (CN) with organization "mailgate tests".
pub fn make_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationName, "mailgate tests");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("CA key");
    let cert = params.self_signed(&key).expect("self-sign CA");
    Ca { cert, key }
}

/// A server certificate's parameters: "localhost" + 127.0.0.1, CN `common_name`.
pub fn server_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
}

/// Writes `contents` to `dir/name`.
pub fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

impl CertFiles {
    /// Writes `cert` and `key` as `dir/STEM.pem` and `dir/STEM.key`.
    pub fn write(dir: &Path, stem: &str, cert: &Certificate, key: &KeyPair) -> CertFiles {
        CertFiles {
            cert: write(dir, &format!("{stem}.pem"), &cert.pem()),
            key: write(dir, &format!("{stem}.key"), &key.serialize_pem()),
        }
    }
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("mailgate-pki-")
            .tempdir()
            .expect("pki tempdir");
        let d = dir.path();

        let ca = make_ca("mailgate test CA");
        let other_ca = make_ca("mailgate untrusted test CA");

        let server_key = KeyPair::generate().expect("server key");
        let server = server_params("localhost")
            .signed_by(&server_key, &ca.cert, &ca.key)
            .expect("sign server cert");

        let other_key = KeyPair::generate().expect("other server key");
        let other = server_params("localhost")
            .signed_by(&other_key, &other_ca.cert, &other_ca.key)
            .expect("sign other server cert");

        let self_key = KeyPair::generate().expect("self-signed key");
        let self_signed = server_params("localhost")
            .self_signed(&self_key)
            .expect("self-sign server cert");

        let expired_key = KeyPair::generate().expect("expired key");
        let mut expired_params = server_params("localhost");
        expired_params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        expired_params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        let expired = expired_params
            .signed_by(&expired_key, &ca.cert, &ca.key)
            .expect("sign expired cert");

        Pki {
            expired: CertFiles {
                cert: write(d, "expired.pem", &expired.pem()),
                key: write(d, "expired.key", &expired_key.serialize_pem()),
            },
            ca: write(d, "ca.pem", &ca.cert.pem()),
            server: CertFiles {
                cert: write(d, "server.pem", &server.pem()),
                key: write(d, "server.key", &server_key.serialize_pem()),
            },
            other_ca: write(d, "other-ca.pem", &other_ca.cert.pem()),
            other_server: CertFiles {
                cert: write(d, "other-server.pem", &other.pem()),
                key: write(d, "other-server.key", &other_key.serialize_pem()),
            },
            self_signed: CertFiles {
                cert: write(d, "self-signed.pem", &self_signed.pem()),
                key: write(d, "self-signed.key", &self_key.serialize_pem()),
            },
            dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}
