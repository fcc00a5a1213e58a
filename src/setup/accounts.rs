//! The Accounts table of the connect page: each account as it is loaded now — password or
//! OAuth, servers, token state, last client login ([`crate::activity`]) and last check — and
//! *Check now* ([`check_account`]), the live test's own steps on a loaded account, with one
//! line of advice per failed step.

use super::live::run;
use crate::activity::{self, Login, Recent};
use crate::check::folders::FolderReport;
use crate::config::Config;
use crate::oauth::store::{StoreError, Tokens};
use crate::upstream::FailureKind;
use std::sync::OnceLock;

/// A step of the live test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// Logging in to the provider's IMAP server.
    ImapLogin,
    /// Listing its folders.
    FolderList,
    /// Logging in to the provider's SMTP server.
    SmtpAuth,
}

/// Why a step failed. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    /// The failure's kind (`None`: the folder list, which has no upstream error kind).
    pub kind: Option<FailureKind>,
    /// What happened, in the server's words.
    pub reason: String,
    /// One line of advice (empty when there is none).
    pub advice: String,
}

/// One step and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Which step.
    pub kind: StepKind,
    /// ✓ or ✗ with the reason and advice.
    pub outcome: Result<(), StepFailure>,
}

/// What [`check_account`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Unix time of the check.
    pub at: u64,
    /// The steps, in order (no SMTP step for an account that only receives).
    pub steps: Vec<Step>,
    /// The provider's folders and the names the client sees, when they were listed.
    pub folders: Option<FolderReport>,
}

impl CheckOutcome {
    /// Whether every step passed.
    pub fn passed(&self) -> bool {
        self.steps.iter().all(|s| s.outcome.is_ok())
    }

    /// Whether the account can serve: both logins passed. A folder list the server refused
    /// does not stop a set-up (as the wizard's [`super::live_test`] does not stop): the
    /// folders are learned again at the client's first login.
    pub fn logins_passed(&self) -> bool {
        self.steps
            .iter()
            .filter(|s| s.kind != StepKind::FolderList)
            .all(|s| s.outcome.is_ok())
    }
}

fn checks() -> &'static Recent<CheckOutcome> {
    static CHECKS: OnceLock<Recent<CheckOutcome>> = OnceLock::new();
    CHECKS.get_or_init(Recent::default)
}

/// Runs the live test's steps (IMAP login and folder list, SMTP AUTH: the gateway's own
/// code) on `email` as `config` has it loaded now, and records the outcome for
/// [`overview`]. `None` when `config` has no such account.
pub async fn check_account(config: &Config, email: &str) -> Option<CheckOutcome> {
    let account = config.account(email)?;
    let ran = run(account, &config.server, false).await;
    let preset =
        crate::provider::by_imap_server(&account.imap.target.host, account.imap.target.port);
    let (steps, folders) = super::steps::steps_of(&ran, preset, None);
    let outcome = CheckOutcome {
        at: activity::unix_now(),
        steps,
        folders,
    };
    checks().put(&account.email, outcome.at, outcome.clone());
    Some(outcome)
}

/// How an account logs in upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// A password (or app password).
    Password,
    /// OAuth 2.0, with the tokens of `identity`.
    OAuth {
        /// Whose tokens (the account, or the user a shared mailbox signs in as).
        identity: String,
    },
}

/// The state of an OAuth account's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenState {
    /// Tokens are stored and usable (the access token is renewed when it runs out).
    Present {
        /// Unix time the access token expires, if known.
        access_expires_at: Option<u64>,
        /// Unix time the refresh token expires, where the provider said.
        refresh_expires_at: Option<u64>,
    },
    /// The refresh token ran out (or there is none and the access token did): authorize again.
    Expired {
        /// Unix time it ran out.
        at: u64,
    },
    /// The identity provider refused the refresh token: authorize again.
    Revoked {
        /// The provider's error code and description.
        detail: String,
    },
    /// Never authorized: no tokens stored.
    NeedsAuthorize,
    /// The token store could not be read (the error, without secrets).
    Unreadable(String),
}

/// One row of the Accounts table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    /// The address.
    pub email: String,
    /// Password or OAuth.
    pub auth: Auth,
    /// The IMAP server, `host:port`.
    pub imap: String,
    /// The SMTP server, `host:port` (`None`: receives only).
    pub smtp: Option<String>,
    /// The tokens' state (OAuth accounts).
    pub token: Option<TokenState>,
    /// The last successful client login since the process started.
    pub last_login: Option<Login>,
    /// The last [`check_account`] since the process started.
    pub last_check: Option<CheckOutcome>,
}

/// Every account `config` has loaded, in its order, as the Accounts table shows it.
pub fn overview(config: &Config) -> Vec<AccountState> {
    let now = activity::unix_now();
    config
        .accounts
        .iter()
        .map(|a| {
            let oauth = a.imap.credential.oauth();
            AccountState {
                email: a.email.clone(),
                auth: match oauth {
                    Some(o) => Auth::OAuth {
                        identity: o.identity.clone(),
                    },
                    None => Auth::Password,
                },
                imap: a.imap.address(),
                smtp: a.smtp.as_ref().map(|s| s.address()),
                token: oauth.map(|o| match crate::oauth::status(o) {
                    Ok(status) => token_state(status.tokens, now),
                    Err(e) => TokenState::Unreadable(e.to_string()),
                }),
                last_login: activity::last_login(&a.email),
                last_check: checks().get(&a.email),
            }
        })
        .collect()
}

/// The state of stored `tokens` at Unix time `now`.
fn token_state(tokens: Result<Option<Tokens>, StoreError>, now: u64) -> TokenState {
    let t = match tokens {
        Err(e) => return TokenState::Unreadable(e.to_string()),
        Ok(None) => return TokenState::NeedsAuthorize,
        Ok(Some(t)) => t,
    };
    // The cache writes this label when the provider refused the refresh token.
    if let Some(last) = t.last_refresh.as_ref().filter(|l| l.result == "revoked") {
        return TokenState::Revoked {
            detail: last.detail.clone(),
        };
    }
    let ran_out = match (&t.refresh_token, t.refresh_expires_at, t.expires_at) {
        (Some(_), Some(at), _) if at <= now => Some(at),
        (None, _, Some(at)) if at <= now && !t.grant.is_app_only() => Some(at),
        _ => None,
    };
    match ran_out {
        Some(at) => TokenState::Expired { at },
        None => TokenState::Present {
            access_expires_at: t.expires_at,
            refresh_expires_at: t.refresh_expires_at,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::store::{Grant, LastRefresh};
    use crate::secret::Secret;

    fn tokens(refresh: Option<&str>, refresh_expires_at: Option<u64>) -> Tokens {
        Tokens {
            grant: Grant::AuthorizationCode,
            refresh_token: refresh.map(Secret::from),
            access_token: Some(Secret::from("a")),
            expires_at: Some(100),
            refresh_expires_at,
            scope: None,
            last_refresh: None,
        }
    }

    #[test]
    fn token_states() {
        assert_eq!(token_state(Ok(None), 50), TokenState::NeedsAuthorize);
        assert_eq!(
            token_state(Ok(Some(tokens(Some("r"), Some(1_000)))), 500),
            TokenState::Present {
                access_expires_at: Some(100),
                refresh_expires_at: Some(1_000)
            }
        );
        assert_eq!(
            token_state(Ok(Some(tokens(Some("r"), Some(1_000)))), 1_000),
            TokenState::Expired { at: 1_000 }
        );
        assert_eq!(
            token_state(Ok(Some(tokens(None, None))), 200),
            TokenState::Expired { at: 100 }
        );
        let mut revoked = tokens(Some("r"), None);
        revoked.last_refresh = Some(LastRefresh {
            at: 1,
            result: "revoked".into(),
            detail: "invalid_grant".into(),
        });
        assert_eq!(
            token_state(Ok(Some(revoked)), 2),
            TokenState::Revoked {
                detail: "invalid_grant".into()
            }
        );
    }

    fn step(kind: StepKind, ok: bool) -> Step {
        let failure = StepFailure {
            kind: None,
            reason: "no".into(),
            advice: String::new(),
        };
        Step {
            kind,
            outcome: if ok { Ok(()) } else { Err(failure) },
        }
    }

    #[test]
    fn a_refused_folder_list_fails_the_check_but_not_the_logins() {
        let outcome = |steps| CheckOutcome {
            at: 0,
            steps,
            folders: None,
        };
        let listless = outcome(vec![
            step(StepKind::ImapLogin, true),
            step(StepKind::FolderList, false),
            step(StepKind::SmtpAuth, true),
        ]);
        assert!(!listless.passed() && listless.logins_passed());
        let refused = outcome(vec![
            step(StepKind::ImapLogin, true),
            step(StepKind::FolderList, true),
            step(StepKind::SmtpAuth, false),
        ]);
        assert!(!refused.passed() && !refused.logins_passed());
    }
}
