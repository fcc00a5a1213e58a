//! LIST, LSUB and XLIST through the folder rule: the command the provider gets, and which of
//! its replies the client sees, under which name.

use super::tests::{cmd, gmail, resp, rule, view_of, GMAIL, HOSTING};
use super::*;
use crate::imap::folders::Profile;

/// Gmail's replies to `LIST "" "*"` plus a child of Sent.
const GMAIL_ALL: &[&str] = &[
    "* LIST (\\HasNoChildren) \"/\" INBOX\r\n",
    "* LIST (\\HasChildren \\Noselect) \"/\" \"[Gmail]\"\r\n",
    "* LIST (\\HasChildren \\Sent) \"/\" \"[Gmail]/Sent Mail\"\r\n",
    "* LIST (\\HasNoChildren) \"/\" \"[Gmail]/Sent Mail/2024\"\r\n",
    "* LIST (\\HasNoChildren \\Drafts) \"/\" \"[Gmail]/Drafts\"\r\n",
    "* LIST (\\HasNoChildren \\Trash) \"/\" \"[Gmail]/Trash\"\r\n",
    "* LIST (\\HasNoChildren \\All) \"/\" \"[Gmail]/All Mail\"\r\n",
    "* LIST (\\HasNoChildren) \"/\" Drafts\r\n",
];

/// The names the client is shown of `replies` (in order), after the rule.
fn shown(r: &mut FolderNames, replies: &[&str]) -> Vec<String> {
    replies
        .iter()
        .map(|l| resp(r, l))
        .filter(|l| !l.is_empty())
        .map(|l| {
            let at = l.rfind("\" ").map_or(0, |i| i + 2);
            l[at..].trim_end().to_owned()
        })
        .collect()
}

#[test]
fn percent_shows_mapped_folders_at_the_top_level() {
    let mut r = gmail();
    assert_eq!(
        cmd(&mut r, "a LIST \"\" \"%\"\r\n"),
        "a LIST \"\" (\"%\" \"[Gmail]/Sent Mail\" \"[Gmail]/Drafts\" \"[Gmail]/Trash\")\r\n"
    );
    // What the provider sends for these patterns.
    let replies = [
        GMAIL_ALL[0],
        GMAIL_ALL[1],
        GMAIL_ALL[7],
        GMAIL_ALL[2],
        GMAIL_ALL[4],
        GMAIL_ALL[5],
    ];
    assert_eq!(
        shown(&mut r, &replies),
        [
            "INBOX",
            "\"[Gmail]\"",
            "\"Sent Items\"",
            "\"Drafts\"",
            "\"Deleted items\""
        ]
    );
    resp(&mut r, "a OK LIST done\r\n");
    assert!(r.lists.is_empty());
    // After the LIST no filter applies.
    assert_eq!(shown(&mut r, &[GMAIL_ALL[6]]), ["\"[Gmail]/All Mail\""]);
}

#[test]
fn patterns_with_a_prefix() {
    let mut r = gmail();
    assert_eq!(
        cmd(&mut r, "a LIST \"\" \"Sent*\"\r\n"),
        "a LIST \"\" (\"Sent*\" \"[Gmail]/Sent Mail\" \"[Gmail]/Sent Mail/*\")\r\n"
    );
    assert_eq!(
        shown(&mut r, &GMAIL_ALL[2..4]),
        ["\"Sent Items\"", "\"Sent Items/2024\""]
    );
    resp(&mut r, "a OK done\r\n");
    // Inside a mapped tree the pattern itself is mapped (the reference prefixed).
    assert_eq!(
        cmd(&mut r, "b LIST \"Sent Items/\" \"%\"\r\n"),
        "b LIST \"\" \"[Gmail]/Sent Mail/%\"\r\n"
    );
    assert_eq!(shown(&mut r, &GMAIL_ALL[3..4]), ["\"Sent Items/2024\""]);
    resp(&mut r, "b OK done\r\n");
    // A name without wildcards.
    assert_eq!(
        cmd(&mut r, "c LIST \"\" \"Sent Items\"\r\n"),
        "c LIST \"\" \"[Gmail]/Sent Mail\"\r\n"
    );
    resp(&mut r, "c OK done\r\n");
    // The provider's own names are not the client's: `[Gmail]/*` shows no mapped folder.
    assert_eq!(
        cmd(&mut r, "d LIST \"\" \"[Gmail]/*\"\r\n"),
        "d LIST \"\" \"[Gmail]/*\"\r\n"
    );
    assert_eq!(shown(&mut r, &GMAIL_ALL[2..7]), ["\"[Gmail]/All Mail\""]);
    resp(&mut r, "d OK done\r\n");
}

#[test]
fn star_and_delimiter_queries_pass() {
    let mut r = gmail();
    for text in [
        "a LIST \"\" \"*\"\r\n",
        "a LIST \"\" \"\"\r\n",
        "a LIST \"#news.\" \"\"\r\n",
        "a LIST \"\" INBOX\r\n",
        "a LIST \"\" \"Other/%\"\r\n",
        "a LSUB \"\" \"*\"\r\n",
        "a LIST (SUBSCRIBED) \"\" \"*\" RETURN (CHILDREN)\r\n",
    ] {
        assert_eq!(
            r.command(super::tests::line(text.as_bytes(), true)),
            Verdict::Pass,
            "{text}"
        );
    }
    // `*` shows every mapped folder by the client's name, and hides the shadowed one.
    let mut r = gmail();
    cmd(&mut r, "a LIST \"\" \"*\"\r\n");
    assert_eq!(
        shown(&mut r, GMAIL_ALL),
        [
            "INBOX",
            "\"[Gmail]\"",
            "\"Sent Items\"",
            "\"Sent Items/2024\"",
            "\"Drafts\"",
            "\"Deleted items\"",
            "\"[Gmail]/All Mail\""
        ]
    );
    resp(&mut r, "a OK done\r\n");
    cmd(&mut r, "b LIST \"\" \"\"\r\n");
    assert_eq!(
        resp(&mut r, "* LIST (\\Noselect) \"/\" \"\"\r\n"),
        "* LIST (\\Noselect) \"/\" \"\"\r\n"
    );
}

#[test]
fn providers_without_list_extended_are_asked_for_everything() {
    let (mut r, _) = rule(view_of(
        GMAIL,
        Profile::SuperOffice,
        &["IMAP4rev1", "SPECIAL-USE"],
    ));
    assert_eq!(
        cmd(&mut r, "a LIST \"\" \"%\"\r\n"),
        "a LIST \"\" \"*\"\r\n"
    );
    assert_eq!(
        shown(&mut r, GMAIL_ALL),
        [
            "INBOX",
            "\"[Gmail]\"",
            "\"Sent Items\"",
            "\"Drafts\"",
            "\"Deleted items\""
        ]
    );
    resp(&mut r, "a OK done\r\n");
    // One mapped name needs no `*`.
    assert_eq!(
        cmd(&mut r, "b LIST \"\" Drafts\r\n"),
        "b LIST \"\" \"[Gmail]/Drafts\"\r\n"
    );
    resp(&mut r, "b OK done\r\n");
    // LSUB and XLIST take one pattern whatever the provider supports.
    let mut r = gmail();
    assert_eq!(
        cmd(&mut r, "a LSUB \"\" \"Sent%\"\r\n"),
        "a LSUB \"\" \"*\"\r\n"
    );
    assert_eq!(
        shown(
            &mut r,
            &[
                "* LSUB () \"/\" INBOX\r\n",
                "* LSUB () \"/\" \"[Gmail]/Sent Mail\"\r\n"
            ]
        ),
        ["\"Sent Items\""]
    );
    resp(&mut r, "a OK done\r\n");
    assert_eq!(
        cmd(&mut r, "b XLIST \"\" \"%\"\r\n"),
        "b XLIST \"\" \"*\"\r\n"
    );
}

#[test]
fn several_patterns_and_literals() {
    let mut r = gmail();
    assert_eq!(
        cmd(
            &mut r,
            "a LIST \"\" (\"Sent Items\" INBOX) RETURN (CHILDREN)\r\n"
        ),
        "a LIST \"\" (\"[Gmail]/Sent Mail\" \"INBOX\") RETURN (CHILDREN)\r\n"
    );
    resp(&mut r, "a OK done\r\n");
    assert_eq!(cmd(&mut r, "b LIST \"\" {4}\r\n"), "HOLD");
    assert_eq!(
        cmd(&mut r, "b LIST \"\" {4}\r\nSent\r\n"),
        "b LIST \"\" \"Sent\"\r\n"
    );
    assert_eq!(cmd(&mut r, "c LIST {0}\r\n"), "HOLD");
    assert_eq!(cmd(&mut r, "c LIST {0}\r\n {1}\r\n"), "HOLD");
    assert_eq!(
        cmd(&mut r, "c LIST {0}\r\n {10}\r\nSent Items\r\n"),
        "c LIST \"\" \"[Gmail]/Sent Mail\"\r\n"
    );
    assert_eq!(cmd(&mut r, "d LIST \"\" (INBOX {1}\r\n"), "HOLD");
    // Held commands are remembered once.
    assert_eq!(r.lists.len(), 2);
    // Forms the rule does not know pass (and their replies are not filtered).
    for text in [
        "e LIST\r\n",
        "e LIST \"\"\r\n",
        "e LIST \"\" x y\r\n",
        "e LIST \"\" x RETURN\r\n",
    ] {
        assert_eq!(cmd(&mut r, text), text);
    }
    assert!(r.lists.iter().skip(2).all(|p| p.patterns.is_empty()));
    // Too many patterns to match replies against: passed on, replies not filtered.
    let many = format!("f LIST \"\" ({})\r\n", vec!["%"; 65].join(" "));
    assert_eq!(cmd(&mut r, &many), many);
    let long = format!("g LIST \"\" \"{}%\"\r\n", "x".repeat(4096));
    assert_eq!(cmd(&mut r, &long), long);
    assert!(r.lists.iter().rev().take(2).all(|p| p.patterns.is_empty()));
    // Found by fuzzing: a pattern that cannot be quoted is not turned into a literal.
    let nul = "h LIST \"\" (\"\0(\" \"*Sent*\")\r\n";
    assert_eq!(cmd(&mut r, nul), nul);
}

#[test]
fn special_use_selection_where_the_provider_lacks_it() {
    let (mut r, _) = rule(view_of(
        HOSTING,
        Profile::Outlook,
        &["IMAP4rev1", "LIST-EXTENDED", "LIST-STATUS"],
    ));
    assert_eq!(
        cmd(
            &mut r,
            "a LIST (SPECIAL-USE) \"\" \"*\" RETURN (SPECIAL-USE)\r\n"
        ),
        "a LIST \"\" \"*\"\r\n"
    );
    let replies = [
        "* LIST (\\HasChildren) \".\" INBOX\r\n",
        "* STATUS INBOX (MESSAGES 9)\r\n",
        "* LIST (\\HasNoChildren) \".\" INBOX.Sent\r\n",
        "* STATUS INBOX.Sent (MESSAGES 3)\r\n",
        "* LIST (\\HasNoChildren) \".\" \"INBOX.Entw&APw-rfe\"\r\n",
        "* LIST (\\HasNoChildren) \".\" INBOX.Trash\r\n",
    ];
    let out: Vec<String> = replies.iter().map(|l| resp(&mut r, l)).collect();
    assert_eq!(
        out,
        [
            "",
            "",
            "* LIST (\\HasNoChildren \\Sent) \".\" \"Sent Items\"\r\n",
            "* STATUS \"Sent Items\" (MESSAGES 3)\r\n",
            "",
            "* LIST (\\HasNoChildren \\Trash) \".\" \"Deleted Items\"\r\n",
        ]
    );
    resp(&mut r, "a OK done\r\n");
    assert_eq!(
        cmd(
            &mut r,
            "b LIST (SUBSCRIBED SPECIAL-USE) \"\" \"*\" RETURN (CHILDREN special-use STATUS (MESSAGES UNSEEN))\r\n"
        ),
        "b LIST (SUBSCRIBED) \"\" \"*\" RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n"
    );
    assert_eq!(
        cmd(&mut r, "c LIST \"\" \"%\" RETURN (SPECIAL-USE)\r\n"),
        "c LIST \"\" (\"%\" \"INBOX.Sent\" \"INBOX.Drafts\" \"INBOX.Trash\")\r\n"
    );
    // Only the selection option selects.
    assert!(!r.lists[1].special_only && r.lists[0].special_only);
    // A provider with SPECIAL-USE gets the options as they are.
    let mut r = gmail();
    let text = "a LIST (SPECIAL-USE) \"\" \"*\" RETURN (SPECIAL-USE)\r\n";
    assert_eq!(cmd(&mut r, text), text);
}

#[test]
fn pipelined_lists_are_answered_in_order() {
    let mut r = gmail();
    cmd(&mut r, "a LIST \"\" \"%\"\r\n");
    cmd(&mut r, "b LIST \"\" \"*\"\r\n");
    let child = "* LIST (\\HasNoChildren) \"/\" \"[Gmail]/Sent Mail/2024\"\r\n";
    assert_eq!(resp(&mut r, child), "");
    // A tagged reply to another command leaves the LISTs waiting.
    resp(&mut r, "x OK noop\r\n");
    resp(&mut r, "a OK done\r\n");
    assert_eq!(
        resp(&mut r, child),
        "* LIST (\\HasNoChildren) \"/\" \"Sent Items/2024\"\r\n"
    );
    resp(&mut r, "b OK done\r\n");
    assert!(r.lists.is_empty());
    // No more than MAX_PENDING are remembered.
    for i in 0..MAX_PENDING + 5 {
        cmd(&mut r, &format!("t{i} LIST \"\" \"%\"\r\n"));
    }
    assert_eq!(r.lists.len(), MAX_PENDING);
    assert_eq!(r.lists[0].tag, b"t5");
}

#[test]
fn xlist_gets_gmail_words() {
    let replies = [
        "* LIST (\\HasNoChildren) \".\" INBOX\r\n",
        "* LIST (\\HasNoChildren) \".\" INBOX.Spam\r\n",
    ];
    let (mut r, _) = rule(view_of(&replies, Profile::Outlook, &[]));
    assert_eq!(
        resp(&mut r, "* XLIST (\\HasNoChildren) \".\" INBOX.Spam\r\n"),
        "* XLIST (\\HasNoChildren \\Spam) \".\" \"Junk Email\"\r\n"
    );
    assert_eq!(
        resp(&mut r, "* LIST () \".\" INBOX.Spam\r\n"),
        "* LIST (\\Junk) \".\" \"Junk Email\"\r\n"
    );
    assert_eq!(
        resp(&mut r, "* XLIST (\\Spam) \".\" INBOX.Spam\r\n"),
        "* XLIST (\\Spam) \".\" \"Junk Email\"\r\n"
    );
}

/// First in the session's rules, before the gateway's own rule: both apply.
#[test]
fn before_the_gateway() {
    use crate::imap::rewrite::{Gateway, Rules};
    let (r, _) = rule(view_of(HOSTING, Profile::Outlook, &["IMAP4rev1"]));
    let mut rules = Rules::new(vec![Box::new(r), Box::new(Gateway::new(1 << 20))]);
    let append = b"a APPEND \"Sent Items\" (\\Seen) {310}\r\n";
    assert_eq!(
        rules.command(super::tests::line(append, true)),
        Verdict::ReplaceAndAnswer {
            forward: b"a APPEND \"INBOX.Sent\" (\\Seen) {310+}\r\n".to_vec(),
            answer: b"+ Ready for literal data\r\n".to_vec(),
        }
    );
    assert_eq!(
        rules.command(super::tests::line(b"b SELECT {10}\r\n", true)),
        Verdict::Hold
    );
    assert_eq!(
        rules.response(super::tests::line(
            b"* CAPABILITY IMAP4rev1 STARTTLS IDLE\r\n",
            true
        )),
        Verdict::Replace(b"* CAPABILITY IMAP4rev1 IDLE SPECIAL-USE\r\n".to_vec())
    );
}
