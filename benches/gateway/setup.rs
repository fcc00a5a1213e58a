//! The servers, mailgate's config and the sessions the steps use.

use std::sync::Arc;

use super::*;

pub struct Setup {
    /// mailgate's config, to start fresh instances for the memory measurements.
    pub config: GateConfig,
    pub pki: Pki,
    pub postfix: Postfix,
    /// TLS client configuration trusting the test CA (for direct TLS sessions).
    pub tls: Arc<rustls::ClientConfig>,
    /// The same for Postfix, whose certificate comes from its own test CA.
    pub smtp_tls: Arc<rustls::ClientConfig>,
    pub dovecot: Dovecot,
    /// `MAILGATE_BENCH_DELAY_MS`: the delay proxies in front of Dovecot and Postfix.
    pub latency: Option<super::latency::Latency>,
    /// `MAILGATE_BENCH_STORE=postgres`: the shared store holding the accounts.
    pub store: Option<super::store::Store>,
    pub mailgate: Mailgate,
    /// Direct address and the mailgate account for each upstream mode.
    pub modes: Vec<Mode>,
}

pub struct Mode {
    pub name: &'static str,
    pub direct: SocketAddr,
    pub tls: bool,
    /// Account prefix in mailgate: `{prefix}-{user}@example.no`.
    pub prefix: &'static str,
}

/// Where the servers keep their files: a tmpfs when there is one. On this machine's disk
/// Postfix's fsync of each queued message set the SMTP rate of every side (450–1100 msg/s,
/// within a round one side up to a third below the next); in tmpfs the same runs reach
/// mostly 1000–1700 msg/s and compare what the sides themselves cost. The servers' disk is
/// not what the benchmark compares.
fn ram_dir() -> Option<std::path::PathBuf> {
    let shm = std::path::Path::new("/dev/shm");
    shm.is_dir().then(|| shm.to_path_buf())
}

pub fn message(i: usize, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: bench@{DOMAIN}\r\nTo: ola@{DOMAIN}\r\nSubject: message {i}\r\nMessage-ID: <{i}@bench>\r\n\r\n"
    )
    .into_bytes();
    let line = b"The quick brown fox jumps over the lazy dog; 0123456789 abcdefghij.\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    while m.len() < size - 2 {
        m.push(b'x');
    }
    m.extend_from_slice(b"\r\n");
    m
}

/// Upstream users: `bench` (logins, NOOP, held sessions), `bulk` (10,000 × 10 KiB), `big`
/// (one 50 MiB message), `append` (APPEND target). Each exists in mailgate once per upstream
/// mode, plus `first-N` accounts for first logins.
pub fn setup(sz: &Sizes) -> Setup {
    let pki = Pki::new();
    let mut opts = DovecotOpts::tls(&pki.server);
    opts.dir_in = ram_dir();
    // Many sessions of one user from one address, a login process that serves many clients
    // (Dovecot's "high-performance" mode), and no fsync: the benchmark measures the gateway,
    // not Dovecot's process model or the disk.
    opts.extra = "mail_max_userip_connections = 5000\n\
                  mail_fsync = never\n\
                  auth_verbose = no\n\
                  auth_verbose_passwords = no\n\
                  default_client_limit = 10000\n\
                  service imap {\n  process_limit = 3000\n}\n\
                  service imap-login {\n  service_count = 0\n  client_limit = 5000\n  process_min_avail = 2\n}\n\
                  service anvil {\n  client_limit = 10000\n}\n\
                  service auth {\n  client_limit = 10000\n}\n"
        .to_string();
    // Folders with RFC 6154 roles, marked as Dovecot marks them: the server advertises
    // SPECIAL-USE, as Gmail does, so without `MAILGATE_BENCH_FOLDERS` no session needs the
    // folder rule, and with it (a client profile) the rule maps these folders.
    opts.extra.push_str(
        "namespace inbox {\n  inbox = yes\n  separator = /\n\
         mailbox Sent {\n    special_use = \\Sent\n    auto = subscribe\n  }\n\
         mailbox Drafts {\n    special_use = \\Drafts\n    auto = subscribe\n  }\n\
         mailbox Trash {\n    special_use = \\Trash\n    auto = subscribe\n  }\n}\n",
    );
    let folders = std::env::var("MAILGATE_BENCH_FOLDERS").ok();
    let dovecot = Dovecot::start(opts);
    for user in ["bench", "bulk", "big", "append"] {
        dovecot.add_user(user, UPSTREAM_PW);
    }
    eprintln!(
        "filling mailboxes ({} × 10 KiB, 1 × 50 MiB)…",
        sz.bulk_messages
    );
    let bulk: Vec<Vec<u8>> = (0..sz.bulk_messages)
        .map(|i| message(i, 10 * 1024))
        .collect();
    dovecot.fill_maildir("bulk", &bulk);
    drop(bulk);
    dovecot.fill_maildir("big", &[message(0, 50 * 1024 * 1024)]);

    let imaps = dovecot.imaps_addr().expect("imaps port");
    let modes = vec![
        Mode {
            name: "plain upstream",
            direct: dovecot.imap_addr(),
            tls: false,
            prefix: "p",
        },
        Mode {
            name: "TLS upstream",
            direct: imaps,
            tls: true,
            prefix: "t",
        },
    ];
    let postfix = Postfix::start_with(
        &["bench", "rcpt"],
        UPSTREAM_PW,
        DovecotOpts {
            dir_in: ram_dir(),
            ..DovecotOpts::sasl_only()
        },
    );
    let mut users: Vec<String> = ["bench", "bulk", "big", "append"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    users.extend((0..sz.first_logins * sz.rounds * 2).map(|i| format!("first{i}")));
    let mut config =
        GateConfig::new().limits(&[("max_sessions", 5000), ("auth_failure_delay_ms", 0)]);
    for m in &modes {
        let (imap, smtp) = if m.tls {
            (
                Upstream::tls(m.direct, "implicit", Some(&pki.ca)).tls_server_name("localhost"),
                Upstream::tls(
                    format!("127.0.0.1:{}", postfix.implicit_port),
                    "implicit",
                    Some(&postfix.ca_file),
                )
                .tls_server_name("localhost"),
            )
        } else {
            (
                Upstream::plain(m.direct),
                Upstream::plain(format!("127.0.0.1:{}", postfix.plain_port)),
            )
        };
        for user in &users {
            let upstream_user = if user.starts_with("first") {
                "bench"
            } else {
                user
            };
            let mut account = Account::password(&format!("{}-{user}@{DOMAIN}", m.prefix), LOCAL_PW)
                .imap(imap.clone().login(upstream_user, UPSTREAM_PW));
            if let Some(client) = &folders {
                account = account.folders("client", client.as_str());
            }
            config = config.account(account);
        }
        // The SMTP account: sends as bench@PF_DOMAIN (an alias) through Postfix's plain or
        // implicit-TLS smtpd.
        let bench = format!("bench@{PF_DOMAIN}");
        config = config.account(
            Account::password(&format!("{}-smtp@{PF_DOMAIN}", m.prefix), LOCAL_PW)
                .aliases(&[&bench])
                .imap(Upstream::plain(dovecot.imap_addr()).password("unused"))
                .smtp(smtp.login(&bench, UPSTREAM_PW)),
        );
    }
    let latency = super::latency::Latency::wanted(&dovecot, &postfix);
    if let Some(l) = &latency {
        config = l.accounts(config, &pki.ca, &postfix.ca_file);
    }
    let store = super::store::wanted().then(|| super::store::Store::start(&config));
    let mailgate = start_gate(&config, store.as_ref());
    mailgate::net::tls::install_crypto_provider();
    let tls = mailgate::net::tls::client_config(Some(&pki.ca)).expect("test CA");
    let smtp_tls = mailgate::net::tls::client_config(Some(&postfix.ca_file)).expect("Postfix CA");
    Setup {
        config,
        tls,
        smtp_tls,
        pki,
        postfix,
        dovecot,
        latency,
        store,
        mailgate,
        modes,
    }
}

/// Starts mailgate on `config` (its accounts in `store`, when given) with the benchmark's log
/// level.
pub fn start_gate(config: &GateConfig, store: Option<&super::store::Store>) -> Mailgate {
    let level = std::env::var("MAILGATE_BENCH_LOG").unwrap_or_else(|_| "info".to_string());
    // Logging as in production (the test harness writes every line at once instead).
    let flush = mailgate::logbuf::DEFAULT_DELAY.as_millis().to_string();
    let env = [
        ("RUST_LOG", level.as_str()),
        ("MAILGATE_LOG_FLUSH_MS", &flush),
    ];
    match store {
        Some(store) => store.start_gate(config, &env),
        None => config.start_with_env(&env),
    }
}

/// Which parts run (`MAILGATE_BENCH_ONLY`).
pub fn part(name: &str) -> bool {
    std::env::var("MAILGATE_BENCH_ONLY").map_or(true, |only| only == name)
}

/// [`session`] for a client that leaves Nagle's algorithm on.
pub fn nagle_session(s: &Setup, m: &Mode, direct: bool, user: &str) -> FastImap {
    let (addr, tls, login) = if direct {
        (m.direct, m.tls.then_some(&s.tls), user.to_string())
    } else {
        (
            s.mailgate.imap_addr,
            None,
            format!("{}-{user}@{DOMAIN}", m.prefix),
        )
    };
    let mut c = FastImap::connect_with(addr, tls, false);
    c.login(&login, password(&login));
    c
}

/// Connects to either side and logs in: `direct` as the upstream user to Dovecot (with TLS
/// in the TLS mode, as a mail client would), else in plaintext to mailgate as the account
/// (mailgate then speaks TLS upstream): the two ways a user can run.
pub fn session(s: &Setup, m: &Mode, direct: bool, user: &str) -> FastImap {
    if direct {
        let mut c = FastImap::connect(m.direct, m.tls.then_some(&s.tls));
        c.login(user, UPSTREAM_PW);
        c
    } else {
        gate_session(s.mailgate.imap_addr, m, user)
    }
}

/// A session through the mailgate listening on `addr`, logged in as `user`'s account.
pub fn gate_session(addr: SocketAddr, m: &Mode, user: &str) -> FastImap {
    let mut c = FastImap::connect(addr, None);
    c.login(&format!("{}-{user}@{DOMAIN}", m.prefix), LOCAL_PW);
    c
}

/// The password of `login`: the local one for a mailgate account (an address), else the
/// upstream one.
pub fn password(login: &str) -> &'static str {
    if login.contains('@') {
        LOCAL_PW
    } else {
        UPSTREAM_PW
    }
}
