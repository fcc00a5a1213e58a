//! Browser sessions: a random 32-byte id in a cookie, kept here only as its SHA-256 (a
//! timing-dependent map lookup then leaks nothing of a live id), each with its CSRF token.
//! A session starts anonymous (the sign-in form needs a CSRF token too) and gets a new id
//! when it signs in, so an id planted before sign-in is worth nothing after it.

use crate::secret::Secret;
use base64::Engine;
use rand::RngCore;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sessions kept at once; a new one past this pushes out the least recently used.
const MAX_SESSIONS: usize = 1024;
/// A signed-in session unused this long ends.
const IDLE_SIGNED_IN: Duration = Duration::from_secs(2 * 3600);
/// An anonymous one (sign-in page opened, never signed in) ends sooner.
const IDLE_ANONYMOUS: Duration = Duration::from_secs(15 * 60);
/// However busy, a session ends after this long.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Values a session keeps at most (see [`Sessions::put`]).
const MAX_KEPT: usize = 8;

/// What a session id is kept as.
pub type Key = [u8; 32];

/// 32 random bytes as unpadded base64url (43 characters, safe in cookies and forms as is).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The map key of a cookie value.
pub fn key_of(cookie: &str) -> Key {
    let d = ring::digest::digest(&ring::digest::SHA256, cookie.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(d.as_ref());
    key
}

/// Equality whose time does not depend on where the inputs differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Entry {
    csrf: String,
    signed_in: bool,
    /// Short-lived values of a flow in progress (an OAuth `state` and PKCE verifier, …).
    kept: Vec<(&'static str, Secret)>,
    created: Instant,
    used: Instant,
}

impl Entry {
    fn alive(&self, now: Instant) -> bool {
        let idle = if self.signed_in {
            IDLE_SIGNED_IN
        } else {
            IDLE_ANONYMOUS
        };
        now.duration_since(self.used) < idle && now.duration_since(self.created) < LIFETIME
    }
}

/// A session as a request sees it.
#[derive(Debug, Clone)]
pub struct Session {
    /// Its key in the map.
    pub key: Key,
    /// Its CSRF token (the hidden `csrf` field of every form).
    pub csrf: String,
    /// Whether it signed in.
    pub signed_in: bool,
}

/// The live sessions.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<Key, Entry>>,
}

impl Sessions {
    /// A new session; returns the cookie value (the only copy of the id) and the session.
    pub fn create(&self, signed_in: bool) -> (String, Session) {
        let id = random_token();
        let key = key_of(&id);
        let csrf = random_token();
        let now = Instant::now();
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, e| e.alive(now));
            if map.len() >= MAX_SESSIONS {
                let oldest = map.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    map.remove(&k);
                }
            }
            map.insert(
                key,
                Entry {
                    csrf: csrf.clone(),
                    signed_in,
                    kept: Vec::new(),
                    created: now,
                    used: now,
                },
            );
        }
        let session = Session {
            key,
            csrf,
            signed_in,
        };
        (id, session)
    }

    /// The live session of a cookie value, marked as used now.
    pub fn get(&self, cookie: &str) -> Option<Session> {
        let key = key_of(cookie);
        let now = Instant::now();
        let mut map = self.map.lock().ok()?;
        let entry = map.get_mut(&key)?;
        if !entry.alive(now) {
            map.remove(&key);
            return None;
        }
        entry.used = now;
        Some(Session {
            key,
            csrf: entry.csrf.clone(),
            signed_in: entry.signed_in,
        })
    }

    /// Ends a session.
    pub fn remove(&self, key: &Key) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(key);
        }
    }

    /// Keeps `value` under `name` in the session (replacing an earlier one; the oldest goes
    /// past [`MAX_KEPT`]); false when the session is gone.
    pub fn put(&self, key: &Key, name: &'static str, value: Secret) -> bool {
        let Ok(mut map) = self.map.lock() else {
            return false;
        };
        let Some(entry) = map.get_mut(key) else {
            return false;
        };
        entry.kept.retain(|(n, _)| *n != name);
        if entry.kept.len() >= MAX_KEPT {
            entry.kept.remove(0);
        }
        entry.kept.push((name, value));
        true
    }

    /// Takes the value kept under `name` out of the session (it is there once).
    pub fn take(&self, key: &Key, name: &str) -> Option<Secret> {
        let mut map = self.map.lock().ok()?;
        let kept = &mut map.get_mut(key)?.kept;
        let at = kept.iter().position(|(n, _)| *n == name)?;
        Some(kept.remove(at).1)
    }

    /// Signs in: ends `old` (if any) and returns a new signed-in session's cookie value.
    pub fn sign_in(&self, old: Option<&Key>) -> String {
        if let Some(k) = old {
            self.remove(k);
        }
        self.create(true).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_rotate_on_sign_in_and_end_on_removal() {
        let s = Sessions::default();
        let (id, anon) = s.create(false);
        assert_eq!(id.len(), 43);
        assert!(!s.get(&id).unwrap().signed_in);
        let new = s.sign_in(Some(&anon.key));
        assert!(s.get(&id).is_none(), "the old id is dead");
        let signed = s.get(&new).unwrap();
        assert!(signed.signed_in && signed.csrf != anon.csrf);
        s.remove(&signed.key);
        assert!(s.get(&new).is_none());
        assert!(s.get("made up").is_none());
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"ab", b"abc"));
    }

    #[test]
    fn values_are_kept_once() {
        let s = Sessions::default();
        let (_, session) = s.create(true);
        assert!(s.put(&session.key, "state", Secret::from("a")));
        assert!(s.put(&session.key, "state", Secret::from("b")));
        assert_eq!(s.take(&session.key, "state").unwrap().expose(), "b");
        assert!(s.take(&session.key, "state").is_none());
        for i in 0..20 {
            let name: &'static str =
                ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9"][i % 10];
            s.put(&session.key, name, Secret::from("x"));
        }
        assert!(s.map.lock().unwrap()[&session.key].kept.len() <= MAX_KEPT);
        assert!(!s.put(&[0; 32], "state", Secret::from("x")));
    }

    #[test]
    fn the_map_is_bounded() {
        let s = Sessions::default();
        let first = s.create(true).0;
        for _ in 0..MAX_SESSIONS {
            s.create(true);
        }
        assert!(s.get(&first).is_none());
        assert!(s.map.lock().unwrap().len() <= MAX_SESSIONS);
    }
}
