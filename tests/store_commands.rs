//! The commands that read or write accounts, on a node with a shared store (`[store]`): a real
//! PostgreSQL (`tests/support/postgres.rs`), real Dovecot upstreams and the test identity
//! provider. `mailgate setup` writes the new account into the store (the config file stays byte
//! for byte) and a running node serves it without a restart; `mailgate check` and `check-config`
//! read the store's accounts and name a store they cannot reach; `mailgate account remove`
//! removes the OAuth tokens of the last account that signs in as their user, not before.
//!
//! Run: `cargo test --test store_commands`

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::config::toml_str;
use support::idp::CLIENT_ID;
use support::mailgate::{run, BIN};
use support::oauth_cli::authorize_code_as;
use support::postgres::{key_file, store_toml, Postgres};
use support::proc::{free_port, run_with_timeout, PROCESS_TIMEOUT};
use support::{Account, Dovecot, DovecotOpts, GateConfig, Idp, Mailgate, Upstream};
use tempfile::TempDir;

const EMAIL: &str = "ola@example.no";
const LOCAL_PW: &str = "Local-pw-5b21e0";
const UPSTREAM_PW: &str = "Upstream-pw-93d4c7";
/// The user who signs in (OAuth), and a shared mailbox that signs in as that user.
const USER: &str = "kari@example.no";
const SHARED: &str = "post@example.no";

/// A node's config file in `dir`: no accounts, the store of `pg` with `key`.
fn node_config(dir: &Path, pg_url_toml: &str) -> PathBuf {
    let path = dir.join("mailgate.toml");
    let file = GateConfig::new()
        .server("auth_failure_delay_ms", 0)
        .to_toml();
    fs::write(&path, format!("{file}{pg_url_toml}")).unwrap();
    path
}

/// `mailgate ARGS… --config CONFIG`.
fn mailgate(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let config = config.display().to_string();
    let mut all = args.to_vec();
    all.extend_from_slice(&["--config", &config]);
    run(&all, stdin.map(str::as_bytes))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: &Output) -> String {
    let text = text(out);
    assert!(out.status.success(), "{text}");
    text
}

/// `mailgate setup --non-interactive` for EMAIL at `dovecot` (IMAP without TLS, no SMTP), the
/// passwords in the environment.
fn setup(config: &Path, dovecot: &Dovecot) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["setup", "--non-interactive", "--config"])
        .arg(config)
        .args(["--email", EMAIL])
        .args(["--password-env", "SETUP_UPSTREAM"])
        .args(["--local-password-env", "SETUP_LOCAL"])
        .args(["--imap-server", &dovecot.imap_addr().to_string()])
        .args(["--imap-tls", "none"])
        .env("SETUP_UPSTREAM", UPSTREAM_PW)
        .env("SETUP_LOCAL", LOCAL_PW)
        .env("NO_COLOR", "1");
    run_with_timeout(cmd, None, PROCESS_TIMEOUT)
}

/// Waits until `node` answers `LOGIN EMAIL LOCAL_PW` with a status starting with `want`.
fn until_login(node: &Mailgate, want: &str) {
    support::nodes::until_login(node, EMAIL, LOCAL_PW, want);
}

/// `mailgate setup` on a node with a `[store]`: the tested account goes into the store (sealed,
/// the password inside it), the config file is not touched, a running node serves the account
/// without a signal, and a second set-up of the address is refused.
#[test]
fn setup_writes_the_account_into_the_store() {
    let pg = Postgres::start();
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user(EMAIL, UPSTREAM_PW);
    let dir = TempDir::new().unwrap();
    let key = key_file(dir.path(), 1);
    let config = node_config(dir.path(), &store_toml(&pg, &key));
    let before = fs::read(&config).unwrap();
    let node = Mailgate::start_file(&config, &[]);
    until_login(&node, "NO");

    let out = setup(&config, &dovecot);
    let shown = ok(&out);
    assert!(
        shown.contains(&format!(
            "Added {EMAIL} to the shared store (PostgreSQL); every node serves it within a second."
        )),
        "{shown}"
    );
    assert!(!shown.contains("SIGHUP"), "{shown}");
    for line in [
        "In the mail client:",
        "incoming mail (IMAP): server 127.0.0.1",
        "outgoing mail (SMTP): none (no SMTP server was set up",
        &format!("user name: {EMAIL}"),
        "password: the local password you chose",
    ] {
        assert!(shown.contains(line), "missing {line:?}:\n{shown}");
    }
    assert!(
        !shown.contains(UPSTREAM_PW) && !shown.contains(LOCAL_PW),
        "{shown}"
    );
    assert_eq!(
        fs::read(&config).unwrap(),
        before,
        "the config file changed"
    );
    assert!(
        !dir.path().join("state").join("credentials").exists(),
        "a credential file was written"
    );

    let listed = ok(&mailgate(&config, &["account", "list"], None));
    assert!(listed.contains(EMAIL), "{listed}");
    let rows = pg.psql("SELECT encode(sealed, 'escape') FROM mailgate_accounts");
    assert!(!rows.contains(UPSTREAM_PW), "the password in clear");
    until_login(&node, "OK");

    let again = setup(&config, &dovecot);
    let said = text(&again);
    assert!(!again.status.success(), "{said}");
    assert!(
        said.contains(&format!("the shared store already has an account {EMAIL}")),
        "{said}"
    );
    assert_eq!(fs::read(&config).unwrap(), before);
    edit_then_remove_in_the_store(&config, &dovecot, &pg);
    until_login(&node, "NO");
    assert_eq!(fs::read(&config).unwrap(), before);
}

/// The library's edit of a stored account (the password kept, tested live first) replaces
/// its row; its removal removes the row.
fn edit_then_remove_in_the_store(config: &Path, dovecot: &Dovecot, pg: &Postgres) {
    use mailgate::setup::{self, Credential, Manual, Place, Plan};
    mailgate::net::tls::install_crypto_provider();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let settings = mailgate::config::Config::load(config)
        .unwrap()
        .store
        .unwrap();
    let shared = rt
        .block_on(mailgate::pgstore::Shared::open(&settings))
        .unwrap();
    let target = rt
        .block_on(setup::open_edit_shared(config, EMAIL, Some(&shared)))
        .unwrap();
    assert!(target.is_edit());
    let imap = dovecot.imap_addr().to_string();
    let manual = Manual {
        imap: &imap,
        imap_tls: mailgate::config::TlsMode::None,
        smtp: None,
        username: None,
    };
    let plan = Plan {
        email: EMAIL.into(),
        found: setup::manual(EMAIL, &manual).unwrap(),
        credential: Credential::Keep,
        ca_file: None,
        local_password_hash: support::mailgate::cached_hash(LOCAL_PW),
        client: Some(mailgate::mailbox::Profile::Outlook),
    };
    rt.block_on(setup::live_test(&target, &plan)).unwrap();
    rt.block_on(setup::save_stored(&shared, &target, &plan))
        .unwrap();
    let (rows, _) = rt.block_on(shared.accounts()).unwrap();
    assert_eq!(rows.len(), 1);
    let text = rows[0].text.expose();
    assert!(text.contains("client = \"outlook\""), "the edit is stored");
    assert!(
        text.contains(UPSTREAM_PW),
        "the kept password is stored with it"
    );
    let removed = rt
        .block_on(setup::remove(config, EMAIL, Some(&shared)))
        .unwrap();
    assert_eq!(removed.from, Place::Store);
    assert_eq!(removed.tokens, setup::Tokens::None);
    assert_eq!(
        pg.psql("SELECT count(*) FROM mailgate_accounts").trim(),
        "0"
    );
}

/// `mailgate check EMAIL` and `check-config` read the store's accounts as `mailgate run` does;
/// `check-config` with a store that cannot be reached fails and names it.
#[test]
fn check_and_check_config_read_the_store() {
    let pg = Postgres::start();
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user(EMAIL, UPSTREAM_PW);
    let dir = TempDir::new().unwrap();
    let key = key_file(dir.path(), 2);
    let config = node_config(dir.path(), &store_toml(&pg, &key));
    let table = Account::password(EMAIL, LOCAL_PW)
        .imap(Upstream::plain(dovecot.imap_addr()).login(EMAIL, UPSTREAM_PW))
        .to_toml();
    ok(&mailgate(&config, &["account", "add", "-"], Some(&table)));

    let checked = ok(&mailgate(&config, &["check", EMAIL], None));
    assert!(checked.contains(EMAIL), "{checked}");
    assert!(!checked.contains(UPSTREAM_PW), "{checked}");
    let missing = mailgate(&config, &["check", "nobody@example.no"], None);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        text(&missing).contains("or the shared store (accounts: ola@example.no)"),
        "{}",
        text(&missing)
    );

    let valid = ok(&mailgate(&config, &["check-config"], None));
    assert!(
        valid.contains("OK (1 account: 0 in the file, 1 from the shared store)"),
        "{valid}"
    );

    // Nothing listens on this port.
    let port = free_port();
    let gone = format!(
        "\n[store]\npostgres = \"postgres://mailgate:{}@127.0.0.1:{port}/mailgate?sslmode=disable\"\nkey_file = {}\n",
        support::postgres::PASSWORD,
        toml_str(&key.display().to_string())
    );
    let other = TempDir::new().unwrap();
    let unreachable = node_config(other.path(), &gone);
    let out = mailgate(&unreachable, &["check-config"], None);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "{}: [store]: cannot connect to the shared store (PostgreSQL at 127.0.0.1:{port}, database mailgate)",
            unreachable.display()
        )),
        "{said}"
    );
    assert!(
        !said.contains("panicked") && !said.contains("no accounts"),
        "{said}"
    );
    assert!(!said.contains(support::postgres::PASSWORD), "{said}");
    let out = mailgate(&unreachable, &["check", EMAIL], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("[store]: cannot connect"),
        "{}",
        text(&out)
    );
}

/// An OAuth account in the store for `email` at the test identity provider, signing in as
/// `sign_in_as` when given.
fn oauth_account(email: &str, idp: &Idp, sign_in_as: Option<&str>) -> String {
    let a = Account::password(email, LOCAL_PW)
        .imap(Upstream::plain("127.0.0.1:1"))
        .oauth2("client_id", CLIENT_ID)
        .oauth2("authorize_url", idp.url("/authorize"))
        .oauth2("token_url", idp.url("/token"))
        .oauth2("scopes", ["mail"].as_slice());
    match sign_in_as {
        Some(who) => a.oauth2("sign_in_as", who).to_toml(),
        None => a.to_toml(),
    }
}

/// `mailgate account remove`: the user's tokens stay while another account signs in as the
/// user, and go with the last one; the output says which.
#[test]
fn account_remove_removes_tokens_no_account_uses() {
    let pg = Postgres::start();
    let idp = Idp::start(USER);
    let dir = TempDir::new().unwrap();
    let key = key_file(dir.path(), 3);
    let config = node_config(dir.path(), &store_toml(&pg, &key));
    let tables = format!(
        "{}{}",
        oauth_account(USER, &idp, None),
        oauth_account(SHARED, &idp, Some(USER))
    );
    ok(&mailgate(&config, &["account", "add", "-"], Some(&tables)));
    let authorized = authorize_code_as(&config, USER, false).join("\n");
    assert!(authorized.contains("Authorized"), "{authorized}");
    let tokens = || pg.psql("SELECT identity FROM mailgate_tokens");
    assert_eq!(tokens().trim(), USER);

    let removed = ok(&mailgate(&config, &["account", "remove", USER], None));
    assert!(
        removed.contains(&format!("Removed {USER} from the shared store.")),
        "{removed}"
    );
    assert!(
        removed.contains(&format!(
            "Kept the OAuth tokens of {USER}: {SHARED} still signs in as {USER}."
        )),
        "{removed}"
    );
    assert_eq!(tokens().trim(), USER);

    let removed = ok(&mailgate(&config, &["account", "remove", SHARED], None));
    assert!(
        removed.contains(&format!(
            "Removed the OAuth tokens of {USER}: no other account signs in as {USER}."
        )),
        "{removed}"
    );
    assert_eq!(tokens().trim(), "");
    let none = ok(&mailgate(&config, &["account", "list"], None));
    assert!(none.contains("no accounts"), "{none}");
}
