//! `mailgate check` against real servers: Dovecot (IMAP, and POP3 with Debian's dovecot-pop3d)
//! and Postfix (SMTP, Dovecot SASL) started by `support`, with good and broken settings, and a
//! loopback stand-in where a real server cannot be had (providers' exact refusal texts).
//!
//! Each test runs the built binary (`mailgate check -c FILE [EMAIL] [--json]`), reads its
//! output — the JSON document parsed with serde_json — and asserts the steps, the advice and
//! the exit status. Upstream passwords must never appear in the output.
//!
//! Every loop is bounded; no test asserts a duration; all traffic stays on 127.0.0.1.
//!
//! Run: `cargo test --test check`

mod support;

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use support::bad_certs::{BadCerts, EXPIRED_NOT_AFTER, OTHER_NAME};
use support::config::loopback_server;
use support::idp::{CLIENT_ID, CLIENT_SECRET};
use support::mailgate::{strip_ansi, BIN};
use support::postfix::DOMAIN;
use support::proc::{free_port, poll, run_with_timeout, RefusingPort, PROCESS_TIMEOUT};
use support::smtp_client::Raw;
use support::standin::StandIn;
use support::{
    b64, Account, Dovecot, DovecotOpts, GateConfig, Idp, Mailgate, Pki, Postfix, Upstream,
};

const LOCAL_PASSWORD: &str = "local-pw";
/// The upstream password of every real test user.
const UPSTREAM_PASSWORD: &str = "upstream-Secret-71";
/// A wrong upstream password (must not be printed either).
const WRONG_PASSWORD: &str = "wrong-Secret-93";

/// An `[account.imap]` or `[account.smtp]` table to a server on 127.0.0.1:`port` (with
/// `tls_server_name = "localhost"` where the name does not resolve there alone), logging in as
/// `username` with the upstream password.
fn ep(port: u16, tls: &str, ca_file: Option<&PathBuf>, username: &str) -> Upstream {
    let (server, name) = loopback_server(port);
    let mut up = Upstream::tls(server, tls, ca_file.map(PathBuf::as_path))
        .login(username, UPSTREAM_PASSWORD);
    if let Some(name) = name {
        up = up.tls_server_name(&name);
    }
    up
}

fn account(email: &str, imap: &Upstream, smtp: Option<&Upstream>) -> Account {
    let a = Account::password(email, LOCAL_PASSWORD).imap(imap.clone());
    match smtp {
        Some(smtp) => a.smtp(smtp.clone()),
        None => a,
    }
}

/// A config file with these accounts; `connect_timeout_secs` bounds each wait of the check.
struct ConfigFile {
    dir: tempfile::TempDir,
}

impl ConfigFile {
    fn new(accounts: &[Account], connect_timeout_secs: u64) -> ConfigFile {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = GateConfig::new()
            .server("connect_timeout_secs", connect_timeout_secs)
            .accounts(accounts.iter().cloned())
            .to_toml();
        std::fs::write(dir.path().join("mailgate.toml"), text).expect("write config");
        ConfigFile { dir }
    }

    fn path(&self) -> String {
        self.dir.path().join("mailgate.toml").display().to_string()
    }

    /// `mailgate check -c FILE ARGS…`; asserts no secret is in its output.
    fn check(&self, args: &[&str]) -> Output {
        self.check_env(args, &[])
    }

    /// [`ConfigFile::check`] with environment variables set.
    fn check_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["check", "-c", &self.path()]).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = run_with_timeout(cmd, None, PROCESS_TIMEOUT);
        assert_no_secrets(&out);
        out
    }

    /// `mailgate check --json ARGS…`: the exit code and the parsed document.
    fn check_json(&self, args: &[&str]) -> (i32, Value) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.check(&all);
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "--json printed no JSON ({e}):\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().expect("exit code"), doc)
    }
}

/// No upstream password, in clear or inside a base64 SASL PLAIN payload, in stdout or stderr.
fn assert_no_secrets(out: &Output) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in [UPSTREAM_PASSWORD, WRONG_PASSWORD] {
        assert!(!text.contains(secret), "a password was printed:\n{text}");
        assert!(
            !text.contains(&b64(secret.as_bytes())[..12]),
            "a base64 password was printed:\n{text}"
        );
    }
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The account `email` in a report.
fn account_of<'a>(doc: &'a Value, email: &str) -> &'a Value {
    doc["accounts"]
        .as_array()
        .expect("accounts array")
        .iter()
        .find(|a| a["email"] == email)
        .unwrap_or_else(|| panic!("no account {email} in {doc:#}"))
}

fn step_names(account: &Value) -> Vec<String> {
    account["steps"]
        .as_array()
        .expect("steps array")
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_string())
        .collect()
}

/// The one failed step of an account (asserting there is exactly one).
fn failed_step(account: &Value) -> &Value {
    let failed: Vec<&Value> = account["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "expected one failed step in {account:#}");
    assert!(
        failed[0]["advice"].as_str().is_some_and(|a| !a.is_empty()),
        "a failed step without advice: {account:#}"
    );
    failed[0]
}

/// A failed step whose detail quotes the server (`quote`) and whose advice has every one of
/// `words`.
fn assert_quotes_and_advises(email: &str, step: &Value, quote: &str, words: &[&str]) {
    assert!(
        step["detail"].as_str().is_some_and(|d| d.contains(quote)),
        "{email}: the detail should quote the server ({quote:?}): {step:#}"
    );
    let advice = step["advice"].as_str().expect("advice");
    for word in words {
        assert!(
            advice.contains(word),
            "{email}: {word:?} missing in {advice:?}"
        );
    }
}

/// `(name of the failed step, advice)` of an account.
fn failure(doc: &Value, email: &str) -> (String, String) {
    let step = failed_step(account_of(doc, email));
    (
        step["name"].as_str().expect("name").to_string(),
        step["advice"].as_str().expect("advice").to_string(),
    )
}

#[test]
fn all_good_wrong_password_email_selection_and_json() {
    let pki = Pki::new();
    let dovecot = Dovecot::start(DovecotOpts::tls(&pki.server));
    let postfix = Postfix::start(&["alice", "bob"], UPSTREAM_PASSWORD);
    let alice = format!("alice@{DOMAIN}");
    let bob = format!("bob@{DOMAIN}");
    dovecot.add_user(&alice, UPSTREAM_PASSWORD);
    dovecot.add_user(&bob, UPSTREAM_PASSWORD);
    let imaps = dovecot.imaps_addr().expect("imaps").port();
    let config = ConfigFile::new(
        &[
            // Implicit TLS for IMAP, STARTTLS for SMTP.
            account(
                &alice,
                &ep(imaps, "implicit", Some(&pki.ca), &alice),
                Some(&ep(
                    postfix.starttls_port,
                    "starttls",
                    Some(&postfix.ca_file),
                    &alice,
                )),
            ),
            // STARTTLS for IMAP with a wrong password, implicit TLS for SMTP.
            account(
                &bob,
                &ep(dovecot.imap_port, "starttls", Some(&pki.ca), &bob).password(WRONG_PASSWORD),
                Some(&ep(
                    postfix.implicit_port,
                    "implicit",
                    Some(&postfix.ca_file),
                    &bob,
                )),
            ),
        ],
        15,
    );

    // Alice alone: every step passes, exit 0.
    let out = config.check(&[&alice]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(!shown.contains('✗'), "{shown}");
    assert!(!shown.contains(&bob), "only the named account: {shown}");
    for line in [
        "✓ DNS",
        "✓ TCP",
        "✓ TLS",
        "✓ greeting     * OK",
        "✓ capabilities",
        &format!("✓ login        logged in as {alice} with the stored password"),
        "✓ LOGOUT",
        "✓ EHLO",
        &format!("✓ AUTH         logged in as {alice}"),
        "✓ QUIT         221",
        "STARTTLS accepted; TLS 1.",
        "certificate for localhost, 127.0.0.1, issued by CN=mailgate test CA",
        "name localhost matches",
        "all 14 steps passed",
    ] {
        assert!(shown.contains(line), "missing {line:?} in:\n{shown}");
    }

    // Bob alone: the IMAP login fails with the generic advice, SMTP passes; exit non-zero.
    let out = config.check(&[&bob]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("✗ login") && shown.contains("AUTHENTICATIONFAILED"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "→ the server rejected the password for {bob}: re-enter the app password"
        )),
        "{shown}"
    );

    // Everyone, as JSON.
    let (code, doc) = config.check_json(&[]);
    assert_eq!(code, 1, "{doc:#}");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["accounts"].as_array().map(Vec::len), Some(2));
    let a = account_of(&doc, &alice);
    assert_eq!(a["ok"], true, "{a:#}");
    assert_eq!(
        step_names(a),
        [
            "imap.dns",
            "imap.tcp",
            "imap.tls",
            "imap.greeting",
            "imap.capabilities",
            "imap.login",
            "imap.logout",
            "smtp.dns",
            "smtp.tcp",
            "smtp.greeting",
            "smtp.tls",
            "smtp.ehlo",
            "smtp.auth",
            "smtp.quit"
        ]
    );
    for step in a["steps"].as_array().expect("steps") {
        assert_eq!(step["ok"], true, "{step:#}");
        assert_eq!(step["advice"], Value::Null, "{step:#}");
        assert!(step["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let b = account_of(&doc, &bob);
    assert_eq!(b["ok"], false);
    assert_eq!(
        step_names(b),
        [
            "imap.dns",
            "imap.tcp",
            "imap.greeting",
            "imap.tls",
            "imap.capabilities",
            "imap.login",
            "smtp.dns",
            "smtp.tcp",
            "smtp.tls",
            "smtp.greeting",
            "smtp.ehlo",
            "smtp.auth",
            "smtp.quit"
        ]
    );
    let (name, advice) = failure(&doc, &bob);
    assert_eq!(name, "imap.login");
    assert!(advice.contains("re-enter the app password"), "{advice}");

    // An address with no account: a clear error and exit 2.
    let out = config.check(&["nobody@example.test"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no account nobody@example.test") && err.contains(&alice),
        "{err}"
    );

    // Checking sends no mail.
    assert!(postfix.delivered().is_empty());
}

#[test]
fn tls_and_plaintext_swapped_get_the_right_combination() {
    let pki = Pki::new();
    let dovecot = Dovecot::start(DovecotOpts::tls(&pki.server));
    let postfix = Postfix::start(&["carol", "dave"], UPSTREAM_PASSWORD);
    let plaintext_only = Dovecot::start(DovecotOpts::plaintext_only());
    let carol = format!("carol@{DOMAIN}");
    let dave = format!("dave@{DOMAIN}");
    let erin = format!("erin@{DOMAIN}");
    let imaps = dovecot.imaps_addr().expect("imaps").port();
    let config = ConfigFile::new(
        &[
            // Implicit TLS configured on the plaintext (STARTTLS) ports.
            account(
                &carol,
                &ep(dovecot.imap_port, "implicit", Some(&pki.ca), &carol),
                Some(&ep(
                    postfix.starttls_port,
                    "implicit",
                    Some(&postfix.ca_file),
                    &carol,
                )),
            ),
            // STARTTLS configured on the implicit-TLS ports (they wait silently for a
            // handshake: the short connect_timeout bounds that wait).
            account(
                &dave,
                &ep(imaps, "starttls", Some(&pki.ca), &dave),
                Some(&ep(
                    postfix.implicit_port,
                    "starttls",
                    Some(&postfix.ca_file),
                    &dave,
                )),
            ),
            // STARTTLS configured where the server offers none.
            account(
                &erin,
                &ep(plaintext_only.imap_port, "starttls", None, &erin),
                None,
            ),
        ],
        3,
    );
    let (code, doc) = config.check_json(&[]);
    assert_eq!(code, 1, "{doc:#}");

    let steps = |email: &str| {
        account_of(&doc, email)["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter(|s| s["ok"] == false)
            .map(|s| {
                (
                    s["name"].as_str().expect("name").to_string(),
                    s["advice"].as_str().expect("advice").to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    // Each finding once in a step's detail: the gateway's error carries what its probe saw.
    for (email, finding) in [(&carol, "greeted with"), (&dave, "TLS handshake")] {
        for step in account_of(&doc, email)["steps"].as_array().expect("steps") {
            let detail = step["detail"].as_str().expect("detail");
            assert!(detail.matches(finding).count() <= 1, "{email}: {detail}");
        }
    }
    let carol_failed = steps(&carol);
    assert_eq!(carol_failed.len(), 2, "{doc:#}");
    assert_eq!(carol_failed[0].0, "imap.tls");
    assert_eq!(
        carol_failed[0].1,
        format!(
            "port {} speaks plaintext IMAP (STARTTLS), not implicit TLS: set tls = \"starttls\" in [account.imap], or use port 993 with tls = \"implicit\"",
            dovecot.imap_port
        )
    );
    assert_eq!(carol_failed[1].0, "smtp.tls");
    assert_eq!(
        carol_failed[1].1,
        format!(
            "port {} speaks plaintext SMTP (STARTTLS), not implicit TLS: set tls = \"starttls\" in [account.smtp], or use port 465 with tls = \"implicit\"",
            postfix.starttls_port
        )
    );

    let dave_failed = steps(&dave);
    assert_eq!(dave_failed.len(), 2, "{doc:#}");
    assert_eq!(dave_failed[0].0, "imap.greeting");
    assert_eq!(
        dave_failed[0].1,
        format!(
            "port {imaps} speaks implicit TLS (it waits for a TLS handshake, not a plaintext greeting): set tls = \"implicit\" in [account.imap], or use port 143 with tls = \"starttls\""
        )
    );
    assert_eq!(dave_failed[1].0, "smtp.greeting");
    assert!(
        dave_failed[1].1.starts_with(&format!(
            "port {} speaks implicit TLS",
            postfix.implicit_port
        )) && dave_failed[1]
            .1
            .contains("set tls = \"implicit\" in [account.smtp]"),
        "{}",
        dave_failed[1].1
    );

    let (name, advice) = failure(&doc, &erin);
    assert_eq!(name, "imap.tls");
    assert!(
        advice.ends_with(&format!(
            ":{} does not offer STARTTLS: use port 993 with tls = \"implicit\" in [account.imap] (tls = \"none\" with allow_plaintext = true would send the password unencrypted)",
            plaintext_only.imap_port
        )),
        "{advice}"
    );

    // The running gateway gives the same diagnosis, from the same code: the client hears that
    // the TLS setting does not fit the port, and the log line's advice is the check's advice
    // with the pointer to `mailgate check`. STARTTLS on the implicit-TLS ports is found out
    // after connect_timeout (3 s), not after upstream_timeout (its default minute).
    let text = std::fs::read_to_string(config.path()).expect("config");
    let mut gw = Mailgate::start(&text);
    for (email, imap_advice, smtp_advice) in [
        (&carol, &carol_failed[0].1, &carol_failed[1].1),
        (&dave, &dave_failed[0].1, &dave_failed[1].1),
    ] {
        let mut c = gw.connect();
        let resp =
            String::from_utf8_lossy(&c.command("a1", &format!("LOGIN {email} {LOCAL_PASSWORD}")))
                .into_owned();
        assert!(
            resp.contains("a1 NO [UNAVAILABLE] mailgate's TLS setting for the mail provider's server does not fit its port"),
            "{email}: {resp}"
        );
        let (mut s, _) = Raw::connect(gw.smtp_addr);
        assert!(s.login(email, LOCAL_PASSWORD).starts_with("235"));
        let r = s.cmd(&format!("MAIL FROM:<{email}>"));
        assert!(
            r.starts_with("451 4.7.5 mailgate's TLS setting for the mail provider's server does not fit its port"),
            "{email}: {r}"
        );
        for (message, advice) in [
            ("upstream login failed", imap_advice),
            ("upstream connection failed", smtp_advice),
        ] {
            let want = format!(
                "advice={:?}",
                format!("{advice}; `mailgate check {email}` shows each step")
            );
            // The line is written before the client's answer, but the test reads mailgate's
            // output on another thread: give it a moment (bounded).
            let found = poll(Duration::from_secs(5), Duration::from_millis(50), || {
                let log = strip_ansi(&gw.log());
                log.lines()
                    .any(|l| l.contains(message) && l.contains(email.as_str()) && l.contains(&want))
                    .then_some(())
            });
            assert!(
                found.is_some(),
                "{email}: no {message:?} line with {want}\n{}",
                strip_ansi(&gw.log())
            );
        }
    }
    gw.stop();
}

#[test]
fn certificate_problems_are_named() {
    let pki = Pki::new();
    let bad = BadCerts::new();
    let untrusted = Dovecot::start(DovecotOpts::tls(&pki.other_server));
    let expired = Dovecot::start(DovecotOpts::tls(&bad.expired));
    let wrong_name = Dovecot::start(DovecotOpts::tls(&bad.wrong_name));
    let port = |d: &Dovecot| d.imaps_addr().expect("imaps").port();
    let emails = [
        "untrusted@example.test",
        "untrusted-noca@example.test",
        "expired@example.test",
        "wrongname@example.test",
    ];
    let config = ConfigFile::new(
        &[
            account(
                emails[0],
                &ep(port(&untrusted), "implicit", Some(&pki.ca), emails[0]),
                None,
            ),
            account(
                emails[1],
                &ep(port(&untrusted), "implicit", None, emails[1]),
                None,
            ),
            account(
                emails[2],
                &ep(port(&expired), "implicit", Some(&bad.ca), emails[2]),
                None,
            ),
            account(
                emails[3],
                &ep(port(&wrong_name), "implicit", Some(&bad.ca), emails[3]),
                None,
            ),
        ],
        15,
    );
    let (code, doc) = config.check_json(&[]);
    assert_eq!(code, 1, "{doc:#}");
    for email in emails {
        assert_eq!(failure(&doc, email).0, "imap.tls", "{doc:#}");
    }

    let (_, advice) = failure(&doc, emails[0]);
    assert!(
        advice.contains("issued by CN=mailgate untrusted test CA")
            && advice.contains(&format!(
                "neither the system roots nor ca_file {}",
                pki.ca.display()
            )),
        "{advice}"
    );
    let (_, advice) = failure(&doc, emails[1]);
    assert!(
        advice.contains("which this machine does not trust")
            && advice.contains("set ca_file = \"/path/to/ca.pem\" in [account.imap]"),
        "{advice}"
    );
    let (_, advice) = failure(&doc, emails[2]);
    assert!(
        advice.starts_with(&format!(
            "the server's certificate expired on {EXPIRED_NOT_AFTER}"
        )),
        "{advice}"
    );
    let (_, advice) = failure(&doc, emails[3]);
    assert!(
        advice.starts_with(&format!(
            "the certificate is for {OTHER_NAME}, not for localhost"
        )),
        "{advice}"
    );
    // The detail shows the certificate that was refused.
    let step = failed_step(account_of(&doc, emails[3]));
    assert!(
        step["detail"].as_str().is_some_and(|d| d.contains(&format!(
            "certificate for {OTHER_NAME}, issued by CN=mailgate bad-cert test CA"
        ))),
        "{step:#}"
    );
}

/// A real Dovecot serving POP3 (Debian's dovecot-pop3d) on a loopback port besides IMAP.
fn pop3_dovecot() -> (Dovecot, u16) {
    let port = free_port();
    let mut opts = DovecotOpts::plaintext_only();
    opts.extra = format!(
        "protocols = imap pop3\nservice pop3-login {{\n  chroot =\n  inet_listener pop3 {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n"
    );
    (Dovecot::start(opts), port)
}

#[test]
fn server_down_and_pop3_server() {
    let refusing = RefusingPort::new();
    let (_dovecot, pop3_port) = pop3_dovecot();
    let config = ConfigFile::new(
        &[
            account(
                "down@example.test",
                &ep(refusing.port(), "implicit", None, "down@example.test"),
                None,
            ),
            account(
                "pop@example.test",
                &ep(pop3_port, "none", None, "pop@example.test"),
                None,
            ),
            // Implicit TLS on the POP3 port: the probe finds the +OK greeting.
            account(
                "pop-tls@example.test",
                &ep(pop3_port, "implicit", None, "pop-tls@example.test"),
                None,
            ),
        ],
        15,
    );
    let (code, doc) = config.check_json(&[]);
    assert_eq!(code, 1, "{doc:#}");
    let (name, advice) = failure(&doc, "down@example.test");
    assert_eq!(name, "imap.tcp");
    assert!(
        advice.contains("(connection refused): the server is down or the port is wrong"),
        "{advice}"
    );
    for (email, step) in [
        ("pop@example.test", "imap.greeting"),
        ("pop-tls@example.test", "imap.tls"),
    ] {
        let (name, advice) = failure(&doc, email);
        assert_eq!(name, step, "{doc:#}");
        assert!(
            advice.contains("is a POP3 server: mailgate supports IMAP only"),
            "{advice}"
        );
    }
    // A config without accounts checks nothing, which is not a success.
    let out = ConfigFile::new(&[], 15).check(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no accounts in"));

    // The POP3 greeting came from the real Dovecot (found by the plaintext probe).
    let step = failed_step(account_of(&doc, "pop-tls@example.test"));
    assert!(
        step["detail"]
            .as_str()
            .is_some_and(|d| d.contains("greeted with \"+OK Dovecot")),
        "{step:#}"
    );
}

/// Providers' exact refusals, replayed by a loopback stand-in (the real servers are on the
/// internet): (address, greeting, capabilities, tagged answer, words the advice must have).
const PROVIDER_ANSWERS: &[(&str, &str, &str, &str, &[&str])] = &[
    (
        "app-password@gmail.com",
        "* OK Gimap ready for requests from 127.0.0.1 x1mb12345",
        GMAIL_CAPS,
        "NO [ALERT] Application-specific password required: https://support.google.com/accounts/answer/185833 (Failure)",
        &["Google requires an app password", "https://support.google.com/accounts/answer/185833", "OAuth"],
    ),
    (
        "web-login@gmail.com",
        "* OK Gimap ready for requests from 127.0.0.1 x1mb12345",
        GMAIL_CAPS,
        "NO [ALERT] Please log in via your web browser: https://support.google.com/mail/accounts/answer/78754 (Failure)",
        &["Google blocked the sign-in", "web browser", "app password", "OAuth"],
    ),
    (
        "webalert@gmail.com",
        "* OK Gimap ready for requests from 127.0.0.1 x1mb12345",
        GMAIL_CAPS,
        "NO [WEBALERT https://accounts.google.com/signin/continue?sarp=1&scc=1] Web login required.",
        &["Google blocked the sign-in", "app password", "OAuth"],
    ),
    (
        "imap-off@gmail.com",
        "* OK Gimap ready for requests from 127.0.0.1 x1mb12345",
        GMAIL_CAPS,
        "NO [ALERT] Your account is not enabled for IMAP use. Please visit your Gmail settings page and enable your account for IMAP access. (Failure)",
        &["IMAP access is turned off", "https://support.google.com/mail/answer/7126229"],
    ),
    (
        "basic@outlook.com",
        "* OK The Microsoft Exchange IMAP4 service is ready. [UABBADMAUAByAG8AeAB5AA==]",
        "IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+",
        "NO AUTHENTICATE failed.",
        &["basic authentication is off", "mailgate oauth authorize basic@outlook.com"],
    ),
    (
        "login@contoso.example",
        "* OK The Microsoft Exchange IMAP4 service is ready. [UABBADMAUAByAG8AeAB5AA==]",
        "IMAP4 IMAP4rev1 AUTH=XOAUTH2 UIDPLUS ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL+",
        "NO LOGIN failed.",
        &["basic authentication is off", "mailgate oauth authorize login@contoso.example"],
    ),
    (
        "someone@yahoo.com",
        "* OK [CAPABILITY IMAP4rev1 ID MOVE NAMESPACE XYMHIGHESTMODSEQ UIDPLUS LITERAL+ CHILDREN X-MSG-EXT UNSELECT OBJECTID] IMAP4rev1 imapgate-1.8.1_01.20166 imap1012.mail.ne1.yahoo.com",
        "IMAP4rev1 ID MOVE NAMESPACE XYMHIGHESTMODSEQ UIDPLUS LITERAL+ CHILDREN X-MSG-EXT UNSELECT OBJECTID",
        "NO [AUTHENTICATIONFAILED] LOGIN Invalid credentials",
        &["Yahoo Mail needs an app password", "https://help.yahoo.com/"],
    ),
    (
        "someone@aol.com",
        "* OK [CAPABILITY IMAP4rev1 ID MOVE NAMESPACE XYMHIGHESTMODSEQ UIDPLUS LITERAL+ CHILDREN X-MSG-EXT UNSELECT OBJECTID] IMAP4rev1 imapgate-1.8.1_01.20166 imap.aol.com",
        "IMAP4rev1 ID MOVE NAMESPACE XYMHIGHESTMODSEQ UIDPLUS LITERAL+ CHILDREN X-MSG-EXT UNSELECT OBJECTID",
        "NO [AUTHENTICATIONFAILED] LOGIN Invalid credentials",
        &["AOL Mail needs an app password", "https://help.aol.com/"],
    ),
];

const GMAIL_CAPS: &str = "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 XYZZY SASL-IR AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN AUTH=OAUTHBEARER";

#[test]
fn provider_refusals_map_to_advice() {
    let standins: Vec<StandIn> = PROVIDER_ANSWERS
        .iter()
        .map(|(_, greeting, caps, answer, _)| StandIn::imap(greeting, caps, answer))
        .collect();
    let accounts: Vec<Account> = PROVIDER_ANSWERS
        .iter()
        .zip(&standins)
        .map(|((email, ..), s)| account(email, &ep(s.addr().port(), "none", None, email), None))
        .collect();
    let config = ConfigFile::new(&accounts, 15);
    let (code, doc) = config.check_json(&[]);
    assert_eq!(code, 1, "{doc:#}");
    for ((email, _, _, answer, words), standin) in PROVIDER_ANSWERS.iter().zip(&standins) {
        // The stand-in really got a login attempt (so its answer is what the check read).
        assert!(
            standin
                .received()
                .iter()
                .any(|l| l.contains(" LOGIN ") || l.contains(" AUTHENTICATE ")),
            "{email}: no login reached the stand-in: {:?}",
            standin.received()
        );
        let step = failed_step(account_of(&doc, email));
        assert_eq!(step["name"], "imap.login", "{email}: {step:#}");
        assert_quotes_and_advises(email, step, answer, words);
    }
}

/// An OAuth account: the check logs in with the token from the token store, and says to run
/// `mailgate oauth authorize` while there is none. No token is printed.
#[test]
fn oauth_account_uses_the_stored_token() {
    let email = "ola@example.no";
    let idp = Idp::start(email);
    let mut opts = DovecotOpts::plaintext_only();
    opts.oauth2_introspection_url = Some(idp.url("/introspect"));
    let dovecot = Dovecot::start(opts);
    dovecot.add_user(email, UPSTREAM_PASSWORD);
    // No password with OAuth: the token is the credential.
    let imap = ep(dovecot.imap_port, "none", None, email).without("password");
    let account = Account::password(email, LOCAL_PASSWORD)
        .imap(imap)
        .oauth2("client_id", CLIENT_ID)
        .oauth2("authorize_url", idp.url("/authorize"))
        .oauth2("token_url", idp.url("/token"))
        .oauth2("scopes", ["mail"].as_slice())
        .oauth2("client_secret_env", "MAILGATE_TEST_CLIENT_SECRET");
    let config = ConfigFile::new(&[account], 15);
    let env = [("MAILGATE_TEST_CLIENT_SECRET", CLIENT_SECRET)];

    let out = config.check_env(&["--json"], &env);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(out.status.code(), Some(1), "{doc:#}");
    let (name, advice) = failure(&doc, email);
    assert_eq!(name, "imap.login");
    assert!(
        advice.contains(&format!("run `mailgate oauth authorize {email}`")),
        "{advice}"
    );

    let mut authorize = std::process::Command::new(BIN);
    authorize
        .args([
            "oauth",
            "authorize",
            email,
            "--client-credentials",
            "--config",
        ])
        .arg(config.path())
        .env("MAILGATE_TEST_CLIENT_SECRET", CLIENT_SECRET);
    let out = run_with_timeout(authorize, None, PROCESS_TIMEOUT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = config.check_env(&[], &env);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains(&format!(
            "✓ login        logged in as {email} with an OAuth access token"
        )),
        "{shown}"
    );
    let all = format!("{shown}{}", String::from_utf8_lossy(&out.stderr));
    let tokens = idp.issued_tokens();
    assert!(!tokens.is_empty());
    for secret in tokens.iter().map(String::as_str).chain([CLIENT_SECRET]) {
        assert!(!all.contains(secret), "a secret was printed:\n{all}");
    }
}

/// Providers' SMTP refusals (multi-line, as sent), replayed by a loopback stand-in: (address,
/// AUTH reply, words the advice must have).
const PROVIDER_SMTP_ANSWERS: &[(&str, &str, &[&str])] = &[
    (
        "smtp-app-password@gmail.com",
        "534-5.7.9 Application-specific password required. For more information, go to\r\n534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor d2sm1234567wms.12 - gsmtp",
        &["Google requires an app password", "[account.smtp]", "https://support.google.com/accounts/answer/185833"],
    ),
    (
        "smtp-web-login@gmail.com",
        "534-5.7.14 <https://accounts.google.com/signin/continue?sarp=1&scc=1&plt=AKgnsbt>\r\n534-5.7.14 Please log in via your web browser and then try again.\r\n534-5.7.14  Learn more at\r\n534 5.7.14  https://support.google.com/mail/answer/78754 x9sm1234567wms.12 - gsmtp",
        &["Google blocked the sign-in", "app password", "OAuth"],
    ),
    (
        "smtp-basic@outlook.com",
        "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [DB8PR09CA0165.eurprd09.prod.outlook.com 2026-01-01T00:00:00.000Z 08DC0A1B2C3D4E5F]",
        &["basic authentication is off", "mailgate oauth authorize smtp-basic@outlook.com"],
    ),
    (
        "smtp-tenant@contoso.example",
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. [AM0PR01CA0001.eurprd01.prod.exchangelabs.com]",
        &["basic authentication is off", "mailgate oauth authorize smtp-tenant@contoso.example"],
    ),
];

#[test]
fn provider_smtp_refusals_map_to_advice() {
    let imap = StandIn::imap(
        "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] stand-in ready",
        "IMAP4rev1 AUTH=PLAIN SASL-IR",
        "OK LOGIN completed.",
    );
    let smtp: Vec<StandIn> = PROVIDER_SMTP_ANSWERS
        .iter()
        .map(|(_, answer, _)| StandIn::smtp(answer))
        .collect();
    let accounts: Vec<Account> = PROVIDER_SMTP_ANSWERS
        .iter()
        .zip(&smtp)
        .map(|((email, ..), s)| {
            account(
                email,
                &ep(imap.addr().port(), "none", None, email),
                Some(&ep(s.addr().port(), "none", None, email)),
            )
        })
        .collect();
    let config = ConfigFile::new(&accounts, 15);
    let (code, doc) = config.check_json(&[]);
    assert_eq!(code, 1, "{doc:#}");
    for ((email, answer, words), standin) in PROVIDER_SMTP_ANSWERS.iter().zip(&smtp) {
        assert!(
            standin
                .received()
                .iter()
                .any(|l| l.starts_with("AUTH PLAIN")),
            "{email}: no AUTH reached the stand-in: {:?}",
            standin.received()
        );
        let account = account_of(&doc, email);
        let step = failed_step(account);
        assert_eq!(step["name"], "smtp.auth", "{email}: {account:#}");
        let first_line = answer.lines().next().expect("line");
        let code_and_status = &first_line[..first_line.find(' ').expect("space")];
        assert_quotes_and_advises(email, step, &code_and_status.replace('-', " "), words);
        // Every IMAP step passed, LOGOUT included.
        let imap_steps: Vec<&Value> = account["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("imap.")))
            .collect();
        assert_eq!(imap_steps.len(), 6, "{account:#}");
        assert!(imap_steps.iter().all(|s| s["ok"] == true), "{account:#}");
    }
}

/// A provider that answers a wrong password only after a while (2 s here, longer than
/// `connect_timeout_secs = 1`): the check waits for the answer as the gateway does
/// (upstream_timeout) and gives the password advice — not "the server is unstable". The SMTP
/// table names no password of its own, so the advice sends the operator to [account.imap],
/// where the password the SMTP login used is.
#[test]
fn delayed_refusal_and_inherited_smtp_password() {
    let imap = StandIn::imap(
        "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] stand-in ready",
        "IMAP4rev1 AUTH=PLAIN SASL-IR",
        "OK LOGIN completed.",
    );
    let smtp = StandIn::smtp_after(
        "535 5.7.8 Error: authentication failed: authentication failure",
        std::time::Duration::from_secs(2),
    );
    let email = "ola@example.no";
    let a = account(
        email,
        &ep(imap.addr().port(), "none", None, email),
        Some(&Upstream::plain(format!(
            "127.0.0.1:{}",
            smtp.addr().port()
        ))),
    );
    let config = ConfigFile::new(&[a], 1);
    let (code, doc) = config.check_json(&[]);
    assert_eq!(code, 1, "{doc:#}");
    let step = failed_step(account_of(&doc, email));
    assert_eq!(step["name"], "smtp.auth", "{doc:#}");
    assert_quotes_and_advises(
        email,
        step,
        "535 5.7.8",
        &[
            "the server rejected the password for ola@example.no",
            "re-enter the app password (or the account password) in [account.imap] (the SMTP login uses the IMAP password)",
        ],
    );
}

/// Each cause is named once: an error's own text must not repeat what its cause says (an
/// error chain prints the cause after the error). A missing config file, a listen address in
/// use, and a host name that does not resolve.
#[test]
fn error_messages_name_each_cause_once() {
    let once = |text: &str, cause: &str| {
        assert_eq!(
            text.matches(cause).count(),
            1,
            "{cause:?} should appear exactly once in:\n{text}"
        );
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.toml");
    let out = support::mailgate::run(&["run", "--config", &missing.display().to_string()], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read the config file"), "{stderr}");
    once(&stderr, "No such file or directory (os error 2)");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let config = dir.path().join("mailgate.toml");
    std::fs::write(
        &config,
        GateConfig::new()
            .server("imap_listen", taken.local_addr().expect("addr"))
            .account(account("ola@example.no", &ep(9, "none", None, "ola"), None))
            .to_toml(),
    )
    .expect("write config");
    let out = support::mailgate::run(&["run", "--config", &config.display().to_string()], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    once(&stderr, "Address already in use (os error 98)");

    let host = "no-such-host.invalid";
    let ep = ep(993, "implicit", None, "ola")
        .set("server", format!("{host}:993"))
        .without("tls_server_name");
    let config = ConfigFile::new(&[account("ola@example.no", &ep, None)], 3);
    let (code, doc) = config.check_json(&[]);
    assert_eq!(code, 1, "{doc:#}");
    let step = failed_step(account_of(&doc, "ola@example.no"));
    assert_eq!(step["name"], "imap.dns", "{step:#}");
    once(step["detail"].as_str().expect("detail"), "cannot resolve");
    once(step["detail"].as_str().expect("detail"), host);
}

/// The folders each of the three provider set-ups shows (tests/support/folders.rs): role →
/// the provider's name → the name the client sees, and the client's settings.
#[test]
fn folders_of_three_provider_set_ups() {
    use support::folders::{self, Layout};
    let run = |layout: Layout, wire: Option<&[&str]>, client: &str| -> (String, Value) {
        let dovecot = Dovecot::start(layout.opts());
        dovecot.add_user("ola", UPSTREAM_PASSWORD);
        if let Some(wire) = wire {
            folders::create(&dovecot, "ola", UPSTREAM_PASSWORD, wire);
        }
        let imap = ep(dovecot.imap_port, "none", None, "ola").set("allow_plaintext", true);
        let a = account("ola@example.no", &imap, None).folders("client", client);
        let file = ConfigFile::new(&[a], 10);
        let out = file.check(&[]);
        assert!(out.status.success(), "{}", text(&out));
        let (_, doc) = file.check_json(&[]);
        (text(&out), doc)
    };

    let (out, doc) = run(Layout::Gmail, None, "superoffice");
    for line in [
        "Folders (client = superoffice, sent copy: client)",
        "sent     [Gmail]/Sent Mail  →  Sent Items   (marked)",
        "drafts   [Gmail]/Drafts     →  Drafts   (marked)",
        "trash    [Gmail]/Trash      →  Deleted items   (marked)",
        "junk     [Gmail]/Spam       →  [Gmail]/Spam   (marked)",
        "archive  none found at the provider",
        "NameSent = \"Sent Items\"",
        "SaveSentInSentItems = on",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let roles = &account_of(&doc, "ola@example.no")["folders"]["roles"];
    assert_eq!(roles[0]["provider"], "[Gmail]/Sent Mail");
    assert_eq!(roles[0]["client"], "Sent Items");

    let (out, _) = run(Layout::Localized, Some(folders::NORWEGIAN), "outlook");
    for line in [
        "sent     Sendte elementer    →  Sent Items   (by name)",
        "junk     Søppelpost          →  Junk Email   (by name)",
        "archive  Arkiv               →  Archive   (by name)",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }

    let (out, _) = run(Layout::Exchange, None, "thunderbird");
    for line in [
        "sent     Sent Items     →  Sent   (by name)",
        "trash    Deleted Items  →  Trash   (by name)",
        "archive  Archive        →  Archives   (by name)",
        "Thunderbird, Copies & Folders",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
}
