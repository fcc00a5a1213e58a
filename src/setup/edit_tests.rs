//! Edits checked on the file's text: the one table replaced, every other byte kept.

use super::super::{write, Credential, Plan, SetupError, Target};
use crate::discover::{Discovery, Found, Source};
use crate::secret::Secret;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

const HEAD: &str = "# my gateway\n[server]\nimap_listen = \"127.0.0.1:2143\" # local only\n\n# first, by hand\n[[account]]\nemail = \"a@example.no\"\nlocal_password_hash = \"x\"\n[account.imap]\nserver = \"h:993\"\npassword_env = \"P\"\n";
const OLD: &str = "\n# B@example.no — added by `mailgate setup`.\n[[account]]\nemail = \"B@example.no\"\nlocal_password_hash = \"y\"\n[account.imap]\nserver = \"old.example.no:993\"\ntls = \"implicit\"\n# The provider password, in a file only its owner can read (mode 0600)\npassword_file = \"state/credentials/B@example.no.password\"\n";
const TAIL: &str = "\n# metrics, by hand\n[metrics]\nlisten = \"127.0.0.1:9187\" # keep\n";

fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailgate.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn plan(email: &str, host: &str, credential: Credential) -> Plan {
    let found = |port| Found {
        host: host.into(),
        port,
        tls: crate::config::TlsMode::Starttls,
        username: "b-user".into(),
        source: Source::Given,
    };
    Plan {
        email: email.into(),
        found: Discovery {
            email: email.into(),
            preset: None,
            imap: found(143),
            smtp: Some(found(587)),
            notes: Vec::new(),
        },
        credential,
        ca_file: None,
        local_password_hash: HASH.into(),
        client: None,
    }
}

#[test]
fn an_edit_replaces_the_table_and_keeps_every_other_byte() {
    let text = format!("{HEAD}{OLD}{TAIL}");
    let (dir, path) = file(&text);
    let t = Target::open_edit(&path, "b@EXAMPLE.no").unwrap();
    assert!(t.is_edit());
    let p = plan("B@example.no", "new.example.no", Credential::Keep);
    let written = write(&t, &p, &dir.path().join("state")).unwrap();
    assert_eq!(written, None, "a kept password writes no credential file");
    let out = std::fs::read_to_string(&path).unwrap();
    let kept_above = format!("{HEAD}\n# B@example.no — added by `mailgate setup`.\n[[account]]\n");
    assert!(out.starts_with(&kept_above), "{out}");
    assert!(out.ends_with(TAIL), "{out}");
    let table = &out[kept_above.len() - "[[account]]\n".len()..out.len() - TAIL.len()];
    assert!(table.contains("server = \"new.example.no:143\""), "{table}");
    assert!(table.contains("server = \"new.example.no:587\""), "{table}");
    assert!(table.contains("username = \"b-user\""), "{table}");
    assert!(
        table.contains("password_file = \"state/credentials/B@example.no.password\""),
        "the kept password's line: {table}"
    );
    assert!(!table.contains("old.example.no"), "{table}");
    assert!(
        !table.contains("added by"),
        "one note, the old one: {table}"
    );
}

#[test]
fn a_new_password_rewrites_the_credential_file() {
    let text = format!("{HEAD}{OLD}{TAIL}");
    let (dir, path) = file(&text);
    let t = Target::open_edit(&path, "b@example.no").unwrap();
    let p = plan(
        "B@example.no",
        "new.example.no",
        Credential::Password(Secret::new("new-pw".into())),
    );
    let state = dir.path().join("state");
    let written = write(&t, &p, &state).unwrap().unwrap();
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "new-pw\n");
    let out = std::fs::read_to_string(&path).unwrap();
    assert!(out.starts_with(HEAD) && out.ends_with(TAIL), "{out}");
    assert!(out.contains("password_file = \"state/credentials/B@example.no.password\""));
}

#[test]
fn keep_needs_an_existing_password() {
    let text = format!("{HEAD}{OLD}{TAIL}");
    let (dir, path) = file(&text);
    // A new account has nothing to keep.
    let t = Target::open(&path, "c@example.no").unwrap();
    let p = plan("c@example.no", "h", Credential::Keep);
    assert!(matches!(
        write(&t, &p, dir.path()),
        Err(SetupError::Invalid(_))
    ));
    assert!(matches!(
        Target::open_edit(&path, "nobody@example.no"),
        Err(SetupError::NoAccount { .. })
    ));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn keep_on_an_oauth_account_keeps_its_sign_in_settings() {
    let oauth = "\n[[account]]\nemail = \"c@example.no\"\nlocal_password_hash = \"z\"\n[account.imap]\nserver = \"old.example.no:993\"\n[account.oauth2]\nclient_id = \"app\"\nauthorize_url = \"https://idp.example.no/a\"\ntoken_url = \"https://idp.example.no/t\"\nscopes = [\"mail\"]\n";
    let text = format!("{HEAD}{oauth}{TAIL}");
    let (dir, path) = file(&text);
    let t = Target::open_edit(&path, "c@example.no").unwrap();
    write(
        &t,
        &plan("c@example.no", "new.example.no", Credential::Keep),
        dir.path(),
    )
    .unwrap();
    let after = std::fs::read_to_string(&path).unwrap();
    assert!(after.starts_with(HEAD) && after.ends_with(TAIL), "{after}");
    assert!(after.contains("server = \"new.example.no:143\""), "{after}");
    assert!(
        after.contains("[account.oauth2]\nclient_id = \"app\""),
        "{after}"
    );
    assert!(
        after.contains("token_url = \"https://idp.example.no/t\""),
        "{after}"
    );
    let account = &after[HEAD.len()..];
    assert!(!account.contains("password_file") && !account.contains("password ="));
}

#[test]
fn an_edit_keeps_the_settings_it_does_not_ask_about() {
    let extras = "[account.folders]\nclient = \"outlook\"\n";
    let old = OLD
        .replace(
            "password_file",
            "ca_file = \"certs/old-ca.pem\"\ntls_server_name = \"mail.example.no\"\npassword_file",
        )
        .replace(
            "local_password_hash = \"y\"\n",
            "local_password_hash = \"y\"\naliases = [\"b.alias@example.no\"]\n",
        );
    let text = format!("{HEAD}{old}{extras}{TAIL}");
    let (dir, path) = file(&text);
    let t = Target::open_edit(&path, "b@example.no").unwrap();
    let p = plan("B@example.no", "new.example.no", Credential::Keep);
    write(&t, &p, &dir.path().join("state")).unwrap();
    let out = std::fs::read_to_string(&path).unwrap();
    let doc: toml_edit::DocumentMut = out.parse().unwrap();
    let b = &doc["account"].as_array_of_tables().unwrap().get(1).unwrap();
    assert_eq!(
        b["aliases"].to_string().trim(),
        "[\"b.alias@example.no\"]",
        "{out}"
    );
    assert_eq!(b["folders"]["client"].as_str(), Some("outlook"), "{out}");
    assert_eq!(
        b["imap"]["ca_file"].as_str(),
        Some("certs/old-ca.pem"),
        "{out}"
    );
    assert_eq!(
        b["imap"]["tls_server_name"].as_str(),
        Some("mail.example.no")
    );
    assert_eq!(b["imap"]["server"].as_str(), Some("new.example.no:143"));
    assert!(out.ends_with(TAIL), "{out}");
}
