//! The connect page (`[web]`) of a real `mailgate run`, over plain HTTP: the security headers
//! on every response (404s and the style sheet too), sign-in by the one-time link (once) and by
//! the operator password `mailgate web-password` set (wrong ones refused and counted by the
//! login throttle), CSRF refusals that change nothing, the four languages, discovery's result
//! (a preset, an MX, nothing found), and no secret on any page.

mod support;

use std::net::SocketAddr;
use support::dns::{DnsServer, Rec};
use support::mailgate::{parse_listen_line, run};
use support::web_client::{request, Response, WebSession};
use support::Mailgate;

const OPERATOR_PW: &str = "operator-Secret-55";

/// A gateway without accounts, with `[web]` on a free port and discovery asking `dns`.
fn config(dns: &DnsServer, web_extra: &str) -> String {
    format!(
        "[server]\nallow_no_accounts = true\nimap_listen = \"127.0.0.1:0\"\nsmtp_listen = \"127.0.0.1:0\"\nresolver = \"{}\"\nlogin_throttle_threshold = 1\nlogin_throttle_max_delay_ms = 0\nauth_failure_delay_ms = 0\n\n[web]\nlisten = \"127.0.0.1:0\"\n{web_extra}",
        dns.addr
    )
}

fn web_addr(gate: &Mailgate) -> SocketAddr {
    let line = gate.logged(&["web listening on"]);
    parse_listen_line(&line, "web listening on").expect("the web address")
}

/// The one-time link's token, from mailgate's standard output.
fn link_token(gate: &Mailgate) -> String {
    let line = gate.logged(&["stdout: Connect page: sign in once with"]);
    let at = line.find("token=").expect("a token") + "token=".len();
    line[at..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap()
        .to_owned()
}

fn assert_guarded(r: &Response, what: &str) {
    let want = [
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ];
    for (name, value) in want {
        assert_eq!(
            r.header(name),
            Some(value),
            "{what}: {name} in {:?}",
            r.headers
        );
    }
    let csp = r.header("content-security-policy").unwrap_or_default();
    for part in [
        "default-src 'none'",
        "style-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "{what}: CSP {csp:?} lacks {part}");
    }
}

/// Every reply: guarded, and free of every secret.
fn assert_clean(s: &WebSession, secrets: &[&str]) {
    for (i, r) in s.seen.iter().enumerate() {
        assert_guarded(r, &format!("reply {i} ({})", r.status));
        for secret in secrets {
            assert!(
                !r.body.contains(secret),
                "reply {i} shows a secret:\n{}",
                r.body
            );
        }
    }
}

/// The session cookie of a reply that signed in (303 to the start page).
fn signed_in(s: &WebSession, r: &Response) -> String {
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/")),
        "{}",
        r.body
    );
    s.cookie.clone().expect("a session cookie")
}

/// `POST /connect` with an address.
fn connect(s: &mut WebSession, csrf: &str, email: &str) -> Response {
    let r = s.post("/connect", &[("csrf", csrf), ("email", email)]);
    assert_eq!(r.status, 200, "{email}: {}", r.body);
    r
}

/// Whether the page has an element of this id.
fn has(r: &Response, id: &str) -> bool {
    r.body.contains(&format!("id=\"{id}\""))
}

#[test]
fn one_time_link_headers_csrf_languages_and_discovery() {
    let dns = DnsServer::start(&[("hosted.test", Rec::Mx(10, "aspmx.l.google.com".into()))]);
    let mut gate = Mailgate::start(&config(
        &dns,
        "[[web.oauth]]\nprovider = \"google\"\nclient_id = \"web-test-client\"\n",
    ));
    let addr = web_addr(&gate);
    let token = link_token(&gate);
    let mut s = WebSession::new(addr);

    // Not signed in: everything but the sign-in page and the style sheet goes to /signin.
    let r = s.get("/");
    assert_eq!((r.status, r.header("location")), (303, Some("/signin")));
    assert_eq!(s.get("/connect").header("location"), Some("/signin"));
    let css = s.get("/style.css");
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    let r = s.get("/signin");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("one-time sign-in link"), "{}", r.body);
    let anonymous = s.cookie.clone().expect("an anonymous session for the form");
    assert_eq!(s.post("/connect", &[("email", "a@b.test")]).status, 403);

    // The link works once.
    let r = s.get(&format!("/signin?token={token}"));
    let signed = signed_in(&s, &r);
    assert_ne!(signed, anonymous, "a new session id at sign-in");
    assert!(r
        .header("set-cookie")
        .unwrap()
        .contains("HttpOnly; SameSite=Lax; Path=/"));
    assert_eq!(s.get("/").header("location"), Some("/accounts"));
    let mut other = WebSession::new(addr);
    let r = other.get(&format!("/signin?token={token}"));
    assert_eq!(r.status, 403, "the link is used up");
    assert!(r.body.contains("used already"), "{}", r.body);
    assert_eq!(other.get("/connect").header("location"), Some("/signin"));

    // 404s are guarded too; the pages are there.
    assert_eq!(s.get("/no/such/page").status, 404);
    let help = s.get("/help");
    assert!(help.body.contains("IMAP only") && help.body.contains("imap.login"));
    assert!(help
        .body
        .contains("https://support.google.com/accounts/answer/185833"));

    // CSRF: missing or wrong → 403, and the session was not signed out.
    let page = s.get("/connect");
    let csrf = page.csrf().expect("a csrf field");
    assert_eq!(s.post("/signout", &[]).status, 403);
    assert_eq!(
        s.post("/signout", &[("csrf", "x".repeat(43).as_str())])
            .status,
        403
    );
    assert_eq!(
        s.post("/connect", &[("email", "ola@gmail.com")]).status,
        403
    );
    assert_eq!(s.get("/connect").status, 200, "still signed in");

    // Languages.
    for (header, words) in [
        ("nb", "Koble til en postkasse"),
        ("da", "Tilslut en postkasse"),
        ("nl-BE,nl;q=0.9", "Mailbox koppelen"),
        ("fr", "Connect a mailbox"),
    ] {
        s.language = Some(header.into());
        let r = s.get("/connect");
        assert!(r.body.contains(words), "{header}: {}", r.body);
    }
    s.language = None;

    // Discovery: a preset by domain (an OAuth app for Google is configured: both ways).
    let r = connect(&mut s, &csrf, "ola@gmail.com");
    assert_eq!(r.status, 200);
    for id in [
        "found",
        "oauth",
        "password-form",
        "app-password-help",
        "advanced-link",
    ] {
        assert!(
            r.body.contains(&format!("id=\"{id}\"")),
            "#{id} in {}",
            r.body
        );
    }
    assert!(r.body.contains("Gmail / Google Workspace") && r.body.contains("Sign in with Google"));
    assert!(r.body.contains("built-in settings"));
    // By MX: a custom domain hosted at Google.
    let r = connect(&mut s, &csrf, "kari@hosted.test");
    assert!(
        r.body.contains("MX record") && r.body.contains("aspmx.l.google.com"),
        "{}",
        r.body
    );
    assert!(has(&r, "oauth"));
    // Microsoft without an app: said so, no password form (it takes OAuth only).
    let r = connect(&mut s, &csrf, "per@outlook.com");
    assert!(has(&r, "oauth-not-set-up") && !has(&r, "password-form"));
    assert!(r
        .body
        .contains("Ask the administrator to enable sign-in with Microsoft"));
    assert!(
        !r.body.contains("[[web.oauth]]"),
        "operator wording on a user's page"
    );
    // Nothing found: the advanced form, with why.
    let r = connect(&mut s, &csrf, "nils@nothing.test");
    assert!(
        has(&r, "advanced") && r.body.contains("could not find"),
        "{}",
        r.body
    );
    let r = s.get("/connect/advanced?email=ola%40gmail.com");
    assert!(
        r.body.contains("value=\"imap.gmail.com:993\""),
        "{}",
        r.body
    );

    // Signing out ends the session.
    assert_eq!(s.post("/signout", &[("csrf", &csrf)]).status, 303);
    let mut old = WebSession::new(addr);
    old.cookie = Some(signed.clone());
    assert_eq!(old.get("/connect").header("location"), Some("/signin"));

    assert_clean(&s, &[&token, &signed]);
    assert_clean(&other, &[&token, &signed]);
    let log = gate.stop().join("\n");
    let log_only: String = log.lines().filter(|l| !l.starts_with("stdout: ")).collect();
    assert!(
        !log_only.contains(&token) && !log.contains(&signed),
        "a secret in the log"
    );
}

#[test]
fn operator_password_from_web_password_and_the_throttle() {
    let dns = DnsServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailgate.toml");
    let text = format!("# kept as it is\n{}", config(&dns, ""));
    std::fs::write(&path, &text).unwrap();
    let out = run(
        &["web-password", "--config", path.to_str().unwrap()],
        Some(format!("{OPERATOR_PW}\n").as_bytes()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(&path).unwrap();
    let hash_line = written
        .strip_prefix(text.as_str())
        .expect("the rest kept byte for byte");
    assert!(
        hash_line.starts_with("operator_password_hash = \"$argon2id$"),
        "{written}"
    );
    assert!(!written.contains(OPERATOR_PW));

    let mut gate = Mailgate::start_file(&path, &[]);
    let addr = web_addr(&gate);
    let mut s = WebSession::new(addr);
    let r = s.get("/signin");
    assert!(r.body.contains("id=\"signin\""), "{}", r.body);
    let csrf = r.csrf().unwrap();
    // Without the CSRF token the password is not even checked.
    assert_eq!(s.post("/signin", &[("password", OPERATOR_PW)]).status, 403);
    let r = s.post("/signin", &[("csrf", &csrf), ("password", "wrong-1")]);
    assert_eq!(r.status, 401);
    assert!(r.body.contains("not right"));
    gate.logged(&["operator sign-in failed", "throttle_failures=1"]);
    assert_eq!(
        s.post("/signin", &[("csrf", &csrf), ("password", "wrong-2")])
            .status,
        401
    );
    gate.logged(&["operator sign-in failed", "throttle_failures=2"]);
    // Locked out (twice the threshold of 1): even the right password is not checked now.
    let r = s.post("/signin", &[("csrf", &csrf), ("password", OPERATOR_PW)]);
    assert_eq!(r.status, 429, "{}", r.body);
    let list = run(
        &["throttle", "list", "--config", path.to_str().unwrap()],
        None,
    );
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("web-operator"),
        "{list:?}"
    );
    let clear = run(
        &["throttle", "clear", "--config", path.to_str().unwrap()],
        None,
    );
    assert!(clear.status.success());
    let r = s.post("/signin", &[("csrf", &csrf), ("password", OPERATOR_PW)]);
    let signed = signed_in(&s, &r);
    assert_eq!(s.get("/connect").status, 200);
    // No link is printed when a password is set.
    assert!(!gate.log().contains("sign in once with"));

    assert_clean(&s, &[OPERATOR_PW, &signed]);
    let raw =
        request("GET", &format!("http://{addr}/style.css"), &[], None).expect("GET /style.css");
    assert_guarded(&raw, "css");
    gate.stop();
    gate.assert_no_secrets(&[OPERATOR_PW, &signed]);
}
