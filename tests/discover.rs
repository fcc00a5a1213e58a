//! Discovery end to end through the `mailgate` binary: presets by domain (no network), MX
//! records naming Google Workspace and Microsoft 365, Mozilla autoconfig over HTTP (and a
//! malformed file), guessing against real Dovecot and Postfix, and `mailgate run` discovering
//! an account's servers at start-up.
//!
//! DNS and the autoconfig web server are local stand-ins (tests/support/dns.rs and
//! autoconfig.rs); mailgate is pointed at the DNS stand-in with `--resolver` or
//! `[server] resolver`, and names like `autoconfig.ac.test` resolve to private 127.x.y.z
//! addresses where the stand-ins listen on the usual ports (80, 143, 587: root needed, as for
//! the other integration tests).

mod support;

use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use support::autoconfig::{private_loopback, Forward, HttpServer};
use support::dns::{DnsServer, Rec};
use support::mailgate::run;
use support::{Account, Dovecot, DovecotOpts, GateConfig, Mailgate, Postfix, Upstream};

/// `mailgate discover EMAIL --json --resolver DNS`: (exit ok, JSON or stderr text).
fn discover(email: &str, dns: &DnsServer) -> Result<Value, String> {
    discover_with(email, dns.addr)
}

/// The same with the DNS server at `resolver`.
fn discover_with(email: &str, resolver: SocketAddr) -> Result<Value, String> {
    let resolver = resolver.to_string();
    let out = run(
        &[
            "discover",
            email,
            "--json",
            "--resolver",
            &resolver,
            "--timeout-secs",
            "5",
        ],
        None,
    );
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("JSON on stdout"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// `mailgate discover EMAIL --json` when nothing is found: exit status 1, the error on stderr,
/// and still a JSON document on stdout for scripts.
fn discover_failing(email: &str, dns: &DnsServer) -> (String, Value) {
    let resolver = dns.addr.to_string();
    let args = ["discover", email, "--json", "--resolver", &resolver];
    let out = run(&args, None);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON on stdout ({e}): {:?}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (stderr, json)
}

fn server(v: &Value) -> String {
    format!(
        "{}:{} {} {}",
        v["host"].as_str().unwrap_or("?"),
        v["port"],
        v["tls"].as_str().unwrap_or("?"),
        v["username"].as_str().unwrap_or("?")
    )
}

#[test]
fn presets_resolve_by_domain_without_the_network() {
    let dns = DnsServer::start(&[]);
    // Every built-in preset, through the binary. The expected values are the table's own; the
    // hand-written expectations per provider are in the unit tests of src/provider/.
    for p in mailgate::provider::PRESETS {
        let Some(domain) = p.domains.first() else {
            continue; // reachable by MX only (Microsoft 365): see the MX test
        };
        let email = format!("ola@{domain}");
        let v = discover(&email, &dns).unwrap_or_else(|e| panic!("{email}: {e}"));
        let want = |s: &mailgate::provider::Server| {
            format!(
                "{}:{} {} {}",
                s.host,
                s.port,
                s.tls.as_str(),
                s.username.apply(&email)
            )
        };
        assert_eq!(v["provider"]["id"], p.id, "{email}: {v:#}");
        assert_eq!(server(&v["imap"]), want(&p.imap), "{email}");
        assert_eq!(server(&v["smtp"]), want(&p.smtp), "{email}");
        assert_eq!(
            v["imap"]["source"],
            format!("preset {} (by email domain)", p.id),
            "{email}"
        );
    }
    // Spot checks against the providers' documented values.
    let v = discover("ola@icloud.com", &dns).unwrap();
    assert_eq!(server(&v["imap"]), "imap.mail.me.com:993 implicit ola");
    assert_eq!(
        server(&v["smtp"]),
        "smtp.mail.me.com:587 starttls ola@icloud.com"
    );
    // Help links come with the preset.
    let v = discover("ola@gmail.com", &dns).unwrap();
    assert_eq!(
        v["provider"]["app_password"],
        "https://support.google.com/accounts/answer/185833"
    );
    assert!(dns.queries().is_empty(), "{:?}", dns.queries());
}

#[test]
fn mx_records_identify_google_workspace_and_microsoft_365() {
    let dns = DnsServer::start(&[
        ("corp.test", Rec::Mx(5, "alt1.aspmx.l.google.com".into())),
        ("corp.test", Rec::Mx(1, "aspmx.l.google.com".into())),
        (
            "contoso.test",
            Rec::Mx(0, "contoso-test.mail.protection.outlook.com".into()),
        ),
        ("plain.test", Rec::Mx(10, "mx.plain.test".into())),
    ]);
    let v = discover("kari@corp.test", &dns).unwrap();
    assert_eq!(v["found"], true);
    assert_eq!(v["provider"]["id"], "gmail");
    assert_eq!(
        server(&v["imap"]),
        "imap.gmail.com:993 implicit kari@corp.test"
    );
    assert_eq!(v["imap"]["source"], "preset gmail (MX aspmx.l.google.com)");

    let v = discover("kari@contoso.test", &dns).unwrap();
    assert_eq!(v["provider"]["id"], "microsoft365");
    assert_eq!(
        server(&v["smtp"]),
        "smtp.office365.com:587 starttls kari@contoso.test"
    );
    assert_eq!(
        v["imap"]["source"],
        "preset microsoft365 (MX contoso-test.mail.protection.outlook.com)"
    );
    assert_eq!(v["provider"]["auth"][0], "OAuth (microsoft)");

    // An MX of no known provider: discovery goes on, and says what it tried.
    let e = discover("kari@plain.test", &dns).unwrap_err();
    assert!(e.contains("no IMAP server found for plain.test"), "{e}");
    assert!(
        e.contains("MX plain.test: mx.plain.test (no known provider)"),
        "{e}"
    );
    assert!(e.contains("guess imap.plain.test:993"), "{e}");
    assert!(dns.queries().contains(&"corp.test MX".to_string()));
    // With --json the script gets a document too: not found, and what was tried.
    let (stderr, v) = discover_failing("kari@plain.test", &dns);
    assert!(stderr.contains("no IMAP server found"), "{stderr}");
    assert_eq!(v["found"], false, "{v:#}");
    assert_eq!(v["email"], "kari@plain.test", "{v:#}");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("no IMAP server found for plain.test")),
        "{v:#}"
    );
    let tried: Vec<&str> = v["tried"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        tried.first().copied(),
        Some("MX plain.test: mx.plain.test (no known provider)"),
        "{v:#}"
    );
    assert!(
        tried
            .iter()
            .any(|t| t.starts_with("guess imap.plain.test:993")),
        "{v:#}"
    );
}

/// An MX set larger than the 1232 bytes a query offers comes back truncated over UDP — TC set
/// and no records, as Unbound and Knot send it — and is asked again over TCP (RFC 7766).
/// Read as it came, the empty answer would be "no MX" and discovery would fall to guessing.
#[test]
fn a_truncated_mx_answer_is_asked_again_over_tcp() {
    let mut records: Vec<(&str, Rec)> = (0..40)
        .map(|i| {
            let host = format!("relay-{i:02}.outbound-filtering-farm.big-company.test");
            ("big.test", Rec::Mx(10 + i, host))
        })
        .collect();
    // The provider's own exchanger, preferred, last in the answer.
    records.push(("big.test", Rec::Mx(1, "aspmx.l.google.com".into())));
    let dns = DnsServer::start(&records);
    let v = discover("kari@big.test", &dns).unwrap();
    assert_eq!(v["provider"]["id"], "gmail", "{v:#}");
    assert_eq!(v["imap"]["source"], "preset gmail (MX aspmx.l.google.com)");
    let queries = dns.queries();
    let at = |q: &str| queries.iter().position(|x| x == q);
    let (udp, tcp) = (at("big.test MX"), at("big.test MX over TCP"));
    assert!(udp.is_some() && tcp > udp, "{queries:?}");
}

/// The same against a real resolver: dnsmasq cuts an answer that does not fit the 1232 bytes
/// offered after the records that fit (TC; 19 of these 41 — it lists them in the reverse of
/// the order given, so the preferred exchanger, given first, is not among them) and serves it
/// whole over TCP. Read as it came, the partial list would name no known provider.
#[test]
fn a_real_resolver_truncating_a_long_mx_answer_is_asked_over_tcp() {
    use support::dnsmasq::{Dnsmasq, Record};
    let hosts: Vec<String> = (0..40)
        .map(|i| format!("relay-{i:02}.outbound-filtering-farm.big-company.test"))
        .collect();
    let mut records = vec![Record::Mx("big.test", "aspmx.l.google.com", 1)];
    records.extend(
        hosts
            .iter()
            .zip(10..)
            .map(|(host, pref)| Record::Mx("big.test", host, pref)),
    );
    let dns = Dnsmasq::start(&records);
    let v = discover_with("kari@big.test", dns.addr).unwrap();
    assert_eq!(v["provider"]["id"], "gmail", "{v:#}");
    assert_eq!(v["imap"]["source"], "preset gmail (MX aspmx.l.google.com)");
}

const AUTOCONFIG: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="ac.test">
    <domain>ac.test</domain>
    <incomingServer type="pop3">
      <hostname>pop.ac.test</hostname><port>995</port><socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>IMAP_HOST</hostname>
      <port>IMAP_PORT</port>
      <socketType>IMAP_TLS</socketType>
      <username>%EMAILLOCALPART%</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.%EMAILDOMAIN%</hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
"#;

fn autoconfig_xml(host: &str, port: u16, tls: &str) -> String {
    AUTOCONFIG
        .replace("IMAP_HOST", host)
        .replace("IMAP_PORT", &port.to_string())
        .replace("IMAP_TLS", tls)
}

/// DNS with `autoconfig.DOMAIN` at a private loopback address where an HTTP server on port 80
/// answers the autoconfig path for `email` with `body`.
fn autoconfig_site(domain: &str, email: &str, body: String) -> (DnsServer, HttpServer, String) {
    let ip = private_loopback();
    let dns = DnsServer::start(&[(&format!("autoconfig.{domain}"), Rec::Addr(IpAddr::V4(ip)))]);
    let path = format!(
        "/mail/config-v1.1.xml?emailaddress={}",
        email.replace('@', "%40")
    );
    let http = HttpServer::start(SocketAddr::from((ip, 80)), vec![(path.clone(), 200, body)]);
    let url = format!("http://autoconfig.{domain}{path}");
    (dns, http, url)
}

#[test]
fn autoconfig_file_is_read_over_http_after_https_fails() {
    let (dns, http, url) = autoconfig_site(
        "ac.test",
        "ola@ac.test",
        autoconfig_xml("imap.%EMAILDOMAIN%", 993, "SSL"),
    );
    let v = discover("ola@ac.test", &dns).unwrap();
    assert_eq!(server(&v["imap"]), "imap.ac.test:993 implicit ola");
    assert_eq!(server(&v["smtp"]), "smtp.ac.test:587 starttls ola@ac.test");
    assert_eq!(v["imap"]["source"], format!("autoconfig {url}"));
    assert_eq!(v["provider"], Value::Null);
    let tried: Vec<String> = v["tried"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    assert!(
        tried.iter().any(|t| t.starts_with("MX ac.test: none")),
        "{tried:?}"
    );
    assert!(
        tried
            .iter()
            .any(|t| t.contains("cannot connect to autoconfig.ac.test:443")),
        "{tried:?}"
    );
    assert!(
        tried.iter().any(|t| t.contains("cannot resolve ac.test")),
        "{tried:?}"
    );
    let reqs = http.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert!(
        reqs[0].contains("\r\nHost: autoconfig.ac.test\r\n"),
        "{}",
        reqs[0]
    );
    assert_eq!(v["warning"], Value::Null);

    // A file that says `plain`: shown with a warning (`setup` then asks before using it).
    let plain = autoconfig_xml("imap.%EMAILDOMAIN%", 143, "plain");
    let (dns, _http, url) = autoconfig_site("pl.test", "ola@pl.test", plain);
    let v = discover("ola@pl.test", &dns).unwrap();
    assert_eq!(server(&v["imap"]), "imap.pl.test:143 none ola");
    assert_eq!(
        v["warning"],
        format!(
            "Warning: the IMAP server imap.pl.test:143 (from autoconfig {url}) offers no \
             encryption: the provider password and all mail would cross the network in clear."
        )
    );
}

#[test]
fn malformed_autoconfig_is_a_clear_error_naming_the_url() {
    let broken = autoconfig_xml("imap.bad.test", 993, "SSL").replace("</incomingServer>", "");
    let (dns, _http, url) = autoconfig_site("bad.test", "ola@bad.test", broken);
    let e = discover("ola@bad.test", &dns).unwrap_err();
    assert!(
        e.starts_with(&format!("mailgate: {url}: malformed XML:")),
        "{e}"
    );
    // Not a guess past a broken file.
    assert!(!e.contains("guess"), "{e}");
    let (_, v) = discover_failing("ola@bad.test", &dns);
    assert_eq!(v["found"], false, "{v:#}");
    assert_eq!(v["autoconfig_url"], url.as_str(), "{v:#}");
}

#[test]
fn guess_finds_real_dovecot_and_postfix_on_the_usual_ports() {
    let postfix = Postfix::start_with(
        &["ola"],
        "pw",
        DovecotOpts {
            imap: true,
            ..DovecotOpts::sasl_only()
        },
    );
    let ip = private_loopback();
    let _imap = Forward::start(SocketAddr::from((ip, 143)), postfix.dovecot.imap_addr());
    let _smtp = Forward::start(
        SocketAddr::from((ip, 587)),
        SocketAddr::from(([127, 0, 0, 1], postfix.starttls_port)),
    );
    let dns = DnsServer::start(&[
        ("imap.guess.test", Rec::Addr(IpAddr::V4(ip))),
        ("smtp.guess.test", Rec::Addr(IpAddr::V4(ip))),
    ]);
    let v = discover("ola@guess.test", &dns).unwrap();
    assert_eq!(
        server(&v["imap"]),
        "imap.guess.test:143 starttls ola@guess.test"
    );
    assert_eq!(
        server(&v["smtp"]),
        "smtp.guess.test:587 starttls ola@guess.test"
    );
    assert_eq!(v["imap"]["source"], "guess (a server answered)");
    let tried = v["tried"].to_string();
    assert!(
        tried.contains("guess imap.guess.test:993: cannot connect"),
        "{tried}"
    );
    assert!(
        tried.contains("guess mail.guess.test:143: cannot resolve"),
        "{tried}"
    );
    // A probe never logs in.
    assert!(
        !postfix.dovecot.log().contains("Login: user=<"),
        "{}",
        postfix.dovecot.log()
    );
}

#[test]
fn run_discovers_servers_at_start_up_or_refuses_naming_the_account() {
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user("ola", "upstream-pw");
    let imap = dovecot.imap_addr();
    let (dns, _http, url) = autoconfig_site(
        "start.test",
        "ola@start.test",
        autoconfig_xml("127.0.0.1", imap.port(), "plain"),
    );
    // No servers: discovery finds them.
    let gate_config = GateConfig::new().server("resolver", dns.addr).account(
        Account::password("ola@start.test", "local-pw").imap(
            Upstream::empty()
                .password("upstream-pw")
                .set("allow_plaintext", true),
        ),
    );
    let config = gate_config.to_toml();
    // check-config does not use the network and says what run will do.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.toml");
    std::fs::write(&file, &config).unwrap();
    let out = run(&["check-config", "--config", file.to_str().unwrap()], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("ola@start.test: no servers in the file and no preset"),
        "{stdout}"
    );

    let mut gate = gate_config.start();
    let line = gate
        .lines()
        .into_iter()
        .find(|l| l.contains("account=ola@start.test"))
        .expect("account line");
    assert!(
        line.contains(&format!("imap=127.0.0.1:{}", imap.port())),
        "{line}"
    );
    assert!(
        line.contains(&format!("source=\"autoconfig {url}\"")),
        "{line}"
    );
    assert!(
        line.contains("smtp=\"smtp.start.test:587 tls=starttls\""),
        "{line}"
    );
    let out = gate.imap_login("ola@start.test", "local-pw");
    assert!(out.contains("\nauth OK"), "{out}");

    // SIGHUP with a new account whose servers cannot be found: the reload is refused, naming
    // the account, and the running configuration keeps serving.
    let added = gate_config
        .account(
            Account::password("kari@nowhere.test", "local-pw")
                .imap(Upstream::empty().password("p")),
        )
        .to_toml();
    std::fs::write(&gate.config_path, added).unwrap();
    support::proc::sighup(gate.pid());
    let refused = support::proc::poll(
        std::time::Duration::from_secs(60),
        std::time::Duration::from_millis(50),
        || {
            gate.lines()
                .into_iter()
                .find(|l| l.contains("configuration reload failed"))
        },
    )
    .expect("no reload failure logged");
    assert!(
        refused.contains("account kari@nowhere.test: cannot discover its servers"),
        "{refused}"
    );
    let out = gate.imap_login("ola@start.test", "local-pw");
    assert!(out.contains("\nauth OK"), "{out}");
    gate.assert_no_secrets(&["upstream-pw", "local-pw"]);

    // Nothing to find: mailgate run refuses to start and says which account and what to set.
    let nothing = config.replace("ola@start.test", "ola@nowhere.test");
    let e = match Mailgate::try_start(&nothing, &[], "text") {
        Ok(_) => panic!("mailgate started without servers for ola@nowhere.test"),
        Err(e) => e,
    };
    assert!(
        e.contains("account ola@nowhere.test: cannot discover its servers"),
        "{e}"
    );
    assert!(e.contains("[account.imap] server = \"host:port\""), "{e}");
}
