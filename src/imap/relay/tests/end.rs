//! [`Verdict::End`]: the rule's answer is the last thing the client gets, nothing after the
//! ending command goes upstream, and the upstream connection comes back open. The gateway's
//! last words never wait on an upstream stalled in the middle of a response.

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
        sockets(with_gateway(vec![Box::new(EndOnLogout)], 0), NO_STALL).await;
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
        sockets(with_gateway(vec![Box::new(EndOnLogout)], 0), NO_STALL).await;
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

/// A LOGOUT's answer, or the shutdown BYE, waits for the end of the server's response; a
/// server that stops in the middle of one (and of which the client has seen nothing) ends the
/// session with the stall BYE after the upstream time-out, without handing anything back.
#[tokio::test]
async fn last_words_do_not_wait_on_a_stalled_upstream() {
    const STALLED: &[u8] = b"* BYE The mail provider's server stopped answering.\r\n";
    for shutdown in [false, true] {
        let rules = with_gateway(vec![Box::new(EndOnLogout)], 0);
        let (mut client, mut server, relay, trigger) =
            sockets(rules, Duration::from_millis(100)).await;
        let relay = tokio::spawn(relay);
        round_trip(&mut client, &mut server).await;
        // One write: once the client has the first line, the relay holds the second's start.
        send(&mut server, b"* 2 EXISTS\r\n* 1 FETCH (FLAGS").await;
        expect(&mut client, b"* 2 EXISTS\r\n").await;
        let want: Vec<u8> = match shutdown {
            true => {
                trigger.fire();
                STALLED.to_vec()
            }
            false => {
                send(&mut client, b"x LOGOUT\r\n").await;
                [&b"* BYE bye\r\nx OK done\r\n"[..], STALLED].concat()
            }
        };
        assert_eq!(rest(&mut client).await, want, "shutdown: {shutdown}");
        let (stats, upstream, _) = tokio::time::timeout(PATIENCE, relay)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stats.end, End::UpstreamStalled, "shutdown: {shutdown}");
        assert!(upstream.is_none());
    }
}
