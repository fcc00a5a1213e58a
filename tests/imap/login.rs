//! Pre-auth: the greeting, every login form, local authentication failures, and what
//! mailgate logs about passwords.

use super::*;

#[test]
fn greeting_and_pre_auth_commands() {
    let g = gate(Mode::Implicit);
    let mut c = g.connect();
    let greeting = String::from_utf8_lossy(&c.greeting).into_owned();
    assert!(greeting.starts_with("* OK [CAPABILITY "), "{greeting:?}");
    assert!(greeting.contains("IMAP4rev1"), "{greeting:?}");
    assert!(greeting.ends_with("\r\n"), "{greeting:?}");
    let caps = c.ok("c1", "CAPABILITY");
    assert!(
        contains(&caps, b"* CAPABILITY "),
        "{}",
        String::from_utf8_lossy(&caps)
    );
    c.ok("c2", "NOOP");
    let bye = c.ok("c3", "LOGOUT");
    assert!(
        contains(&bye, b"* BYE"),
        "{}",
        String::from_utf8_lossy(&bye)
    );
    g.finish();
}

#[test]
fn login_quoted_literal_and_literal_plus() {
    let g = gate(Mode::Implicit);

    // Quoted strings.
    let mut c = g.connect();
    let resp = local_login(&mut c, "a1", EMAIL);
    assert_login_ok(&resp, "a1");
    assert!(contains(&c.ok("a2", "SELECT INBOX"), b"[READ-WRITE]"));
    c.ok("a3", "LOGOUT");

    // Synchronizing literals: wait for "+" before each literal.
    let mut c = g.connect();
    c.send(format!("b1 LOGIN {{{}}}\r\n", EMAIL.len()).as_bytes());
    c.read_continuation();
    c.send(format!("{EMAIL} {{{}}}\r\n", LOCAL_PW.len()).as_bytes());
    c.read_continuation();
    c.send(format!("{LOCAL_PW}\r\n").as_bytes());
    let resp = c.read_until_tagged("b1");
    assert_login_ok(&resp, "b1");
    c.ok("b2", "SELECT INBOX");
    c.ok("b3", "LOGOUT");

    // Non-synchronizing literals (LITERAL+): the whole command in one write.
    let mut c = g.connect();
    c.send(
        format!(
            "c1 LOGIN {{{}+}}\r\n{EMAIL} {{{}+}}\r\n{LOCAL_PW}\r\n",
            EMAIL.len(),
            LOCAL_PW.len()
        )
        .as_bytes(),
    );
    let resp = c.read_until_tagged("c1");
    assert_login_ok(&resp, "c1");
    c.ok("c2", "SELECT INBOX");
    c.ok("c3", "LOGOUT");

    g.finish();
}

#[test]
fn authenticate_plain_with_and_without_sasl_ir() {
    let g = gate(Mode::Implicit);
    let blob = b64(format!("\0{EMAIL}\0{LOCAL_PW}").as_bytes());

    // SASL-IR: initial response on the command line.
    let mut c = g.connect();
    let resp = c.command("a1", &format!("AUTHENTICATE PLAIN {blob}"));
    assert_login_ok(&resp, "a1");
    c.ok("a2", "SELECT INBOX");
    c.ok("a3", "LOGOUT");

    // Without SASL-IR: empty challenge, then the response.
    let mut c = g.connect();
    c.send(b"b1 AUTHENTICATE PLAIN\r\n");
    let cont = c.read_continuation();
    assert!(cont.starts_with(b"+"), "{cont:?}");
    c.send(format!("{blob}\r\n").as_bytes());
    let resp = c.read_until_tagged("b1");
    assert_login_ok(&resp, "b1");
    c.ok("b2", "SELECT INBOX");
    c.ok("b3", "LOGOUT");

    // With an authorization identity equal to the login name.
    let mut c = g.connect();
    let with_authzid = b64(format!("{EMAIL}\0{EMAIL}\0{LOCAL_PW}").as_bytes());
    let resp = c.command("c1", &format!("AUTHENTICATE PLAIN {with_authzid}"));
    assert_login_ok(&resp, "c1");
    c.ok("c2", "LOGOUT");

    g.finish();
}

#[test]
fn authenticate_login() {
    let g = gate(Mode::Implicit);
    let mut c = g.connect();
    c.send(b"a1 AUTHENTICATE LOGIN\r\n");
    let first = c.read_continuation();
    let challenge = String::from_utf8_lossy(&first[1..]).trim().to_string();
    if let Some(text) = b64_decode(&challenge) {
        // Conventionally "Username:"; any valid base64 is acceptable.
        assert!(!text.contains(&b'\n'), "{text:?}");
    } else {
        assert!(
            challenge.is_empty(),
            "challenge is not base64: {challenge:?}"
        );
    }
    c.send(format!("{}\r\n", b64(EMAIL.as_bytes())).as_bytes());
    c.read_continuation();
    c.send(format!("{}\r\n", b64(LOCAL_PW.as_bytes())).as_bytes());
    let resp = c.read_until_tagged("a1");
    assert_login_ok(&resp, "a1");
    c.ok("a2", "SELECT INBOX");
    c.ok("a3", "LOGOUT");
    g.finish();
}

#[test]
fn authenticate_cancel_gives_bad_and_session_goes_on() {
    let g = gate(Mode::Implicit);
    for mechanism in ["PLAIN", "LOGIN"] {
        let mut c = g.connect();
        c.send(format!("x1 AUTHENTICATE {mechanism}\r\n").as_bytes());
        c.read_continuation();
        c.send(b"*\r\n");
        let resp = c.read_until_tagged("x1");
        assert_tagged(&resp, "x1", "BAD");
        // Still in the not-authenticated state and usable.
        let resp = local_login(&mut c, "x2", EMAIL);
        assert_login_ok(&resp, "x2");
        c.ok("x3", "LOGOUT");
    }
    g.finish();
}

#[test]
fn python_imaplib_login_authenticate_plain_and_login() {
    let message = simple("python", "hello from imaplib");
    let g = gate_with(Mode::Implicit, std::slice::from_ref(&message));
    for auth in ["login", "plain", "auth-login"] {
        python_session(&g, auth, &message);
    }
    g.finish();
}

#[test]
fn local_auth_failures_look_alike_and_the_third_closes_the_connection() {
    let g = gate(Mode::Implicit);
    let mut c = g.connect();
    let wrong_pw = c.command(
        "f1",
        &format!("LOGIN {} {}", quoted(EMAIL), quoted("not-the-password")),
    );
    let wrong_pw = assert_status_prefix(&wrong_pw, "f1", "NO [AUTHENTICATIONFAILED]");
    let unknown = local_login(&mut c, "f2", "nobody@example.no");
    let unknown = assert_status_prefix(&unknown, "f2", "NO [AUTHENTICATIONFAILED]");
    assert_eq!(
        wrong_pw, unknown,
        "unknown user and wrong password must be indistinguishable"
    );

    // AUTHENTICATE PLAIN fails the same way.
    let blob = b64(format!("\0{EMAIL}\0wrong-again").as_bytes());
    let third = c.command("f3", &format!("AUTHENTICATE PLAIN {blob}"));
    let third = assert_status_prefix(&third, "f3", "NO [AUTHENTICATIONFAILED]");
    assert_eq!(third, wrong_pw);

    // After the third failure the server closes the connection (perhaps after a BYE).
    let _ = c.try_send(b"f4 NOOP\r\n");
    match c.read_to_eof(Duration::from_secs(60)) {
        Ok(rest) => {
            let text = String::from_utf8_lossy(&rest);
            assert!(
                !text.contains("f4 OK"),
                "served a command after 3 failures: {text}"
            );
            for line in text.lines() {
                assert!(
                    line.starts_with("* BYE") || line.starts_with("f4 "),
                    "{text}"
                );
            }
        }
        Err((rest, e)) => panic!(
            "connection still open after 3 failed logins ({e}); got: {}",
            String::from_utf8_lossy(&rest)
        ),
    }

    // The upstream was never contacted, and the gateway still serves others.
    assert!(
        !g.dovecot.log().contains("user=<ola>"),
        "{}",
        g.dovecot.log()
    );
    let mut ok = g.login();
    ok.ok("n1", "NOOP");
    g.finish();
}

/// Every way a password passes through mailgate (LOGIN quoted and as literals, AUTHENTICATE
/// PLAIN and LOGIN, failed local logins, the upstream login) with the most verbose logging,
/// in both log formats: no password, and no SASL encoding of one, in any line.
#[test]
fn secrets_never_logged_even_at_trace_level() {
    for format in ["text", "json"] {
        let pki = Pki::new();
        let dovecot = Dovecot::start(DovecotOpts::tls(&pki.server));
        dovecot.add_user(UPSTREAM_USER, UPSTREAM_PW);
        let config = config([account(EMAIL, upstream(&pki, &dovecot, Mode::Starttls))]).to_toml();
        let mut mailgate = Mailgate::try_start(&config, &[("RUST_LOG", "trace")], format)
            .unwrap_or_else(|e| panic!("{e}"));

        let mut c = mailgate.connect();
        let r = local_login(&mut c, "a1", EMAIL);
        assert_login_ok(&r, "a1");
        c.ok("a2", "LOGOUT");

        let mut c = mailgate.connect();
        c.send(
            format!(
                "b1 LOGIN {{{}+}}\r\n{EMAIL} {{{}+}}\r\n{LOCAL_PW}\r\n",
                EMAIL.len(),
                LOCAL_PW.len()
            )
            .as_bytes(),
        );
        assert_login_ok(&c.read_until_tagged("b1"), "b1");
        c.ok("b2", "LOGOUT");

        let mut c = mailgate.connect();
        let blob = b64(format!("\0{EMAIL}\0{LOCAL_PW}").as_bytes());
        assert_login_ok(
            &c.command("c1", &format!("AUTHENTICATE PLAIN {blob}")),
            "c1",
        );
        c.ok("c2", "LOGOUT");

        let mut c = mailgate.connect();
        c.send(b"d1 AUTHENTICATE LOGIN\r\n");
        c.read_continuation();
        c.send(format!("{}\r\n", b64(EMAIL.as_bytes())).as_bytes());
        c.read_continuation();
        c.send(format!("{}\r\n", b64(LOCAL_PW.as_bytes())).as_bytes());
        assert_login_ok(&c.read_until_tagged("d1"), "d1");
        c.ok("d2", "LOGOUT");

        // A wrong password that contains the real one as a prefix is logged nowhere either.
        let mut c = mailgate.connect();
        let wrong = format!("{LOCAL_PW}-wrong");
        let r = c.command("e1", &format!("LOGIN {} {}", quoted(EMAIL), quoted(&wrong)));
        assert_status_prefix(&r, "e1", "NO [AUTHENTICATIONFAILED]");
        c.ok("e2", "LOGOUT");

        if format == "json" {
            for line in mailgate.lines() {
                let line = line.trim();
                assert!(
                    line.starts_with('{') && line.ends_with('}'),
                    "not a JSON log line: {line}"
                );
            }
        }
        check_no_secrets(&mut mailgate, &dovecot);
    }
}

/// Log lines that come fast are gathered and written together (`MAILGATE_LOG_FLUSH_MS`, here
/// 300 ms so that nearly every line is gathered): all of them arrive — through the flusher
/// while mailgate runs, and what is left when it shuts down —, each session's lines in order.
#[test]
fn gathered_log_lines_all_arrive_in_order() {
    let port = free_port();
    // Nothing listens there: no session logs in.
    let (server, _) = loopback_server(port);
    let config = config([account(
        EMAIL,
        Upstream::plain(server).password(UPSTREAM_PW),
    )]);
    let mut gate = config.start_with_env(&[("MAILGATE_LOG_FLUSH_MS", "300")]);
    const SESSIONS: usize = 30;
    for _ in 0..SESSIONS {
        let mut c = ImapClient::connect(gate.imap_addr);
        c.ok("a1", "NOOP");
        c.ok("a2", "LOGOUT");
    }
    // The flusher writes the gathered lines while mailgate runs.
    let ended = |lines: &[String]| lines.iter().filter(|l| l.contains("session ended")).count();
    let flushed = support::proc::poll(Duration::from_secs(10), Duration::from_millis(20), || {
        (ended(&gate.lines()) == SESSIONS).then_some(())
    });
    assert!(flushed.is_some(), "{}", gate.log());
    // One more session right before the shutdown: its lines are still gathered then.
    let mut c = ImapClient::connect(gate.imap_addr);
    c.ok("b1", "NOOP");
    c.ok("b2", "LOGOUT");
    let lines = gate.stop();
    assert_eq!(ended(&lines), SESSIONS + 1, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("all sessions ended")),
        "{lines:#?}"
    );
    for id in 1..=SESSIONS + 1 {
        let mark = format!("id={id} ");
        let of_session: Vec<&String> = lines.iter().filter(|l| l.contains(&mark)).collect();
        let started = of_session
            .iter()
            .position(|l| l.contains("session started"));
        let ended = of_session.iter().position(|l| l.contains("session ended"));
        assert!(
            matches!((started, ended), (Some(s), Some(e)) if s < e),
            "session {id}: {of_session:#?}"
        );
    }
}
