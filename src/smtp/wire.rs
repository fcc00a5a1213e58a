//! One exchange with the upstream SMTP server within its time limit, and mail-send's errors
//! in the gateway's terms (the server's words and the step kept, never the credential).

use crate::net::ConnectError;
use crate::upstream::{UpstreamError, UpstreamStream};
use smtp_proto::Response;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// A reply from the upstream server, kept as it said it.
pub type Reply = Response<String>;

/// Translates a mail-send error at `step` into our upstream error (no credential is in it).
pub(super) fn from_mail_send(
    e: mail_send::Error,
    address: &str,
    timeout: Duration,
    step: &'static str,
) -> UpstreamError {
    let address = address.to_owned();
    match e {
        mail_send::Error::Timeout => UpstreamError::Timeout {
            address,
            secs: timeout.as_secs(),
            step,
        },
        mail_send::Error::Io(_) | mail_send::Error::UnparseableReply => {
            // mail-send reports a closed connection as an unparseable reply.
            UpstreamError::Closed { address, step }
        }
        mail_send::Error::Tls(e) => UpstreamError::Net(ConnectError::Tls {
            address,
            reason: e.to_string(),
            failure: crate::upstream::TlsFailure::of(&e),
        }),
        mail_send::Error::MissingStartTls => UpstreamError::NoStarttls {
            address,
            reason: "the server does not offer STARTTLS; refusing to continue in plaintext".into(),
        },
        mail_send::Error::UnexpectedReply(r) => UpstreamError::Protocol {
            address,
            reason: format!("unexpected reply during {step}: {}", reply_text(&r)),
        },
        other => UpstreamError::Protocol {
            address,
            reason: format!("{step}: {other}"),
        },
    }
}

/// Writes `bytes` to the server and flushes within `timeout`: a failed write is the connection
/// closing at `step`, a slow one a time-out there.
pub(super) async fn write_timed(
    stream: &mut UpstreamStream,
    bytes: &[u8],
    address: &str,
    timeout: Duration,
    step: &'static str,
) -> Result<(), UpstreamError> {
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    match tokio::time::timeout(timeout, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(UpstreamError::Closed {
            address: address.to_owned(),
            step,
        }),
        Err(_) => Err(from_mail_send(
            mail_send::Error::Timeout,
            address,
            timeout,
            step,
        )),
    }
}

/// Runs one exchange with the server within `timeout`, errors translated for `step`.
pub(super) async fn timed<T>(
    exchange: impl std::future::Future<Output = mail_send::Result<T>>,
    address: &str,
    timeout: Duration,
    step: &'static str,
) -> Result<T, UpstreamError> {
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(from_mail_send(
            mail_send::Error::Timeout,
            address,
            timeout,
            step,
        )),
        Ok(r) => r.map_err(|e| from_mail_send(e, address, timeout, step)),
    }
}

/// `code esc text` of a reply on one line, for logs and errors.
pub fn reply_text(r: &Reply) -> String {
    let [a, b, c] = r.esc;
    let text: String = r
        .message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(512)
        .collect();
    if a == 0 {
        format!("{} {}", r.code, text)
    } else {
        format!("{} {a}.{b}.{c} {}", r.code, text)
    }
}
