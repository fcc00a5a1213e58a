//! The lock-outs as `mailgate throttle` sees them: listed, and cleared.

use super::keys::name_key;
use super::{State, Throttle};
use std::net::IpAddr;
use std::time::{Duration, Instant};

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
        let wanted = |n: &String| name.as_ref().is_none_or(|w| w == n);
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
