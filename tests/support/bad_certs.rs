//! Certificates a server must not be trusted with, each signed by a CA the tests trust (so
//! that the one thing wrong with it is the thing under test): one expired, one for another
//! name. Made with rcgen at test time, like [`super::certs::Pki`].

use std::path::{Path, PathBuf};

use rcgen::{KeyPair, SanType};
use tempfile::TempDir;

use super::certs::{make_ca, server_params, write, CertFiles};

pub struct BadCerts {
    dir: TempDir,
    /// The CA that signed both (point `ca_file` here).
    pub ca: PathBuf,
    /// For "localhost" and 127.0.0.1, valid 2020-01-01 to 2021-01-01.
    pub expired: CertFiles,
    /// Valid now, for [`OTHER_NAME`] only.
    pub wrong_name: CertFiles,
}

/// The expired certificate's not-after date as `check` prints it.
pub const EXPIRED_NOT_AFTER: &str = "2021-01-01";
/// The only name in the wrong-name certificate.
pub const OTHER_NAME: &str = "mail.example.test";

impl BadCerts {
    pub fn new() -> BadCerts {
        let dir = tempfile::Builder::new()
            .prefix("mailgate-badcerts-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        let ca = make_ca("mailgate bad-cert test CA");

        let mut expired = server_params("localhost");
        expired.not_before = rcgen::date_time_ymd(2020, 1, 1);
        expired.not_after = rcgen::date_time_ymd(2021, 1, 1);
        let expired_key = KeyPair::generate().expect("key");
        let expired = expired
            .signed_by(&expired_key, &ca.cert, &ca.key)
            .expect("sign expired");

        let mut wrong = server_params(OTHER_NAME);
        wrong.subject_alt_names = vec![SanType::DnsName(
            OTHER_NAME.to_string().try_into().expect("DNS name"),
        )];
        let wrong_key = KeyPair::generate().expect("key");
        let wrong = wrong
            .signed_by(&wrong_key, &ca.cert, &ca.key)
            .expect("sign wrong-name");

        BadCerts {
            ca: write(d, "ca.pem", &ca.cert.pem()),
            expired: CertFiles::write(d, "expired", &expired, &expired_key),
            wrong_name: CertFiles::write(d, "wrong-name", &wrong, &wrong_key),
            dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for BadCerts {
    fn default() -> Self {
        BadCerts::new()
    }
}
