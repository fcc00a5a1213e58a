//! [`Verdict::End`]: the rule's answer is the last thing the client gets, nothing after the
//! ending command goes upstream, and the upstream connection comes back open.

use super::*;
use tokio::io::AsyncWriteExt;

/// Ends the relay on `x LOGOUT`.
struct EndOnLogout;
impl Rewrite for EndOnLogout {
    fn command(&mut self, line: Line<'_>) -> Verdict {
        match line.bytes {
            b"x LOGOUT\r\n" => Verdict::End(b"* BYE bye\r\nx OK done\r\n".to_vec()),
            _ => Verdict::Pass,
        }
    }
}

#[tokio::test]
async fn end_hands_the_upstream_back() {
    let (mut client, mut server, relay, _trigger) =
        sockets(with_gateway(vec![Box::new(EndOnLogout)], 0)).await;
    let relay = tokio::spawn(relay);
    round_trip(&mut client, &mut server).await;
    // An unsolicited response on its way, then LOGOUT with a command pipelined after it.
    send(&mut server, b"* 3 EXISTS\r\n").await;
    expect(&mut client, b"* 3 EXISTS\r\n").await;
    send(&mut client, b"x LOGOUT\r\ny NOOP\r\n").await;
    expect(&mut client, b"* BYE bye\r\nx OK done\r\n").await;
    assert_eq!(rest(&mut client).await, b"", "nothing after the answer");
    let (stats, upstream, _) = tokio::time::timeout(PATIENCE, relay)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stats.end, End::HandedBack);
    let Some(UpstreamStream::Plain(mut up)) = upstream else {
        panic!("the upstream connection was not handed back");
    };
    // The server got nothing of the LOGOUT or what followed it; the connection still works.
    up.write_all(b"mg1 NOOP\r\n").await.unwrap();
    expect(&mut server, b"mg1 NOOP\r\n").await;
}

#[tokio::test]
async fn other_ends_hand_nothing_back() {
    let (mut client, mut server, relay, _trigger) =
        sockets(with_gateway(vec![Box::new(EndOnLogout)], 0)).await;
    let relay = tokio::spawn(relay);
    round_trip(&mut client, &mut server).await;
    client.shutdown().await.unwrap();
    let (stats, upstream, _) = tokio::time::timeout(PATIENCE, relay)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stats.end, End::ClientClosed);
    assert!(upstream.is_none());
}
