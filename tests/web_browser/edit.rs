//! Editing an account on the connect page: `GET /accounts/edit` shows the advanced form
//! prefilled from the account as loaded (`form#edit`, the address read-only, no secret), and
//! `POST` tests the change live and writes it with `setup`'s edit: only the account's table
//! changes, the stored password is kept when the field is left empty, and a change whose test
//! fails writes nothing.

use std::fs;

use super::password::{fill_servers, upstreams, LOCAL_PW, UPSTREAM_PW};
use super::{signed_in, title, Site};
use crate::support::browser::Browser;
use crate::support::postfix::{Postfix, DOMAIN};
use crate::support::proc::RefusingPort;
use mailgate::web::lang::EN;

/// Connects `ola@example.test` by hand as an account that only receives (no SMTP server).
fn connect_receive_only(site: &Site, b: &Browser, up: &Postfix) {
    site.visit(b, &format!("/connect/advanced?email=ola%40{DOMAIN}"));
    fill_servers(b, up, false);
    b.fill("advanced", "password", UPSTREAM_PW);
    b.fill("advanced", "local_password", LOCAL_PW);
    b.submit("advanced");
    site.check_with(b, &[UPSTREAM_PW]);
    b.wait_for("#done");
    assert!(!b.exists("#smtp-port"), "an SMTP port without SMTP");
}

/// Opens the edit form of ola, sets its SMTP server to `smtp` (security none) and saves,
/// leaving both password fields empty.
fn edit_smtp(site: &Site, b: &Browser, smtp: &str) {
    site.visit(b, &format!("/accounts/edit?email=ola%40{DOMAIN}"));
    site.check_with(b, &[UPSTREAM_PW, LOCAL_PW]);
    b.fill("edit", "smtp_server", smtp);
    b.choose("edit", "smtp_security", "none");
    b.submit("edit");
    site.check_with(b, &[UPSTREAM_PW, LOCAL_PW]);
}

#[test]
fn an_edit_changes_only_the_accounts_table_and_keeps_the_password() {
    let up = upstreams();
    let (site, b) = signed_in();
    connect_receive_only(&site, &b, &up);
    let before = fs::read_to_string(&site.gate.config_path).expect("config");
    let table_at = before
        .find("[[account]]")
        .expect("the account's table in the file");
    // The form: prefilled from the account as loaded, the address read-only, passwords empty,
    // and no secret (not even the local password's hash).
    site.visit(&b, &format!("/accounts/edit?email=ola%40{DOMAIN}"));
    assert_eq!(title(&b), EN.edit_title);
    let field = |name: &str| format!("form#edit [name=\"{name}\"]");
    assert_eq!(b.value(&field("email")), format!("ola@{DOMAIN}"));
    assert!(b.attr(&field("email"), "readonly").is_some());
    assert_eq!(
        b.value(&field("imap_server")),
        up.dovecot.imap_addr().to_string()
    );
    assert_eq!(b.value(&field("imap_security")), "none");
    assert_eq!(b.value(&field("smtp_server")), "");
    assert_eq!(b.value(&field("password")), "");
    assert_eq!(b.value(&field("local_password")), "");
    assert!(!b.source().contains("$argon2"), "a hash on the edit page");
    // A change whose test fails (nothing listens): the steps, and the file as it was.
    let down = RefusingPort::new();
    edit_smtp(&site, &b, &format!("127.0.0.1:{}", down.port()));
    assert!(b.exists("#steps li.fail"), "{}", b.source());
    assert_eq!(b.text("#form-error"), EN.edit_failed);
    assert_eq!(
        fs::read_to_string(&site.gate.config_path).expect("config"),
        before
    );
    // The SMTP server of Postfix: tested, written, and served.
    edit_smtp(&site, &b, &format!("127.0.0.1:{}", up.plain_port));
    assert!(b.exists("#edited"), "{}", b.source());
    assert!(!b.exists("#steps li.fail"), "{}", b.text("#steps"));
    assert!(!b.exists("#not-applied"));
    b.screenshot("edit");
    let after = fs::read_to_string(&site.gate.config_path).expect("config");
    assert_eq!(
        after[..table_at],
        before[..table_at],
        "the file changed outside the account's table"
    );
    let smtp = format!("server = \"127.0.0.1:{}\"", up.plain_port);
    assert!(
        after.contains("[account.smtp]") && after.contains(&smtp),
        "{after}"
    );
    assert!(!after.contains(UPSTREAM_PW) && !after.contains(LOCAL_PW));
    // The password file named before is named still (kept), and both passwords still work.
    let named = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("password_file"))
            .map(str::to_owned)
    };
    assert_eq!(named(&after), named(&before));
    let out = site.gate.imap_login(&format!("ola@{DOMAIN}"), LOCAL_PW);
    assert!(out.contains("auth OK"), "{out}");
    // An address without an account: 404.
    site.visit(&b, "/accounts/edit?email=nobody%40example.test");
    assert_eq!(title(&b), EN.not_found_title);
    assert_eq!(b.text("#unknown-account"), EN.unknown_account);
}
