//! Asking the provider for its folders, on a logged-in connection before the relay starts
//! (and before the Sent copy's APPEND): the command its capabilities allow, read to the
//! tagged reply, every `LIST`/`XLIST` line kept as an [`Entry`].
//!
//! Bounds: the whole answer at most [`MAX_ANSWER`] bytes and [`MAX_ENTRIES`] folders, one
//! deadline for the whole step, a line or a literal name at most 64 KiB
//! ([`crate::imap::exchange`]).

use super::{parse_list, Entry};
use crate::imap::exchange::{completion, Exchange, ExchangeError};
use crate::imap::upstream::{has, LoggedIn};
use std::time::Duration;

/// Why the folder list could not be had (the session goes on without the mapping).
pub type LearnError = ExchangeError;

/// Most bytes of one LIST answer.
pub const MAX_ANSWER: usize = 4 * 1024 * 1024;
/// Most folders kept from one LIST answer.
pub const MAX_ENTRIES: usize = 50_000;
/// The tag of mailgate's LIST: the client's tags come later on the same connection, and a
/// client is unlikely to pick this one before the answer is complete anyway.
const TAG: &str = "mgfolders";

/// The provider's folders, asked on a logged-in connection before the relay starts:
/// `LIST "" "*" RETURN (SPECIAL-USE)` when the server has SPECIAL-USE and LIST-EXTENDED,
/// else `XLIST "" "*"` when it has XLIST, else `LIST "" "*"`. Reads to the tagged reply; the
/// bytes after it stay in `up.leftover` for the relay.
pub async fn list(up: &mut LoggedIn, timeout: Duration) -> Result<Vec<Entry>, LearnError> {
    let mut ex = Exchange::new(up, timeout, MAX_ANSWER);
    let (command, name) = command(ex.capabilities());
    ex.send(format!("{TAG} {command}\r\n").as_bytes()).await?;
    let mut entries = Vec::new();
    loop {
        let response = ex.response().await?;
        if let Some((status, text)) = completion(&response, TAG) {
            if status == "OK" {
                return Ok(entries);
            }
            return Err(ExchangeError::Refused {
                command: name,
                text: format!("{status} {text}"),
            });
        }
        if response.starts_with(b"+") {
            return Err(ExchangeError::Protocol {
                reason: format!("a continuation request in the answer to {name}"),
            });
        }
        if let Some(entry) = parse_list(&response) {
            if entries.len() == MAX_ENTRIES {
                return Err(ExchangeError::TooLarge {
                    what: "the folder list",
                    max: MAX_ENTRIES,
                });
            }
            entries.push(entry);
        }
        // Any other untagged response (EXISTS, a status, …) is not ours to act on.
    }
}

/// The command (without tag) for these capabilities, and its name for errors.
fn command(capabilities: &[String]) -> (&'static str, &'static str) {
    if has(capabilities, "SPECIAL-USE") && has(capabilities, "LIST-EXTENDED") {
        (r#"LIST "" "*" RETURN (SPECIAL-USE)"#, "LIST")
    } else if has(capabilities, "XLIST") {
        (r#"XLIST "" "*""#, "XLIST")
    } else {
        (r#"LIST "" "*""#, "LIST")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::script::scripted;

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn command_by_capability() {
        let ext = caps(&["IMAP4rev1", "special-use", "LIST-EXTENDED", "XLIST"]);
        assert_eq!(command(&ext).0, r#"LIST "" "*" RETURN (SPECIAL-USE)"#);
        assert_eq!(
            command(&caps(&["SPECIAL-USE", "XLIST"])).0,
            r#"XLIST "" "*""#
        );
        assert_eq!(command(&caps(&["SPECIAL-USE"])).0, r#"LIST "" "*""#);
    }

    const SECS: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn reads_entries_literals_and_keeps_what_follows() {
        let (mut up, _) = scripted(
            &["SPECIAL-USE", "LIST-EXTENDED"],
            b"* 3 EXISTS\r\n",
            b"* LIST (\\HasNoChildren) \"/\" INBOX\r\n* LIST (\\Sent) \"/\" {9}\r\nSent Mail\r\n* OK [ALERT] hi\r\n{TAG} OK done\r\n* 4 EXISTS\r\n",
        )
        .await;
        let entries = list(&mut up, SECS).await.unwrap();
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["INBOX", "Sent Mail"]);
        assert_eq!(entries[1].attributes, ["\\Sent"]);
        // What came after the tagged reply (all of it, or the part read so far) is kept.
        assert!(
            b"* 4 EXISTS\r\n".starts_with(&up.leftover),
            "{:?}",
            up.leftover
        );
    }

    #[tokio::test]
    async fn refusals_and_bounds_are_typed() {
        let (mut up, _) = scripted(&["XLIST"], b"", b"{TAG} NO [UNAVAILABLE] later\r\n").await;
        let e = list(&mut up, SECS).await.unwrap_err();
        assert!(
            matches!(&e, LearnError::Refused { command: "XLIST", text } if text == "NO [UNAVAILABLE] later"),
            "{e:?}"
        );

        let (mut up, _) = scripted(&[], b"", b"* LIST () \"/\" {70000}\r\n").await;
        let e = list(&mut up, SECS).await.unwrap_err();
        assert!(
            matches!(
                e,
                LearnError::TooLarge {
                    what: "a literal",
                    ..
                }
            ),
            "{e:?}"
        );

        let (mut up, _) = scripted(&[], b"", b"* LIST () \"/\" INBOX\r\n").await;
        let e = list(&mut up, Duration::from_millis(200)).await.unwrap_err();
        assert!(matches!(e, LearnError::Timeout { .. }), "{e:?}");

        let (mut up, _) = scripted(&[], b"", b"+ go on\r\n").await;
        let e = list(&mut up, SECS).await.unwrap_err();
        assert!(matches!(e, LearnError::Protocol { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn the_answer_is_bounded_in_bytes() {
        // Whole lines without end: more than 4 MiB of untagged responses.
        let line = format!("* OK {}\r\n", "x".repeat(60 * 1024));
        let big: &'static [u8] = line.repeat(70).into_bytes().leak();
        let (mut up, _) = scripted(&[], b"", big).await;
        let e = list(&mut up, SECS).await.unwrap_err();
        assert!(
            matches!(
                e,
                LearnError::TooLarge {
                    what: "the answer",
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
