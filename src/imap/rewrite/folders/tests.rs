//! The folder rule on commands and non-LIST responses, line by line, as the relay shows them.

use super::*;
use crate::imap::folders::{parse_list, Entry, Folders, Profile, Role};
use crate::imap::framer::announcement;
use crate::imap::rewrite::HOLD_MAX;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Gmail as it lists itself (a user folder `Drafts` besides `[Gmail]/Drafts`).
pub(super) const GMAIL: &[&str] = &[
    "* LIST (\\HasNoChildren) \"/\" INBOX\r\n",
    "* LIST (\\HasChildren \\Noselect) \"/\" \"[Gmail]\"\r\n",
    "* LIST (\\HasChildren \\Sent) \"/\" \"[Gmail]/Sent Mail\"\r\n",
    "* LIST (\\HasNoChildren \\Drafts) \"/\" \"[Gmail]/Drafts\"\r\n",
    "* LIST (\\HasNoChildren \\Trash) \"/\" \"[Gmail]/Trash\"\r\n",
    "* LIST (\\HasNoChildren \\All) \"/\" \"[Gmail]/All Mail\"\r\n",
    "* LIST (\\HasNoChildren) \"/\" Drafts\r\n",
];

/// A hosting set-up that nests everything under INBOX with `.` and marks nothing.
pub(super) const HOSTING: &[&str] = &[
    "* LIST (\\HasChildren) \".\" INBOX\r\n",
    "* LIST (\\HasNoChildren) \".\" INBOX.Sent\r\n",
    "* LIST (\\HasNoChildren) \".\" INBOX.Drafts\r\n",
    "* LIST (\\HasNoChildren) \".\" INBOX.Trash\r\n",
    "* LIST (\\HasNoChildren) \".\" \"INBOX.Entw&APw-rfe\"\r\n",
];

/// A German mailbox on a server without attributes.
pub(super) const GERMAN: &[&str] = &[
    "* LIST (\\HasNoChildren) \"/\" INBOX\r\n",
    "* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe\"\r\n",
    "* LIST (\\HasNoChildren) \"/\" Gesendet\r\n",
];

/// The view of a provider listing `replies`, for a client with `profile`'s names.
pub(super) fn view_of(replies: &[&str], profile: Profile, caps: &[&str]) -> View {
    let wanted: BTreeMap<Role, String> = Role::ALL
        .into_iter()
        .filter_map(|r| Some((r, profile.name(r)?.to_owned())))
        .collect();
    view_wanting(replies, &wanted, caps)
}

/// The view of a provider listing `replies`, for a client wanting these names.
pub(super) fn view_wanting(
    replies: &[&str],
    wanted: &BTreeMap<Role, String>,
    caps: &[&str],
) -> View {
    let entries: Vec<Entry> = replies
        .iter()
        .map(|r| parse_list(r.as_bytes()).expect("a LIST reply"))
        .collect();
    let caps: Vec<String> = caps.iter().map(|c| (*c).to_owned()).collect();
    View::new(&entries, &Folders::learn(&entries), wanted, &caps)
}

/// The rule over `view`, and how often it said the folder list changed.
pub(super) fn rule(view: View) -> (FolderNames, Arc<AtomicUsize>) {
    let changes = Arc::new(AtomicUsize::new(0));
    let counter = changes.clone();
    let on_change = Box::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    (FolderNames::new(Arc::new(view), on_change), changes)
}

/// Gmail for SuperOffice, the provider with SPECIAL-USE and LIST-EXTENDED.
pub(super) fn gmail() -> FolderNames {
    rule(view_of(
        GMAIL,
        Profile::SuperOffice,
        &["IMAP4rev1", "SPECIAL-USE", "LIST-EXTENDED"],
    ))
    .0
}

pub(super) fn line(bytes: &[u8], starts: bool) -> Line<'_> {
    Line {
        bytes,
        literal: announcement(bytes),
        starts,
    }
}

/// What the server gets for a command line: its bytes if the rule passes it, `HOLD` if held.
pub(super) fn cmd(r: &mut FolderNames, text: &str) -> String {
    shown(r.command(line(text.as_bytes(), true)), text)
}

/// What the client gets for a response line (`HOLD` if held).
pub(super) fn resp(r: &mut FolderNames, text: &str) -> String {
    shown(r.response(line(text.as_bytes(), true)), text)
}

fn shown(v: Verdict, text: &str) -> String {
    match v {
        Verdict::Pass => text.to_owned(),
        Verdict::Replace(b) => String::from_utf8(b).expect("UTF-8 in the tests"),
        Verdict::Hold => "HOLD".to_owned(),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn mailbox_commands_get_the_provider_names() {
    let mut r = gmail();
    for (client, server) in [
        (
            "a SELECT \"Sent Items\"\r\n",
            "a SELECT \"[Gmail]/Sent Mail\"\r\n",
        ),
        (
            "a examine \"Sent Items\" (CONDSTORE)\r\n",
            "a examine \"[Gmail]/Sent Mail\" (CONDSTORE)\r\n",
        ),
        (
            "a CREATE \"Sent Items/2024\"\r\n",
            "a CREATE \"[Gmail]/Sent Mail/2024\"\r\n",
        ),
        ("a DELETE Drafts\r\n", "a DELETE \"[Gmail]/Drafts\"\r\n"),
        (
            "a RENAME Drafts \"Deleted items/old\"\r\n",
            "a RENAME \"[Gmail]/Drafts\" \"[Gmail]/Trash/old\"\r\n",
        ),
        (
            "a SUBSCRIBE \"Sent Items\"\r\n",
            "a SUBSCRIBE \"[Gmail]/Sent Mail\"\r\n",
        ),
        (
            "a UNSUBSCRIBE \"Sent Items\"\r\n",
            "a UNSUBSCRIBE \"[Gmail]/Sent Mail\"\r\n",
        ),
        (
            "a STATUS \"Sent Items\" (MESSAGES UNSEEN)\r\n",
            "a STATUS \"[Gmail]/Sent Mail\" (MESSAGES UNSEEN)\r\n",
        ),
        (
            "a COPY 1:3 \"Deleted items\"\r\n",
            "a COPY 1:3 \"[Gmail]/Trash\"\r\n",
        ),
        ("a MOVE 1 Drafts\r\n", "a MOVE 1 \"[Gmail]/Drafts\"\r\n"),
        (
            "a UID COPY 4:7 \"Sent Items\"\r\n",
            "a UID COPY 4:7 \"[Gmail]/Sent Mail\"\r\n",
        ),
        (
            "a uid move 4 \"Sent Items\"\r\n",
            "a uid move 4 \"[Gmail]/Sent Mail\"\r\n",
        ),
        (
            "a GETQUOTAROOT Drafts\r\n",
            "a GETQUOTAROOT \"[Gmail]/Drafts\"\r\n",
        ),
        ("a GETACL Drafts\r\n", "a GETACL \"[Gmail]/Drafts\"\r\n"),
        (
            "a SETACL Drafts bob lr\r\n",
            "a SETACL \"[Gmail]/Drafts\" bob lr\r\n",
        ),
        (
            "a DELETEACL Drafts bob\r\n",
            "a DELETEACL \"[Gmail]/Drafts\" bob\r\n",
        ),
        (
            "a LISTRIGHTS Drafts bob\r\n",
            "a LISTRIGHTS \"[Gmail]/Drafts\" bob\r\n",
        ),
        ("a MYRIGHTS Drafts\r\n", "a MYRIGHTS \"[Gmail]/Drafts\"\r\n"),
        (
            "a GETMETADATA Drafts /private/comment\r\n",
            "a GETMETADATA \"[Gmail]/Drafts\" /private/comment\r\n",
        ),
        (
            "a GETMETADATA (DEPTH 1) Drafts (/private/comment)\r\n",
            "a GETMETADATA (DEPTH 1) \"[Gmail]/Drafts\" (/private/comment)\r\n",
        ),
        (
            "a SETMETADATA Drafts (/private/comment \"x\")\r\n",
            "a SETMETADATA \"[Gmail]/Drafts\" (/private/comment \"x\")\r\n",
        ),
        (
            "a APPEND \"Sent Items\" (\\Seen) {310}\r\n",
            "a APPEND \"[Gmail]/Sent Mail\" (\\Seen) {310}\r\n",
        ),
        // LF only, as some clients end lines.
        ("a SELECT Drafts\n", "a SELECT \"[Gmail]/Drafts\"\n"),
    ] {
        assert_eq!(cmd(&mut r, client), server, "{client}");
    }
}

#[test]
fn other_names_and_commands_pass() {
    let mut r = gmail();
    for text in [
        "a SELECT INBOX\r\n",
        "a SELECT \"Sent Items2024\"\r\n",
        "a SELECT \"[Gmail]/Sent Mail\"\r\n",
        "a FETCH 1:* (FLAGS)\r\n",
        "a UID SEARCH SUBJECT \"Sent Items\"\r\n",
        "a UID FETCH 1 BODY[]\r\n",
        "a NOOP\r\n",
        "a IDLE\r\n",
        "a SEARCH TEXT Drafts\r\n",
        "a COPY Drafts INBOX\r\n",
        "a NOTIFY NONE\r\n",
        "a\r\n",
        "\r\n",
        "a SELECT\r\n",
        "a SELECT \"broken\r\n",
    ] {
        assert_eq!(
            r.command(line(text.as_bytes(), true)),
            Verdict::Pass,
            "{text}"
        );
    }
    // The rest of a command after a literal, IDLE's DONE, AUTHENTICATE data: not commands.
    for text in ["a SELECT Drafts\r\n", " Drafts\r\n", "DONE\r\n"] {
        assert_eq!(
            r.command(line(text.as_bytes(), false)),
            Verdict::Pass,
            "{text}"
        );
    }
}

#[test]
fn quoted_names_with_escapes_and_modified_utf7() {
    let wanted = BTreeMap::from([
        (Role::Sent, "Éléments \"envoyés\"".to_owned()),
        (Role::Drafts, "A\\B".to_owned()),
    ]);
    let (mut r, _) = rule(view_wanting(GMAIL, &wanted, &["IMAP4rev1"]));
    assert_eq!(
        cmd(
            &mut r,
            "a SELECT \"&AMk-l&AOk-ments \\\"envoy&AOk-s\\\"\"\r\n"
        ),
        "a SELECT \"[Gmail]/Sent Mail\"\r\n"
    );
    assert_eq!(
        cmd(&mut r, "a SELECT \"A\\\\B\"\r\n"),
        "a SELECT \"[Gmail]/Drafts\"\r\n"
    );
    assert_eq!(
        resp(&mut r, "* LIST (\\Sent) \"/\" \"[Gmail]/Sent Mail\"\r\n"),
        "* LIST (\\Sent) \"/\" \"&AMk-l&AOk-ments \\\"envoy&AOk-s\\\"\"\r\n"
    );
    assert_eq!(
        resp(&mut r, "* STATUS \"[Gmail]/Drafts\" (MESSAGES 2)\r\n"),
        "* STATUS \"A\\\\B\" (MESSAGES 2)\r\n"
    );
}

#[test]
fn provider_names_in_modified_utf7_and_after_enable_in_utf8() {
    let (mut r, _) = rule(view_of(GERMAN, Profile::Outlook, &["IMAP4rev1"]));
    assert_eq!(
        cmd(&mut r, "a SELECT Drafts\r\n"),
        "a SELECT \"Entw&APw-rfe\"\r\n"
    );
    assert_eq!(
        resp(
            &mut r,
            "* LIST (\\HasNoChildren) \"/\" \"Entw&APw-rfe\"\r\n"
        ),
        "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"\r\n"
    );
    // Only the server's word turns UTF-8 on.
    assert_eq!(
        cmd(&mut r, "e ENABLE UTF8=ACCEPT\r\n"),
        "e ENABLE UTF8=ACCEPT\r\n"
    );
    assert_eq!(
        cmd(&mut r, "a SELECT \"Drafts/x\"\r\n"),
        "a SELECT \"Entw&APw-rfe/x\"\r\n"
    );
    assert_eq!(
        resp(&mut r, "* ENABLED CONDSTORE UTF8=ACCEPT\r\n"),
        "* ENABLED CONDSTORE UTF8=ACCEPT\r\n"
    );
    assert_eq!(
        cmd(&mut r, "a SELECT \"Drafts/x\"\r\n"),
        "a SELECT \"Entwürfe/x\"\r\n"
    );
    assert_eq!(
        resp(&mut r, "* LIST () \"/\" \"Entwürfe/ä\"\r\n"),
        "* LIST () \"/\" \"Drafts/ä\"\r\n"
    );
    assert_eq!(
        resp(&mut r, "* STATUS Entwürfe (UNSEEN 1)\r\n"),
        "* STATUS \"Drafts\" (UNSEEN 1)\r\n"
    );
    // A UTF-8 client name reaches the provider as UTF-8.
    let wanted = BTreeMap::from([(Role::Sent, "Élément envoyé".to_owned())]);
    let (mut r, _) = rule(view_wanting(GERMAN, &wanted, &[]));
    resp(&mut r, "* ENABLED IMAP4rev2\r\n");
    assert_eq!(
        cmd(&mut r, "a SELECT \"Élément envoyé\"\r\n"),
        "a SELECT \"Gesendet\"\r\n"
    );
}

#[test]
fn hosting_names_under_inbox_with_dots() {
    let (mut r, _) = rule(view_of(HOSTING, Profile::Outlook, &["IMAP4rev1"]));
    assert_eq!(
        cmd(&mut r, "a SELECT \"Sent Items\"\r\n"),
        "a SELECT \"INBOX.Sent\"\r\n"
    );
    assert_eq!(
        cmd(&mut r, "a CREATE \"Sent Items.2024\"\r\n"),
        "a CREATE \"INBOX.Sent.2024\"\r\n"
    );
    assert_eq!(
        cmd(&mut r, "a CREATE \"Sent Items/2024\"\r\n"),
        "a CREATE \"Sent Items/2024\"\r\n"
    );
    assert_eq!(
        resp(&mut r, "* LIST (\\HasNoChildren) \".\" INBOX.Sent.2024\r\n"),
        "* LIST (\\HasNoChildren) \".\" \"Sent Items.2024\"\r\n"
    );
    // Recognised by name, not marked by the server: the attribute is added.
    assert_eq!(
        resp(&mut r, "* LIST (\\HasNoChildren) \".\" INBOX.Sent\r\n"),
        "* LIST (\\HasNoChildren \\Sent) \".\" \"Sent Items\"\r\n"
    );
    assert_eq!(
        resp(
            &mut r,
            "* LIST (\\HasNoChildren \\Sent) \".\" INBOX.Sent\r\n"
        ),
        "* LIST (\\HasNoChildren \\Sent) \".\" \"Sent Items\"\r\n"
    );
    // LSUB replies get names, never attributes.
    assert_eq!(
        resp(&mut r, "* LSUB () \".\" INBOX.Trash\r\n"),
        "* LSUB () \".\" \"Deleted Items\"\r\n"
    );
    // XLIST replies get them (Gmail's `\Spam` for Junk).
    assert_eq!(
        resp(&mut r, "* XLIST (\\HasNoChildren) \".\" INBOX.Drafts\r\n"),
        "* XLIST (\\HasNoChildren \\Drafts) \".\" \"Drafts\"\r\n"
    );
}

#[test]
fn literal_names_are_held_and_quoted() {
    let mut r = gmail();
    // The relay shows the line, then the whole with the literal inline.
    assert_eq!(cmd(&mut r, "a SELECT {10}\r\n"), "HOLD");
    assert_eq!(
        cmd(&mut r, "a SELECT {10}\r\nSent Items\r\n"),
        "a SELECT \"[Gmail]/Sent Mail\"\r\n"
    );
    assert_eq!(cmd(&mut r, "a SELECT {9+}\r\n"), "HOLD");
    assert_eq!(
        cmd(&mut r, "a SELECT {9+}\r\nSomething\r\n"),
        "a SELECT \"Something\"\r\n"
    );
    assert_eq!(
        cmd(&mut r, "a SELECT {6}\r\nwith\"q (CONDSTORE)\r\n"),
        "a SELECT \"with\\\"q\" (CONDSTORE)\r\n"
    );
    // RENAME: held twice, once for each name.
    assert_eq!(cmd(&mut r, "a RENAME {6}\r\n"), "HOLD");
    assert_eq!(cmd(&mut r, "a RENAME {6}\r\nDrafts {3}\r\n"), "HOLD");
    assert_eq!(
        cmd(&mut r, "a RENAME {6}\r\nDrafts {3}\r\nOld\r\n"),
        "a RENAME \"[Gmail]/Drafts\" \"Old\"\r\n"
    );
    assert_eq!(cmd(&mut r, "a RENAME Drafts {3}\r\n"), "HOLD");
    // Found by fuzzing: without its line ending a line announces no literal to hold.
    assert_eq!(
        cmd(&mut r, "a RENAME {6}\r\nDrafts {3}"),
        "a RENAME {6}\r\nDrafts {3}"
    );
    // APPEND: the name may be held, the message never.
    assert_eq!(cmd(&mut r, "a APPEND {10}\r\n"), "HOLD");
    assert_eq!(
        cmd(&mut r, "a APPEND {10}\r\nSent Items (\\Seen) {310}\r\n"),
        "a APPEND \"[Gmail]/Sent Mail\" (\\Seen) {310}\r\n"
    );
    assert_eq!(
        cmd(&mut r, "a APPEND INBOX {5}\r\n"),
        "a APPEND INBOX {5}\r\n"
    );
    assert_eq!(
        cmd(&mut r, "a APPEND \"Sent Items\" ~{5}\r\n"),
        "a APPEND \"[Gmail]/Sent Mail\" ~{5}\r\n"
    );
    assert_eq!(cmd(&mut r, "a COPY 1:2 {4}\r\n"), "HOLD");
    assert_eq!(cmd(&mut r, "a UID MOVE 1 {4}\r\n"), "HOLD");
    // Too long to hold: the line goes as it is.
    let long = format!("a SELECT {{{}}}\r\n", HOLD_MAX + 1);
    assert_eq!(r.command(line(long.as_bytes(), true)), Verdict::Pass);
    // A name that cannot be quoted stays a literal (non-synchronizing: the client has its +).
    assert_eq!(
        cmd(&mut r, "a SELECT {3}\r\na\nb\r\n"),
        "a SELECT {3+}\r\na\nb\r\n"
    );
}

#[test]
fn notify_set_filters() {
    let mut r = gmail();
    assert_eq!(
        cmd(
            &mut r,
            "a NOTIFY SET STATUS (selected (MessageNew MessageExpunge)) (mailboxes Drafts (MessageNew)) (subtree (\"Sent Items\" INBOX) (MailboxName)) (subtree-one \"Deleted items\" (MessageNew))\r\n"
        ),
        "a NOTIFY SET STATUS (selected (MessageNew MessageExpunge)) (mailboxes \"[Gmail]/Drafts\" (MessageNew)) (subtree (\"[Gmail]/Sent Mail\" INBOX) (MailboxName)) (subtree-one \"[Gmail]/Trash\" (MessageNew))\r\n"
    );
    assert_eq!(
        cmd(&mut r, "a NOTIFY SET (personal (MessageNew))\r\n"),
        "a NOTIFY SET (personal (MessageNew))\r\n"
    );
    assert_eq!(cmd(&mut r, "a NOTIFY SET (mailboxes {6}\r\n"), "HOLD");
    assert_eq!(cmd(&mut r, "a NOTIFY SET (subtree (INBOX {6}\r\n"), "HOLD");
    assert_eq!(
        cmd(
            &mut r,
            "a NOTIFY SET (subtree (INBOX {6}\r\nDrafts) (MessageNew))\r\n"
        ),
        "a NOTIFY SET (subtree (INBOX \"[Gmail]/Drafts\") (MessageNew))\r\n"
    );
}

#[test]
fn status_replies_and_hidden_mailboxes() {
    let mut r = gmail();
    assert_eq!(
        resp(
            &mut r,
            "* STATUS \"[Gmail]/Sent Mail\" (MESSAGES 12 UIDNEXT 44)\r\n"
        ),
        "* STATUS \"Sent Items\" (MESSAGES 12 UIDNEXT 44)\r\n"
    );
    assert_eq!(resp(&mut r, "* STATUS {17}\r\n"), "HOLD");
    assert_eq!(
        resp(
            &mut r,
            "* STATUS {17}\r\n[Gmail]/Sent Mail (MESSAGES 1)\r\n"
        ),
        "* STATUS \"Sent Items\" (MESSAGES 1)\r\n"
    );
    assert_eq!(
        resp(&mut r, "* STATUS INBOX (MESSAGES 1)\r\n"),
        "* STATUS INBOX (MESSAGES 1)\r\n"
    );
    // The user's own `Drafts` is shadowed by the mapped one: never shown.
    assert_eq!(
        resp(&mut r, "* LIST (\\HasNoChildren) \"/\" Drafts\r\n"),
        ""
    );
    assert_eq!(
        resp(&mut r, "* LIST (\\HasNoChildren) \"/\" Drafts/old\r\n"),
        ""
    );
    assert_eq!(resp(&mut r, "* LSUB () \"/\" Drafts\r\n"), "");
    assert_eq!(resp(&mut r, "* STATUS Drafts (MESSAGES 1)\r\n"), "");
    assert_eq!(
        resp(&mut r, "* LIST (\\HasNoChildren) \"/\" Draftsman\r\n"),
        "* LIST (\\HasNoChildren) \"/\" Draftsman\r\n"
    );
    // The mapped one is.
    assert_eq!(
        resp(
            &mut r,
            "* LIST (\\HasNoChildren \\Drafts) \"/\" \"[Gmail]/Drafts\"\r\n"
        ),
        "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"\r\n"
    );
}

#[test]
fn list_reply_forms() {
    let mut r = gmail();
    assert_eq!(
        resp(&mut r, "* LIST (\\HasNoChildren) \"/\" {17}\r\n"),
        "HOLD"
    );
    assert_eq!(
        resp(
            &mut r,
            "* LIST (\\HasNoChildren) \"/\" {17}\r\n[Gmail]/Sent Mail\r\n"
        ),
        "* LIST (\\HasNoChildren) \"/\" \"Sent Items\"\r\n"
    );
    // A literal name not mapped is quoted (the reply goes on as one line).
    assert_eq!(
        resp(&mut r, "* LIST () \"/\" {5}\r\na\"b\\c\r\n"),
        "* LIST () \"/\" \"a\\\"b\\\\c\"\r\n"
    );
    let whole = "* LIST () \"/\" {3}\r\na\nb\r\n";
    assert_eq!(resp(&mut r, whole), whole);
    assert_eq!(
        resp(&mut r, "* STATUS {5}\r\nINBOX (MESSAGES 1)\r\n"),
        "* STATUS \"INBOX\" (MESSAGES 1)\r\n"
    );
    assert_eq!(
        resp(&mut r, "* LIST () NIL \"[Gmail]/Trash\"\r\n"),
        "* LIST () NIL \"Deleted items\"\r\n"
    );
    // RFC 5258's OLDNAME after a RENAME.
    assert_eq!(
        resp(&mut r, "* LIST () \"/\" \"[Gmail]/Sent Mail/new\" (\"OLDNAME\" (\"[Gmail]/Sent Mail/old\"))\r\n"),
        "* LIST () \"/\" \"Sent Items/new\" (\"OLDNAME\" (\"Sent Items/old\"))\r\n"
    );
    assert_eq!(
        resp(&mut r, "* LIST () \"/\" x (\"OLDNAME\" ({17}\r\n"),
        "HOLD"
    );
    assert_eq!(
        resp(
            &mut r,
            "* LIST () \"/\" x (\"OLDNAME\" ({17}\r\n[Gmail]/Sent Mail))\r\n"
        ),
        "* LIST () \"/\" x (\"OLDNAME\" (\"Sent Items\"))\r\n"
    );
    assert_eq!(
        resp(
            &mut r,
            "* LIST (\\HasNoChildren) \"/\" \"a\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
        ),
        "* LIST (\\HasNoChildren) \"/\" \"a\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
    );
    // Gmail's XLIST attributes pass.
    assert_eq!(
        resp(
            &mut r,
            "* XLIST (\\HasNoChildren \\AllMail) \"/\" \"[Gmail]/All Mail\"\r\n"
        ),
        "* XLIST (\\HasNoChildren \\AllMail) \"/\" \"[Gmail]/All Mail\"\r\n"
    );
    assert_eq!(
        resp(
            &mut r,
            "* XLIST (\\HasNoChildren \\Inbox) \"/\" \"Inbox\"\r\n"
        ),
        "* XLIST (\\HasNoChildren \\Inbox) \"/\" \"Inbox\"\r\n"
    );
    for broken in [
        "* LIST\r\n",
        "* LIST (\r\n",
        "* LIST () \"/\"\r\n",
        "* LIST () {x} a\r\n",
    ] {
        assert_eq!(resp(&mut r, broken), broken);
    }
}

#[test]
fn message_data_passes_untouched() {
    let mut r = gmail();
    for text in [
        "* 1 FETCH (BODY[] {12}\r\n",
        "* 3 EXISTS\r\n",
        "* SEARCH 1 2 3\r\n",
        "* 1 FETCH (ENVELOPE (NIL \"* LIST () \\\"/\\\" Drafts\" NIL))\r\n",
        "+ Ready\r\n",
        "* OK [UIDVALIDITY 3] x\r\n",
    ] {
        assert_eq!(
            r.response(line(text.as_bytes(), true)),
            Verdict::Pass,
            "{text}"
        );
    }
    // The rest of a FETCH after its literal looks like anything: it is data.
    for text in [
        "* LIST () \"/\" Drafts\r\n",
        "* CAPABILITY IMAP4rev1\r\n",
        " FLAGS (\\Seen))\r\n",
    ] {
        assert_eq!(
            r.response(line(text.as_bytes(), false)),
            Verdict::Pass,
            "{text}"
        );
    }
}

#[test]
fn special_use_is_offered_where_the_provider_lacks_it() {
    let (mut r, _) = rule(view_of(HOSTING, Profile::Outlook, &["IMAP4rev1"]));
    assert_eq!(
        resp(&mut r, "* CAPABILITY IMAP4rev1 IDLE\r\n"),
        "* CAPABILITY IMAP4rev1 IDLE SPECIAL-USE\r\n"
    );
    assert_eq!(
        resp(&mut r, "* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n"),
        "* OK [CAPABILITY IMAP4rev1 IDLE SPECIAL-USE] ready\r\n"
    );
    assert_eq!(
        resp(&mut r, "a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n"),
        "a1 OK [CAPABILITY IMAP4rev1 SPECIAL-USE] Logged in\r\n"
    );
    assert_eq!(
        resp(&mut r, "* CAPABILITY IMAP4rev1 special-use\r\n"),
        "* CAPABILITY IMAP4rev1 special-use\r\n"
    );
    assert_eq!(
        resp(&mut r, "a1 NO [CAPABILITY IMAP4rev1] x\r\n"),
        "a1 NO [CAPABILITY IMAP4rev1] x\r\n"
    );
    assert_eq!(
        resp(&mut r, "a1 OK see [CAPABILITY IMAP4rev1]\r\n"),
        "a1 OK see [CAPABILITY IMAP4rev1]\r\n"
    );
    // A provider with SPECIAL-USE: capabilities pass.
    let mut r = gmail();
    let caps = "* CAPABILITY IMAP4rev1 IDLE\r\n";
    assert_eq!(r.response(line(caps.as_bytes(), true)), Verdict::Pass);
}

#[test]
fn confirmed_folder_changes_are_reported() {
    let (mut r, changes) = rule(view_of(GMAIL, Profile::SuperOffice, &[]));
    cmd(&mut r, "c1 CREATE x\r\n");
    cmd(&mut r, "c2 DELETE y\r\n");
    cmd(&mut r, "c3 RENAME {1}\r\n");
    assert_eq!(changes.load(Ordering::SeqCst), 0);
    cmd(&mut r, "c3 RENAME {1}\r\na b\r\n");
    cmd(&mut r, "c4 SELECT x\r\n");
    resp(&mut r, "c4 OK selected\r\n");
    resp(&mut r, "c2 NO [NONEXISTENT] no such mailbox\r\n");
    assert_eq!(changes.load(Ordering::SeqCst), 0);
    resp(&mut r, "c1 OK done\r\n");
    assert_eq!(changes.load(Ordering::SeqCst), 1);
    // The held RENAME was counted once.
    resp(&mut r, "c3 OK renamed\r\n");
    resp(&mut r, "c3 OK renamed\r\n");
    assert_eq!(changes.load(Ordering::SeqCst), 2);
    assert!(r.changes.is_empty());
}
