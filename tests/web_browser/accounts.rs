//! The Accounts table and *Check now* in a real browser, on a site started with a password
//! account already in its config file — written by `mailgate setup` itself (the one writer)
//! against real Dovecot (plain IMAP) and Postfix (plain submission) — so the row, the live
//! check's ✓/✗ with advice, and a client login through mailgate showing as the last login are
//! all the real thing. Every page is checked for the upstream and local passwords.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::password::{upstreams, UPSTREAM_PW};
use super::{signed_in, signed_in_to, title, Site};
use crate::support::browser::Browser;
use crate::support::config::toml_str;
use crate::support::dns::DnsServer;
use crate::support::mailgate::{parse_listen_line, BIN};
use crate::support::postfix::DOMAIN;
use crate::support::proc::{run_with_timeout, PROCESS_TIMEOUT};
use crate::support::{GateConfig, Mailgate, Postfix};
use mailgate::web::lang::EN;

/// The local password `mailgate setup` was given.
pub const LOCAL_PW: &str = "local-Secret-4e90";

/// The account's address.
pub fn email() -> String {
    format!("ola@{DOMAIN}")
}

/// A site whose config file has the account, and what the file held before it.
pub struct AccountSite {
    pub site: Site,
    /// The config file as it was before `mailgate setup` appended the account.
    pub before: String,
    /// The provider password file `setup` wrote.
    pub credential: PathBuf,
    /// Keeps the config folder.
    _dir: tempfile::TempDir,
}

/// `[server]` (no accounts needed), `[web]` on a port the listener picks, a comment: the
/// bytes a removal must keep.
fn base_config(dns: &DnsServer) -> String {
    let server = GateConfig::new()
        .server("allow_no_accounts", true)
        .server("resolver", dns.addr)
        .to_toml();
    format!(
        "# The accounts tests' gateway: this comment stays.\n{server}\n[web]\nlisten = {}\n",
        toml_str("127.0.0.1:0")
    )
}

/// Runs `mailgate setup` for [`email`] against `up`'s plain servers.
fn setup(config: &Path, up: &Postfix) {
    let mut cmd = Command::new(BIN);
    cmd.args(["setup", "--non-interactive", "--config"])
        .arg(config)
        .args(["--email", &email()])
        .args(["--password-env", "SETUP_UPSTREAM"])
        .args(["--local-password-env", "SETUP_LOCAL"])
        .args(["--imap-server", &up.dovecot.imap_addr().to_string()])
        .args(["--imap-tls", "none", "--smtp-tls", "none"])
        .args(["--smtp-server", &format!("127.0.0.1:{}", up.plain_port)])
        .env("SETUP_UPSTREAM", UPSTREAM_PW)
        .env("SETUP_LOCAL", LOCAL_PW)
        .env("NO_COLOR", "1");
    let out = run_with_timeout(cmd, None, PROCESS_TIMEOUT);
    assert!(
        out.status.success(),
        "setup failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl AccountSite {
    /// `mailgate setup` writes the account, then `after` is appended to the file (more of
    /// the operator's own text), `stored`, when given, replaces the provider password `setup`
    /// stored, and `mailgate run` starts on the file.
    pub fn start(up: &Postfix, after: &str, stored: Option<&str>) -> AccountSite {
        let dns = DnsServer::start(&[]);
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("mailgate.toml");
        let before = base_config(&dns);
        fs::write(&config, &before).expect("write the config");
        setup(&config, up);
        let mut text = fs::read_to_string(&config).expect("config");
        text.push_str(after);
        fs::write(&config, &text).expect("write the config");
        let credential = dir
            .path()
            .join("state/credentials")
            .join(format!("{}.password", email()));
        assert!(credential.is_file(), "no credential file:\n{text}");
        if let Some(pw) = stored {
            fs::write(&credential, pw).expect("replace the stored password");
        }
        let gate = Mailgate::start_file(&config, &[]);
        let line = gate.logged(&["web listening on"]);
        let listen: SocketAddr =
            parse_listen_line(&line, "web listening on").expect("the web address");
        AccountSite {
            site: Site::started(gate, listen, None, dns),
            before: format!("{before}{after}"),
            credential,
            _dir: dir,
        }
    }
}

/// The CSS selector of the account's row (plus `inner`).
pub fn row(inner: &str) -> String {
    format!("table#accounts tr[data-email=\"{}\"] {inner}", email())
}

/// The secrets of these tests.
pub const SECRETS: [&str; 2] = [UPSTREAM_PW, LOCAL_PW];

/// *Check now* on the account's row; checks the page.
fn check_now(s: &Site, b: &Browser) {
    s.visit(b, "/accounts");
    b.press(&row("form.check button"));
    s.check_with(b, &SECRETS);
    assert_eq!(title(b), EN.check_title);
    assert_eq!(b.text("#check-email"), email());
}

#[test]
fn the_accounts_table_check_now_and_the_last_login() {
    let up = upstreams();
    let a = AccountSite::start(&up, "", None);
    let (s, b) = (&a.site, signed_in_to(&a.site));
    s.visit(&b, "/");
    assert_eq!(b.path(), "/accounts");
    s.check_with(&b, &SECRETS);
    assert_eq!(title(&b), EN.accounts_title);
    assert!(b.exists(&row("")), "no row:\n{}", b.source());
    assert_eq!(b.text(&row("td.auth")), EN.auth_password);
    let servers = b.text(&row("td.servers"));
    let imap = up.dovecot.imap_addr().to_string();
    assert!(servers.contains(&format!("IMAP {imap}")), "{servers}");
    assert!(servers.contains(&format!("SMTP 127.0.0.1:{}", up.plain_port)));
    assert_eq!(b.text(&row("td.token")), EN.token_not_used);
    assert_eq!(b.text(&row("td.login")), EN.login_never);
    assert_eq!(b.text(&row("td.check")), EN.check_never);
    let href = |css: &str| b.attr(&row(css), "href");
    let query = "email=ola%40example.test";
    assert_eq!(href("a.edit"), Some(format!("/accounts/edit?{query}")));
    assert_eq!(href("a.remove"), Some(format!("/accounts/remove?{query}")));
    assert!(
        !b.exists(&row("form.reauthorize")),
        "re-authorize on a password account"
    );
    let hidden = row("form.check input[name=\"email\"]");
    assert_eq!(b.value(&hidden), email());
    b.screenshot("accounts");

    // Check now: every step ✓, the folders listed; the table then says ✓ and when.
    check_now(s, &b);
    assert!(!b.exists("#steps li.fail"), "{}", b.text("#steps"));
    assert_eq!(
        b.script("return document.querySelectorAll('#steps li.ok').length;"),
        3
    );
    assert_eq!(b.text("#check-result"), EN.check_passed);
    assert!(b.text("#folders").lines().any(|l| l == "INBOX"));
    b.screenshot("check");
    s.visit(&b, "/accounts");
    let checked = b.text(&row("td.check"));
    assert!(
        checked.starts_with("✓ ") && checked.ends_with(" UTC"),
        "{checked}"
    );

    // A mail client logs in through mailgate: the table shows it.
    let out = s.gate.imap_login(&email(), LOCAL_PW);
    assert!(out.contains("auth OK"), "{out}");
    s.visit(&b, "/accounts");
    s.check_with(&b, &SECRETS);
    let login = b.text(&row("td.login"));
    assert!(login.ends_with(" UTC (IMAP)"), "{login}");

    // Help, from the navigation.
    s.visit(&b, "/help");
    s.check_with(&b, &SECRETS);
    assert_eq!(title(&b), EN.help_title);
    b.screenshot("help");
}

#[test]
fn a_wrong_stored_password_fails_the_check_with_advice() {
    let up = upstreams();
    let a = AccountSite::start(&up, "", Some("not-the-Secret-1"));
    let (s, b) = (&a.site, signed_in_to(&a.site));
    check_now(s, &b);
    let failed = b.text("#steps li.fail");
    assert!(
        failed.contains(EN.step_imap_login),
        "not the IMAP login: {failed}"
    );
    let advice = b.text("#steps li.fail .advice");
    assert!(!advice.trim().is_empty(), "no advice");
    // Dovecot on 127.0.0.1:port is not Proton Mail Bridge (127.0.0.1:1143): the advice is the
    // generic one, not a provider's.
    assert!(
        advice.contains("app password") && !advice.contains("Proton"),
        "{advice}"
    );
    assert_eq!(b.text("#check-result"), EN.check_failed);
    assert!(!b.exists("#folders"));
    b.screenshot("check-failed");
    s.visit(&b, "/accounts");
    assert!(b.text(&row("td.check")).starts_with("✗ "));
    // Unknown addresses: 404, with or without a form token.
    let token = b
        .attr(&row("form.check input[name=\"csrf\"]"), "value")
        .expect("csrf");
    let body = format!("csrf={token}&email=nobody%40example.test");
    let resp = s.send(&b, "POST", "/accounts/check", Some(&body));
    assert_eq!(resp.status, 404, "{}", resp.body);
}

#[test]
fn without_accounts_the_page_says_so_and_links_to_connect() {
    let (s, b) = signed_in();
    s.visit(&b, "/accounts");
    assert!(!b.exists("table#accounts"));
    let sentence = b.text("#no-accounts");
    assert!(sentence.starts_with(EN.accounts_none), "{sentence}");
    assert_eq!(
        b.attr("#no-accounts a", "href").as_deref(),
        Some("/connect")
    );
    // Nothing to check or remove.
    let resp = s.send(&b, "GET", "/accounts/remove?email=ola%40example.test", None);
    assert_eq!(resp.status, 404);
}
