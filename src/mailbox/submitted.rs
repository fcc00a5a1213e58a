//! The Message-IDs submitted through the gateway in the last minutes, per account: with
//! `sent_copy = "provider"` the SMTP side records each message the provider accepted, and the
//! IMAP side claims it when the client uploads its own copy to Sent — once — so that upload
//! can be answered without storing a duplicate.
//!
//! Bounded: at most [`PER_ACCOUNT`] ids per account (the oldest dropped) and [`MAX_ACCOUNTS`]
//! accounts (the one recorded to longest ago dropped); an id counts for [`WINDOW`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a submission is remembered: a client uploads its copy right after the send.
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
/// Ids kept per account.
pub const PER_ACCOUNT: usize = 256;
/// Accounts kept.
pub const MAX_ACCOUNTS: usize = 10_000;
/// Longest Message-ID kept (RFC 5322's line limit); a longer one is not a usable key.
const MAX_ID: usize = 998;

/// The form a Message-ID is compared in: the first `<…>` of the header's value (the whole
/// value when it has no angle brackets), without any whitespace (folding, CFWS around the
/// parts); case kept. `None` when nothing is left or it is longer than a header line may be.
pub fn normalize(value: &str) -> Option<String> {
    let inner = match value.find('<') {
        Some(open) => {
            let rest = &value[open..];
            &rest[..rest.find('>').map_or(rest.len(), |close| close + 1)]
        }
        None => value,
    };
    let id: String = inner.chars().filter(|c| !c.is_whitespace()).collect();
    let empty = id.is_empty() || id == "<>" || id == "<";
    (!empty && id.len() <= MAX_ID).then_some(id)
}

/// Records that `account` submitted the message with this Message-ID (header value) now.
pub fn record(account: &str, message_id: &str) {
    if let Some(id) = normalize(message_id) {
        lock().record(&key(account), id, Instant::now());
    }
}

/// Whether `account` submitted this Message-ID within [`WINDOW`]; true once (it is removed).
pub fn claim(account: &str, message_id: &str) -> bool {
    match normalize(message_id) {
        Some(id) => lock().claim(&key(account), &id, Instant::now()),
        None => false,
    }
}

fn key(account: &str) -> String {
    account.trim().to_lowercase()
}

fn lock() -> std::sync::MutexGuard<'static, Memory> {
    static MEMORY: OnceLock<Mutex<Memory>> = OnceLock::new();
    let memory = MEMORY.get_or_init(|| Mutex::new(Memory::default()));
    // A panic while holding the lock leaves plain data behind; it is still usable.
    memory.lock().unwrap_or_else(|e| e.into_inner())
}

/// The ids per account, each with when it was recorded (oldest first). The clock is passed
/// in, so the tests need no waiting.
#[derive(Debug, Default)]
struct Memory {
    accounts: HashMap<String, VecDeque<(Instant, String)>>,
}

impl Memory {
    fn record(&mut self, account: &str, id: String, now: Instant) {
        if !self.accounts.contains_key(account) && self.accounts.len() >= MAX_ACCOUNTS {
            self.expire(now);
            if self.accounts.len() >= MAX_ACCOUNTS {
                self.drop_stalest();
            }
        }
        let ids = self.accounts.entry(account.to_owned()).or_default();
        ids.retain(|(_, known)| *known != id);
        if ids.len() >= PER_ACCOUNT {
            ids.pop_front();
        }
        ids.push_back((now, id));
    }

    fn claim(&mut self, account: &str, id: &str, now: Instant) -> bool {
        let Some(ids) = self.accounts.get_mut(account) else {
            return false;
        };
        let fresh = |at: &Instant| now.saturating_duration_since(*at) <= WINDOW;
        let found = ids.iter().position(|(at, known)| known == id && fresh(at));
        if let Some(i) = found {
            ids.remove(i);
        }
        ids.retain(|(at, _)| fresh(at));
        if ids.is_empty() {
            self.accounts.remove(account);
        }
        found.is_some()
    }

    /// Forgets every id older than the window.
    fn expire(&mut self, now: Instant) {
        self.accounts.retain(|_, ids| {
            ids.retain(|(at, _)| now.saturating_duration_since(*at) <= WINDOW);
            !ids.is_empty()
        });
    }

    /// Forgets the account whose latest record is the oldest.
    fn drop_stalest(&mut self) {
        let stalest = self
            .accounts
            .iter()
            .min_by_key(|(_, ids)| ids.back().map(|(at, _)| *at))
            .map(|(account, _)| account.clone());
        if let Some(account) = stalest {
            self.accounts.remove(&account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_forms() {
        assert_eq!(
            normalize(" <a.b@Example.COM> "),
            Some("<a.b@Example.COM>".into())
        );
        assert_eq!(normalize("\r\n <a.b@\r\n x.y>"), Some("<a.b@x.y>".into()));
        assert_eq!(
            normalize("(comment) <id@host> (more)"),
            Some("<id@host>".into())
        );
        assert_eq!(normalize("bare@host"), Some("bare@host".into()));
        assert_eq!(normalize("<unclosed@host"), Some("<unclosed@host".into()));
        for nothing in ["", "   ", "<>", "< >", "<"] {
            assert_eq!(normalize(nothing), None, "{nothing:?}");
        }
        assert_eq!(normalize(&format!("<{}@x>", "a".repeat(1000))), None);
    }

    #[test]
    fn claimed_once_within_the_window() {
        let mut m = Memory::default();
        let t0 = Instant::now();
        m.record("ola@x", "<1@x>".into(), t0);
        assert!(!m.claim("kari@x", "<1@x>", t0));
        assert!(!m.claim("ola@x", "<2@x>", t0));
        assert!(m.claim("ola@x", "<1@x>", t0 + WINDOW));
        assert!(!m.claim("ola@x", "<1@x>", t0 + WINDOW));
        m.record("ola@x", "<3@x>".into(), t0);
        assert!(!m.claim("ola@x", "<3@x>", t0 + WINDOW + Duration::from_secs(1)));
        assert!(m.accounts.is_empty(), "expired ids are forgotten");
    }

    #[test]
    fn bounded_per_account_and_in_accounts() {
        let mut m = Memory::default();
        let t0 = Instant::now();
        for i in 0..=PER_ACCOUNT {
            m.record("ola@x", format!("<{i}@x>"), t0);
        }
        assert_eq!(m.accounts["ola@x"].len(), PER_ACCOUNT);
        assert!(!m.claim("ola@x", "<0@x>", t0), "the oldest was dropped");
        assert!(m.claim("ola@x", &format!("<{PER_ACCOUNT}@x>"), t0));

        let mut m = Memory::default();
        for i in 0..MAX_ACCOUNTS {
            m.record(
                &format!("a{i}"),
                "<1@x>".into(),
                t0 + Duration::from_millis(i as u64),
            );
        }
        m.record("newcomer", "<1@x>".into(), t0 + Duration::from_secs(60));
        assert_eq!(m.accounts.len(), MAX_ACCOUNTS);
        assert!(!m.accounts.contains_key("a0"), "the stalest account went");
        assert!(m.claim("newcomer", "<1@x>", t0 + Duration::from_secs(61)));
    }

    #[test]
    fn the_process_wide_memory_normalizes_and_lowercases() {
        record("Per@Example.no", "  <abc@Host>\r\n");
        assert!(
            !claim("per@example.no", "<abc@host>"),
            "case inside <> is kept"
        );
        assert!(claim("per@example.no", "<abc@Host>"));
        assert!(!claim("per@example.no", "<abc@Host>"));
        assert!(!claim("per@example.no", ""));
    }
}
