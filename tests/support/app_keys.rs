//! Keys and files of the app-only OAuth identities, made at test time with the `openssl`
//! command in the test's own folder: an RSA key (PKCS#8 PEM), its public key as PKCS#1 DER
//! (what the stand-in identity provider verifies with), a self-signed certificate and its
//! SHA-1 thumbprint, and a Google service account JSON key file.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub struct AppKey {
    /// The private key (PKCS#8 PEM).
    pub key: PathBuf,
    /// A self-signed certificate of it (PEM).
    pub cert: PathBuf,
    /// The public key, PKCS#1 `RSAPublicKey` DER.
    pub public_der: Vec<u8>,
    /// base64url SHA-1 of the certificate's DER.
    pub x5t: String,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl AppKey {
    /// A new 2048-bit key `NAME.key`, its certificate `NAME.crt`, in `dir`.
    pub fn new(dir: &Path, name: &str) -> AppKey {
        let (key, cert, public, der) = (
            format!("{name}.key"),
            format!("{name}.crt"),
            format!("{name}.pub.der"),
            format!("{name}.crt.der"),
        );
        openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                &key,
            ],
        );
        openssl(
            dir,
            &[
                "rsa",
                "-in",
                &key,
                "-RSAPublicKey_out",
                "-outform",
                "DER",
                "-out",
                &public,
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                &key,
                "-subj",
                "/CN=mailgate-test",
                "-days",
                "2",
                "-out",
                &cert,
            ],
        );
        openssl(
            dir,
            &["x509", "-in", &cert, "-outform", "DER", "-out", &der],
        );
        let cert_der = std::fs::read(dir.join(&der)).expect("certificate DER");
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert_der);
        AppKey {
            key: dir.join(key),
            cert: dir.join(cert),
            public_der: std::fs::read(dir.join(public)).expect("public key DER"),
            x5t: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
        }
    }

    /// The private key's PEM text.
    pub fn pem(&self) -> String {
        std::fs::read_to_string(&self.key).expect("key PEM")
    }

    /// A base64 line from the middle of the private key (for "never in the log" checks).
    pub fn secret_line(&self) -> String {
        self.pem()
            .lines()
            .nth(5)
            .expect("a key body line")
            .to_owned()
    }

    /// A service account JSON key file at `path` for `client_email` with this key.
    pub fn service_account_file(&self, path: &Path, client_email: &str, token_uri: &str) {
        let json = serde_json::json!({
            "type": "service_account",
            "project_id": "mailgate-test",
            "private_key_id": "test-key-1",
            "private_key": self.pem(),
            "client_email": client_email,
            "client_id": "104729",
            "token_uri": token_uri,
        });
        std::fs::write(path, json.to_string()).expect("write the key file");
    }
}
