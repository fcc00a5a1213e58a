//! The folder lists learned per account, kept for [`TTL`] so that a client that logs in every
//! minute (or several sessions at once) pays for the LIST once. Keyed by the account's email,
//! lower-cased; at most [`MAX_ACCOUNTS`] lists (the oldest dropped first).

use super::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a learned list is used.
pub const TTL: Duration = Duration::from_secs(10 * 60);
/// Accounts whose lists are kept.
pub const MAX_ACCOUNTS: usize = 10_000;

/// The learned list for `account`, if one younger than [`TTL`] is kept.
pub fn get(account: &str) -> Option<Arc<Vec<Entry>>> {
    lock().get(&key(account), Instant::now())
}

/// Keeps `entries` as `account`'s list from now on.
pub fn put(account: &str, entries: Arc<Vec<Entry>>) {
    lock().put(key(account), entries, Instant::now());
}

/// Forgets `account`'s list (the folders changed, e.g. after CREATE, DELETE or RENAME).
pub fn invalidate(account: &str) {
    lock().lists.remove(&key(account));
}

fn key(account: &str) -> String {
    account.trim().to_lowercase()
}

fn lock() -> std::sync::MutexGuard<'static, Lists> {
    static LISTS: OnceLock<Mutex<Lists>> = OnceLock::new();
    let lists = LISTS.get_or_init(|| Mutex::new(Lists::default()));
    // A panic while holding the lock leaves plain data behind; it is still usable.
    lists.lock().unwrap_or_else(|e| e.into_inner())
}

/// The lists with when each was learned; the clock is passed in (tests need no waiting).
#[derive(Default)]
struct Lists {
    lists: HashMap<String, (Instant, Arc<Vec<Entry>>)>,
}

impl Lists {
    fn get(&mut self, account: &str, now: Instant) -> Option<Arc<Vec<Entry>>> {
        let (at, entries) = self.lists.get(account)?;
        if now.saturating_duration_since(*at) < TTL {
            return Some(entries.clone());
        }
        self.lists.remove(account);
        None
    }

    fn put(&mut self, account: String, entries: Arc<Vec<Entry>>, now: Instant) {
        if !self.lists.contains_key(&account) && self.lists.len() >= MAX_ACCOUNTS {
            self.lists
                .retain(|_, (at, _)| now.saturating_duration_since(*at) < TTL);
            if self.lists.len() >= MAX_ACCOUNTS {
                let oldest = self
                    .lists
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    self.lists.remove(&oldest);
                }
            }
        }
        self.lists.insert(account, (now, entries));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(name: &str) -> Arc<Vec<Entry>> {
        Arc::new(vec![Entry {
            name: name.into(),
            wire: name.as_bytes().to_vec(),
            delimiter: Some('/'),
            attributes: vec![],
        }])
    }

    #[test]
    fn kept_for_the_ttl() {
        let mut l = Lists::default();
        let t0 = Instant::now();
        l.put("ola@x".into(), entries("Sent"), t0);
        assert_eq!(
            l.get("ola@x", t0 + TTL - Duration::from_secs(1)).unwrap()[0].name,
            "Sent"
        );
        assert!(l.get("kari@x", t0).is_none());
        assert!(l.get("ola@x", t0 + TTL).is_none());
        assert!(l.lists.is_empty(), "an expired list is dropped");
    }

    #[test]
    fn bounded_oldest_first() {
        let mut l = Lists::default();
        let t0 = Instant::now();
        for i in 0..MAX_ACCOUNTS {
            l.put(
                format!("a{i}"),
                entries("Sent"),
                t0 + Duration::from_millis(i as u64),
            );
        }
        let later = t0 + Duration::from_secs(1);
        l.put("newcomer".into(), entries("Sendt"), later);
        assert_eq!(l.lists.len(), MAX_ACCOUNTS);
        assert!(l.get("a0", later).is_none());
        assert!(l.get("a1", later).is_some());
        assert_eq!(l.get("newcomer", later).unwrap()[0].name, "Sendt");
    }

    #[test]
    fn process_wide_by_lower_case_email() {
        put("Cache.Test@Example.NO", entries("Sent Items"));
        assert_eq!(get("cache.test@example.no").unwrap()[0].name, "Sent Items");
        invalidate("CACHE.test@example.no");
        assert!(get("cache.test@example.no").is_none());
    }
}
