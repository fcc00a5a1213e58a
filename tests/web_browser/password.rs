//! Wave 2 of the connect page: a password account connected through the advanced form against
//! real Dovecot (IMAP) and Postfix (submission), both without TLS on loopback (the advanced
//! form has no CA field, so the plain ports keep these tests free of trust questions), the
//! live test's steps, the final page, and the account then working through mailgate.
//! The element ids are the shared design's (`#steps` with `li.ok`/`li.fail`, `#done`,
//! `#client-server`, `#imap-port`, `#smtp-port`, `#client-user`, `#local-password`,
//! `#security`, `#folders`).

use std::fs;

use super::{signed_in, Site};
use crate::support::browser::Browser;
use crate::support::postfix::DOMAIN;
use crate::support::{DovecotOpts, Postfix};

pub const UPSTREAM_PW: &str = "upstream-Secret-9d41";
pub const LOCAL_PW: &str = "local-Secret-2c7f";

/// Dovecot (plain IMAP, and Postfix's SASL) and Postfix for `ola@example.test`.
pub fn upstreams() -> Postfix {
    Postfix::start_with(
        &["ola"],
        UPSTREAM_PW,
        DovecotOpts {
            sasl_socket: true,
            ..DovecotOpts::plaintext_only()
        },
    )
}

/// Fills the advanced form for `ola@example.test` with these servers and `password`, and
/// submits it.
fn connect_by_hand(site: &Site, b: &Browser, up: &Postfix, password: &str) {
    site.visit(b, &format!("/connect/advanced?email=ola%40{DOMAIN}"));
    fill_servers(b, up, true);
    // The user name at Dovecot is the address: the field stays empty.
    b.fill("advanced", "password", password);
    b.fill("advanced", "local_password", LOCAL_PW);
    b.submit("advanced");
    check_result(site, b);
}

/// Fills `#advanced` with Dovecot's plain IMAP port and, if `smtp`, Postfix's plain
/// submission port (else no SMTP server: the account only receives).
pub fn fill_servers(b: &Browser, up: &Postfix, smtp: bool) {
    let imap = up.dovecot.imap_addr().to_string();
    b.fill("advanced", "imap_server", &imap);
    b.choose("advanced", "imap_security", "none");
    if smtp {
        let server = format!("127.0.0.1:{}", up.plain_port);
        b.fill("advanced", "smtp_server", &server);
        b.choose("advanced", "smtp_security", "none");
    }
}

/// Checks the page after connecting: never the upstream password; the local password only
/// on the `#done` page, which shows it once.
pub fn check_result(site: &Site, b: &Browser) {
    if b.exists("#done") {
        site.check_with(b, &[UPSTREAM_PW]);
    } else {
        site.check_with(b, &[UPSTREAM_PW, LOCAL_PW]);
    }
}

#[test]
fn a_password_account_connects_and_works_through_mailgate() {
    let up = upstreams();
    let (site, b) = signed_in();
    connect_by_hand(&site, &b, &up, UPSTREAM_PW);
    b.wait_for("#done");
    let failed = b.exists("#steps li.fail");
    assert!(!failed, "a step failed:\n{}", b.text("#steps"));
    assert_eq!(b.text("#client-server"), "127.0.0.1");
    assert_eq!(b.text("#imap-port"), site.gate.imap_addr.port().to_string());
    assert_eq!(b.text("#smtp-port"), site.gate.smtp_addr.port().to_string());
    assert_eq!(b.text("#client-user"), format!("ola@{DOMAIN}"));
    // The local password is shown once, on this page: it was typed, so it is the one typed.
    assert_eq!(b.text("#local-password"), LOCAL_PW);
    assert!(b.text("#folders").contains("INBOX"));
    b.screenshot("done");
    // Shown once: no other page has it.
    site.visit(&b, "/connect");
    site.check_with(&b, &[UPSTREAM_PW, LOCAL_PW]);
    let config = fs::read_to_string(&site.gate.config_path).expect("config");
    assert!(
        config.contains(&format!("email = \"ola@{DOMAIN}\"")),
        "{config}"
    );
    assert!(
        !config.contains(LOCAL_PW),
        "the local password in clear in the config"
    );
    // The account works through the gateway with the local password.
    let out = site.gate.imap_login(&format!("ola@{DOMAIN}"), LOCAL_PW);
    assert!(out.contains("auth OK"), "{out}");
}

#[test]
fn a_wrong_password_fails_its_step_with_advice_and_writes_nothing() {
    let up = upstreams();
    let (site, b) = signed_in();
    let before = fs::read(&site.gate.config_path).expect("config");
    connect_by_hand(&site, &b, &up, "not-the-app-password");
    b.wait_for("#steps");
    assert!(
        b.exists("#steps li.fail"),
        "no failed step:\n{}",
        b.source()
    );
    assert!(!b.exists("#done"));
    let failed = b.text("#steps li.fail");
    assert!(failed.lines().count() >= 1 && !failed.trim().is_empty());
    b.screenshot("step-failed");
    assert_eq!(fs::read(&site.gate.config_path).expect("config"), before);
}

#[test]
fn recognition_failing_leads_to_the_advanced_form_and_connects() {
    let up = upstreams();
    let (site, b) = signed_in();
    // The site's resolver knows nothing of example.test: no preset, MX, autoconfig or guess.
    site.connect(&b, &format!("ola@{DOMAIN}"));
    assert!(b.exists("#not-recognised"), "{}", b.source());
    fill_servers(&b, &up, true);
    b.fill("advanced", "password", UPSTREAM_PW);
    // No local password typed: one is generated and shown once.
    b.submit("advanced");
    site.check_with(&b, &[UPSTREAM_PW]);
    b.wait_for("#done");
    assert!(!b.exists("#steps li.fail"), "{}", b.text("#steps"));
    let generated = b.text("#local-password");
    assert_eq!(generated.len(), 20, "a generated local password");
    let config = fs::read_to_string(&site.gate.config_path).expect("config");
    assert!(!config.contains(&generated) && !config.contains(UPSTREAM_PW));
    let out = site.gate.imap_login(&format!("ola@{DOMAIN}"), &generated);
    assert!(out.contains("auth OK"), "{out}");
    // A second connect of the same address is refused, and nothing changes.
    connect_by_hand(&site, &b, &up, UPSTREAM_PW);
    assert!(!b.exists("#done"));
    assert_eq!(
        b.text("#form-error"),
        mailgate::web::lang::EN.duplicate_account
    );
    assert_eq!(
        fs::read_to_string(&site.gate.config_path).expect("config"),
        config
    );
}
