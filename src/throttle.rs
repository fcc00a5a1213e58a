//! Login throttling across connections: failed logins are counted per client IP + login name
//! and per configured account; past a threshold each failed answer waits longer, and past twice
//! the threshold the key is locked out for a cool-down.
//!
//! Why these keys. All of mailgate's clients are usually on 127.0.0.1, so "per IP" alone would
//! let one misconfigured client lock every local client out. The primary key is therefore
//! IP + login name, and the account as a whole (any IP, e.g. a local attacker binding many
//! 127.x.y.z source addresses) gets a threshold [`ThrottleConfig::ACCOUNT_FACTOR`] times higher.
//!
//! Why repeats do not count. As in Dovecot's auth penalty, a password that is the same as one
//! of the last few failed ones for that key does not raise the count: a client configured with
//! a wrong password retries the same one forever and should not escalate to a lock-out, while a
//! guesser must try new ones. Passwords are remembered only as a truncated HMAC under a random
//! per-process key.
//!
//! During a lock-out every login for the key is refused *without checking the password* (else
//! guessing would go on at full speed and only the answers would differ), also the right one.
//! A success is never delayed and clears the IP + login counter. Entries are forgotten
//! `lockout` after their last failure; the IP + login map holds at most [`MAX_ENTRIES`] entries
//! (unknown login names cannot grow it without bound: the oldest unlocked entry is evicted), and
//! the per-account map only ever holds configured accounts.

use crate::account::{self, LoginFailure};
use crate::config::{Account, Config, ThrottleConfig};
use crate::metrics;
use crate::secret::Secret;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tracing::warn;

/// Most IP + login-name entries kept; beyond, the one with the oldest failure is evicted.
pub const MAX_ENTRIES: usize = 10_000;
/// Recent failed passwords remembered per key (Dovecot keeps 10 CRC32s; 8 HMACs do here).
const RECENT: usize = 8;
/// Longest login name kept as a key (longer ones are cut): bounded memory per entry.
const MAX_LOGIN: usize = 256;
/// The first throttled failure waits at least this long (doubling from there).
const MIN_STEP: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
struct Entry {
    /// Distinct failed passwords.
    failures: u32,
    /// Tags of recent failed passwords (0 = empty slot).
    recent: [u64; RECENT],
    last: Instant,
    locked_until: Option<Instant>,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Entry {
            failures: 0,
            recent: [0; RECENT],
            last: now,
            locked_until: None,
        }
    }

    fn locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|t| now < t)
    }

    /// Forgotten: no failure within `lockout` and not locked.
    fn expired(&self, now: Instant, lockout: Duration) -> bool {
        !self.locked(now) && now.duration_since(self.last) >= lockout
    }

    /// Records a failure; returns the failure count after it.
    fn fail(&mut self, tag: u64, now: Instant, lock_at: u32, lockout: Duration) -> u32 {
        self.last = now;
        if !self.recent.contains(&tag) {
            self.recent.rotate_right(1);
            self.recent[0] = tag;
            self.failures = self.failures.saturating_add(1);
        }
        if self.failures >= lock_at {
            self.locked_until = Some(now + lockout);
        }
        self.failures
    }
}

#[derive(Default)]
struct State {
    by_login: HashMap<(IpAddr, String), Entry>,
    by_account: HashMap<String, Entry>,
}

/// The failure counts. One per process ([`global`]): it outlives config reloads, so a SIGHUP
/// does not forgive anyone.
#[derive(Default)]
pub struct Throttle {
    state: Mutex<State>,
}

/// The process's throttle.
pub fn global() -> &'static Throttle {
    static THROTTLE: OnceLock<Throttle> = OnceLock::new();
    THROTTLE.get_or_init(Throttle::default)
}

/// The client part of a key: the address, but for IPv6 only its /64 (one host usually has a
/// whole /64 to pick source addresses from; Dovecot's auth penalty groups IPv6 likewise).
fn client(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if !v6.is_loopback() => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        other => other,
    }
}

fn login_key(ip: IpAddr, login: &str) -> (IpAddr, String) {
    let ip = client(ip);
    let name: String = login
        .trim()
        .to_lowercase()
        .chars()
        .take(MAX_LOGIN)
        .collect();
    (ip, name)
}

/// A keyed 64-bit fingerprint of (login, password): equal for a repeated password, useless
/// to anyone without the per-process key.
pub fn fingerprint(login: &str, password: &Secret) -> u64 {
    static KEY: OnceLock<Option<ring::hmac::Key>> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &ring::rand::SystemRandom::new()).ok()
    });
    let Some(key) = key else {
        // No randomness: treat every password as new (counts every failure; never weaker).
        return rand::random::<u64>() | 1;
    };
    let mut ctx = ring::hmac::Context::with_key(key);
    ctx.update(login.trim().to_lowercase().as_bytes());
    ctx.update(&[0]);
    ctx.update(password.expose().as_bytes());
    let t = ctx.sign();
    let mut b = [0u8; 8];
    b.copy_from_slice(&t.as_ref()[..8]);
    // 0 marks an empty slot.
    u64::from_le_bytes(b) | 1
}

/// Why a login is refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    /// This client IP failed too often for this login name.
    Client,
    /// The account failed too often from all clients together.
    Account,
}

impl Locked {
    /// Label for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Locked::Client => "client",
            Locked::Account => "account",
        }
    }
}

/// What a failed login costs the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Penalty {
    /// Extra wait before the failure is answered (zero below the threshold).
    pub delay: Duration,
    /// Distinct failures counted for this IP + login.
    pub failures: u32,
    /// The key is now locked out: the next attempts are refused for the cool-down.
    pub locked: bool,
}

impl Throttle {
    /// Before verifying: is this IP + login, or the account, locked out? `account` is the
    /// configured account's address when the login name names one.
    pub fn check(
        &self,
        cfg: &ThrottleConfig,
        ip: IpAddr,
        login: &str,
        account: Option<&str>,
    ) -> Result<(), Locked> {
        if cfg.threshold == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let Ok(state) = self.state.lock() else {
            return Ok(());
        };
        if state
            .by_login
            .get(&login_key(ip, login))
            .is_some_and(|e| e.locked(now))
        {
            return Err(Locked::Client);
        }
        if let Some(a) = account {
            if state
                .by_account
                .get(&a.to_lowercase())
                .is_some_and(|e| e.locked(now))
            {
                return Err(Locked::Account);
            }
        }
        Ok(())
    }
}

/// The growing delay for the `failures`-th distinct failure: nothing up to the threshold,
/// then `step`, 2×`step`, 4×`step` … up to `max_delay`. `step` is the configured
/// `auth_failure_delay` (at least [`MIN_STEP`]), so the first throttled answer waits about twice
/// as long as an ordinary failure.
pub fn delay_for(cfg: &ThrottleConfig, failures: u32, base: Duration) -> Duration {
    if cfg.threshold == 0 || failures <= cfg.threshold {
        return Duration::ZERO;
    }
    let step = base.max(MIN_STEP);
    let doublings = (failures - cfg.threshold).min(20);
    step.saturating_mul(1 << doublings).min(cfg.max_delay)
}

impl Throttle {
    /// After a failed verification: counts it and says what it costs. `base` is the ordinary
    /// failure delay (`auth_failure_delay`).
    pub fn failed(
        &self,
        cfg: &ThrottleConfig,
        ip: IpAddr,
        login: &str,
        account: Option<&str>,
        fingerprint: u64,
        base: Duration,
    ) -> Penalty {
        let none = Penalty {
            delay: Duration::ZERO,
            failures: 0,
            locked: false,
        };
        if cfg.threshold == 0 {
            return none;
        }
        let now = Instant::now();
        let Ok(mut state) = self.state.lock() else {
            return none;
        };
        let t = fingerprint;
        let lock_at = cfg.threshold.saturating_mul(2);
        let key = login_key(ip, login);
        if !state.by_login.contains_key(&key) && state.by_login.len() >= MAX_ENTRIES {
            state.by_login.retain(|_, e| !e.expired(now, cfg.lockout));
            if state.by_login.len() >= MAX_ENTRIES {
                let oldest = state
                    .by_login
                    .iter()
                    // Unlocked entries go first: spraying names must not lift a lock-out.
                    .min_by_key(|(_, e)| (e.locked(now), e.last))
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    state.by_login.remove(&k);
                }
            }
        }
        let entry = state.by_login.entry(key).or_insert_with(|| Entry::new(now));
        if entry.expired(now, cfg.lockout) {
            *entry = Entry::new(now);
        }
        let failures = entry.fail(t, now, lock_at, cfg.lockout);
        let mut locked = entry.locked(now);
        let mut delay = delay_for(cfg, failures, base);
        if let Some(a) = account {
            let account_cfg = ThrottleConfig {
                threshold: cfg.threshold.saturating_mul(ThrottleConfig::ACCOUNT_FACTOR),
                ..*cfg
            };
            let e = state
                .by_account
                .entry(a.to_lowercase())
                .or_insert_with(|| Entry::new(now));
            if e.expired(now, cfg.lockout) {
                *e = Entry::new(now);
            }
            let n = e.fail(t, now, account_cfg.threshold.saturating_mul(2), cfg.lockout);
            locked |= e.locked(now);
            delay = delay.max(delay_for(&account_cfg, n, base));
        }
        Penalty {
            delay,
            failures,
            locked,
        }
    }

    /// After a successful login: clears this IP + login's count. The per-account count is left to
    /// expire (one client's success says nothing about guesses from elsewhere).
    pub fn succeeded(&self, ip: IpAddr, login: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.by_login.remove(&login_key(ip, login));
        }
    }
}

/// Why a local login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown user or wrong password (the client hears the same for both).
    Failed(LoginFailure),
    /// Locked out for the cool-down: the password was not checked.
    Throttled(Locked),
}

/// The local login with throttling: refuses a locked-out client or account at once, else
/// verifies the password; a failure is counted, logged, counted in the login metric and
/// answered only after `auth_failure_delay` or the throttle's longer delay. A success clears
/// this client's count and is never delayed; its metric is the caller's (IMAP counts `ok`
/// only once the upstream login worked too).
pub async fn verify(
    config: &Arc<Config>,
    protocol: &'static str,
    ip: IpAddr,
    login: &str,
    password: Secret,
) -> Result<Arc<Account>, Refusal> {
    let cfg = &config.server.throttle;
    let known = config.account(login).map(|a| a.email.clone());
    // Bounded; the log formatter quotes and escapes it (see `logfmt`).
    let printable: String = login.chars().take(128).collect();
    if let Err(locked) = global().check(cfg, ip, login, known.as_deref()) {
        metrics::login(protocol, "throttled", known.as_deref());
        warn!(login = %printable, locked = locked.as_str(), "login refused: too many failed logins");
        tokio::time::sleep(config.server.auth_failure_delay).await;
        return Err(Refusal::Throttled(locked));
    }
    let fp = fingerprint(login, &password);
    match account::verify(config, login, password).await {
        Ok(a) => {
            global().succeeded(ip, login);
            Ok(a)
        }
        Err(failure) => {
            let base = config.server.auth_failure_delay;
            let p = global().failed(cfg, ip, login, known.as_deref(), fp, base);
            metrics::login(protocol, failure.as_str(), known.as_deref());
            let delay = base.max(p.delay);
            warn!(
                login = %printable,
                reason = failure.as_str(),
                throttle_failures = p.failures,
                delay_ms = delay.as_millis() as u64,
                locked = p.locked,
                "local login failed"
            );
            tokio::time::sleep(delay).await;
            Err(Refusal::Failed(failure))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ThrottleConfig {
        ThrottleConfig {
            threshold: 2,
            max_delay: Duration::from_millis(800),
            lockout: Duration::from_secs(60),
        }
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
        let c = cfg();
        let t = Throttle::default();
        let ip: IpAddr = "127.0.0.42".parse().unwrap();
        let base = Duration::ZERO;
        // The same wrong password over and over: never locked.
        for _ in 0..10 {
            let p = t.failed(
                &c,
                ip,
                "t1@x.no",
                None,
                fingerprint("t1@x.no", &Secret::from("same")),
                base,
            );
            assert_eq!(p.failures, 1);
            assert!(!p.locked);
        }
        assert_eq!(t.check(&c, ip, "T1@x.no", None), Ok(()));
        // Distinct ones: locked at twice the threshold, for this IP + name only.
        let mut last = None;
        for i in 0..4 {
            last = Some(t.failed(
                &c,
                ip,
                "t1@x.no",
                None,
                fingerprint("t1@x.no", &Secret::new(format!("g{i}"))),
                base,
            ));
        }
        let last = last.unwrap();
        assert!(last.locked, "{last:?}");
        assert_eq!(t.check(&c, ip, "t1@x.no", None), Err(Locked::Client));
        let other: IpAddr = "127.0.0.43".parse().unwrap();
        assert_eq!(t.check(&c, other, "t1@x.no", None), Ok(()));
        assert_eq!(t.check(&c, ip, "t2@x.no", None), Ok(()));
        t.succeeded(ip, "t1@x.no");
        assert_eq!(t.check(&c, ip, "t1@x.no", None), Ok(()));
    }

    #[test]
    fn account_threshold_is_higher_and_spans_ips() {
        let c = cfg();
        let t = Throttle::default();
        let base = Duration::ZERO;
        // 4 × 2 × 2 = 16 distinct failures from 16 IPs (one each) lock the account.
        for i in 0..16u8 {
            let ip = IpAddr::from([127, 1, 0, i]);
            let p = t.failed(
                &c,
                ip,
                "t3@x.no",
                Some("t3@x.no"),
                fingerprint("t3@x.no", &Secret::new(format!("p{i}"))),
                base,
            );
            assert_eq!(p.locked, i == 15, "after {} failures", i + 1);
        }
        let fresh = IpAddr::from([127, 1, 1, 1]);
        assert_eq!(
            t.check(&c, fresh, "t3@x.no", Some("t3@x.no")),
            Err(Locked::Account)
        );
    }

    #[test]
    fn unknown_names_stay_bounded() {
        let c = cfg();
        let t = Throttle::default();
        let ip = IpAddr::from([127, 2, 0, 1]);
        for i in 0..(MAX_ENTRIES + 50) {
            t.failed(&c, ip, &format!("nobody{i}@x.no"), None, 7, Duration::ZERO);
        }
        assert!(t.state.lock().unwrap().by_login.len() <= MAX_ENTRIES);
    }

    #[test]
    fn spraying_names_does_not_evict_a_lock_out() {
        let c = cfg();
        let t = Throttle::default();
        let ip = IpAddr::from([127, 3, 0, 1]);
        for i in 0..4 {
            t.failed(&c, ip, "victim@x.no", None, i + 10, Duration::ZERO);
        }
        assert_eq!(t.check(&c, ip, "victim@x.no", None), Err(Locked::Client));
        for i in 0..(MAX_ENTRIES + 10) {
            t.failed(&c, ip, &format!("spray{i}@x.no"), None, 7, Duration::ZERO);
        }
        assert_eq!(t.check(&c, ip, "victim@x.no", None), Err(Locked::Client));
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let c = cfg();
        let t = Throttle::default();
        for i in 0..4u16 {
            let ip = IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, i + 1]);
            t.failed(&c, ip, "v6@x.no", None, u64::from(i) + 10, Duration::ZERO);
        }
        let same_64 = IpAddr::from([0x2001, 0xdb8, 0, 1, 0xffff, 0, 0, 9]);
        let other_64 = IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]);
        assert_eq!(t.check(&c, same_64, "v6@x.no", None), Err(Locked::Client));
        assert_eq!(t.check(&c, other_64, "v6@x.no", None), Ok(()));
    }
}
