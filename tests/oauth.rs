//! OAuth 2.0 upstream credentials end to end: the test identity provider
//! (`tests/support/idp.rs`), a real Dovecot whose `oauth2` passdb checks every token against
//! that provider's introspection endpoint, and the real `mailgate` binary (`oauth authorize`,
//! `oauth status`, `run`). The tests act as the browser: they follow the printed authorization
//! address with plain HTTP requests.
//!
//! Run: `cargo test --test oauth`

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::idp::{CLIENT_ID, CLIENT_SECRET};
use support::imap_client::{assert_tagged, contains, quote};
use support::mailgate::BIN;
use support::oauth_cli::{
    authorize_code_as, finish, http_get_text, oauth_status, spawn_oauth, wait_line,
};
use support::proc::{poll, PROCESS_TIMEOUT};
use support::{b64, Account, Dovecot, DovecotOpts, GateConfig, Idp, Mailgate, Upstream};

const EMAIL: &str = "ola@example.no";
const LOCAL_PW: &str = "Local-pw-0a7c55e1";
/// The Dovecot user's password: only PLAIN/LOGIN use it; OAuth logins never do.
const UPSTREAM_PW: &str = "Upstream-pw-unused-9d2f";

fn dovecot(idp: &Idp) -> Dovecot {
    let mut opts = DovecotOpts::plaintext_only();
    opts.oauth2_introspection_url = Some(idp.url("/introspect"));
    let d = Dovecot::start(opts);
    d.add_user(EMAIL, UPSTREAM_PW);
    d
}

/// An account authenticating with OAuth at `idp` (authorization code endpoints, scope "mail").
fn oauth_account(email: &str, idp: &Idp, imap: Upstream) -> Account {
    Account::password(email, LOCAL_PW)
        .imap(imap)
        .oauth2("client_id", CLIENT_ID)
        .oauth2("authorize_url", idp.url("/authorize"))
        .oauth2("token_url", idp.url("/token"))
}

/// A mailgate config with one OAuth account on `dovecot`, endpoints at `idp`, and these
/// `[account.oauth2]` keys besides.
fn config(idp: &Idp, dovecot: &Dovecot, oauth_extra: &[(&str, &str)]) -> GateConfig {
    let imap = Upstream::plain(format!("127.0.0.1:{}", dovecot.imap_port));
    let mut account = oauth_account(EMAIL, idp, imap)
        .oauth2("device_authorization_url", idp.url("/device"))
        .oauth2("scopes", ["mail"].as_slice());
    for (k, v) in oauth_extra {
        account = account.oauth2(k, *v);
    }
    GateConfig::new()
        .server("auth_failure_delay_ms", 0)
        .account(account)
}

/// `mailgate oauth authorize EMAIL` with the browser flow, the redirect delivered by an HTTP
/// GET to the loopback listener (or pasted on stdin when `paste`). Returns its output.
fn authorize_code(config: &Path, paste: bool) -> Vec<String> {
    authorize_code_as(config, EMAIL, paste)
}

/// Logs in through mailgate and selects INBOX; returns the LOGIN response.
fn imap_login(gate: &Mailgate) -> Vec<u8> {
    let mut c = gate.connect();
    let resp = c.command("L1", &format!("LOGIN {} {}", quote(EMAIL), quote(LOCAL_PW)));
    if contains(&resp, b"L1 OK") {
        let sel = c.command("s1", "SELECT INBOX");
        assert_tagged(&sel, "s1", "OK");
    }
    resp
}

fn token_file(gate: &Mailgate) -> std::path::PathBuf {
    gate.dir()
        .join("state")
        .join("tokens")
        .join(format!("{EMAIL}.token"))
}

/// Every issued token and the client secret stay out of `bytes`.
fn assert_no_tokens(idp: &Idp, what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for t in idp
        .issued_tokens()
        .iter()
        .map(String::as_str)
        .chain([CLIENT_SECRET])
    {
        assert!(
            !text.contains(t),
            "{what} contains a token or secret ({} chars)",
            t.len()
        );
    }
}

#[test]
fn dovecot_checks_tokens_by_introspection() {
    let idp = Idp::start(EMAIL);
    let d = dovecot(&idp);
    let token = idp.issue_access_token(EMAIL);
    let mut c = d.connect();
    let cap = c.command("c", "CAPABILITY");
    assert!(contains(&cap, b"AUTH=XOAUTH2") && contains(&cap, b"AUTH=OAUTHBEARER"));
    let x = b64(format!("user={EMAIL}\x01auth=Bearer {token}\x01\x01").as_bytes());
    let resp = c.command("a", &format!("AUTHENTICATE XOAUTH2 {x}"));
    assert_tagged(&resp, "a", "OK");
    let mut c = d.connect();
    let o = b64(format!(
        "n,a={EMAIL},\x01host=127.0.0.1\x01port={}\x01auth=Bearer {token}\x01\x01",
        d.imap_port
    )
    .as_bytes());
    let resp = c.command("a", &format!("AUTHENTICATE OAUTHBEARER {o}"));
    assert_tagged(&resp, "a", "OK");
    idp.expire_access_tokens();
    let mut c = d.connect();
    c.send(format!("a AUTHENTICATE XOAUTH2 {x}\r\n").as_bytes());
    let cont = c.read_continuation();
    assert!(
        cont.starts_with(b"+ "),
        "{}",
        String::from_utf8_lossy(&cont)
    );
    c.send(b"\r\n");
    let resp = c.read_until_tagged("a");
    assert_tagged(&resp, "a", "NO");
    // The refused token is not retried as a password (and so never logged by Dovecot).
    assert!(!d.log().contains(&token), "{}", d.log());
    assert!(d.log().contains("Introspection failed"), "{}", d.log());
}

/// Browser flow (code + PKCE, redirect to the loopback listener), then a proxied IMAP session
/// with XOAUTH2 (Dovecot offers both; XOAUTH2 is the default), `oauth status`, and no token in
/// clear text in the token file or in any output.
#[test]
fn authorize_with_pkce_then_imap_with_xoauth2() {
    let idp = Idp::start(EMAIL);
    let d = dovecot(&idp);
    let mut gate = config(&idp, &d, &[]).start();
    let out = authorize_code(&gate.config_path, false);
    assert!(
        out.iter().any(|l| l.contains("Authorized ola@example.no")),
        "{out:?}"
    );
    let authorize_req = idp
        .requests()
        .into_iter()
        .find(|r| r.starts_with("GET /authorize"))
        .unwrap();
    assert!(
        authorize_req.contains("code_challenge_method=S256"),
        "{authorize_req}"
    );

    let resp = imap_login(&gate);
    assert_tagged(&resp, "L1", "OK");
    assert_eq!(idp.refreshes(), 0);
    assert!(
        d.log().contains("mech=XOAUTH2") || d.log().contains("method=XOAUTH2"),
        "{}",
        d.log()
    );

    let file = std::fs::read(token_file(&gate)).expect("token file");
    assert_no_tokens(&idp, "the token file", &file);
    let status_text = oauth_status(&gate);
    assert!(
        status_text.contains("ola@example.no: token present (authorization code"),
        "{status_text}"
    );
    assert_no_tokens(&idp, "oauth status", status_text.as_bytes());
    let outputs = out.join("\n");
    assert_no_tokens(&idp, "oauth authorize", outputs.as_bytes());
    let lines = gate.stop().join("\n");
    assert_no_tokens(&idp, "the mailgate log", lines.as_bytes());
}

/// Headless: the redirect address pasted on stdin; OAUTHBEARER as configured.
#[test]
fn headless_paste_then_imap_with_oauthbearer() {
    let idp = Idp::start(EMAIL);
    let d = dovecot(&idp);
    let mut gate = config(&idp, &d, &[("mechanism", "oauthbearer")]).start();
    authorize_code(&gate.config_path, true);
    let resp = imap_login(&gate);
    assert_tagged(&resp, "L1", "OK");
    assert!(d.log().contains("OAUTHBEARER"), "{}", d.log());
    let lines = gate.stop().join("\n");
    assert_no_tokens(&idp, "the mailgate log", lines.as_bytes());
}

/// Device flow: code printed, `authorization_pending` then `slow_down` honoured, no terminal
/// input; then a login works.
#[test]
fn device_flow_then_login() {
    let idp = Idp::start(EMAIL);
    let d = dovecot(&idp);
    let gate = config(&idp, &d, &[]).start();
    let (mut child, rx) = spawn_oauth(&gate.config_path, &["authorize", EMAIL, "--device"]);
    drop(child.stdin.take()); // no terminal input
    let mut seen = Vec::new();
    let line = wait_line(&rx, "enter the code", &mut seen);
    assert!(
        line.contains("WDJB-MJHT") && line.contains("http://127.0.0.1/device"),
        "{line}"
    );
    let out = finish(child, &rx, seen);
    assert!(
        out.iter().any(|l| l.contains("Authorized ola@example.no")),
        "{out:?}"
    );
    let polls = idp
        .requests()
        .iter()
        .filter(|r| r.contains("device_code"))
        .count();
    assert_eq!(polls, 3, "pending, slow_down, tokens");
    assert_tagged(&imap_login(&gate), "L1", "OK");
}

/// An access token about to expire is refreshed before use, and fifty sessions logging in at
/// that moment cause exactly one refresh.
#[test]
fn fifty_logins_at_expiry_cause_one_refresh() {
    let idp = Idp::start(EMAIL);
    let d = dovecot(&idp);
    let mut gate = config(&idp, &d, &[]).start();
    idp.set_expires_in(30); // inside mailgate's 60 s refresh margin
    authorize_code(&gate.config_path, false);
    idp.set_expires_in(3600);
    let addr = gate.imap_addr;
    let sessions: Vec<_> = (0..50)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = support::ImapClient::connect(addr);
                let r = c.login(EMAIL, LOCAL_PW);
                let _ = c.command("z", "LOGOUT");
                r
            })
        })
        .collect();
    for s in sessions {
        let r = s.join().expect("session thread");
        assert_tagged(&r, "L1", "OK");
    }
    assert_eq!(idp.refreshes(), 1, "one refresh for fifty logins");
    let lines = gate.stop().join("\n");
    assert_eq!(
        lines.matches("OAuth access token refreshed").count(),
        1,
        "{lines}"
    );
    assert_no_tokens(&idp, "the mailgate log", lines.as_bytes());
}

/// The upstream rejects a token mailgate still thinks valid: one refresh, one retry, logged in.
#[test]
fn rejected_token_is_refreshed_once_and_retried() {
    let idp = Idp::start(EMAIL);
    let d = dovecot(&idp);
    let gate = config(&idp, &d, &[]).start();
    authorize_code(&gate.config_path, false);
    assert_tagged(&imap_login(&gate), "L1", "OK");
    idp.expire_access_tokens();
    assert_tagged(&imap_login(&gate), "L1", "OK");
    assert_eq!(idp.refreshes(), 1);
    assert_tagged(&imap_login(&gate), "L1", "OK");
    assert_eq!(idp.refreshes(), 1);
}

/// A revoked refresh token: the client hears NO [AUTHENTICATIONFAILED] naming the command to
/// run, the log and the metric say the same, `oauth status` too; re-authorizing fixes it
/// without a restart.
#[test]
fn revoked_refresh_token_gives_the_authorize_hint() {
    let idp = Idp::start(EMAIL);
    let d = dovecot(&idp);
    let mut gate = config(&idp, &d, &[]).metrics(None).start();
    authorize_code(&gate.config_path, false);
    idp.expire_access_tokens();
    idp.revoke_refresh_tokens();
    let resp = imap_login(&gate);
    let text = String::from_utf8_lossy(&resp).into_owned();
    assert!(
        text.contains("L1 NO [AUTHENTICATIONFAILED]")
            && text.contains("mailgate oauth authorize ola@example.no"),
        "{text}"
    );
    // A second login does not ask the provider again.
    let before = idp.refreshes();
    let _ = imap_login(&gate);
    assert_eq!(idp.refreshes(), before);
    let scrape = scrape(gate.metrics_addr.expect("metrics"));
    assert!(
        scrape
            .lines()
            .any(|l| l == "mailgate_oauth_refresh_total{result=\"revoked\"} 1"),
        "{scrape}"
    );
    let status_text = oauth_status(&gate);
    assert!(
        status_text.contains("last refresh revoked")
            && status_text.contains("run `mailgate oauth authorize ola@example.no`"),
        "{status_text}"
    );

    authorize_code(&gate.config_path, false);
    assert_tagged(&imap_login(&gate), "L1", "OK");
    let lines = gate.stop().join("\n");
    assert!(
        lines.contains("invalid_grant")
            && lines.contains("run `mailgate oauth authorize ola@example.no`"),
        "{lines}"
    );
    assert_no_tokens(&idp, "the mailgate log", lines.as_bytes());
}

/// Client credentials (Microsoft 365 app-only): the secret from the environment, tokens
/// without a refresh token, renewed by asking again.
#[test]
fn client_credentials_flow() {
    let idp = Idp::start(EMAIL);
    let d = dovecot(&idp);
    let cfg = config(
        &idp,
        &d,
        &[("client_secret_env", "MAILGATE_TEST_CLIENT_SECRET")],
    );
    let gate = cfg.start_with_env(&[("MAILGATE_TEST_CLIENT_SECRET", CLIENT_SECRET)]);
    let out = Command::new(BIN)
        .args([
            "oauth",
            "authorize",
            EMAIL,
            "--client-credentials",
            "--config",
        ])
        .arg(&gate.config_path)
        .env("MAILGATE_TEST_CLIENT_SECRET", CLIENT_SECRET)
        .output()
        .expect("run");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("no refresh token"),
        "{text}"
    );
    assert_tagged(&imap_login(&gate), "L1", "OK");
    idp.expire_access_tokens();
    assert_tagged(&imap_login(&gate), "L1", "OK");
    let grants = idp
        .requests()
        .iter()
        .filter(|r| r.contains("grant_type=client_credentials"))
        .count();
    assert_eq!(grants, 2);
}

/// Never authorized: the client is told which command the operator must run.
#[test]
fn not_authorized_yet() {
    let idp = Idp::start(EMAIL);
    let d = dovecot(&idp);
    let gate = config(&idp, &d, &[]).start();
    let text = String::from_utf8_lossy(&imap_login(&gate)).into_owned();
    assert!(
        text.contains("NO [AUTHENTICATIONFAILED]")
            && text.contains("mailgate oauth authorize ola@example.no"),
        "{text}"
    );
}

fn scrape(addr: SocketAddr) -> String {
    http_get_text(&format!("http://{addr}/metrics"))
}

/// SMTP submission with a token: Postfix authenticates through Dovecot, whose `oauth2` passdb
/// asks the test identity provider. XOAUTH2, then OAUTHBEARER; a revoked refresh token gives
/// `451 4.7.0` with the command to run (temporary: the client keeps the message).
#[test]
fn smtp_submission_with_tokens() {
    const SENDER: &str = "sam@example.test";
    let idp = Idp::start(SENDER);
    let opts = DovecotOpts {
        oauth2_introspection_url: Some(idp.url("/introspect")),
        ..DovecotOpts::sasl_only()
    };
    // Passwords are not used here: sam authenticates with tokens only.
    let postfix = support::postfix::Postfix::start_with(&["sam", "rcpt"], "unused-password", opts);
    for (i, mechanism) in ["xoauth2", "oauthbearer"].iter().enumerate() {
        let account = oauth_account(SENDER, &idp, Upstream::plain("127.0.0.1:1"))
            .smtp(postfix.starttls_upstream())
            .oauth2("scopes", ["mail"].as_slice())
            .oauth2("mechanism", *mechanism);
        let mut gate = GateConfig::new()
            .server("auth_failure_delay_ms", 0)
            .account(account)
            .start();
        let smtp = gate.smtp_addr;
        authorize_code_as(&gate.config_path, SENDER, false);
        let (mut c, _) = support::smtp_client::Raw::connect(smtp);
        let auth = c.login(SENDER, LOCAL_PW);
        assert!(auth.starts_with("235"), "{auth}");
        let from = c.cmd(&format!("MAIL FROM:<{SENDER}>"));
        assert!(from.starts_with("250"), "{from}");
        assert!(c.cmd("RCPT TO:<rcpt@example.test>").starts_with("250"));
        assert!(c.cmd("DATA").starts_with("354"));
        let subject = format!("Subject: token {mechanism}");
        let sent = c.cmd(&format!("{subject}\r\n\r\nbody\r\n."));
        assert!(sent.starts_with("250"), "{sent}");
        let _ = c.cmd("QUIT");
        let found = support::proc::poll(PROCESS_TIMEOUT, Duration::from_millis(50), || {
            postfix
                .delivered()
                .iter()
                .any(|(_, m)| String::from_utf8_lossy(m).contains(&subject))
                .then_some(())
        })
        .is_some();
        assert!(found, "no delivery of {subject}\n{}", postfix.log());
        assert!(
            postfix
                .log()
                .contains(&format!("sasl_method={}", mechanism.to_ascii_uppercase())),
            "{}",
            postfix.log()
        );

        if i == 1 {
            idp.expire_access_tokens();
            idp.revoke_refresh_tokens();
            let (mut c, _) = support::smtp_client::Raw::connect(smtp);
            assert!(c.login(SENDER, LOCAL_PW).starts_with("235"));
            let from = c.cmd(&format!("MAIL FROM:<{SENDER}>"));
            assert!(
                from.starts_with("451 4.7.0")
                    && from.contains("mailgate oauth authorize sam@example.test"),
                "{from}"
            );
        }
        let lines = gate.stop().join("\n");
        assert_no_tokens(&idp, "the mailgate log", lines.as_bytes());
    }
}

/// A provider that rotates refresh tokens, and a token file that cannot be replaced at the
/// moment of a refresh (its path turned into a folder: a failure root cannot write past, like a
/// full disk). The login still succeeds on the new tokens, which stay in memory; the log and
/// `oauth status` say they are not saved; once the file can be written again the next refresh
/// uses the rotated refresh token (the one in the file is revoked by then) and saves.
#[test]
fn tokens_that_cannot_be_saved_are_kept_and_saved_later() {
    let idp = Idp::start(EMAIL);
    let d = dovecot(&idp);
    let gate = config(&idp, &d, &[]).start();
    authorize_code(&gate.config_path, false);
    idp.rotate_refresh_tokens();
    // Dovecot now refuses the access token: the next login refreshes.
    idp.expire_access_tokens();
    let file = token_file(&gate);
    let aside = file.with_extension("aside");
    {
        let (file, aside) = (file.clone(), aside.clone());
        idp.on_next_refresh(move || {
            std::fs::rename(&file, &aside).expect("move the token file aside");
            std::fs::create_dir(&file).expect("a folder in its place");
        });
    }
    assert_tagged(&imap_login(&gate), "L1", "OK");
    assert_eq!(idp.refreshes(), 1);
    assert!(
        gate.log()
            .contains("cannot save the refreshed OAuth tokens; they are kept in memory"),
        "{}",
        gate.log()
    );
    // The file as it was (the refresh token in it is revoked now), and the note beside it.
    std::fs::remove_dir(&file).expect("remove the folder");
    std::fs::rename(&aside, &file).expect("put the old file back");
    let status = oauth_status(&gate);
    assert!(
        status.contains(&format!("{EMAIL}: NOT SAVED: since "))
            && status.contains("the running gateway holds newer tokens than the token file")
            && status.contains("cannot write the token file"),
        "{status}"
    );
    let old = std::fs::read(&file).expect("read the token file");

    idp.expire_access_tokens();
    assert_tagged(&imap_login(&gate), "L1", "OK");
    assert_eq!(idp.refreshes(), 2, "{}", gate.log());
    assert!(
        gate.log()
            .contains("the refreshed OAuth tokens are saved now"),
        "{}",
        gate.log()
    );
    assert_ne!(std::fs::read(&file).expect("read the token file"), old);
    let status = oauth_status(&gate);
    assert!(!status.contains("NOT SAVED"), "{status}");
    assert!(status.contains("last refresh ok at"), "{status}");
    assert_no_tokens(&idp, "the mailgate log", gate.log().as_bytes());
    assert_no_tokens(&idp, "oauth status", status.as_bytes());
}

/// Upkeep: an account nobody logs in to stays signed in across several refresh-token
/// lifetimes (the identity provider ends a refresh token unused for 2 s; mailgate's upkeep,
/// `oauth_upkeep_secs = 1`, uses it meanwhile), and a revoked refresh token shows in
/// `mailgate_oauth_accounts` without any client logging in.
#[test]
fn upkeep_keeps_an_idle_account_signed_in() {
    let idp = Idp::start(EMAIL);
    let d = dovecot(&idp);
    let gate = config(&idp, &d, &[])
        .server("oauth_upkeep_secs", 1)
        .metrics(None)
        .start();
    authorize_code(&gate.config_path, false);
    idp.set_refresh_unused_lifetime(Duration::from_secs(2));
    let metrics = gate.metrics_addr.expect("metrics");
    let state = |s: &str| format!("mailgate_oauth_accounts{{state=\"{s}\"}} 1");

    // Eight refreshes by upkeep alone: at least four lifetimes with no client.
    let before = idp.refreshes();
    let kept = poll(Duration::from_secs(120), Duration::from_millis(200), || {
        (idp.refreshes() >= before + 8).then_some(())
    });
    assert!(kept.is_some(), "upkeep did not refresh:\n{}", gate.log());
    let scraped = scrape(metrics);
    assert!(scraped.lines().any(|l| l == state("ok")), "{scraped}");

    // The refresh token is alive: a login whose access token Dovecot refuses refreshes it.
    idp.expire_access_tokens();
    assert_tagged(&imap_login(&gate), "L1", "OK");

    // Revoked: upkeep says so, with no login.
    idp.revoke_refresh_tokens();
    let seen = poll(Duration::from_secs(60), Duration::from_millis(200), || {
        let s = scrape(metrics);
        s.lines()
            .any(|l| l == state("needs_authorization"))
            .then_some(())
    });
    assert!(seen.is_some(), "{}\n{}", scrape(metrics), gate.log());
    assert!(
        gate.log()
            .contains("needs authorization; run `mailgate oauth authorize ola@example.no`"),
        "{}",
        gate.log()
    );
}
