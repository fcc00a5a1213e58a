//! OAuth on the connect page against the stand-in identity provider (tests/support/idp.rs)
//! and Dovecot/Postfix checking its tokens (XOAUTH2/OAUTHBEARER): the found page's "Sign in
//! with …" button, the provider's redirect back to `/oauth/callback`, the live test with the
//! new tokens, the `#done` page and a login through mailgate; a callback whose `state` is not
//! the session's is refused and writes nothing; and re-authorizing an account whose tokens
//! the provider revoked, then removing it (its table and its tokens gone).

use std::fs;
use std::net::IpAddr;

use super::password::UPSTREAM_PW;
use super::{Site, COOKIE};
use crate::support::autoconfig::{private_loopback, HttpServer};
use crate::support::browser::{form_body, request, Browser};
use crate::support::config::toml_str;
use crate::support::dns::Rec;
use crate::support::idp::{Idp, CLIENT_ID};
use crate::support::postfix::{Postfix, DOMAIN};
use crate::support::DovecotOpts;
use mailgate::web::lang::EN;

const EMAIL: &str = "ola@example.test";

/// The stand-in provider, Dovecot and Postfix checking its tokens, the site with a
/// `[[web.oauth]]` app for example.test, and the domain's autoconfig file naming the servers.
struct World {
    idp: Idp,
    _up: Postfix,
    site: Site,
    _autoconfig: HttpServer,
}

/// The stand-in's address as the browser reaches it: `localhost`, another site than the page's
/// `127.0.0.1`, so the redirect back to `/oauth/callback` is cross-site, as from a real
/// provider (a `SameSite=Strict` session cookie would not come along).
fn browser_url(idp: &Idp, path: &str) -> String {
    let url = idp.url(path);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    url.replacen("127.0.0.1", "localhost", 1)
}

fn world() -> World {
    let idp = Idp::start(EMAIL);
    let up = Postfix::start_with(
        &["ola"],
        UPSTREAM_PW,
        DovecotOpts {
            imap: true,
            oauth2_introspection_url: Some(idp.url("/introspect")),
            ..DovecotOpts::sasl_only()
        },
    );
    let app = format!(
        "\n[[web.oauth]]\nauthorize_url = {}\ntoken_url = {}\nclient_id = {}\nscopes = [\"mail\"]\ndomains = [\"{DOMAIN}\"]\n",
        toml_str(&browser_url(&idp, "/authorize")),
        toml_str(&idp.url("/token")),
        toml_str(CLIENT_ID),
    );
    let site = Site::start_with(None, &app);
    let ip = private_loopback();
    site._dns
        .add(&format!("autoconfig.{DOMAIN}"), Rec::Addr(IpAddr::V4(ip)));
    let file = format!(
        "<clientConfig version=\"1.1\"><emailProvider id=\"{DOMAIN}\">\
         <incomingServer type=\"imap\"><hostname>127.0.0.1</hostname>\
         <port>{}</port><socketType>plain</socketType>\
         <username>%EMAILADDRESS%</username></incomingServer>\
         <outgoingServer type=\"smtp\"><hostname>127.0.0.1</hostname>\
         <port>{}</port><socketType>plain</socketType>\
         <username>%EMAILADDRESS%</username></outgoingServer>\
         </emailProvider></clientConfig>",
        up.dovecot.imap_addr().port(),
        up.plain_port
    );
    let path = format!("/mail/config-v1.1.xml?emailaddress=ola%40{DOMAIN}");
    let autoconfig = HttpServer::start((ip, 80).into(), vec![(path, 200, file)]);
    World {
        idp,
        _up: up,
        site,
        _autoconfig: autoconfig,
    }
}

impl World {
    /// The secrets of this world: every token or code the provider issued, and the password.
    fn check(&self, b: &Browser) {
        let issued = self.idp.issued_tokens();
        let mut secrets: Vec<&str> = issued.iter().map(String::as_str).collect();
        secrets.push(UPSTREAM_PW);
        self.site.check_with(b, &secrets);
    }

    /// A browser signed in, on the found page of `EMAIL` with its `#oauth` form.
    fn found(&self) -> Browser {
        let b = Browser::start("en");
        self.site.sign_in(&b);
        self.site.connect(&b, EMAIL);
        assert!(b.exists("form#oauth"), "{}", b.source());
        b
    }

    /// The token files in the gateway's state folder.
    fn token_files(&self) -> usize {
        let dir = self.site.gate.dir().join("state").join("tokens");
        fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
    }
}

#[test]
fn an_oauth_account_connects_is_reauthorized_and_removed() {
    let w = world();
    let b = w.found();
    // The person allows access on the provider's page (another site) and is sent back.
    w.idp.ask_consent();
    b.submit("oauth");
    b.click("allow");
    w.check(&b);
    b.wait_for("#done");
    assert!(!b.exists("#steps li.fail"), "{}", b.text("#steps"));
    assert_eq!(b.text("#client-user"), EMAIL);
    let local = b.text("#local-password");
    assert_eq!(local.len(), 20);
    assert!(b.text("#folders").contains("INBOX"));
    b.screenshot("oauth-done");
    let config = fs::read_to_string(&w.site.gate.config_path).expect("config");
    assert!(config.contains("[account.oauth2]"), "{config}");
    assert!(config.contains(&format!("client_id = \"{CLIENT_ID}\"")));
    assert!(!config.contains("password_file"), "{config}");
    assert_eq!(w.token_files(), 1);
    let login = w.site.gate.imap_login(EMAIL, &local);
    assert!(login.contains("auth OK"), "{login}");

    // Its edit form changes servers only; saved unchanged, the sign-in settings stay.
    w.site.visit(&b, "/accounts/edit?email=ola%40example.test");
    assert!(
        b.exists("form#edit [name=\"imap_server\"]"),
        "{}",
        b.source()
    );
    assert!(!b.exists("form#edit [name=\"password\"]"));
    assert!(!b.exists("form#edit [name=\"local_password\"]"));
    b.submit("edit");
    w.check(&b);
    assert!(b.exists("#edited"), "{}", b.source());
    let config = fs::read_to_string(&w.site.gate.config_path).expect("config");
    assert!(config.contains("[account.oauth2]"), "{config}");

    // The provider revokes the tokens: logins fail until the account signs in again.
    w.idp.revoke_refresh_tokens();
    w.idp.expire_access_tokens();
    let login = w.site.gate.imap_login(EMAIL, &local);
    assert!(!login.contains("auth OK"), "{login}");
    w.site.visit(&b, "/connect");
    let csrf = b
        .attr("form#connect input[name=\"csrf\"]", "value")
        .expect("csrf");
    let body = form_body(&[("email", EMAIL), ("csrf", &csrf)]);
    let resp = w
        .site
        .send(&b, "POST", "/accounts/reauthorize", Some(&body));
    assert_eq!(resp.status, 303, "{}", resp.body);
    let location = resp.header("location").expect("to the provider");
    assert!(
        location.starts_with(&browser_url(&w.idp, "/authorize?")),
        "{location}"
    );
    b.goto(location);
    b.click("allow");
    w.check(&b);
    assert_eq!(b.text("main h1"), EN.reauthorized_title, "{}", b.source());
    assert!(!b.exists("#steps li.fail"), "{}", b.text("#steps"));
    let login = w.site.gate.imap_login(EMAIL, &local);
    assert!(login.contains("auth OK"), "{login}");
    assert_eq!(
        fs::read_to_string(&w.site.gate.config_path).expect("config"),
        config,
        "re-authorizing changed the config"
    );

    // Removed through the page: its table and its tokens go; it no longer logs in.
    w.site
        .visit(&b, "/accounts/remove?email=ola%40example.test");
    b.submit("remove");
    w.check(&b);
    assert_eq!(b.text("#removed-what li.tokens"), EN.removed_tokens);
    assert_eq!(w.token_files(), 0);
    let config = fs::read_to_string(&w.site.gate.config_path).expect("config");
    assert!(!config.contains(EMAIL), "{config}");
    let login = w.site.gate.imap_login(EMAIL, &local);
    assert!(!login.contains("auth OK"), "{login}");
}

#[test]
fn a_callback_with_another_state_is_refused_and_writes_nothing() {
    let w = world();
    let b = w.found();
    let before = fs::read(&w.site.gate.config_path).expect("config");
    // The found page's form, sent outside the browser: the redirect to the provider.
    let body = b.script(
        "return new URLSearchParams(new FormData(document.querySelector('form#oauth'))).toString();",
    );
    let body = body.as_str().expect("the form's fields").to_string();
    let resp = w.site.send(&b, "POST", "/connect/oauth", Some(&body));
    assert_eq!(resp.status, 303, "{}", resp.body);
    let location = resp
        .header("location")
        .expect("to the provider")
        .to_string();
    // The provider approves and redirects with a real code; the state is swapped.
    let direct = location.replacen("localhost", "127.0.0.1", 1);
    let approved = request("GET", &direct, &[], None).expect("the provider");
    let back = approved.header("location").expect("the redirect back");
    let code = back
        .split("code=")
        .nth(1)
        .and_then(|c| c.split('&').next())
        .expect("code");
    let forged = format!("/oauth/callback?code={code}&state=forged-state");
    w.site.visit(&b, &forged);
    assert_eq!(b.text("main h1"), EN.oauth_failed_title);
    assert_eq!(b.text("#oauth-state-mismatch"), EN.oauth_state_mismatch);
    // The code was never exchanged, and nothing was written.
    assert!(!w
        .idp
        .requests()
        .iter()
        .any(|r| r.starts_with("POST /token")));
    assert_eq!(fs::read(&w.site.gate.config_path).expect("config"), before);
    assert_eq!(w.token_files(), 0);
    // The sign-in in progress was used up: the real redirect now finds none.
    b.goto(back);
    w.check(&b);
    assert_eq!(b.text("#oauth-no-pending"), EN.oauth_no_pending);
    assert_eq!(fs::read(&w.site.gate.config_path).expect("config"), before);
    assert!(b.cookie(COOKIE).is_some());
}
