//! Self-tests of the test harness (tests/support) against Dovecot directly, without mailgate.
//! If these fail, the mailgate tests in tests/imap.rs mean nothing.
//!
//! Run: `cargo test --test harness`

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::thread;
use std::time::Duration;

use support::imap_client::{
    assert_tagged, contains, fetch_literals, literal_len, normalize_timing, split_responses,
    tagged_status,
};
use support::mailgate::parse_listen_line;
use support::messages::{corpus, simple};
use support::proc::{poll, python, python_ok};
use support::smtp_client::{data_sections, sections};
use support::{
    b64, b64_decode, describe_difference, Account, Dovecot, DovecotOpts, GateConfig, ImapClient,
    Pki, Upstream,
};

#[test]
fn base64_round_trip() {
    assert_eq!(b64(b""), "");
    assert_eq!(b64(b"f"), "Zg==");
    assert_eq!(b64(b"fo"), "Zm8=");
    assert_eq!(b64(b"foo"), "Zm9v");
    assert_eq!(b64(b"\0ola\0pw"), "AG9sYQBwdw==");
    for len in 0..40u8 {
        let data: Vec<u8> = (0..len)
            .map(|i| i.wrapping_mul(37).wrapping_add(200))
            .collect();
        assert_eq!(b64_decode(&b64(&data)).as_deref(), Some(&data[..]));
    }
    assert_eq!(
        b64_decode("VXNlcm5hbWU6").as_deref(),
        Some(&b"Username:"[..])
    );
}

/// The config builder writes each value as TOML of its type, strings escaped, tables in
/// order, a value set twice replaced in place, and the password forms exclusive.
#[test]
fn gate_config_writes_typed_toml() {
    let imap = Upstream::tls(
        "127.0.0.1:993",
        "implicit",
        Some(Path::new("/ca \"x\".pem")),
    )
    .login("ola", "pw\\1")
    .password_env("PW");
    let config = GateConfig::new()
        .server("auth_failure_delay_ms", 10)
        .server("imap_listen", "127.0.0.1:1143")
        .tls(Path::new("/c.pem"), Path::new("/k.pem"))
        .account(
            Account::hashed("ola@example.no", "$argon2id$x")
                .aliases(&["a@example.no", "b@example.no"])
                .imap(imap)
                .smtp(Upstream::plain("127.0.0.1:25"))
                .oauth2("client_id", "id"),
        );
    assert_eq!(
        config.to_toml(),
        "[server]\nimap_listen = \"127.0.0.1:1143\"\nsmtp_listen = \"127.0.0.1:0\"\n\
         auth_failure_delay_ms = 10\n\n[server.tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n\n\
         [[account]]\nemail = \"ola@example.no\"\nlocal_password_hash = \"$argon2id$x\"\n\
         aliases = [\"a@example.no\", \"b@example.no\"]\n\
         [account.imap]\nserver = \"127.0.0.1:993\"\ntls = \"implicit\"\n\
         ca_file = \"/ca \\\"x\\\".pem\"\nusername = \"ola\"\npassword_env = \"PW\"\n\
         [account.smtp]\nserver = \"127.0.0.1:25\"\ntls = \"none\"\nallow_plaintext = true\n\
         [account.oauth2]\nclient_id = \"id\"\n"
    );
    let listen = "127.0.0.1:9187".parse().unwrap();
    assert!(config
        .metrics(Some(true))
        .to_toml_with_metrics(listen)
        .ends_with("\n[metrics]\nlisten = \"127.0.0.1:9187\"\nper_account = true\n"));
}

#[test]
fn literal_framing_helpers() {
    assert_eq!(literal_len(b"* 1 FETCH (BODY[] {12}\r\n"), Some(12));
    assert_eq!(literal_len(b"a APPEND INBOX {5+}\r\n"), Some(5));
    assert_eq!(literal_len(b"* 1 FETCH (BINARY[] ~{3}\r\n"), Some(3));
    assert_eq!(literal_len(b"* OK {x}\r\n"), None);
    assert_eq!(literal_len(b"* OK {}\r\n"), None);
    assert_eq!(literal_len(b"* OK done\r\n"), None);
    let block = b"* 1 FETCH (BODY[] {9}\r\na1 OK x\r\n)\r\n* 2 EXISTS\r\na1 OK done\r\n";
    let parts = split_responses(block);
    assert_eq!(parts.len(), 3, "{parts:?}");
    assert_eq!(fetch_literals(block), vec![b"a1 OK x\r\n".to_vec()]);
    assert_eq!(
        normalize_timing(b"a OK Fetch completed (0.001 + 0.000 + 0.001 secs).\r\n"),
        b"a OK Fetch completed (TIME secs).\r\n".to_vec()
    );
    assert_eq!(
        normalize_timing(b"* OK (not timing secs)\r\n"),
        b"* OK (not timing secs)\r\n"
    );
}

#[test]
fn listen_line_parsing() {
    let addr = "127.0.0.1:4321".parse().unwrap();
    for line in [
        "2025-01-01T00:00:00Z  INFO mailgate::server: imap listening on 127.0.0.1:4321",
        "INFO imap listening on addr=127.0.0.1:4321",
        "INFO mailgate: imap listening on \"127.0.0.1:4321\"",
        "imap listening on 127.0.0.1:4321.",
        r#"{"level":"INFO","fields":{"message":"imap listening on 127.0.0.1:4321"},"target":"x"}"#,
    ] {
        assert_eq!(
            parse_listen_line(line, "imap listening on"),
            Some(addr),
            "{line}"
        );
    }
    assert_eq!(
        parse_listen_line("smtp listening on 127.0.0.1:1", "imap listening on"),
        None
    );
}

/// The raw client must not end a read on a literal's content that looks like the tagged
/// response, and must return the bytes unchanged.
#[test]
fn raw_client_skips_literal_content() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let literal: &[u8] = b"t1 OK fake\r\n{5}\r\n* BYE no\r\n\xff\xfe";
    let response = [
        &b"* 1 FETCH (UID 7 BODY[] {"[..],
        literal.len().to_string().as_bytes(),
        b"}\r\n",
        literal,
        b")\r\nt1 OK Fetch completed.\r\n",
    ]
    .concat();
    let expected = response.clone();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut w = stream.try_clone().unwrap();
        w.write_all(b"* OK fake server ready\r\n").unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        assert_eq!(line, "t1 UID FETCH 7 (BODY.PEEK[])\r\n");
        // Dribble it out in small writes to exercise partial reads.
        for chunk in response.chunks(7) {
            w.write_all(chunk).unwrap();
        }
    });
    let mut c = ImapClient::connect(addr);
    assert_eq!(c.greeting, b"* OK fake server ready\r\n");
    let got = c.command("t1", "UID FETCH 7 (BODY.PEEK[])");
    assert_eq!(got, expected);
    assert_eq!(fetch_literals(&got), vec![literal.to_vec()]);
    server.join().unwrap();
}

#[test]
fn dovecot_plaintext_login_and_fetch() {
    let pki = Pki::new();
    let dovecot = Dovecot::start(DovecotOpts::tls(&pki.server));
    dovecot.add_user("ola", "upstream-pw");
    let messages = vec![
        simple("first", "hello"),
        simple("second", "a1 OK not really\r\n{5}\r\nend"),
        corpus(1, 0, 7).remove(0),
    ];
    dovecot.fill_maildir("ola", &messages);
    let mut c = dovecot.connect();
    assert!(
        contains(&c.greeting, b"STARTTLS"),
        "{:?}",
        String::from_utf8_lossy(&c.greeting)
    );
    c.login("ola", "upstream-pw");
    let select = c.ok("s", "SELECT INBOX");
    assert!(contains(&select, b"* 3 EXISTS"));
    let fetch = c.ok("f", "UID FETCH 1:* (BODY.PEEK[])");
    assert_eq!(
        fetch_literals(&fetch),
        messages,
        "UIDs follow the fill order"
    );
    c.ok("z", "LOGOUT");
    // Dovecot's log process writes the line a moment after the login is answered.
    assert!(dovecot.wait_for_log("Login: user=<ola>", Duration::from_secs(20)));
}

#[test]
fn dovecot_without_ssl_offers_no_starttls() {
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user("ola", "pw");
    let mut c = dovecot.connect();
    assert!(
        !contains(&c.greeting, b"STARTTLS"),
        "{:?}",
        String::from_utf8_lossy(&c.greeting)
    );
    let caps = c.ok("c", "CAPABILITY");
    assert!(!contains(&caps, b"STARTTLS"));
    let resp = c.command("t", "STARTTLS");
    assert_tagged(&resp, "t", "BAD");
    c.login("ola", "pw");
}

#[test]
fn dovecot_wrong_password_is_logged_with_the_password_tried() {
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user("ola", "right-pw");
    let mut c = dovecot.connect();
    let resp = c.command("a", "LOGIN ola wrong-pw-1234");
    assert_tagged(&resp, "a", "NO");
    assert!(tagged_status(&resp, "a").starts_with("NO [AUTHENTICATIONFAILED]"));
    assert!(
        dovecot.wait_for_log("wrong-pw-1234", Duration::from_secs(20)),
        "auth_verbose_passwords should log the password tried:\n{}",
        dovecot.log()
    );
}

#[test]
fn dovecot_tls_modes_with_python_and_the_test_ca() {
    let pki = Pki::new();
    let dovecot = Dovecot::start(DovecotOpts::tls(&pki.server));
    dovecot.add_user("ola", "pw");
    let message = simple("tls", "over tls");
    dovecot.fill_maildir("ola", std::slice::from_ref(&message));
    let ca = pki.ca.display().to_string();
    let port = dovecot.imap_port.to_string();
    let imaps = dovecot.imaps_port.unwrap().to_string();
    let want = format!("fetch1 OK {}", support::hex(&message));
    for (tls, port, auth) in [
        ("starttls", &port, "login"),
        ("implicit", &imaps, "plain"),
        ("none", &port, "auth-login"),
    ] {
        let base = [
            "session",
            "--port",
            port,
            "--tls",
            tls,
            "--ca",
            &ca,
            "--user",
            "ola",
            "--password",
            "pw",
            "--auth",
            auth,
        ];
        let stdout = python_ok(&base);
        assert!(stdout.contains("select OK 1"), "{stdout}");
        assert!(stdout.contains(&want), "{stdout}");
    }
    // A client trusting another CA refuses the server certificate.
    let other = pki.other_ca.display().to_string();
    let out = python(
        "imap_client.py",
        &[
            "session",
            "--port",
            &imaps,
            "--tls",
            "implicit",
            "--ca",
            &other,
            "--user",
            "ola",
            "--password",
            "pw",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("CERTIFICATE_VERIFY_FAILED"), "{stdout}");
}

#[test]
fn dovecot_append_stores_exact_bytes() {
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user("ola", "pw");
    let mut rng = support::messages::Rng::new(99);
    let sync_msg = support::messages::varied(1, 300 * 1024, &mut rng);
    let nonsync_msg = support::messages::varied(2, 2000, &mut rng);
    let mut c = dovecot.login("ola", "pw");
    let r1 = c.append_sync("a1", "INBOX", &sync_msg);
    assert_tagged(&r1, "a1", "OK");
    let r2 = c.append_nonsync("a2", "INBOX", &nonsync_msg);
    assert_tagged(&r2, "a2", "OK");
    c.ok("s", "SELECT INBOX");
    let fetch = c.ok("f", "UID FETCH 1:* (BODY.PEEK[])");
    assert_eq!(
        fetch_literals(&fetch),
        vec![sync_msg.clone(), nonsync_msg.clone()]
    );
    let files: Vec<Vec<u8>> = dovecot
        .maildir_messages("ola")
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    assert!(files.contains(&sync_msg) && files.contains(&nonsync_msg));
}

#[test]
fn dovecot_idle_reports_new_mail() {
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user("ola", "pw");
    let mut idler = dovecot.login("ola", "pw");
    idler.ok("s", "SELECT INBOX");
    idler.send(b"i IDLE\r\n");
    idler.read_continuation();
    let mut other = dovecot.login("ola", "pw");
    assert_tagged(
        &other.append_sync("a", "INBOX", &simple("idle", "x")),
        "a",
        "OK",
    );
    let mut seen = Vec::new();
    for _ in 0..50 {
        let resp = idler.read_response().expect("IDLE update");
        seen.extend_from_slice(&resp);
        if resp == b"* 1 EXISTS\r\n" {
            break;
        }
    }
    assert!(
        contains(&seen, b"* 1 EXISTS\r\n"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    idler.send(b"DONE\r\n");
    assert_tagged(&idler.read_until_tagged("i"), "i", "OK");
}

/// Two direct fetches of the whole corpus give identical bytes: the comparison method of the
/// byte-identical test in tests/imap.rs is sound (nothing per-session in the output except
/// Dovecot's timing, which `normalize_timing` removes).
#[test]
fn dovecot_full_fetch_is_repeatable() {
    let dovecot = Dovecot::start(DovecotOpts::plaintext_only());
    dovecot.add_user("ola", "pw");
    let messages = corpus(1000, 5, 2025);
    let total: usize = messages.iter().map(Vec::len).sum();
    assert!(total > 30 * 1024 * 1024, "corpus is {total} bytes");
    dovecot.fill_maildir("ola", &messages);
    let fetch = |dovecot: &Dovecot| {
        let mut c = dovecot.login("ola", "pw");
        c.ok("s", "SELECT INBOX");
        let resp = c.ok("f1", "UID FETCH 1:* (BODY.PEEK[])");
        c.ok("z", "LOGOUT");
        normalize_timing(&resp)
    };
    let a = fetch(&dovecot);
    let b = fetch(&dovecot);
    assert!(a == b, "{}", describe_difference(&a, &b));
    let literals = fetch_literals(&a);
    assert_eq!(literals.len(), messages.len());
    assert!(
        literals == messages,
        "FETCH returns the files byte for byte"
    );
}

#[test]
fn dovecot_instances_run_in_parallel_and_stop_on_drop() {
    let handles: Vec<_> = (0..3)
        .map(|i| {
            thread::spawn(move || {
                let d = Dovecot::start(DovecotOpts::plaintext_only());
                let user = format!("user{i}");
                d.add_user(&user, "pw");
                let mut c = d.login(&user, "pw");
                c.ok("s", "SELECT INBOX");
                c.ok("z", "LOGOUT");
                (d.pid(), d.dir().to_path_buf(), d.imap_port, d)
            })
        })
        .collect();
    let mut started: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut ports: Vec<u16> = started.iter().map(|s| s.2).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 3);
    for (pid, dir, _, d) in started.drain(..) {
        drop(d);
        let proc_path = format!("/proc/{pid}");
        let gone = poll(Duration::from_secs(20), Duration::from_millis(50), || {
            (!Path::new(&proc_path).exists()).then_some(())
        });
        assert!(
            gone.is_some(),
            "dovecot master {pid} still running after drop"
        );
        assert!(!dir.exists(), "{} not removed", dir.display());
    }
}

/// The SASL-only Dovecot Postfix authenticates against: no IMAP listener, and its auth socket
/// (reachable by other users: Postfix's smtpd runs as `postfix`) checks the passwd-file users
/// with Dovecot's auth protocol, the way Postfix's `smtpd_sasl_type = dovecot` asks.
#[test]
fn dovecot_sasl_only_checks_passwords_on_its_socket() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;

    let d = Dovecot::start(DovecotOpts::sasl_only());
    assert_eq!(d.imap_port, 0);
    assert!(d.imaps_port.is_none());
    d.add_user("alice@example.test", "upstream-pw");
    let socket = d.sasl_socket().expect("sasl socket").to_path_buf();
    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o666, "{}", socket.display());
    assert!(!d.log().contains("imap-login"), "{}", d.log());

    let mut stream = UnixStream::connect(&socket).expect("connect auth socket");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let line = |reader: &mut BufReader<UnixStream>| {
        let mut l = String::new();
        reader.read_line(&mut l).expect("read auth line");
        l
    };
    let mut handshake = Vec::new();
    for _ in 0..50 {
        let l = line(&mut reader);
        if l.is_empty() || l == "DONE\n" {
            break;
        }
        handshake.push(l);
    }
    assert!(
        handshake.iter().any(|l| l.starts_with("MECH\tPLAIN")),
        "{handshake:?}"
    );
    stream
        .write_all(format!("VERSION\t1\t2\nCPID\t{}\n", std::process::id()).as_bytes())
        .expect("write");
    for (id, password, want) in [(1, "upstream-pw", "OK\t1"), (2, "wrong", "FAIL\t2")] {
        let resp = b64(format!("\0alice@example.test\0{password}").as_bytes());
        stream
            .write_all(format!("AUTH\t{id}\tPLAIN\tservice=smtp\tresp={resp}\n").as_bytes())
            .expect("write");
        let answer = line(&mut reader);
        assert!(answer.starts_with(want), "{password}: {answer:?}");
    }
}

/// The recording tap's DATA extraction (no servers).
#[test]
fn smtp_data_sections() {
    let wire =
        b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: 1\r\n\r\n..dot\r\n.\r\n\
        MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n.\r\nQUIT\r\n";
    assert_eq!(
        data_sections(wire),
        vec![
            b"Subject: 1\r\n\r\n..dot\r\n.\r\n".to_vec(),
            b".\r\n".to_vec()
        ]
    );
    assert!(data_sections(b"DATA\r\nno end").is_empty());
    let wire = b"MAIL FROM:<a@b>\r\nBDAT 3\r\nab\nBDAT 4 LAST\r\n.\r\nxRSET\r\nBDAT 2 last\r\nzz";
    let found = sections(wire);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].bdat.as_deref(), Some(&b"ab\n.\r\nx"[..]));
    assert_eq!(found[1].bdat.as_deref(), Some(&b"zz"[..]));
}

/// The three folder layouts of the folder-mapping tests, as Dovecot itself presents them:
/// Gmail-like names marked with RFC 6154 attributes and SPECIAL-USE advertised; localized
/// names created per user, unmarked, SPECIAL-USE not advertised; Exchange's English names,
/// unmarked, neither SPECIAL-USE nor LIST-EXTENDED advertised.
#[test]
fn folder_layouts_as_dovecot_presents_them() {
    use support::folders::{self, attributes_of, names, Layout};
    let caps = |c: &mut ImapClient| {
        let r = c.command("k", "CAPABILITY");
        String::from_utf8_lossy(&r).to_string()
    };

    let d = Dovecot::start(Layout::Gmail.opts());
    d.add_user("g", "pw");
    let mut c = d.login("g", "pw");
    assert!(caps(&mut c).contains(" SPECIAL-USE"));
    let list = c.command("l", "LIST \"\" \"*\"");
    for (name, attribute) in folders::GMAIL {
        assert!(
            attributes_of(&list, name).iter().any(|a| a == attribute),
            "{name}: {}",
            String::from_utf8_lossy(&list)
        );
    }
    drop(c);
    drop(d);

    let d = Dovecot::start(Layout::Localized.opts());
    d.add_user("n", "pw");
    folders::create(&d, "n", "pw", folders::NORWEGIAN);
    let mut c = d.login("n", "pw");
    assert!(!caps(&mut c).contains("SPECIAL-USE"));
    let list = c.command("l", "LIST \"\" \"*\"");
    let listed = names(&list, "LIST");
    for name in folders::NORWEGIAN {
        assert!(listed.iter().any(|n| n == name), "{name}: {listed:?}");
        assert!(
            !attributes_of(&list, name).iter().any(|a| a == "\\Sent"),
            "{name} is marked"
        );
    }
    drop(c);
    drop(d);

    let d = Dovecot::start(Layout::Exchange.opts());
    d.add_user("e", "pw");
    let mut c = d.login("e", "pw");
    let k = caps(&mut c);
    assert!(
        !k.contains("SPECIAL-USE") && !k.contains("LIST-EXTENDED"),
        "{k}"
    );
    let listed = names(&c.command("l", "LIST \"\" \"*\""), "LIST");
    for name in folders::EXCHANGE_NAMES {
        assert!(listed.iter().any(|n| n == name), "{name}: {listed:?}");
    }
}
