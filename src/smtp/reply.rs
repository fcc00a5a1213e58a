//! The client's reply for what the provider said or did: its own reply passed back, or the
//! words for a failure that is not a reply.

use crate::smtp::submit::Reply;
use crate::upstream::UpstreamError;
use std::borrow::Cow;
use std::fmt::Write as _;

/// The reply for an upstream failure that is not a reply: the client should retry later.
pub fn upstream_failure(e: &UpstreamError) -> &'static str {
    crate::diagnosis::smtp_reply(e.kind())
}

/// The reply when the upstream connection (and login) failed (worded by the failure table).
pub fn connect_failure(e: &UpstreamError) -> Cow<'static, str> {
    crate::diagnosis::smtp_login_reply(e)
}

/// An upstream reply as the client's reply: same code, enhanced code and text; multi-line kept.
/// Codes the client must not see as-is become `451` (421 would close *our* connection; 1xx/3xx
/// have no meaning at this step).
pub fn relay_reply(r: &Reply) -> String {
    let (code, esc) = match r.code {
        200..=299 | 400..=420 | 422..=599 => (r.code, r.esc),
        _ => (451, [4, 4, 0]),
    };
    let [a, b, c] = esc;
    let esc = if a == 0 || u16::from(a) != code / 100 {
        format!("{}.0.0", code / 100)
    } else {
        format!("{a}.{b}.{c}")
    };
    // Written straight into the reply: this runs for every message a client sends.
    let mut out = String::with_capacity(r.message.len() + 16);
    let mut lines = r.message.split('\n').take(20).peekable();
    while let Some(line) = lines.next() {
        let sep = if lines.peek().is_some() { '-' } else { ' ' };
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let _ = write!(out, "{code}{sep}{esc} ");
        out.extend(
            line.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(480),
        );
    }
    out
}

/// The reply to a DSN parameter when the provider does not offer DSN: passing the request on
/// is impossible and dropping it would be a silent lie, so the client hears it (it may send
/// again without one).
pub const DSN_NOT_OFFERED: &str =
    "555 5.5.4 DSN parameters cannot be passed on: this account's mail provider does not offer DSN";

/// The reply when the account has no `[account.smtp]`.
pub const NO_OUTGOING_SERVER: &str = "550 5.3.5 No outgoing server is configured for this account in mailgate ([account.smtp] is missing)";

/// The reply to a malformed, over-long or repeated DSN parameter (RFC 3461: 501).
pub fn dsn_syntax(param: &str) -> String {
    let shown: String = param.chars().take(64).collect();
    format!("501 5.5.4 Syntax error in the DSN parameter {shown} (RFC 3461)")
}

/// The outcome label of a message the client was refused with `reply` before its data, by
/// the reply's code: `too_big` for 552 (size), `rejected` for another 5xx, else `deferred`.
pub fn refused_outcome(reply: &str) -> &'static str {
    match reply.get(..3).and_then(|c| c.parse::<u16>().ok()) {
        Some(552) => "too_big",
        Some(500..=599) => "rejected",
        _ => "deferred",
    }
}

/// The outcome label of a message the provider refused with `reply` at its end.
pub fn deferred_or_rejected(reply: &str) -> &'static str {
    if reply.starts_with('5') {
        "rejected"
    } else {
        "deferred"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, esc: [u8; 3], message: &str) -> Reply {
        Reply {
            code,
            esc,
            message: message.into(),
        }
    }

    #[test]
    fn relayed_replies_keep_code_and_words() {
        assert_eq!(
            relay_reply(&reply(550, [5, 7, 1], "message content rejected")),
            "550 5.7.1 message content rejected"
        );
        assert_eq!(relay_reply(&reply(250, [0, 0, 0], "Ok")), "250 2.0.0 Ok");
        assert_eq!(
            relay_reply(&reply(554, [5, 7, 1], "a\nb")),
            "554-5.7.1 a\r\n554 5.7.1 b"
        );
        assert!(relay_reply(&reply(421, [4, 4, 2], "bye")).starts_with("451 4.4.0 "));
        assert!(relay_reply(&reply(354, [0, 0, 0], "go")).starts_with("451 4.4.0 "));
        assert_eq!(relay_reply(&reply(550, [2, 0, 0], "x\r")), "550 5.0.0 x ");
        // At most 20 lines of at most 480 characters; the last one kept ends the reply.
        let long = vec!["y".repeat(600); 25].join("\n");
        let relayed = relay_reply(&reply(550, [5, 7, 1], &long));
        let lines: Vec<&str> = relayed.split("\r\n").collect();
        assert_eq!(lines.len(), 20);
        assert!(lines[..19].iter().all(|l| l.starts_with("550-5.7.1 ")));
        assert_eq!(lines[19], format!("550 5.7.1 {}", "y".repeat(480)));
    }

    #[test]
    fn refusal_outcomes() {
        assert_eq!(refused_outcome("552 5.3.4 too big"), "too_big");
        assert_eq!(refused_outcome("553 5.7.1 no"), "rejected");
        assert_eq!(refused_outcome("451 4.4.1 later"), "deferred");
    }
}
