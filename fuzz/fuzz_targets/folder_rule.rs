//! The folder rule (`imap::rewrite::FolderNames`): client command lines and server response
//! lines as the relay shows them, including the holding of literal names.
//!
//! Input: the first byte chooses what the provider supports (SPECIAL-USE, LIST-EXTENDED);
//! the rest is cut into lines at LF. A line starting `<` is a server response (without the
//! `<`), any other a client command. A line that announces a literal is followed by its data
//! (taken from the input as it comes); the next line of that side continues it. When the rule
//! holds a line, the data and the next line are joined to it and the whole is shown again, as
//! the relay does. Checked for every line:
//! - nothing panics; a command gets Pass, Replace or Hold, a response the same;
//! - Hold only for a line announcing a literal of at most `HOLD_MAX` bytes;
//! - Replace gives the same trailing literal announcement (length) as the line and the same
//!   line ending; every line break inside it follows a literal announcement whose data
//!   follows in full; a line without literals inline becomes one line (or, for a response,
//!   nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailgate::imap::folders::{parse_list, Entry, Folders, Profile, Role, View};
use mailgate::imap::framer::announcement;
use mailgate::imap::rewrite::{FolderNames, Line, Rewrite, Verdict, HOLD_MAX};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The longest whole the relay holds.
const HOLD_LIMIT: usize = 64 * 1024;

const GMAIL: &[&str] = &[
    "* LIST (\\HasNoChildren) \"/\" INBOX\r\n",
    "* LIST (\\HasChildren \\Noselect) \"/\" \"[Gmail]\"\r\n",
    "* LIST (\\HasChildren \\Sent) \"/\" \"[Gmail]/Sent Mail\"\r\n",
    "* LIST (\\HasNoChildren \\Drafts) \"/\" \"[Gmail]/Drafts\"\r\n",
    "* LIST (\\HasNoChildren) \"/\" \"[Gmail]/Papierkorb\"\r\n",
    "* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe\"\r\n",
    "* LIST (\\HasNoChildren) \"/\" Drafts\r\n",
    "* LIST (\\HasNoChildren) \"/\" \"[Gmail]/Spam\"\r\n",
];

fn view(options: u8) -> View {
    let entries: Vec<Entry> = GMAIL
        .iter()
        .filter_map(|r| parse_list(r.as_bytes()))
        .collect();
    let mut wanted: BTreeMap<Role, String> = Role::ALL
        .into_iter()
        .filter_map(|r| Some((r, Profile::SuperOffice.name(r)?.to_owned())))
        .collect();
    wanted.insert(Role::Junk, "Søppel \"post\"".to_owned());
    let mut caps = vec!["IMAP4rev1".to_owned()];
    if options & 1 != 0 {
        caps.push("SPECIAL-USE".to_owned());
    }
    if options & 2 != 0 {
        caps.push("LIST-EXTENDED".to_owned());
    }
    View::new(&entries, &Folders::learn(&entries), &wanted, &caps)
}

/// The input cut into lines and literal data as the relay would frame it.
struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    fn line(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let end = self
            .rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.rest.len(), |i| i + 1);
        let (line, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(line)
    }

    fn data(&mut self, length: u64) -> &'a [u8] {
        let n = usize::try_from(length)
            .unwrap_or(usize::MAX)
            .min(self.rest.len());
        let (data, rest) = self.rest.split_at(n);
        self.rest = rest;
        data
    }
}

fn ending(bytes: &[u8]) -> &[u8] {
    if bytes.ends_with(b"\r\n") {
        b"\r\n"
    } else if bytes.ends_with(b"\n") {
        b"\n"
    } else {
        b""
    }
}

/// Whether every line break of `out` but the last follows a literal announcement whose data
/// follows in full; how many inline literals it has.
fn inline_literals(out: &[u8]) -> Option<usize> {
    let mut count = 0;
    let mut at = 0;
    while let Some(i) = out[at..].iter().position(|&b| b == b'\n') {
        let end = at + i + 1;
        if end == out.len() {
            return Some(count);
        }
        let literal = announcement(&out[at..end])?;
        let skip = usize::try_from(literal.length).ok()?;
        at = end.checked_add(skip).filter(|&e| e <= out.len())?;
        count += 1;
    }
    Some(count)
}

fn check(line: &[u8], verdict: &Verdict, response: bool) {
    let literal = announcement(line);
    match verdict {
        Verdict::Pass => {}
        Verdict::Hold => assert!(
            literal.is_some_and(|l| l.length <= HOLD_MAX),
            "held a line without a literal to hold"
        ),
        Verdict::Replace(out) if out.is_empty() => {
            assert!(response, "a command replaced by nothing");
            assert!(literal.is_none(), "dropped a line announcing a literal");
        }
        Verdict::Replace(out) => {
            assert_eq!(
                announcement(out).map(|l| l.length),
                literal.map(|l| l.length),
                "the trailing literal changed"
            );
            assert_eq!(ending(out), ending(line), "the line ending changed");
            let inline = inline_literals(out).expect("a broken inline literal");
            if inline_literals(line) == Some(0) {
                assert_eq!(inline, 0, "a one-line input became several lines");
            }
        }
        other => panic!("unexpected verdict {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let mut rule = FolderNames::new(Arc::new(view(options)), Box::new(|| {}));
    let mut input = Input { rest };
    // Per side: the next line continues a command or response after a literal.
    let mut continues = [false, false];
    while let Some(raw) = input.line() {
        let response = raw.first() == Some(&b'<');
        let side = usize::from(response);
        let mut whole = raw.get(usize::from(response)..).unwrap_or_default().to_vec();
        let starts = !continues[side];
        loop {
            let literal = announcement(&whole);
            let line = Line {
                bytes: &whole,
                literal,
                starts,
            };
            let verdict = if response {
                rule.response(line)
            } else {
                rule.command(line)
            };
            check(&whole, &verdict, response);
            let Some(literal) = literal else {
                continues[side] = false;
                break;
            };
            let data = input.data(literal.length);
            if verdict != Verdict::Hold || whole.len() + data.len() > HOLD_LIMIT {
                continues[side] = true;
                break;
            }
            // The relay shows the whole again: the line, the literal, the rest.
            whole.extend_from_slice(data);
            match input.line() {
                Some(next) => whole.extend_from_slice(next),
                None => break,
            }
        }
    }
});
