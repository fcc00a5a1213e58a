//! Dovecot and Postfix as `mailgate setup`'s tests use them: one upstream pair on TLS with a
//! CA file that trusts both.

use super::{DovecotOpts, Pki, Postfix};
use std::fs;
use std::path::PathBuf;

/// The users' upstream password.
pub const UPSTREAM_PW: &str = "upstream-Secret-71";

/// Dovecot (IMAP on implicit TLS, and Postfix's SASL) and Postfix, both trusting users
/// `ola@example.test` and `kari@example.test`, plus one CA file that trusts both servers.
pub struct Upstreams {
    pub postfix: Postfix,
    _pki: Pki,
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
}

impl Upstreams {
    pub fn start() -> Upstreams {
        let pki = Pki::new();
        let postfix = Postfix::start_with(
            &["ola", "kari"],
            UPSTREAM_PW,
            DovecotOpts {
                imap: true,
                sasl_socket: true,
                ..DovecotOpts::tls(&pki.server)
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let both = format!(
            "{}{}",
            fs::read_to_string(&pki.ca).unwrap(),
            fs::read_to_string(&postfix.ca_file).unwrap()
        );
        fs::write(&ca, both).unwrap();
        Upstreams {
            postfix,
            _pki: pki,
            dir,
            ca,
        }
    }
}
