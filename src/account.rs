//! Who may log in: account lookup by login name and the local password check.
//!
//! Local passwords are stored as argon2id PHC strings. Verification runs on the verifier threads
//! (argon2 is deliberately slow and would stall the reactor; see `verifier`). An unknown login
//! name costs one argon2 run with the default parameters, so that "no such user" costs the same
//! as "wrong password" and the two cannot be told apart by timing; callers answer both with the
//! same words.
//!
//! Clients that log in every few seconds (a CRM polling its inbox) would pay argon2 each time.
//! A successful verification is therefore remembered for `login_cache_secs` as an HMAC-SHA256
//! of (the account's PHC string, the password) under a random key made at start-up: the
//! password itself is never kept, a changed hash (config reload) misses the cache, and only a
//! correct password hits it — a wrong one still pays argon2, so timing tells nothing new. Logins
//! that waited for a verifier look at the cache again: twenty clients opening their first
//! connections at once pay argon2 about once per verifier, not twenty times.

use crate::config::{Account, Config};
use crate::secret::Secret;
use crate::verifier;
use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use argon2::Argon2;
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

/// Verifies `login` / `password` against `config` on the verifier threads. `admit` is asked
/// once more after waiting for a verifier slot, before argon2 runs: a lock-out decided while
/// this login waited applies to it (its error is returned as the outer `Err`). A password
/// verified by another login meanwhile hits the cache then instead of running argon2 again.
pub async fn verify<E>(
    config: &Arc<Config>,
    login: &str,
    password: Secret,
    admit: impl FnOnce() -> Result<(), E>,
) -> Result<Result<Arc<Account>, LoginFailure>, E> {
    let account = config.account(login).cloned();
    let ttl = config.server.login_cache;
    let hit = |a: &Option<Arc<Account>>, password: &Secret| {
        a.as_ref()
            .filter(|a| !ttl.is_zero() && cached(a, password))
            .cloned()
    };
    if let Some(a) = hit(&account, &password) {
        return Ok(Ok(a));
    }
    // At most one argon2 run per verifier thread at a time: a flood of logins queues here
    // instead of starving the relay of CPU or growing memory (see `verifier`).
    let _slot = verifier::slot().await;
    admit()?;
    if let Some(a) = hit(&account, &password) {
        return Ok(Ok(a));
    }
    Ok(match account {
        Some(account) => {
            let remembered = password.clone();
            if verifier::verify(&account.local_password_hash, password).await {
                remember(&account, &remembered, ttl);
                Ok(account)
            } else {
                Err(LoginFailure::BadPassword)
            }
        }
        None => {
            verifier::burn(password).await;
            Err(LoginFailure::UnknownUser)
        }
    })
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

    async fn check(config: &Arc<Config>, pw: &str) -> Result<Arc<Account>, LoginFailure> {
        let admit = || Ok::<(), ()>(());
        verify(config, "a@b.no", Secret::from(pw), admit)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn cache_hits_only_the_right_password_and_follows_the_hash() {
        let h1 = hash_password(&Secret::from("one")).unwrap();
        let c1 = config_with(&h1, 600);
        let a = c1.account("a@b.no").unwrap().clone();
        assert!(!cached(&a, &Secret::from("one")));
        assert!(check(&c1, "one").await.is_ok());
        assert!(cached(&a, &Secret::from("one")));
        assert!(!cached(&a, &Secret::from("two")));
        assert_eq!(
            check(&c1, "two").await.err(),
            Some(LoginFailure::BadPassword)
        );
        // A reload with a new hash for the same address: the old entry does not match.
        let h2 = hash_password(&Secret::from("two")).unwrap();
        let c2 = config_with(&h2, 600);
        let a2 = c2.account("a@b.no").unwrap().clone();
        assert!(!cached(&a2, &Secret::from("one")));
        assert_eq!(
            check(&c2, "one").await.err(),
            Some(LoginFailure::BadPassword)
        );
    }
}
