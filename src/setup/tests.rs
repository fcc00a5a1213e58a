//! The file edits, checked on text: what is appended, what is kept, what is refused.

use super::account::{account_table, appended, CredentialLine};
use super::*;
use crate::config::{Config, TlsMode};
use crate::discover::{Found, Source};
use toml_edit::DocumentMut;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

fn target(text: &str, email: &str) -> Result<Target, SetupError> {
    thread_local!(static DIR: tempfile::TempDir = tempfile::tempdir().unwrap());
    let path = DIR.with(|d| d.path().join(format!("{}.toml", rand::random::<u32>())));
    std::fs::write(&path, text).unwrap();
    Target::open(&path, email)
}

fn plan(email: &str, found: Discovery) -> Plan {
    Plan {
        client: None,
        email: email.into(),
        found,
        credential: Credential::Password(Secret::new("app-pw".into())),
        ca_file: None,
        local_password_hash: HASH.into(),
    }
}

/// ola@icloud.com, by the icloud preset.
fn icloud_plan() -> Plan {
    plan(
        "ola@icloud.com",
        crate::discover::from_preset(
            "ola@icloud.com",
            crate::provider::by_id("icloud").unwrap(),
            Source::Domain("icloud"),
        ),
    )
}

const FILE: &str = "# my gateway\n[server]\nimap_listen = \"127.0.0.1:2143\" # local only\n\n[[account]]\nemail = \"a@example.no\"\nlocal_password_hash = \"x\"\n[account.imap]\nserver = \"h:993\"\npassword_env = \"P\"\n\n[metrics]\nlisten = \"127.0.0.1:9187\"\n";

#[test]
fn appends_after_everything_and_keeps_the_file() {
    let t = target(FILE, "ola@icloud.com").unwrap();
    let p = icloud_plan();
    let out = appended(
        &t,
        account_table(
            &p,
            CredentialLine::File("state/credentials/ola@icloud.com.password"),
        ),
    )
    .unwrap();
    assert!(out.starts_with(FILE), "{out}");
    let added = &out[FILE.len()..];
    assert!(
        added.contains("[[account]]\nemail = \"ola@icloud.com\""),
        "{added}"
    );
    assert!(added.contains("provider = \"icloud\""), "{added}");
    assert!(
        added.contains("password_file = \"state/credentials/ola@icloud.com.password\""),
        "{added}"
    );
    assert!(!added.contains("server ="), "{added}");
    // And mailgate loads it.
    let text = out
        .replace("password_env = \"P\"", "password = \"p\"")
        .replace(
            "local_password_hash = \"x\"",
            &format!("local_password_hash = \"{HASH}\""),
        );
    let e = Config::parse(&text, &t.path).unwrap_err().to_string();
    assert!(
        e.contains("password_file") && e.contains("cannot read"),
        "{e}"
    );
}

/// A file that ends with a comment, or without a newline, keeps every byte: toml_edit
/// would move a trailing comment below the new account.
#[test]
fn a_file_ending_with_a_comment_or_without_a_newline_is_kept() {
    let p = icloud_plan();
    let table = || account_table(&p, CredentialLine::File("x.password"));
    for old in [
        format!("{FILE}# [[account]]\n# email = \"sketch@example.no\"\n"),
        FILE.trim_end().to_owned(),
        "# only a comment".to_owned(),
        String::new(),
    ] {
        let t = target(&old, "ola@icloud.com").unwrap();
        let out = appended(&t, table()).unwrap();
        assert!(out.starts_with(&old), "{out}");
        let doc: DocumentMut = out.parse().unwrap();
        let accounts = doc["account"].as_array_of_tables().unwrap();
        let last = accounts.iter().last().unwrap();
        assert_eq!(last["email"].as_str(), Some("ola@icloud.com"), "{out}");
        assert_eq!(last["imap"]["password_file"].as_str(), Some("x.password"));
    }
    // `account` as an inline array cannot take an [[account]] after it: refused, with
    // nothing written.
    let t = target("account = []\n", "ola@icloud.com").unwrap();
    let e = appended(&t, table()).unwrap_err().to_string();
    assert!(e.contains("add the account by hand"), "{e}");
}

#[test]
fn discovered_servers_are_written_out_and_duplicates_refused() {
    let t = target(FILE, "ola@example.test").unwrap();
    let found = Discovery {
        email: "ola@example.test".into(),
        preset: None,
        imap: Found {
            host: "imap.example.test".into(),
            port: 143,
            tls: TlsMode::Starttls,
            username: "ola".into(),
            source: Source::Guess,
        },
        smtp: Some(Found {
            host: "127.0.0.1".into(),
            port: 25,
            tls: TlsMode::None,
            username: "ola@example.test".into(),
            source: Source::Given,
        }),
        notes: vec![],
    };
    let cfg = t
        .load_alone(
            &plan("ola@example.test", found),
            CredentialLine::Inline(&Secret::new("pw".into())),
        )
        .unwrap();
    let a = &cfg.accounts[0];
    assert_eq!(
        (
            a.imap.address(),
            a.imap.target.tls,
            a.imap.username.as_str()
        ),
        ("imap.example.test:143".into(), TlsMode::Starttls, "ola")
    );
    let s = a.smtp.as_ref().unwrap();
    assert_eq!(
        (
            s.address(),
            s.target.tls,
            s.credential.password().unwrap().expose()
        ),
        ("127.0.0.1:25".into(), TlsMode::None, "pw")
    );
    assert_eq!(cfg.server.imap_listen.port(), 2143);
    assert!(matches!(
        target(FILE, "A@Example.NO"),
        Err(SetupError::Duplicate { .. })
    ));
    assert!(matches!(
        target("[server\n", "a@b.c"),
        Err(SetupError::Config { .. })
    ));
}

/// The listeners change in place, comments kept; a missing one is added to [server]; a
/// file without [server] is refused.
#[test]
fn listen_addresses_change_one_line() {
    let mut t = target(FILE, "x@y.z").unwrap();
    t.set_listen("imap_listen", "127.0.0.1:3143".parse().unwrap())
        .unwrap();
    assert_eq!(
        t.text,
        FILE.replace(
            "\"127.0.0.1:2143\" # local only",
            "\"127.0.0.1:3143\" # local only"
        )
    );
    t.set_listen("smtp_listen", "127.0.0.1:3587".parse().unwrap())
        .unwrap();
    let server = t.server().unwrap();
    assert_eq!(
        (server.imap_listen.port(), server.smtp_listen.port()),
        (3143, 3587)
    );
    let mut none = target("# nothing\n", "x@y.z").unwrap();
    let e = none
        .set_listen("imap_listen", "127.0.0.1:3143".parse().unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no [server] table"), "{e}");
}

#[test]
fn a_missing_file_starts_from_the_defaults() {
    let path = tempfile::tempdir().unwrap().path().join("new.toml");
    let t = Target::open(&path, "ola@icloud.com").unwrap();
    assert_eq!(t.text, NEW_FILE);
    assert_eq!(t.server().unwrap().imap_listen.port(), 1143);
}

#[test]
fn the_shipped_example_account_is_removed_whole_and_only_unchanged() {
    let path = tempfile::tempdir().unwrap().path().join("new.toml");
    let mut t = Target::open(&path, "ola@icloud.com").unwrap();
    assert!(t.has_example());
    t.remove_example().unwrap();
    assert!(!t.has_example());
    // The block is the file's end: what stays is the shipped text before it, metrics on,
    // no account left (so the one setup appends is the only one).
    assert!(NEW_FILE.starts_with(&t.text), "{}", t.text);
    assert!(
        t.text
            .ends_with("# service_account_key_file = \"google-sa.json\"\n"),
        "{}",
        t.text
    );
    assert!(t.doc.get("metrics").is_some());
    assert!(t.doc.get("account").is_none());
    // An example made someone's own (another address) is theirs: never removed.
    let edited = NEW_FILE.replace("email = \"you@gmail.com\"", "email = \"me@gmail.com\"");
    let mut t = target(&edited, "ola@icloud.com").unwrap();
    assert!(!t.has_example());
    t.remove_example().unwrap();
    assert_eq!(t.text, edited);
    // A file without the block is left alone.
    let mut t = target(FILE, "ola@icloud.com").unwrap();
    t.remove_example().unwrap();
    assert_eq!(t.text, FILE);
}

#[test]
fn instructions_and_generated_passwords() {
    let t = target(FILE, "x@y.z").unwrap();
    let s = t.server().unwrap();
    let text = client_instructions(&s, "x@y.z", None, true);
    assert!(text.contains("server 127.0.0.1  port 2143"), "{text}");
    assert!(text.contains("port 1587"), "{text}");
    let text = client_instructions(&s, "x@y.z", None, false);
    assert!(
        text.contains("outgoing mail (SMTP): none (no SMTP server was set up"),
        "{text}"
    );
    assert!(!text.contains("1587"), "{text}");
    let a = generate_password();
    assert_eq!(a.expose().len(), 20);
    assert_ne!(a, generate_password());
}

/// For the shared store: the file's table with the provider password inline, read back as
/// `mailgate account add` reads it and loaded as a node loads it; an OAuth account holds no
/// password; an account that does not validate is refused.
#[test]
fn the_store_gets_the_table_with_the_password_inline() {
    let t = target(FILE, "ola@icloud.com").unwrap();
    assert!(t.store().unwrap().is_none());
    let s = store_account(&t, &icloud_plan()).unwrap();
    assert_eq!(s.email, "ola@icloud.com");
    let table: toml::Table = toml::from_str(s.text.expose()).unwrap();
    assert_eq!(table["provider"].as_str(), Some("icloud"));
    assert_eq!(table["imap"]["password"].as_str(), Some("app-pw"));
    assert!(!s.text.expose().contains("password_file"), "{table}");
    let node = "[server]\nallow_no_accounts = true\n";
    let cfg =
        Config::parse_stored(node, &t.path, &Default::default(), std::slice::from_ref(&s)).unwrap();
    let a = cfg.account("ola@icloud.com").unwrap();
    assert_eq!(a.imap.credential.password().unwrap().expose(), "app-pw");

    let mut oauth = icloud_plan();
    oauth.credential = Credential::OAuth {
        provider: None,
        endpoints: Some((
            "https://idp.example.no/authorize".into(),
            "https://idp.example.no/token".into(),
        )),
        scopes: vec!["mail".into()],
        client_id: "cid".into(),
        client_secret_env: None,
        tenant: None,
    };
    let s = store_account(&t, &oauth).unwrap();
    let table: toml::Table = toml::from_str(s.text.expose()).unwrap();
    assert_eq!(table["oauth2"]["client_id"].as_str(), Some("cid"));
    let imap = table.get("imap").and_then(|i| i.as_table());
    assert!(imap.is_none_or(|i| !i.contains_key("password")), "{table}");

    let mut bad = icloud_plan();
    bad.ca_file = Some("/nonexistent/ca.pem".into());
    assert!(matches!(
        store_account(&t, &bad),
        Err(SetupError::Invalid(_))
    ));
}
