//! Shared (delegated) mailboxes, as Microsoft 365 has them: the tokens belong to a delegate
//! user (`[account.oauth2] sign_in_as`), the mailbox is another address. With the test
//! identity provider and a real Dovecot and Postfix checking every token:
//!
//! - IMAP: the XOAUTH2 `user=` is the mailbox and the token is the delegate's. Dovecot cannot
//!   know delegations, so its `oauth2` passdb here compares only the domain of the token's
//!   user with the login's (`username_format = %d`, one tenant); the test asserts from the
//!   identity provider's records that every token Dovecot checked was the delegate's, and from
//!   the mailbox contents and Dovecot's log that each session opened the shared mailbox.
//! - Several shared mailboxes of one delegate share one token file and one refresh.
//! - SMTP: an unlicensed shared mailbox cannot use SMTP AUTH, so mailgate authenticates as the
//!   delegate and keeps the shared address as the envelope sender; Postfix's
//!   `reject_sender_login_mismatch` plays the provider's "send as" right.
//!
//! Run: `cargo test --test oauth_shared`

mod support;

use std::time::Duration;

use support::idp::CLIENT_ID;
use support::imap_client::{assert_tagged, contains};
use support::oauth_cli::{authorize_code_as, oauth_status};
use support::proc::{poll, PROCESS_TIMEOUT};
use support::{Account, Dovecot, DovecotOpts, GateConfig, Idp, Upstream};

const DELEGATE: &str = "kari@example.test";
const SHARED: [&str; 2] = ["post@example.test", "sales@example.test"];
const LOCAL_PW: &str = "Local-pw-5be1c0d2";
const UPSTREAM_PW: &str = "Upstream-pw-unused-71aa";

/// A shared mailbox `email` whose tokens are the delegate's, at `idp`.
fn shared_account(email: &str, idp: &Idp) -> Account {
    Account::password(email, LOCAL_PW)
        .oauth2("client_id", CLIENT_ID)
        .oauth2("authorize_url", idp.url("/authorize"))
        .oauth2("token_url", idp.url("/token"))
        .oauth2("scopes", ["mail"].as_slice())
        .oauth2("sign_in_as", DELEGATE)
}

/// Concurrent logins to two shared mailboxes and their delegate's own, at the moment the delegate's access token
/// expires: one refresh; each session sees its own mailbox; XOAUTH2 `user=` is the mailbox and
/// the token the delegate's; one token file, the delegate's; `oauth status` says who signs in.
#[test]
fn shared_mailboxes_share_their_delegates_tokens() {
    let idp = Idp::start(DELEGATE);
    let d = Dovecot::start(DovecotOpts {
        oauth2_introspection_url: Some(idp.url("/introspect")),
        oauth2_extra: "username_format = %d\n".into(),
        ..DovecotOpts::plaintext_only()
    });
    for user in SHARED.iter().chain([&DELEGATE]) {
        d.add_user(user, UPSTREAM_PW);
    }
    // The delegate's own mailbox is an account too: it shares the tokens with the two others.
    let mailboxes = [SHARED[0], SHARED[1], DELEGATE];
    for mailbox in mailboxes {
        let message = format!("Subject: only in {mailbox}\r\n\r\nbody\r\n");
        d.fill_maildir(mailbox, &[message.into_bytes()]);
    }
    let imap = Upstream::plain(format!("127.0.0.1:{}", d.imap_port));
    let delegate = shared_account(DELEGATE, &idp).imap(imap.clone());
    let mut gate = SHARED
        .iter()
        .fold(
            GateConfig::new()
                .server("auth_failure_delay_ms", 0)
                .account(delegate),
            |cfg, mailbox| cfg.account(shared_account(mailbox, &idp).imap(imap.clone())),
        )
        .start();

    idp.set_expires_in(30); // inside mailgate's 60 s refresh margin: the logins refresh
                            // Authorized by naming a shared mailbox: the delegate signs in.
    let out = authorize_code_as(&gate.config_path, SHARED[0], false).join("\n");
    idp.set_expires_in(3600);
    assert!(
        out.contains(&format!(
            "sign in as {DELEGATE} (for the mailbox {})",
            SHARED[0]
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Authorized {DELEGATE} (signing in for {}, {})",
            SHARED[0], SHARED[1]
        )),
        "{out}"
    );
    let tokens = gate.dir().join("state").join("tokens");
    let mut files: Vec<String> = std::fs::read_dir(&tokens)
        .expect("token folder")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    files.sort();
    assert_eq!(files, [format!("{DELEGATE}.token")]);

    let addr = gate.imap_addr;
    let sessions: Vec<_> = (0..30)
        .map(|i| {
            let mailbox = mailboxes[i % 3];
            std::thread::spawn(move || {
                let mut c = support::ImapClient::connect(addr);
                let login = c.login(mailbox, LOCAL_PW);
                assert_tagged(&login, "L1", "OK");
                c.ok("s", "SELECT INBOX");
                let fetched = c.ok("f", "FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]");
                let _ = c.command("z", "LOGOUT");
                (mailbox, fetched)
            })
        })
        .collect();
    for s in sessions {
        let (mailbox, fetched) = s.join().expect("session thread");
        let subject = format!("only in {mailbox}");
        assert!(
            contains(&fetched, subject.as_bytes()),
            "{mailbox}: {}",
            String::from_utf8_lossy(&fetched)
        );
    }
    assert_eq!(idp.refreshes(), 1, "one refresh for the delegate");
    let checked = idp.introspected_users();
    assert!(
        !checked.is_empty() && checked.iter().all(|u| u == DELEGATE),
        "{checked:?}"
    );
    // Dovecot's log process writes a login's line a moment after the login is answered.
    for mailbox in mailboxes {
        let login = format!("Login: user=<{mailbox}>, method=XOAUTH2");
        let seen = d.wait_for_log(&login, std::time::Duration::from_secs(20));
        assert!(seen, "{login}\n{}", d.log());
    }

    let status = oauth_status(&gate);
    for mailbox in SHARED {
        let line = format!("{DELEGATE} (for the mailbox {mailbox}): token present");
        assert!(status.contains(&line), "{line}\n{status}");
    }
    let lines = gate.stop().join("\n");
    assert_eq!(
        lines.matches("OAuth access token refreshed").count(),
        1,
        "{lines}"
    );
    for token in idp.issued_tokens() {
        assert!(!lines.contains(&token), "a token in the mailgate log");
    }
}

/// SMTP for shared mailboxes: AUTH as the delegate (a shared mailbox without a licence has no
/// SMTP AUTH), MAIL FROM the shared address. Where the delegate may send as it, the message is
/// delivered; where not, the client hears the provider's refusal and the log says which right
/// is missing.
#[test]
fn a_shared_mailbox_sends_as_its_delegate() {
    let idp = Idp::start(DELEGATE);
    let opts = DovecotOpts {
        oauth2_introspection_url: Some(idp.url("/introspect")),
        ..DovecotOpts::sasl_only()
    };
    // kari may send as post@, not as sales@.
    let postfix = support::postfix::Postfix::start_checking_senders(
        &["kari", "rcpt"],
        "unused-password",
        opts,
        &[(SHARED[0], DELEGATE)],
    );
    let mut gate = SHARED
        .iter()
        .fold(
            GateConfig::new().server("auth_failure_delay_ms", 0),
            |cfg, mailbox| {
                cfg.account(
                    shared_account(mailbox, &idp)
                        .imap(Upstream::plain("127.0.0.1:1"))
                        .smtp(postfix.starttls_upstream()),
                )
            },
        )
        .start();
    authorize_code_as(&gate.config_path, DELEGATE, false);

    let (mut c, _) = support::smtp_client::Raw::connect(gate.smtp_addr);
    assert!(c.login(SHARED[0], LOCAL_PW).starts_with("235"));
    assert!(c
        .cmd(&format!("MAIL FROM:<{}>", SHARED[0]))
        .starts_with("250"));
    let rcpt = c.cmd("RCPT TO:<rcpt@example.test>");
    assert!(rcpt.starts_with("250"), "{rcpt}");
    assert!(c.cmd("DATA").starts_with("354"));
    let sent = c.cmd("Subject: from the shared mailbox\r\n\r\nbody\r\n.");
    assert!(sent.starts_with("250"), "{sent}");
    let _ = c.cmd("QUIT");
    let delivered = poll(PROCESS_TIMEOUT, Duration::from_millis(50), || {
        postfix
            .delivered()
            .into_iter()
            .find(|(_, m)| String::from_utf8_lossy(m).contains("Subject: from the shared mailbox"))
    });
    assert!(delivered.is_some(), "not delivered\n{}", postfix.log());
    let log = postfix.log();
    // The envelope sender stays the shared address; the SASL login is the delegate.
    for seen in [
        format!("sasl_method=XOAUTH2, sasl_username={DELEGATE}"),
        format!("from=<{}>", SHARED[0]),
    ] {
        assert!(log.contains(&seen), "{seen}\n{log}");
    }

    let (mut c, _) = support::smtp_client::Raw::connect(gate.smtp_addr);
    assert!(c.login(SHARED[1], LOCAL_PW).starts_with("235"));
    let from = c.cmd(&format!("MAIL FROM:<{}>", SHARED[1]));
    let rcpt = c.cmd("RCPT TO:<rcpt@example.test>");
    let refused = if from.starts_with('5') { &from } else { &rcpt };
    assert!(
        refused.starts_with("553") && refused.contains(&format!("not owned by user {DELEGATE}")),
        "MAIL: {from} RCPT: {rcpt}"
    );
    let _ = c.cmd("QUIT");
    let lines = gate.stop().join("\n");
    let advice = format!(
        "Add-RecipientPermission {} -AccessRights SendAs -Trustee {DELEGATE}",
        SHARED[1]
    );
    assert!(lines.contains(&advice), "{advice}\n{lines}");
}
