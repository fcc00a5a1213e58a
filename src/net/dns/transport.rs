//! The two ways a query travels: one UDP datagram each way, or over TCP after a truncated
//! answer; each exchange bounded by [`QUERY_TIMEOUT`] and [`MAX_DATAGRAM`].

use super::{Failure, MAX_DATAGRAM, QUERY_TIMEOUT};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// One datagram out, one datagram back, within [`QUERY_TIMEOUT`].
pub(super) async fn ask(server: SocketAddr, packet: &[u8]) -> Result<Vec<u8>, Failure> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    within(async {
        let sock = UdpSocket::bind(local).await?;
        // connect() makes the kernel drop datagrams from any other address.
        sock.connect(server).await?;
        sock.send(packet).await?;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let n = sock.recv(&mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    })
    .await
}

/// The same question over TCP, each message after its two-byte length (RFC 1035 4.2.2), so
/// the answer is at most 64 KiB; within [`QUERY_TIMEOUT`], connecting included.
pub(super) async fn ask_tcp(server: SocketAddr, packet: &[u8]) -> Result<Vec<u8>, Failure> {
    within(async {
        let mut stream = TcpStream::connect(server).await?;
        let len = u16::try_from(packet.len()).map_err(std::io::Error::other)?;
        let mut out = Vec::with_capacity(packet.len() + 2);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(packet);
        stream.write_all(&out).await?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut buf).await?;
        Ok(buf)
    })
    .await
}

/// One exchange, given up after [`QUERY_TIMEOUT`].
async fn within(
    exchange: impl std::future::Future<Output = std::io::Result<Vec<u8>>>,
) -> Result<Vec<u8>, Failure> {
    match tokio::time::timeout(QUERY_TIMEOUT, exchange).await {
        Err(_) => Err(Failure::Silent(QUERY_TIMEOUT.as_secs())),
        Ok(Err(e)) => Err(Failure::Io(e)),
        Ok(Ok(b)) => Ok(b),
    }
}
