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
//! guessing would go on at full speed and only the answers would differ), also the right one;
//! the refusal says how long the lock-out lasts, and `mailgate throttle clear` lifts it (see
//! `control`). A success is never delayed and clears the IP + login counter.
//!
//! Why attempts reserve. A guess counts from the moment its verification is admitted, not when
//! it fails: a new password is admitted only while the failures plus the new passwords being
//! verified stay below the lock-out count, and a login over that waits until those end (then it
//! is refused if they locked the key). So parallel connections get no more guesses than serial
//! ones, and one that waited for a verifier looks at the lock-out again before argon2 runs. Entries are forgotten
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
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tracing::warn;

mod entry;
use entry::{Admit, Entry};

/// Most IP + login-name entries kept; beyond, the one with the oldest failure is evicted.
pub const MAX_ENTRIES: usize = 10_000;
/// Longest login name kept as a key (longer ones are cut): bounded memory per entry.
const MAX_LOGIN: usize = 256;
/// The first throttled failure waits at least this long (doubling from there).
const MIN_STEP: Duration = Duration::from_millis(100);

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
    /// Told whenever an attempt ends or a lock-out is cleared (logins waiting on [`Admit::Wait`]).
    changed: tokio::sync::Notify,
}

/// The process's throttle.
pub fn global() -> &'static Throttle {
    static THROTTLE: OnceLock<Throttle> = OnceLock::new();
    THROTTLE.get_or_init(Throttle::default)
}

/// The client part of a key: the address, but for IPv6 only its /64 (one host usually has a
/// whole /64 to pick source addresses from; Dovecot's auth penalty groups IPv6 likewise). An
/// IPv4 client of a dual-stack listener (`::ffff:a.b.c.d`) is keyed by its IPv4 address, or
/// every IPv4 client would share one key.
fn client(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None if v6.is_loopback() => ip,
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

fn name_key(login: &str) -> String {
    login
        .trim()
        .to_lowercase()
        .chars()
        .take(MAX_LOGIN)
        .collect()
}

fn login_key(ip: IpAddr, login: &str) -> (IpAddr, String) {
    (client(ip), name_key(login))
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

/// Which key is locked out.
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

/// Why a login is refused before its password is checked, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Which key is locked.
    pub scope: Locked,
    /// Until the lock-out ends.
    pub remaining: Duration,
}

impl Lockout {
    /// The remaining time for people (see [`wait_text`]).
    pub fn wait_text(&self) -> String {
        wait_text(self.remaining)
    }
}

/// A lock-out's remaining time for people: `42 s`, `4 min 59 s`, `1 h 5 min` (rounded up).
pub fn wait_text(remaining: Duration) -> String {
    let secs = remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0);
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
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

/// The per-account settings: [`ThrottleConfig::ACCOUNT_FACTOR`] times the threshold.
fn account_cfg(cfg: &ThrottleConfig) -> ThrottleConfig {
    ThrottleConfig {
        threshold: cfg.threshold.saturating_mul(ThrottleConfig::ACCOUNT_FACTOR),
        ..*cfg
    }
}

fn lock_at(cfg: &ThrottleConfig) -> u32 {
    cfg.threshold.saturating_mul(2)
}

/// A login being verified: holds its reservation until [`Attempt::failed`] or
/// [`Attempt::succeeded`] (or until dropped, which releases it uncounted: the answer never
/// reached the client).
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    cfg: ThrottleConfig,
    key: (IpAddr, String),
    account: Option<String>,
    tag: u64,
    open: bool,
}

impl Throttle {
    fn lock(&self) -> Option<MutexGuard<'_, State>> {
        self.state.lock().ok()
    }

    /// Admits a login for verification, reserving its guess, or says it is locked out. Waits
    /// while attempts in flight may use up this key's remaining guesses. `account` is the
    /// configured account's address when the login name names one.
    pub async fn begin(
        &self,
        cfg: &ThrottleConfig,
        ip: IpAddr,
        login: &str,
        account: Option<&str>,
        tag: u64,
    ) -> Result<Attempt<'_>, Lockout> {
        let mut attempt = Attempt {
            throttle: self,
            cfg: *cfg,
            key: login_key(ip, login),
            account: account.map(str::to_lowercase),
            tag,
            open: false,
        };
        if cfg.threshold == 0 {
            return Ok(attempt);
        }
        loop {
            // Registered before looking, so an attempt ending in between still wakes us.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.try_begin(&attempt) {
                Some(Admit::Wait) => changed.await,
                Some(Admit::Now) => {
                    attempt.open = true;
                    return Ok(attempt);
                }
                Some(Admit::Locked(remaining)) => {
                    // Which key, asked once more; a clear in between still refuses this one.
                    let client = Lockout {
                        scope: Locked::Client,
                        remaining,
                    };
                    return Err(attempt.lockout().unwrap_or(client));
                }
                // No state (poisoned lock): let it through uncounted, as before.
                None => return Ok(attempt),
            }
        }
    }

    /// Looks at both keys; reserves the guess in both when both admit it.
    fn try_begin(&self, a: &Attempt<'_>) -> Option<Admit> {
        let now = Instant::now();
        let mut state = self.lock()?;
        let State {
            by_login,
            by_account,
        } = &mut *state;
        make_room(by_login, &a.key, now, a.cfg.lockout);
        let entry = by_login
            .entry(a.key.clone())
            .or_insert_with(|| Entry::new(now));
        let mut admit = entry.admit(a.tag, now, lock_at(&a.cfg), a.cfg.lockout);
        let mut account_entry = None;
        if let Some(name) = &a.account {
            let e = by_account
                .entry(name.clone())
                .or_insert_with(|| Entry::new(now));
            let acfg = account_cfg(&a.cfg);
            admit = match (admit, e.admit(a.tag, now, lock_at(&acfg), acfg.lockout)) {
                (Admit::Locked(d), _) | (_, Admit::Locked(d)) => Admit::Locked(d),
                (Admit::Wait, _) | (_, Admit::Wait) => Admit::Wait,
                _ => Admit::Now,
            };
            account_entry = Some(e);
        }
        if admit == Admit::Now {
            entry.pending.push(a.tag);
            if let Some(e) = account_entry {
                e.pending.push(a.tag);
            }
        }
        Some(admit)
    }

    /// After a successful login: clears this IP + login's count. The per-account count is left to
    /// expire (one client's success says nothing about guesses from elsewhere).
    fn succeeded(&self, a: &Attempt<'_>) {
        if let Some(mut state) = self.lock() {
            let now = Instant::now();
            if let Some(e) = state.by_login.get_mut(&a.key) {
                e.release(a.tag);
                e.forgive(now);
                if e.pending.is_empty() {
                    state.by_login.remove(&a.key);
                }
            }
            if let Some(e) = a.account.as_ref().and_then(|n| state.by_account.get_mut(n)) {
                e.release(a.tag);
            }
        }
        self.changed.notify_waiters();
    }

    /// After a failed verification: counts it and says what it costs. `base` is the ordinary
    /// failure delay (`auth_failure_delay`).
    fn failed(&self, a: &Attempt<'_>, base: Duration) -> Penalty {
        let mut penalty = Penalty {
            delay: Duration::ZERO,
            failures: 0,
            locked: false,
        };
        let cfg = &a.cfg;
        if let Some(mut state) = self.lock() {
            let now = Instant::now();
            let State {
                by_login,
                by_account,
            } = &mut *state;
            // Evicted meanwhile (many names sprayed): counted afresh.
            make_room(by_login, &a.key, now, cfg.lockout);
            let entry = by_login
                .entry(a.key.clone())
                .or_insert_with(|| Entry::new(now));
            entry.release(a.tag);
            penalty.failures = entry.fail(a.tag, now, lock_at(cfg), cfg.lockout);
            penalty.locked = entry.locked(now);
            penalty.delay = delay_for(cfg, penalty.failures, base);
            if let Some(name) = &a.account {
                let acfg = account_cfg(cfg);
                let e = by_account
                    .entry(name.clone())
                    .or_insert_with(|| Entry::new(now));
                e.release(a.tag);
                let n = e.fail(a.tag, now, lock_at(&acfg), cfg.lockout);
                penalty.locked |= e.locked(now);
                penalty.delay = penalty.delay.max(delay_for(&acfg, n, base));
            }
        }
        self.changed.notify_waiters();
        penalty
    }

    /// Takes back an attempt's reservation without counting it.
    fn release(&self, a: &Attempt<'_>) {
        if let Some(mut state) = self.lock() {
            if let Some(e) = state.by_login.get_mut(&a.key) {
                e.release(a.tag);
            }
            if let Some(e) = a.account.as_ref().and_then(|n| state.by_account.get_mut(n)) {
                e.release(a.tag);
            }
        }
        self.changed.notify_waiters();
    }

    /// Whether this attempt's client or account is locked out now.
    fn lockout(&self, a: &Attempt<'_>) -> Option<Lockout> {
        if a.cfg.threshold == 0 {
            return None;
        }
        let now = Instant::now();
        let state = self.lock()?;
        let client = state.by_login.get(&a.key).and_then(|e| e.remaining(now));
        if let Some(remaining) = client {
            return Some(Lockout {
                scope: Locked::Client,
                remaining,
            });
        }
        let account = a.account.as_ref().and_then(|n| state.by_account.get(n));
        account
            .and_then(|e| e.remaining(now))
            .map(|remaining| Lockout {
                scope: Locked::Account,
                remaining,
            })
    }
}

/// Before a new key goes into a full map: forgets idle entries, else evicts the oldest one,
/// entries that are locked or in flight last (spraying names must not lift a lock-out).
fn make_room(
    map: &mut HashMap<(IpAddr, String), Entry>,
    key: &(IpAddr, String),
    now: Instant,
    lockout: Duration,
) {
    if map.contains_key(key) || map.len() < MAX_ENTRIES {
        return;
    }
    map.retain(|_, e| !e.idle(now, lockout));
    if map.len() >= MAX_ENTRIES {
        let oldest = map
            .iter()
            .min_by_key(|(_, e)| (!e.pending.is_empty(), e.locked(now), e.last))
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            map.remove(&k);
        }
    }
}

impl Attempt<'_> {
    /// The lock-out that applies to this attempt now, if any (asked again after waiting for a
    /// verifier: a lock-out decided meanwhile applies).
    pub fn lockout(&self) -> Option<Lockout> {
        self.throttle.lockout(self)
    }

    /// The password was right: clears the client's count.
    pub fn succeeded(mut self) {
        if std::mem::take(&mut self.open) {
            self.throttle.succeeded(&self);
        }
    }

    /// The password was wrong: counts it; says what it costs.
    pub fn failed(mut self, base: Duration) -> Penalty {
        if std::mem::take(&mut self.open) {
            self.throttle.failed(&self, base)
        } else {
            Penalty {
                delay: Duration::ZERO,
                failures: 0,
                locked: false,
            }
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.open {
            self.throttle.release(self);
        }
    }
}

/// A lock-out, for `mailgate throttle list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The login name (or the account's address).
    pub login: String,
    /// The client (IPv4 address or IPv6 /64); `None` for the account as a whole.
    pub client: Option<IpAddr>,
    /// Distinct failures counted.
    pub failures: u32,
    /// Until the lock-out ends.
    pub remaining: Duration,
}

impl Throttle {
    /// The keys locked out now, by login name.
    pub fn list(&self) -> Vec<Listed> {
        let now = Instant::now();
        let Some(state) = self.lock() else {
            return Vec::new();
        };
        let clients = state.by_login.iter().map(|((ip, n), e)| (n, Some(*ip), e));
        let accounts = state.by_account.iter().map(|(n, e)| (n, None, e));
        let mut out: Vec<Listed> = clients
            .chain(accounts)
            .filter_map(|(login, client, e)| {
                Some(Listed {
                    login: login.clone(),
                    client,
                    failures: e.failures,
                    remaining: e.remaining(now)?,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.login, a.client).cmp(&(&b.login, b.client)));
        out
    }

    /// Forgets the counts and lock-outs of `login` (from every client, and of the account of
    /// that address), or of everyone with `None`; returns how many lock-outs ended.
    pub fn clear(&self, login: Option<&str>) -> usize {
        let now = Instant::now();
        let name = login.map(name_key);
        let wanted = |n: &String| name.as_ref().map_or(true, |w| w == n);
        let mut lifted = 0;
        if let Some(mut state) = self.lock() {
            let State {
                by_login,
                by_account,
            } = &mut *state;
            let login_entries = by_login.iter_mut().filter(|((_, n), _)| wanted(n));
            let account_entries = by_account.iter_mut().filter(|(n, _)| wanted(n));
            let entries = login_entries.map(|(_, e)| e);
            for e in entries.chain(account_entries.map(|(_, e)| e)) {
                lifted += usize::from(e.locked(now));
                e.forgive(now);
            }
            by_login.retain(|_, e| !e.pending.is_empty() || e.failures > 0);
            by_account.retain(|_, e| !e.pending.is_empty() || e.failures > 0);
        }
        self.changed.notify_waiters();
        lifted
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

/// Why a local login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown user or wrong password (the client hears the same for both).
    Failed(LoginFailure),
    /// Locked out for the cool-down: the password was not checked.
    Throttled(Lockout),
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
    let (known, printable) = (&known, &printable);
    let refuse = |lockout: Lockout| async move {
        metrics::login(protocol, "throttled", known.as_deref());
        warn!(
            login = %printable,
            locked = lockout.scope.as_str(),
            remaining_secs = lockout.remaining.as_secs(),
            "login refused: too many failed logins (`mailgate throttle clear` lifts the lock-out)"
        );
        tokio::time::sleep(config.server.auth_failure_delay).await;
        Err(Refusal::Throttled(lockout))
    };
    let fp = fingerprint(login, &password);
    let attempt = match global().begin(cfg, ip, login, known.as_deref(), fp).await {
        Ok(a) => a,
        Err(lockout) => return refuse(lockout).await,
    };
    let verified = account::verify(config, login, password, || match attempt.lockout() {
        Some(lockout) => Err(lockout),
        None => Ok(()),
    });
    match verified.await {
        Err(lockout) => {
            drop(attempt);
            refuse(lockout).await
        }
        Ok(Ok(a)) => {
            attempt.succeeded();
            Ok(a)
        }
        Ok(Err(failure)) => {
            let base = config.server.auth_failure_delay;
            let p = attempt.failed(base);
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
        let mapped =
            |last: u8| IpAddr::V6(std::net::Ipv4Addr::new(10, 0, 0, last).to_ipv6_mapped());
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
}
