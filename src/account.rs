//! Who may log in: account lookup by login name and the local password check.
//!
//! Local passwords are stored as argon2id PHC strings. Verification runs on the blocking pool
//! (argon2 is deliberately slow and would stall the reactor). An unknown login name is verified
//! against a fixed dummy hash, so that "no such user" costs the same as "wrong password" and the
//! two cannot be told apart by timing; callers answer both with the same words.

use crate::config::{Account, Config};
use crate::secret::Secret;
use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use std::sync::{Arc, OnceLock};

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
    tokio::task::spawn_blocking(move || match account {
        Some(account) => {
            if check(&account.local_password_hash, &password) {
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
