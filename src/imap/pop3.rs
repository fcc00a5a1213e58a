//! POP3 clients pointed at the IMAP port get an answer they understand.
//!
//! A POP3 client waits for a `+OK` greeting before it sends anything; mailgate's `* OK` is not
//! one. curl (`pop3://`) then sends nothing and waits for a `+OK` or `-ERR` line; fetchmail
//! calls the greeting a protocol error and sends `QUIT`. So a client that sends a POP3 command
//! as its first line, or nothing at all within [`FIRST_COMMAND_WAIT`] of the greeting, is
//! answered with a POP3 `-ERR` line saying what to change (after an IMAP `* BYE`, which is all
//! an IMAP client reads before the connection closes) and the connection is closed.

use std::time::Duration;

/// How long a client may stay silent after the greeting before it is told, in IMAP and POP3
/// terms, that this is an IMAP server. IMAP clients speak at once (CAPABILITY, ID, LOGIN or
/// STARTTLS); a POP3 client never does. `preauth_timeout_secs` applies when it is shorter.
pub const FIRST_COMMAND_WAIT: Duration = Duration::from_secs(10);

/// POP3 commands a client may send first (RFC 1939, RFC 2449 CAPA, RFC 5034 AUTH, RFC 2595
/// STLS). Sent without a tag, none of them is an IMAP command.
const FIRST_COMMANDS: [&str; 6] = ["CAPA", "USER", "AUTH", "QUIT", "STLS", "APOP"];

/// Whether `line` (one that did not parse as IMAP) is a POP3 command.
pub fn is_pop3_command(line: &[u8]) -> bool {
    let word = line
        .split(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    FIRST_COMMANDS
        .iter()
        .any(|c| word.eq_ignore_ascii_case(c.as_bytes()))
}

/// The POP3 error line naming the IMAP port the client reached.
pub fn answer(port: u16) -> String {
    format!("-ERR this is an IMAP server: mailgate supports IMAP only; set the client to IMAP, port {port}\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pop3_first_lines() {
        for line in [
            &b"CAPA\r\n"[..],
            b"USER bob\r\n",
            b"quit\r\n",
            b"STLS\n",
            b"AUTH\r\n",
        ] {
            assert!(is_pop3_command(line), "{}", String::from_utf8_lossy(line));
        }
        for line in [
            &b"a1 CAPA\r\n"[..],
            b"CAPABILITY\r\n",
            b"USERS x\r\n",
            b"\r\n",
        ] {
            assert!(!is_pop3_command(line), "{}", String::from_utf8_lossy(line));
        }
    }
}
