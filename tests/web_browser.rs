//! The connect page (`[web]`) in a real browser: headless Chromium over WebDriver
//! (tests/support/browser.rs) against a real `mailgate run`, its discovery pointed at the DNS
//! stand-in so nothing leaves loopback. Signing in (one-time link, operator password), the
//! connect page and what it recognises, the advanced form, CSRF refusals, the four languages
//! and the security headers. Every page a test visits is checked for secrets (the operator
//! password, the one-time token, every session cookie value the browser held); screenshots
//! go to `<target dir>/screenshots/`.

/// The Accounts table and *Check now*.
#[path = "web_browser/accounts.rs"]
mod accounts;
/// Editing an account.
#[path = "web_browser/edit.rs"]
mod edit;
/// Connecting and re-authorizing an OAuth account.
#[path = "web_browser/oauth.rs"]
mod oauth;
/// Connecting a password account.
#[path = "web_browser/password.rs"]
mod password;
/// Removing an account.
#[path = "web_browser/remove.rs"]
mod remove;
mod support;

use std::cell::RefCell;
use std::fs;
use std::net::SocketAddr;

use mailgate::web::lang::{Text, DA, EN, NB, NL};
use support::browser::{assert_no_secret, form_body, request, Browser, Response};
use support::config::toml_str;
use support::dns::{DnsServer, Rec};
use support::mailgate::{cached_hash, Mailgate};
use support::proc::free_port;
use support::GateConfig;

/// The session cookie's name (as the page sets it).
const COOKIE: &str = "mailgate_session";
/// The operator password of the sites that have one.
const OPERATOR_PASSWORD: &str = "op-Secret-5b8e1d7a";
/// Start attempts (each on a new port: another process may take a free port first).
const START_ATTEMPTS: usize = 5;
/// A Google Workspace domain known only by its MX record (see [`Site::start`]).
const MX_DOMAIN: &str = "firma.test";
/// What every response must carry (no `[[web.oauth]]` app, so `form-action` is the site only).
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// A running `mailgate run` with the connect page, and what the tests must never see on a page.
struct Site {
    gate: Mailgate,
    /// `http://127.0.0.1:PORT`.
    base: String,
    /// The one-time sign-in link from mailgate's stdout, and its token (sites without an
    /// operator password).
    link: Option<String>,
    token: Option<String>,
    operator_password: Option<&'static str>,
    /// Every session cookie value a browser held so far.
    cookies: RefCell<Vec<String>>,
    _dns: DnsServer,
}

impl Site {
    /// No accounts, `[web]` on a free loopback port; `operator_password`: set its hash, else
    /// the one-time link is read from mailgate's stdout.
    fn start(operator_password: Option<&'static str>) -> Site {
        Site::start_with(operator_password, "")
    }

    /// [`Site::start`] with `extra` appended to the config after `[web]` (e.g. a
    /// `[[web.oauth]]` app).
    fn start_with(operator_password: Option<&'static str>, extra: &str) -> Site {
        // The resolver knows one domain, by MX; every other name does not exist.
        let dns = DnsServer::start(&[(MX_DOMAIN, Rec::Mx(10, "aspmx.l.google.com".into()))]);
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let mut toml = GateConfig::new()
                .server("allow_no_accounts", true)
                .server("resolver", dns.addr)
                .to_toml();
            toml.push_str(&format!(
                "\n[web]\nlisten = {}\n",
                toml_str(&listen.to_string())
            ));
            if let Some(pw) = operator_password {
                let hash = toml_str(&cached_hash(pw));
                toml.push_str(&format!("operator_password_hash = {hash}\n"));
            }
            toml.push_str(extra);
            match Mailgate::try_start(&toml, &[], "text") {
                Ok(gate) => return Site::started(gate, listen, operator_password, dns),
                Err(e) if e.contains("in use") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("the connect page did not start in {START_ATTEMPTS} attempts:\n{last}");
    }

    fn started(
        gate: Mailgate,
        listen: SocketAddr,
        operator_password: Option<&'static str>,
        dns: DnsServer,
    ) -> Site {
        let base = format!("http://{listen}");
        // The link exactly as printed (the one a person would open), checked against `base`.
        let link = operator_password.is_none().then(|| {
            let line = gate.logged(&["stdout: ", "/signin?token="]);
            let link = line
                .split_whitespace()
                .find(|w| w.contains("/signin?token="))
                .expect("the link");
            assert!(link.starts_with(&base), "link not on {base}: {line}");
            link.trim_end_matches([')', '.', ',']).to_string()
        });
        let token = link
            .as_deref()
            .and_then(|l| l.split("token=").nth(1))
            .map(str::to_string);
        Site {
            gate,
            base,
            link,
            token,
            operator_password,
            cookies: RefCell::new(Vec::new()),
            _dns: dns,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn token(&self) -> &str {
        self.token
            .as_deref()
            .expect("a site with the one-time link")
    }

    /// The one-time link as mailgate printed it.
    fn link(&self) -> &str {
        self.link.as_deref().expect("a site with the one-time link")
    }

    /// The secrets no page may contain.
    fn secrets(&self) -> Vec<String> {
        let mut s = self.cookies.borrow().clone();
        s.extend(self.token.clone());
        s.extend(self.operator_password.map(str::to_string));
        s
    }

    /// Notes the browser's session cookie, then checks the page shown now (its source and
    /// its address) for every secret.
    fn check(&self, b: &Browser) {
        self.note_cookie(b);
        let secrets = self.secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        b.assert_no_secret(&secrets);
    }

    /// [`Site::check`] with `more` secrets of this test (passwords typed into a form).
    fn check_with(&self, b: &Browser, more: &[&str]) {
        self.check(b);
        let page = b.path();
        assert_no_secret(&page, &b.source(), more);
    }

    /// [`Site::check`] for the source only: for a page at an address the test typed with the
    /// token in it.
    fn check_source(&self, b: &Browser) {
        self.note_cookie(b);
        let secrets = self.secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        assert_no_secret(&b.path(), &b.source(), &secrets);
    }

    fn note_cookie(&self, b: &Browser) {
        if let Some(c) = b.cookie(COOKIE) {
            if !self.cookies.borrow().contains(&c) {
                self.cookies.borrow_mut().push(c);
            }
        }
    }

    /// Opens `path` and checks the page.
    fn visit(&self, b: &Browser, path: &str) {
        b.goto(&self.url(path));
        self.check(b);
    }

    /// Signs `b` in: with the operator password when the site has one, else the one-time link.
    fn sign_in(&self, b: &Browser) {
        match self.operator_password {
            Some(pw) => {
                self.visit(b, "/signin");
                b.fill("signin", "password", pw);
                b.submit("signin");
            }
            None => b.goto(self.link()),
        }
        self.check(b);
        assert_ne!(
            b.path(),
            "/signin",
            "still on the sign-in page:\n{}",
            b.source()
        );
        assert!(
            b.cookie(COOKIE).is_some(),
            "no session cookie after signing in"
        );
    }

    /// Types `email` into the connect form on the page shown now, presses Next and checks the
    /// page that comes.
    fn next(&self, b: &Browser, email: &str) {
        b.fill("connect", "email", email);
        b.click("next");
        self.check(b);
    }

    /// The connect page, then [`Site::next`].
    fn connect(&self, b: &Browser, email: &str) {
        self.visit(b, "/connect");
        self.next(b, email);
    }

    /// A request outside the browser with `b`'s cookies.
    fn send(&self, b: &Browser, method: &str, path: &str, body: Option<&str>) -> Response {
        let cookie = b.cookie_header();
        let mut headers = vec![("Cookie", cookie.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/x-www-form-urlencoded"));
        }
        let resp = request(method, &self.url(path), &headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let secrets = self.secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        assert_no_secret(&format!("{method} {path}"), &resp.body, &secrets);
        resp
    }
}

/// A site with the one-time link, and an English browser signed in with it.
fn signed_in() -> (Site, Browser) {
    let site = Site::start(None);
    let b = signed_in_to(&site);
    (site, b)
}

/// An English browser signed in to `site`.
fn signed_in_to(site: &Site) -> Browser {
    let b = Browser::start("en");
    site.sign_in(&b);
    b
}

/// The text of the page's `<h1>`.
fn title(b: &Browser) -> String {
    b.text("main h1")
}

/// The five security headers, exactly.
#[track_caller]
fn assert_security_headers(resp: &Response, what: &str) {
    let expected = [
        ("content-security-policy", CSP),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ];
    for (name, value) in expected {
        assert_eq!(resp.header(name), Some(value), "{name} of {what}");
    }
}

#[test]
fn the_one_time_link_signs_in_once_and_stays_out_of_the_log() {
    let site = Site::start(None);
    let b = Browser::start("en");
    // Not signed in: every page leads to the sign-in page, which says to use the link.
    site.visit(&b, "/connect");
    assert_eq!(b.path(), "/signin");
    assert_eq!(title(&b), EN.signin_title);
    assert!(
        !b.exists("form#signin"),
        "a password form without an operator password"
    );
    b.screenshot("signin-link");
    site.sign_in(&b);
    site.visit(&b, "/connect");
    assert_eq!(b.path(), "/connect");
    // Used once: a second browser cannot use it again, and is not signed in.
    let other = Browser::start("en");
    other.goto(site.link());
    site.check_source(&other);
    assert!(other.exists("#signin-error"), "{}", other.source());
    // The command in the sentence is code, not text with backticks.
    let command = "mailgate web-password";
    let sentence = EN.signin_link_invalid.replace("{command}", command);
    assert_eq!(other.text("#signin-error"), sentence);
    assert_eq!(other.text("#signin-error code"), command);
    site.visit(&other, "/connect");
    assert_eq!(other.path(), "/signin");
    // The link went to stdout once, and nowhere else.
    let lines = site.gate.lines();
    let with_token: Vec<&String> = lines.iter().filter(|l| l.contains(site.token())).collect();
    assert_eq!(
        with_token.len(),
        1,
        "the token in {} lines",
        with_token.len()
    );
    assert!(with_token[0].starts_with("stdout: "));
    for cookie in site.cookies.borrow().iter() {
        assert!(
            !lines.iter().any(|l| l.contains(cookie.as_str())),
            "a session id in mailgate's output"
        );
    }
}

#[test]
fn the_operator_password_signs_in_and_a_wrong_one_does_not() {
    let site = Site::start(Some(OPERATOR_PASSWORD));
    let b = Browser::start("en");
    site.visit(&b, "/signin");
    assert_eq!(title(&b), EN.signin_title);
    b.screenshot("signin");
    b.fill("signin", "password", "not-the-password");
    b.submit("signin");
    site.check(&b);
    assert_eq!(b.text("#signin-error"), EN.signin_wrong);
    site.visit(&b, "/connect");
    assert_eq!(b.path(), "/signin", "a wrong password signed in");
    site.sign_in(&b);
    // Signing in gave a new session id (the anonymous one is not the signed-in one).
    assert!(
        site.cookies.borrow().len() >= 2,
        "the session id did not change"
    );
    site.visit(&b, "/connect");
    assert_eq!(b.path(), "/connect");
    // Signing out ends the session.
    b.click("signout");
    site.check(&b);
    site.visit(&b, "/connect");
    assert_eq!(b.path(), "/signin");
    let lines = site.gate.lines();
    assert!(!lines.iter().any(|l| l.contains(OPERATOR_PASSWORD)));
}

#[test]
fn the_connect_page_recognises_a_preset_domain_and_an_mx_record() {
    let (site, b) = signed_in();
    site.visit(&b, "/connect");
    assert_eq!(title(&b), EN.connect_title);
    b.screenshot("connect");
    // A domain of the preset table: found without the network, by its built-in settings.
    site.next(&b, "ola@gmail.com");
    let gmail = mailgate::provider::by_domain("gmail.com").expect("gmail preset");
    assert_eq!(b.text("#provider"), gmail.name);
    assert_eq!(b.text("#how"), EN.how_preset);
    // No `[[web.oauth]]` app: Gmail's app password, with its help link.
    assert!(!b.exists("form#oauth"));
    assert!(b.exists("form#password-form"), "{}", b.source());
    assert_eq!(
        b.attr("#app-password-help", "href").as_deref(),
        gmail.help.app_password
    );
    assert_eq!(
        b.attr("#advanced-link", "href").as_deref(),
        Some("/connect/advanced?email=ola%40gmail.com")
    );
    b.screenshot("found-preset");
    // A domain known by its MX host only: the page says so, and names the host.
    site.connect(&b, &format!("kari@{MX_DOMAIN}"));
    assert_eq!(b.text("#provider"), gmail.name);
    assert_eq!(b.text("#how"), format!("{}: aspmx.l.google.com", EN.how_mx));
    b.screenshot("found-mx");
}

#[test]
fn the_advanced_form_on_request_and_when_recognition_fails() {
    let (site, b) = signed_in();
    // On request, from the found page: prefilled from the preset.
    site.connect(&b, "ola@gmail.com");
    b.click("advanced-link");
    site.check(&b);
    assert_eq!(b.path(), "/connect/advanced?email=ola%40gmail.com");
    assert_eq!(title(&b), EN.advanced_title);
    let field = |name: &str| format!("form#advanced [name=\"{name}\"]");
    for name in [
        "csrf",
        "email",
        "imap_server",
        "imap_security",
        "smtp_server",
        "smtp_security",
        "username",
        "password",
        "local_password",
    ] {
        assert!(b.exists(&field(name)), "no field {name} in #advanced");
    }
    assert_eq!(b.value(&field("email")), "ola@gmail.com");
    assert_eq!(b.value(&field("imap_server")), "imap.gmail.com:993");
    assert_eq!(b.value(&field("imap_security")), "tls");
    assert!(!b.exists("#not-recognised"));
    b.screenshot("advanced");
    // Recognition failing (no preset, no MX, no autoconfig, no server to guess): the
    // advanced form, saying why, with the address kept and the servers empty.
    site.connect(&b, "per@nowhere.test");
    assert_eq!(b.text("#not-recognised"), EN.not_recognised);
    // What discovery tried is folded away, each line once (and no raw error text).
    assert!(!b.exists("pre") && b.exists("details#tried:not([open])"));
    let tried =
        b.script("return Array.from(document.querySelectorAll('#tried li'), e => e.textContent);");
    let tried: Vec<&str> = tried
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert!(!tried.is_empty());
    let once: std::collections::HashSet<&str> = tried.iter().copied().collect();
    assert_eq!(
        once.len(),
        tried.len(),
        "a line twice in what discovery tried: {tried:?}"
    );
    assert_eq!(b.value(&field("email")), "per@nowhere.test");
    assert_eq!(b.value(&field("imap_server")), "");
    b.fill("advanced", "imap_server", "127.0.0.1:1");
    b.choose("advanced", "imap_security", "starttls");
    b.fill("advanced", "smtp_server", "127.0.0.1:2");
    b.choose("advanced", "smtp_security", "none");
    assert_eq!(b.value(&field("smtp_security")), "none");
    b.screenshot("advanced-not-recognised");
}

#[test]
fn a_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let (site, b) = signed_in();
    site.visit(&b, "/connect");
    let csrf = b
        .attr("form#connect input[name=\"csrf\"]", "value")
        .expect("the form's csrf field");
    assert!(!csrf.is_empty());
    let config_before = fs::read(&site.gate.config_path).expect("config");
    let email = [("email", "ola@gmail.com")];
    let account = [
        ("email", "ola@gmail.com"),
        ("password", "app-password-1"),
        ("local_password", "local-password-1"),
        ("imap_server", "imap.gmail.com:993"),
        ("imap_security", "tls"),
    ];
    let wrong = [
        ("email", "ola@gmail.com"),
        ("csrf", "AAAAAAAAAAAAAAAAAAAAAA"),
    ];
    let refused = [
        ("/connect", form_body(&email)),
        ("/connect", form_body(&wrong)),
        ("/connect/password", form_body(&account)),
        ("/connect/oauth", form_body(&email)),
        ("/signout", String::new()),
    ];
    for (path, body) in &refused {
        let resp = site.send(&b, "POST", path, Some(body));
        assert_eq!(
            resp.status, 403,
            "POST {path} without a valid csrf: {}",
            resp.body
        );
        assert_security_headers(&resp, &format!("the refused POST {path}"));
        assert!(resp.body.contains(EN.forbidden_title), "{}", resp.body);
    }
    // Nothing changed: the config file byte for byte, and the session still signed in.
    assert_eq!(
        fs::read(&site.gate.config_path).expect("config"),
        config_before
    );
    let resp = site.send(&b, "GET", "/connect", None);
    assert_eq!(
        resp.status, 200,
        "signed out by a refused POST: {}",
        resp.body
    );
    // The same cookie with the form's token goes through (so the token was what was missing).
    let with = [("email", "ola@gmail.com"), ("csrf", csrf.as_str())];
    let resp = site.send(&b, "POST", "/connect", Some(&form_body(&with)));
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(resp.body.contains("id=\"found\""), "{}", resp.body);
    // The browser shows the refusal page too.
    b.goto(&site.url("/connect"));
    b.script("document.querySelector('form#connect input[name=csrf]').value = 'x';");
    site.next(&b, "ola@gmail.com");
    assert_eq!(title(&b), EN.forbidden_title);
    b.screenshot("forbidden");
}

/// The languages, each with the `Accept-Language` a browser set to it sends.
const LANGUAGES: [(&str, &Text); 4] = [("en", &EN), ("nb", &NB), ("da", &DA), ("nl", &NL)];

#[test]
fn each_language_renders_the_connect_page() {
    let site = Site::start(Some(OPERATOR_PASSWORD));
    for (code, text) in LANGUAGES {
        let b = Browser::start(code);
        site.visit(&b, "/signin");
        assert_eq!(b.attr("html", "lang").as_deref(), Some(text.code));
        assert_eq!(title(&b), text.signin_title, "{code}");
        site.sign_in(&b);
        site.visit(&b, "/connect");
        assert_eq!(b.attr("html", "lang").as_deref(), Some(text.code));
        assert_eq!(title(&b), text.connect_title, "{code}");
        assert_eq!(b.text("#next"), text.next_button, "{code}");
        assert_eq!(b.text("label[for=\"email\"]"), text.email_label, "{code}");
        assert_eq!(b.text("#advanced-link"), text.advanced_link, "{code}");
        b.screenshot(&format!("connect-{code}"));
        site.next(&b, "ola@gmail.com");
        assert_eq!(title(&b), text.found_title, "{code}");
        assert_eq!(b.text("#how"), text.how_preset, "{code}");
    }
    // q-values decide, and a language the page lacks falls back to English.
    for (accept, text) in [("de,nl;q=0.9,en;q=0.5", &NL), ("fr", &EN), ("nb-NO", &NB)] {
        let b = Browser::start(accept);
        site.visit(&b, "/signin");
        assert_eq!(title(&b), text.signin_title, "Accept-Language: {accept}");
    }
}

#[test]
fn every_response_carries_the_security_headers_and_the_cookie_is_http_only() {
    let (site, b) = signed_in();
    site.visit(&b, "/connect");
    // The page script cannot read the session cookie, and the style sheet loaded under the CSP.
    assert_eq!(b.script("return document.cookie;"), serde_json::json!(""));
    let rules = b.script("return document.styleSheets[0].cssRules.length;");
    assert!(rules.as_u64().unwrap_or(0) > 0, "no style rules: {rules}");
    for (path, status) in [
        ("/connect", 200),
        ("/help", 200),
        ("/style.css", 200),
        ("/no-such-page", 404),
        ("/connect/advanced?email=a%40b.test", 200),
    ] {
        let resp = site.send(&b, "GET", path, None);
        assert_eq!(resp.status, status, "GET {path}");
        assert_security_headers(&resp, &format!("GET {path}"));
    }
    // Without a session: the redirect and the sign-in page carry them too, and the cookie it
    // sets is HttpOnly, SameSite=Lax, for the whole site, not Secure over plain HTTP.
    let anonymous = |path: &str| {
        request("GET", &site.url(path), &[], None).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    };
    let resp = anonymous("/connect");
    assert_eq!(resp.status, 303);
    assert_eq!(resp.header("location"), Some("/signin"));
    assert_security_headers(&resp, "the redirect to /signin");
    let resp = anonymous("/signin");
    assert_eq!(resp.status, 200);
    assert_security_headers(&resp, "GET /signin");
    let cookie = resp.header("set-cookie").expect("a session cookie");
    let attributes: Vec<&str> = cookie.split(';').skip(1).map(str::trim).collect();
    assert_eq!(
        attributes,
        ["HttpOnly", "SameSite=Lax", "Path=/"],
        "{cookie}"
    );
}
