//! IMAP commands in the metrics: the bounded set of labels, and the counters one relay
//! session keeps (counted once per command relayed after login).

use super::IMAP_COMMANDS_TOTAL;
use metrics::{counter, Counter};

/// IMAP command names counted by name; everything else is `other`, so a client sending random
/// words cannot create new time series.
pub const IMAP_COMMANDS: &[&str] = &[
    "APPEND",
    "AUTHENTICATE",
    "CAPABILITY",
    "CHECK",
    "CLOSE",
    "COMPRESS",
    "COPY",
    "CREATE",
    "DELETE",
    "ENABLE",
    "EXAMINE",
    "EXPUNGE",
    "FETCH",
    "GETACL",
    "GETMETADATA",
    "GETQUOTA",
    "GETQUOTAROOT",
    "ID",
    "IDLE",
    "LIST",
    "LOGIN",
    "LOGOUT",
    "LSUB",
    "MOVE",
    "MYRIGHTS",
    "NAMESPACE",
    "NOOP",
    "NOTIFY",
    "RENAME",
    "SEARCH",
    "SELECT",
    "SETACL",
    "SETMETADATA",
    "SETQUOTA",
    "SORT",
    "STARTTLS",
    "STATUS",
    "STORE",
    "SUBSCRIBE",
    "THREAD",
    "UNSELECT",
    "UNSUBSCRIBE",
    "UID COPY",
    "UID EXPUNGE",
    "UID FETCH",
    "UID MOVE",
    "UID SEARCH",
    "UID SORT",
    "UID STORE",
    "UID THREAD",
    "XLIST",
];

/// The label for an IMAP command: its known name upper-cased (`UID FETCH` for UID forms), or
/// `other`.
pub fn imap_command_label(name: &[u8], sub: &[u8]) -> &'static str {
    // Upper-cased on the stack: it runs for every command relayed, and no name counted is
    // longer than the buffer.
    let mut buf = [0u8; 24];
    let mut len = 0;
    let parts: [&[u8]; 2] = match name.eq_ignore_ascii_case(b"UID") {
        true => [b"UID ", sub],
        false => [name, b""],
    };
    for &b in parts.iter().flat_map(|p| p.iter()) {
        let Some(slot) = buf.get_mut(len) else {
            return "other";
        };
        *slot = b.to_ascii_uppercase();
        len += 1;
    }
    let want = &buf[..len];
    IMAP_COMMANDS
        .iter()
        .find(|c| c.as_bytes() == want)
        .copied()
        .unwrap_or("other")
}

/// The command counters one session has used, kept so that counting a command does not look
/// its counter up in the registry each time (a hash of the name and its label, per command
/// relayed). A session uses a handful of commands; past [`CommandCounters::KEPT`] the rest are
/// looked up each time, so an idle session holds little.
#[derive(Default)]
pub struct CommandCounters(Vec<(&'static str, Counter)>);

impl CommandCounters {
    const KEPT: usize = 8;

    /// Counts one IMAP command relayed after login, by its label
    /// ([`imap_command_label`]).
    pub fn count(&mut self, label: &'static str) {
        if let Some((_, counter)) = self.0.iter().find(|(l, _)| *l == label) {
            counter.increment(1);
            return;
        }
        let counter = counter!(IMAP_COMMANDS_TOTAL, "command" => label);
        counter.increment(1);
        if self.0.len() < Self::KEPT {
            self.0.push((label, counter));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_labels_are_bounded() {
        assert_eq!(imap_command_label(b"fetch", b""), "FETCH");
        assert_eq!(imap_command_label(b"uid", b"fetch"), "UID FETCH");
        assert_eq!(imap_command_label(b"UID", b"FROB"), "other");
        assert_eq!(imap_command_label(b"X-GM-RAW", b""), "other");
        assert_eq!(imap_command_label(b"", b""), "other");
    }
}
