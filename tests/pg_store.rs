//! The shared store on PostgreSQL end to end: a real PostgreSQL (`tests/support/postgres.rs`),
//! real Dovecot upstreams, the test identity provider, and two or more real `mailgate` nodes on
//! one database. Accounts added or removed with `mailgate account` (or plain SQL) serve on every
//! node without a signal; fifty logins over two nodes with an expiring token make one refresh;
//! with the database down, running sessions and logins that need nothing from it go on, and the
//! others get a temporary failure until it is back; TLS to the database is checked against its CA.
//!
//! Run: `cargo test --test pg_store`

mod support;

use std::path::Path;
use std::time::Duration;

use support::config::toml_str;
use support::imap_client::{assert_tagged, quote, tagged_status};
use support::nodes::{
    account, assert_one_refresh, authorize_expiring, cli_config, logins_at_once, ok,
};
use support::postgres::{key_file, store_toml, Postgres};
use support::proc::poll;
use support::{Account, Dovecot, DovecotOpts, GateConfig, Idp, Mailgate, Upstream};
use tempfile::TempDir;

const EMAIL: &str = "ola@example.no";
const OAUTH_EMAIL: &str = "kari@example.no";
const LOCAL_PW: &str = "Local-pw-71c3b2";
const UPSTREAM_PW: &str = "Upstream-pw-4f09aa";
/// How long a change may take to reach a node before the test fails (the behaviour asserted is
/// that it arrives; this only bounds the wait).
const PROPAGATION: Duration = Duration::from_secs(15);

/// The config of a node: no accounts in the file, the store with `key`.
fn node_toml(pg: &Postgres, key: &Path) -> String {
    // The tests poll logins until a change arrives: the failures on the way must not lock the
    // account out (throttling has its own tests).
    let file = GateConfig::new()
        .server("auth_failure_delay_ms", 0)
        .server("login_throttle_threshold", 1000)
        .to_toml();
    format!("{file}{}", store_toml(pg, key))
}

fn node(pg: &Postgres, key: &Path) -> Mailgate {
    Mailgate::start(&node_toml(pg, key))
}

fn password_account(dovecot: &Dovecot) -> Account {
    let imap =
        Upstream::plain(format!("127.0.0.1:{}", dovecot.imap_port)).login(EMAIL, UPSTREAM_PW);
    Account::password(EMAIL, LOCAL_PW).imap(imap)
}

fn oauth_account(dovecot: &Dovecot, idp: &Idp) -> Account {
    support::nodes::oauth_account(OAUTH_EMAIL, LOCAL_PW, dovecot.imap_addr(), idp)
}

/// The tagged status of `LOGIN email LOCAL_PW` on `node` (`OK …`, `NO […] …`).
fn login(node: &Mailgate, email: &str) -> String {
    let mut c = node.connect();
    let r = c.command("L1", &format!("LOGIN {} {}", quote(email), quote(LOCAL_PW)));
    tagged_status(&r, "L1")
}

/// Waits until `node` answers a login of `email` with a status starting with `want`.
fn until_login(node: &Mailgate, email: &str, want: &str) {
    support::nodes::until_login(node, email, LOCAL_PW, want);
}

/// Accounts added (or changed) with `mailgate account add` on one node serve on the other
/// without a signal; sealed in the database; removal (by the command or plain SQL) refuses them on both,
/// while a session begun before keeps its account.
#[test]
fn accounts_change_on_every_node_without_a_signal() {
    let pg = Postgres::start();
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user(EMAIL, UPSTREAM_PW);
    let keys = TempDir::new().unwrap();
    let key = key_file(keys.path(), 1);
    let a = node(&pg, &key);
    let b = node(&pg, &key);
    assert!(login(&b, EMAIL).starts_with("NO"));

    let table = password_account(&dovecot).to_toml();
    let added = ok(&account(&a.config_path, &["add", "-"], Some(&table)));
    assert!(added.contains(&format!("Stored {EMAIL}")), "{added}");
    until_login(&b, EMAIL, "OK");
    assert!(login(&a, EMAIL).starts_with("OK"));

    let rows = pg.psql("SELECT email, encode(sealed, 'hex') FROM mailgate_accounts");
    assert!(rows.starts_with(EMAIL), "{rows}");
    let clear = [UPSTREAM_PW, "local_password_hash", "127.0.0.1"];
    for secret in clear {
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(
            !rows.contains(secret) && !rows.contains(&hex),
            "{secret} in clear"
        );
    }
    let listed = ok(&account(&a.config_path, &["list"], None));
    assert!(listed.contains(EMAIL), "{listed}");

    let mut held = b.connect();
    let r = held.command("L1", &format!("LOGIN {} {}", quote(EMAIL), quote(LOCAL_PW)));
    assert_tagged(&r, "L1", "OK");
    let removed = ok(&account(&a.config_path, &["remove", EMAIL], None));
    assert!(removed.contains("Removed"), "{removed}");
    until_login(&a, EMAIL, "NO");
    until_login(&b, EMAIL, "NO");
    assert_tagged(&held.command("s1", "SELECT INBOX"), "s1", "OK");

    // Plain SQL edits notify the nodes too.
    ok(&account(&b.config_path, &["add", "-"], Some(&table)));
    until_login(&a, EMAIL, "OK");

    // A changed account (a new local password, stored over the old one on node b) takes
    // effect on node a: the new password logs in, the old one no longer does.
    const NEW_PW: &str = "Local-pw-changed-2d8e";
    let imap = Upstream::plain(dovecot.imap_addr()).login(EMAIL, UPSTREAM_PW);
    let changed = Account::password(EMAIL, NEW_PW).imap(imap).to_toml();
    ok(&account(&b.config_path, &["add", "-"], Some(&changed)));
    let with = |pw: &str| {
        let mut c = a.connect();
        let r = c.command("L1", &format!("LOGIN {} {}", quote(EMAIL), quote(pw)));
        tagged_status(&r, "L1")
    };
    let switched = poll(PROPAGATION, Duration::from_millis(50), || {
        with(NEW_PW).starts_with("OK").then_some(())
    });
    assert!(switched.is_some(), "{}", a.log());
    assert!(with(LOCAL_PW).starts_with("NO"));

    pg.psql("DELETE FROM mailgate_accounts");
    until_login(&a, EMAIL, "NO");
    until_login(&b, EMAIL, "NO");
    assert!(a.log().contains("the shared store's accounts changed"));
}

/// Fifty concurrent logins spread over two nodes, with an access token about to expire, make
/// exactly one refresh at the identity provider, and every login on both nodes then uses the new
/// token (never the old one).
#[test]
fn one_refresh_across_nodes() {
    let idp = Idp::start(OAUTH_EMAIL);
    let mut opts = DovecotOpts::plaintext_only();
    opts.oauth2_introspection_url = Some(idp.url("/introspect"));
    let dovecot = Dovecot::start(opts);
    dovecot.add_user(OAUTH_EMAIL, UPSTREAM_PW);
    let pg = Postgres::start();
    let keys = TempDir::new().unwrap();
    let key = key_file(keys.path(), 2);
    let cli = cli_config(keys.path(), &pg, &key);
    let table = oauth_account(&dovecot, &idp).to_toml();
    ok(&account(&cli, &["add", "-"], Some(&table)));
    // Authorized with a token that has less than the refresh margin left.
    let old = authorize_expiring(&idp, &cli, OAUTH_EMAIL);
    let tokens = pg.psql("SELECT identity, encode(sealed, 'escape') FROM mailgate_tokens");
    assert!(tokens.starts_with(OAUTH_EMAIL), "{tokens}");
    assert!(
        old.iter().all(|t| !tokens.contains(t.as_str())),
        "a token in clear"
    );

    let nodes = [node(&pg, &key), node(&pg, &key)];
    let introspected = idp.introspected_tokens().len();
    let addrs = [nodes[0].imap_addr, nodes[1].imap_addr];
    let statuses = logins_at_once(&addrs, 50, OAUTH_EMAIL, LOCAL_PW);
    for (i, status) in statuses.iter().enumerate() {
        assert!(
            status.starts_with("OK"),
            "login {i}: {status}\n{}\n{}",
            nodes[i % 2].log(),
            dovecot.log()
        );
    }
    assert_one_refresh(&idp, &old, introspected);
}

/// The database stopped: a running session goes on, a login that needs nothing from the
/// database works, a login that needs a token from it gets `NO [UNAVAILABLE]` (the reason in
/// the log), SMTP submission that needs a token gets `451 4.3.0` (temporary: the client keeps
/// the message), and both work once the database is back.
#[test]
fn database_down_fails_only_what_needs_it() {
    let idp = Idp::start(OAUTH_EMAIL);
    let mut opts = DovecotOpts::plaintext_only();
    opts.oauth2_introspection_url = Some(idp.url("/introspect"));
    let sasl = DovecotOpts {
        oauth2_introspection_url: Some(idp.url("/introspect")),
        ..DovecotOpts::sasl_only()
    };
    let postfix = support::Postfix::start_with(&["rcpt"], "unused-password", sasl);
    let dovecot = Dovecot::start(opts);
    dovecot.add_user(EMAIL, UPSTREAM_PW);
    dovecot.add_user(OAUTH_EMAIL, UPSTREAM_PW);
    let mut pg = Postgres::start();
    let keys = TempDir::new().unwrap();
    let key = key_file(keys.path(), 3);
    let cli = cli_config(keys.path(), &pg, &key);
    let tables = format!(
        "{}{}",
        password_account(&dovecot).to_toml(),
        oauth_account(&dovecot, &idp)
            .smtp(postfix.starttls_upstream())
            .to_toml()
    );
    ok(&account(&cli, &["add", "-"], Some(&tables)));
    authorize_expiring(&idp, &cli, OAUTH_EMAIL);
    let a = node(&pg, &key);

    let mut held = a.connect();
    let r = held.command("L1", &format!("LOGIN {} {}", quote(EMAIL), quote(LOCAL_PW)));
    assert_tagged(&r, "L1", "OK");
    pg.stop();
    assert_tagged(&held.command("s1", "SELECT INBOX"), "s1", "OK");
    assert!(login(&a, EMAIL).starts_with("OK"));
    let refused = login(&a, OAUTH_EMAIL);
    assert!(
        refused.starts_with("NO [UNAVAILABLE]") && refused.contains("account store"),
        "{refused}"
    );
    // The log line may come a moment after the answer.
    let logged = poll(PROPAGATION, Duration::from_millis(20), || {
        a.log()
            .contains("the shared store is unavailable")
            .then_some(())
    });
    assert!(logged.is_some(), "{}", a.log());
    let (mut smtp, _) = support::smtp_client::Raw::connect(a.smtp_addr);
    assert!(smtp.login(OAUTH_EMAIL, LOCAL_PW).starts_with("235"));
    let from = smtp.cmd(&format!("MAIL FROM:<{OAUTH_EMAIL}>"));
    assert!(
        from.starts_with("451 4.3.0") && from.contains("account store"),
        "{from}"
    );
    assert_eq!(idp.refreshes(), 0);

    pg.start_again();
    until_login(&a, OAUTH_EMAIL, "OK");
    assert_eq!(idp.refreshes(), 1);
    // The same SMTP session, once the store is back.
    let from = smtp.cmd(&format!("MAIL FROM:<{OAUTH_EMAIL}>"));
    assert!(from.starts_with("250"), "{from}");
    assert!(smtp.cmd("RCPT TO:<rcpt@example.test>").starts_with("250"));
    assert!(smtp.cmd("DATA").starts_with("354"));
    assert!(smtp
        .cmd("Subject: after the store came back\r\n\r\nbody\r\n.")
        .starts_with("250"));
    assert_tagged(&held.command("n1", "NOOP"), "n1", "OK");
}

/// The schema is made on first use and versioned; a newer schema and another key are refused
/// with what to do; an invalid account table is refused at `account add`, placed in its input.
#[test]
fn schema_key_and_table_checks() {
    let pg = Postgres::start();
    let keys = TempDir::new().unwrap();
    let key = key_file(keys.path(), 4);
    let cli = cli_config(keys.path(), &pg, &key);
    let empty = ok(&account(&cli, &["list"], None));
    assert!(empty.contains("no accounts"), "{empty}");
    assert_eq!(pg.psql("SELECT version FROM mailgate_schema").trim(), "1");

    let other = cli_config(keys.path(), &pg, &key_file(keys.path(), 5));
    let refused = account(&other, &["list"], None);
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && text.contains("another key"),
        "{text}"
    );

    let bad = format!(
        "[[account]]\nemail = {}\nlocal_password_hash = \"plain\"\n",
        toml_str(EMAIL)
    );
    let refused = account(&cli, &["add", "-"], Some(&bad));
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && text.contains("-:1:1: account[0].local_password_hash"),
        "{text}"
    );

    pg.psql("UPDATE mailgate_schema SET version = 99");
    let refused = account(&cli, &["list"], None);
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && text.contains("newer than this mailgate knows"),
        "{text}"
    );
}

/// TLS to the database (`sslmode=require`, the server taking TCP only over TLS): refused
/// without the database's CA (the certificate is checked), served with `[store] ca_file`, and
/// the node's connections are TLS ones.
#[test]
fn the_store_over_tls() {
    let pki = support::Pki::new();
    let pg = Postgres::start_tls(&pki.server);
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user(EMAIL, UPSTREAM_PW);
    let keys = TempDir::new().unwrap();
    let key = key_file(keys.path(), 6);
    let untrusted = cli_config(keys.path(), &pg, &key);
    let refused = account(&untrusted, &["list"], None);
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && text.contains("certificate"),
        "{text}"
    );

    let with_ca = format!(
        "{}ca_file = {}\n",
        node_toml(&pg, &key),
        toml_str(&pki.ca.display().to_string())
    );
    let cli = keys.path().join("tls.toml");
    std::fs::write(&cli, &with_ca).unwrap();
    ok(&account(
        &cli,
        &["add", "-"],
        Some(&password_account(&dovecot).to_toml()),
    ));
    let node = Mailgate::start(&with_ca);
    assert!(login(&node, EMAIL).starts_with("OK"), "{}", node.log());
    let over_tls = pg.psql(&format!(
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE ssl AND usename = '{}'",
        support::postgres::USER
    ));
    assert!(
        over_tls.trim().parse::<u32>().unwrap_or(0) >= 1,
        "{over_tls}"
    );
}
