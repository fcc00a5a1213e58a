//! Sign, then verify with ring's public-key check; keys made at test time by the `openssl`
//! command (ring cannot generate RSA keys, and no private key is kept in the repository).

use super::*;
use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use std::process::Command;

/// Runs `openssl ARGS` in `dir`; panics with its output on failure.
pub(crate) fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command (install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new RSA key of `bits` in `dir/name` (PKCS#8 PEM).
pub(crate) fn rsa_key(dir: &Path, name: &str, bits: u32) -> PathBuf {
    let bits = format!("rsa_keygen_bits:{bits}");
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            &bits,
            "-out",
            name,
        ],
    );
    dir.join(name)
}

/// A self-signed certificate of the key `key` in `dir/name`.
pub(crate) fn certificate(dir: &Path, key: &Path, name: &str) -> PathBuf {
    let key = key.to_str().expect("utf-8 path");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            key,
            "-subj",
            "/CN=mailgate-test",
            "-days",
            "2",
            "-out",
            name,
        ],
    );
    dir.join(name)
}

/// The three parts of a JWT, the first two decoded as JSON.
pub(crate) fn split(jwt: &str) -> (serde_json::Value, serde_json::Value, Vec<u8>, String) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts");
    let json = |p: &str| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
    (
        json(parts[0]),
        json(parts[1]),
        URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        format!("{}.{}", parts[0], parts[1]),
    )
}

/// Whether `jwt`'s signature verifies with the PKCS#1 public key `public`.
pub(crate) fn verifies(jwt: &str, public: &[u8]) -> bool {
    let (_, _, signature, signed) = split(jwt);
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
        .verify(signed.as_bytes(), &signature)
        .is_ok()
}

#[test]
fn signs_rs256_that_verifies_pkcs8_and_pkcs1() {
    let dir = tempfile::tempdir().unwrap();
    let pkcs8 = rsa_key(dir.path(), "k8.pem", 2048);
    openssl(
        dir.path(),
        &["rsa", "-in", "k8.pem", "-traditional", "-out", "k1.pem"],
    );
    let other = Signer::load(&rsa_key(dir.path(), "other.pem", 2048)).unwrap();
    for file in [pkcs8, dir.path().join("k1.pem")] {
        let signer = Signer::load(&file).unwrap();
        let jwt = signer
            .sign(
                &serde_json::json!({"alg": "RS256"}),
                &serde_json::json!({"sub": "a"}),
            )
            .unwrap();
        let (header, claims, _, _) = split(jwt.expose());
        assert_eq!(header["alg"], "RS256");
        assert_eq!(claims["sub"], "a");
        assert!(verifies(jwt.expose(), signer.public_key_der()));
        assert!(!verifies(jwt.expose(), other.public_key_der()));
        assert_eq!(format!("{signer:?}"), "Signer(RSA 2048 bits)");
    }
}

#[test]
fn unusable_keys_are_typed_errors_naming_the_file_not_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let small = rsa_key(d, "small.pem", 1024);
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.pem",
        ],
    );
    openssl(d, &["genpkey", "-algorithm", "ED25519", "-out", "ed.pem"]);
    openssl(d, &["ec", "-in", "ec.pem", "-out", "sec1.pem"]);
    let cert_only = certificate(d, &rsa_key(d, "k.pem", 2048), "cert.pem");
    // A key block whose body is not base64, its armour made here (no key text in the tree).
    let armour = |edge: &str| format!("-----{edge} {} KEY-----\n", "PRIVATE");
    let damaged = format!("{}!!!!\n{}", armour("BEGIN"), armour("END"));
    std::fs::write(d.join("bad.pem"), damaged).unwrap();
    std::fs::write(d.join("big.pem"), vec![b'a'; MAX_FILE as usize + 1]).unwrap();

    let err = |name: &Path| Signer::load(name).unwrap_err();
    assert!(matches!(err(&small), KeyError::Size { bits: 1024, .. }));
    assert!(matches!(
        err(&d.join("ec.pem")),
        KeyError::NotRsa {
            algorithm: "EC",
            ..
        }
    ));
    assert!(matches!(
        err(&d.join("sec1.pem")),
        KeyError::NotRsa {
            algorithm: "EC",
            ..
        }
    ));
    assert!(matches!(
        err(&d.join("ed.pem")),
        KeyError::NotRsa {
            algorithm: "Ed25519",
            ..
        }
    ));
    assert!(matches!(err(&cert_only), KeyError::NotFound { .. }));
    assert!(matches!(err(&d.join("bad.pem")), KeyError::BadPem { .. }));
    assert!(matches!(err(&d.join("big.pem")), KeyError::TooLarge { .. }));
    assert!(matches!(err(&d.join("missing.pem")), KeyError::Read { .. }));
    let text = err(&small).to_string();
    assert!(
        text.contains("small.pem") && text.contains("1024-bit"),
        "{text}"
    );
    let key_text = std::fs::read_to_string(&small).unwrap();
    let body = key_text.lines().nth(1).unwrap();
    for e in [err(&small), err(&d.join("bad.pem"))] {
        assert!(!e.to_string().contains(body) && !format!("{e:?}").contains(body));
    }
}

#[test]
fn service_account_assertion_has_googles_claims() {
    let dir = tempfile::tempdir().unwrap();
    let key = std::fs::read_to_string(rsa_key(dir.path(), "k.pem", 2048)).unwrap();
    let file = serde_json::json!({
        "type": "service_account",
        "client_email": "gate@proj.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "private_key_id": "kid-1",
        "private_key": key,
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    let path = Path::new("/etc/mailgate/sa.json");
    let sa = ServiceAccount::parse(file.to_string().as_bytes(), path).unwrap();
    assert_eq!(sa.client_id.as_deref(), Some("1234567890"));
    let jwt = sa
        .assertion(
            "ola@example.no",
            "https://mail.google.com/",
            "https://t/token",
            1_000,
        )
        .unwrap();
    let (header, claims, _, _) = split(jwt.expose());
    assert_eq!(
        header,
        serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "kid-1"})
    );
    assert_eq!(
        claims,
        serde_json::json!({"iss": "gate@proj.iam.gserviceaccount.com", "sub": "ola@example.no",
            "scope": "https://mail.google.com/", "aud": "https://t/token", "iat": 1000, "exp": 4600})
    );
    assert!(verifies(jwt.expose(), sa.signer.public_key_der()));
    assert!(!format!("{sa:?}").contains("PRIVATE"));

    let mut wrong = file.clone();
    wrong["type"] = "authorized_user".into();
    let e = ServiceAccount::parse(wrong.to_string().as_bytes(), path)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/etc/mailgate/sa.json") && e.contains("\"authorized_user\""),
        "{e}"
    );
    let mut no_key = file.clone();
    no_key["private_key"] = 5.into();
    let e = ServiceAccount::parse(no_key.to_string().as_bytes(), path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no \"private_key\""), "{e}");
    let e = ServiceAccount::parse(
        br#"{"type": "service_account", "private_key": "-----BEGIN"#,
        path,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("not JSON (line 1") && !e.contains("BEGIN"),
        "{e}"
    );
}

#[test]
fn client_assertion_names_the_certificate_and_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = rsa_key(d, "k.pem", 2048);
    let cert = certificate(d, &key, "c.pem");
    let c = ClientCertificate::load(&cert, &key).unwrap();
    let der = rustls_pki_types::CertificateDer::from_pem_file(&cert).unwrap();
    assert_eq!(
        c.x5t,
        b64url(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der).as_ref())
    );
    let a = c
        .assertion("app-id", "https://login/t/token", 1_000)
        .unwrap();
    let b = c
        .assertion("app-id", "https://login/t/token", 1_000)
        .unwrap();
    let (header, claims, _, _) = split(a.expose());
    let (_, other, _, _) = split(b.expose());
    assert_eq!(header["x5t"], c.x5t.as_str());
    assert_eq!(header["x5t#S256"], c.x5t_s256.as_str());
    assert_eq!(
        (&claims["iss"], &claims["sub"], &claims["aud"]),
        (
            &"app-id".into(),
            &"app-id".into(),
            &"https://login/t/token".into()
        )
    );
    assert_eq!(
        (claims["nbf"].as_u64(), claims["exp"].as_u64()),
        (Some(1000), Some(1600))
    );
    assert_ne!(claims["jti"], other["jti"]);
    assert!(verifies(a.expose(), c.signer.public_key_der()));

    // A certificate of another key.
    let other_cert = certificate(d, &rsa_key(d, "k2.pem", 2048), "c2.pem");
    let e = ClientCertificate::load(&other_cert, &key).unwrap_err();
    assert!(matches!(e, KeyError::Certificate { .. }), "{e}");
    assert!(e.to_string().contains("c2.pem"), "{e}");
}
