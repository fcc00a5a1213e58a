//! Whole conversations through the command loop, on an in-memory stream: the client's lines
//! in, the replies out, no socket and no provider (the account has no `[account.smtp]`, so
//! the envelope stops where mailgate itself decides).

use super::session::converse;
use crate::config::Config;
use crate::secret::Secret;
use crate::session::{shutdown_channel, Session};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Runs one conversation with `input` as everything the client sends (then end of input);
/// returns the reply lines and why the session ended.
async fn converse_with(input: &str) -> (Vec<String>, &'static str) {
    let hash = crate::account::hash_password(&Secret::from("pw")).unwrap();
    let text = format!(
        "[server]\nmax_bad_commands = 20\nmax_message_size = 1000\n[[account]]\nemail = \"ola@example.no\"\nlocal_password_hash = \"{hash}\"\n[account.imap]\nserver = \"h:1\"\npassword = \"x\"\n"
    );
    let config = Arc::new(Config::parse(&text, std::path::Path::new("t.toml")).unwrap());
    let (_trigger, shutdown) = shutdown_channel();
    let mut session = Session {
        id: 1,
        peer: "127.0.0.1:40000".parse().unwrap(),
        loopback: true,
        tls: false,
        config,
        shutdown,
        ticket: None,
        accepted: Instant::now(),
        local_port: 587,
    };
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    client.write_all(input.as_bytes()).await.unwrap();
    client.shutdown().await.unwrap();
    let mut accepted = 0;
    let (why, starttls) = converse(server, &mut session, true, &mut accepted).await;
    assert!(starttls.is_none());
    let mut out = String::new();
    client.read_to_string(&mut out).await.unwrap();
    (out.lines().map(str::to_owned).collect(), why)
}

#[tokio::test]
async fn commands_before_login_are_refused_in_order() {
    let input = "MAIL FROM:<ola@example.no>\r\nAUTH PLAIN\r\nEHLO client.example\r\n\
                 RCPT TO:<kari@example.no>\r\nDATA\r\nBDAT 3\r\nabcRSET\r\n\
                 STARTTLS\r\nAUTH LOGIN\r\n*\r\nAUTH CRAM-MD5\r\nQUIT\r\n";
    let (lines, why) = converse_with(input).await;
    let expected = [
        "220 mailgate ESMTP ready",
        "530 5.7.0 Authentication required",
        "503 5.5.1 Send EHLO first",
        "250-mailgate Hello client.example",
        "250-PIPELINING",
        "250-SIZE 1000",
        "250-8BITMIME",
        "250-SMTPUTF8",
        "250-DSN",
        "250-ENHANCEDSTATUSCODES",
        "250-CHUNKING",
        "250-AUTH PLAIN LOGIN",
        "250 HELP",
        "530 5.7.0 Authentication required",
        "530 5.7.0 Authentication required",
        // BDAT's chunk is read and dropped: RSET after it is a command again.
        "530 5.7.0 Authentication required",
        "250 2.0.0 Ok",
        "502 5.5.1 STARTTLS is not offered on this listener",
        "334 VXNlcm5hbWU6",
        "501 5.7.0 Authentication cancelled",
        "504 5.5.4 Unrecognized authentication type; use PLAIN or LOGIN",
        "221 2.0.0 Bye",
    ];
    assert_eq!(lines, expected);
    assert_eq!(why, "quit");
}

#[tokio::test]
async fn after_login_the_envelope_comes_first() {
    let plain = crate::sasl::encode_b64(b"\0ola@example.no\0pw");
    let input = format!(
        "EHLO c\r\nAUTH PLAIN {plain}\r\nAUTH LOGIN\r\nRCPT TO:<kari@example.no>\r\nDATA\r\n\
         BDAT 2 LAST\r\nhiMAIL FROM:<kari@example.no>\r\nMAIL FROM:<ola@example.no>\r\nRSET\r\n"
    );
    let (lines, why) = converse_with(&input).await;
    let from = lines.iter().position(|l| l == "250 HELP").unwrap() + 1;
    let expected = [
        "235 2.7.0 Authentication successful",
        "503 5.5.1 Already authenticated",
        "503 5.5.1 Need MAIL command first",
        "503 5.5.1 Need MAIL command first",
        "503 5.5.1 Need MAIL command first",
        "553 5.7.1 Sender address rejected: this account may send only as <ola@example.no>",
        "550 5.3.5 No outgoing server is configured for this account in mailgate ([account.smtp] is missing)",
        "250 2.0.0 Ok",
    ];
    assert_eq!(lines[from..], expected);
    assert_eq!(why, "client closed");
}
