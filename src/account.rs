//! Who may log in: account lookup by login name and the local password check.
//!
//! Local passwords are stored as argon2id PHC strings. Verification runs on the blocking pool
//! (argon2 is deliberately slow and would stall the reactor). An unknown login name is verified
//! against a fixed dummy hash, so that "no such user" costs the same as "wrong password" and the
//! two cannot be told apart by timing; callers answer both with the same words.
//!
//! Clients that log in every few seconds (a CRM polling its inbox) would pay argon2 each time.
//! A successful verification is therefore remembered for `login_cache_secs` as an HMAC-SHA256
//! of (the account's PHC string, the password) under a random key made at start-up: the
//! password itself is never kept, a changed hash (config reload) misses the cache, and only a
//! correct password hits it — a wrong one still pays argon2, so timing tells nothing new.

use crate::config::{Account, Config};
use crate::secret::Secret;
use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Why a local login failed. Both variants must look the same to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginFailure {
    /// No account has this login name.
    #[error("unknown user")]
    UnknownUser,
    /// The account exists; the password is wrong.
    #[error("wrong password")]
    BadPassword,
}

impl LoginFailure {
    /// Label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginFailure::UnknownUser => "unknown_user",
            LoginFailure::BadPassword => "bad_password",
        }
    }
}

/// Hashes a local password as an argon2id PHC string with a random salt (for `hash-password`).
pub fn hash_password(password: &Secret) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)?
        .to_string())
}

/// A hash of a random password with the default parameters, made once, verified against for
/// unknown users so both failure kinds cost one argon2 run.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let random: String = (0..24).map(|_| rand::random::<char>()).collect();
        // Hashing with the default parameters and a fresh salt cannot fail.
        hash_password(&Secret::new(random)).unwrap_or_default()
    })
}

/// Concurrent argon2 verifications allowed (one per core).
fn argon2_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    })
}

/// The process's random HMAC key for the login cache.
fn cache_key() -> Option<&'static ring::hmac::Key> {
    static KEY: OnceLock<Option<ring::hmac::Key>> = OnceLock::new();
    KEY.get_or_init(|| {
        let rng = ring::rand::SystemRandom::new();
        // Without randomness there is no safe key: the cache stays off.
        ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng).ok()
    })
    .as_ref()
}

/// Verified logins: lower-cased email → (keyed digest, valid until). At most one entry per
/// configured account.
fn cache() -> &'static Mutex<HashMap<String, (ring::hmac::Tag, Instant)>> {
    static CACHE: OnceLock<Mutex<HashMap<String, (ring::hmac::Tag, Instant)>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn digest(key: &ring::hmac::Key, account: &Account, password: &Secret) -> ring::hmac::Tag {
    let mut ctx = ring::hmac::Context::with_key(key);
    ctx.update(account.local_password_hash.as_bytes());
    ctx.update(&[0]);
    ctx.update(password.expose().as_bytes());
    ctx.sign()
}

/// Whether `password` was verified for `account` within the cache lifetime.
fn cached(account: &Account, password: &Secret) -> bool {
    let Some(key) = cache_key() else {
        return false;
    };
    let want = digest(key, account, password);
    let Ok(map) = cache().lock() else {
        return false;
    };
    match map.get(&account.email.to_ascii_lowercase()) {
        Some((tag, until)) if Instant::now() < *until => {
            // Compare without an early exit (no timing hint about how much matched).
            let (a, b) = (tag.as_ref(), want.as_ref());
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
        }
        _ => false,
    }
}

fn remember(account: &Account, password: &Secret, ttl: Duration) {
    let Some(key) = cache_key() else {
        return;
    };
    if ttl.is_zero() {
        return;
    }
    let tag = digest(key, account, password);
    if let Ok(mut map) = cache().lock() {
        map.insert(
            account.email.to_ascii_lowercase(),
            (tag, Instant::now() + ttl),
        );
    }
}

fn check(hash: &str, password: &Secret) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Verifies `login` / `password` against `config`. Runs argon2 on the blocking pool.
pub async fn verify(
    config: &Arc<Config>,
    login: &str,
    password: Secret,
) -> Result<Arc<Account>, LoginFailure> {
    let account = config.account(login).cloned();
    let ttl = config.server.login_cache;
    if let Some(a) = &account {
        if !ttl.is_zero() && cached(a, &password) {
            return Ok(a.clone());
        }
    }
    // At most one argon2 run per core at a time: a flood of logins queues here instead of
    // starving the relay of CPU, and fewer threads hashing at once means fewer malloc arenas
    // each keeping argon2's 19 MiB working memory after it is freed.
    let _permit = argon2_slots().acquire().await;
    tokio::task::spawn_blocking(move || match account {
        Some(account) => {
            if check(&account.local_password_hash, &password) {
                remember(&account, &password, ttl);
                Ok(account)
            } else {
                Err(LoginFailure::BadPassword)
            }
        }
        None => {
            check(dummy_hash(), &password);
            Err(LoginFailure::UnknownUser)
        }
    })
    .await
    // The closure cannot panic (argon2 returns errors), so a join error means the runtime is
    // shutting down: treat it as a failed login.
    .unwrap_or(Err(LoginFailure::BadPassword))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(hash: &str, cache_secs: u64) -> Arc<Config> {
        let text = format!(
            "[server]\nlogin_cache_secs = {cache_secs}\n[[account]]\nemail = \"a@b.no\"\nlocal_password_hash = \"{hash}\"\n[account.imap]\nserver = \"h:1\"\npassword = \"x\"\n"
        );
        Arc::new(Config::parse(&text, std::path::Path::new("t.toml")).unwrap())
    }

    #[tokio::test]
    async fn cache_hits_only_the_right_password_and_follows_the_hash() {
        let h1 = hash_password(&Secret::from("one")).unwrap();
        let c1 = config_with(&h1, 600);
        let a = c1.account("a@b.no").unwrap().clone();
        assert!(!cached(&a, &Secret::from("one")));
        assert!(verify(&c1, "a@b.no", Secret::from("one")).await.is_ok());
        assert!(cached(&a, &Secret::from("one")));
        assert!(!cached(&a, &Secret::from("two")));
        assert_eq!(
            verify(&c1, "a@b.no", Secret::from("two")).await.err(),
            Some(LoginFailure::BadPassword)
        );
        // A reload with a new hash for the same address: the old entry does not match.
        let h2 = hash_password(&Secret::from("two")).unwrap();
        let c2 = config_with(&h2, 600);
        let a2 = c2.account("a@b.no").unwrap().clone();
        assert!(!cached(&a2, &Secret::from("one")));
        assert_eq!(
            verify(&c2, "a@b.no", Secret::from("one")).await.err(),
            Some(LoginFailure::BadPassword)
        );
    }

    #[test]
    fn hash_then_check() {
        let h = hash_password(&Secret::from("pässword")).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(check(&h, &Secret::from("pässword")));
        assert!(!check(&h, &Secret::from("password")));
        assert!(!check("garbage", &Secret::from("x")));
        assert!(!check(dummy_hash(), &Secret::from("")));
    }
}
