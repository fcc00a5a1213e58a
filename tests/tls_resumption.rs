//! TLS session resumption towards the provider: mailgate's upstream IMAP and SMTP connections
//! take up the session of an earlier connection (a TLS 1.3 ticket) instead of a full
//! handshake, as `mailgate_upstream_tls_handshakes_total{protocol, resumed}` shows.
//!
//! One CA signs both servers' certificates (Postfix's test PKI; Dovecot serves the same
//! certificate), so IMAP and SMTP have the same trust and, with `localhost`, the same name: the
//! case where sessions of the two servers could be mixed up. Dovecot runs one login process
//! ([`ONE_LOGIN_PROCESS`]) so that its ticket keys are the same for every connection;
//! Postfix's come from its tlsmgr, shared by all smtpd processes.
//!
//! Every count is exact after known traffic; waits are bounded polls; no test asserts a
//! duration; all traffic stays on 127.0.0.1.
//!
//! Run: `cargo test --test tls_resumption`

mod support;

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use support::certs::{make_ca, CertFiles};
use support::config::loopback_tls;
use support::dovecot::ONE_LOGIN_PROCESS;
use support::postfix::DOMAIN;
use support::proc::{poll, sighup};
use support::scrape::{assert_bounded, fetch, Scrape, CONFIG_RELOADS};
use support::smtp_client::Raw;
use support::{Account, Dovecot, DovecotOpts, GateConfig, Mailgate, Postfix, Upstream};

const LOCAL_PW: &str = "Local-resume-pw-3c9a";
const UPSTREAM_PW: &str = "Upstream-resume-pw-81d4";
const HANDSHAKES: &str = "mailgate_upstream_tls_handshakes_total";
const SENT_COPIES: &str = "mailgate_sent_copies_total";
/// A bound on a hang (a reload, a Sent copy filed after the `250`), not a measurement.
const WAIT: Duration = Duration::from_secs(60);
const STEP: Duration = Duration::from_millis(50);

/// A Sent folder (`\Sent`, made at first login) for `sent_copy = "gateway"` to file into.
const SENT_FOLDER: &str = "namespace inbox {\n  inbox = yes\n  separator = /\n  \
                           mailbox \"Sent Mail\" {\n    special_use = \\Sent\n    auto = create\n  }\n}\n";

fn email(user: &str) -> String {
    format!("{user}@{DOMAIN}")
}

/// Postfix (with its SASL Dovecot) and an IMAP Dovecot serving Postfix's certificate, both
/// knowing `users` with [`UPSTREAM_PW`].
struct Servers {
    pf: Postfix,
    dc: Dovecot,
}

impl Servers {
    fn start(users: &[&str]) -> Servers {
        let pf = Postfix::start(users, UPSTREAM_PW);
        let conf = pf.dir.path().join("conf");
        let cert = CertFiles {
            cert: conf.join("cert.pem"),
            key: conf.join("key.pem"),
        };
        let mut opts = DovecotOpts::tls(&cert);
        opts.extra = format!("{ONE_LOGIN_PROCESS}{SENT_FOLDER}");
        let dc = Dovecot::start(opts);
        for user in users {
            dc.add_user(&email(user), UPSTREAM_PW);
        }
        Servers { pf, dc }
    }

    /// IMAP with implicit TLS, name `localhost`, trusting `ca`.
    fn imaps(&self, ca: &Path) -> Upstream {
        loopback_tls(self.dc.imaps_port.expect("imaps port"), "implicit", ca)
    }

    /// IMAP with STARTTLS, name `localhost`, trusting `ca`.
    fn imap_starttls(&self, ca: &Path) -> Upstream {
        loopback_tls(self.dc.imap_port, "starttls", ca)
    }

    /// SMTP submission with STARTTLS, name `localhost` (as IMAP's), trusting `ca`.
    fn submission(&self, ca: &Path) -> Upstream {
        loopback_tls(self.pf.starttls_port, "starttls", ca)
    }

    /// SMTP with implicit TLS to 127.0.0.1, the certificate's IP address checked.
    fn smtps(&self, ca: &Path) -> Upstream {
        let server = format!("127.0.0.1:{}", self.pf.implicit_port);
        Upstream::tls(server, "implicit", Some(ca))
    }
}

/// `user@DOMAIN` at `imap` and `smtp`, logging in there as itself.
fn account(user: &str, imap: Upstream, smtp: Upstream) -> Account {
    Account::password(&email(user), LOCAL_PW)
        .imap(imap.login(&email(user), UPSTREAM_PW))
        .smtp(smtp.login(&email(user), UPSTREAM_PW))
}

fn config(accounts: Vec<Account>) -> GateConfig {
    GateConfig::new()
        .server("auth_failure_delay_ms", 10)
        .accounts(accounts)
        .metrics(None)
}

fn scrape(gw: &Mailgate) -> Scrape {
    let addr = gw.metrics_addr.expect("metrics listener");
    Scrape::parse(fetch(addr).expect("scrape")).expect("parse scrape")
}

/// An IMAP login through mailgate as `user` (so one upstream login), then LOGOUT.
fn imap_login(gw: &Mailgate, user: &str) {
    let mut c = gw.connect();
    c.login(&email(user), LOCAL_PW);
    c.ok("L2", "LOGOUT");
}

/// One message from `user` to bob through mailgate (so one upstream submission).
fn submit(gw: &Mailgate, user: &str) {
    let (mut c, greeting) = Raw::connect(gw.smtp_addr);
    assert!(greeting.starts_with("220"), "{greeting}");
    let auth = c.login(&email(user), LOCAL_PW);
    assert!(auth.starts_with("235"), "{auth}");
    for (line, want) in [
        (format!("MAIL FROM:<{}>", email(user)), "250"),
        (format!("RCPT TO:<bob@{DOMAIN}>"), "250"),
        ("DATA".to_string(), "354"),
    ] {
        let reply = c.cmd(&line);
        assert!(reply.starts_with(want), "{line}: {reply}\n{}", gw.log());
    }
    static SENT: AtomicU32 = AtomicU32::new(0);
    let n = SENT.fetch_add(1, Ordering::Relaxed);
    let body = format!(
        "From: {}\r\nTo: bob@{DOMAIN}\r\nSubject: resumption {n}\r\n\
         Message-ID: <resumption-{n}@{DOMAIN}>\r\n\r\nhello\r\n",
        email(user),
    );
    c.send(body.as_bytes());
    let reply = c.cmd(".");
    assert!(
        reply.starts_with("250"),
        "end of data: {reply}\n{}",
        gw.log()
    );
    assert!(c.cmd("QUIT").starts_with("221"));
}

/// What a test does next.
#[derive(Clone, Copy, Debug)]
enum Act {
    /// An IMAP login through mailgate as the user ([`imap_login`]).
    Imap(&'static str),
    /// One message from the user through mailgate ([`submit`]).
    Submit(&'static str),
    /// [`Act::Submit`], then waits (bounded) until this many Sent copies were filed (each over
    /// an IMAP login of its own, after the `250`).
    SubmitFiled(&'static str, u32),
    /// SIGHUP, then waits (bounded) until this many reloads succeeded.
    Reload(u32),
}

/// The upstream handshakes so far: IMAP full, IMAP resumed, SMTP full, SMTP resumed.
type Handshakes = [u32; 4];

/// Does each act of `script`, then asserts the handshakes so far.
fn play(gw: &Mailgate, script: &[(Act, Handshakes)]) {
    for (step, &(act, want)) in script.iter().enumerate() {
        match act {
            Act::Imap(user) => imap_login(gw, user),
            Act::Submit(user) => submit(gw, user),
            Act::SubmitFiled(user, n) => {
                submit(gw, user);
                wait_for(gw, SENT_COPIES, ("action", "appended"), n);
            }
            Act::Reload(n) => {
                sighup(gw.pid());
                wait_for(gw, CONFIG_RELOADS, ("result", "ok"), n);
            }
        }
        let s = scrape(gw);
        let got = [
            ("imap", "false"),
            ("imap", "true"),
            ("smtp", "false"),
            ("smtp", "true"),
        ]
        .map(|(p, r)| s.value(HANDSHAKES, &[("protocol", p), ("resumed", r)]) as u32);
        assert_eq!(
            got,
            want,
            "handshakes [imap full, imap resumed, smtp full, smtp resumed] after step {step}, \
             {act:?}\n\
             scrape:\n{}\nlog:\n{}",
            s.body,
            gw.log()
        );
    }
}

/// Waits (bounded) until the counter `name{label}` reaches `n`.
fn wait_for(gw: &Mailgate, name: &str, label: (&str, &str), n: u32) {
    let reached = poll(WAIT, STEP, || {
        (scrape(gw).value(name, &[label]) >= f64::from(n)).then_some(())
    });
    assert!(reached.is_some(), "{name}{label:?} < {n}\n{}", gw.log());
}

/// The second IMAP login of an account resumes the first one's session, with implicit TLS
/// and with STARTTLS; another account at the same server resumes too (the accounts share
/// their sessions per CA and port), so only the first login to each port is a full handshake.
#[test]
fn imap_logins_resume_over_implicit_tls_and_starttls() {
    let servers = Servers::start(&["ola", "kari", "per"]);
    let ca = servers.pf.ca_file.clone();
    let mut gw = config(vec![
        account("ola", servers.imaps(&ca), servers.submission(&ca)),
        account("kari", servers.imaps(&ca), servers.submission(&ca)),
        account("per", servers.imap_starttls(&ca), servers.submission(&ca)),
    ])
    .start();

    play(
        &gw,
        &[
            (Act::Imap("ola"), [1, 0, 0, 0]),
            // The same account again.
            (Act::Imap("ola"), [1, 1, 0, 0]),
            // Another account at the same server.
            (Act::Imap("kari"), [1, 2, 0, 0]),
            // STARTTLS: another port, another server.
            (Act::Imap("per"), [2, 2, 0, 0]),
            (Act::Imap("per"), [2, 3, 0, 0]),
        ],
    );
    let s = scrape(&gw);
    assert_bounded(&s, &[]);
    gw.assert_no_secrets(&[LOCAL_PW, UPSTREAM_PW]);
}

/// The second submission of an account resumes the first one's session, with STARTTLS (name
/// `localhost`) and with implicit TLS (an IP address as the name).
#[test]
fn smtp_submissions_resume_over_starttls_and_implicit_tls() {
    let servers = Servers::start(&["alice", "carol"]);
    let ca = servers.pf.ca_file.clone();
    let mut gw = config(vec![
        account("alice", servers.imaps(&ca), servers.submission(&ca)),
        account("carol", servers.imaps(&ca), servers.smtps(&ca)),
    ])
    .start();

    play(
        &gw,
        &[
            (Act::Submit("alice"), [0, 0, 1, 0]),
            (Act::Submit("alice"), [0, 0, 1, 1]),
            // Implicit TLS: another port.
            (Act::Submit("carol"), [0, 0, 2, 1]),
            (Act::Submit("carol"), [0, 0, 2, 2]),
        ],
    );
    gw.assert_no_secrets(&[LOCAL_PW, UPSTREAM_PW]);
}

/// IMAP and SMTP at one name (`localhost`) with one CA are different servers: each resumes its
/// own sessions however the logins alternate, and the Sent copy's own IMAP login
/// (`sent_copy = "gateway"`) resumes like a client's. The CA is the account's `ca_file`.
#[test]
fn imap_and_smtp_at_one_name_resume_their_own_sessions() {
    alternating_logins(true);
}

/// [`imap_and_smtp_at_one_name_resume_their_own_sessions`] without a `ca_file`: the CA is in
/// the system trust (`SSL_CERT_FILE`), as a public provider's is.
#[test]
fn imap_and_smtp_at_one_name_resume_their_own_sessions_with_system_trust() {
    alternating_logins(false);
}

/// IMAP login, submission (and its Sent copy), IMAP login, submission, as `erin`; with
/// `ca_file` false the accounts have none and mailgate trusts the CA as a system root.
fn alternating_logins(ca_file: bool) {
    let servers = Servers::start(&["erin"]);
    let ca = servers.pf.ca_file.clone();
    let trust = |up: Upstream| if ca_file { up } else { up.without("ca_file") };
    let erin = account(
        "erin",
        trust(servers.imaps(&ca)),
        trust(servers.submission(&ca)),
    )
    .folders("sent_copy", "gateway");
    let ca_text = ca.display().to_string();
    let env: &[(&str, &str)] = if ca_file {
        &[]
    } else {
        &[("SSL_CERT_FILE", &ca_text)]
    };
    let mut gw = config(vec![erin]).start_with_env(env);

    play(
        &gw,
        &[
            (Act::Imap("erin"), [1, 0, 0, 0]),
            // With the Sent copy's own IMAP login, resumed.
            (Act::SubmitFiled("erin", 1), [1, 1, 1, 0]),
            (Act::Imap("erin"), [1, 2, 1, 0]),
            (Act::SubmitFiled("erin", 2), [1, 3, 1, 1]),
        ],
    );

    let sent = servers.dc.folder_messages(&email("erin"), "Sent Mail");
    assert_eq!(sent.len(), 2, "Sent copies filed");
    gw.assert_no_secrets(&[LOCAL_PW, UPSTREAM_PW]);
}

/// A reload that leaves the CA file's contents alone keeps the sessions: the logins after it
/// resume. A CA file whose contents changed is new trust: the next login of each protocol is a
/// full handshake (a session verified under the old trust is not taken up).
#[test]
fn reload_keeps_sessions_while_the_trust_is_unchanged() {
    let servers = Servers::start(&["ola"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.pem");
    fs::copy(&servers.pf.ca_file, &ca).expect("copy CA");
    let gate_config = config(vec![account(
        "ola",
        servers.imaps(&ca),
        servers.submission(&ca),
    )]);
    let mut gw = gate_config.start();

    play(
        &gw,
        &[
            (Act::Imap("ola"), [1, 0, 0, 0]),
            (Act::Submit("ola"), [1, 0, 1, 0]),
            // The same file again (as in a reload for another account's sake).
            (Act::Reload(1), [1, 0, 1, 0]),
            (Act::Imap("ola"), [1, 1, 1, 0]),
            (Act::Submit("ola"), [1, 1, 1, 1]),
        ],
    );

    // The CA file now trusts one more CA.
    let mut pem = fs::read_to_string(&ca).expect("read CA");
    pem.push_str(&make_ca("mailgate resumption extra CA").cert.pem());
    fs::write(&ca, pem).expect("write CA");
    play(
        &gw,
        &[
            (Act::Reload(2), [1, 1, 1, 1]),
            (Act::Imap("ola"), [2, 1, 1, 1]),
            (Act::Submit("ola"), [2, 1, 2, 1]),
            // Resumed again, under the new trust.
            (Act::Imap("ola"), [2, 2, 2, 1]),
            (Act::Submit("ola"), [2, 2, 2, 2]),
        ],
    );

    gw.assert_no_secrets(&[LOCAL_PW, UPSTREAM_PW]);
}
