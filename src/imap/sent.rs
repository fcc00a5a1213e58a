//! The Sent copy mailgate files itself (`[account.folders] sent_copy = "gateway"`), after the
//! provider accepted a message over SMTP: log in to the account's IMAP server, find the Sent
//! folder (the learned folder list, cached per account), `APPEND` the message there flagged
//! `\Seen`, and log out. The SMTP side calls this in a task of its own, so the client's `250`
//! never waits for it, and a failure here never turns the send into one.

use super::exchange::{completion, quoted, Exchange, ExchangeError};
use super::folders::{cache, learn, Folders, Role};
use super::upstream::{self, has, LoggedIn};
use crate::config::{Account, ServerConfig};
use crate::upstream::UpstreamError;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Most bytes of the server's answers around one APPEND (untagged updates included).
const MAX_ANSWER: usize = 256 * 1024;
/// The message goes out in pieces of this size, each with the upstream time-out (a large
/// message on a slow link is slow, a stalled server is stopped).
const PIECE: usize = 64 * 1024;
/// LITERAL- (RFC 7888) allows non-synchronizing literals up to this size.
const LITERAL_MINUS_MAX: usize = 4096;
const TAG: &str = "mgsent";
const LOGOUT_TAG: &str = "mgbye";

/// Why the copy was not filed.
#[derive(Debug, thiserror::Error)]
pub enum SentError {
    /// Logging in to the IMAP server failed.
    #[error("IMAP login failed: {0}")]
    Login(#[from] UpstreamError),
    /// Listing the folders or the APPEND failed.
    #[error("{0}")]
    Exchange(#[from] ExchangeError),
    /// No folder plays the Sent role (neither marked `\Sent` nor named like one).
    #[error("the account has no Sent folder")]
    NoSentFolder,
    /// The Sent folder's name cannot be written as a quoted string.
    #[error("the Sent folder's name cannot be sent as a quoted string")]
    Unquotable,
}

impl SentError {
    /// A short fixed word for logs (no secrets, no server words).
    pub fn kind(&self) -> &'static str {
        match self {
            SentError::Login(e) => e.kind().label(),
            SentError::Exchange(e) => e.kind(),
            SentError::NoSentFolder => "no_sent_folder",
            SentError::Unquotable => "unquotable_name",
        }
    }
}

/// Files `message` (the message as the recipient gets it: CRLF line ends, no dot-stuffing) in
/// `account`'s Sent folder, flagged `\Seen`. Returns the folder's name.
pub async fn file_copy(
    account: &Account,
    server: &ServerConfig,
    message: &[u8],
) -> Result<String, SentError> {
    let mut up = upstream::login(account, server).await?;
    let timeout = server.upstream_timeout;
    let result = async {
        let sent = sent_folder(&mut up, account, timeout).await?;
        append(&mut up, &sent.wire, message, timeout).await?;
        Ok(sent.name)
    }
    .await;
    logout(&mut up, timeout).await;
    result
}

/// The account's Sent folder, from the cached folder list or a fresh LIST.
async fn sent_folder(
    up: &mut LoggedIn,
    account: &Account,
    timeout: Duration,
) -> Result<super::folders::Entry, SentError> {
    let entries = match cache::get(&account.email) {
        Some(entries) => entries,
        None => {
            let entries = Arc::new(learn::list(up, timeout).await?);
            cache::put(&account.email, entries.clone());
            entries
        }
    };
    Folders::learn(&entries)
        .get(Role::Sent)
        .cloned()
        .ok_or(SentError::NoSentFolder)
}

/// `APPEND "mailbox" (\Seen) {n}` with the message as the literal, to the tagged OK.
async fn append(
    up: &mut LoggedIn,
    mailbox: &[u8],
    message: &[u8],
    timeout: Duration,
) -> Result<(), SentError> {
    let name = quoted(mailbox).ok_or(SentError::Unquotable)?;
    let mut ex = Exchange::new(up, timeout, MAX_ANSWER);
    let caps = ex.capabilities();
    let nonsync =
        has(caps, "LITERAL+") || (has(caps, "LITERAL-") && message.len() <= LITERAL_MINUS_MAX);
    let mut line = format!("{TAG} APPEND ").into_bytes();
    line.extend_from_slice(&name);
    let plus = if nonsync { "+" } else { "" };
    line.extend_from_slice(format!(" (\\Seen) {{{}{plus}}}\r\n", message.len()).as_bytes());
    ex.send(&line).await?;
    if !nonsync {
        // Wait for the go-ahead; a tagged answer instead is a refusal (too large, no folder).
        loop {
            let response = ex.response().await?;
            if response.starts_with(b"+") {
                break;
            }
            if let Some(answer) = answer(&response) {
                answer?;
                return Err(ExchangeError::Protocol {
                    reason: "APPEND completed before its message was sent".into(),
                }
                .into());
            }
        }
    }
    for piece in message.chunks(PIECE) {
        ex.begin();
        ex.send(piece).await?;
    }
    ex.begin();
    ex.send(b"\r\n").await?;
    loop {
        let response = ex.response().await?;
        if let Some(answer) = answer(&response) {
            return answer;
        }
    }
}

/// `Some` when `response` is the APPEND's tagged answer: `Ok` for OK, else the refusal.
fn answer(response: &[u8]) -> Option<Result<(), SentError>> {
    let (status, text) = completion(response, TAG)?;
    if status == "OK" {
        return Some(Ok(()));
    }
    Some(Err(ExchangeError::Refused {
        command: "APPEND",
        text: format!("{status} {text}"),
    }
    .into()))
}

/// LOGOUT, read to its tagged answer, then the connection closed; failures do not matter
/// any more (the copy is filed or not by now).
async fn logout(up: &mut LoggedIn, timeout: Duration) {
    {
        let mut ex = Exchange::new(up, timeout, MAX_ANSWER);
        if ex
            .send(format!("{LOGOUT_TAG} LOGOUT\r\n").as_bytes())
            .await
            .is_ok()
        {
            while let Ok(response) = ex.response().await {
                if completion(&response, LOGOUT_TAG).is_some() {
                    break;
                }
            }
        }
    }
    let _ = tokio::time::timeout(timeout, up.stream.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::script::scripted;

    const SECS: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn append_waits_for_the_go_ahead_without_literal_plus() {
        let (mut up, server) = scripted(
            &["IMAP4rev1"],
            b"",
            b"* 1 EXISTS\r\n+ Ready for literal data\r\n{TAG} OK [APPENDUID 1 1] Append completed.\r\n",
        )
        .await;
        append(&mut up, b"Sent \"Mail\"", b"Subject: x\r\n\r\nhi\r\n", SECS)
            .await
            .unwrap();
        drop(up);
        let got = server.await.unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            "mgsent APPEND \"Sent \\\"Mail\\\"\" (\\Seen) {18}\r\nSubject: x\r\n\r\nhi\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn append_with_literal_plus_and_refusals() {
        let (mut up, server) = scripted(&["LITERAL+"], b"", b"{TAG} OK done\r\n").await;
        append(&mut up, b"Sent", b"m\r\n", SECS).await.unwrap();
        drop(up);
        let got = server.await.unwrap();
        assert_eq!(got, b"mgsent APPEND \"Sent\" (\\Seen) {3+}\r\nm\r\n\r\n");

        // Refused before the go-ahead (no literal sent), and after the message.
        for (caps, answer) in [
            (
                &["IMAP4rev1"][..],
                &b"{TAG} NO [TRYCREATE] no such mailbox\r\n"[..],
            ),
            (
                &["LITERAL+"][..],
                &b"{TAG} NO [OVERQUOTA] quota exceeded\r\n"[..],
            ),
        ] {
            let (mut up, _) = scripted(caps, b"", answer).await;
            let e = append(&mut up, b"Sent", b"m\r\n", SECS).await.unwrap_err();
            assert!(
                matches!(&e, SentError::Exchange(ExchangeError::Refused { command: "APPEND", text }) if text.starts_with("NO [")),
                "{e:?}"
            );
            assert_eq!(e.kind(), "refused");
        }
        let (mut up, _) = scripted(&[], b"", b"").await;
        let e = append(&mut up, b"Sent\r\nX", b"m", SECS).await.unwrap_err();
        assert!(matches!(e, SentError::Unquotable), "{e:?}");
    }
}
