//! What this process saw of each account, for the connect page's Accounts table: the last
//! successful client login (IMAP or SMTP), and — kept by `setup` in a [`Recent`] of its own —
//! the last check. In memory only (the page runs in the server process); bounded: at most
//! [`MAX_ACCOUNTS`] addresses each, the oldest entry giving way. A leaf: the protocols record,
//! `setup` reads.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Addresses remembered at most (far above any gateway's account count; a bound all the same).
pub const MAX_ACCOUNTS: usize = 10_000;

/// Which client protocol logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// An IMAP client.
    Imap,
    /// An SMTP client.
    Smtp,
}

/// A successful client login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Login {
    /// Unix time.
    pub at: u64,
    /// Which protocol.
    pub protocol: Protocol,
}

/// One record per address (any case), with its Unix time; bounded by [`MAX_ACCOUNTS`].
pub struct Recent<T> {
    map: Mutex<HashMap<String, (u64, T)>>,
}

impl<T: Clone> Default for Recent<T> {
    fn default() -> Self {
        Recent {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Clone> Recent<T> {
    /// Keeps `value` as `email`'s record at Unix time `at`.
    pub fn put(&self, email: &str, at: u64, value: T) {
        let key = email.trim().to_ascii_lowercase();
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_ACCOUNTS && !map.contains_key(&key) {
            if let Some(oldest) = map.iter().min_by_key(|(_, v)| v.0).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(key, (at, value));
    }

    /// `email`'s record, if any.
    pub fn get(&self, email: &str) -> Option<T> {
        let map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&email.trim().to_ascii_lowercase())
            .map(|(_, v)| v.clone())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().map_or(0, |m| m.len())
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn logins() -> &'static Recent<Login> {
    static LOGINS: OnceLock<Recent<Login>> = OnceLock::new();
    LOGINS.get_or_init(Recent::default)
}

/// Records that a client logged in to `email` just now.
pub fn login(email: &str, protocol: Protocol) {
    let at = unix_now();
    logins().put(email, at, Login { at, protocol });
}

/// The last successful client login to `email` (any case) since the process started.
pub fn last_login(email: &str) -> Option<Login> {
    logins().get(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_by_lower_case_and_bounded() {
        let recent = Recent::default();
        recent.put("Ola@Example.no", 5, 'a');
        assert_eq!(recent.get("ola@example.NO"), Some('a'));
        for i in 0..MAX_ACCOUNTS + 3 {
            recent.put(&format!("u{i}@x"), 10 + i as u64, 'b');
        }
        assert_eq!(recent.len(), MAX_ACCOUNTS);
        assert_eq!(recent.get("ola@example.no"), None, "the oldest gave way");
        login("Kari@Example.no", Protocol::Smtp);
        assert_eq!(
            last_login("kari@example.NO").map(|l| l.protocol),
            Some(Protocol::Smtp)
        );
    }
}
