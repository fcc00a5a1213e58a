//! What failing costs: the growing delay, the lock-out and how it is told to people.

use crate::config::ThrottleConfig;
use std::time::Duration;

/// The first throttled failure waits at least this long (doubling from there).
const MIN_STEP: Duration = Duration::from_millis(100);

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
pub(super) fn account_cfg(cfg: &ThrottleConfig) -> ThrottleConfig {
    ThrottleConfig {
        threshold: cfg.threshold.saturating_mul(ThrottleConfig::ACCOUNT_FACTOR),
        ..*cfg
    }
}

pub(super) fn lock_at(cfg: &ThrottleConfig) -> u32 {
    cfg.threshold.saturating_mul(2)
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
