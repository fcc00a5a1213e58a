//! A listener behind a proxy (`[server.proxy_protocol]`): only the trusted networks may
//! connect, and each connection must start with a PROXY header, read within a time limit and
//! exactly to its end, so the session (or the TLS handshake) starts on the next byte.

use crate::net::proxy_header::{self, Header, HeaderError, Step};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tracing::warn;

/// Why a connection to a listener behind a proxy was closed before its session.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    /// It came from outside `trusted`: only the proxy may say who the client is.
    #[error("the connection does not come from a trusted proxy network")]
    Untrusted,
    /// The header did not arrive in time.
    #[error("no complete PROXY header within the time limit")]
    Timeout,
    /// The connection ended (or failed) before the header was complete.
    #[error("the connection closed before the PROXY header was complete")]
    Closed,
    /// The bytes are not a header mailgate accepts.
    #[error(transparent)]
    Header(#[from] HeaderError),
}

impl Rejected {
    /// The `reason` label of `mailgate_proxy_header_rejected_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Rejected::Untrusted => "untrusted",
            Rejected::Timeout => "timeout",
            Rejected::Closed => "closed",
            Rejected::Header(e) => e.label(),
        }
    }
}

/// Reads the PROXY header at the start of `stream`, taking at most `within`. Never reads a
/// byte past the header (see [`proxy_header::parse`]).
pub async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    within: Duration,
) -> Result<Header, Rejected> {
    tokio::time::timeout(within, read_exactly(stream))
        .await
        .unwrap_or(Err(Rejected::Timeout))
}

async fn read_exactly<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Header, Rejected> {
    let mut buf = [0u8; proxy_header::V2_MAX];
    let mut have = 0;
    loop {
        match proxy_header::parse(&buf[..have])? {
            Step::Done(header) => return Ok(header),
            Step::Need(n) => {
                // `parse` never asks past V2_MAX; the bound holds even if it did.
                let end = (have + n).min(buf.len());
                if end == have {
                    return Err(HeaderError::TooLong.into());
                }
                match stream.read(&mut buf[have..end]).await {
                    Ok(0) | Err(_) => return Err(Rejected::Closed),
                    Ok(got) => have += got,
                }
            }
        }
    }
}

/// Logs and counts a refused connection (`peer` is the socket's: there is no other).
pub fn rejected(listener: &'static str, peer: SocketAddr, why: &Rejected) {
    warn!(
        listener,
        %peer,
        reason = why.label(),
        "connection closed before its session: {why}"
    );
    crate::metrics::proxy_header_rejected(why.label());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::proxy_header::Addresses;
    use tokio::io::AsyncWriteExt;

    /// The header is read to its last byte; what follows stays in the stream.
    #[tokio::test]
    async fn reads_the_header_and_leaves_the_session_bytes() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let header = b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 143\r\n";
        client.write_all(header).await.unwrap();
        client.write_all(b"a1 NOOP\r\n").await.unwrap();
        let h = read_header(&mut server, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(h.len, header.len());
        assert!(matches!(h.addresses, Addresses::Tcp { .. }));
        let mut rest = [0u8; 9];
        server.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"a1 NOOP\r\n");
    }

    #[tokio::test]
    async fn slow_short_and_bad_headers_are_refused() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        client.write_all(b"PROXY TCP4 192.0").await.unwrap();
        let r = read_header(&mut server, Duration::from_millis(100)).await;
        assert!(matches!(r, Err(Rejected::Timeout)), "{r:?}");
        assert_eq!(Rejected::Timeout.label(), "timeout");

        let (mut client, mut server) = tokio::io::duplex(4096);
        client.write_all(b"PROXY TCP4 192.0").await.unwrap();
        drop(client);
        let r = read_header(&mut server, Duration::from_secs(5)).await;
        assert!(matches!(r, Err(Rejected::Closed)), "{r:?}");

        let (mut client, mut server) = tokio::io::duplex(4096);
        client.write_all(b"* OK hello\r\n").await.unwrap();
        let r = read_header(&mut server, Duration::from_secs(5)).await;
        let why = r.unwrap_err();
        assert_eq!(why.label(), "not_proxy");
        assert_eq!(Rejected::Untrusted.label(), "untrusted");
    }
}
