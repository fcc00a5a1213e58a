//! Many users, many nodes: a real HAProxy (`balance roundrobin`, `send-proxy-v2`, health
//! checks that take a stopped node out at the first failure) in front of two mailgate nodes on
//! one real PostgreSQL store, with Dovecot, Postfix and the test identity provider behind them.
//! Clients bind 127.0.0.2 or 127.0.0.3 to have addresses of their own. Which node served a
//! connection is read from the nodes' logs: the session's peer is the client's own address and
//! port, which HAProxy's PROXY header carries.
//!
//! Run: `cargo test --test many_nodes`

mod support;

use std::io::{ErrorKind, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::haproxy::{Frontend, Haproxy};
use support::imap_client::quote;
use support::nodes::{
    account, assert_one_refresh, authorize_expiring, cli_config, logins_at_once, oauth_account, ok,
};
use support::postfix::{as_stored, DOMAIN};
use support::postgres::{key_file, store_toml, Postgres};
use support::proc::{closed_without_a_word, connect_from, poll};
use support::tls_client::Conn;
use support::{Account, Dovecot, DovecotOpts, GateConfig, Idp, Mailgate, Postfix, Upstream};
use tempfile::TempDir;

const EMAIL: &str = "ola@example.test";
const OAUTH_EMAIL: &str = "kari@example.test";
const LOCAL_PW: &str = "Nodes-pw-3a9c";
const UPSTREAM_PW: &str = "Upstream-pw-c61e";
/// HAProxy's frontends: IMAP and SMTP, each balanced over both nodes.
const IMAP: usize = 0;
const SMTP: usize = 1;
/// Each `server` line: a PROXY v2 header, and a health check every 500 ms that takes a node
/// out at its first failure and puts it back at its first success.
const SERVER: &str = "send-proxy-v2 check inter 500ms fall 1 rise 1";
/// Both listeners behind the proxy, which connects from 127.0.0.1 only.
const PROXY: &str =
    "\n[server.proxy_protocol]\nlisteners = [\"imap\", \"smtp\"]\ntrusted = [\"127.0.0.1/32\"]\n";
/// Bounds every wait (the behaviour asserted is that the thing happens, not how fast).
const WAIT: Duration = Duration::from_secs(30);
const STEP: Duration = Duration::from_millis(50);

/// Two nodes on one store behind HAProxy.
struct Cluster {
    nodes: Vec<Mailgate>,
    haproxy: Haproxy,
    /// The commands' config (`mailgate account`) on the same store.
    cli: PathBuf,
    _keys: TempDir,
    _pg: Postgres,
}

impl Cluster {
    /// PostgreSQL with `tables` added to the store (`mailgate account add`), then `prepare` with
    /// the commands' config, then the two nodes (no accounts in their files; throttling after 2
    /// distinct wrong passwords, locked out at 4) and HAProxy in front of them.
    fn start(tables: &str, prepare: impl FnOnce(&Path)) -> Cluster {
        let pg = Postgres::start();
        let keys = TempDir::new().unwrap();
        let key = key_file(keys.path(), 7);
        let cli = cli_config(keys.path(), &pg, &key);
        if !tables.is_empty() {
            ok(&account(&cli, &["add", "-"], Some(tables)));
        }
        prepare(&cli);
        let base = GateConfig::new().limits(&[
            ("auth_failure_delay_ms", 0),
            ("max_auth_failures", 20),
            ("login_throttle_threshold", 2),
            ("login_lockout_secs", 3600),
        ]);
        let toml = format!("{}{}{PROXY}", base.to_toml(), store_toml(&pg, &key));
        let nodes = vec![Mailgate::start(&toml), Mailgate::start(&toml)];
        let haproxy = Haproxy::start(&[
            Frontend::balanced(&[nodes[0].imap_addr, nodes[1].imap_addr], SERVER),
            Frontend::balanced(&[nodes[0].smtp_addr, nodes[1].smtp_addr], SERVER),
        ]);
        Cluster {
            nodes,
            haproxy,
            cli,
            _keys: keys,
            _pg: pg,
        }
    }

    /// A connection through HAProxy's frontend `front` from `source`, greeted, and the node
    /// that serves it; `None` when no node greeted it (HAProxy chose a node that is down and
    /// closed the connection).
    fn through(&self, source: [u8; 4], front: usize) -> Option<(Conn, usize)> {
        let before: Vec<usize> = self.nodes.iter().map(|n| n.lines().len()).collect();
        let stream = connect_from(source, self.haproxy.addrs[front]);
        let me = stream.local_addr().expect("local addr");
        let mut c = Conn::plain_over(stream);
        let greeting = c.line().ok()?;
        if !(greeting.starts_with("* OK") || greeting.starts_with("220 ")) {
            return None;
        }
        let node = poll(WAIT, STEP, || {
            self.nodes.iter().enumerate().find_map(|(i, n)| {
                let lines = n.lines();
                lines[before[i]..]
                    .iter()
                    .any(|l| names_peer(l, me))
                    .then_some(i)
            })
        });
        Some((c, node.unwrap_or_else(|| panic!("no node logged {me}"))))
    }

    /// [`Cluster::through`] until a node greets (a node HAProxy still thinks up, after a
    /// failed check or a stop, makes it close the connection); bounded.
    fn greeted(&self, source: [u8; 4], front: usize) -> (Conn, usize) {
        poll(WAIT, STEP, || self.through(source, front))
            .unwrap_or_else(|| panic!("no node greeted\n{}", self.logs()))
    }

    /// IMAP sessions through HAProxy from `source` until `f` (given the greeted session and
    /// its node) has held on a session of each node; bounded.
    fn on_both_nodes(&self, source: [u8; 4], mut f: impl FnMut(&mut Conn, usize) -> bool) {
        let mut done = [false, false];
        let both = poll(WAIT, STEP, || {
            if let Some((mut c, node)) = self.through(source, IMAP) {
                done[node] |= f(&mut c, node);
            }
            (done == [true, true]).then_some(())
        });
        assert!(both.is_some(), "held on {done:?} only\n{}", self.logs());
    }

    fn logs(&self) -> String {
        let logs: Vec<String> = self.nodes.iter().map(Mailgate::log).collect();
        format!(
            "{}\nHAProxy:\n{}",
            logs.join("\n---\n"),
            self.haproxy.stderr()
        )
    }
}

/// Whether `line` is of the session of peer `peer` (and not of one whose port starts alike).
fn names_peer(line: &str, peer: SocketAddr) -> bool {
    let needle = format!("peer={peer}");
    line.match_indices(&needle)
        .any(|(i, _)| !line[i + needle.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

/// `LOGIN email password`; the tagged answer.
fn login(c: &mut Conn, email: &str, password: &str) -> String {
    let line = format!("L LOGIN {} {}\r\n", quote(email), quote(password));
    c.send(line.as_bytes()).expect("send LOGIN");
    c.until("L ").pop().unwrap_or_default()
}

/// Sends `line` (CRLF added) and reads up to the line starting with `until`; all it read.
fn command(c: &mut Conn, line: &str, until: &str) -> String {
    c.send(format!("{line}\r\n").as_bytes()).expect("send");
    c.until(until).concat()
}

/// Sends `line` (CRLF added); the one line answered (an SMTP reply of one line).
fn reply(c: &mut Conn, line: &str) -> String {
    c.send(format!("{line}\r\n").as_bytes()).expect("send");
    c.line().expect("reply")
}

/// Reads until the server ends the connection (EOF or reset); the lines before. Panics if
/// it stays open.
fn ended(c: &mut Conn) -> Vec<String> {
    let mut lines = Vec::new();
    for _ in 0..100 {
        match c.line() {
            Ok(l) if l.is_empty() => return lines,
            Ok(l) => lines.push(l),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return lines,
            Err(e) => panic!("still open ({e}) after {lines:?}"),
        }
    }
    panic!("still talking: {lines:?}");
}

/// The account on `dovecot` with the password `UPSTREAM_PW` (submission to port 9: nothing).
fn password_account(dovecot: &Dovecot) -> Account {
    Account::password(EMAIL, LOCAL_PW)
        .imap(Upstream::plain(dovecot.imap_addr()).login(EMAIL, UPSTREAM_PW))
        .smtp(Upstream::plain("127.0.0.1:9"))
}

fn dovecot(user: &str, opts: DovecotOpts) -> Dovecot {
    let d = Dovecot::start(opts);
    d.add_user(user, UPSTREAM_PW);
    d
}

/// Through the proxy, clients are told apart on both nodes: the failures of 127.0.0.2 lock
/// it out on each node it reached (logged with its own address), while 127.0.0.3 logs in to
/// the same account on both. A PROXY header from a source outside `trusted` is refused.
#[test]
fn clients_are_told_apart_on_every_node() {
    let dovecot = dovecot(EMAIL, DovecotOpts::plaintext_only());
    let c = Cluster::start(&password_account(&dovecot).to_toml(), |_| {});
    let mut locked = [false, false];
    c.on_both_nodes([127, 0, 0, 2], |conn, node| {
        for i in 0..4 {
            if locked[node] {
                break;
            }
            let r = login(conn, EMAIL, &format!("wrong-{i}"));
            assert!(r.starts_with("L NO [AUTHENTICATIONFAILED]"), "{r}");
        }
        let r = login(conn, EMAIL, LOCAL_PW);
        assert!(
            r.starts_with("L NO [UNAVAILABLE] Too many failed logins"),
            "{r}"
        );
        locked[node] = true;
        true
    });
    c.on_both_nodes([127, 0, 0, 3], |conn, _| {
        let r = login(conn, EMAIL, LOCAL_PW);
        assert!(r.starts_with("L OK"), "{r}");
        true
    });
    for node in &c.nodes {
        node.logged(&["local login failed", "peer=127.0.0.2:"]);
        node.logged(&["logged in", "peer=127.0.0.3:"]);
        let failed = node.lines();
        let failed: Vec<&String> = failed
            .iter()
            .filter(|l| l.contains("local login failed"))
            .collect();
        assert!(
            failed.iter().all(|l| l.contains("peer=127.0.0.2:")),
            "{failed:?}"
        );
    }

    // Straight to a node's listeners, a valid header from 127.0.0.2 (not trusted).
    for (node, listener) in [(0, c.nodes[0].imap_addr), (1, c.nodes[1].smtp_addr)] {
        let mut raw = connect_from([127, 0, 0, 2], listener);
        raw.write_all(b"PROXY TCP4 127.0.0.3 127.0.0.1 40000 143\r\n")
            .expect("header");
        closed_without_a_word(raw);
        c.nodes[node].logged(&["reason=\"untrusted\"", "peer=127.0.0.2:"]);
    }
}

/// A node stopped mid-session: its client sees `* BYE` and the end of the connection; once
/// HAProxy's check takes the node out, new IMAP and SMTP sessions go to the other node and
/// log in; a message submitted after the stop is delivered by Postfix, and a message appended
/// on the stopped node before is read, the same bytes, through the other.
#[test]
fn a_stopped_node_loses_nothing() {
    let postfix = Postfix::start(&["ola"], UPSTREAM_PW);
    let dovecot = dovecot(EMAIL, DovecotOpts::plaintext_only());
    let submission = Upstream::plain(format!("127.0.0.1:{}", postfix.plain_port));
    let table = password_account(&dovecot)
        .smtp(submission.login(EMAIL, UPSTREAM_PW))
        .to_toml();
    let mut c = Cluster::start(&table, |_| {});

    let (mut held, x) = c.greeted([127, 0, 0, 2], IMAP);
    assert!(login(&mut held, EMAIL, LOCAL_PW).starts_with("L OK"));
    let kept = b"Subject: appended before the stop\r\nMessage-ID: <kept.1@example.test>\r\n\r\nStill here.\r\n";
    let append = [
        format!("A APPEND INBOX {{{}+}}\r\n", kept.len()).as_bytes(),
        kept,
        b"\r\n",
    ]
    .concat();
    held.send(&append).expect("send APPEND");
    let appended = held.until("A ").pop().unwrap_or_default();
    assert!(appended.starts_with("A OK"), "{appended}");

    c.nodes[x].stop();
    let last = ended(&mut held);
    assert!(
        last.iter().any(|l| l.starts_with("* BYE")),
        "{last:?}\n{}",
        c.logs()
    );
    let out = poll(WAIT, STEP, || {
        (c.haproxy.marked_down(IMAP, x) && c.haproxy.marked_down(SMTP, x)).then_some(())
    });
    assert!(out.is_some(), "node {x} not taken out\n{}", c.logs());
    let other = 1 - x;

    let (mut s, node) = c.greeted([127, 0, 0, 3], SMTP);
    assert_eq!(node, other);
    let ehlo = command(&mut s, "EHLO client.test", "250 ");
    assert!(ehlo.contains("AUTH PLAIN"), "{ehlo}");
    let auth = support::b64(format!("\0{EMAIL}\0{LOCAL_PW}").as_bytes());
    for (line, want) in [
        (format!("AUTH PLAIN {auth}"), "235 "),
        (format!("MAIL FROM:<{EMAIL}>"), "250 "),
        (format!("RCPT TO:<rcpt@{DOMAIN}>"), "250 "),
        ("DATA".to_string(), "354 "),
    ] {
        let r = reply(&mut s, &line);
        assert!(r.starts_with(want), "{line}: {r}");
    }
    let sent = b"Subject: submitted after the stop\r\nMessage-ID: <sent.1@example.test>\r\n\r\nDelivered.\r\n";
    s.send(sent).expect("send");
    let r = reply(&mut s, ".");
    assert!(r.starts_with("250 "), "{r}\n{}", postfix.log());
    assert_eq!(postfix.wait_for(&format!("rcpt@{DOMAIN}")), as_stored(sent));

    let (mut reader, node) = c.greeted([127, 0, 0, 3], IMAP);
    assert_eq!(node, other);
    assert!(login(&mut reader, EMAIL, LOCAL_PW).starts_with("L OK"));
    assert!(command(&mut reader, "S SELECT INBOX", "S ").contains("S OK"));
    let fetched = command(&mut reader, "F FETCH 1:* BODY.PEEK[]", "F ");
    let body = format!("{{{}}}\r\n{}", kept.len(), String::from_utf8_lossy(kept));
    assert!(fetched.contains(&body), "{fetched}");
}

/// Fifty logins at once through HAProxy (so over both nodes), with an access token about to
/// expire: one refresh at the identity provider, every login on both nodes introspected with
/// the one new token, and both nodes served some of them.
#[test]
fn one_refresh_through_the_proxy() {
    let idp = Idp::start(OAUTH_EMAIL);
    let mut opts = DovecotOpts::plaintext_only();
    opts.oauth2_introspection_url = Some(idp.url("/introspect"));
    let dovecot = dovecot(OAUTH_EMAIL, opts);
    let table = oauth_account(OAUTH_EMAIL, LOCAL_PW, dovecot.imap_addr(), &idp).to_toml();
    let mut old = Vec::new();
    let c = Cluster::start(&table, |cli| {
        old = authorize_expiring(&idp, cli, OAUTH_EMAIL);
    });
    let introspected = idp.introspected_tokens().len();
    let statuses = logins_at_once(&[c.haproxy.addrs[IMAP]], 50, OAUTH_EMAIL, LOCAL_PW);
    for (i, status) in statuses.iter().enumerate() {
        assert!(
            status.starts_with("OK"),
            "login {i}: {status}\n{}",
            c.logs()
        );
    }
    assert_one_refresh(&idp, &old, introspected);
    let served = |node: &Mailgate| {
        let lines = node.lines();
        lines
            .iter()
            .filter(|l| l.contains("logged in") && l.contains(OAUTH_EMAIL))
            .count()
    };
    let counts = poll(WAIT, STEP, || {
        let counts = [served(&c.nodes[0]), served(&c.nodes[1])];
        (counts[0] + counts[1] == 50).then_some(counts)
    });
    let counts = counts.unwrap_or_else(|| panic!("not 50 logins logged\n{}", c.logs()));
    assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
}

/// `mailgate account add`: within a bounded wait, a login through HAProxy works on either
/// node; `mailgate account remove`: refused on both.
#[test]
fn accounts_added_and_removed_through_the_proxy() {
    let dovecot = dovecot(EMAIL, DovecotOpts::plaintext_only());
    let c = Cluster::start("", |_| {});
    let (mut first, _) = c.greeted([127, 0, 0, 2], IMAP);
    let r = login(&mut first, EMAIL, LOCAL_PW);
    assert!(r.starts_with("L NO [AUTHENTICATIONFAILED]"), "{r}");

    let table = password_account(&dovecot).to_toml();
    ok(&account(&c.cli, &["add", "-"], Some(&table)));
    c.on_both_nodes([127, 0, 0, 2], |conn, _| {
        login(conn, EMAIL, LOCAL_PW).starts_with("L OK")
    });
    let removed = ok(&account(&c.cli, &["remove", EMAIL], None));
    assert!(removed.contains("Removed"), "{removed}");
    c.on_both_nodes([127, 0, 0, 2], |conn, _| {
        login(conn, EMAIL, LOCAL_PW).starts_with("L NO [AUTHENTICATIONFAILED]")
    });
}
