//! The Sent copy (`[account.folders] sent_copy`) with a real Postfix as the SMTP provider and a
//! real Dovecot as the account's IMAP server, mailgate in front of both:
//!
//! - `gateway`: after each send through mailgate (DATA with a dot-stuffed line, and BDAT),
//!   exactly one copy lands in the account's Sent folder (`Sent Mail`, marked `\Sent`), flagged
//!   Seen (maildir `:2,S`), byte for byte the message as sent (unstuffed, CRLF);
//! - `client`: no copy; `provider`: no copy, the submission is recorded;
//! - an IMAP server that refuses connections: the send still gets its `250`, and the upload's
//!   failure shows as `append_failed`.
//!
//! The upload runs after the `250`, so the test waits for it with a bounded poll of the
//! metric. No durations are asserted; all traffic stays on 127.0.0.1.
//!
//! Run: `cargo test --test sent_copy`

mod support;

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use support::config::TomlValue;
use support::postfix::DOMAIN;
use support::proc::{poll, RefusingPort};
use support::scrape::{assert_bounded, fetch, Scrape};
use support::smtp_client::Raw;
use support::{Account, Dovecot, DovecotOpts, GateConfig, Mailgate, Postfix, Upstream};

const LOCAL_PASSWORD: &str = "local-pw";
const UPSTREAM_PASSWORD: &str = "upstream-secret";
const SENT_COPIES: &str = "mailgate_sent_copies_total";
/// How long to wait for the upload after the `250` (a bound on a hang, not a measurement).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(60);
const STEP: Duration = Duration::from_millis(50);

/// A TOML value written as it is (an inline table).
struct Verbatim(String);

impl TomlValue for Verbatim {
    fn toml(&self) -> String {
        self.0.clone()
    }
}

/// `user@DOMAIN` sending through `pf`, its mailbox at `imap`, with this `sent_copy`.
fn account(user: &str, imap: Upstream, pf: &Postfix, sent_copy: &str) -> Account {
    Account::password(&format!("{user}@{DOMAIN}"), LOCAL_PASSWORD)
        .set(
            "folders",
            Verbatim(format!("{{ sent_copy = \"{sent_copy}\" }}")),
        )
        .imap(imap.password(UPSTREAM_PASSWORD))
        .smtp(pf.starttls_upstream())
}

/// An IMAP Dovecot whose Sent folder is `Sent Mail` (marked `\Sent`, made at first login).
fn imap_dovecot(users: &[&str]) -> Dovecot {
    let mut opts = DovecotOpts::plaintext_only();
    opts.extra = "namespace inbox {\n  inbox = yes\n  separator = /\n  \
                  mailbox \"Sent Mail\" {\n    special_use = \\Sent\n    auto = create\n  }\n}\n"
        .into();
    let d = Dovecot::start(opts);
    for user in users {
        d.add_user(&format!("{user}@{DOMAIN}"), UPSTREAM_PASSWORD);
    }
    d
}

/// The files in `user`'s Sent folder (`Maildir/.Sent Mail`), name and bytes.
fn sent_files(d: &Dovecot, user: &str) -> Vec<(String, Vec<u8>)> {
    let folder: PathBuf = d.maildir(&format!("{user}@{DOMAIN}")).join(".Sent Mail");
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = fs::read_dir(folder.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            out.push((name, fs::read(e.path()).expect("read maildir file")));
        }
    }
    out.sort();
    out
}

fn scrape(gw: &Mailgate) -> Scrape {
    let addr = gw.metrics_addr.expect("metrics");
    Scrape::parse(fetch(addr).expect("scrape")).expect("parse scrape")
}

fn copies(s: &Scrape, action: &str) -> f64 {
    s.get(SENT_COPIES, &[("action", action)]).unwrap_or(0.0)
}

/// Waits (bounded) until `mailgate_sent_copies_total{action}` reaches `n`.
fn wait_for_copies(gw: &Mailgate, action: &str, n: f64) -> Scrape {
    let what = format!("{SENT_COPIES}{{action={action:?}}} reaching {n}");
    wait_until(gw, &what, |s| copies(s, action) >= n)
}

/// Waits (bounded) for a scrape that shows `what` (`ready`), and returns it.
fn wait_until(gw: &Mailgate, what: &str, ready: impl Fn(&Scrape) -> bool) -> Scrape {
    poll(UPLOAD_TIMEOUT, STEP, || {
        let s = scrape(gw);
        ready(&s).then_some(s)
    })
    .unwrap_or_else(|| panic!("no {what}\n{}\n{}", scrape(gw).body, gw.log()))
}

/// Logs in as `user` and sends `message` with DATA (dot-stuffed on the wire); the reply.
fn send_data(gw: &Mailgate, user: &str, message: &[u8]) -> String {
    let (mut c, _) = Raw::connect(gw.smtp_addr);
    let auth = c.login(&format!("{user}@{DOMAIN}"), LOCAL_PASSWORD);
    assert!(auth.starts_with("235"), "{auth}");
    assert!(c
        .cmd(&format!("MAIL FROM:<{user}@{DOMAIN}>"))
        .starts_with("250"));
    assert!(c.cmd(&format!("RCPT TO:<bob@{DOMAIN}>")).starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    let mut wire = Vec::new();
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            wire.push(b'.');
        }
        wire.extend_from_slice(line);
    }
    c.send(&wire);
    let reply = c.cmd(".");
    assert!(c.cmd("QUIT").starts_with("221"));
    reply
}

/// Logs in as `user` and sends `message` as one `BDAT … LAST` chunk; the reply.
fn send_bdat(gw: &Mailgate, user: &str, message: &[u8]) -> String {
    let (mut c, _) = Raw::connect(gw.smtp_addr);
    assert!(c
        .login(&format!("{user}@{DOMAIN}"), LOCAL_PASSWORD)
        .starts_with("235"));
    assert!(c
        .cmd(&format!("MAIL FROM:<{user}@{DOMAIN}>"))
        .starts_with("250"));
    assert!(c.cmd(&format!("RCPT TO:<bob@{DOMAIN}>")).starts_with("250"));
    c.send(format!("BDAT {} LAST\r\n", message.len()).as_bytes());
    c.send(message);
    let reply = c.reply();
    assert!(c.cmd("QUIT").starts_with("221"));
    reply
}

fn message(id: &str, from: &str) -> Vec<u8> {
    format!(
        "Message-ID: <{id}@{DOMAIN}>\r\nFrom: {from}@{DOMAIN}\r\nTo: bob@{DOMAIN}\r\n\
         Subject: copy {id}\r\n\r\nhello\r\n.a line that starts with a dot\r\n..and two\r\nbye\r\n"
    )
    .into_bytes()
}

#[test]
fn sent_copy_by_setting() {
    let pf = Postfix::start(&["alice", "carol", "erin", "dave"], UPSTREAM_PASSWORD);
    let d = imap_dovecot(&["alice", "carol", "erin"]);
    let refusing = RefusingPort::new();
    let imap = || Upstream::plain(d.imap_addr());
    let mut gw = GateConfig::new()
        .server("auth_failure_delay_ms", 10)
        .account(account("alice", imap(), &pf, "gateway"))
        .account(account("carol", imap(), &pf, "client"))
        .account(account("erin", imap(), &pf, "provider"))
        .account(account(
            "dave",
            Upstream::plain(format!("127.0.0.1:{}", refusing.port())),
            &pf,
            "gateway",
        ))
        .metrics(None)
        .start();

    // gateway: one copy per message, Seen, byte for byte (DATA unstuffed, and BDAT).
    let by_data = message("gw-data", "alice");
    let by_bdat = message("gw-bdat", "alice");
    let r = send_data(&gw, "alice", &by_data);
    assert!(r.starts_with("250"), "{r}");
    let r = send_bdat(&gw, "alice", &by_bdat);
    assert!(r.starts_with("250"), "{r}");
    wait_for_copies(&gw, "appended", 2.0);
    let files = sent_files(&d, "alice");
    assert_eq!(
        files.len(),
        2,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (name, _) in &files {
        assert!(name.ends_with(":2,S"), "not flagged \\Seen (only): {name}");
    }
    let mut stored: Vec<&[u8]> = files.iter().map(|(_, b)| b.as_slice()).collect();
    let mut sent = vec![by_data.as_slice(), by_bdat.as_slice()];
    stored.sort();
    sent.sort();
    assert_eq!(stored, sent, "the copies are the messages as sent");

    // client: nothing filed; provider: nothing filed, the submission recorded.
    assert!(send_data(&gw, "carol", &message("cl", "carol")).starts_with("250"));
    assert!(send_data(&gw, "erin", &message("pr", "erin")).starts_with("250"));
    // Counted before the client hears its 250.
    let s = scrape(&gw);
    assert_eq!(copies(&s, "left_to_client"), 1.0, "{}", s.body);
    assert_eq!(copies(&s, "left_to_provider"), 1.0, "{}", s.body);

    // An IMAP server that refuses connections: the send is still accepted.
    let r = send_data(&gw, "dave", &message("down", "dave"));
    assert!(r.starts_with("250"), "{r}");
    // The refused login is an upstream failure like a session's. Its series is counted just
    // before the copy's, but a scrape renders one series after another while they change, so
    // it may show the copy's and not yet this one: both are waited for.
    let s = wait_until(&gw, "failed copy with its imap connect error", |s| {
        let error = s.get(
            "mailgate_upstream_errors_total",
            &[("protocol", "imap"), ("kind", "connect")],
        );
        copies(s, "append_failed") >= 1.0 && error == Some(1.0)
    });

    assert_eq!(copies(&s, "appended"), 2.0, "{}", s.body);
    assert_eq!(copies(&s, "not_copied"), 0.0, "{}", s.body);
    assert_eq!(copies(&s, "duplicate_dropped"), 0.0, "{}", s.body);
    assert!(sent_files(&d, "carol").is_empty());
    assert!(sent_files(&d, "erin").is_empty());
    assert_eq!(
        sent_files(&d, "alice").len(),
        2,
        "still exactly one copy each"
    );
    assert_bounded(&s, &[]);
    let log = gw.log();
    for action in ["appended", "left_to_provider", "append_failed"] {
        assert!(log.contains(action), "no {action} in the log:\n{log}");
    }
    gw.assert_no_secrets(&[UPSTREAM_PASSWORD, LOCAL_PASSWORD]);
}

/// `provider`, with mutt — a real client that sends over SMTP and then saves its own copy in
/// the Sent folder over IMAP (`record`): mailgate recognises the upload of the message it has
/// just submitted and answers it OK without storing it, so once the provider files its copy
/// (done here directly at Dovecot, as Gmail and Microsoft 365 do on their own) there is
/// exactly one. An upload of a message mailgate did not submit is stored as usual.
#[test]
fn provider_files_and_the_clients_upload_is_not_stored_twice() {
    let pf = Postfix::start(&["frank"], UPSTREAM_PASSWORD);
    let d = imap_dovecot(&["frank"]);
    let gw = GateConfig::new()
        .server("auth_failure_delay_ms", 10)
        .account(account(
            "frank",
            Upstream::plain(d.imap_addr()),
            &pf,
            "provider",
        ))
        .metrics(None)
        .start();
    let home = tempfile::tempdir().expect("tempdir");
    let rc = home.path().join("muttrc");
    let user = format!("frank%40{DOMAIN}");
    fs::write(
        &rc,
        format!(
            "set from=\"frank@{DOMAIN}\"\nset hostname=\"{DOMAIN}\"\n\
             set smtp_url=\"smtp://{user}@127.0.0.1:{smtp}/\"\nset smtp_pass=\"{LOCAL_PASSWORD}\"\n\
             set folder=\"imap://{user}@127.0.0.1:{imap}/\"\nset imap_pass=\"{LOCAL_PASSWORD}\"\n\
             set record=\"=Sent Mail\"\nset copy=yes\nset ssl_starttls=no\nset ssl_force_tls=no\n",
            smtp = gw.smtp_addr.port(),
            imap = gw.imap_addr.port(),
        ),
    )
    .expect("muttrc");
    let mut cmd = std::process::Command::new("mutt");
    cmd.args(["-n", "-F"])
        .arg(&rc)
        .args(["-s", "sent by mutt", "--", &format!("bob@{DOMAIN}")])
        .env("HOME", home.path())
        .env("TERM", "dumb");
    let out = support::proc::run_with_timeout(
        cmd,
        Some(b"Hello from mutt.\n"),
        support::proc::PROCESS_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "mutt failed: {}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    let s = wait_for_copies(&gw, "duplicate_dropped", 1.0);
    assert_eq!(copies(&s, "left_to_provider"), 1.0);
    assert!(
        sent_files(&d, "frank").is_empty(),
        "the client's upload was stored"
    );

    // The provider files its copy of the delivered message: exactly one in Sent.
    let delivered = pf.wait_for(&format!("bob@{DOMAIN}"));
    let mut direct = support::ImapClient::connect(d.imap_addr());
    direct.login(&format!("frank@{DOMAIN}"), UPSTREAM_PASSWORD);
    let r = direct.append_sync("a1", "Sent Mail", &delivered);
    assert!(
        support::imap_client::tagged_status(&r, "a1").starts_with("OK"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    assert_eq!(sent_files(&d, "frank").len(), 1);

    // A message mailgate did not submit is stored when the client uploads it.
    let mut c = gw.connect();
    let r = c.command(
        "L1",
        &format!("LOGIN \"frank@{DOMAIN}\" \"{LOCAL_PASSWORD}\""),
    );
    assert!(support::imap_client::tagged_status(&r, "L1").starts_with("OK"));
    let other = message("never-sent", "frank");
    let r = c.append_sync("a2", "Sent Mail", &other);
    assert!(
        support::imap_client::tagged_status(&r, "a2").starts_with("OK"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    assert_eq!(sent_files(&d, "frank").len(), 2);
    assert_eq!(copies(&scrape(&gw), "duplicate_dropped"), 1.0);
}
