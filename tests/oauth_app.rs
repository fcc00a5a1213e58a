//! App-only OAuth identities end to end, against the stand-in identity provider
//! (`tests/support/idp.rs`, which verifies the RS256 assertions) and a real Dovecot whose
//! `oauth2` passdb checks every token by introspection: a Google Workspace service account
//! with domain-wide delegation (no `mailgate oauth authorize` needed, also for SMTP through
//! Postfix) and Microsoft Entra certificate credentials (client credentials with a client
//! assertion instead of a secret). Keys and certificates are made by `openssl` per test.
//!
//! Run: `cargo test --test oauth_app`

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use support::app_keys::AppKey;
use support::idp::{CLIENT_ID, CLIENT_SECRET, GMAIL_SCOPE};
use support::imap_client::{assert_tagged, contains, quote};
use support::proc::{poll, PROCESS_TIMEOUT};
use support::{Account, Dovecot, DovecotOpts, GateConfig, Idp, Mailgate, Upstream};

const EMAIL: &str = "ola@example.no";
const LOCAL_PW: &str = "Local-pw-0a7c55e1";
const SERVICE_ACCOUNT: &str = "mailgate@proj.iam.gserviceaccount.com";

fn dovecot(idp: &Idp) -> Dovecot {
    let mut opts = DovecotOpts::plaintext_only();
    opts.oauth2_introspection_url = Some(idp.url("/introspect"));
    let d = Dovecot::start(opts);
    d.add_user(EMAIL, "Upstream-pw-unused-9d2f");
    d
}

/// A service account account `email` at `idp` whose key file is `key_file`.
fn service_account(email: &str, idp: &Idp, key_file: &Path) -> Account {
    Account::password(email, LOCAL_PW)
        .oauth2("provider", "google")
        .oauth2("token_url", idp.url("/token"))
        .oauth2(
            "service_account_key_file",
            key_file.to_str().expect("utf-8"),
        )
}

/// A service account key made in `dir` (`sa.json`), known to `idp`.
fn service_account_key(idp: &Idp, dir: &Path) -> (AppKey, PathBuf) {
    let key = AppKey::new(dir, "sa");
    let key_file = dir.join("sa.json");
    key.service_account_file(
        &key_file,
        SERVICE_ACCOUNT,
        "https://oauth2.googleapis.com/token",
    );
    idp.register_service_account(SERVICE_ACCOUNT, &key.public_der);
    (key, key_file)
}

/// An Entra-style app account: the Microsoft preset at `idp`, the client's certificate.
fn certificate_account(idp: &Idp, dovecot: &Dovecot, key: &AppKey) -> Account {
    Account::password(EMAIL, LOCAL_PW)
        .imap(Upstream::plain(format!("127.0.0.1:{}", dovecot.imap_port)))
        .oauth2("provider", "microsoft")
        .oauth2("client_id", CLIENT_ID)
        .oauth2("token_url", idp.url("/token"))
        .oauth2("client_certificate_file", key.cert.to_str().expect("utf-8"))
        .oauth2("client_key_file", key.key.to_str().expect("utf-8"))
}

fn gate(account: Account) -> Mailgate {
    GateConfig::new()
        .server("auth_failure_delay_ms", 0)
        .account(account)
        .start()
}

/// LOGIN through mailgate, then SELECT INBOX when it worked; the LOGIN response.
fn imap_login(gate: &Mailgate) -> String {
    let mut c = gate.connect();
    let resp = c.command("L1", &format!("LOGIN {} {}", quote(EMAIL), quote(LOCAL_PW)));
    if contains(&resp, b"L1 OK") {
        assert_tagged(&c.command("s1", "SELECT INBOX"), "s1", "OK");
    }
    String::from_utf8_lossy(&resp).into_owned()
}

/// `mailgate oauth ARGS --config CONFIG`: its output (stdout and stderr) and exit status.
fn oauth(config: &Path, args: &[&str]) -> (bool, String) {
    let config = config.to_str().expect("utf-8 path");
    let mut all: Vec<&str> = vec!["oauth"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--config", config]);
    let out: Output = support::mailgate::run(&all, None);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// No token, assertion, client secret or private key text in `text`.
fn assert_no_secrets(idp: &Idp, keys: &[&AppKey], what: &str, text: &str) {
    let tokens = idp.issued_tokens().into_iter().chain(idp.assertions());
    let keys = keys.iter().map(|k| k.secret_line());
    for secret in tokens.chain(keys).chain([CLIENT_SECRET.to_owned()]) {
        assert!(
            !text.contains(&secret),
            "{what} contains a secret ({} chars)",
            secret.len()
        );
    }
    assert!(!text.contains("PRIVATE KEY"), "{what} contains key text");
}

/// A service account logs in with no `oauth authorize`: the gateway asks for the mailbox's
/// token with a signed assertion the identity provider verifies, Dovecot's introspection sees
/// the mailbox as the user, and the next login reuses the token.
#[test]
fn service_account_logs_in_without_authorization() {
    let idp = Idp::start(EMAIL);
    let d = dovecot(&idp);
    let dir = tempfile::tempdir().unwrap();
    let (key, key_file) = service_account_key(&idp, dir.path());
    let imap = Upstream::plain(format!("127.0.0.1:{}", d.imap_port));
    let mut gate = gate(service_account(EMAIL, &idp, &key_file).imap(imap));

    assert!(imap_login(&gate).contains("L1 OK"), "{}", gate.log());
    let grants = idp.verified_grants();
    assert_eq!(grants.len(), 1, "{grants:?}");
    let claims = &grants[0];
    assert_eq!(claims["iss"], SERVICE_ACCOUNT);
    assert_eq!(claims["sub"], EMAIL);
    assert_eq!(claims["scope"], GMAIL_SCOPE);
    assert_eq!(claims["aud"], idp.url("/token").as_str());
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 3600);
    assert!(idp.introspections() >= 1);
    // The grant carries no client authentication: the assertion is the credential.
    let request = idp
        .requests()
        .into_iter()
        .find(|r| r.contains("jwt-bearer"))
        .expect("the grant request");
    assert!(
        !request.contains("client_id=") && !request.contains("client_secret"),
        "{request}"
    );

    assert!(imap_login(&gate).contains("L1 OK"));
    assert_eq!(idp.jwt_grants(), 1, "the second login reuses the token");
    // Dovecot refuses the token now: one new grant, with a new assertion.
    idp.expire_access_tokens();
    assert!(imap_login(&gate).contains("L1 OK"));
    assert_eq!(idp.verified_grants().len(), 2);

    let (ok, status) = oauth(&gate.config_path, &["status"]);
    assert!(
        ok && status.contains(&format!(
            "{EMAIL}: token present (service account (JWT bearer)"
        )),
        "{status}"
    );
    assert_no_secrets(&idp, &[&key], "oauth status", &status);
    let log = gate.stop().join("\n");
    assert_no_secrets(&idp, &[&key], "the mailgate log", &log);
}

/// A key the identity provider does not know for the service account: the client hears
/// `NO [AUTHENTICATIONFAILED]` saying the app credentials were refused, the log has the
/// provider's reason, nothing panics, and neither the key nor the assertion is printed;
/// `mailgate oauth authorize` reports the same refusal.
#[test]
fn service_account_with_another_key_is_refused() {
    let idp = Idp::start(EMAIL);
    let d = dovecot(&idp);
    let dir = tempfile::tempdir().unwrap();
    let (key, key_file) = service_account_key(&idp, dir.path());
    let registered = AppKey::new(dir.path(), "other");
    idp.register_service_account(SERVICE_ACCOUNT, &registered.public_der);
    let imap = Upstream::plain(format!("127.0.0.1:{}", d.imap_port));
    let mut gate = gate(service_account(EMAIL, &idp, &key_file).imap(imap));

    let text = imap_login(&gate);
    assert!(
        text.contains("L1 NO [AUTHENTICATIONFAILED]")
            && text.contains("refused mailgate's app credentials"),
        "{text}"
    );
    assert_eq!((idp.jwt_grants(), idp.verified_grants().len()), (1, 0));
    let (ok, out) = oauth(&gate.config_path, &["authorize", EMAIL]);
    assert!(
        !ok && out.contains("invalid_grant") && out.contains("bad signature"),
        "{out}"
    );
    assert_no_secrets(&idp, &[&key, &registered], "oauth authorize", &out);

    // The right key registered now: once the back-off has passed, the next login works.
    idp.register_service_account(SERVICE_ACCOUNT, &key.public_der);
    let ok = poll(PROCESS_TIMEOUT, Duration::from_millis(500), || {
        imap_login(&gate).contains("L1 OK").then_some(())
    });
    assert!(ok.is_some(), "{}", gate.log());
    let log = gate.stop().join("\n");
    assert!(
        log.contains("invalid_grant") && log.contains("bad signature"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    assert_no_secrets(&idp, &[&key, &registered], "the mailgate log", &log);
}

/// Entra certificate credentials: `oauth authorize --client-credentials` authenticates with a
/// client assertion (no secret in the request), a login reaches Dovecot, a renewal sends a new
/// assertion; a certificate the provider does not know is refused with a clear error.
#[test]
fn certificate_credentials_get_app_only_tokens() {
    let idp = Idp::start(EMAIL);
    let d = dovecot(&idp);
    let dir = tempfile::tempdir().unwrap();
    let key = AppKey::new(dir.path(), "app");
    idp.register_client_certificate(&key.x5t, &key.public_der);
    let mut gate = gate(certificate_account(&idp, &d, &key));

    let (ok, out) = oauth(
        &gate.config_path,
        &["authorize", "--client-credentials", EMAIL],
    );
    assert!(ok && out.contains("no refresh token"), "{out}");
    let request = idp
        .requests()
        .into_iter()
        .find(|r| r.contains("grant_type=client_credentials"))
        .expect("the client credentials request");
    assert!(
        request.contains("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer")
            && !request.contains("client_secret"),
        "{request}"
    );
    let verified = idp.verified_client_assertions();
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0]["aud"], idp.url("/token").as_str());
    assert_eq!(
        (&verified[0]["iss"], &verified[0]["sub"]),
        (&CLIENT_ID.into(), &CLIENT_ID.into())
    );

    assert!(imap_login(&gate).contains("L1 OK"), "{}", gate.log());
    idp.expire_access_tokens();
    assert!(imap_login(&gate).contains("L1 OK"), "{}", gate.log());
    let verified = idp.verified_client_assertions();
    assert_eq!(verified.len(), 2, "a new assertion for the renewal");
    assert_ne!(verified[0]["jti"], verified[1]["jti"]);
    let log = gate.stop().join("\n");
    assert_no_secrets(&idp, &[&key], "the mailgate log", &log);
    assert_no_secrets(&idp, &[&key], "oauth authorize", &out);

    // Another certificate (its thumbprint unknown to the provider).
    let unknown = AppKey::new(dir.path(), "unknown");
    let config: PathBuf = dir.path().join("unknown.toml");
    let toml = GateConfig::new()
        .account(certificate_account(&idp, &d, &unknown))
        .to_toml();
    std::fs::write(&config, toml).unwrap();
    let (ok, out) = oauth(&config, &["authorize", "--client-credentials", EMAIL]);
    assert!(
        !ok && out.contains("invalid_client") && out.contains("x5t is not the thumbprint"),
        "{out}"
    );
    assert_no_secrets(&idp, &[&key, &unknown], "oauth authorize", &out);
}

/// SMTP for a service account: Postfix authenticates the token through Dovecot's `oauth2`
/// passdb; mailgate got it without any `oauth authorize`.
#[test]
fn service_account_submits_through_postfix() {
    const SENDER: &str = "sam@example.test";
    let idp = Idp::start(SENDER);
    let opts = DovecotOpts {
        oauth2_introspection_url: Some(idp.url("/introspect")),
        ..DovecotOpts::sasl_only()
    };
    let postfix = support::postfix::Postfix::start_with(&["sam", "rcpt"], "unused-password", opts);
    let dir = tempfile::tempdir().unwrap();
    let (key, key_file) = service_account_key(&idp, dir.path());
    let account = service_account(SENDER, &idp, &key_file)
        .imap(Upstream::plain("127.0.0.1:1"))
        .smtp(postfix.starttls_upstream());
    let mut gate = gate(account);

    let (mut c, _) = support::smtp_client::Raw::connect(gate.smtp_addr);
    let auth = c.login(SENDER, LOCAL_PW);
    assert!(auth.starts_with("235"), "{auth}");
    let from = c.cmd(&format!("MAIL FROM:<{SENDER}>"));
    assert!(from.starts_with("250"), "{from}\n{}", gate.log());
    assert!(c.cmd("RCPT TO:<rcpt@example.test>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let sent = c.cmd("Subject: from a service account\r\n\r\nbody\r\n.");
    assert!(sent.starts_with("250"), "{sent}");
    let _ = c.cmd("QUIT");
    let found = poll(PROCESS_TIMEOUT, Duration::from_millis(50), || {
        postfix
            .delivered()
            .iter()
            .any(|(_, m)| String::from_utf8_lossy(m).contains("from a service account"))
            .then_some(())
    });
    assert!(found.is_some(), "{}", postfix.log());
    assert_eq!(idp.verified_grants()[0]["sub"], SENDER);
    let log = gate.stop().join("\n");
    assert_no_secrets(&idp, &[&key], "the mailgate log", &log);
}
