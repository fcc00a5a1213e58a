//! The local login with throttling, as IMAP and SMTP call it.

use super::{fingerprint, global, Lockout};
use crate::account::{self, LoginFailure};
use crate::config::{Account, Config};
use crate::metrics;
use crate::secret::Secret;
use std::net::IpAddr;
use std::sync::Arc;
use tracing::warn;

/// Why a local login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown user or wrong password (the client hears the same for both).
    Failed(LoginFailure),
    /// Locked out for the cool-down: the password was not checked.
    Throttled(Lockout),
}

/// The local login with throttling: refuses a locked-out client or account at once, else
/// verifies the password; a failure is counted, logged, counted in the login metric and
/// answered only after `auth_failure_delay` or the throttle's longer delay. A success clears
/// this client's count and is never delayed; its metric is the caller's (IMAP counts `ok`
/// only once the upstream login worked too).
pub async fn verify(
    config: &Arc<Config>,
    protocol: &'static str,
    ip: IpAddr,
    login: &str,
    password: Secret,
) -> Result<Arc<Account>, Refusal> {
    let cfg = &config.server.throttle;
    let known = config.account(login).map(|a| a.email.clone());
    // Bounded; the log formatter quotes and escapes it (see `logfmt`).
    let printable: String = login.chars().take(128).collect();
    let (known, printable) = (&known, &printable);
    let refuse = |lockout: Lockout| async move {
        metrics::login(protocol, "throttled", known.as_deref());
        warn!(
            login = %printable,
            locked = lockout.scope.as_str(),
            remaining_secs = lockout.remaining.as_secs(),
            "login refused: too many failed logins (`mailgate throttle clear` lifts the lock-out)"
        );
        tokio::time::sleep(config.server.auth_failure_delay).await;
        Err(Refusal::Throttled(lockout))
    };
    let fp = fingerprint(login, &password);
    let attempt = match global().begin(cfg, ip, login, known.as_deref(), fp).await {
        Ok(a) => a,
        Err(lockout) => return refuse(lockout).await,
    };
    let verified = account::verify(config, login, password, || match attempt.lockout() {
        Some(lockout) => Err(lockout),
        None => Ok(()),
    });
    match verified.await {
        Err(lockout) => {
            drop(attempt);
            refuse(lockout).await
        }
        Ok(Ok(a)) => {
            attempt.succeeded();
            Ok(a)
        }
        Ok(Err(failure)) => {
            let base = config.server.auth_failure_delay;
            let p = attempt.failed(base);
            metrics::login(protocol, failure.as_str(), known.as_deref());
            let delay = base.max(p.delay);
            warn!(
                login = %printable,
                reason = failure.as_str(),
                throttle_failures = p.failures,
                delay_ms = delay.as_millis() as u64,
                locked = p.locked,
                "local login failed"
            );
            tokio::time::sleep(delay).await;
            Err(Refusal::Failed(failure))
        }
    }
}
