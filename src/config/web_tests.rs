//! `[web]`, driven by text.

use crate::config::{Config, ConfigError};
use crate::provider::OAuthProvider;
use std::path::Path;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

fn parse(web: &str) -> Result<Config, ConfigError> {
    let text = format!("[server]\nallow_no_accounts = true\n\n{web}");
    Config::parse(&text, Path::new("/etc/mailgate/test.toml"))
}

fn error(web: &str) -> String {
    parse(web).unwrap_err().to_string()
}

#[test]
fn absent_is_off_and_loopback_needs_no_tls() {
    assert!(parse("").unwrap().web.is_none());
    let c = parse(&format!(
        "[web]\nlisten = \"127.0.0.1:8025\"\noperator_password_hash = \"{HASH}\"\n"
    ))
    .unwrap();
    let w = c.web.unwrap();
    assert_eq!(w.listen.to_string(), "127.0.0.1:8025");
    assert_eq!(w.public_url, "http://127.0.0.1:8025");
    assert_eq!(w.operator_password_hash.as_deref(), Some(HASH));
    assert!(w.tls.is_none() && w.oauth.is_empty());
    let v6 = parse("[web]\nlisten = \"[::1]:8025\"\n")
        .unwrap()
        .web
        .unwrap();
    assert_eq!(v6.public_url, "http://[::1]:8025");
}

#[test]
fn bad_values_are_placed_by_line_and_column() {
    let e = error("[web]\nlisten = \"localhost\"\n");
    assert!(
        e.starts_with("/etc/mailgate/test.toml:5:10: web.listen: `localhost` is not an IP:port"),
        "{e}"
    );
    let e = error("[web]\nlisten = \"0.0.0.0:8025\"\n");
    assert!(
        e.contains(":5:10: web.listen: `0.0.0.0:8025` is not a loopback address"),
        "{e}"
    );
    let e = error("[web]\nlisten = \"127.0.0.1:8025\"\noperator_password_hash = \"secret\"\n");
    assert!(
        e.contains(":6:26: web.operator_password_hash: is not an argon2"),
        "{e}"
    );
    let e = error("[web]\nlisten = \"127.0.0.1:8025\"\nport = 1\n");
    assert!(e.contains(":6:1: web.port: unknown field `port`"), "{e}");
    let e = error("[web]\nlisten = \"127.0.0.1:1\"\npublic_url = \"ftp://x\"\n");
    assert!(e.contains(":6:14: web.public_url:"), "{e}");
    let e = error("[web]\nlisten = \"127.0.0.1:1\"\n[web.tls]\ncert = \"/nonexistent/c.pem\"\nkey = \"/nonexistent/k.pem\"\n");
    assert!(e.contains(":7:8: web.tls.cert:"), "{e}");
}

#[test]
fn public_url_keeps_scheme_and_authority_only() {
    let url = |u: &str| {
        parse(&format!(
            "[web]\nlisten = \"127.0.0.1:1\"\npublic_url = \"{u}\"\n"
        ))
        .map(|c| c.web.unwrap().public_url)
        .map_err(|e| e.to_string())
    };
    assert_eq!(
        url("https://mail.example.com:8025/").unwrap(),
        "https://mail.example.com:8025"
    );
    for bad in [
        "https://",
        "https://a/path",
        "http://a?x",
        "https://u@a",
        "mail.example.com",
    ] {
        assert!(url(bad).is_err(), "{bad}");
    }
}

#[test]
fn oauth_apps_need_a_provider_or_endpoints_and_domains() {
    let c = parse(
        "[web]\nlisten = \"127.0.0.1:1\"\n[[web.oauth]]\nprovider = \"microsoft\"\nclient_id = \"abc\"\ntenant = \"consumers\"\n[[web.oauth]]\nauthorize_url = \"https://idp.test/a\"\ntoken_url = \"https://idp.test/t\"\ndomains = [\"Example.TEST.\"]\nclient_id = \"x\"\nclient_secret_env = \"IDP_SECRET\"\nscopes = [\"mail\"]\n",
    )
    .unwrap();
    let apps = c.web.unwrap().oauth;
    assert_eq!(apps[0].provider, Some(OAuthProvider::Microsoft));
    assert_eq!(apps[0].tenant.as_deref(), Some("consumers"));
    assert_eq!(apps[1].domains, ["example.test"]);
    assert_eq!(
        apps[1].endpoints,
        Some(("https://idp.test/a".into(), "https://idp.test/t".into()))
    );
    let app = |body: &str| {
        error(&format!(
            "[web]\nlisten = \"127.0.0.1:1\"\n[[web.oauth]]\n{body}"
        ))
    };
    let e = app("client_id = \"x\"\n");
    assert!(
        e.contains(":6:1: web.oauth[0].provider: set provider"),
        "{e}"
    );
    let e = app("authorize_url = \"https://a\"\ntoken_url = \"https://t\"\nclient_id = \"x\"\n");
    assert!(
        e.contains("web.oauth[0].domains: an identity provider without a preset"),
        "{e}"
    );
    let e = app("provider = \"google\"\nclient_id = \" \"\n");
    assert!(
        e.contains(":8:1: web.oauth[0].client_id: must not be empty"),
        "{e}"
    );
    let e = app("provider = \"google\"\nclient_id = \"x\"\ntenant = \"t\"\n");
    assert!(e.contains("web.oauth[0].tenant: only for provider"), "{e}");
    let e = app("provider = \"yahoo\"\nclient_id = \"x\"\n");
    assert!(
        e.contains(":7:12: web.oauth[0].provider: unknown variant"),
        "{e}"
    );
}

#[test]
fn base_url_names_the_port_the_system_chose() {
    let bound: std::net::SocketAddr = "127.0.0.1:40123".parse().unwrap();
    let chosen = parse("[web]\nlisten = \"127.0.0.1:0\"\n")
        .unwrap()
        .web
        .unwrap();
    assert_eq!(chosen.base_url(bound), "http://127.0.0.1:40123");
    let fixed = parse("[web]\nlisten = \"127.0.0.1:8025\"\n")
        .unwrap()
        .web
        .unwrap();
    assert_eq!(fixed.base_url(bound), "http://127.0.0.1:8025");
    let given =
        parse("[web]\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://mail.example.com\"\n")
            .unwrap()
            .web
            .unwrap();
    assert_eq!(given.base_url(bound), "https://mail.example.com");
}
