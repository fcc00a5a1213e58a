//! Password verification under bursts of logins, through the real binary: argon2's memory stays
//! bounded by the verifier threads (resident memory read from /proc), and logins that waited
//! for a verifier use the login cache instead of running argon2 again.
//!
//! argon2 runs are counted from mailgate's own debug line ("argon2 run"). Every burst is bounded
//! in size and count; all traffic stays on 127.0.0.1; memory is asserted in bytes, never time.
//!
//! Run: `cargo test --test verifier`

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use support::procstat::rss_kib;
use support::smtp_client::Raw;
use support::{b64, Account, GateConfig, Mailgate, Upstream};

const LOCAL_PW: &str = "Verifier-pw-5c2e";
/// Resident memory allowed above idle after the bursts (the bound).
const MAX_GROWTH_KIB: u64 = 64 * 1024;

/// mailgate with `accounts` accounts `user{i}@example.no` (SMTP upstream never reached: AUTH
/// is answered locally), a short failure delay, throttling of one name at a time irrelevant
/// here (every unknown name is new), and the verifier's debug line on.
fn gate(accounts: usize) -> Mailgate {
    GateConfig::new()
        .server("auth_failure_delay_ms", 1)
        .accounts((0..accounts).map(|i| {
            Account::password(&format!("user{i}@example.no"), LOCAL_PW)
                .imap(Upstream::plain("127.0.0.1:9").login("u", "p"))
                .smtp(Upstream::plain("127.0.0.1:9"))
        }))
        .start_with_env(&[("RUST_LOG", "info,mailgate::verifier=debug")])
}

/// `logins` SMTP AUTH PLAIN at once (each on its own connection, sent together after every
/// EHLO was answered); the AUTH replies.
fn burst(addr: SocketAddr, logins: Vec<(String, String)>) -> Vec<String> {
    let ready = Arc::new(Barrier::new(logins.len()));
    let clients: Vec<_> = logins
        .into_iter()
        .map(|(user, password)| {
            let ready = ready.clone();
            std::thread::spawn(move || {
                let (mut s, _) = Raw::connect(addr);
                let ehlo = s.cmd("EHLO client.test");
                assert!(ehlo.starts_with("250"), "{ehlo}");
                let token = b64(format!("\0{user}\0{password}").as_bytes());
                ready.wait();
                let reply = s.cmd(&format!("AUTH PLAIN {token}"));
                s.cmd("QUIT");
                reply
            })
        })
        .collect();
    clients
        .into_iter()
        .map(|c| c.join().expect("client thread"))
        .collect()
}

/// argon2 runs mailgate logged so far; `ok=true` ones only when `ok`.
fn argon2_runs(gate: &Mailgate, ok: bool) -> usize {
    gate.lines()
        .iter()
        .filter(|l| l.contains("argon2 run") && (!ok || l.contains("ok=true")))
        .count()
}

/// Waits (bounded) until mailgate logged `n` successful SMTP logins: their argon2 lines, written
/// before the answer, have then been read too (the test reads mailgate's output on a thread).
fn wait_for_logins(gate: &Mailgate, n: usize) {
    let logged = || {
        gate.lines()
            .iter()
            .filter(|l| l.contains(" authenticated"))
            .count()
    };
    support::proc::poll(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(10),
        || (logged() >= n).then_some(()),
    );
    assert_eq!(logged(), n, "{}", gate.log());
}

/// 1,000 failed logins (unknown users, so no throttle key repeats) in bursts of 20 to 120
/// connections: every one pays argon2, and resident memory ends at most 64 MiB above idle.
/// (Before, each of tokio's blocking threads that ran argon2 kept its 19 MiB in its own
/// malloc arena: hundreds of MB after such bursts.)
#[test]
fn failed_login_bursts_leave_memory_bounded() {
    const TOTAL: usize = 1000;
    let mut g = gate(1);
    let pid = g.pid();
    let idle = rss_kib(pid);
    let mut sent = 0;
    for size in [20, 40, 60, 80, 100, 120].into_iter().cycle() {
        let size = size.min(TOTAL - sent);
        let logins = (sent..sent + size)
            .map(|n| (format!("nobody{n}@example.no"), format!("guess-{n}")))
            .collect();
        let replies = burst(g.smtp_addr, logins);
        let wrong: Vec<&String> = replies.iter().filter(|r| !r.starts_with("535 ")).collect();
        assert!(wrong.is_empty(), "not 535: {wrong:?}");
        sent += size;
        if sent == TOTAL {
            break;
        }
    }
    let grown = rss_kib(pid).saturating_sub(idle);
    eprintln!("idle {idle} KiB, grown {grown} KiB after {TOTAL} failed logins");
    assert!(
        grown <= MAX_GROWTH_KIB,
        "mailgate grew by {grown} KiB (idle {idle} KiB) after {TOTAL} failed logins"
    );
    support::proc::poll(
        std::time::Duration::from_secs(10),
        std::time::Duration::from_millis(10),
        || (argon2_runs(&g, false) >= TOTAL).then_some(()),
    );
    assert_eq!(
        argon2_runs(&g, false),
        TOTAL,
        "every failed login pays argon2"
    );
    let logs = g.stop();
    assert!(!logs.iter().any(|l| l.contains("guess-")));
}

/// 20 first logins of one account at once: the ones that waited for a verifier find the
/// password verified meanwhile in the login cache, so argon2 runs at most once per verifier
/// thread, not 20 times. Then 1,000 sessions, 50 at a time over 100 accounts: argon2 once per
/// account, and memory stays bounded.
#[test]
fn waiting_logins_use_the_login_cache() {
    const PARALLEL: usize = 20;
    let mut g = gate(100);
    let pid = g.pid();
    let idle = rss_kib(pid);
    let verifiers = std::thread::available_parallelism().map_or(2, |n| n.get());
    assert!(
        verifiers < PARALLEL,
        "this test needs fewer cores than {PARALLEL}"
    );
    let same = (0..PARALLEL)
        .map(|_| ("user0@example.no".to_owned(), LOCAL_PW.to_owned()))
        .collect();
    let replies = burst(g.smtp_addr, same);
    assert!(replies.iter().all(|r| r.starts_with("235 ")), "{replies:?}");
    wait_for_logins(&g, PARALLEL);
    let runs = argon2_runs(&g, true);
    assert!(
        (1..=verifiers).contains(&runs),
        "{runs} argon2 runs for {PARALLEL} logins of one account with {verifiers} verifiers"
    );

    for round in 0..20 {
        let logins = (0..50)
            .map(|i| {
                let account = (round * 50 + i) % 100;
                (format!("user{account}@example.no"), LOCAL_PW.to_owned())
            })
            .collect();
        let replies = burst(g.smtp_addr, logins);
        assert!(replies.iter().all(|r| r.starts_with("235 ")), "{replies:?}");
    }
    wait_for_logins(&g, PARALLEL + 1000);
    // user0 was verified before; the other 99 once each.
    assert_eq!(argon2_runs(&g, true), runs + 99);
    let grown = rss_kib(pid).saturating_sub(idle);
    eprintln!("{runs} argon2 runs for {PARALLEL} parallel first logins; idle {idle} KiB, grown {grown} KiB after 1,020 logins");
    assert!(grown <= MAX_GROWTH_KIB, "mailgate grew by {grown} KiB");
    let logs = g.stop();
    assert!(!logs.iter().any(|l| l.contains(LOCAL_PW)));
}
