//! Removing from a file of three accounts: the rest of the text byte for byte, the credential
//! and token files gone.

use super::*;
use crate::oauth::store::{Grant, Tokens as Stored};
use crate::secret::Secret;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

fn account(email: &str, note: &str, rest: &str) -> String {
    format!(
        "\n# {note}\n[[account]]\nemail = \"{email}\"\nlocal_password_hash = \"{HASH}\"\n{rest}"
    )
}

fn tokens() -> Stored {
    Stored {
        grant: Grant::AuthorizationCode,
        refresh_token: Some(Secret::from("r")),
        access_token: Some(Secret::from("a")),
        expires_at: Some(1),
        refresh_expires_at: None,
        scope: None,
        last_refresh: None,
    }
}

/// The file: a head, three accounts (a password in a credential file, OAuth, an inline
/// password), a tail; and its state folder.
fn three(dir: &Path) -> (PathBuf, [String; 5]) {
    let state = dir.join("state");
    let cred = state.join("credentials/a@example.no.password");
    std::fs::create_dir_all(cred.parent().unwrap()).unwrap();
    std::fs::write(&cred, "pw\n").unwrap();
    let parts = [
        format!("# gateway\n[server]\nstate_dir = \"{}\" # here\n", state.display()),
        account(
            "a@example.no",
            "a — added by `mailgate setup`.",
            "[account.imap]\nserver = \"h:993\"\npassword_file = \"state/credentials/a@example.no.password\"\n",
        ),
        account(
            "b@gmail.com",
            "b, OAuth",
            "provider = \"gmail\"\n[account.oauth2]\nprovider = \"google\"\nclient_id = \"c\"\n",
        ),
        account(
            "c@example.no",
            "c, by hand",
            "[account.imap]\nserver = \"h:993\"\npassword = \"p\" # inline\n",
        ),
        "\n# the end\n[metrics]\nlisten = \"127.0.0.1:9187\"\n".to_owned(),
    ];
    let path = dir.join("mailgate.toml");
    std::fs::write(&path, parts.concat()).unwrap();
    (path, parts)
}

#[tokio::test]
async fn removes_the_table_and_its_credential_file_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (path, parts) = three(dir.path());
    let removed = remove(&path, "A@example.no", None).await.unwrap();
    assert_eq!(removed.from, Place::File(path.clone()));
    let cred = dir.path().join("state/credentials/a@example.no.password");
    assert_eq!(removed.credential_file.as_deref(), Some(cred.as_path()));
    assert!(!cred.exists());
    assert_eq!(removed.tokens, Tokens::None);
    let expected = [&parts[0], &parts[2], &parts[3], &parts[4]]
        .map(String::as_str)
        .concat();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
}

#[tokio::test]
async fn removes_an_oauth_accounts_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (path, parts) = three(dir.path());
    let state = dir.path().join("state");
    let store = crate::oauth::store::FileStore::open(&state).unwrap();
    store.save("b@gmail.com", &tokens()).unwrap();
    let token_file = store.path("b@gmail.com");
    assert!(token_file.exists());
    let removed = remove(&path, "b@gmail.com", None).await.unwrap();
    assert_eq!(
        removed.tokens,
        Tokens::Removed {
            identity: "b@gmail.com".into()
        }
    );
    assert!(!token_file.exists());
    let expected = [&parts[0], &parts[1], &parts[3], &parts[4]]
        .map(String::as_str)
        .concat();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
    assert!(matches!(
        remove(&path, "b@gmail.com", None).await,
        Err(SetupError::NoAccount { .. })
    ));
}
