//! The two ways to sign in: the operator password (argon2, on the verifier threads, counted by
//! the same throttle as IMAP and SMTP logins under the name `web-operator`), or the one-time
//! link printed at start when no operator password is set (valid once, for 15 minutes).

use super::sessions::{key_of, random_token, same, Key};
use crate::config::Config;
use crate::secret::Secret;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The throttle's login name for the operator.
pub const THROTTLE_NAME: &str = "web-operator";
/// How long the one-time link stays valid.
const LINK_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Why a sign-in was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Wrong password, or no operator password set.
    Wrong,
    /// Too many failures from this address: not checked.
    Locked,
}

/// Checks the operator password of `config` (the one of the moment: `mailgate web-password`
/// and a reload change it without a restart).
pub async fn password(config: &Arc<Config>, ip: IpAddr, password: Secret) -> Result<(), Refused> {
    let hash = config
        .web
        .as_ref()
        .and_then(|w| w.operator_password_hash.clone());
    let cfg = &config.server.throttle;
    let fp = crate::throttle::fingerprint(THROTTLE_NAME, &password);
    let attempt = crate::throttle::global()
        .begin(cfg, ip, THROTTLE_NAME, None, fp)
        .await
        .map_err(|_| Refused::Locked)?;
    let _slot = crate::verifier::slot().await;
    if attempt.lockout().is_some() {
        return Err(Refused::Locked);
    }
    let ok = match hash {
        Some(h) => crate::verifier::verify(&h, password).await,
        // The same cost as a wrong password: no hash set is not told apart by time.
        None => {
            crate::verifier::burn(password).await;
            false
        }
    };
    if ok {
        attempt.succeeded();
        return Ok(());
    }
    let base = config.server.auth_failure_delay;
    let penalty = attempt.failed(base);
    tracing::warn!(
        %ip,
        throttle_failures = penalty.failures,
        locked = penalty.locked,
        "connect page: operator sign-in failed"
    );
    tokio::time::sleep(base.max(penalty.delay)).await;
    Err(Refused::Wrong)
}

/// The one-time sign-in link's token, kept as its digest.
#[derive(Default)]
pub struct OneTime {
    slot: Mutex<Option<(Key, Instant)>>,
}

impl OneTime {
    /// Makes the token (replacing any earlier one) and returns it: the caller prints it once.
    pub fn issue(&self) -> String {
        let token = random_token();
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some((key_of(&token), Instant::now()));
        }
        token
    }

    /// Whether `token` is the live one; it is used up either way once it matched.
    pub fn redeem(&self, token: &str) -> bool {
        let Ok(mut slot) = self.slot.lock() else {
            return false;
        };
        match *slot {
            Some((key, at)) if same(&key, &key_of(token)) => {
                *slot = None;
                at.elapsed() < LINK_LIFETIME
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_works_once() {
        let one = OneTime::default();
        assert!(!one.redeem("anything"));
        let token = one.issue();
        assert!(!one.redeem("wrong"));
        assert!(one.redeem(&token));
        assert!(!one.redeem(&token));
    }
}
