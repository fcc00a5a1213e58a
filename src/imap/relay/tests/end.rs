//! [`Verdict::End`]: the rule's answer is the last thing the client gets, nothing after the
//! ending command goes upstream, and the upstream connection comes back open. The gateway's
//! last words never wait on an upstream stalled in the middle of a response. Shutdown and the
//! idle time-out reach a relay that has been polled many times since it began.

use super::*;
use crate::imap::rewrite::Ending;
use tokio::io::AsyncWriteExt;

/// How a spawned relay ended (within [`PATIENCE`]).
async fn ended(
    relay: tokio::task::JoinHandle<(Stats, Option<UpstreamStream>, Ending)>,
) -> (Stats, Option<UpstreamStream>, Ending) {
    tokio::time::timeout(PATIENCE, relay)
        .await
        .unwrap()
        .unwrap()
}

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
    let (mut client, mut server, relay, _trigger) = sockets(
        with_gateway(vec![Box::new(EndOnLogout)], 0),
        NO_STALL,
        NO_IDLE,
    )
    .await;
    let relay = tokio::spawn(relay);
    round_trip(&mut client, &mut server).await;
    // An unsolicited response on its way, then LOGOUT with a command pipelined after it.
    send(&mut server, b"* 3 EXISTS\r\n").await;
    expect(&mut client, b"* 3 EXISTS\r\n").await;
    send(&mut client, b"x LOGOUT\r\ny NOOP\r\n").await;
    expect(&mut client, b"* BYE bye\r\nx OK done\r\n").await;
    assert_eq!(rest(&mut client).await, b"", "nothing after the answer");
    let (stats, upstream, _) = ended(relay).await;
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
    let (mut client, mut server, relay, _trigger) = sockets(
        with_gateway(vec![Box::new(EndOnLogout)], 0),
        NO_STALL,
        NO_IDLE,
    )
    .await;
    let relay = tokio::spawn(relay);
    round_trip(&mut client, &mut server).await;
    client.shutdown().await.unwrap();
    let (stats, upstream, _) = ended(relay).await;
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
            sockets(rules, Duration::from_millis(100), NO_IDLE).await;
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
        let (stats, upstream, _) = ended(relay).await;
        assert_eq!(stats.end, End::UpstreamStalled, "shutdown: {shutdown}");
        assert!(upstream.is_none());
    }
}

/// Shutdown between two responses: the client gets the shutdown BYE and the relay ends, after
/// round trips that polled it many times (the relay polls the signal again only once it may
/// have fired).
#[tokio::test]
async fn shutdown_says_bye_between_responses() {
    let (mut client, mut server, relay, trigger) =
        sockets(with_gateway(vec![], 0), NO_STALL, NO_IDLE).await;
    let relay = tokio::spawn(relay);
    for _ in 0..3 {
        round_trip(&mut client, &mut server).await;
    }
    trigger.fire();
    assert_eq!(rest(&mut client).await, b"* BYE Server shutting down.\r\n");
    let (stats, upstream, _) = ended(relay).await;
    assert_eq!(stats.end, End::Shutdown);
    assert!(upstream.is_none());
}

/// A client that keeps sending commands outlives the idle time-out's first deadline (the timer
/// moves on with the client's last command); once silent it gets BYE and the relay ends.
#[tokio::test]
async fn a_silent_client_gets_the_idle_bye() {
    let idle = Duration::from_secs(2);
    let (mut client, mut server, relay, _trigger) =
        sockets(with_gateway(vec![], 0), NO_STALL, idle).await;
    let relay = tokio::spawn(relay);
    for _ in 0..6 {
        round_trip(&mut client, &mut server).await;
        tokio::time::sleep(idle / 4).await;
    }
    round_trip(&mut client, &mut server).await;
    assert_eq!(
        rest(&mut client).await,
        b"* BYE Disconnected for inactivity.\r\n"
    );
    let (stats, _, _) = ended(relay).await;
    assert_eq!(stats.end, End::IdleTimeout);
}
