//! [`Verdict::Peek`](crate::imap::rewrite::Verdict::Peek): forwarded (with and without
//! LITERAL+, refused by the server) and swallowed (synchronizing, non-synchronizing,
//! MULTIAPPEND).

use super::*;

const DUPLICATE: &[u8] = b"a OK [APPENDUID 1 9] APPEND completed (duplicate)\r\n";

/// `line`, `message` and the CRLF that ends the command.
fn command(line: &str, message: &[u8]) -> Vec<u8> {
    [line.as_bytes(), message, b"\r\n"].concat()
}

/// The rule saw `line` and the head of `message`.
fn assert_seen(seen: &Seen, line: &[u8], message: &[u8]) {
    let seen = seen.lock().unwrap();
    let [(l, head, length)] = &seen[..] else {
        panic!("peeked {} times", seen.len());
    };
    assert_eq!(String::from_utf8_lossy(l), String::from_utf8_lossy(line));
    assert!(head[..] == message[..message.len().min(PEEK_MAX)]);
    assert_eq!(*length, message.len() as u64);
}

use crate::imap::rewrite::PEEK_MAX;

/// The server takes LITERAL+: after the peek the line goes on non-synchronizing, then the
/// head and the rest (long enough to be spliced).
#[tokio::test]
async fn peeked_and_forwarded_with_literal_plus() {
    let (peeker, seen) = Peeker::rule(b"APPEND", None);
    let mut p = Pair::start(with_gateway(vec![peeker], 1 << 20)).await;
    let message = data(600_000, 7);
    send(&mut p.client, b"a APPEND INBOX {600000}\r\n").await;
    expect(&mut p.client, PLUS).await;
    let want = command("a APPEND INBOX {600000+}\r\n", &message);
    let sent = command("", &message);
    let (_, got) = tokio::join!(
        send(&mut p.client, &sent),
        read_n(&mut p.server, want.len())
    );
    assert!(got == want, "{}", difference(&got, &want));
    send(&mut p.server, b"a OK done\r\n").await;
    expect(&mut p.client, b"a OK done\r\n").await;
    p.finish().await;
    assert_seen(&seen, b"a APPEND INBOX {600000}\r\n", &message);
}

/// Without LITERAL+ the line goes on synchronizing: the relay waits for the server's `+`
/// (which the client, who had the gateway's, never sees), then sends the head and the rest.
/// A literal shorter than the head, and a longer one.
#[tokio::test]
async fn peeked_and_forwarded_without_literal_plus() {
    for size in [10, 100_000] {
        let (peeker, seen) = Peeker::rule(b"APPEND", None);
        let mut p = Pair::start(with_gateway(vec![peeker], 0)).await;
        let message = data(size, 8);
        let line = format!("a APPEND INBOX {{{size}}}\r\n");
        send(&mut p.client, line.as_bytes()).await;
        expect(&mut p.client, PLUS).await;
        let client = async {
            send(&mut p.client, &command("", &message)).await;
        };
        let server = async {
            expect(&mut p.server, line.as_bytes()).await;
            send(&mut p.server, b"+ go ahead\r\n").await;
            expect(&mut p.server, &command("", &message)).await;
            send(&mut p.server, b"a OK done\r\n").await;
        };
        tokio::join!(client, server);
        expect(&mut p.client, b"a OK done\r\n").await;
        p.finish().await;
        assert_seen(&seen, line.as_bytes(), &message);
    }
}

/// The server refuses the synchronizing literal: the client, who had its `+` and sends the
/// data, gets the server's NO, and nothing of the data (nor of the rest of the command, a
/// MULTIAPPEND's second message included) reaches the server.
#[tokio::test]
async fn peeked_forwarded_and_refused() {
    let (peeker, _) = Peeker::rule(b"APPEND", None);
    let mut p = Pair::start(with_gateway(vec![peeker], 0)).await;
    let message = data(100_000, 9);
    send(&mut p.client, b"a APPEND Nope {100000}\r\n").await;
    expect(&mut p.client, PLUS).await;
    let rest = [&message[..], b" {5+}\r\nhello\r\nb NOOP\r\n"].concat();
    let client = async {
        send(&mut p.client, &rest).await;
        expect(&mut p.client, b"a NO [TRYCREATE] no such mailbox\r\n").await;
    };
    let server = async {
        expect(&mut p.server, b"a APPEND Nope {100000}\r\n").await;
        send(&mut p.server, b"a NO [TRYCREATE] no such mailbox\r\n").await;
        expect(&mut p.server, b"b NOOP\r\n").await;
    };
    tokio::join!(client, server);
    send(&mut p.server, b"b OK done\r\n").await;
    expect(&mut p.client, b"b OK done\r\n").await;
    p.finish().await;
}

/// A refused MULTIAPPEND whose second literal is synchronizing: the client, waiting for a `+`,
/// has the server's NO and sends no more; its next command is a command.
#[tokio::test]
async fn peeked_refused_multiappend_with_a_sync_second_literal() {
    let (peeker, _) = Peeker::rule(b"APPEND", None);
    let mut p = Pair::start(with_gateway(vec![peeker], 0)).await;
    send(&mut p.client, b"a APPEND Nope {5}\r\n").await;
    expect(&mut p.client, PLUS).await;
    send(&mut p.client, b"hello {6}\r\n").await;
    expect(&mut p.server, b"a APPEND Nope {5}\r\n").await;
    send(&mut p.server, b"a NO [TRYCREATE] no such mailbox\r\n").await;
    expect(&mut p.client, b"a NO [TRYCREATE] no such mailbox\r\n").await;
    p.finish().await;
}

/// Swallowed: the client gets the rule's answer once its command is over, the server nothing.
/// Synchronizing (the gateway's `+`) and non-synchronizing (no `+`), long and short.
#[tokio::test]
async fn peeked_and_swallowed() {
    for (size, sync) in [(100_000, true), (10, false)] {
        let (peeker, seen) = Peeker::rule(b"APPEND", Some(DUPLICATE));
        let mut p = Pair::start(with_gateway(vec![peeker], 1 << 20)).await;
        let message = data(size, 10);
        let plus = if sync { "" } else { "+" };
        let line = format!("a APPEND Sent {{{size}{plus}}}\r\n");
        let client = async {
            send(&mut p.client, line.as_bytes()).await;
            if sync {
                expect(&mut p.client, PLUS).await;
            }
            send(&mut p.client, &command("", &message)).await;
            expect(&mut p.client, DUPLICATE).await;
        };
        client.await;
        p.finish().await;
        assert_seen(&seen, line.as_bytes(), &message);
    }
}

/// A swallowed MULTIAPPEND: the further messages are swallowed too, a synchronizing one given
/// its `+` by the gateway.
#[tokio::test]
async fn a_swallowed_multiappend() {
    let (peeker, _) = Peeker::rule(b"APPEND", Some(DUPLICATE));
    let mut p = Pair::start(with_gateway(vec![peeker], 0)).await;
    send(&mut p.client, b"a APPEND Sent {5}\r\n").await;
    expect(&mut p.client, PLUS).await;
    send(&mut p.client, b"hello (\\Seen) {6}\r\n").await;
    expect(&mut p.client, PLUS).await;
    send(&mut p.client, b"world! {2+}\r\nhi\r\n").await;
    expect(&mut p.client, DUPLICATE).await;
    p.finish().await;
}

/// A command held for its mailbox literal, then peeked at for its message: the peeking rule
/// sees the line as the holding rule left it, and the server gets that, non-synchronizing.
#[tokio::test]
async fn held_then_peeked() {
    let (peeker, seen) = Peeker::rule(b"APPEND", None);
    let rules = vec![Holder::rule(b"APPEND", 1, true), peeker];
    let mut p = Pair::start(with_gateway(rules, 1 << 20)).await;
    send(&mut p.client, b"a APPEND {9}\r\n").await;
    expect(&mut p.client, PLUS).await;
    send(&mut p.client, b"Sent Mail {11}\r\n").await;
    expect(&mut p.client, PLUS).await;
    send(&mut p.client, b"hello world\r\n").await;
    expect(
        &mut p.server,
        b"a APPEND \"Sent Mail\" {11+}\r\nhello world\r\n",
    )
    .await;
    send(&mut p.server, b"a OK done\r\n").await;
    expect(&mut p.client, b"a OK done\r\n").await;
    p.finish().await;
    assert_seen(&seen, b"a APPEND \"Sent Mail\" {11}\r\n", b"hello world");
}
