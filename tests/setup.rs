//! `mailgate setup` against real Dovecot (IMAP, implicit TLS) and Postfix (submission,
//! STARTTLS): the non-interactive form writes an account that `mailgate run` accepts and that
//! works through the gateway, keeps the file's comments, refuses duplicates, leaves the file
//! untouched when the live test fails; the interactive form is driven in a pseudo-terminal.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::mailgate::{cached_hash, toml_str, BIN};
use support::proc::{free_port, python_done, run_with_timeout, PROCESS_TIMEOUT};
use support::{DovecotOpts, Mailgate, Pki, Postfix};

const UPSTREAM_PW: &str = "upstream-Secret-71";
const LOCAL_PW: &str = "local-Secret-38";

/// Dovecot (IMAP on implicit TLS, and Postfix's SASL) and Postfix, both trusting users
/// `ola@example.test` and `kari@example.test`, plus one CA file that trusts both servers.
struct Upstreams {
    postfix: Postfix,
    _pki: Pki,
    dir: tempfile::TempDir,
    ca: PathBuf,
}

impl Upstreams {
    fn start() -> Upstreams {
        let pki = Pki::new();
        let postfix = Postfix::start_with(
            &["ola", "kari"],
            UPSTREAM_PW,
            DovecotOpts {
                imap: true,
                sasl_socket: true,
                ..DovecotOpts::tls(&pki.server)
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let both = format!(
            "{}{}",
            fs::read_to_string(&pki.ca).unwrap(),
            fs::read_to_string(&postfix.ca_file).unwrap()
        );
        fs::write(&ca, both).unwrap();
        Upstreams {
            postfix,
            _pki: pki,
            dir,
            ca,
        }
    }

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

#[test]
fn non_interactive_setup_writes_an_account_that_works_through_mailgate() {
    let up = Upstreams::start();
    let (config, before, imap_port, smtp_port) = up.config();
    let out = setup(&config, "ola@example.test", UPSTREAM_PW, &up.server_args());
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        !shown.contains(UPSTREAM_PW) && !shown.contains(LOCAL_PW),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "incoming mail (IMAP): server localhost  port {imap_port}  connection security: none"
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "outgoing mail (SMTP): server localhost  port {smtp_port}"
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
    assert!(added.contains("# Found by: given"), "{added}");
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
    let login = gate.imap_login("ola@example.test", LOCAL_PW);
    assert!(login.contains("\nauth OK"), "{login}");
    let message = up.dir.path().join("m.eml");
    fs::write(&message, "Subject: set up\r\n\r\nhello from setup\r\n").unwrap();
    let sent = python_done(
        "smtp_send.py",
        &[
            "127.0.0.1",
            &gate.smtp_addr.port().to_string(),
            "ola@example.test",
            LOCAL_PW,
            "ola@example.test",
            "kari@example.test",
            message.to_str().unwrap(),
        ],
    );
    assert!(sent.contains("OK kari@example.test"), "{sent}");
    let delivered = up.postfix.wait_for("kari@example.test");
    assert!(String::from_utf8_lossy(&delivered).contains("hello from setup"));
    gate.assert_no_secrets(&[UPSTREAM_PW, LOCAL_PW]);
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
    assert!(
        shown.contains("rejected the stored credential for ola@example.test"),
        "{shown}"
    );
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
    assert!(shown.contains("--ca-file"), "{shown}");
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
    assert!(screen.contains("Settings found:"), "{screen}");
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
