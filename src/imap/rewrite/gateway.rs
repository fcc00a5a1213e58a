//! What mailgate itself changes in a relayed session, the first [`Rewrite`] rule:
//! - capability lists (`* CAPABILITY …` and the `[CAPABILITY …]` code of a status response;
//!   never message data that looks like one) lose what the gateway must hide: STARTTLS,
//!   AUTH=…, LOGINDISABLED, and COMPRESS (the relay frames plain bytes);
//! - the client's STARTTLS and COMPRESS commands are answered by the gateway, not forwarded;
//! - a client's synchronizing literal the server may take without a round trip is sent on as
//!   a non-synchronizing one, and the gateway gives the client its `+` (see
//!   [`NONSYNC_CONVERT_MAX`]).

use super::{command_name, Line, Rewrite, Verdict};
use crate::imap::folders::syntax::{Kind as TokenKind, Scanner};

/// mailgate's own rewrites; see the module documentation.
pub struct Gateway {
    /// Client synchronizing literals up to this size are sent upstream as non-synchronizing
    /// ones and the client gets its `+` from the gateway (0: never); see [`nonsync_limit`].
    nonsync_literal_max: u64,
}

impl Gateway {
    /// The rule for a server that takes non-synchronizing literals up to `nonsync_literal_max`
    /// bytes ([`nonsync_limit`] of its capabilities).
    pub fn new(nonsync_literal_max: u64) -> Gateway {
        Gateway {
            nonsync_literal_max,
        }
    }
}

impl Rewrite for Gateway {
    fn command(&mut self, line: Line<'_>) -> Verdict {
        match line.literal {
            // The rest of a command after a literal, or an answer to a continuation request
            // (IDLE's DONE): never a command of its own.
            None if !line.starts => Verdict::Pass,
            None => {
                let (tag, name) = command_name(line.bytes);
                match local_answer(tag, name) {
                    Some(reply) => Verdict::Answer(reply),
                    None => Verdict::Pass,
                }
            }
            Some(l)
                if l.sync
                    && l.length <= self.nonsync_literal_max
                    && (!line.starts || server_reads_the_literal(line.bytes)) =>
            {
                match nonsync_announcement(line.bytes) {
                    // The gateway gives the `+`; the server needs none.
                    Some(forward) => Verdict::ReplaceAndAnswer {
                        forward,
                        answer: b"+ Ready for literal data\r\n".to_vec(),
                    },
                    None => Verdict::Pass,
                }
            }
            Some(_) => Verdict::Pass,
        }
    }

    fn response(&mut self, line: Line<'_>) -> Verdict {
        if !line.starts {
            // After a literal the line goes on: its bytes are data, not a response.
            return Verdict::Pass;
        }
        match filter_capability_line(line.bytes) {
            Some(rewritten) => Verdict::Replace(rewritten),
            None => Verdict::Pass,
        }
    }
}

/// Largest synchronizing literal the relay turns into a LITERAL+ one.
///
/// Why: a client's `{N}` costs a round trip to the provider before the data may follow — tens
/// of milliseconds per APPEND to a real provider, and two extra hops through the gateway on
/// loopback. When the server accepts non-synchronizing literals (RFC 7888), the gateway answers
/// the `+` itself and forwards `{N+}`: the server gets the same command and data, the client the
/// same responses. The price: if the server would have refused the command before the data
/// (no such mailbox, over quota), the client has sent the data for nothing before it hears the
/// same NO — so only literals up to this size are converted; larger ones keep the round trip.
pub const NONSYNC_CONVERT_MAX: u64 = 1024 * 1024;

/// The `nonsync_literal_max` for a server with these capabilities: LITERAL+ allows any size,
/// LITERAL- (RFC 7888) only up to 4096 bytes.
pub fn nonsync_limit<'a>(capabilities: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut limit = 0;
    for cap in capabilities {
        if cap.eq_ignore_ascii_case("LITERAL+") {
            return NONSYNC_CONVERT_MAX;
        }
        if cap.eq_ignore_ascii_case("LITERAL-") {
            limit = 4096;
        }
    }
    limit
}

/// Whether the server will read the literal `line` announces even when it refuses the
/// command: true for any command but APPEND, and for an APPEND of RFC 3501's form
/// (`APPEND mailbox [(flags)] ["date-time"] {n}`). A server that finds an APPEND's arguments
/// broken answers before the literal (Dovecot does) and then reads the literal's bytes as
/// commands: after the gateway's own `+`, a client's message lines would run as commands. Such
/// an APPEND keeps its round trip, so the server's answer comes before the data (CATENATE
/// too: its parts are not checked here).
fn server_reads_the_literal(line: &[u8]) -> bool {
    let (tag, name) = command_name(line);
    if !name.eq_ignore_ascii_case(b"APPEND") {
        return true;
    }
    let mut s = Scanner::new(line, tag.len() + 1 + name.len());
    let next = |s: &mut Scanner<'_>| s.next_token().ok().flatten();
    if !next(&mut s).is_some_and(|mailbox| mailbox.is_string()) {
        return false;
    }
    let mut token = next(&mut s);
    if token.as_ref().is_some_and(|t| t.kind == TokenKind::Open) {
        loop {
            match next(&mut s).map(|t| t.kind) {
                Some(TokenKind::Close) => break,
                Some(TokenKind::Atom) => {}
                _ => return false,
            }
        }
        token = next(&mut s);
    }
    if token.as_ref().is_some_and(|t| t.kind == TokenKind::Quoted) {
        token = next(&mut s);
    }
    matches!(token.map(|t| t.kind), Some(TokenKind::Trailing { .. })) && next(&mut s).is_none()
}

/// `line` with its final `{N}` announcement rewritten as `{N+}`; `None` if it has none.
fn nonsync_announcement(line: &[u8]) -> Option<Vec<u8>> {
    let close = line.iter().rposition(|&b| b == b'}')?;
    let mut out = Vec::with_capacity(line.len() + 1);
    out.extend_from_slice(&line[..close]);
    out.push(b'+');
    out.extend_from_slice(&line[close..]);
    Some(out)
}

/// The gateway's own answer to a command it must not forward, if `name` is one.
fn local_answer(tag: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let text: &[u8] = if name.eq_ignore_ascii_case(b"STARTTLS") {
        b" BAD STARTTLS is only possible before login.\r\n"
    } else if name.eq_ignore_ascii_case(b"COMPRESS") {
        b" NO [CANNOT] COMPRESS is not supported by this gateway.\r\n"
    } else {
        return None;
    };
    let mut reply = tag.to_vec();
    reply.extend_from_slice(text);
    Some(reply)
}

/// Whether a capability must not reach the client.
pub fn hidden_capability(cap: &str) -> bool {
    let upper = cap.to_ascii_uppercase();
    upper == "STARTTLS"
        || upper == "LOGINDISABLED"
        || upper.starts_with("AUTH=")
        || upper.starts_with("COMPRESS=")
}

/// The capability list minus what the gateway hides, space-separated.
pub fn filter_capabilities<'a>(caps: impl IntoIterator<Item = &'a str>) -> String {
    caps.into_iter()
        .filter(|c| !hidden_capability(c))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Rewrites `* CAPABILITY …` lines and the `[CAPABILITY …]` code of a status response
/// (`* OK [CAPABILITY …]`, `tag OK [CAPABILITY …]`); `None` for any other line. Only the code
/// right after the status word counts: the same words inside message data (a subject in an
/// ENVELOPE) are the message's, never touched. `line` must start a response.
fn filter_capability_line(line: &[u8]) -> Option<Vec<u8>> {
    const UNTAGGED: &[u8] = b"* CAPABILITY ";
    const CODE: &[u8] = b"[CAPABILITY ";
    if line.len() > UNTAGGED.len() && line[..UNTAGGED.len()].eq_ignore_ascii_case(UNTAGGED) {
        let text = std::str::from_utf8(line).ok()?;
        let body = text[UNTAGGED.len()..].trim_end_matches(['\r', '\n']);
        let ending = &text[UNTAGGED.len() + body.len()..];
        return Some(
            format!(
                "* CAPABILITY {}{ending}",
                filter_capabilities(body.split(' '))
            )
            .into_bytes(),
        );
    }
    let status_at = memchr::memchr(b' ', line)? + 1;
    let status_len = memchr::memchr(b' ', &line[status_at..])?;
    let status = &line[status_at..status_at + status_len];
    if !STATUS_WORDS.iter().any(|w| status.eq_ignore_ascii_case(w)) {
        return None;
    }
    let code_at = status_at + status_len + 1;
    let code = line.get(code_at..code_at + CODE.len())?;
    if !code.eq_ignore_ascii_case(CODE) {
        return None;
    }
    let text = std::str::from_utf8(line).ok()?;
    let list_start = code_at + CODE.len();
    let list_end = list_start + text[list_start..].find(']')?;
    Some(
        format!(
            "{}{}{}",
            &text[..list_start],
            filter_capabilities(text[list_start..list_end].split(' ')),
            &text[list_end..]
        )
        .into_bytes(),
    )
}

/// The words that make a line a status response (RFC 9051 7.1), which may carry a code.
const STATUS_WORDS: [&[u8]; 5] = [b"OK", b"NO", b"BAD", b"PREAUTH", b"BYE"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_appends_lose_their_round_trip() {
        for good in [
            &b"a APPEND INBOX {5}\r\n"[..],
            b"a APPEND \"Sent Items\" (\\Seen \\Draft) \"02-Dec-2026 10:00:00 +0100\" {5}\r\n",
            b"a append Drafts () {5}\r\n",
            b"a SEARCH CHARSET UTF-8 SUBJECT {5}\r\n",
        ] {
            assert!(
                server_reads_the_literal(good),
                "{}",
                String::from_utf8_lossy(good)
            );
        }
        for bad in [
            &b"a APPEND Deleted items (\\Seen) {5}\r\n"[..],
            b"a APPEND INBOX (\\Seen {5}\r\n",
            b"a APPEND INBOX ((x)) {5}\r\n",
            b"a APPEND {5}\r\n",
            b"a APPEND INBOX CATENATE (TEXT {5}\r\n",
        ] {
            assert!(
                !server_reads_the_literal(bad),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut g = Gateway::new(1 << 20);
        let line = |bytes| Line {
            bytes,
            literal: crate::imap::framer::announcement(bytes),
            starts: true,
        };
        assert_eq!(
            g.command(line(b"a APPEND Deleted items (\\Seen) {5}\r\n")),
            Verdict::Pass
        );
    }

    #[test]
    fn capability_lines_are_filtered() {
        let l = filter_capability_line(
            b"* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN LOGINDISABLED COMPRESS=DEFLATE IDLE\r\n",
        )
        .unwrap();
        assert_eq!(l, b"* CAPABILITY IMAP4rev1 IDLE\r\n");
        let l =
            filter_capability_line(b"a1 OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 MOVE] Logged in\r\n")
                .unwrap();
        assert_eq!(l, b"a1 OK [CAPABILITY IMAP4rev1 MOVE] Logged in\r\n");
        assert_eq!(filter_capability_line(b"* 1 FETCH (FLAGS ())\r\n"), None);
        // Message data that looks like a code is not one.
        assert_eq!(
            filter_capability_line(
                b"* 1 FETCH (ENVELOPE (NIL \"[CAPABILITY AUTH=PLAIN x]\" NIL))\r\n"
            ),
            None
        );
        assert_eq!(
            filter_capability_line(b"* OK see [CAPABILITY AUTH=PLAIN x]\r\n"),
            None
        );
    }

    #[test]
    fn sync_literals_become_nonsync_when_the_server_allows() {
        assert_eq!(
            nonsync_announcement(b"a1 APPEND INBOX (\\Seen) {310}\r\n").unwrap(),
            b"a1 APPEND INBOX (\\Seen) {310+}\r\n"
        );
        assert_eq!(
            nonsync_announcement(b"a1 APPEND INBOX ~{5}\n").unwrap(),
            b"a1 APPEND INBOX ~{5+}\n"
        );
        assert_eq!(
            nonsync_limit(["IMAP4rev1", "literal+"]),
            NONSYNC_CONVERT_MAX
        );
        assert_eq!(nonsync_limit(["IMAP4rev1", "LITERAL-"]), 4096);
        assert_eq!(nonsync_limit(["IMAP4rev1", "IDLE"]), 0);
    }

    fn line(bytes: &[u8], starts: bool) -> Line<'_> {
        let literal = crate::imap::framer::announcement(bytes);
        Line {
            bytes,
            literal,
            starts,
        }
    }

    #[test]
    fn the_rule_sees_whole_lines() {
        let mut g = Gateway::new(4096);
        assert_eq!(
            g.command(line(b"a1 compress DEFLATE\r\n", true)),
            Verdict::Answer(
                b"a1 NO [CANNOT] COMPRESS is not supported by this gateway.\r\n".to_vec()
            )
        );
        assert_eq!(g.command(line(b"a1 NOOP\r\n", true)), Verdict::Pass);
        assert!(matches!(
            g.command(line(b"a1 APPEND x {4096}\r\n", true)),
            Verdict::ReplaceAndAnswer { .. }
        ));
        // Over the limit, or LITERAL+ already: the line goes as it is.
        assert_eq!(
            g.command(line(b"a1 APPEND x {4097}\r\n", true)),
            Verdict::Pass
        );
        assert_eq!(
            g.command(line(b"a1 APPEND x {5+}\r\n", true)),
            Verdict::Pass
        );
        let caps = b"* CAPABILITY IMAP4rev1 STARTTLS\r\n";
        assert_eq!(
            g.response(line(caps, true)),
            Verdict::Replace(b"* CAPABILITY IMAP4rev1\r\n".to_vec())
        );
        // The rest of a response after a literal is data.
        assert_eq!(g.response(line(caps, false)), Verdict::Pass);
    }

    #[test]
    fn local_answers() {
        assert_eq!(
            local_answer(b"a1", b"starttls").unwrap(),
            b"a1 BAD STARTTLS is only possible before login.\r\n"
        );
        assert!(local_answer(b"a1", b"COMPRESS").is_some());
        assert!(local_answer(b"a1", b"NOOP").is_none());
    }

    #[test]
    fn a_line_that_continues_a_command_is_forwarded() {
        // `a SEARCH SUBJECT {4}`, its data `test`, then ` COMPRESS DEFLATE`: the rest of one
        // command, which must reach the server as it is, not be answered as a new command.
        let mut g = Gateway::new(0);
        assert_eq!(g.command(line(b" STARTTLS\r\n", false)), Verdict::Pass);
        assert_eq!(
            g.command(line(b"x COMPRESS DEFLATE\r\n", false)),
            Verdict::Pass
        );
        assert!(matches!(
            g.command(line(b"x COMPRESS DEFLATE\r\n", true)),
            Verdict::Answer(_)
        ));
    }
}
