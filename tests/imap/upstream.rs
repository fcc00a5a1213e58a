//! The upstream connection: plaintext, STARTTLS and implicit TLS; certificates the account
//! does not trust; a server without STARTTLS; a stored credential the server rejects.

use super::*;

fn upstream_mode_session(mode: Mode) {
    let message = simple(&format!("mode {mode:?}"), "relayed");
    let g = gate_with(mode, std::slice::from_ref(&message));
    python_session(&g, "login", &message);

    // The same through the raw client, compared with a direct session. The login answer
    // carries the upstream's capabilities minus what the gateway hides.
    let mut via = g.connect();
    let via_login = local_login(&mut via, "L1", EMAIL);
    assert_login_ok(&via_login, "L1");
    let mut direct = g.dovecot.connect();
    let direct_login = direct.login(UPSTREAM_USER, UPSTREAM_PW);
    let hidden = |c: &String| {
        let c = c.to_ascii_uppercase();
        c == "STARTTLS"
            || c == "LOGINDISABLED"
            || c.starts_with("AUTH=")
            || c.starts_with("COMPRESS=")
    };
    let mut want: Vec<String> = login_capabilities(&direct_login, "L1")
        .into_iter()
        .filter(|c| !hidden(c))
        .collect();
    // SPECIAL-USE is offered where the provider lacks it (mailgate adds the attributes).
    if !want.iter().any(|c| c == "SPECIAL-USE") {
        want.push("SPECIAL-USE".into());
    }
    let mut got = login_capabilities(&via_login, "L1");
    want.sort();
    got.sort();
    assert_eq!(
        got, want,
        "capabilities after login: mailgate vs Dovecot minus hidden ones, plus SPECIAL-USE"
    );
    for (tag, cmd) in [
        ("l1", "LIST \"\" \"*\""),
        ("s1", "EXAMINE INBOX"),
        ("f1", "UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[])"),
    ] {
        let a = via.ok(tag, cmd);
        let b = direct.ok(tag, cmd);
        assert_eq!(
            String::from_utf8_lossy(&normalize_timing(&a)),
            String::from_utf8_lossy(&normalize_timing(&b)),
            "{cmd} through mailgate vs direct"
        );
    }
    let resp = via.ok("z1", "LOGOUT");
    assert!(contains(&resp, b"* BYE"));
    g.finish();
}

#[test]
fn upstream_plaintext_session() {
    upstream_mode_session(Mode::Plain);
}

#[test]
fn upstream_starttls_session() {
    upstream_mode_session(Mode::Starttls);
}

#[test]
fn upstream_implicit_tls_session() {
    upstream_mode_session(Mode::Implicit);
}

#[test]
fn upstream_with_host_port_and_tls_server_name() {
    let message = simple("host and port", "x");
    let pki = Pki::new();
    let dovecot = Dovecot::start(DovecotOpts::tls(&pki.server));
    dovecot.add_user(UPSTREAM_USER, UPSTREAM_PW);
    dovecot.fill_maildir(UPSTREAM_USER, std::slice::from_ref(&message));
    let imap = Upstream::empty()
        .set("host", "127.0.0.1")
        .set("port", dovecot.imaps_port.unwrap())
        .set("tls", "implicit")
        .set("ca_file", &pki.ca)
        .tls_server_name("localhost")
        .login(UPSTREAM_USER, UPSTREAM_PW);
    let g = Gate::start(dovecot, &config([account(EMAIL, imap)])).with_pki(pki);
    python_session(&g, "login", &message);
    g.finish();
}

#[test]
fn upstream_down_gives_unavailable() {
    let port = free_port(); // nothing listens there
    let pki = Pki::new();
    let imap = Upstream::tls(format!("127.0.0.1:{port}"), "implicit", Some(&pki.ca))
        .tls_server_name("localhost")
        .login(UPSTREAM_USER, UPSTREAM_PW);
    let mut mailgate = config([account(EMAIL, imap)]).start();
    let mut c = mailgate.connect();
    let resp = local_login(&mut c, "a1", EMAIL);
    assert_status_prefix(&resp, "a1", "NO [UNAVAILABLE]");
    // The session is still usable for another try.
    c.ok("a2", "NOOP");
    c.ok("a3", "LOGOUT");
    assert!(mailgate.is_running());
    mailgate.assert_no_secrets(&[LOCAL_PW, UPSTREAM_PW]);
}

/// Certificates the account does not trust: no ca_file (system roots only), the wrong CA, a
/// self-signed server certificate, a name that does not match. Each gives NO [UNAVAILABLE]
/// without sending the credential; a good account on the same gateway still works.
#[test]
fn untrusted_upstream_certificate_gives_unavailable_and_gate_keeps_serving() {
    let pki = Pki::new();
    let dovecot = Dovecot::start(DovecotOpts::tls(&pki.server));
    dovecot.add_user(UPSTREAM_USER, UPSTREAM_PW);
    let self_signed = Dovecot::start(DovecotOpts::tls(&pki.self_signed));
    self_signed.add_user(UPSTREAM_USER, UPSTREAM_PW);

    let good = upstream(&pki, &dovecot, Mode::Implicit);
    let starttls = upstream(&pki, &dovecot, Mode::Starttls);
    let (self_signed_server, self_signed_name) = loopback_server(self_signed.imaps_port.unwrap());
    let bad: Vec<(&str, Upstream)> = vec![
        ("no-ca@example.no", good.clone().without("ca_file")),
        (
            "no-ca-starttls@example.no",
            starttls.clone().without("ca_file"),
        ),
        (
            "wrong-ca@example.no",
            good.clone().set("ca_file", &pki.other_ca),
        ),
        (
            "wrong-ca-starttls@example.no",
            starttls.clone().set("ca_file", &pki.other_ca),
        ),
        (
            "wrong-name@example.no",
            good.clone()
                .set(
                    "server",
                    format!("127.0.0.1:{}", dovecot.imaps_port.unwrap()),
                )
                .tls_server_name("imap.example.net"),
        ),
        ("self-signed@example.no", {
            let up = good.clone().set("server", self_signed_server);
            match self_signed_name {
                Some(name) => up.tls_server_name(&name),
                None => up.without("tls_server_name"),
            }
        }),
    ];
    let mut accounts: Vec<Account> = bad
        .iter()
        .map(|(email, u)| account(email, u.clone()))
        .collect();
    accounts.push(account(EMAIL, good));
    let mut mailgate = config(accounts).start();

    for (email, _) in &bad {
        let mut c = mailgate.connect();
        let resp = local_login(&mut c, "a1", email);
        assert_status_prefix(&resp, "a1", "NO [UNAVAILABLE]");
        c.ok("a2", "LOGOUT");
    }
    assert!(mailgate.is_running());
    for d in [&dovecot, &self_signed] {
        let log = d.log();
        assert!(
            !log.contains("Login: user=<"),
            "a login reached Dovecot:\n{log}"
        );
        assert!(
            !log.contains("passwd-file(ola"),
            "an auth attempt reached Dovecot:\n{log}"
        );
        assert!(
            !log.contains(UPSTREAM_PW),
            "the password reached Dovecot:\n{log}"
        );
    }

    let mut c = mailgate.connect();
    let resp = local_login(&mut c, "b1", EMAIL);
    assert_login_ok(&resp, "b1");
    c.ok("b2", "SELECT INBOX");
    c.ok("b3", "LOGOUT");
    check_no_secrets(&mut mailgate, &dovecot);
}

/// The account says STARTTLS, the server does not offer it: NO [UNAVAILABLE], and the
/// credential is never sent in plaintext.
#[test]
fn upstream_without_starttls_never_gets_the_credential() {
    let pki = Pki::new();
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user(UPSTREAM_USER, UPSTREAM_PW);
    dovecot.add_user("probe", "probe-pw");
    let (server, tls_server_name) = loopback_server(dovecot.imap_port);
    let mut imap = Upstream::tls(server, "starttls", Some(&pki.ca));
    if let Some(name) = tls_server_name {
        imap = imap.tls_server_name(&name);
    }
    let imap = imap.login(UPSTREAM_USER, UPSTREAM_PW);
    let mut mailgate = config([account(EMAIL, imap)]).start();
    let mut c = mailgate.connect();
    let resp = local_login(&mut c, "a1", EMAIL);
    assert_status_prefix(&resp, "a1", "NO [UNAVAILABLE]");
    c.ok("a2", "LOGOUT");

    // A login we make ourselves afterwards shows up in the log; by then anything mailgate
    // sent would be there too.
    let mut probe = dovecot.login("probe", "probe-pw");
    probe.ok("p1", "LOGOUT");
    assert!(
        dovecot.wait_for_log("user=<probe>", Duration::from_secs(30)),
        "{}",
        dovecot.log()
    );
    let log = dovecot.log();
    assert!(
        !log.contains("user=<ola>"),
        "mailgate tried to log in upstream:\n{log}"
    );
    assert!(
        !log.contains("ola,"),
        "mailgate tried to log in upstream:\n{log}"
    );
    assert!(!log.contains(UPSTREAM_PW), "{log}");
    check_no_secrets(&mut mailgate, &dovecot);
}

#[test]
fn upstream_rejecting_the_stored_password_gives_a_distinct_authenticationfailed() {
    let wrong_upstream_pw = "Wrong-upstream-pw-71c3";
    let pki = Pki::new();
    let dovecot = Dovecot::start(DovecotOpts::tls(&pki.server));
    dovecot.add_user(UPSTREAM_USER, UPSTREAM_PW);
    let up = upstream(&pki, &dovecot, Mode::Implicit).password(wrong_upstream_pw);
    let mut mailgate = config([account(EMAIL, up)]).start();

    let mut c = mailgate.connect();
    let upstream_failure = local_login(&mut c, "a1", EMAIL);
    let upstream_failure =
        assert_status_prefix(&upstream_failure, "a1", "NO [AUTHENTICATIONFAILED]");
    c.ok("a2", "LOGOUT");

    let mut c = mailgate.connect();
    let local_failure = c.command(
        "b1",
        &format!("LOGIN {} {}", quoted(EMAIL), quoted("not-it")),
    );
    let local_failure = assert_status_prefix(&local_failure, "b1", "NO [AUTHENTICATIONFAILED]");
    assert_ne!(
        upstream_failure, local_failure,
        "an upstream rejection must read differently from a local one"
    );

    // Dovecot saw the stored (wrong) password, never the local one.
    assert!(
        dovecot.wait_for_log(wrong_upstream_pw, Duration::from_secs(30)),
        "{}",
        dovecot.log()
    );
    let mut lines = mailgate.stop();
    lines.retain(|l| l.contains(wrong_upstream_pw));
    assert!(
        lines.is_empty(),
        "stored password in mailgate's log: {lines:?}"
    );
    check_no_secrets(&mut mailgate, &dovecot);
}

#[test]
fn upstream_password_from_env_and_file() {
    let pki = Pki::new();
    let dovecot = Dovecot::start(DovecotOpts::tls(&pki.server));
    dovecot.add_user(UPSTREAM_USER, UPSTREAM_PW);
    let secret_dir = tempfile::tempdir().unwrap();
    let pw_file = secret_dir.path().join("upstream.pw");
    fs::write(&pw_file, format!("{UPSTREAM_PW}\n")).unwrap();
    let base = upstream(&pki, &dovecot, Mode::Implicit);
    let accounts = [
        account(
            "env@example.no",
            base.clone().password_env("MAILGATE_TEST_UPSTREAM_PW"),
        ),
        account("file@example.no", base.clone().password_file(&pw_file)),
    ];
    let config = config(accounts).to_toml();
    assert!(!config.contains(UPSTREAM_PW));
    let mut mailgate =
        Mailgate::start_with_env(&config, &[("MAILGATE_TEST_UPSTREAM_PW", UPSTREAM_PW)]);
    for email in ["env@example.no", "file@example.no"] {
        let mut c = mailgate.connect();
        let resp = local_login(&mut c, "a1", email);
        assert_login_ok(&resp, "a1");
        c.ok("a2", "SELECT INBOX");
        c.ok("a3", "LOGOUT");
    }
    check_no_secrets(&mut mailgate, &dovecot);
}

/// Dovecot goes away while a client is logged in through mailgate: the client's connection
/// ends (perhaps after Dovecot's BYE), mailgate keeps running, and the next login is told
/// the upstream is unavailable.
#[test]
fn upstream_going_away_mid_session_ends_only_that_session() {
    let g = gate(Mode::Implicit);
    let Gate {
        pki: _pki,
        dovecot,
        mut mailgate,
        ..
    } = g;
    let mut c = mailgate.connect();
    let r = local_login(&mut c, "a1", EMAIL);
    assert_login_ok(&r, "a1");
    c.ok("a2", "SELECT INBOX");
    let mut waiting = mailgate.connect();
    // It has spoken (a client that stays silent after the greeting is taken for a POP3 client
    // after 10 s).
    waiting.ok("w0", "NOOP");
    let dovecot_dir = dovecot.dir().to_path_buf();
    drop(dovecot); // SIGTERM to Dovecot's master; it closes every session

    match c.read_to_eof(Duration::from_secs(60)) {
        Ok(rest) => {
            let text = String::from_utf8_lossy(&rest);
            for line in text.lines() {
                assert!(
                    line.starts_with("* BYE"),
                    "unexpected after upstream loss: {text}"
                );
            }
        }
        Err((rest, e)) => panic!(
            "client connection still open after the upstream went away ({e}): {}",
            String::from_utf8_lossy(&rest)
        ),
    }
    assert!(!dovecot_dir.exists());
    assert!(mailgate.is_running());

    // A session that was waiting before login is unaffected, and gets UNAVAILABLE now.
    waiting.ok("w1", "NOOP");
    let r = local_login(&mut waiting, "w2", EMAIL);
    assert_status_prefix(&r, "w2", "NO [UNAVAILABLE]");
    assert!(mailgate.is_running());
    mailgate.assert_no_secrets(&[LOCAL_PW, UPSTREAM_PW]);
}

/// A gate whose one account logs in at `server` with `tls`, `upstream_timeout_secs = 1`.
fn hostile_gate(server: &Hostile, tls: &str) -> Mailgate {
    let imap = Upstream::tls(server.addr, tls, None)
        .tls_server_name("localhost")
        .login(UPSTREAM_USER, UPSTREAM_PW);
    config([account(EMAIL, imap)])
        .server("upstream_timeout_secs", 1)
        .start()
}

/// Peak resident memory of `pid` in KiB (VmHWM).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM")
}

/// An upstream (here before STARTTLS, where anyone on the path could do it) that answers
/// CAPABILITY with untagged lines and never the tagged reply: mailgate stops reading after
/// its byte bound for the step and tells the client `NO [UNAVAILABLE]`; its memory stays
/// small, and the session and the gate go on.
#[test]
fn upstream_flooding_untagged_lines_is_cut_at_the_byte_bound() {
    const LINES: u64 = 64 * 1024; // 64 MiB at most
    let line = format!("* OK {}\r\n", "x".repeat(1017)).into_bytes();
    let flood = Hostile::start(b"* OK ready\r\n", Hostile::flood(line, LINES));
    let mut mailgate = hostile_gate(&flood, "starttls");
    let mut c = mailgate.connect();
    let before = peak_rss_kib(mailgate.pid());
    let resp = local_login(&mut c, "a1", EMAIL);
    assert_status_prefix(&resp, "a1", "NO [UNAVAILABLE]");
    let sent = flood.sent();
    // What the server got out before mailgate hung up: the bound (256 KiB) plus what the two
    // kernels' socket buffers took.
    assert!(
        sent < 16 * 1024 * 1024,
        "mailgate read {sent} bytes of untagged lines in one login step"
    );
    // Growth over the peak before the login, not an absolute figure, which moves with the
    // binary (a debug build's relocations alone grew by megabytes with the connect page). A
    // login that fails upstream at once grows the peak by ~42 MiB in a debug build (argon2's
    // 19 MiB by design, a blocking thread's arena); the step's own bound is 256 KiB, and a gate
    // that read the whole flood (64 MiB) would be far over, and caught by `sent` above too.
    let grown = peak_rss_kib(mailgate.pid()).saturating_sub(before);
    assert!(
        grown < 56 * 1024,
        "mailgate's peak RSS grew by {grown} KiB during the flood"
    );
    // The log is written a moment after the answer: wait for it (bounded).
    let logged = support::proc::poll(Duration::from_secs(30), Duration::from_millis(50), || {
        mailgate
            .log()
            .contains("an answer longer than")
            .then_some(())
    });
    assert!(logged.is_some(), "{}", mailgate.log());
    c.ok("a2", "NOOP");
    c.ok("a3", "LOGOUT");
    assert!(mailgate.is_running());
    mailgate.assert_no_secrets(&[LOCAL_PW, UPSTREAM_PW]);
}

/// An upstream that drips its CAPABILITY answer one byte at a time, each within the per-read
/// time-out but the whole far slower than `upstream_timeout_secs`: the step ends at its
/// deadline with the time-out answer, long before the answer is complete.
#[test]
fn upstream_dripping_its_answer_hits_the_step_deadline() {
    const ANSWER: &[u8] = b"* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN ID ENABLE IDLE SASL-IR LITERAL+ NAMESPACE UIDPLUS CHILDREN MOVE SPECIAL-USE BINARY UNSELECT CONDSTORE QRESYNC ESEARCH SORT THREAD=REFS\r\n";
    let every = Duration::from_millis(250);
    let drip = Hostile::start(b"* OK ready\r\n", Hostile::drip(ANSWER, every));
    let mut mailgate = hostile_gate(&drip, "starttls");
    let mut c = mailgate.connect();
    let resp = local_login(&mut c, "a1", EMAIL);
    assert_status_prefix(
        &resp,
        "a1",
        "NO [UNAVAILABLE] The mail provider's server did not answer in time",
    );
    let sent = drip.sent();
    assert!(
        sent < ANSWER.len() as u64 / 2,
        "mailgate waited for {sent} of {} dripped bytes",
        ANSWER.len()
    );
    c.ok("a2", "LOGOUT");
    assert!(mailgate.is_running());
    mailgate.assert_no_secrets(&[LOCAL_PW, UPSTREAM_PW]);
}
