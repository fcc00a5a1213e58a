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

mod entry;
mod keys;
mod list;
mod lockout;
#[cfg(test)]
mod tests;
mod verify;

pub use keys::fingerprint;
pub use list::Listed;
pub use lockout::{delay_for, wait_text, Locked, Lockout, Penalty};
pub use verify::{verify, Refusal};

use crate::config::ThrottleConfig;
use entry::{Admit, Entry};
use keys::login_key;
use lockout::{account_cfg, lock_at};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Most IP + login-name entries kept; beyond, the one with the oldest failure is evicted.
pub const MAX_ENTRIES: usize = 10_000;

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
