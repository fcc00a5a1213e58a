//! The kept connections of the whole process, by account: who may keep one, how many, and
//! the hand-over to the next login. Each kept connection lives in its own task
//! ([`super::keeper`]); the pool holds the way to ask that task for it.

use super::reason::Reason;
use crate::config::Config;
use crate::imap::upstream::LoggedIn;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// What the pool asks of a kept connection's task.
pub enum Ask {
    /// A login wants the connection.
    HandOver(oneshot::Sender<LoggedIn>),
    /// End it, for this reason.
    Discard(Reason),
}

/// One kept connection, as the pool knows it.
pub(super) struct Entry {
    id: u64,
    ask: oneshot::Sender<Ask>,
    /// When the OAuth access token it logged in with expires (Unix seconds), if it did.
    token_expires: Option<u64>,
    /// When its keep time ends.
    until: Instant,
}

impl Entry {
    /// When the OAuth access token its connection logged in with expires (Unix seconds).
    pub(super) fn token_expires(&self) -> Option<u64> {
        self.token_expires
    }

    /// Asks its task for the connection (or to end it).
    pub(super) fn ask(self, ask: Ask) -> bool {
        self.ask.send(ask).is_ok()
    }
}

#[derive(Default)]
struct Pool {
    /// The configuration sessions start with now; a connection logged in under another is
    /// never kept or handed out.
    current: Weak<Config>,
    accounts: HashMap<String, Vec<Entry>>,
    total: usize,
    next_id: u64,
}

impl Pool {
    /// Whether sessions start with `config` now.
    fn current_is(&self, config: &Arc<Config>) -> bool {
        Weak::ptr_eq(&self.current, &Arc::downgrade(config))
    }
}

fn pool() -> MutexGuard<'static, Pool> {
    static POOL: OnceLock<Mutex<Pool>> = OnceLock::new();
    let m = POOL.get_or_init(Mutex::default);
    // A panic while holding the lock cannot leave the map inconsistent in a way that matters
    // more than losing the pool: carry on with what is there.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The pool's key for an account.
pub(super) fn key(email: &str) -> String {
    email.to_ascii_lowercase()
}

/// Sessions start with `config` from now on: every connection logged in under another is
/// ended (the account's credential or servers may have changed; a reload is rare enough that
/// keeping unchanged accounts' connections is not worth a comparison that could miss one).
pub fn config_in_use(config: &Arc<Config>) {
    let ended: Vec<(Entry, Reason)> = {
        let mut p = pool();
        if p.current_is(config) {
            return;
        }
        p.current = Arc::downgrade(config);
        p.total = 0;
        crate::metrics::imap_warm_connections(0);
        let accounts = std::mem::take(&mut p.accounts);
        accounts
            .into_iter()
            .flat_map(|(key, entries)| {
                let gone = config.account(&key).is_none();
                let reason = if gone {
                    Reason::Removed
                } else {
                    Reason::Reload
                };
                entries.into_iter().map(move |e| (e, reason))
            })
            .collect()
    };
    for (entry, reason) in ended {
        entry.ask(Ask::Discard(reason));
    }
}

/// Whether sessions start with `config` now (no reload since).
pub(super) fn is_current(config: &Arc<Config>) -> bool {
    pool().current_is(config)
}

/// Whether the account `key` has a connection kept until `at` or later.
pub(super) fn kept_at(key: &str, at: Instant) -> bool {
    pool()
        .accounts
        .get(key)
        .is_some_and(|entries| entries.iter().any(|e| e.until >= at))
}

/// A place for a connection of the account `key` logged in under `config`, to be kept until
/// `until`: its id and the receiving end its task listens on, or why it may not be kept.
pub(super) fn admit(
    key: &str,
    config: &Arc<Config>,
    token_expires: Option<u64>,
    until: Instant,
) -> Result<(u64, oneshot::Receiver<Ask>), Reason> {
    let warm = &config.server.warm_sessions;
    let mut p = pool();
    if !p.current_is(config) {
        return Err(Reason::Reload);
    }
    let kept = p.accounts.get(key).map_or(0, Vec::len);
    if kept >= warm.per_account || p.total >= warm.max_total {
        return Err(Reason::Full);
    }
    p.next_id += 1;
    let id = p.next_id;
    let (ask, rx) = oneshot::channel();
    p.accounts.entry(key.to_owned()).or_default().push(Entry {
        id,
        ask,
        token_expires,
        until,
    });
    p.total += 1;
    crate::metrics::imap_warm_connections(p.total);
    Ok((id, rx))
}

/// The account's most recently kept connection usable for a session that started under
/// `config`, and the ones found unusable on the way (with why), all out of the pool.
pub(super) fn take(
    key: &str,
    config: &Arc<Config>,
    now: u64,
) -> (Option<Entry>, Vec<(Entry, Reason)>) {
    let mut p = pool();
    let current = p.current_is(config);
    let mut unusable = Vec::new();
    let mut found = None;
    if let Some(entries) = p.accounts.get_mut(key) {
        while let Some(e) = entries.pop() {
            if !current {
                // This session's config is not the current one: leave the pool alone.
                entries.push(e);
                break;
            }
            // Usable while its token is one the token cache would still hand out.
            let margin = crate::oauth::REFRESH_MARGIN.as_secs();
            if e.token_expires
                .is_some_and(|t| t <= now.saturating_add(margin))
            {
                unusable.push((e, Reason::TokenExpired));
                continue;
            }
            found = Some(e);
            break;
        }
        if entries.is_empty() {
            p.accounts.remove(key);
        }
    }
    p.total -= unusable.len() + usize::from(found.is_some());
    crate::metrics::imap_warm_connections(p.total);
    (found, unusable)
}

/// Removes the entry `id` of `key` if it is still there (its task ended it by itself).
pub(super) fn forget(key: &str, id: u64) {
    let mut p = pool();
    let Some(entries) = p.accounts.get_mut(key) else {
        return;
    };
    let before = entries.len();
    entries.retain(|e| e.id != id);
    let removed = before - entries.len();
    if entries.is_empty() {
        p.accounts.remove(key);
    }
    p.total -= removed;
    crate::metrics::imap_warm_connections(p.total);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many connections the account `key_of` has kept now.
    fn kept(key_of: &str) -> usize {
        pool().accounts.get(&key(key_of)).map_or(0, Vec::len)
    }

    fn soon() -> Instant {
        Instant::now() + std::time::Duration::from_secs(60)
    }

    fn config() -> Arc<Config> {
        let text = "[server.warm_sessions]\nkeep_secs = 60\nper_account = 2\n\n[[account]]\nemail = \"ola@example.no\"\nlocal_password_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG\"\n\n[account.imap]\nserver = \"imap.example.no:993\"\npassword = \"x\"\n";
        Arc::new(Config::parse(text, std::path::Path::new("/etc/mailgate/test.toml")).unwrap())
    }

    /// The per-account limit, the token's margin, most recent first, and a reload ending
    /// everything (the one test of the process-wide pool).
    #[test]
    fn admit_take_and_reload() {
        let c = config();
        config_in_use(&c);
        let key = key("OLA@example.no");
        let (first, _rx1) = admit(&key, &c, None, soon()).unwrap();
        let (second, _rx2) = admit(&key, &c, Some(1_000), soon()).unwrap();
        assert_eq!(admit(&key, &c, None, soon()).err(), Some(Reason::Full));
        assert_eq!(kept("ola@example.no"), 2);
        // Kept until `soon()`: there at any time before, not after.
        assert!(kept_at(&key, soon() - std::time::Duration::from_secs(1)));
        assert!(!kept_at(&key, soon() + std::time::Duration::from_secs(1)));
        assert!(!kept_at(&super::key("kari@example.no"), Instant::now()));

        // A token good for more than the refresh margin: taken, the most recent first.
        let (found, unusable) = take(&key, &c, 1_000 - 61);
        assert_eq!(found.map(|e| e.id), Some(second));
        assert!(unusable.is_empty());
        let (second, _rx2) = admit(&key, &c, Some(1_000), soon()).unwrap();
        // Within the margin: set aside as expired, and the next one is taken.
        let (found, unusable) = take(&key, &c, 1_000 - 60);
        assert_eq!(found.map(|e| e.id), Some(first));
        let ids: Vec<_> = unusable.iter().map(|(e, r)| (e.id, *r)).collect();
        assert_eq!(ids, [(second, Reason::TokenExpired)]);
        assert_eq!(kept("ola@example.no"), 0);

        // A session under an older config neither takes nor gives back.
        let (_, _rx) = admit(&key, &c, None, soon()).unwrap();
        let newer = config();
        config_in_use(&newer);
        assert_eq!(kept("ola@example.no"), 0);
        assert!(take(&key, &c, 0).0.is_none());
        assert_eq!(admit(&key, &c, None, soon()).err(), Some(Reason::Reload));
        assert!(admit(&key, &newer, None, soon()).is_ok());
    }
}
