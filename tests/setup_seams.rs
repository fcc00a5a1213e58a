//! The library seams the connect page shares with `mailgate setup`: an account edited in the
//! file (upstream server changed, the stored password kept; tested live against real Dovecot
//! and Postfix before anything is written) then working through mailgate; and the OAuth
//! authorization-code flow split into `begin`/`finish` against the stand-in identity provider.

mod support;

use mailgate::config::{Config, TlsMode};
use mailgate::oauth::authorize::{self, AuthorizeError};
use mailgate::secret::Secret;
use mailgate::setup::{self, Credential, Manual, Plan, Target};
use std::fs;
use std::io::{Read, Write};
use support::config::toml_str;
use support::idp::CLIENT_ID;
use support::mailgate::cached_hash;
use support::upstreams::{Upstreams, UPSTREAM_PW};
use support::{Idp, Mailgate};

const LOCAL_PW: &str = "local-Secret-38";
const EMAIL: &str = "ola@example.test";

fn runtime() -> tokio::runtime::Runtime {
    mailgate::net::tls::install_crypto_provider();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn an_edited_account_is_tested_then_written_and_works_through_mailgate() {
    let up = Upstreams::start();
    let (postfix, dir, ca) = (&up.postfix, &up.dir, &up.ca);
    let conf = dir.path().join("conf");
    let cred = conf.join("state/credentials/ola@example.test.password");
    fs::create_dir_all(cred.parent().unwrap()).unwrap();
    fs::write(&cred, format!("{UPSTREAM_PW}\n")).unwrap();
    let (imap, smtp) = (support::proc::free_port(), support::proc::free_port());
    let head = format!(
        "# The office gateway; kept by an edit.\n[server]\nimap_listen = \"127.0.0.1:{imap}\" # CRM\nsmtp_listen = \"127.0.0.1:{smtp}\"\nstate_dir = \"state\"\n\n# ola, moved to the new server by the edit\n"
    );
    let old = format!(
        "[[account]]\nemail = \"{EMAIL}\"\nlocal_password_hash = {}\n[account.imap]\nserver = \"127.0.0.1:1\"\ntls = \"implicit\"\npassword_file = \"state/credentials/ola@example.test.password\"\n",
        toml_str(&cached_hash(LOCAL_PW))
    );
    let tail = format!(
        "\n# another, untouched\n[[account]]\nemail = \"other@example.test\"\nlocal_password_hash = {}\n[account.imap]\nserver = \"127.0.0.1:1\"\npassword = \"unused\" # inline\n",
        toml_str(&cached_hash("other-local"))
    );
    let path = conf.join("mailgate.toml");
    fs::write(&path, format!("{head}{old}{tail}")).unwrap();

    let imaps = postfix
        .dovecot
        .imaps_addr()
        .expect("imaps port")
        .to_string();
    let submission = format!("127.0.0.1:{}", postfix.starttls_port);
    let found = setup::manual(
        EMAIL,
        &Manual {
            imap: &imaps,
            imap_tls: TlsMode::Implicit,
            smtp: Some((&submission, TlsMode::Starttls)),
            username: None,
        },
    )
    .unwrap();
    let plan = |credential| Plan {
        email: EMAIL.into(),
        found: found.clone(),
        credential,
        ca_file: Some(ca.clone()),
        local_password_hash: cached_hash(LOCAL_PW),
        client: None,
    };
    let rt = runtime();
    let target = Target::open_edit(&path, EMAIL).unwrap();
    // A wrong new password fails the live test: nothing is written.
    let wrong = plan(Credential::Password(Secret::new("wrong-pw".into())));
    let e = rt
        .block_on(setup::live_test(&target, &wrong))
        .err()
        .unwrap();
    assert!(matches!(e, setup::SetupError::LiveTest { .. }), "{e}");
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        format!("{head}{old}{tail}")
    );
    // The kept password, on the new servers.
    let kept = plan(Credential::Keep);
    rt.block_on(setup::live_test(&target, &kept)).unwrap();
    let state = conf.join("state");
    assert_eq!(setup::write(&target, &kept, &state).unwrap(), None);
    let now = fs::read_to_string(&path).unwrap();
    assert!(now.starts_with(&head) && now.ends_with(&tail), "{now}");
    assert!(now.contains(&format!("server = \"{imaps}\"")), "{now}");
    assert_eq!(
        fs::read_to_string(&cred).unwrap(),
        format!("{UPSTREAM_PW}\n")
    );
    let cfg = Config::load(&path).unwrap();

    // Check now: the same steps on the account as loaded, recorded for the overview.
    let checked = rt
        .block_on(setup::check_account(&cfg, "OLA@example.test"))
        .unwrap();
    let kinds: Vec<_> = checked
        .steps
        .iter()
        .map(|s| (s.kind, s.outcome.is_ok()))
        .collect();
    use setup::StepKind::{FolderList, ImapLogin, SmtpAuth};
    assert_eq!(
        kinds,
        [(ImapLogin, true), (FolderList, true), (SmtpAuth, true)]
    );
    assert!(checked.folders.is_some());
    let broken = rt
        .block_on(setup::check_account(&cfg, "other@example.test"))
        .unwrap();
    assert!(!broken.passed());
    assert_eq!(broken.steps.len(), 1, "{broken:?}");
    assert_eq!(broken.steps[0].kind, ImapLogin);
    assert!(rt
        .block_on(setup::check_account(&cfg, "nobody@example.test"))
        .is_none());
    let rows = setup::overview(&cfg);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].email, EMAIL);
    assert_eq!(rows[0].auth, setup::Auth::Password);
    assert_eq!(rows[0].imap, imaps);
    assert_eq!(rows[0].last_check.as_ref(), Some(&checked));
    assert_eq!(rows[0].token, None);
    assert!(!rows[1].last_check.as_ref().unwrap().passed());

    let gate = Mailgate::start_file(&path, &[]);
    let login = gate.imap_login(EMAIL, LOCAL_PW);
    assert!(login.contains("\nauth OK"), "{login}");
}

/// `GET url` on loopback; the `Location` of the answer.
fn location(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, target) = rest.split_at(rest.find('/').unwrap());
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .unwrap_or_else(|| panic!("no redirect: {answer}"))
        .to_owned()
}

#[test]
fn oauth_begin_and_finish_as_a_web_page_drives_them() {
    let idp = Idp::start(EMAIL);
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nstate_dir = {}\n[[account]]\nemail = \"{EMAIL}\"\nlocal_password_hash = {}\n[account.imap]\nserver = \"127.0.0.1:1\"\n[account.oauth2]\nclient_id = \"{CLIENT_ID}\"\nauthorize_url = \"{}\"\ntoken_url = \"{}\"\nscopes = [\"mail\"]\n",
        toml_str(&dir.path().join("state").display().to_string()),
        toml_str(&cached_hash(LOCAL_PW)),
        idp.url("/authorize"),
        idp.url("/token"),
    );
    let cfg = Config::parse(&text, &dir.path().join("mailgate.toml")).unwrap();
    let oauth = cfg.accounts[0].imap.credential.oauth().unwrap().clone();
    let redirect = "http://127.0.0.1:8025/oauth/callback";
    let pending = authorize::begin(&oauth, redirect).unwrap();
    assert!(
        pending.url.contains("code_challenge_method=S256"),
        "{}",
        pending.url
    );
    assert!(
        pending.url.contains("login_hint=ola%40example.test"),
        "{}",
        pending.url
    );
    assert!(!pending.url.contains(pending.verifier.expose()));
    let again = authorize::begin(&oauth, redirect).unwrap();
    assert_ne!(pending.state, again.state, "a random state per request");

    let back = location(&pending.url);
    let query = back.strip_prefix(&format!("{redirect}?")).unwrap();
    let fields = mailgate::net::http::parse_query(query);
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let code = Secret::new(get("code"));
    assert_eq!(get("state"), pending.state.expose());
    let rt = runtime();
    // Another request's state: refused before the code is spent.
    let e = rt
        .block_on(authorize::finish(
            &oauth,
            &pending,
            &code,
            again.state.expose(),
            &cfg.server,
        ))
        .unwrap_err();
    assert!(matches!(e, AuthorizeError::StateMismatch), "{e}");
    assert!(mailgate::oauth::status(&oauth)
        .unwrap()
        .tokens
        .unwrap()
        .is_none());
    let tokens = rt
        .block_on(authorize::finish(
            &oauth,
            &pending,
            &code,
            &get("state"),
            &cfg.server,
        ))
        .unwrap();
    assert!(tokens.refresh_token.is_some());
    let stored = mailgate::oauth::status(&oauth)
        .unwrap()
        .tokens
        .unwrap()
        .unwrap();
    assert_eq!(stored.refresh_token, tokens.refresh_token);
    assert!(matches!(
        setup::overview(&cfg)[0].token,
        Some(setup::TokenState::Present { .. })
    ));
}
