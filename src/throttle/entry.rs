//! One throttle key's counts: distinct failed passwords, the recent ones (by tag), the attempts
//! being verified, and the lock-out; and whether a new attempt may be verified now.

use std::time::{Duration, Instant};

/// Recent failed passwords remembered per key (Dovecot keeps 10 CRC32s; 8 HMACs do here).
const RECENT: usize = 8;

#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// Distinct failed passwords.
    pub(super) failures: u32,
    /// Tags of recent failed passwords (0 = empty slot).
    pub(super) recent: [u64; RECENT],
    /// Tags of the attempts being verified now, one per attempt (at most one per session).
    pub(super) pending: Vec<u64>,
    pub(super) last: Instant,
    pub(super) locked_until: Option<Instant>,
}

/// Whether an entry lets a new attempt be verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    Now,
    /// Attempts being verified may use up the remaining guesses: wait for them.
    Wait,
    /// Locked out for this long.
    Locked(Duration),
}

impl Entry {
    pub(super) fn new(now: Instant) -> Self {
        Entry {
            failures: 0,
            recent: [0; RECENT],
            pending: Vec::new(),
            last: now,
            locked_until: None,
        }
    }

    pub(super) fn remaining(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .filter(|&t| now < t)
            .map(|t| t.duration_since(now))
    }

    pub(super) fn locked(&self, now: Instant) -> bool {
        self.remaining(now).is_some()
    }

    /// Starts the counts afresh (keeping the attempts in flight) once no failure came within
    /// `lockout` or a lock-out ended.
    pub(super) fn refresh(&mut self, now: Instant, lockout: Duration) {
        let lock_over = self.locked_until.is_some_and(|t| now >= t);
        if lock_over || now.duration_since(self.last) >= lockout {
            self.forgive(now);
        }
    }

    pub(super) fn forgive(&mut self, now: Instant) {
        let pending = std::mem::take(&mut self.pending);
        *self = Entry {
            pending,
            ..Entry::new(now)
        };
    }

    /// Can be dropped: nothing counted, nothing in flight.
    pub(super) fn idle(&self, now: Instant, lockout: Duration) -> bool {
        self.pending.is_empty()
            && !self.locked(now)
            && (self.failures == 0 || now.duration_since(self.last) >= lockout)
    }

    /// Distinct new passwords among the attempts in flight (a repeat of a failed one or of
    /// another in flight does not count again).
    pub(super) fn new_in_flight(&self) -> u32 {
        let mut n = 0;
        for (i, t) in self.pending.iter().enumerate() {
            if !self.recent.contains(t) && !self.pending[..i].contains(t) {
                n += 1;
            }
        }
        n
    }

    pub(super) fn admit(
        &mut self,
        tag: u64,
        now: Instant,
        lock_at: u32,
        lockout: Duration,
    ) -> Admit {
        self.refresh(now, lockout);
        if let Some(left) = self.remaining(now) {
            return Admit::Locked(left);
        }
        if self.recent.contains(&tag) || self.pending.contains(&tag) {
            return Admit::Now;
        }
        let in_flight = self.new_in_flight();
        if self.failures.saturating_add(in_flight) < lock_at {
            Admit::Now
        } else if in_flight > 0 {
            Admit::Wait
        } else {
            // The limit was lowered by a reload below the count: the key is over it now.
            self.locked_until = Some(now + lockout);
            Admit::Locked(lockout)
        }
    }

    pub(super) fn release(&mut self, tag: u64) {
        if let Some(i) = self.pending.iter().position(|&t| t == tag) {
            self.pending.swap_remove(i);
        }
    }

    /// Records a failure; returns the failure count after it.
    pub(super) fn fail(&mut self, tag: u64, now: Instant, lock_at: u32, lockout: Duration) -> u32 {
        self.refresh(now, lockout);
        self.last = now;
        if !self.recent.contains(&tag) {
            self.recent.rotate_right(1);
            self.recent[0] = tag;
            self.failures = self.failures.saturating_add(1);
        }
        if self.failures >= lock_at && !self.locked(now) {
            self.locked_until = Some(now + lockout);
        }
        self.failures
    }
}
