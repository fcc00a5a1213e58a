//! The pre-login conversation driven without sockets: bytes in, responses and steps out.

use super::machine::*;
use crate::sasl::encode_b64;

fn settings() -> Settings {
    Settings {
        tls: false,
        loopback: true,
        starttls: false,
        max_bad_commands: 3,
        max_auth_failures: 2,
        local_port: 143,
    }
}

/// Feeds `input`; returns what was answered, the bytes taken and the step.
fn feed(m: &mut Machine, input: &[u8]) -> (String, usize, Next) {
    let (n, next) = m.feed(input);
    (String::from_utf8(m.output()).unwrap(), n, next)
}

/// Feeds `input` whole and expects the machine to want more.
fn say(m: &mut Machine, input: &[u8]) -> String {
    let (out, n, next) = feed(m, input);
    assert!(matches!(next, Next::Read), "{next:?} after {out:?}");
    assert_eq!(n, input.len());
    out
}

fn verify(next: Next) -> (String, String) {
    match next {
        Next::Verify { login, password } => (login, password.expose().to_owned()),
        other => panic!("no check asked for: {other:?}"),
    }
}

#[test]
fn mailgate_answers_itself_before_login() {
    let mut m = Machine::new(settings());
    assert_eq!(
        say(&mut m, b"a CAPABILITY\r\n"),
        format!("* CAPABILITY {CAPABILITIES}\r\na OK Capability completed.\r\n")
    );
    assert_eq!(say(&mut m, b"b NOOP\r\n"), "b OK NOOP completed.\r\n");
    let id = say(&mut m, b"c ID (\"name\" \"x\")\r\n");
    assert!(id.starts_with("* ID (\"name\" \"mailgate\" \"version\" \""));
    assert!(id.ends_with("c OK ID completed.\r\n"));
    assert_eq!(
        say(&mut m, b"d SELECT INBOX\r\n"),
        "d BAD Log in first: this command needs an authenticated session.\r\n"
    );
    let (out, _, next) = feed(&mut m, b"e LOGOUT\r\n");
    assert_eq!(out, "* BYE Logging out.\r\ne OK Logout completed.\r\n");
    assert!(matches!(next, Next::Close("logout")));
}

#[test]
fn capabilities_follow_the_connection() {
    let plain = Settings {
        starttls: true,
        ..settings()
    };
    assert!(plain.capabilities().contains("STARTTLS AUTH=PLAIN"));
    let remote = Settings {
        loopback: false,
        ..plain
    };
    assert!(remote.capabilities().ends_with("STARTTLS LOGINDISABLED"));
    let tls = Settings {
        tls: true,
        ..remote
    };
    assert_eq!(tls.capabilities(), CAPABILITIES);
}

#[test]
fn login_asks_for_a_check_and_keeps_what_follows() {
    let mut m = Machine::new(settings());
    let input = b"a LOGIN ola@example.no {2+}\r\npw\r\nb NOOP\r\nc SEL";
    let (out, n, next) = feed(&mut m, input);
    assert_eq!(out, "");
    assert_eq!(verify(next), ("ola@example.no".to_owned(), "pw".to_owned()));
    // The pipelined commands are not taken: they go to the relay after the login.
    assert_eq!(&input[n..], b"b NOOP\r\nc SEL");
    let caps = [
        "IMAP4rev1".to_owned(),
        "AUTH=PLAIN".to_owned(),
        "MOVE".to_owned(),
    ];
    assert!(matches!(m.checked(Checked::LoggedIn(&caps)), Next::Relay));
    assert_eq!(
        String::from_utf8(m.output()).unwrap(),
        "a OK [CAPABILITY IMAP4rev1 MOVE] Logged in.\r\n"
    );
    assert_eq!(m.leftover(&input[n..]), b"b NOOP\r\nc SEL");
}

#[test]
fn failed_logins_are_counted_to_the_close() {
    let mut m = Machine::new(settings());
    let next = feed(&mut m, b"a LOGIN u wrong\r\n").2;
    verify(next);
    assert!(matches!(m.checked(Checked::Failed), Next::Read));
    assert_eq!(
        String::from_utf8(m.output()).unwrap(),
        "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );
    // An upstream failure is answered but not counted.
    verify(feed(&mut m, b"b LOGIN u pw\r\n").2);
    let text = "NO [UNAVAILABLE] The mail provider is not reachable.".to_owned();
    assert!(matches!(m.checked(Checked::Upstream(text)), Next::Read));
    assert_eq!(
        String::from_utf8(m.output()).unwrap(),
        "b NO [UNAVAILABLE] The mail provider is not reachable.\r\n"
    );
    verify(feed(&mut m, b"c LOGIN u wrong\r\n").2);
    let next = m.checked(Checked::Throttled("42 s".to_owned()));
    assert!(matches!(next, Next::Close("too many failed logins")));
    assert_eq!(
        String::from_utf8(m.output()).unwrap(),
        "c NO [UNAVAILABLE] Too many failed logins, try again in 42 s.\r\n* BYE Too many failed logins.\r\n"
    );
}

#[test]
fn authenticate_plain_with_and_without_initial_response() {
    let plain = encode_b64(b"\0ola@example.no\0pw");
    let mut m = Machine::new(settings());
    let next = feed(
        &mut m,
        format!("a AUTHENTICATE PLAIN {plain}\r\n").as_bytes(),
    )
    .2;
    assert_eq!(verify(next), ("ola@example.no".into(), "pw".into()));

    let mut m = Machine::new(settings());
    assert_eq!(say(&mut m, b"a AUTHENTICATE PLAIN\r\n"), "+ \r\n");
    let next = feed(&mut m, format!("{plain}\r\n").as_bytes()).2;
    assert_eq!(verify(next), ("ola@example.no".into(), "pw".into()));

    // A malformed message is answered in the exchange's words; the session goes on.
    let mut m = Machine::new(settings());
    say(&mut m, b"a AUTHENTICATE PLAIN\r\n");
    assert_eq!(
        say(&mut m, b"!!\r\n"),
        "a BAD invalid base64 in SASL data.\r\n"
    );
    assert_eq!(say(&mut m, b"b NOOP\r\n"), "b OK NOOP completed.\r\n");
}

#[test]
fn authenticate_login_prompts_and_cancel() {
    let mut m = Machine::new(settings());
    assert_eq!(
        say(&mut m, b"a AUTHENTICATE LOGIN\r\n"),
        "+ VXNlcm5hbWU6\r\n"
    );
    assert_eq!(
        say(&mut m, format!("{}\r\n", encode_b64(b"u")).as_bytes()),
        "+ UGFzc3dvcmQ6\r\n"
    );
    let next = feed(&mut m, format!("{}\r\n", encode_b64(b"pw")).as_bytes()).2;
    assert_eq!(verify(next), ("u".into(), "pw".into()));

    // With the user name as initial response, then cancelled at the password.
    let mut m = Machine::new(settings());
    let cmd = format!("a AUTHENTICATE LOGIN {}\r\n", encode_b64(b"u"));
    assert_eq!(say(&mut m, cmd.as_bytes()), "+ UGFzc3dvcmQ6\r\n");
    assert_eq!(say(&mut m, b"*\r\n"), "a BAD Authentication cancelled.\r\n");
    assert_eq!(
        say(&mut m, b"b AUTHENTICATE CRAM-MD5\r\n"),
        "b NO [CANNOT] Unsupported authentication mechanism CRAM-MD5; use PLAIN or LOGIN.\r\n"
    );
}

#[test]
fn no_passwords_in_clear_off_loopback() {
    let mut m = Machine::new(Settings {
        loopback: false,
        starttls: true,
        ..settings()
    });
    let refusal = "NO [PRIVACYREQUIRED] Use STARTTLS first: this listener does not take passwords in clear.\r\n";
    assert_eq!(say(&mut m, b"a LOGIN u pw\r\n"), format!("a {refusal}"));
    assert_eq!(
        say(&mut m, b"b AUTHENTICATE PLAIN\r\n"),
        format!("b {refusal}")
    );
    let (out, _, next) = feed(&mut m, b"c STARTTLS\r\nd NOOP\r\n");
    assert_eq!(out, "c OK Begin TLS negotiation now.\r\n");
    assert!(matches!(next, Next::StartTls));
}

#[test]
fn starttls_where_it_is_not_possible() {
    let mut m = Machine::new(Settings {
        tls: true,
        ..settings()
    });
    assert_eq!(
        say(&mut m, b"a STARTTLS\r\n"),
        "a BAD TLS is already active.\r\n"
    );
    let mut m = Machine::new(settings());
    assert_eq!(
        say(&mut m, b"a STARTTLS\r\n"),
        "a BAD STARTTLS is not offered on this listener.\r\n"
    );
}

#[test]
fn invalid_commands_are_counted_to_the_close() {
    let mut m = Machine::new(settings());
    let bad = "BAD Error in IMAP command: unknown command or invalid arguments.\r\n";
    assert_eq!(say(&mut m, b"a FOO\r\n"), format!("a {bad}"));
    assert_eq!(say(&mut m, b"(x\r\n"), format!("* {bad}"));
    let (out, _, next) = feed(&mut m, b"c BAR\r\n");
    assert_eq!(out, format!("c {bad}* BYE Too many invalid commands.\r\n"));
    assert!(matches!(next, Next::Close("too many invalid commands")));
}

#[test]
fn a_pop3_client_is_told_on_its_first_line() {
    let mut m = Machine::new(settings());
    let (out, _, next) = feed(&mut m, b"CAPA\r\n");
    assert!(out.starts_with("-ERR this is an IMAP server:"), "{out}");
    assert!(matches!(next, Next::Close("POP3 client")));
    // Later, the same line is just an invalid command.
    let mut m = Machine::new(settings());
    say(&mut m, b"a NOOP\r\n");
    assert!(say(&mut m, b"CAPA\r\n").starts_with("CAPA BAD "));
}

#[test]
fn literal_bounds() {
    let mut m = Machine::new(settings());
    // A synchronizing literal within bounds gets its `+`, even in pieces.
    assert_eq!(
        say(&mut m, b"a LOGIN {1}\r\n"),
        "+ Ready for literal data\r\n"
    );
    assert_eq!(say(&mut m, b"u {2}\r"), "");
    assert_eq!(say(&mut m, b"\n"), "+ Ready for literal data\r\n");
    let next = feed(&mut m, b"pw\r\n").2;
    assert_eq!(verify(next), ("u".into(), "pw".into()));

    // Too large and synchronizing: refused, the client does not send it.
    let mut m = Machine::new(settings());
    assert_eq!(
        say(
            &mut m,
            format!("b LOGIN {{{}}}\r\n", MAX_LITERAL + 1).as_bytes()
        ),
        format!("b BAD Literal too large (at most {MAX_LITERAL} bytes before login).\r\n")
    );
    assert_eq!(say(&mut m, b"c NOOP\r\n"), "c OK NOOP completed.\r\n");

    // Too large and already on its way: the session ends.
    let (out, _, next) = feed(&mut m, b"d LOGIN {9000+}\r\nxxxx");
    assert_eq!(out, "* BYE Literal too large.\r\n");
    assert!(matches!(next, Next::Close("literal too large")));

    // A line over the limit ends the session too.
    let mut m = Machine::new(settings());
    let long = vec![b'x'; MAX_LINE + 1];
    let (out, _, next) = feed(&mut m, &long);
    assert_eq!(out, "* BYE Command line too long.\r\n");
    assert!(matches!(next, Next::Close("line too long")));
}
