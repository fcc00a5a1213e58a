//! Whether an account's client polls — logs in at a steady interval, as a CRM inbox does every
//! few minutes — and when it will log in next: what pre-opening ([`super::pre_open`]) opens a
//! connection for. Two clients of one account, or a person reading mail now and then, log in
//! at uneven intervals and are never taken for a poller.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Logins looked at: their three intervals must agree.
const LOGINS: usize = 4;

/// How far the intervals may differ and still be one client's timer: a second (the client's
/// own timer and its way to the gateway wander a little) or a tenth of the interval,
/// whichever is more.
fn tolerance(interval: Duration) -> Duration {
    (interval / 10).max(Duration::from_secs(1))
}

/// An account's last logins.
#[derive(Default)]
pub(super) struct Polls {
    logins: VecDeque<Instant>,
}

impl Polls {
    /// A login at `at` (logins come in order).
    pub(super) fn login(&mut self, at: Instant) {
        if self.logins.len() == LOGINS {
            self.logins.pop_front();
        }
        self.logins.push_back(at);
    }

    /// When the next login is expected: the last one plus the interval, when the last
    /// [`LOGINS`] came at a steady one; `None` otherwise.
    pub(super) fn next(&self) -> Option<Instant> {
        if self.logins.len() < LOGINS {
            return None;
        }
        let gaps: Vec<Duration> = self
            .logins
            .iter()
            .zip(self.logins.iter().skip(1))
            .map(|(a, b)| b.saturating_duration_since(*a))
            .collect();
        let (min, max) = (gaps.iter().min()?, gaps.iter().max()?);
        let interval = gaps.iter().sum::<Duration>() / gaps.len() as u32;
        let last = *self.logins.back()?;
        (!min.is_zero() && *max - *min <= tolerance(interval)).then(|| last + interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logins at these offsets (seconds, as fractions) from one start.
    fn polls(offsets: &[f64]) -> (Polls, Instant) {
        let start = Instant::now();
        let mut p = Polls::default();
        for s in offsets {
            p.login(start + Duration::from_secs_f64(*s));
        }
        (p, start)
    }

    fn expected(offsets: &[f64]) -> Option<f64> {
        let (p, start) = polls(offsets);
        p.next().map(|t| (t - start).as_secs_f64())
    }

    fn assert_expected(offsets: &[f64], want: f64) {
        let next = expected(offsets).unwrap_or(f64::NAN);
        assert!(
            (next - want).abs() < 1e-6,
            "{offsets:?}: {next}, not {want}"
        );
    }

    #[test]
    fn a_steady_interval_gives_the_next_login() {
        // Every five minutes, each a little late or early: the mean interval after the last.
        assert_expected(&[0.0, 300.0, 600.0, 900.0], 1200.0);
        assert_expected(&[0.0, 299.0, 601.0, 900.0], 1200.0);
        // Short intervals may wander by a second; long ones by a tenth.
        assert_expected(&[0.0, 3.0, 6.9, 9.9], 13.2);
        assert_expected(&[0.0, 600.0, 1240.0, 1830.0], 2440.0);
        // Only the last four logins count: an old irregular one is forgotten.
        assert_expected(&[0.0, 50.0, 110.0, 170.0, 230.0], 290.0);
    }

    #[test]
    fn uneven_or_too_few_logins_give_nothing() {
        assert_eq!(expected(&[]), None);
        assert_eq!(expected(&[0.0, 60.0, 120.0]), None);
        // A person reading mail, or two clients of one account.
        assert_eq!(expected(&[0.0, 60.0, 200.0, 260.0]), None);
        assert_eq!(expected(&[0.0, 3.0, 5.5, 9.5]), None);
        assert_eq!(expected(&[0.0, 600.0, 1300.0, 1800.0]), None);
        // Two logins at one moment are two clients, however regular the rest.
        assert_eq!(expected(&[0.0, 0.0, 0.0, 0.0]), None);
        assert_eq!(expected(&[0.0, 0.5, 0.5, 1.0]), None);
    }
}
