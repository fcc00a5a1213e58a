//! Several mailgate nodes on one shared store (PostgreSQL): `mailgate account` against the
//! store, the OAuth account the tests authorize, logins made all at once, and the check that
//! they cost one refresh at the identity provider.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Barrier};

use super::config::{Account, GateConfig, Upstream};
use super::idp::{Idp, CLIENT_ID};
use super::imap_client::{quote, tagged_status, ImapClient};
use super::mailgate::run;
use super::oauth_cli::authorize_code_as;
use super::postgres::{store_toml, Postgres};

/// A config file for the commands (`mailgate account`, `mailgate oauth`) on `pg` with `key`,
/// in `dir` (one per key).
pub fn cli_config(dir: &Path, pg: &Postgres, key: &Path) -> PathBuf {
    let path = dir.join(format!(
        "cli-{}.toml",
        key.file_name().unwrap().to_string_lossy()
    ));
    let toml = format!("{}{}", GateConfig::new().to_toml(), store_toml(pg, key));
    std::fs::write(&path, toml).unwrap();
    path
}

/// `mailgate account ARGS --config CONFIG`, with `stdin` if given.
pub fn account(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut all = vec!["account"];
    all.extend_from_slice(args);
    let config = config.display().to_string();
    all.extend_from_slice(&["--config", &config]);
    run(&all, stdin.map(str::as_bytes))
}

/// What a command printed (stdout and stderr); panics with it unless it succeeded.
pub fn ok(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

/// An account that logs in to the IMAP server at `imap` with OAuth 2.0 tokens from `idp`.
pub fn oauth_account(email: &str, local_pw: &str, imap: SocketAddr, idp: &Idp) -> Account {
    Account::password(email, local_pw)
        .imap(Upstream::plain(imap))
        .oauth2("client_id", CLIENT_ID)
        .oauth2("authorize_url", idp.url("/authorize"))
        .oauth2("token_url", idp.url("/token"))
        .oauth2("scopes", ["mail"].as_slice())
}

/// Authorizes `email` (`mailgate oauth authorize`, config `cli`) with an access token that has
/// less than the refresh margin left; the tokens `idp` issued so far.
pub fn authorize_expiring(idp: &Idp, cli: &Path, email: &str) -> Vec<String> {
    idp.set_expires_in(30);
    let out = authorize_code_as(cli, email, false).join("\n");
    assert!(out.contains("Authorized"), "{out}");
    idp.set_expires_in(3600);
    idp.issued_tokens()
}

/// `n` connections, the i-th to `addrs[i % len]`, each greeted, then all at once `LOGIN email
/// password`; the tagged status of each (`OK …`, `NO …`), in order.
pub fn logins_at_once(addrs: &[SocketAddr], n: usize, email: &str, password: &str) -> Vec<String> {
    let start = Arc::new(Barrier::new(n));
    let command = format!("LOGIN {} {}", quote(email), quote(password));
    let logins: Vec<_> = (0..n)
        .map(|i| {
            let (addr, start, command) = (addrs[i % addrs.len()], start.clone(), command.clone());
            std::thread::spawn(move || {
                let mut c = ImapClient::connect(addr);
                start.wait();
                tagged_status(&c.command("L1", &command), "L1")
            })
        })
        .collect();
    logins.into_iter().map(|l| l.join().unwrap()).collect()
}

/// Exactly one refresh happened at `idp` since it had issued `old`, and every token introspected
/// after the first `introspected` was the one new access token (never an old one).
pub fn assert_one_refresh(idp: &Idp, old: &[String], introspected: usize) {
    assert_eq!(idp.refreshes(), 1, "{:?}", idp.requests());
    let new: Vec<String> = idp
        .issued_tokens()
        .into_iter()
        .filter(|t| !old.contains(t))
        .collect();
    assert_eq!(new.len(), 1, "one new access token");
    let used: HashSet<String> = idp.introspected_tokens()[introspected..]
        .iter()
        .cloned()
        .collect();
    assert_eq!(
        used,
        HashSet::from([new[0].clone()]),
        "every login used the new token"
    );
}

/// How long a change may take to reach a node before a test fails (the behaviour asserted is
/// that it arrives; this only bounds the wait).
pub const PROPAGATION: std::time::Duration = std::time::Duration::from_secs(15);

/// Waits (bounded by [`PROPAGATION`]) until `node` answers `LOGIN email password` with a
/// tagged status starting with `want`.
pub fn until_login(node: &super::Mailgate, email: &str, password: &str, want: &str) {
    let mut last = String::new();
    let seen = super::proc::poll(PROPAGATION, std::time::Duration::from_millis(50), || {
        let mut c = node.connect();
        let r = c.command("L1", &format!("LOGIN {} {}", quote(email), quote(password)));
        last = tagged_status(&r, "L1");
        last.starts_with(want).then_some(())
    });
    assert!(
        seen.is_some(),
        "login of {email} still answers {last:?}\n{}",
        node.log()
    );
}
