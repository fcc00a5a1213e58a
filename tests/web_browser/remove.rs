//! Removing an account in a real browser: *Remove* asks first (`#remove`, saying what goes and
//! that the mailbox at the provider stays), then `#removed` says what went; the config file
//! is the text before minus exactly that account's table (the operator's comment and the
//! account after it byte for byte), the provider password file `setup` wrote is gone, and the
//! account no longer logs in through mailgate. Without the form's token nothing changes.

use std::fs;

use super::accounts::{email, row, AccountSite, LOCAL_PW, SECRETS};
use super::password::upstreams;
use super::{assert_security_headers, signed_in_to, title};
use crate::support::browser::form_body;
use crate::support::postfix::DOMAIN;
use mailgate::web::lang::EN;

/// The operator's own text after the account: a comment and an account that only receives.
fn after(imap: &str) -> String {
    format!(
        "\n# Kari's mailbox, by hand.\n[[account]]\nemail = \"kari@{DOMAIN}\"\n\
         local_password_hash = \"{}\"\n\n[account.imap]\nserver = \"{imap}\"\ntls = \"none\"\nallow_plaintext = true\n\
         username = \"kari\"\npassword = \"kari-upstream-Secret-1\"\n",
        crate::support::mailgate::cached_hash("kari-local-Secret-1")
    )
}

#[test]
fn remove_asks_first_then_removes_the_account_and_its_password_file_only() {
    let up = upstreams();
    let imap = up.dovecot.imap_addr().to_string();
    let a = AccountSite::start(&up, &after(&imap), None);
    let (s, b) = (&a.site, signed_in_to(&a.site));
    let out = s.gate.imap_login(&email(), LOCAL_PW);
    assert!(out.contains("auth OK"), "{out}");
    s.visit(&b, "/accounts");
    let kari = format!("table#accounts tr[data-email=\"kari@{DOMAIN}\"]");
    assert!(b.exists(&kari), "{}", b.source());

    // Remove asks first, and says what it removes and what it leaves.
    b.press(&row("a.remove"));
    s.check_with(&b, &SECRETS);
    assert_eq!(b.path(), "/accounts/remove?email=ola%40example.test");
    assert_eq!(title(&b), EN.remove_title);
    assert_eq!(b.text("#remove-email"), email());
    let page = b.text("main");
    assert!(page.contains(EN.remove_what) && page.contains(EN.remove_untouched));
    assert_eq!(b.value("form#remove input[name=\"email\"]"), email());
    b.screenshot("remove");
    // Cancel changes nothing.
    b.click("cancel");
    assert_eq!(b.path(), "/accounts");
    assert!(b.exists(&row("")));
    let config = fs::read_to_string(&s.gate.config_path).expect("config");
    assert!(config.contains(&format!("email = \"{}\"", email())));

    b.press(&row("a.remove"));
    b.submit("remove");
    s.check_with(&b, &SECRETS);
    assert_eq!(title(&b), EN.removed_title);
    assert!(b.exists("#removed"), "{}", b.source());
    assert_eq!(b.text("#removed-email"), email());
    assert_eq!(b.text("#removed-what li.from"), EN.removed_from_file);
    assert_eq!(b.text("#removed-what li.password"), EN.removed_password);
    assert!(
        !b.exists("#removed-what li.tokens"),
        "tokens of a password account"
    );
    assert!(b.text("#removed").contains(EN.remove_untouched));
    assert!(
        !b.exists("#not-applied"),
        "the server did not drop the account"
    );
    b.screenshot("removed");

    // The file: the text before setup plus the operator's text after, byte for byte.
    let now = fs::read_to_string(&s.gate.config_path).expect("config");
    assert_eq!(
        now, a.before,
        "the file is not the text before minus the account"
    );
    assert!(!a.credential.exists(), "the password file is still there");
    // Gone from the gateway and the table; the other account stays.
    let out = s.gate.imap_login(&email(), LOCAL_PW);
    assert!(
        !out.contains("auth OK") && out.contains("auth-error"),
        "{out}"
    );
    s.visit(&b, "/accounts");
    assert!(!b.exists(&row("")), "the row is still there");
    assert!(b.exists(&kari));
    // Removed once: now it is unknown.
    let resp = s.send(&b, "GET", "/accounts/remove?email=ola%40example.test", None);
    assert_eq!(resp.status, 404);
    s.gate.logged(&["account removed"]);
}

#[test]
fn remove_without_the_csrf_token_is_refused_and_changes_nothing() {
    let up = upstreams();
    let a = AccountSite::start(&up, "", None);
    let (s, b) = (&a.site, signed_in_to(&a.site));
    s.visit(&b, "/accounts/remove?email=ola%40example.test");
    s.check_with(&b, &SECRETS);
    let token = b
        .attr("form#remove input[name=\"csrf\"]", "value")
        .expect("the form's token");
    let config = fs::read(&s.gate.config_path).expect("config");
    let credential = fs::read(&a.credential).expect("credential");
    let email = email();
    for body in [
        form_body(&[("email", &email)]),
        form_body(&[("email", &email), ("csrf", "AAAAAAAAAAAAAAAAAAAAAA")]),
    ] {
        for path in ["/accounts/remove", "/accounts/check"] {
            let resp = s.send(&b, "POST", path, Some(&body));
            assert_eq!(resp.status, 403, "POST {path}: {}", resp.body);
            assert_security_headers(&resp, &format!("the refused POST {path}"));
            assert!(resp.body.contains(EN.forbidden_title));
        }
    }
    // The browser's refusal too.
    b.script("document.querySelector('form#remove input[name=csrf]').value = 'x';");
    b.submit("remove");
    s.check_with(&b, &SECRETS);
    assert_eq!(title(&b), EN.forbidden_title);
    // Nothing changed: the file, the password file, the account serving.
    assert_eq!(fs::read(&s.gate.config_path).expect("config"), config);
    assert_eq!(fs::read(&a.credential).expect("credential"), credential);
    let out = s.gate.imap_login(&email, LOCAL_PW);
    assert!(out.contains("auth OK"), "{out}");
    // With the token it goes through (so the token was what was missing).
    let body = form_body(&[("email", &email), ("csrf", &token)]);
    let resp = s.send(&b, "POST", "/accounts/remove", Some(&body));
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(resp.body.contains("id=\"removed\""));
    assert!(!a.credential.exists());
}
