//! `mailgate setup` against real Dovecot (IMAP, implicit TLS) and Postfix (submission,
//! STARTTLS): the non-interactive form writes an account that `mailgate run` accepts and that
//! works through the gateway, keeps the file's comments, refuses duplicates, leaves the file
//! untouched when the live test fails; the interactive form is driven in a pseudo-terminal.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::config::toml_str;
use support::idp::CLIENT_ID;
use support::mailgate::{cached_hash, BIN};
use support::proc::{free_port, python_done, run_with_timeout, PROCESS_TIMEOUT};
use support::upstreams::{Upstreams, UPSTREAM_PW};
use support::{DovecotOpts, Idp, Mailgate, Postfix};

const LOCAL_PW: &str = "local-Secret-38";

impl Upstreams {
    /// The `--imap-server … --smtp-tls …` options for these servers.
    fn server_args(&self) -> Vec<String> {
        let imaps = self.postfix.dovecot.imaps_addr().expect("imaps port");
        vec![
            "--imap-server".into(),
            imaps.to_string(),
            "--imap-tls".into(),
            "implicit".into(),
            "--smtp-server".into(),
            format!("127.0.0.1:{}", self.postfix.starttls_port),
            "--smtp-tls".into(),
            "starttls".into(),
            "--ca-file".into(),
            self.ca.display().to_string(),
        ]
    }

    /// A config file with comments, listeners on free ports and one existing account.
    fn config(&self) -> (PathBuf, String, u16, u16) {
        let (imap, smtp) = (free_port(), free_port());
        let text = format!(
            "# The office gateway. These comments must survive `mailgate setup`.\n\
             [server]\n\
             imap_listen = \"127.0.0.1:{imap}\"   # the CRM connects here\n\
             smtp_listen = \"127.0.0.1:{smtp}\"\n\
             \n\
             [[account]]\n\
             email = \"other@example.test\"\n\
             local_password_hash = {}\n\
             [account.imap]\n\
             server = \"127.0.0.1:1\"\n\
             password = \"unused\"\n",
            toml_str(&cached_hash("other-local"))
        );
        let path = self.dir.path().join("conf").join("mailgate.toml");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &text).unwrap();
        (path, text, imap, smtp)
    }
}

/// `mailgate setup --non-interactive --config FILE …` with the two passwords in the
/// environment.
fn setup(config: &Path, email: &str, upstream_pw: &str, extra: &[String]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["setup", "--non-interactive", "--config"])
        .arg(config)
        .args(["--email", email])
        .args([
            "--password-env",
            "SETUP_UPSTREAM",
            "--local-password-env",
            "SETUP_LOCAL",
        ])
        .args(extra)
        .env("SETUP_UPSTREAM", upstream_pw)
        .env("SETUP_LOCAL", LOCAL_PW)
        .env("NO_COLOR", "1");
    run_with_timeout(cmd, None, PROCESS_TIMEOUT)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Through `gate`, as ola@example.test with the local password: an IMAP login (which must
/// succeed), then `message` sent to kari@example.test with smtplib; returns smtp_send.py's
/// lines ("OK rcpt" or "FAIL rcpt code text").
fn read_and_send(gate: &Mailgate, up: &Upstreams, message: &str) -> String {
    let login = gate.imap_login("ola@example.test", LOCAL_PW);
    assert!(login.contains("\nauth OK"), "{login}");
    let file = up.dir.path().join("m.eml");
    fs::write(&file, message).unwrap();
    python_done(
        "smtp_send.py",
        &[
            "127.0.0.1",
            &gate.smtp_addr.port().to_string(),
            "ola@example.test",
            LOCAL_PW,
            "ola@example.test",
            "kari@example.test",
            file.to_str().unwrap(),
        ],
    )
}

/// [`read_and_send`] with `body`, which must succeed and be delivered to kari, with no secret
/// in mailgate's log.
fn reads_and_sends(gate: &mut Mailgate, up: &Upstreams, body: &str) {
    let sent = read_and_send(gate, up, &format!("Subject: set up\r\n\r\n{body}\r\n"));
    assert!(sent.contains("OK kari@example.test"), "{sent}");
    let delivered = up.postfix.wait_for("kari@example.test");
    assert!(String::from_utf8_lossy(&delivered).contains(body));
    gate.assert_no_secrets(&[UPSTREAM_PW, LOCAL_PW]);
}

#[test]
fn non_interactive_setup_writes_an_account_that_works_through_mailgate() {
    let up = Upstreams::start();
    let (config, before, imap_port, smtp_port) = up.config();
    let mut args = up.server_args();
    args.extend(["--client".to_string(), "superoffice".to_string()]);
    let out = setup(&config, "ola@example.test", UPSTREAM_PW, &args);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    // The folders found (this Dovecot has none with a role) and SuperOffice's settings.
    for line in [
        "Folders (client = superoffice, sent copy: client)",
        "sent     none found at the provider",
        "NameSent = \"Sent Items\"",
        "SaveSentInSentItems = on",
    ] {
        assert!(shown.contains(line), "missing {line:?}:\n{shown}");
    }
    assert!(
        !shown.contains(UPSTREAM_PW) && !shown.contains(LOCAL_PW),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "incoming mail (IMAP): server 127.0.0.1  port {imap_port}  connection security: none"
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "outgoing mail (SMTP): server 127.0.0.1  port {smtp_port}"
        )),
        "{shown}"
    );
    assert!(shown.contains("user name: ola@example.test"), "{shown}");
    assert!(
        shown.contains("password: the local password you chose"),
        "{shown}"
    );

    // The old text is kept byte for byte; the account follows with its comments.
    let after = fs::read_to_string(&config).unwrap();
    assert!(after.starts_with(&before), "{after}");
    let added = &after[before.len()..];
    assert!(
        added.contains("# ola@example.test — added by `mailgate setup`."),
        "{added}"
    );
    assert!(added.contains("# Given to `mailgate setup`"), "{added}");
    assert!(
        added.contains("[account.folders]\nclient = \"superoffice\""),
        "{added}"
    );
    assert!(
        added.contains("password_file = \"state/credentials/ola@example.test.password\""),
        "{added}"
    );
    assert!(!added.contains(UPSTREAM_PW), "{added}");
    let secret = config
        .parent()
        .unwrap()
        .join("state/credentials/ola@example.test.password");
    assert_eq!(
        fs::read_to_string(&secret).unwrap(),
        format!("{UPSTREAM_PW}\n")
    );
    assert_eq!(
        fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A second setup of the same address is refused, and changes nothing.
    let again = setup(&config, "OLA@example.test", UPSTREAM_PW, &up.server_args());
    assert!(!again.status.success());
    assert!(
        text(&again).contains("already has an account OLA@example.test"),
        "{}",
        text(&again)
    );
    assert_eq!(fs::read_to_string(&config).unwrap(), after);

    // mailgate runs the file, and the client logs in and sends with the local password.
    let mut gate = Mailgate::start_file(&config, &[]);
    reads_and_sends(&mut gate, &up, "hello from setup");
}

/// `--imap-server`/`--imap-tls` without the SMTP options: an account that only receives.
/// Nothing SMTP is written or tested, the client is told there is no outgoing server, and
/// through mailgate the account reads mail, while sending gets the documented `550 5.3.5`.
#[test]
fn an_account_that_only_receives_is_set_up_without_smtp() {
    let up = Upstreams::start();
    let (config, before, _, smtp_port) = up.config();
    let mut args = up.server_args();
    args.drain(4..8); // --smtp-server … --smtp-tls …
    assert_eq!(args[4], "--ca-file");
    let out = setup(&config, "ola@example.test", UPSTREAM_PW, &args);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("SMTP  not found (the account can receive but not send)"),
        "{shown}"
    );
    assert!(
        shown.contains("outgoing mail (SMTP): none (no SMTP server was set up"),
        "{shown}"
    );
    assert!(!shown.contains(&smtp_port.to_string()), "{shown}");
    let after = fs::read_to_string(&config).unwrap();
    let added = after
        .strip_prefix(before.as_str())
        .unwrap_or_else(|| panic!("the old text changed:\n{after}"));
    assert!(added.contains("[account.imap]"), "{added}");
    assert!(!added.contains("[account.smtp]"), "{added}");

    let mut gate = Mailgate::start_file(&config, &[]);
    let sent = read_and_send(&gate, &up, "Subject: no\r\n\r\nnot sent\r\n");
    assert!(
        sent.contains("550 5.3.5 No outgoing server is configured"),
        "{sent}"
    );
    gate.assert_no_secrets(&[UPSTREAM_PW, LOCAL_PW]);

    // An SMTP server without its TLS mode is refused before anything happens.
    let mut half = up.server_args();
    half.drain(6..8); // --smtp-tls …
    assert_eq!(half[6], "--ca-file");
    let out = setup(&config, "kari@example.test", UPSTREAM_PW, &half);
    assert!(!out.status.success());
    assert!(text(&out).contains("--smtp-tls"), "{}", text(&out));
    assert_eq!(fs::read_to_string(&config).unwrap(), after);
}

#[test]
fn a_failing_live_test_leaves_the_file_untouched() {
    let up = Upstreams::start();
    let (config, before, _, _) = up.config();
    let out = setup(
        &config,
        "ola@example.test",
        "wrong-password",
        &up.server_args(),
    );
    let shown = text(&out);
    assert!(!out.status.success(), "{shown}");
    assert!(shown.contains("IMAP login failed:"), "{shown}");
    // Nothing is stored yet: the message says what was tried.
    assert!(
        shown.contains("rejected the password for ola@example.test"),
        "{shown}"
    );
    assert!(!shown.contains("stored credential"), "{shown}");
    assert!(!shown.contains("wrong-password"), "{shown}");
    assert_eq!(fs::read_to_string(&config).unwrap(), before);
    assert!(!config.parent().unwrap().join("state").exists());
    // Nor is a missing config file created.
    let missing = config.with_file_name("new.toml");
    let out = setup(
        &missing,
        "ola@example.test",
        "wrong-password",
        &up.server_args(),
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(!missing.exists());

    // An untrusted certificate: the advice names --ca-file.
    let mut args = up.server_args();
    args.truncate(args.len() - 2);
    let out = setup(&config, "ola@example.test", UPSTREAM_PW, &args);
    let shown = text(&out);
    assert!(!out.status.success(), "{shown}");
    assert!(shown.contains("UnknownIssuer"), "{shown}");
    assert!(
        shown.contains("the server's certificate is not trusted: give its CA file with --ca-file"),
        "{shown}"
    );
    assert_eq!(fs::read_to_string(&config).unwrap(), before);
}

#[test]
fn interactive_setup_in_a_terminal() {
    let up = Upstreams::start();
    let (config, before, _, _) = up.config();
    let mut args = vec![
        "Email address: ".to_string(),
        "kari@example.test".into(),
        "Use these settings? [Y/n] ".into(),
        String::new(),
        "at the provider: ".into(),
        format!("hidden:{UPSTREAM_PW}"),
        "Local password: ".into(),
        "hidden:".into(), // empty: mailgate generates one
        "--".into(),
        BIN.into(),
        "setup".into(),
        "--config".into(),
        config.display().to_string(),
    ];
    args.extend(up.server_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let screen = python_done("pty_drive.py", &args);
    assert!(screen.contains("\nexit 0"), "{screen}");
    // The password prompt does not echo.
    assert!(!screen.contains(UPSTREAM_PW), "{screen}");
    assert!(screen.contains("Settings given:"), "{screen}");
    assert!(!screen.contains("Settings found:"), "{screen}");
    let generated = screen
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("password: ")?
                .strip_suffix("(generated; shown only now)")
        })
        .map(str::trim)
        .unwrap_or_else(|| panic!("no generated password shown:\n{screen}"));
    assert_eq!(generated.len(), 20, "{generated}");
    let after = fs::read_to_string(&config).unwrap();
    assert!(after.starts_with(&before) && after.contains("email = \"kari@example.test\""));

    let gate = Mailgate::start_file(&config, &[]);
    let login = gate.imap_login("kari@example.test", generated);
    assert!(login.contains("\nauth OK"), "{login}");
}

/// Runs `mailgate setup --config CONFIG EXTRA…` in a pseudo-terminal: the `dialogue`'s
/// (prompt, answer) pairs, then the provider password and the local password (twice), typed
/// hidden. Returns the screen, once setup has succeeded.
fn setup_in_terminal(dialogue: Vec<String>, config: &Path, extra: &[String]) -> String {
    setup_in_terminal_then(dialogue, Vec::new(), config, extra)
}

/// [`setup_in_terminal`] with `after`: the prompts and answers that follow the passwords.
fn setup_in_terminal_then(
    dialogue: Vec<String>,
    after: Vec<String>,
    config: &Path,
    extra: &[String],
) -> String {
    let mut args = dialogue;
    args.extend([
        "at the provider: ".into(),
        format!("hidden:{UPSTREAM_PW}"),
        "Local password: ".into(),
        format!("hidden:{LOCAL_PW}"),
        "Again: ".into(),
        format!("hidden:{LOCAL_PW}"),
    ]);
    args.extend(after);
    args.extend([
        "--".into(),
        BIN.into(),
        "setup".into(),
        "--config".into(),
        config.display().to_string(),
    ]);
    args.extend_from_slice(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let screen = python_done("pty_drive.py", &args);
    assert!(screen.contains("\nexit 0"), "{screen}");
    screen
}

/// A domain discovery knows nothing about (the DNS stand-in answers "no such name" to
/// everything): the interactive set-up asks for the servers the way a mail client's manual
/// set-up does — security defaulting from the port, a wrong answer explained and asked again,
/// the user name defaulting to the address — and the account written with them works.
#[test]
fn interactive_setup_asks_for_servers_when_none_are_found() {
    let up = Upstreams::start();
    let dns = support::dns::DnsServer::start(&[]);
    let (config, before, _, _) = up.config();
    let imaps = up.postfix.dovecot.imaps_addr().expect("imaps port");
    let submission = format!("127.0.0.1:{}", up.postfix.starttls_port);
    let dialogue = vec![
        "Email address: ".to_string(),
        "kari@example.test".into(),
        "IMAP server (host:port".into(),
        imaps.to_string(),
        "IMAP security [implicit/starttls/none] (implicit): ".into(),
        String::new(),
        "SMTP server (host:port".into(),
        "no port here".into(),
        "is not HOST:PORT".into(),
        submission.clone(),
        "SMTP security [implicit/starttls/none] (implicit): ".into(),
        "ssl/tls please".into(),
        "answer implicit, starttls or none".into(),
        "starttls".into(),
        "User name at the provider (kari@example.test): ".into(),
        String::new(),
        "Use these settings? [Y/n] ".into(),
        String::new(),
    ];
    let screen = setup_in_terminal(
        dialogue,
        &config,
        &[
            "--resolver".into(),
            dns.addr.to_string(),
            "--ca-file".into(),
            up.ca.display().to_string(),
        ],
    );
    assert!(
        screen.contains("No settings found for kari@example.test"),
        "{screen}"
    );
    // What was typed is shown as given, not as found.
    assert!(
        screen.contains("Settings given:") && !screen.contains("Settings found:"),
        "{screen}"
    );
    assert!(
        !screen.contains(UPSTREAM_PW) && !screen.contains(LOCAL_PW),
        "{screen}"
    );
    assert!(!dns.queries().is_empty(), "discovery asked nothing");
    let after = fs::read_to_string(&config).unwrap();
    let added = after
        .strip_prefix(before.as_str())
        .unwrap_or_else(|| panic!("{after}"));
    for want in [
        format!("# Given to `mailgate setup`\nserver = \"{imaps}\"\ntls = \"implicit\""),
        format!("# Given to `mailgate setup`\nserver = \"{submission}\"\ntls = \"starttls\""),
    ] {
        assert!(added.contains(&want), "no `{want}` in\n{added}");
    }
    assert!(!added.contains("username"), "{added}");

    let gate = Mailgate::start_file(&config, &[]);
    let login = gate.imap_login("kari@example.test", LOCAL_PW);
    assert!(login.contains("\nauth OK"), "{login}");
}

/// An autoconfig file, read over plain http, that names an IMAP server without encryption:
/// `setup` writes `allow_plaintext = true` only with the user's consent. Without
/// `--allow-plaintext` the non-interactive form refuses (file untouched, the password never
/// sent); at the terminal the question defaults to "no" and leads to typing the servers; with
/// the flag the account is written and works through mailgate.
#[test]
fn plaintext_server_from_autoconfig_needs_the_users_consent() {
    use std::net::{IpAddr, Ipv4Addr};
    use support::autoconfig::{private_loopback, HttpServer};
    use support::dns::{DnsServer, Rec};
    let up = Upstreams::start();
    let site = private_loopback();
    let dns = DnsServer::start(&[
        ("autoconfig.example.test", Rec::Addr(IpAddr::V4(site))),
        (
            "imap.example.test",
            Rec::Addr(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ),
    ]);
    let imap_port = up.postfix.dovecot.imap_addr().port();
    let file = format!(
        "<clientConfig version=\"1.1\"><emailProvider id=\"example.test\">\
         <incomingServer type=\"imap\"><hostname>imap.example.test</hostname>\
         <port>{imap_port}</port><socketType>plain</socketType>\
         <username>%EMAILADDRESS%</username></incomingServer>\
         <outgoingServer type=\"smtp\"><hostname>127.0.0.1</hostname>\
         <port>{}</port><socketType>STARTTLS</socketType>\
         <username>%EMAILADDRESS%</username></outgoingServer>\
         </emailProvider></clientConfig>",
        up.postfix.starttls_port
    );
    let path = |local: &str| format!("/mail/config-v1.1.xml?emailaddress={local}%40example.test");
    let _http = HttpServer::start(
        (site, 80).into(),
        vec![(path("ola"), 200, file.clone()), (path("kari"), 200, file)],
    );
    // The live test and `mailgate run` resolve imap.example.test through the stand-in too.
    let (config, original, _, _) = up.config();
    let before = original.replacen(
        "[server]\n",
        &format!("[server]\nresolver = \"{}\"\n", dns.addr),
        1,
    );
    fs::write(&config, &before).unwrap();
    let ca = vec!["--ca-file".to_string(), up.ca.display().to_string()];

    let out = setup(&config, "ola@example.test", UPSTREAM_PW, &ca);
    let shown = text(&out);
    assert!(!out.status.success(), "{shown}");
    let warning = format!(
        "Warning: the IMAP server imap.example.test:{imap_port} (from autoconfig \
         http://autoconfig.example.test{}) offers no encryption",
        path("ola")
    );
    assert!(shown.contains(&warning), "{shown}");
    assert!(shown.contains("give --allow-plaintext"), "{shown}");
    assert_eq!(fs::read_to_string(&config).unwrap(), before);
    let logins = || up.postfix.dovecot.log().matches("Login: user=<").count();
    assert_eq!(logins(), 0, "the password went to the server");

    // At the terminal: Enter is "no", and the servers are typed instead — here an IMAP server
    // only (Enter at the SMTP question: the account receives only).
    let imaps = up.postfix.dovecot.imaps_addr().expect("imaps port");
    let dialogue = vec![
        "Email address: ".to_string(),
        "kari@example.test".into(),
        "Use these settings without encryption? [y/N] ".into(),
        String::new(),
        "IMAP server (host:port".into(),
        imaps.to_string(),
        "IMAP security [implicit/starttls/none] (implicit): ".into(),
        String::new(),
        "SMTP server (host:port, e.g. smtp.example.com:465; empty: none, receive only): ".into(),
        String::new(),
        "User name at the provider (kari@example.test): ".into(),
        String::new(),
    ];
    let screen = setup_in_terminal(dialogue, &config, &ca);
    assert!(screen.contains("offers no encryption"), "{screen}");
    let after = fs::read_to_string(&config).unwrap();
    let kari = after
        .strip_prefix(before.as_str())
        .unwrap_or_else(|| panic!("the old text changed:\n{after}"));
    assert!(kari.contains(&format!("server = \"{imaps}\"")), "{kari}");
    assert!(!kari.contains("allow_plaintext"), "{kari}");
    assert!(!kari.contains("[account.smtp]"), "{kari}");
    assert!(screen.contains("outgoing mail (SMTP): none"), "{screen}");
    assert!(up
        .postfix
        .dovecot
        .wait_for_log("Login: user=<kari@example.test>", PROCESS_TIMEOUT));
    assert_eq!(logins(), 1, "only the typed (TLS) server was logged in to");

    // With --allow-plaintext: written as found, and working.
    let mut args = ca.clone();
    args.push("--allow-plaintext".into());
    let out = setup(&config, "ola@example.test", UPSTREAM_PW, &args);
    assert!(out.status.success(), "{}", text(&out));
    let all = fs::read_to_string(&config).unwrap();
    let ola = all
        .strip_prefix(after.as_str())
        .unwrap_or_else(|| panic!("the old text changed:\n{all}"));
    for want in [
        format!(
            "server = \"imap.example.test:{imap_port}\"\ntls = \"none\"\nallow_plaintext = true"
        ),
        format!(
            "# Found by: autoconfig http://autoconfig.example.test{}",
            path("ola")
        ),
    ] {
        assert!(ola.contains(&want), "no `{want}` in\n{ola}");
    }
    let mut gate = Mailgate::start_file(&config, &[]);
    let login = gate.imap_login("ola@example.test", LOCAL_PW);
    assert!(login.contains("\nauth OK"), "{login}");
    gate.assert_no_secrets(&[UPSTREAM_PW, LOCAL_PW]);
}

/// `curl URL`: (HTTP status, redirect target).
fn curl(url: &str) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "--max-time", "30"])
        .args(["-w", "%{http_code} %{redirect_url}", url])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (status, location) = text.split_once(' ').unwrap_or((&text, ""));
    (status.to_owned(), location.trim().to_owned())
}

/// Dovecot (IMAP with OAUTHBEARER/XOAUTH2 checked at the test identity provider) and Postfix,
/// for `ola@example.test`.
fn oauth_upstreams(idp: &Idp) -> Postfix {
    Postfix::start_with(
        &["ola"],
        UPSTREAM_PW,
        DovecotOpts {
            imap: true,
            oauth2_introspection_url: Some(idp.url("/introspect")),
            ..DovecotOpts::sasl_only()
        },
    )
}

/// Runs `mailgate setup --non-interactive --oauth` for `email` into a new config in `dir`,
/// with SMTP at `smtp_server`, and signs in through the identity provider with curl as the
/// browser; returns the config file, whether setup succeeded, and what it printed.
fn oauth_setup(
    idp: &Idp,
    postfix: &Postfix,
    email: &str,
    smtp_server: &str,
    dir: &Path,
) -> (PathBuf, bool, String) {
    use std::io::{BufRead, BufReader};
    let config = dir.join("mailgate.toml");
    fs::write(
        &config,
        format!(
            "[server]\nimap_listen = \"127.0.0.1:{}\"\nsmtp_listen = \"127.0.0.1:{}\"\n",
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["setup", "--non-interactive", "--config"])
        .arg(&config)
        .args(["--email", email, "--local-password-env", "SETUP_LOCAL"])
        .args(["--oauth", "--client-id", CLIENT_ID, "--scope", "mail"])
        .args(["--timeout-secs", "60"])
        .args(["--authorize-url", &idp.url("/authorize")])
        .args(["--token-url", &idp.url("/token")])
        .args(["--imap-server", &postfix.dovecot.imap_addr().to_string()])
        .args(["--imap-tls", "none", "--smtp-tls", "starttls"])
        .args(["--smtp-server", smtp_server])
        .arg("--ca-file")
        .arg(&postfix.ca_file)
        .env("SETUP_LOCAL", LOCAL_PW)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn setup");
    // Read stdout on a thread to the end, so setup can always write its output.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let mut url = None;
    while let Ok(line) = rx.recv_timeout(PROCESS_TIMEOUT) {
        seen.push(line.clone());
        if line.contains("/authorize?") {
            url = Some(line.trim().to_owned());
        }
        if line.starts_with("Waiting for the redirect") {
            break;
        }
    }
    let url = url.unwrap_or_else(|| panic!("no authorize address:\n{}", seen.join("\n")));
    let (status, location) = curl(&url);
    assert_eq!(status, "302", "{url}");
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    assert_eq!(curl(&location).0, "200");
    let status = support::proc::wait_timeout(&mut child, PROCESS_TIMEOUT);
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut rest);
    let output = format!("{status:?}\n{}\n{rest}", seen.join("\n"));
    (config, status.is_some_and(|s| s.success()), output)
}

/// The token files in the state folder next to `config`.
fn token_files(config: &Path) -> Vec<PathBuf> {
    let dir = config.parent().unwrap().join("state").join("tokens");
    fs::read_dir(&dir)
        .map(|d| d.map_while(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn oauth_setup_signs_in_then_tests_with_the_token() {
    let email = "ola@example.test";
    let idp = Idp::start(email);
    let postfix = oauth_upstreams(&idp);
    let dir = tempfile::tempdir().unwrap();
    let smtp = format!("127.0.0.1:{}", postfix.starttls_port);
    let (config, ok, output) = oauth_setup(&idp, &postfix, email, &smtp, dir.path());
    assert!(ok, "{output}");

    let written = fs::read_to_string(&config).unwrap();
    assert!(written.contains("[account.oauth2]"), "{written}");
    assert!(
        written.contains(&format!("client_id = \"{CLIENT_ID}\"")),
        "{written}"
    );
    assert!(!written.contains("password_file"), "{written}");
    assert_eq!(token_files(&config).len(), 1, "{:?}", token_files(&config));
    // The token sign-in and the live test both used the identity provider's tokens.
    assert!(idp.introspections() >= 2, "{}", idp.introspections());
    let gate = Mailgate::start_file(&config, &[]);
    let login = gate.imap_login(email, LOCAL_PW);
    assert!(login.contains("\nauth OK"), "{login}");
}

/// An OAuth sign-in that succeeds, then a live test that fails (no SMTP server where given):
/// the account is not added, and the tokens of that sign-in are removed with it — no secret
/// outlives an account that was never set up.
#[test]
fn oauth_setup_with_a_failing_live_test_keeps_no_tokens() {
    let email = "ola@example.test";
    let idp = Idp::start(email);
    let postfix = oauth_upstreams(&idp);
    let dir = tempfile::tempdir().unwrap();
    let down = support::proc::RefusingPort::new();
    let smtp = format!("127.0.0.1:{}", down.port());
    let (config, ok, output) = oauth_setup(&idp, &postfix, email, &smtp, dir.path());
    assert!(!ok, "{output}");
    // The failing step, named (setup's progress line also mentions "SMTP AUTH", so the word
    // alone would prove nothing).
    assert!(output.contains("SMTP AUTH failed:"), "{output}");
    let written = fs::read_to_string(&config).unwrap();
    assert!(!written.contains(email), "{written}");
    // The sign-in itself happened (the identity provider was asked about its token).
    assert!(idp.introspections() >= 1, "{output}");
    assert_eq!(token_files(&config), Vec::<PathBuf>::new(), "{output}");
}

/// Run as root for a gateway that runs as another user (the documented service layout): the
/// replaced config keeps its owner, group and mode; the credential file takes the state
/// folder's owner; a credentials folder others could enter is tightened to 0700. The ids need
/// not exist (nobody/nogroup and two unused ones).
#[test]
fn setup_as_root_keeps_the_service_users_files() {
    use std::os::unix::fs::{chown, MetadataExt};
    if !rustix::process::geteuid().is_root() {
        panic!("this test gives files away, which needs root (the tests run as root)");
    }
    let up = Upstreams::start();
    let (config, _, _, _) = up.config();
    chown(&config, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o640)).unwrap();
    let state = config.parent().unwrap().join("state");
    let credentials = state.join("credentials");
    fs::create_dir_all(&credentials).unwrap();
    chown(&state, Some(64001), Some(64002)).unwrap();
    fs::set_permissions(&credentials, fs::Permissions::from_mode(0o755)).unwrap();

    let out = setup(&config, "ola@example.test", UPSTREAM_PW, &up.server_args());
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        fs::read_to_string(&config)
            .unwrap()
            .contains("email = \"ola@example.test\""),
        "the account was not added"
    );
    let owner_mode = |p: &Path| {
        let m = fs::metadata(p).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    assert_eq!(
        owner_mode(&config),
        (65534, 65534, 0o640),
        "the config file"
    );
    assert_eq!(owner_mode(&credentials).2, 0o700, "the credentials folder");
    let secret = credentials.join("ola@example.test.password");
    assert_eq!(
        owner_mode(&secret),
        (64001, 64002, 0o600),
        "the credential file"
    );

    // A state folder that does not exist yet is made for the owner of the folder it is in.
    let fresh = up.dir.path().join("fresh");
    fs::create_dir_all(&fresh).unwrap();
    chown(&fresh, Some(64003), Some(64004)).unwrap();
    let config2 = fresh.join("mailgate.toml");
    let out = setup(
        &config2,
        "kari@example.test",
        UPSTREAM_PW,
        &up.server_args(),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        owner_mode(&config2),
        (64003, 64004, 0o640),
        "the new config"
    );
    assert_eq!(owner_mode(&fresh.join("state")), (64003, 64004, 0o700));
    assert_eq!(
        owner_mode(&fresh.join("state/credentials")),
        (64003, 64004, 0o700)
    );
    assert_eq!(
        owner_mode(&fresh.join("state/credentials/kari@example.test.password")),
        (64003, 64004, 0o600)
    );
}

/// The shipped `conf/mailgate.toml` runs as the README's first command says (its example
/// account loaded, the provider password from the environment); `setup` removes the example
/// account (a placeholder whose password variable is unset once real accounts are used) and
/// appends the new account after the rest (every other shipped byte kept), and the file then
/// passes check-config with no environment variable set and the account logs in and sends
/// through mailgate.
#[test]
fn setup_adds_an_account_to_the_shipped_config() {
    let shipped = shipped_config();
    // The shipped listeners on free ports, so that mailgate can run next to other tests.
    let on_free_ports = |text: &str, addrs: &[&str]| {
        addrs.iter().fold(text.to_owned(), |t, addr| {
            let line = format!("listen = \"{addr}\"\n");
            assert_eq!(
                t.matches(&line).count(),
                1,
                "{addr} not in the shipped file"
            );
            t.replace(&line, &format!("listen = \"127.0.0.1:{}\"\n", free_port()))
        })
    };
    let all = ["127.0.0.1:1143", "127.0.0.1:1587", "127.0.0.1:9187"];
    let mut example = Mailgate::start_with_env(
        &on_free_ports(&shipped, &all),
        &[("MAILGATE_IMAP_PASSWORD", "app-pw-x")],
    );
    let log = example.stop().join("\n");
    assert!(
        log.contains("account=you@gmail.com imap=imap.gmail.com:993"),
        "{log}"
    );
    assert!(!log.contains("app-pw-x"), "{log}");

    let up = Upstreams::start();
    let config = up.dir.path().join("conf").join("mailgate.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::write(&config, &shipped).unwrap();
    // The listeners are the one documented change to the text already there.
    let (imap, smtp) = (free_port(), free_port());
    let mut args = up.server_args();
    args.extend([
        "--imap-listen".into(),
        format!("127.0.0.1:{imap}"),
        "--smtp-listen".into(),
        format!("127.0.0.1:{smtp}"),
    ]);
    let out = setup(&config, "ola@example.test", UPSTREAM_PW, &args);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "incoming mail (IMAP): server 127.0.0.1  port {imap}"
        )),
        "{}",
        text(&out)
    );
    let expected = shipped
        .replacen(
            "imap_listen = \"127.0.0.1:1143\"\n",
            &format!("imap_listen = \"127.0.0.1:{imap}\"\n"),
            1,
        )
        .replacen(
            "smtp_listen = \"127.0.0.1:1587\"\n",
            &format!("smtp_listen = \"127.0.0.1:{smtp}\"\n"),
            1,
        );
    assert_ne!(expected, shipped);
    // The example account's block (the end of the file) is gone, with the blank line before it.
    let example_at = expected
        .find("\n# >>> The example account.")
        .expect("the shipped example account");
    let expected = &expected[..example_at];
    let after = fs::read_to_string(&config).unwrap();
    let added = after
        .strip_prefix(expected)
        .unwrap_or_else(|| panic!("the shipped text changed:\n{after}"));
    assert!(
        added.starts_with("\n# ola@example.test — added by `mailgate setup`.\n[[account]]\nemail = \"ola@example.test\"\n"),
        "{added}"
    );
    assert!(!after.contains("you@gmail.com\""), "{after}");
    assert!(
        text(&out).contains("The example account you@gmail.com is removed"),
        "{}",
        text(&out)
    );

    let check = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&config)
        .env_remove("MAILGATE_IMAP_PASSWORD")
        .output()
        .expect("check-config");
    assert!(check.status.success(), "{}", text(&check));
    assert!(
        String::from_utf8_lossy(&check.stdout).ends_with(": OK (1 account)\n"),
        "{}",
        text(&check)
    );

    fs::write(&config, on_free_ports(&after, &["127.0.0.1:9187"])).unwrap();
    let mut gate = Mailgate::start_file(&config, &[]);
    assert_eq!((gate.imap_addr.port(), gate.smtp_addr.port()), (imap, smtp));
    assert!(!gate.log().contains("no accounts"), "{}", gate.log());
    reads_and_sends(&mut gate, &up, "from the shipped file");
}

/// The shipped example configuration, which is also what `setup` starts a new file with.
fn shipped_config() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/mailgate.toml"))
        .expect("conf/mailgate.toml")
}

/// A server whose certificate comes from a private CA, set up at the terminal without
/// --ca-file: after the passwords the live test fails on the certificate, the wizard asks for
/// the CA file (a wrong path is explained and asked again), tests again without asking the
/// passwords anew, and writes the account with that CA file, which then works.
#[test]
fn interactive_setup_asks_for_the_ca_file_of_an_untrusted_server() {
    let up = Upstreams::start();
    // A new file: the wizard asks for the listeners too.
    let config = up.dir.path().join("new").join("mailgate.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    let (imap, smtp) = (free_port(), free_port());
    let before = shipped_config()
        .replacen("\"127.0.0.1:1143\"", &format!("\"127.0.0.1:{imap}\""), 1)
        .replacen("\"127.0.0.1:1587\"", &format!("\"127.0.0.1:{smtp}\""), 1);
    // Without the example account, which the wizard offers to remove (the default answer).
    let before = &before[..before
        .find("\n# >>> The example account.")
        .expect("the shipped example account")];
    let mut server_args = up.server_args();
    assert_eq!(server_args[server_args.len() - 2], "--ca-file");
    server_args.truncate(server_args.len() - 2);
    let missing = up.dir.path().join("no-such-ca.pem");
    let question = "The server's certificate is not trusted: give its CA file (PEM; empty: stop): ";
    let dialogue: Vec<String> = vec![
        "Email address: ".into(),
        "kari@example.test".into(),
        "(local password change-me). Remove it? [Y/n] ".into(),
        String::new(),
        "Address mail clients connect to for IMAP (127.0.0.1:1143): ".into(),
        "192.0.2.1:1143".into(),
        "Address mail clients connect to for IMAP (127.0.0.1:1143): ".into(),
        format!("127.0.0.1:{imap}"),
        "Address mail clients connect to for SMTP (127.0.0.1:1587): ".into(),
        format!("127.0.0.1:{smtp}"),
        "Use these settings? [Y/n] ".into(),
        String::new(),
    ];
    let after = vec![
        question.into(),
        missing.display().to_string(),
        // Asked again after the refused answer: the real CA file.
        question.into(),
        up.ca.display().to_string(),
    ];
    let screen = setup_in_terminal_then(dialogue, after, &config, &server_args);
    assert!(screen.contains("IMAP login failed: TLS with"), "{screen}");
    assert_eq!(screen.matches("at the provider: ").count(), 1, "{screen}");
    assert_eq!(screen.matches(question).count(), 2, "{screen}");
    assert!(
        screen.contains("no-such-ca.pem: No such file or directory"),
        "{screen}"
    );
    assert!(
        screen.contains("192.0.2.1:1143 is not a loopback address"),
        "{screen}"
    );
    assert!(
        !screen.contains(UPSTREAM_PW) && !screen.contains(LOCAL_PW),
        "{screen}"
    );
    let after = fs::read_to_string(&config).unwrap();
    let added = after
        .strip_prefix(before)
        .unwrap_or_else(|| panic!("the old text changed:\n{after}"));
    let ca_line = format!(
        "ca_file = \"{}\"",
        fs::canonicalize(&up.ca).unwrap().display()
    );
    assert_eq!(added.matches(&ca_line).count(), 2, "{added}");

    // The metrics port on a free one too, to run next to other tests.
    let metrics = format!("\"127.0.0.1:{}\"", free_port());
    fs::write(&config, after.replacen("\"127.0.0.1:9187\"", &metrics, 1)).unwrap();
    let gate = Mailgate::start_file(&config, &[]);
    assert_eq!((gate.imap_addr.port(), gate.smtp_addr.port()), (imap, smtp));
    let login = gate.imap_login("kari@example.test", LOCAL_PW);
    assert!(login.contains("\nauth OK"), "{login}");
}
