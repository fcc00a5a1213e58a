//! `[store]` and the accounts of the shared store, without a database: the table's checks,
//! how stored accounts join the file's, and the tables `mailgate account add` stores.

use super::*;
use base64::Engine as _;
use std::os::unix::fs::PermissionsExt;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

fn table(email: &str) -> String {
    format!("email = \"{email}\"\nlocal_password_hash = \"{HASH}\"\n[imap]\nserver = \"127.0.0.1:1143\"\ntls = \"none\"\nallow_plaintext = true\npassword = \"pw\"\n")
}

fn stored(email: &str, text: &str) -> StoredAccount {
    StoredAccount {
        email: email.into(),
        text: crate::secret::Secret::new(text.into()),
    }
}

/// A config with `[store]` (a key file in `dir`) and the file's `accounts` text.
fn with_store(dir: &Path, accounts: &str) -> (String, PathBuf) {
    let key = dir.join("store.key");
    let b64 = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
    std::fs::write(&key, b64).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = format!(
        "[store]\npostgres = \"host=127.0.0.1 user=m\"\nkey_file = \"store.key\"\n{accounts}"
    );
    (text, dir.join("mailgate.toml"))
}

#[test]
fn store_accounts_join_the_files_and_the_file_wins() {
    let dir = tempfile::tempdir().unwrap();
    let file_account = format!(
        "[[account]]\n{}",
        table("ola@example.no").replace("[imap]", "[account.imap]")
    );
    let (text, path) = with_store(dir.path(), &file_account);
    let rows = [
        stored("ola@example.no", &table("ola@example.no")),
        stored("kari@example.no", &table("Kari@Example.no")),
        stored("per@example.no", &table("someone@example.no")),
        stored(
            "bad@example.no",
            "email = \"bad@example.no\"\nlocal_password_hash = \"x\"\n",
        ),
    ];
    let c = Config::parse_stored(&text, &path, &HashMap::new(), &rows).unwrap();
    let emails: Vec<&str> = c.accounts.iter().map(|a| a.email.as_str()).collect();
    assert_eq!(emails, ["ola@example.no", "Kari@Example.no"]);
    assert!(c.account("kari@example.no").is_some());
    let skipped: HashMap<&str, &str> = c
        .store_skipped
        .iter()
        .map(|(e, why)| (e.as_str(), why.as_str()))
        .collect();
    assert!(skipped["ola@example.no"].contains("the file's is used"));
    assert!(skipped["per@example.no"].contains("the address the store keeps it under"));
    assert!(skipped["bad@example.no"].starts_with("store:bad@example.no:"));
    assert!(c.store.is_some());
    // With a store the file needs no account.
    let (alone, path) = with_store(dir.path(), "");
    assert!(Config::parse(&alone, &path).unwrap().accounts.is_empty());
}

#[test]
fn store_table_checks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailgate.toml");
    let e = Config::parse("[store]\npostgres = \"host=x\"\n", &path).unwrap_err();
    assert!(
        e.to_string()
            .contains("store.key_file: set key_file or key_env"),
        "{e}"
    );
    let e = Config::parse("[store]\nkey_env = \"MAILGATE_TEST_NO_SUCH_VAR\"\n", &path).unwrap_err();
    assert!(
        e.to_string()
            .contains("store.postgres: set one of postgres"),
        "{e}"
    );
    let key = dir.path().join("open.key");
    std::fs::write(
        &key,
        base64::engine::general_purpose::STANDARD.encode([1u8; 32]),
    )
    .unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = "[store]\npostgres = \"host=x\"\nkey_file = \"open.key\"\n";
    let e = Config::parse(text, &path).unwrap_err();
    assert!(e.to_string().contains("chmod 600"), "{e}");
}

/// `mailgate account add`'s tables: checked as the file's, stored as documents of their own
/// that load back to the same account.
#[test]
fn account_tables_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let server = Config::parse_server("", &dir.path().join("m.toml")).unwrap();
    let input = format!(
        "[[account]]\n{}",
        table("Ola@Example.no").replace("[imap]", "[account.imap]")
    );
    let tables = account_tables(&input, Path::new("-"), &server, dir.path()).unwrap();
    assert_eq!(tables.len(), 1);
    assert_eq!(tables[0].email, "ola@example.no");
    let (text, path) = with_store(dir.path(), "");
    let c = Config::parse_stored(&text, &path, &HashMap::new(), &tables).unwrap();
    assert!(c.store_skipped.is_empty(), "{:?}", c.store_skipped);
    assert_eq!(
        c.account("ola@example.no")
            .unwrap()
            .imap
            .credential
            .password()
            .unwrap()
            .expose(),
        "pw"
    );
    let e = account_tables("[server]\n", Path::new("-"), &server, dir.path()).unwrap_err();
    assert!(e.to_string().contains("unknown field `server`"), "{e}");
}
