//! IMAP integration tests: a real Dovecot upstream, the real `mailgate` binary in between,
//! and real clients (python3 imaplib, and a raw client for byte-exact assertions).
//!
//! Every test starts its own Dovecot and mailgate on free loopback ports; nothing asserts on
//! time. Run: `cargo test --test imap` (harness self-tests: `cargo test --test harness`).
//!
//! - `login`: greeting, LOGIN/AUTHENTICATE forms, local failures, secrets in logs
//! - `upstream`: the three TLS modes, certificate and STARTTLS failures, stored credentials
//! - `relay`: byte exactness, literals, IDLE, mailbox operations, pipelining
//! - `cli`: check-config, broken configs, hash-password
//! - `folders`: the folder names the client expects, on Dovecot set up three ways

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod folders;
mod login;
mod relay;
mod upstream;

use std::fs;
use std::time::Duration;

use support::config::{loopback_server, loopback_tls};
use support::faultproxy::Hostile;
use support::imap_client::{
    assert_tagged, contains, fetch_literals, normalize_timing, split_responses, tagged_line,
    tagged_status,
};
use support::mailgate;
use support::messages::{corpus, simple, varied, Rng};
use support::proc::{free_port, python_ok};
use support::{
    b64, b64_decode, describe_difference, Account, Dovecot, DovecotOpts, Gate, GateConfig,
    ImapClient, Mailgate, Pki, Upstream,
};

const EMAIL: &str = "ola@example.no";
/// Distinctive, so a leak into any log line is unmistakable.
const LOCAL_PW: &str = "Local-pw-5e2b9c41";
const UPSTREAM_USER: &str = "ola";
const UPSTREAM_PW: &str = "Upstream-pw-8d13f7a0";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// `tls = "none"` to Dovecot's plaintext port.
    Plain,
    /// `tls = "starttls"` to Dovecot's plaintext port, which offers STARTTLS.
    Starttls,
    /// `tls = "implicit"` to Dovecot's imaps port.
    Implicit,
}

/// The usual upstream settings for `mode`, trusting the test CA.
fn upstream(pki: &Pki, dovecot: &Dovecot, mode: Mode) -> Upstream {
    let up = match mode {
        Mode::Plain => Upstream::plain(loopback_server(dovecot.imap_port).0),
        Mode::Starttls => loopback_tls(dovecot.imap_port, "starttls", &pki.ca),
        Mode::Implicit => loopback_tls(
            dovecot.imaps_port.expect("dovecot has an imaps port"),
            "implicit",
            &pki.ca,
        ),
    };
    up.login(UPSTREAM_USER, UPSTREAM_PW)
}

fn account(email: &str, imap: Upstream) -> Account {
    Account::password(email, LOCAL_PW).imap(imap)
}

/// A config with these accounts.
fn config(accounts: impl IntoIterator<Item = Account>) -> GateConfig {
    GateConfig::new().accounts(accounts)
}

fn gate(mode: Mode) -> Gate {
    gate_with(mode, &[])
}

/// Dovecot (TLS-capable, user `ola`, holding `messages`) + mailgate with the account
/// `ola@example.no`.
fn gate_with(mode: Mode, messages: &[Vec<u8>]) -> Gate {
    let pki = Pki::new();
    let dovecot = Dovecot::start(DovecotOpts::tls(&pki.server));
    dovecot.add_user(UPSTREAM_USER, UPSTREAM_PW);
    if !messages.is_empty() {
        dovecot.fill_maildir(UPSTREAM_USER, messages);
    }
    let config = config([account(EMAIL, upstream(&pki, &dovecot, mode))]);
    Gate::start(dovecot, &config).with_pki(pki)
}

impl Gate {
    /// A client logged in through mailgate with the local password; asserts the login
    /// answer's capabilities are filtered.
    fn login(&self) -> ImapClient {
        let mut c = self.connect();
        let resp = local_login(&mut c, "L1", EMAIL);
        assert_login_ok(&resp, "L1");
        c
    }

    /// A direct connection to Dovecot, logged in.
    fn direct(&self) -> ImapClient {
        self.direct_as(UPSTREAM_USER, UPSTREAM_PW)
    }

    /// Stops mailgate and checks that neither password (nor a SASL encoding of it) appears
    /// in anything mailgate wrote, and that the local password never reached Dovecot.
    fn finish(mut self) {
        check_no_secrets(&mut self.mailgate, &self.dovecot);
    }
}

fn check_no_secrets(mailgate: &mut Mailgate, dovecot: &Dovecot) {
    let plain_local = b64(format!("\0{EMAIL}\0{LOCAL_PW}").as_bytes());
    let plain_upstream = b64(format!("\0{UPSTREAM_USER}\0{UPSTREAM_PW}").as_bytes());
    let local_b64 = b64(LOCAL_PW.as_bytes());
    let upstream_b64 = b64(UPSTREAM_PW.as_bytes());
    mailgate.assert_no_secrets(&[
        LOCAL_PW,
        UPSTREAM_PW,
        &plain_local,
        &plain_upstream,
        &local_b64,
        &upstream_b64,
    ]);
    let log = dovecot.log();
    assert!(
        !log.contains(LOCAL_PW) && !log.contains(&local_b64),
        "the local password reached the upstream server:\n{log}"
    );
}

/// `TAG LOGIN "email" "local password"` on `c`; returns the raw response.
fn local_login(c: &mut ImapClient, tag: &str, email: &str) -> Vec<u8> {
    c.command(
        tag,
        &format!("LOGIN {} {}", quoted(email), quoted(LOCAL_PW)),
    )
}

fn quoted(s: &str) -> String {
    support::imap_client::quote(s)
}

/// The capabilities in `tag OK [CAPABILITY ...]`.
fn login_capabilities(resp: &[u8], tag: &str) -> Vec<String> {
    let status = tagged_status(resp, tag);
    let inner = status
        .strip_prefix("OK [CAPABILITY ")
        .and_then(|s| s.split(']').next())
        .unwrap_or_else(|| panic!("expected {tag} OK [CAPABILITY ...], got {status:?}"));
    inner.split_whitespace().map(str::to_string).collect()
}

/// A successful login through mailgate: `tag OK [CAPABILITY ...]` with IMAP4rev1 and without
/// what the gateway must hide.
fn assert_login_ok(resp: &[u8], tag: &str) {
    assert_tagged(resp, tag, "OK");
    let caps = login_capabilities(resp, tag);
    assert!(
        caps.iter().any(|c| c.eq_ignore_ascii_case("IMAP4rev1")),
        "{caps:?}"
    );
    for cap in &caps {
        let upper = cap.to_ascii_uppercase();
        assert!(
            upper != "STARTTLS" && !upper.starts_with("AUTH=") && upper != "LOGINDISABLED",
            "login answer advertises {cap}: {caps:?}"
        );
    }
}

fn assert_status_prefix(resp: &[u8], tag: &str, prefix: &str) -> String {
    let status = tagged_status(resp, tag);
    assert!(
        status.starts_with(prefix),
        "expected `{tag} {prefix}...`, got `{tag} {status}`\nfull response:\n{}",
        String::from_utf8_lossy(resp)
    );
    status
}

/// python3 imaplib through mailgate: authenticate, LIST, SELECT, FETCH 1, NOOP, LOGOUT.
fn python_session(gate: &Gate, auth: &str, message: &[u8]) {
    let port = gate.mailgate.imap_addr.port().to_string();
    let stdout = python_ok(&[
        "session",
        "--port",
        &port,
        "--user",
        EMAIL,
        "--password",
        LOCAL_PW,
        "--auth",
        auth,
    ]);
    assert!(stdout.contains("\nauth OK"), "{stdout}");
    assert!(stdout.contains("\nlist OK"), "{stdout}");
    assert!(stdout.contains("INBOX"), "{stdout}");
    assert!(stdout.contains("\nselect OK 1\n"), "{stdout}");
    assert!(
        stdout.contains(&format!("\nfetch1 OK {}\n", support::hex(message))),
        "{stdout}"
    );
    assert!(stdout.contains("\nlogout BYE"), "{stdout}");
}
