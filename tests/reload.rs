//! Config reload on SIGHUP, beyond what tests/metrics.rs covers (a new account and a TOML
//! syntax error, with the reload counter): a renewed `[server.tls]` certificate applies to new
//! TLS sessions while a running one goes on; a reload with an unusable key file is rejected
//! with its position in the log, and the old certificate and accounts stay; a removed account
//! cannot start new sessions but its running session continues; failed-login counts survive a
//! reload.
//!
//! Every wait is a bounded poll on mailgate's log; no test asserts a duration.
//!
//! Run: `cargo test --test reload`

mod support;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use support::certs::CertFiles;
use support::dns::DnsServer;
use support::imap_client::{quote, tagged_status};
use support::proc::{poll, sighup};
use support::tls_client::{logged_addr, Conn};
use support::{Account, Dovecot, DovecotOpts, GateConfig, Mailgate, Pki, Upstream};

const LOCAL_PW: &str = "Reload-pw-6a0c";
const UPSTREAM_USER: &str = "ola";
const UPSTREAM_PW: &str = "Upstream-pw-2b7d";
const WAIT: Duration = Duration::from_secs(30);
const STEP: Duration = Duration::from_millis(20);

/// The `[server]` settings every test here starts from: an implicit-TLS IMAP listener, no
/// failed-login delay.
fn server() -> GateConfig {
    GateConfig::new()
        .server("imaps_listen", "127.0.0.1:0")
        .limits(&[("auth_failure_delay_ms", 0), ("max_auth_failures", 20)])
}

/// `server` with `[server.tls]` from `tls` (paths as written) and one account per name in
/// `accounts`, all on the Dovecot at `port`.
fn config(server: &GateConfig, tls: (&str, &str), port: u16, accounts: &[&str]) -> GateConfig {
    server
        .clone()
        .tls(Path::new(tls.0), Path::new(tls.1))
        .accounts(accounts.iter().map(|name| {
            Account::password(&format!("{name}@example.no"), LOCAL_PW).imap(
                Upstream::plain(format!("127.0.0.1:{port}")).login(UPSTREAM_USER, UPSTREAM_PW),
            )
        }))
}

fn dovecot() -> Dovecot {
    let d = Dovecot::start(DovecotOpts::plaintext_only());
    d.add_user(UPSTREAM_USER, UPSTREAM_PW);
    d
}

/// A test PKI, Dovecot, and mailgate serving the PKI's server certificate.
struct Setup {
    /// The `[server]` settings of every config written.
    server: GateConfig,
    pki: Pki,
    dc: Dovecot,
    cert: String,
    key: String,
    gate: Mailgate,
}

impl Setup {
    fn start(accounts: &[&str], server: GateConfig) -> Setup {
        let pki = Pki::new();
        let dc = dovecot();
        let cert = pki.server.cert.display().to_string();
        let key = pki.server.key.display().to_string();
        let gate = config(&server, (&cert, &key), dc.imap_port, accounts).start();
        Setup {
            server,
            pki,
            dc,
            cert,
            key,
            gate,
        }
    }

    /// The config with the same `[server]` settings and certificate, and these accounts.
    fn config(&self, key: &str, accounts: &[&str]) -> GateConfig {
        config(&self.server, (&self.cert, key), self.dc.imap_port, accounts)
    }
}

/// Copies a certificate and key to `cert.pem` / `key.pem` in `dir` (the paths the config
/// names), as a certificate renewal would.
fn install(dir: &Path, files: &CertFiles) {
    fs::copy(&files.cert, dir.join("cert.pem")).expect("copy cert");
    fs::copy(&files.key, dir.join("key.pem")).expect("copy key");
}

/// Sends SIGHUP and waits until the log has `n` lines containing `marker`.
fn reload(gate: &Mailgate, marker: &str, n: usize) {
    sighup(gate.pid());
    let seen = poll(WAIT, STEP, || {
        let count = gate.lines().iter().filter(|l| l.contains(marker)).count();
        (count >= n).then_some(())
    });
    assert!(
        seen.is_some(),
        "no {n}× \"{marker}\" after SIGHUP:\n{}",
        gate.log()
    );
}

/// An implicit-TLS connection trusting `ca`, greeted, with `LOGIN` as `user`; returns it and
/// the tagged status line.
fn tls_login(imaps: SocketAddr, ca: &Path, tag: &str, user: &str) -> (Conn, String) {
    let mut c = Conn::implicit(imaps, ca);
    let greeting = c.line().expect("greeting");
    assert!(greeting.starts_with("* OK"), "{greeting}");
    c.send(format!("{tag} LOGIN {} {}\r\n", quote(user), quote(LOCAL_PW)).as_bytes())
        .expect("send");
    let status = c.until(&format!("{tag} ")).pop().unwrap_or_default();
    (c, status)
}

/// A renewed certificate (same file names, new CA) is served to TLS sessions that start after
/// SIGHUP; a session that started before keeps working; a client that trusts only the old CA
/// now fails the handshake.
#[test]
fn renewed_certificate_applies_to_new_sessions() {
    let pki = Pki::new();
    let dc = dovecot();
    let dir = tempfile::tempdir().expect("tempdir");
    install(dir.path(), &pki.server);
    let cert = dir.path().join("cert.pem").display().to_string();
    let key = dir.path().join("key.pem").display().to_string();
    let gate = &config(&server(), (&cert, &key), dc.imap_port, &["ola"]).start();
    let imaps = logged_addr(gate, "imaps listening on");

    let (mut before, status) = tls_login(imaps, &pki.ca, "a1", "ola@example.no");
    assert!(status.starts_with("a1 OK"), "{status}");

    install(dir.path(), &pki.other_server);
    reload(gate, "configuration reloaded", 1);

    let (_new, status) = tls_login(imaps, &pki.other_ca, "b1", "ola@example.no");
    assert!(status.starts_with("b1 OK"), "{status}");
    let mut old_trust = Conn::implicit(imaps, &pki.ca);
    let refused = old_trust.line();
    assert!(
        refused.is_err(),
        "the old certificate is still served: {refused:?}"
    );

    before
        .send(b"a2 SELECT INBOX\r\n")
        .expect("send on the running session");
    let sel = before.until("a2 ");
    assert!(
        sel.last().is_some_and(|l| l.starts_with("a2 OK")),
        "{sel:?}"
    );
}

/// A reload whose key file is missing is rejected with the file, line, column and field in the
/// log; the previous certificate and accounts stay in use.
#[test]
fn broken_tls_reload_keeps_the_old_config() {
    let setup = Setup::start(&["ola"], server());
    let (pki, gate) = (&setup.pki, &setup.gate);
    let broken = setup
        .config("/nonexistent/key.pem", &["ola", "kari"])
        .to_toml();
    fs::write(&gate.config_path, &broken).expect("write config");
    reload(gate, "configuration reload failed", 1);
    let line = gate
        .lines()
        .into_iter()
        .find(|l| l.contains("configuration reload failed"))
        .unwrap_or_default();
    assert!(
        line.contains("keeping the previous configuration")
            && line.contains("mailgate.toml:10:7: server.tls.key:")
            && line.contains("/nonexistent/key.pem"),
        "{line}"
    );
    let imaps = logged_addr(gate, "imaps listening on");
    let (_c, status) = tls_login(imaps, &pki.ca, "a1", "ola@example.no");
    assert!(status.starts_with("a1 OK"), "{status}");
    // kari was only in the rejected file.
    let (_k, status) = tls_login(imaps, &pki.ca, "k1", "kari@example.no");
    assert!(
        status.starts_with("k1 NO [AUTHENTICATIONFAILED]"),
        "{status}"
    );
}

/// What a half-written save or a full disk leaves is never loaded: on SIGHUP an empty file, a
/// whitespace-only one, a file cut short inside a table and one that lost its accounts are each
/// refused with the reason in the log, and the running accounts keep logging in; an explicit
/// `allow_no_accounts = true` is then obeyed. `check-config` refuses the same files.
#[test]
fn empty_or_truncated_file_keeps_the_old_config() {
    let setup = Setup::start(&["ola"], server());
    let (pki, gate) = (&setup.pki, &setup.gate);
    let imaps = logged_addr(gate, "imaps listening on");
    let whole = setup.config(&setup.key, &["ola"]).to_toml();
    let cut = &whole[..whole.find("[[account]]").expect("account table")];
    let truncated_in_key = &whole[..whole.find("local_password_hash = ").expect("hash") + 10];
    let cases: [(&str, &str, &str); 4] = [
        ("empty", "", "the config file is empty"),
        ("blank", "\n  \n", "the config file is empty"),
        ("no accounts", cut, "no accounts in"),
        ("cut in a key", truncated_in_key, "mailgate.toml:"),
    ];
    let config = gate.config_path.display().to_string();
    for (n, (what, text, reason)) in cases.iter().enumerate() {
        fs::write(&gate.config_path, text).expect("write config");
        reload(gate, "configuration reload failed", n + 1);
        let line = gate
            .lines()
            .into_iter()
            .filter(|l| l.contains("configuration reload failed"))
            .nth(n)
            .unwrap_or_default();
        assert!(
            line.contains("keeping the previous configuration") && line.contains(reason),
            "{what}: {line}"
        );
        let (_c, status) = tls_login(imaps, &pki.ca, &format!("a{n}"), "ola@example.no");
        assert!(status.starts_with(&format!("a{n} OK")), "{what}: {status}");
        let out = support::mailgate::run(&["check-config", "--config", &config], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(reason),
            "check-config accepted the {what} file: {err}"
        );
    }
    assert!(
        !gate.log().contains("configuration reloaded"),
        "{}",
        gate.log()
    );
    // Said explicitly, a file without accounts is meant: it loads and nobody logs in.
    let meant = cut.replace("[server]\n", "[server]\nallow_no_accounts = true\n");
    fs::write(&gate.config_path, &meant).expect("write config");
    let out = support::mailgate::run(&["check-config", "--config", &config], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{config}: OK (0 accounts)\n")
    );
    reload(gate, "configuration reloaded", 1);
    let (_c, status) = tls_login(imaps, &pki.ca, "z1", "ola@example.no");
    assert!(
        status.starts_with("z1 NO [AUTHENTICATIONFAILED]"),
        "{status}"
    );
}

/// An account removed by a reload cannot start new sessions, while its session from before
/// the reload goes on; failed-login counts are not forgotten by a reload.
#[test]
fn removed_account_keeps_running_session_and_throttle_survives() {
    let throttle = server().limits(&[
        ("login_throttle_threshold", 1),
        ("login_lockout_secs", 3600),
    ]);
    let setup = Setup::start(&["ola", "kari"], throttle);
    let gate = &setup.gate;
    let mut running = gate.connect();
    let status = tagged_status(
        &running.command(
            "r1",
            &format!("LOGIN {} {}", quote("ola@example.no"), quote(LOCAL_PW)),
        ),
        "r1",
    );
    assert!(status.starts_with("OK"), "{status}");
    // kari: two distinct wrong passwords lock her out (threshold 1).
    let mut c = gate.connect();
    for i in 0..2 {
        c.command(
            &format!("w{i}"),
            &format!(
                "LOGIN {} {}",
                quote("kari@example.no"),
                quote(&format!("no-{i}"))
            ),
        );
    }

    fs::write(
        &gate.config_path,
        setup.config(&setup.key, &["kari"]).to_toml(),
    )
    .expect("write config");
    reload(gate, "configuration reloaded", 1);

    let mut c = gate.connect();
    let login = |c: &mut support::ImapClient, tag: &str, user: &str| {
        tagged_status(
            &c.command(tag, &format!("LOGIN {} {}", quote(user), quote(LOCAL_PW))),
            tag,
        )
    };
    assert!(login(&mut c, "o1", "ola@example.no").starts_with("NO [AUTHENTICATIONFAILED]"));
    assert!(
        login(&mut c, "k1", "kari@example.no").starts_with("NO [UNAVAILABLE]"),
        "{}",
        gate.log()
    );
    let sel = running.command("r2", "SELECT INBOX");
    assert!(
        tagged_status(&sel, "r2").starts_with("OK"),
        "{}",
        String::from_utf8_lossy(&sel)
    );
}

/// Discovery during a reload does not stop the gateway. While the DNS stand-in keeps its
/// answers back (a resolver gone silent), a client is greeted and logs in with the running
/// configuration, a second SIGHUP is remembered, and SIGTERM during such a reload shuts down
/// without waiting for it. When the answers come, the first reload ends (refused: the new
/// domain has no servers) and the remembered one reads the file again and applies it.
#[test]
fn slow_discovery_during_reload_keeps_serving_and_stopping() {
    let dns = DnsServer::start(&[]);
    let setup = Setup::start(&["ola"], server().server("resolver", dns.addr));
    let gate = &setup.gate;
    // Outcomes of reloads so far (not the "reading" lines).
    let outcomes = || {
        gate.lines()
            .iter()
            .filter(|l| {
                l.contains("configuration reloaded") || l.contains("configuration reload failed")
            })
            .count()
    };
    let with_undiscoverable = |accounts: &[&str]| {
        setup
            .config(&setup.key, accounts)
            .account(
                Account::password("kari@slow.test", LOCAL_PW).imap(Upstream::empty().password("p")),
            )
            .to_toml()
    };
    let asked = |n: usize| {
        poll(WAIT, STEP, || (dns.queries().len() >= n).then_some(()))
            .unwrap_or_else(|| panic!("discovery asked no DNS question:\n{}", gate.log()));
    };

    dns.hold();
    fs::write(&gate.config_path, with_undiscoverable(&["ola"])).expect("write config");
    sighup(gate.pid());
    asked(1);
    // The reload is waiting for DNS: new sessions are served meanwhile. With every answer held
    // back, discovery only ends by its own time-outs (MX, autoconfig and guessed hosts, 2 × 2 s
    // per name: about 25 s), far beyond one login, so no outcome can have been logged yet.
    let out = gate.imap_login("ola@example.no", LOCAL_PW);
    assert!(out.contains("\nauth OK"), "{out}\n{}", gate.log());
    assert_eq!(outcomes(), 0, "the reload ended early:\n{}", gate.log());

    // A second SIGHUP (kari gone, per added) waits for the first reload instead of being lost.
    fs::write(
        &gate.config_path,
        setup.config(&setup.key, &["ola", "per"]).to_toml(),
    )
    .expect("write config");
    reload(gate, "SIGHUP during a reload", 1);
    dns.release();
    let ended = poll(WAIT, STEP, || {
        let lines = gate.lines();
        let failed = lines
            .iter()
            .position(|l| l.contains("configuration reload failed"))?;
        let applied = lines
            .iter()
            .position(|l| l.contains("configuration reloaded"))?;
        Some((lines[failed].clone(), failed < applied))
    });
    let (failed, in_order) =
        ended.unwrap_or_else(|| panic!("reloads did not end:\n{}", gate.log()));
    assert!(
        failed.contains("account kari@slow.test: cannot discover its servers"),
        "{failed}"
    );
    assert!(in_order, "{}", gate.log());
    let out = gate.imap_login("per@example.no", LOCAL_PW);
    assert!(out.contains("\nauth OK"), "{out}");

    // SIGTERM while a reload waits for DNS: mailgate stops without finishing it.
    dns.hold();
    let before = dns.queries().len();
    fs::write(&gate.config_path, with_undiscoverable(&["ola", "per"])).expect("write config");
    sighup(gate.pid());
    asked(before + 1);
    support::proc::sigterm(gate.pid());
    let stopped = poll(WAIT, STEP, || {
        gate.lines()
            .iter()
            .any(|l| l.contains("all sessions ended"))
            .then_some(())
    });
    assert!(stopped.is_some(), "no shutdown:\n{}", gate.log());
    assert_eq!(outcomes(), 2, "{}", gate.log());
}
