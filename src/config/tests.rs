//! The config file's validation, driven by text.

use super::endpoint::split_host_port;
use super::*;
use std::time::Duration;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/mailgate/test.toml"))
}

fn account(extra_imap: &str) -> String {
    format!(
        "[[account]]\nemail = \"ola@example.no\"\nlocal_password_hash = \"{HASH}\"\n\n[account.imap]\nserver = \"imap.example.no:993\"\npassword = \"x\"\n{extra_imap}"
    )
}

#[test]
fn minimal_account_gets_defaults() {
    let c = parse(&account("")).unwrap();
    assert_eq!(c.server.imap_listen.to_string(), "127.0.0.1:1143");
    let a = c.account("OLA@Example.no").unwrap();
    assert_eq!(a.imap.target.host, "imap.example.no");
    assert_eq!(a.imap.target.port, 993);
    assert_eq!(a.imap.target.tls, TlsMode::Implicit);
    assert_eq!(a.imap.username, "ola@example.no");
    assert_eq!(a.imap.credential.password().unwrap().expose(), "x");
    let t = c.server.throttle;
    assert_eq!(
        (t.threshold, t.max_delay, t.lockout),
        (5, Duration::from_secs(15), Duration::from_secs(300))
    );
    assert!(c.server.tls.is_none() && c.server.imaps_listen.is_none());
}

#[test]
fn preauth_limits_default_to_half_of_max_sessions() {
    let c = parse(&format!("[server]\nmax_sessions = 40\n{}", account(""))).unwrap();
    let s = &c.server;
    assert_eq!((s.max_preauth_sessions, s.max_connections_per_ip), (20, 20));
    assert_eq!(
        (s.preauth_timeout, s.preauth_deadline, s.max_bad_commands),
        (Duration::from_secs(60), Duration::from_secs(180), 10)
    );
    let e = parse(&format!(
        "[server]\nmax_sessions = 40\nmax_preauth_sessions = 41\n{}",
        account("")
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("/etc/mailgate/test.toml:3:24: server.max_preauth_sessions: must be between 1 and max_sessions (40)"),
        "{e}"
    );
}

#[test]
fn bad_enum_names_file_line_and_field() {
    let e = parse(&account("tls = \"sometimes\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("/etc/mailgate/test.toml:8:7: account[0].imap.tls:"),
        "{e}"
    );
    assert!(e.contains("sometimes"), "{e}");
}

#[test]
fn unknown_field_is_rejected_with_path() {
    let text = format!("{}\n[[account]]\nemail = \"b@x.no\"\nlocal_password_hash = \"{HASH}\"\n[account.imap]\nserver = \"h:1\"\npassword = \"y\"\npasword = \"z\"\n", account(""));
    let e = parse(&text).unwrap_err().to_string();
    assert!(e.contains(":15:1: account[1].imap.pasword:"), "{e}");
    assert!(e.contains("unknown field"), "{e}");
}

#[test]
fn plaintext_needs_consent() {
    let e = parse(&account("tls = \"none\"\n")).unwrap_err().to_string();
    assert!(e.contains(":8:1: account[0].imap.tls"), "{e}");
    assert!(parse(&account("tls = \"none\"\nallow_plaintext = true\n")).is_ok());
}

#[test]
fn one_credential_source_only() {
    let e = parse(&account("password_env = \"X\"\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("only one of"), "{e}");
}

#[test]
fn missing_env_is_named_but_value_never_shown() {
    let text = account("").replace(
        "password = \"x\"",
        "password_env = \"MAILGATE_TEST_UNSET_VAR\"",
    );
    let e = parse(&text).unwrap_err().to_string();
    assert!(e.contains("MAILGATE_TEST_UNSET_VAR"), "{e}");
}

#[test]
fn bad_hash_and_duplicates() {
    let e = parse(&account("").replace(HASH, "plain"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("hash-password"), "{e}");
    let twice = format!("{}\n{}", account(""), account(""));
    assert!(parse(&twice).unwrap_err().to_string().contains("twice"));
}

#[test]
fn smtp_defaults_and_credential_reuse() {
    let c = parse(&account("")).unwrap();
    assert_eq!(c.server.smtp_listen.to_string(), "127.0.0.1:1587");
    assert_eq!(c.server.max_message_size, 50 * 1024 * 1024);
    assert!(c.accounts[0].smtp.is_none());
    let text = format!(
        "{}\n[account.smtp]\nserver = \"smtp.example.no:587\"\ntls = \"starttls\"\n",
        account("")
    );
    let c = parse(&text).unwrap();
    let smtp = c.accounts[0].smtp.as_ref().unwrap();
    assert_eq!(smtp.address(), "smtp.example.no:587");
    assert_eq!(smtp.target.tls, TlsMode::Starttls);
    assert_eq!(smtp.credential.password().unwrap().expose(), "x");
    assert_eq!(smtp.username, "ola@example.no");
    let own = format!("{text}password = \"y\"\n");
    let c = parse(&own).unwrap();
    assert_eq!(
        c.accounts[0]
            .smtp
            .as_ref()
            .unwrap()
            .credential
            .password()
            .unwrap()
            .expose(),
        "y"
    );
}

#[test]
fn smtp_errors_name_the_smtp_table() {
    let text = format!(
        "{}\n[account.smtp]\nserver = \"smtp.example.no:587\"\ntls = \"none\"\n",
        account("")
    );
    let e = parse(&text).unwrap_err().to_string();
    assert!(e.contains("account[0].smtp.tls"), "{e}");
    let e = parse(&format!(
        "[server]\nsmtp_listen = \"nope\"\n{}",
        account("")
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains(":2:15: server.smtp_listen:"), "{e}");
}

#[test]
fn host_port_forms() {
    assert_eq!(split_host_port("a.b:993"), Some(("a.b".into(), 993)));
    assert_eq!(split_host_port("[::1]:143"), Some(("::1".into(), 143)));
    assert_eq!(split_host_port("::1:143"), None);
    assert_eq!(split_host_port("a.b"), None);
    let c = parse(&account("").replace(
        "server = \"imap.example.no:993\"",
        "host = \"h\"\nport = 143",
    ))
    .unwrap();
    assert_eq!(c.accounts[0].imap.address(), "h:143");
}

fn bare(body: &str) -> String {
    format!("[[account]]\nemail = \"ola@icloud.com\"\nlocal_password_hash = \"{HASH}\"\n{body}")
}

#[test]
fn presets_fill_what_the_file_leaves_out() {
    // Domain preset, credential only: both servers from the preset, IMAP user = local part.
    let c = parse(&bare("[account.imap]\npassword = \"x\"\n")).unwrap();
    let a = &c.accounts[0];
    assert_eq!(
        (a.imap.address(), a.imap.target.tls),
        ("imap.mail.me.com:993".into(), TlsMode::Implicit)
    );
    assert_eq!(a.imap.username, "ola");
    let smtp = a.smtp.as_ref().unwrap();
    assert_eq!(
        (smtp.address(), smtp.target.tls),
        ("smtp.mail.me.com:587".into(), TlsMode::Starttls)
    );
    assert_eq!(
        (
            smtp.username.as_str(),
            smtp.credential.password().unwrap().expose()
        ),
        ("ola@icloud.com", "x")
    );
    assert_eq!(a.source, "preset icloud (by email domain)");
    // A named preset for a custom domain; explicit fields win one by one.
    let text = bare("provider = \"gmail\"\n[account.imap]\npassword = \"x\"\nusername = \"other\"\n[account.smtp]\nserver = \"smtp.gmail.com:587\"\ntls = \"starttls\"\n")
        .replace("ola@icloud.com", "ola@example.no");
    let c = parse(&text).unwrap();
    let a = &c.accounts[0];
    assert_eq!(
        (a.imap.address(), a.imap.username.as_str()),
        ("imap.gmail.com:993".into(), "other")
    );
    let smtp = a.smtp.as_ref().unwrap();
    assert_eq!(
        (smtp.address(), smtp.target.tls),
        ("smtp.gmail.com:587".into(), TlsMode::Starttls)
    );
    assert_eq!(a.source, "preset gmail (named in the config)");
    // A server written in the file without a provider keeps the old meaning: no preset.
    let c = parse(&account("")).unwrap();
    assert!(c.accounts[0].smtp.is_none());
    assert_eq!(c.accounts[0].source, "config");
}

#[test]
fn unknown_provider_lists_the_known_ones() {
    let e = parse(&bare(
        "provider = \"gmial\"\n[account.imap]\npassword = \"x\"\n",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("/etc/mailgate/test.toml:4:1: account[0].provider: unknown provider `gmial`; known: gmail, microsoft365"),
        "{e}"
    );
}

#[test]
fn unknown_domains_wait_for_discovery() {
    let text = bare("[account.imap]\npassword = \"x\"\n").replace("icloud.com", "example.test");
    let c = parse(&format!("{text}\n{}", account(""))).unwrap();
    assert_eq!(c.undiscovered, ["ola@example.test"]);
    assert_eq!(c.accounts.len(), 1);
    assert!(c.account("ola@example.test").is_none());
    assert!(c.account("ola@example.no").is_some());
    let mut found = HashMap::new();
    let d = crate::provider::Discovery {
        email: "ola@example.test".into(),
        preset: None,
        imap: crate::provider::Found {
            host: "imap.example.test".into(),
            port: 143,
            tls: TlsMode::Starttls,
            username: "ola".into(),
            source: crate::provider::Source::Guess,
        },
        smtp: None,
        notes: vec![],
    };
    found.insert("ola@example.test".to_owned(), d);
    let c = Config::parse_with(&text, Path::new("/m.toml"), &found).unwrap();
    let a = c.account("ola@example.test").unwrap();
    assert_eq!(
        (a.imap.address(), a.imap.target.tls),
        ("imap.example.test:143".into(), TlsMode::Starttls)
    );
    assert!(a.smtp.is_none() && c.undiscovered.is_empty());
    assert_eq!(a.source, "guess (a server answered)");
}

#[test]
fn listeners_off_loopback_need_tls() {
    let e = parse(&format!(
        "[server]\nimap_listen = \"0.0.0.0:1143\"\n{}",
        account("")
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains(":2:15: server.imap_listen:"), "{e}");
    assert!(e.contains("in clear"), "{e}");
    let e = parse(&format!(
        "[server]\nsmtps_listen = \"127.0.0.1:1465\"\n{}",
        account("")
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("server.smtps_listen:"), "{e}");
    assert!(e.contains("[server.tls]"), "{e}");
}

#[test]
fn local_tls_files_are_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let text = |cert: &str, key: &str| {
        format!(
            "[server]\nimap_listen = \"0.0.0.0:0\"\nimaps_listen = \"127.0.0.1:0\"\n\n[server.tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n{}",
            account("")
        )
    };
    let path = dir.path().join("m.toml");
    let e = Config::parse(&text("missing.pem", "missing.key"), &path)
        .unwrap_err()
        .to_string();
    assert!(e.contains(":6:8: server.tls.cert:"), "{e}");
    let g = crate::cert::generate(dir.path(), &[], 2, false).unwrap();
    let e = Config::parse(&text(crate::cert::CERT_FILE, "missing.key"), &path)
        .unwrap_err()
        .to_string();
    assert!(e.contains(":7:7: server.tls.key:"), "{e}");
    let c = Config::parse(&text(crate::cert::CERT_FILE, crate::cert::KEY_FILE), &path).unwrap();
    let tls = c.server.tls.as_ref().unwrap();
    assert_eq!(tls.cert, g.cert);
    assert!(c.server.imaps_listen.is_some());
}

#[test]
fn warm_sessions_are_off_unless_set_and_bounded() {
    let c = parse(&account("")).unwrap();
    assert!(!c.server.warm_sessions.on());
    // As a table or as dotted keys under [server]: the same settings.
    for text in [
        "[server.warm_sessions]\nkeep_secs = 90\nper_account = 3\n",
        "[server]\nwarm_sessions.keep_secs = 90\nwarm_sessions.per_account = 3\n",
    ] {
        let w = parse(&format!("{text}{}", account("")))
            .unwrap()
            .server
            .warm_sessions;
        assert_eq!(
            (w.on(), w.keep, w.per_account, w.max_total, w.pre_open),
            (true, Duration::from_secs(90), 3, 1000, Duration::ZERO)
        );
    }
    let text = "[server.warm_sessions]\nkeep_secs = 30\npre_open_secs = 10\n";
    let w = parse(&format!("{text}{}", account("")))
        .unwrap()
        .server
        .warm_sessions;
    assert_eq!(w.pre_open, Duration::from_secs(10));
    for (text, want) in [
        (
            "keep_secs = 601",
            "2:13: server.warm_sessions.keep_secs: must be at most 600",
        ),
        (
            "per_account = 11",
            "2:15: server.warm_sessions.per_account: must be between 1 and 10",
        ),
        (
            "per_account = 0",
            "2:15: server.warm_sessions.per_account: must be between 1 and 10",
        ),
        (
            "max_total = 0",
            "2:13: server.warm_sessions.max_total: must be at least 1",
        ),
        (
            "keep_secs = 60\npre_open_secs = 121",
            "3:17: server.warm_sessions.pre_open_secs: must be at most 120",
        ),
        (
            "pre_open_secs = 5",
            "2:17: server.warm_sessions.pre_open_secs: needs keep_secs",
        ),
    ] {
        let e = parse(&format!("[server.warm_sessions]\n{text}\n{}", account("")))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("/etc/mailgate/test.toml:{want}")),
            "{e}"
        );
    }
}

/// Tables written as dotted keys are the same tables (toml gives them no span; the config
/// used to refuse them with "expected a borrowed string").
#[test]
fn dotted_key_tables_are_tables() {
    let dotted = format!(
        "[server]\nproxy_protocol.listeners = [\"imap\"]\nproxy_protocol.trusted = [\"127.0.0.1\"]\n\n\
         [[account]]\nemail = \"ola@example.no\"\nlocal_password_hash = \"{HASH}\"\n\
         imap.server = \"imap.example.no:993\"\nimap.password = \"x\"\nfolders.sent = \"Sent Items\"\n"
    );
    let c = parse(&dotted).unwrap();
    let proxy = c.server.proxy_protocol.as_ref().expect("proxy_protocol");
    assert_eq!(proxy.listeners, ["imap"]);
    let a = c.account("ola@example.no").unwrap();
    assert_eq!(a.imap.target.host, "imap.example.no");
    assert_eq!(a.imap.credential.password().unwrap().expose(), "x");
    // A table-level error of a dotted table still names the field.
    let e = parse(&dotted.replace("[\"imap\"]", "[]"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("server.proxy_protocol.listeners"), "{e}");
}
