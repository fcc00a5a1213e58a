//! Properties of the folder rule over many inputs: names survive a trip to the provider and
//! back, and a LIST shows the client exactly the names its patterns match in its own view.

use super::tests::{gmail, line, rule, view_of, GMAIL};
use super::*;
use crate::imap::folders::pattern::matches;
use crate::imap::folders::syntax::Scanner;
use crate::imap::folders::Profile;
use proptest::prelude::*;

/// The string tokens of `bytes` from `from` on (parentheses skipped), as their values.
fn strings(bytes: &[u8], from: usize) -> Vec<Vec<u8>> {
    let mut s = Scanner::new(bytes, from);
    let mut out = Vec::new();
    while let Ok(Some(t)) = s.next_token() {
        if let Some(v) = t.string(bytes) {
            out.push(v.into_owned());
        }
    }
    out
}

/// The bytes that go on for `bytes` (a whole: literals inline).
fn forward(v: Verdict, bytes: &[u8]) -> Vec<u8> {
    match v {
        Verdict::Pass => bytes.to_vec(),
        Verdict::Replace(b) => b,
        other => panic!("unexpected {other:?}"),
    }
}

fn client_names() -> impl Strategy<Value = String> {
    let head = prop::sample::select(vec![
        "",
        "Sent Items",
        "Sent Items/",
        "Drafts",
        "Drafts/",
        "Deleted items/",
        "[Gmail]/Sent Mail",
        "[Gmail]/",
        "INBOX/",
        "Entw",
    ]);
    let tail = prop_oneof!["[ -~]{0,12}", "[\"\\\\& a-z/]{0,12}", any::<String>(),];
    (head, tail).prop_map(|(h, t)| format!("{h}{t}"))
}

/// `name` there and back: SELECT carries it to the provider, a LIST reply brings it back.
fn round_trip(r: &mut FolderNames, name: &str, utf8: bool) -> Result<String, TestCaseError> {
    let wire = if utf8 {
        name.as_bytes().to_vec()
    } else {
        utf7::encode(name).into_bytes()
    };
    let mut command = b"a SELECT ".to_vec();
    push_string(&mut command, &wire, utf8, true);
    command.extend_from_slice(b"\r\n");
    let sent = forward(r.command(line(&command, true)), &command);
    let provider = strings(&sent, 9);
    prop_assert_eq!(provider.len(), 1);
    let mut reply = b"* LIST () \"/\" ".to_vec();
    push_string(&mut reply, &provider[0], utf8, false);
    reply.extend_from_slice(b"\r\n");
    let shown = forward(r.response(line(&reply, true)), &reply);
    let back = strings(&shown, 7);
    prop_assert_eq!(back.len(), 2, "{:?}", String::from_utf8_lossy(&shown));
    let back = if utf8 {
        String::from_utf8(back[1].clone()).ok()
    } else {
        utf7::decode(&back[1])
    };
    Ok(back.unwrap_or_default())
}

/// The provider's mailboxes for the LIST property.
const PROVIDER: &[&str] = &[
    "INBOX",
    "INBOX/x",
    "[Gmail]",
    "[Gmail]/Sent Mail",
    "[Gmail]/Sent Mail/2024",
    "[Gmail]/Sent Mail/2024/Q1",
    "[Gmail]/Drafts",
    "[Gmail]/Trash",
    "[Gmail]/All Mail",
    "Drafts",
    "Drafts/old",
    "Sent",
    "Sent Itemsx",
    "Deleted",
];

/// What the provider (modelled with the same wildcard rules) answers to `command`.
fn provider_answers(command: &[u8], verb: &str) -> Vec<String> {
    let args = strings(command, 2 + verb.len());
    let (reference, patterns) = args.split_first().expect("a reference");
    let reference = String::from_utf8_lossy(reference).into_owned();
    PROVIDER
        .iter()
        .filter(|name| {
            patterns.iter().any(|p| {
                let full = format!("{reference}{}", String::from_utf8_lossy(p));
                matches(&full, name, Some('/'))
            })
        })
        .map(|name| format!("* {verb} () \"/\" \"{name}\"\r\n"))
        .collect()
}

/// The names a client sees in its view that `pattern` matches.
fn expected(r: &FolderNames, pattern: &str) -> Vec<String> {
    let mapping = &r.view.mapping;
    let mut names: Vec<String> = PROVIDER
        .iter()
        .filter_map(|p| match mapping.to_client(p) {
            Some(c) => Some(c),
            None if r
                .view
                .hidden
                .iter()
                .any(|h| p == h || p.starts_with(&format!("{h}/"))) =>
            {
                None
            }
            None => Some((*p).to_owned()),
        })
        .filter(|n| matches(pattern, n, Some('/')))
        .collect();
    names.sort();
    names
}

fn pattern() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "%",
        "*",
        "Sent",
        " Items",
        "/",
        "[Gmail]",
        "Drafts",
        "D",
        "e",
        "2024",
        "inbox",
        "x",
        "Deleted items",
        "S",
    ]);
    prop::collection::vec(piece, 1..5).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any name the client uses comes back as it was from the provider (a mapped folder's
    /// provider name excepted: the client never sees it), in modified UTF-7 and in UTF-8.
    #[test]
    fn client_names_survive_a_round_trip(name in client_names(), utf8 in any::<bool>()) {
        let mut r = gmail();
        prop_assume!(r.view.mapping.to_client(&name).is_none());
        if utf8 {
            r.response(line(b"* ENABLED UTF8=ACCEPT\r\n", true));
        }
        prop_assert_eq!(round_trip(&mut r, &name, utf8)?, name);
    }

    /// A LIST shows the client exactly the names of its view that its pattern matches, with
    /// or without LIST-EXTENDED at the provider.
    #[test]
    fn list_shows_what_the_pattern_matches(
        reference in prop::sample::select(vec!["", "Sent Items/", "[Gmail]/", "D"]),
        pattern in pattern(),
        extended in any::<bool>(),
        verb in prop::sample::select(vec!["LIST", "LSUB"]),
    ) {
        let caps: &[&str] = if extended { &["LIST-EXTENDED", "SPECIAL-USE"] } else { &["SPECIAL-USE"] };
        let (mut r, _) = rule(view_of(GMAIL, Profile::SuperOffice, caps));
        let command = format!("a {verb} \"{reference}\" \"{pattern}\"\r\n");
        let sent = forward(r.command(line(command.as_bytes(), true)), command.as_bytes());
        let mut shown: Vec<String> = Vec::new();
        for reply in provider_answers(&sent, verb) {
            let out = forward(r.response(line(reply.as_bytes(), true)), reply.as_bytes());
            if !out.is_empty() {
                let name = strings(&out, 7).pop().unwrap_or_default();
                shown.push(String::from_utf8(name).unwrap_or_default());
            }
        }
        r.response(line(b"a OK done\r\n", true));
        shown.sort();
        prop_assert_eq!(shown, expected(&r, &format!("{reference}{pattern}")), "{}", String::from_utf8_lossy(&sent));
    }
}
