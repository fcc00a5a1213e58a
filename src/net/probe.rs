//! Second connections that tell what a port speaks when the first one failed: the plaintext
//! greeting of a port that was expected to speak TLS, and whether a silent port answers a TLS
//! handshake (an implicit-TLS port waiting for the client's hello).

use super::target::Target;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// The least time a diagnostic probe (a second connection after a failure) waits for its
/// answer: a short `connect_timeout` must not cost the diagnosis.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `addr` without TLS and returns the first line the server sends, if it sends
/// a printable one within `timeout` (a plaintext greeting where implicit TLS was configured).
pub async fn plaintext(addr: SocketAddr, timeout: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let read = async {
        let mut tcp = TcpStream::connect(addr).await.ok()?;
        let mut buf = Vec::with_capacity(512);
        while !buf.contains(&b'\n') && buf.len() < 512 {
            let n = (&mut tcp).take(512).read_buf(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
        }
        Some(buf)
    };
    let buf = tokio::time::timeout(timeout, read).await.ok()??;
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let text: String = String::from_utf8_lossy(line)
        .trim_end()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    // TLS alerts and other binary answers are not a greeting.
    (!text.is_empty() && text.is_ascii()).then_some(text)
}

/// Whether `addr` answers a TLS handshake with `config`: it completed, or failed for a reason
/// only a TLS server can cause (its certificate, an alert). Nothing is sent after it.
pub async fn tls(
    target: &Target,
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    timeout: Duration,
) -> bool {
    let handshake = async {
        let tcp = TcpStream::connect(addr).await.ok()?;
        let connector = tokio_rustls::TlsConnector::from(config);
        Some(
            match connector.connect(target.server_name.clone(), tcp).await {
                Ok(_) => true,
                Err(e) => matches!(
                    rustls_error(&e),
                    Some(r) if !matches!(r, rustls::Error::InvalidMessage(_))
                ),
            },
        )
    };
    matches!(
        tokio::time::timeout(timeout, handshake).await,
        Ok(Some(true))
    )
}

/// The rustls error inside an io::Error, if that is what it is.
pub(super) fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}
