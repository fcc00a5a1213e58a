//! Test support: a scripted IMAP server on a loopback socket, standing in for the provider
//! in the unit tests of mailgate's own commands after login (`learn`, `sent`). Test code only:
//! a failed bind or accept fails the test that asked for it.

use crate::imap::upstream::LoggedIn;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(crate) async fn scripted(
    caps: &[&str],
    leftover: &[u8],
    answer: &'static [u8],
) -> (LoggedIn, tokio::task::JoinHandle<Vec<u8>>) {
    // A logged-in connection to a server that reads one command line, writes `answer` (each
    // `{TAG}` replaced by that command's tag), then records all it is sent until the client
    // closes; the handle gives everything it received.
    use tokio::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        while !got.ends_with(b"\n") {
            let mut b = [0u8; 1];
            if s.read(&mut b).await.unwrap_or(0) == 0 {
                return got;
            }
            got.push(b[0]);
        }
        let tag = String::from_utf8_lossy(got.split(|&b| b == b' ').next().unwrap_or(b""));
        let answer = String::from_utf8_lossy(answer).replace("{TAG}", &tag);
        let _ = s.write_all(answer.as_bytes()).await;
        let _ = s.read_to_end(&mut got).await;
        got
    });
    let up = LoggedIn {
        stream: crate::upstream::UpstreamStream::Plain(TcpStream::connect(addr).await.unwrap()),
        capabilities: caps.iter().map(|c| (*c).to_owned()).collect(),
        leftover: leftover.to_vec(),
    };
    (up, server)
}
