//! Folder names the client expects (`[account.folders]`), against Dovecot set up three ways
//! (tests/support/folders.rs): what LIST shows, and that commands through the client's names
//! work on the provider's real folders (checked in the maildir).

use super::*;
use support::folders::{self, attributes_of, names, Layout};

/// Dovecot in `layout` with user `ola`, and mailgate with `accounts` in front of it, each
/// logging in to `ola`.
fn folder_gate(layout: Layout, accounts: Vec<Account>) -> Gate {
    folder_gate_users(
        layout,
        accounts.into_iter().map(|a| (a, UPSTREAM_USER)).collect(),
    )
}

/// As [`folder_gate`], each account logging in to its own Dovecot user (made here).
fn folder_gate_users(layout: Layout, accounts: Vec<(Account, &str)>) -> Gate {
    let dovecot = Dovecot::start(layout.opts());
    let mut users: Vec<&str> = accounts.iter().map(|(_, u)| *u).collect();
    users.sort();
    users.dedup();
    for user in users {
        dovecot.add_user(user, UPSTREAM_PW);
    }
    let server = loopback_server(dovecot.imap_port).0;
    let accounts = accounts
        .into_iter()
        .map(|(a, user)| a.imap(Upstream::plain(&server).login(user, UPSTREAM_PW)));
    Gate::start(dovecot, &config(accounts))
}

fn folder_account(email: &str) -> Account {
    Account::password(email, LOCAL_PW)
}

impl Gate {
    fn login_email(&self, email: &str) -> ImapClient {
        let mut c = self.connect();
        let resp = local_login(&mut c, "L1", email);
        assert_login_ok(&resp, "L1");
        c
    }
}

/// Asserts that the LIST reply `list` marks `wire` (Sent, Drafts, Trash, Junk, Archive names)
/// with their roles' attributes.
fn assert_marked(list: &[u8], wire: &[&str]) {
    for (name, attribute) in
        wire.iter()
            .zip(["\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive"])
    {
        assert!(
            attributes_of(list, name).iter().any(|a| a == attribute),
            "{name} lacks {attribute}: {}",
            text(list)
        );
    }
}

fn text(resp: &[u8]) -> String {
    String::from_utf8_lossy(resp).into_owned()
}

fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: ola@example.no\r\nTo: kari@example.no\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@example.no>\r\n\r\nBody of {subject}.\r\n"
    )
    .into_bytes()
}

/// The bodies stored in the provider's mailbox `wire`.
fn stored(g: &Gate, wire: &str) -> Vec<Vec<u8>> {
    g.dovecot
        .folder_messages(UPSTREAM_USER, wire)
        .into_iter()
        .map(|(_, b)| b)
        .collect()
}

/// SuperOffice's names on a Gmail-like provider: LIST shows the client's names with the
/// attributes and never the provider's; SELECT, APPEND, STATUS, COPY, MOVE, CREATE, RENAME and
/// DELETE through them act on the real folders; wildcards match the names the client sees;
/// a name sent as a literal is mapped too.
#[test]
fn superoffice_names_on_a_gmail_like_provider() {
    let g = folder_gate(
        Layout::Gmail,
        vec![folder_account(EMAIL).folders("client", "superoffice")],
    );
    let mut c = g.login_email(EMAIL);

    let list = c.ok("l1", "LIST \"\" \"*\"");
    let listed = names(&list, "LIST");
    for (client, attribute) in [
        ("Sent Items", "\\Sent"),
        ("Drafts", "\\Drafts"),
        ("Deleted items", "\\Trash"),
    ] {
        assert!(
            attributes_of(&list, client).iter().any(|a| a == attribute),
            "{client}: {}",
            text(&list)
        );
    }
    for hidden in ["[Gmail]/Sent Mail", "[Gmail]/Drafts", "[Gmail]/Trash"] {
        assert!(
            !listed.iter().any(|n| n == hidden),
            "{hidden} shown: {listed:?}"
        );
    }
    // What is not mapped keeps its name.
    for kept in ["INBOX", "[Gmail]/Spam", "[Gmail]/All Mail"] {
        assert!(
            listed.iter().any(|n| n == kept),
            "{kept} missing: {listed:?}"
        );
    }

    // APPEND and SELECT through the client's name reach the real folder.
    let sent = message("sent-1");
    let r = c.append_sync("a1", "Sent Items", &sent);
    assert_tagged(&r, "a1", "OK");
    assert_eq!(stored(&g, "[Gmail]/Sent Mail"), std::slice::from_ref(&sent));
    let r = c.ok("s1", "SELECT \"Sent Items\"");
    assert!(contains(&r, b"* 1 EXISTS"), "{}", text(&r));

    // STATUS answers with the client's name.
    let r = c.ok("st", "STATUS \"Deleted items\" (MESSAGES)");
    assert!(
        contains(&r, b"* STATUS \"Deleted items\" (MESSAGES 0)"),
        "{}",
        text(&r)
    );

    // COPY and UID MOVE from the inbox into mapped folders.
    g.dovecot
        .fill_maildir(UPSTREAM_USER, &[message("in-1"), message("in-2")]);
    c.ok("s2", "SELECT INBOX");
    c.ok("cp", "COPY 1 \"Deleted items\"");
    assert_eq!(stored(&g, "[Gmail]/Trash"), [message("in-1")]);
    c.ok("mv", "UID MOVE 2 Drafts");
    assert_eq!(stored(&g, "[Gmail]/Drafts"), [message("in-2")]);

    // A folder below a mapped one follows it; CREATE, LIST, RENAME, DELETE.
    c.ok("c1", "CREATE \"Sent Items/2024\"");
    assert!(g
        .dovecot
        .folder_dir(UPSTREAM_USER, "[Gmail]/Sent Mail/2024")
        .is_dir());
    let r = c.ok("l2", "LIST \"\" \"Sent Items/*\"");
    assert_eq!(names(&r, "LIST"), ["Sent Items/2024"], "{}", text(&r));
    c.ok("r1", "RENAME \"Sent Items/2024\" \"Sent Items/2025\"");
    assert!(g
        .dovecot
        .folder_dir(UPSTREAM_USER, "[Gmail]/Sent Mail/2025")
        .is_dir());
    c.ok("d1", "DELETE \"Sent Items/2025\"");
    assert!(!g
        .dovecot
        .folder_dir(UPSTREAM_USER, "[Gmail]/Sent Mail/2025")
        .exists());

    // An ordinary folder is untouched by the mapping.
    c.ok("c2", "CREATE Kunder");
    assert!(g.dovecot.folder_dir(UPSTREAM_USER, "Kunder").is_dir());
    c.ok("r2", "RENAME Kunder Prosjekter");
    c.ok("d2", "DELETE Prosjekter");

    // Wildcards match the names the client sees.
    let top = names(&c.ok("l3", "LIST \"\" \"%\""), "LIST");
    assert!(top.iter().any(|n| n == "Sent Items"), "{top:?}");
    assert!(top.iter().any(|n| n == "Deleted items"), "{top:?}");
    assert!(!top.iter().any(|n| n.starts_with("[Gmail]/")), "{top:?}");
    let sent_star = names(&c.ok("l4", "LIST \"\" \"Sent*\""), "LIST");
    assert_eq!(sent_star, ["Sent Items"]);
    let gmail = names(&c.ok("l5", "LIST \"[Gmail]/\" \"%\""), "LIST");
    assert!(gmail.iter().any(|n| n == "[Gmail]/Spam"), "{gmail:?}");
    assert!(!gmail.iter().any(|n| n == "[Gmail]/Sent Mail"), "{gmail:?}");

    // A name as a synchronizing literal.
    c.send(b"s3 SELECT {10}\r\n");
    let cont = c.read_continuation();
    assert!(cont.starts_with(b"+"), "{}", text(&cont));
    c.send(b"Sent Items\r\n");
    let r = c.read_until_tagged("s3");
    assert_tagged(&r, "s3", "OK");
    assert!(contains(&r, b"* 1 EXISTS"), "{}", text(&r));

    c.ok("z", "LOGOUT");

    // python's imaplib: LIST shows the client's names; an APPEND to one lands in the real
    // folder.
    let port = g.mailgate.imap_addr.port().to_string();
    let login = ["--port", &port, "--user", EMAIL, "--password", LOCAL_PW];
    let listed = python_ok(&[&["session"][..], &login].concat());
    assert!(listed.contains("\"/\" \"Sent Items\""), "{listed}");
    assert!(!listed.contains("[Gmail]/Sent Mail"), "{listed}");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), message("py-1")).unwrap();
    let path = file.path().display().to_string();
    // imaplib sends the mailbox argument as given: quoting is the caller's job.
    let args = ["append", "--file", &path, "--mailbox", "\"Deleted items\""];
    let out = python_ok(&[&args[..], &login].concat());
    assert!(out.contains("\nappend OK"), "{out}");
    assert!(stored(&g, "[Gmail]/Trash").contains(&message("py-1")));
    g.finish();
}

/// Norwegian, Danish and Dutch Microsoft 365 names without SPECIAL-USE: with no names
/// configured the client is offered SPECIAL-USE and finds the folders by their attributes;
/// with the Outlook profile it sees Outlook's names, including for a non-ASCII folder.
#[test]
fn localized_folders_without_special_use() {
    let g = folder_gate_users(
        Layout::Localized,
        vec![
            (folder_account("plain@example.no"), UPSTREAM_USER),
            (
                folder_account("outlook@example.no").folders("client", "outlook"),
                UPSTREAM_USER,
            ),
            (folder_account("da@example.no"), "da"),
            (
                folder_account("nl@example.no").folders("client", "outlook"),
                "nl",
            ),
        ],
    );
    folders::create(&g.dovecot, UPSTREAM_USER, UPSTREAM_PW, folders::NORWEGIAN);
    folders::create(&g.dovecot, "da", UPSTREAM_PW, folders::DANISH);
    folders::create(&g.dovecot, "nl", UPSTREAM_PW, folders::DUTCH);

    let mut c = g.login_email("plain@example.no");
    let caps = c.ok("k", "CAPABILITY");
    assert!(contains(&caps, b" SPECIAL-USE"), "{}", text(&caps));
    let list = c.ok("l1", "LIST \"\" \"*\"");
    assert_marked(&list, folders::NORWEGIAN);
    // RFC 6154's selection option: only the folders with a role.
    let special = names(&c.ok("l2", "LIST (SPECIAL-USE) \"\" \"*\""), "LIST");
    let mut want: Vec<String> = folders::NORWEGIAN.iter().map(|s| s.to_string()).collect();
    let mut got = special.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    c.ok("z", "LOGOUT");

    let mut c = g.login_email("outlook@example.no");
    let list = c.ok("l1", "LIST \"\" \"*\"");
    let listed = names(&list, "LIST");
    for (client, provider) in [
        ("Sent Items", "Sendte elementer"),
        ("Drafts", "Utkast"),
        ("Deleted Items", "Slettede elementer"),
        ("Junk Email", "S&APg-ppelpost"),
    ] {
        assert!(listed.iter().any(|n| n == client), "{client}: {listed:?}");
        assert!(
            !listed.iter().any(|n| n == provider),
            "{provider}: {listed:?}"
        );
    }
    // "Arkiv" → Outlook's "Archive".
    assert!(listed.iter().any(|n| n == "Archive"), "{listed:?}");
    let junk = message("junk-1");
    assert_tagged(&c.append_sync("a1", "Junk Email", &junk), "a1", "OK");
    assert_eq!(stored(&g, "S&APg-ppelpost"), [junk]);
    c.ok("z", "LOGOUT");

    // Danish: recognised by name and marked.
    let mut c = g.login_email("da@example.no");
    let list = c.ok("l1", "LIST \"\" \"*\"");
    assert_marked(&list, folders::DANISH);
    c.ok("z", "LOGOUT");

    // Dutch with Outlook's names: a message saved to "Sent Items" lands in "Verzonden items".
    let mut c = g.login_email("nl@example.no");
    let listed = names(&c.ok("l1", "LIST \"\" \"*\""), "LIST");
    assert!(listed.iter().any(|n| n == "Sent Items"), "{listed:?}");
    assert!(!listed.iter().any(|n| n == "Verzonden items"), "{listed:?}");
    let sent = message("nl-sent");
    assert_tagged(&c.append_sync("a1", "Sent Items", &sent), "a1", "OK");
    let in_dutch: Vec<Vec<u8>> = g
        .dovecot
        .folder_messages("nl", "Verzonden items")
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    assert_eq!(in_dutch, [sent]);
    c.ok("z", "LOGOUT");
    g.finish();
}

/// Exchange-like (no SPECIAL-USE, no LIST-EXTENDED) with Thunderbird's names: mbsync, a real
/// client, syncs the client's names both ways.
#[test]
fn thunderbird_names_on_an_exchange_like_provider_with_mbsync() {
    let g = folder_gate(
        Layout::Exchange,
        vec![folder_account(EMAIL).folders("client", "thunderbird")],
    );
    let mut direct = g.direct();
    let filed = message("filed-1");
    let r = direct.append_sync("a1", "Sent Items", &filed);
    assert_tagged(&r, "a1", "OK");
    direct.ok("z", "LOGOUT");

    let local = tempfile::tempdir().expect("tempdir");
    let out = mbsync(&g, local.path());
    // The client's names, with the provider's content; the provider's names nowhere.
    let sent = local.path().join("Sent");
    assert!(
        sent.join("cur").is_dir() || sent.join("new").is_dir(),
        "{out}"
    );
    assert_eq!(
        maildir_bodies(&sent)
            .iter()
            .map(|m| plain(m))
            .collect::<Vec<_>>(),
        [plain(&filed)],
        "{out}"
    );
    for name in ["Drafts", "Trash", "Junk", "Archives"] {
        assert!(local.path().join(name).is_dir(), "{name}: {out}");
    }
    for provider in ["Sent Items", "Deleted Items", "Junk Email", "Archive"] {
        assert!(!local.path().join(provider).exists(), "{provider}: {out}");
    }

    // A message put into the local Trash reaches the provider's Deleted Items.
    let trash_new = local.path().join("Trash/new");
    std::fs::create_dir_all(&trash_new).unwrap();
    let gone = message("gone-1");
    std::fs::write(trash_new.join("1700000000.1.local"), &gone).unwrap();
    let out = mbsync(&g, local.path());
    assert_eq!(
        stored(&g, "Deleted Items")
            .iter()
            .map(|m| plain(m))
            .collect::<Vec<_>>(),
        [plain(&gone)],
        "{out}"
    );
    g.finish();
}

/// Runs `mbsync -a` between mailgate (IMAP, the client's names) and the maildir `local`.
fn mbsync(g: &Gate, local: &std::path::Path) -> String {
    let rc = local.join("mbsyncrc");
    let conf = format!(
        "IMAPAccount gate\nHost 127.0.0.1\nPort {port}\nUser {EMAIL}\nPass {LOCAL_PW}\n\
         SSLType None\nAuthMechs LOGIN\n\n\
         IMAPStore remote\nAccount gate\n\n\
         MaildirStore local\nPath {path}/\nInbox {path}/INBOX\nSubFolders Verbatim\n\n\
         Channel sync\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\nSyncState *\n\
         Sync All\nExpunge None\n",
        port = g.mailgate.imap_addr.port(),
        path = local.display(),
    );
    std::fs::write(&rc, conf).unwrap();
    let mut cmd = std::process::Command::new("mbsync");
    cmd.arg("-c").arg(&rc).arg("-a");
    let out = support::proc::run_with_timeout(cmd, None, Duration::from_secs(60));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "mbsync failed:\n{all}");
    all
}

/// A message as mbsync keeps it locally: LF line ends, without the `X-TUID` header mbsync
/// adds to find its uploads again.
fn plain(message: &[u8]) -> String {
    String::from_utf8_lossy(message)
        .replace("\r\n", "\n")
        .lines()
        .filter(|l| !l.starts_with("X-TUID: "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The message files of a local maildir folder.
fn maildir_bodies(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            for e in entries.flatten() {
                out.push(std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}
