//! LIST replies as three kinds of server send them, read into roles.

use super::*;

fn entries(replies: &[&str]) -> Vec<Entry> {
    replies
        .iter()
        .map(|r| parse_list(r.as_bytes()).unwrap_or_else(|| panic!("does not parse: {r}")))
        .collect()
}

fn names(f: &Folders) -> Vec<(Role, String, bool)> {
    f.roles
        .iter()
        .map(|(r, (e, marked))| (*r, e.name.clone(), *marked))
        .collect()
}

#[test]
fn a_reply_is_read_whole() {
    let e = parse_list(b"* LIST (\\HasNoChildren \\Sent) \"/\" \"[Gmail]/Sent Mail\"\r\n").unwrap();
    assert_eq!(e.name, "[Gmail]/Sent Mail");
    assert_eq!(e.wire, b"[Gmail]/Sent Mail");
    assert_eq!(e.delimiter, Some('/'));
    assert_eq!(e.attributes, ["\\HasNoChildren", "\\Sent"]);

    // A name as a literal, modified UTF-7, no delimiter, XLIST.
    let e = parse_list(b"* LIST () NIL {12}\r\nEntw&APw-rfe\r\n").unwrap();
    assert_eq!((e.name.as_str(), e.delimiter), ("Entwürfe", None));
    let e = parse_list(b"* XLIST (\\HasNoChildren \\Spam) \"/\" \"[Gmail]/Spam\"\r\n").unwrap();
    assert_eq!(e.attributes, ["\\HasNoChildren", "\\Spam"]);
    assert_eq!(
        parse_list(b"* LIST (\\Noselect) \".\" INBOX\r\n")
            .unwrap()
            .name,
        "INBOX"
    );

    for other in [
        &b"* LSUB () \"/\" Sent\r\n"[..],
        b"* STATUS Sent (MESSAGES 1)\r\n",
        b"a1 OK LIST completed\r\n",
        b"* LIST (\\Sent \"/\" Sent\r\n",
    ] {
        assert_eq!(
            parse_list(other),
            None,
            "{}",
            String::from_utf8_lossy(other)
        );
    }
}

#[test]
fn gmail_marks_its_folders() {
    let f = Folders::learn(&entries(&[
        "* LIST (\\HasNoChildren) \"/\" \"INBOX\"\r\n",
        "* LIST (\\HasChildren \\Noselect) \"/\" \"[Gmail]\"\r\n",
        "* LIST (\\All \\HasNoChildren) \"/\" \"[Gmail]/All Mail\"\r\n",
        "* LIST (\\Drafts \\HasNoChildren) \"/\" \"[Gmail]/Drafts\"\r\n",
        "* LIST (\\HasNoChildren \\Sent) \"/\" \"[Gmail]/Gesendet\"\r\n",
        "* LIST (\\HasNoChildren \\Junk) \"/\" \"[Gmail]/Spam\"\r\n",
        "* LIST (\\HasNoChildren \\Trash) \"/\" \"[Gmail]/Papierkorb\"\r\n",
        // A user's own folder that happens to carry a known name is not taken over.
        "* LIST (\\HasNoChildren) \"/\" \"Sent\"\r\n",
    ]));
    assert_eq!(
        names(&f),
        [
            (Role::Sent, "[Gmail]/Gesendet".into(), true),
            (Role::Drafts, "[Gmail]/Drafts".into(), true),
            (Role::Trash, "[Gmail]/Papierkorb".into(), true),
            (Role::Junk, "[Gmail]/Spam".into(), true),
        ]
    );
}

#[test]
fn exchange_in_norwegian_is_known_by_name() {
    let f = Folders::learn(&entries(&[
        "* LIST (\\HasNoChildren) \"/\" INBOX\r\n",
        "* LIST (\\HasNoChildren) \"/\" \"Sendte elementer\"\r\n",
        "* LIST (\\HasNoChildren) \"/\" Utkast\r\n",
        "* LIST (\\HasNoChildren) \"/\" \"Slettede elementer\"\r\n",
        "* LIST (\\HasNoChildren) \"/\" S&APg-ppelpost\r\n",
        "* LIST (\\HasNoChildren) \"/\" Arkiv\r\n",
        "* LIST (\\HasNoChildren) \"/\" Kunder\r\n",
    ]));
    assert_eq!(
        names(&f),
        [
            (Role::Sent, "Sendte elementer".into(), false),
            (Role::Drafts, "Utkast".into(), false),
            (Role::Trash, "Slettede elementer".into(), false),
            (Role::Junk, "Søppelpost".into(), false),
            (Role::Archive, "Arkiv".into(), false),
        ]
    );
    assert_eq!(f.get(Role::Junk).unwrap().wire, b"S&APg-ppelpost");
}

#[test]
fn a_hosting_server_nests_under_the_inbox() {
    let f = Folders::learn(&entries(&[
        "* LIST (\\HasChildren) \".\" INBOX\r\n",
        "* LIST (\\HasNoChildren) \".\" INBOX.Sent\r\n",
        "* LIST (\\HasNoChildren \\Noselect) \".\" INBOX.Trash\r\n",
        "* LIST (\\HasNoChildren) \".\" INBOX.spam\r\n",
    ]));
    // A \Noselect mailbox plays no role.
    assert_eq!(
        names(&f),
        [
            (Role::Sent, "INBOX.Sent".into(), false),
            (Role::Junk, "INBOX.spam".into(), false),
        ]
    );
    assert_eq!(f.get(Role::Trash), None);
}
