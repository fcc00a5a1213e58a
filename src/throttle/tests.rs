//! The counting, reserving, lock-out and listing rules, driven without sockets.

use super::*;
use crate::secret::Secret;

fn cfg() -> ThrottleConfig {
    ThrottleConfig {
        threshold: 2,
        max_delay: Duration::from_millis(800),
        lockout: Duration::from_secs(60),
    }
}

/// An attempt admitted at once (panics if it would wait).
fn begin<'a>(
    t: &'a Throttle,
    ip: IpAddr,
    login: &str,
    account: Option<&str>,
    tag: u64,
) -> Result<Attempt<'a>, Lockout> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let c = cfg();
    let probe = Attempt {
        throttle: t,
        cfg: c,
        key: login_key(ip, login),
        account: account.map(str::to_lowercase),
        tag,
        open: false,
    };
    // Looked at first without reserving, so a waiting one fails the test instead of hanging.
    let admit = t.try_begin(&probe);
    assert_ne!(admit, Some(Admit::Wait), "{login} would wait");
    if admit == Some(Admit::Now) {
        t.release(&probe);
    }
    rt.block_on(t.begin(&c, ip, login, account, tag))
}

fn fail(t: &Throttle, ip: IpAddr, login: &str, account: Option<&str>, tag: u64) -> Penalty {
    begin(t, ip, login, account, tag)
        .expect("not locked")
        .failed(Duration::ZERO)
}

fn locked(t: &Throttle, ip: IpAddr, login: &str, account: Option<&str>) -> Option<Locked> {
    begin(t, ip, login, account, 99).err().map(|l| l.scope)
}

#[test]
fn delay_grows_to_the_cap() {
    let c = cfg();
    let base = Duration::ZERO;
    let d: Vec<u64> = (1..=7)
        .map(|n| delay_for(&c, n, base).as_millis() as u64)
        .collect();
    assert_eq!(d, vec![0, 0, 200, 400, 800, 800, 800]);
    let off = ThrottleConfig { threshold: 0, ..c };
    assert_eq!(delay_for(&off, 100, base), Duration::ZERO);
}

#[test]
fn distinct_failures_lock_repeats_do_not_and_success_clears() {
    let t = Throttle::default();
    let ip: IpAddr = "127.0.0.42".parse().unwrap();
    let same = fingerprint("t1@x.no", &Secret::from("same"));
    // The same wrong password over and over: never locked.
    for _ in 0..10 {
        let p = fail(&t, ip, "t1@x.no", None, same);
        assert_eq!((p.failures, p.locked), (1, false));
    }
    assert_eq!(locked(&t, ip, "T1@x.no", None), None);
    // Distinct ones: locked at twice the threshold, for this IP + name only.
    let last: Vec<Penalty> = (0..3)
        .map(|i| {
            let tag = fingerprint("t1@x.no", &Secret::new(format!("g{i}")));
            fail(&t, ip, "t1@x.no", None, tag)
        })
        .collect();
    assert_eq!(
        last.iter().map(|p| p.locked).collect::<Vec<_>>(),
        [false, false, true]
    );
    let lockout = begin(&t, ip, "t1@x.no", None, 5).err().unwrap();
    assert_eq!(lockout.scope, Locked::Client);
    assert!(lockout.remaining <= Duration::from_secs(60), "{lockout:?}");
    let other: IpAddr = "127.0.0.43".parse().unwrap();
    assert_eq!(locked(&t, other, "t1@x.no", None), None);
    assert_eq!(locked(&t, ip, "t2@x.no", None), None);
}

/// Attempts in flight count when they start: with one guess left, two new passwords in
/// flight make a third wait; when they fail the key is locked and the waiting one refused.
/// A success in flight clears the count; an attempt dropped unanswered is not counted.
#[test]
fn attempts_in_flight_reserve_their_guess() {
    let t = Throttle::default();
    let ip = IpAddr::from([127, 4, 0, 1]);
    fail(&t, ip, "r@x.no", None, 11);
    fail(&t, ip, "r@x.no", None, 12);
    let a = begin(&t, ip, "r@x.no", None, 13).unwrap();
    let b = begin(&t, ip, "r@x.no", None, 14).unwrap();
    let waiting = |tag| Attempt {
        throttle: &t,
        cfg: cfg(),
        key: login_key(ip, "r@x.no"),
        account: None,
        tag,
        open: false,
    };
    assert_eq!(t.try_begin(&waiting(15)), Some(Admit::Wait));
    // A repeat of a password in flight or already failed costs no new guess.
    assert_eq!(t.try_begin(&waiting(13)), Some(Admit::Now));
    t.release(&waiting(13));
    assert_eq!(t.try_begin(&waiting(11)), Some(Admit::Now));
    t.release(&waiting(11));
    // Dropped unanswered: the guess is given back.
    drop(b);
    assert_eq!(t.try_begin(&waiting(15)), Some(Admit::Now));
    t.release(&waiting(15));
    let b = begin(&t, ip, "r@x.no", None, 14).unwrap();
    assert!(!a.failed(Duration::ZERO).locked);
    assert!(b.failed(Duration::ZERO).locked);
    assert!(matches!(t.try_begin(&waiting(15)), Some(Admit::Locked(_))));
    // A success among attempts in flight clears the client's count and keeps the others'
    // reservations.
    let ip2 = IpAddr::from([127, 4, 0, 2]);
    fail(&t, ip2, "r@x.no", None, 21);
    let right = begin(&t, ip2, "r@x.no", None, 22).unwrap();
    let wrong = begin(&t, ip2, "r@x.no", None, 23).unwrap();
    right.succeeded();
    assert_eq!(wrong.failed(Duration::ZERO).failures, 1);
}

#[test]
fn account_threshold_is_higher_and_spans_ips() {
    let t = Throttle::default();
    // 4 × 2 × 2 = 16 distinct failures from 16 IPs (one each) lock the account.
    for i in 0..16u8 {
        let ip = IpAddr::from([127, 1, 0, i]);
        let tag = fingerprint("t3@x.no", &Secret::new(format!("p{i}")));
        let p = fail(&t, ip, "t3@x.no", Some("t3@x.no"), tag);
        assert_eq!(p.locked, i == 15, "after {} failures", i + 1);
    }
    let fresh = IpAddr::from([127, 1, 1, 1]);
    assert_eq!(
        locked(&t, fresh, "t3@x.no", Some("t3@x.no")),
        Some(Locked::Account)
    );
}

#[test]
fn unknown_names_stay_bounded() {
    let t = Throttle::default();
    let ip = IpAddr::from([127, 2, 0, 1]);
    for i in 0..(MAX_ENTRIES + 50) {
        fail(&t, ip, &format!("nobody{i}@x.no"), None, 7);
    }
    assert!(t.state.lock().unwrap().by_login.len() <= MAX_ENTRIES);
}

#[test]
fn spraying_names_does_not_evict_a_lock_out() {
    let t = Throttle::default();
    let ip = IpAddr::from([127, 3, 0, 1]);
    for i in 0..4 {
        fail(&t, ip, "victim@x.no", None, i + 10);
    }
    assert_eq!(locked(&t, ip, "victim@x.no", None), Some(Locked::Client));
    for i in 0..(MAX_ENTRIES + 10) {
        fail(&t, ip, &format!("spray{i}@x.no"), None, 7);
    }
    assert_eq!(locked(&t, ip, "victim@x.no", None), Some(Locked::Client));
}

#[test]
fn ipv6_clients_count_per_64() {
    let t = Throttle::default();
    for i in 0..4u16 {
        let ip = IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, i + 1]);
        fail(&t, ip, "v6@x.no", None, u64::from(i) + 10);
    }
    let same_64 = IpAddr::from([0x2001, 0xdb8, 0, 1, 0xffff, 0, 0, 9]);
    let other_64 = IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]);
    assert_eq!(locked(&t, same_64, "v6@x.no", None), Some(Locked::Client));
    assert_eq!(locked(&t, other_64, "v6@x.no", None), None);
}

/// On a dual-stack listener IPv4 clients arrive as `::ffff:a.b.c.d`: one of them locked
/// out must not lock out the others (their /64 is all `::`).
#[test]
fn ipv4_mapped_clients_are_keyed_as_ipv4() {
    let t = Throttle::default();
    let mapped = |last: u8| IpAddr::V6(std::net::Ipv4Addr::new(10, 0, 0, last).to_ipv6_mapped());
    for i in 0..4 {
        fail(&t, mapped(1), "m@x.no", None, i + 10);
    }
    assert_eq!(locked(&t, mapped(1), "m@x.no", None), Some(Locked::Client));
    assert_eq!(locked(&t, mapped(2), "m@x.no", None), None);
    // The same client over IPv4 directly is the same key.
    let v4 = IpAddr::from([10, 0, 0, 1]);
    assert_eq!(locked(&t, v4, "m@x.no", None), Some(Locked::Client));
    assert_eq!(t.list()[0].client, Some(v4));
}

#[test]
fn list_shows_lock_outs_and_clear_lifts_them() {
    let t = Throttle::default();
    let ip = IpAddr::from([127, 5, 0, 1]);
    for i in 0..4 {
        fail(&t, ip, "l1@x.no", None, i + 10);
        fail(&t, ip, "l2@x.no", None, i + 10);
    }
    fail(&t, ip, "l3@x.no", None, 10);
    let listed = t.list();
    let names: Vec<&str> = listed.iter().map(|l| l.login.as_str()).collect();
    assert_eq!(names, ["l1@x.no", "l2@x.no"], "{listed:?}");
    assert!(listed
        .iter()
        .all(|l| l.failures == 4 && l.client == Some(ip)));
    assert_eq!(t.clear(Some("L1@x.no")), 1);
    assert_eq!(locked(&t, ip, "l1@x.no", None), None);
    assert_eq!(t.list().len(), 1);
    assert_eq!(t.clear(None), 1);
    assert!(t.list().is_empty());
    // The count went too: four more guesses before the next lock-out.
    assert!(!fail(&t, ip, "l2@x.no", None, 10).locked);
}

#[test]
fn wait_text_rounds_up() {
    let text = |ms| wait_text(Duration::from_millis(ms));
    assert_eq!(text(1), "1 s");
    assert_eq!(text(59_000), "59 s");
    assert_eq!(text(299_001), "5 min 0 s");
    assert_eq!(text(3_600_000), "1 h 0 min");
}
