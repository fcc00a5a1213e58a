//! Learning the provider's folders (`mailgate::imap::folders::learn::list`) against a real
//! Dovecot, logged in with the library's own `imap::upstream::login`: the command chosen by
//! capability (LIST RETURN (SPECIAL-USE), plain LIST, Gmail's XLIST), a name with a space, the
//! `\Sent` attribute, and the connection left usable with nothing of the answer left over. (A
//! refused LIST is tested against a scripted server in the module's unit tests.)
//!
//! Run: `cargo test --test folders_learn`

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mailgate::config::Config;
use mailgate::imap::folders::{cache, learn, Folders, Role};
use mailgate::imap::upstream::{self, LoggedIn};
use support::{Account, Dovecot, DovecotOpts, GateConfig, Upstream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USER: &str = "learner@example.test";
const PASSWORD: &str = "upstream-secret";
const TIMEOUT: Duration = Duration::from_secs(30);

/// A Dovecot whose Sent folder is `Sent Mail` (marked `\Sent`), with a `Drafts` known by name.
fn dovecot() -> Dovecot {
    let mut opts = DovecotOpts::plaintext_only();
    opts.extra = "namespace inbox {\n  inbox = yes\n  separator = /\n  \
                  mailbox \"Sent Mail\" {\n    special_use = \\Sent\n    auto = create\n  }\n  \
                  mailbox Drafts {\n    auto = create\n  }\n}\n"
        .into();
    let d = Dovecot::start(opts);
    d.add_user(USER, PASSWORD);
    d
}

/// The account (and server settings) as mailgate would load them, for `d`.
fn loaded(d: &Dovecot) -> Config {
    let text = GateConfig::new()
        .account(
            Account::password(USER, "local-pw")
                .imap(Upstream::plain(d.imap_addr()).password(PASSWORD)),
        )
        .to_toml();
    Config::parse(&text, Path::new("t.toml")).expect("config")
}

async fn login(config: &Config) -> LoggedIn {
    upstream::login(&config.accounts[0], &config.server)
        .await
        .expect("upstream login")
}

/// After mailgate's own commands, the connection still answers the next command in order.
async fn still_usable(up: &mut LoggedIn) {
    assert!(
        up.leftover.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&up.leftover)
    );
    up.stream.write_all(b"t1 NOOP\r\n").await.unwrap();
    let mut got = Vec::new();
    while !got.windows(5).any(|w| w == b"t1 OK") {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(TIMEOUT, up.stream.read(&mut buf))
            .await
            .expect("NOOP answered in time")
            .unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn learns_dovecots_folders() {
    let d = dovecot();
    let config = loaded(&d);

    let mut up = login(&config).await;
    assert!(upstream::has(&up.capabilities, "SPECIAL-USE"));
    let entries = learn::list(&mut up, TIMEOUT).await.expect("LIST");
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    for want in ["INBOX", "Sent Mail", "Drafts"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let folders = Folders::learn(&entries);
    let sent = folders.get(Role::Sent).expect("a Sent folder");
    assert_eq!(sent.wire, b"Sent Mail");
    assert!(folders.roles[&Role::Sent].1, "marked \\Sent by the server");
    assert_eq!(
        folders.get(Role::Drafts).map(|e| e.name.as_str()),
        Some("Drafts")
    );
    still_usable(&mut up).await;

    // Without LIST-EXTENDED the plain LIST is sent (its answer has \HasNoChildren too);
    // Dovecot marks \Sent in it all the same.
    let mut up = login(&config).await;
    up.capabilities = up
        .capabilities
        .iter()
        .filter(|c| !c.eq_ignore_ascii_case("LIST-EXTENDED"))
        .cloned()
        .collect();
    let plain = learn::list(&mut up, TIMEOUT).await.expect("plain LIST");
    let wires = |e: &[mailgate::imap::folders::Entry]| -> Vec<Vec<u8>> {
        e.iter().map(|e| e.wire.clone()).collect()
    };
    assert_eq!(wires(&plain), wires(&entries));
    let folders = Folders::learn(&plain);
    assert_eq!(folders.roles[&Role::Sent].0.wire, b"Sent Mail");
    assert!(folders.roles[&Role::Sent].1, "marked \\Sent by the server");
    still_usable(&mut up).await;

    // Gmail's legacy XLIST, which Dovecot answers too (as `* XLIST`).
    let mut up = login(&config).await;
    up.capabilities = ["IMAP4rev1".to_string(), "XLIST".to_string()].into();
    let xlist = learn::list(&mut up, TIMEOUT).await.expect("XLIST");
    assert_eq!(wires(&xlist), wires(&entries));
    assert_eq!(
        Folders::learn(&xlist)
            .get(Role::Sent)
            .map(|e| e.name.as_str()),
        Some("Sent Mail")
    );
    still_usable(&mut up).await;

    // What one session learned, the next can take from the cache.
    cache::put(USER, Arc::new(entries.clone()));
    assert_eq!(cache::get(&USER.to_uppercase()).as_deref(), Some(&entries));
}
