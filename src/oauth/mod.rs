//! OAuth 2.0 upstream credentials: token store, token endpoint, and the run-time
//! cache that hands access tokens to IMAP and SMTP logins (the settings are
//! [`crate::config::OAuth2`]).
//!
//! [`access_token`] (the `cache` module) hands out access tokens, one refresh per account at a time;
//! the [`store`] keeps them between runs behind the [`store::TokenStore`] interface.

pub mod authorize;
mod cache;
pub mod store;
pub mod token;
pub mod upkeep;

pub use cache::{access_token, peek};

use crate::config::OAuth2;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use store::{Grant, LastRefresh, StoreError, Tokens};
use token::TokenResponse;

/// An access token with less than this left is refreshed before use.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// After a failed refresh, logins get the same error for this long without a new request.
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(5);

/// No access token could be had. Never carries a token.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The account was never authorized (no token file).
    #[error("no OAuth token for {account}; run `mailgate oauth authorize {account}`")]
    NotAuthorized {
        /// The account.
        account: String,
    },
    /// The identity provider refused the refresh token (`invalid_grant`): revoked, expired,
    /// or the password changed.
    #[error("the identity provider rejected the refresh token for {account} ({detail}); run `mailgate oauth authorize {account}`")]
    Revoked {
        /// The account.
        account: String,
        /// The provider's error code and description.
        detail: String,
    },
    /// The identity provider refused the app's own credentials (a service account's key or
    /// its domain-wide delegation, a client certificate or secret): asked again after the
    /// back-off, but the operator must fix them.
    #[error("the identity provider refused the app credentials for {account} ({detail}); check the key or certificate and its permissions, then `mailgate oauth authorize {account}` tries them")]
    Refused {
        /// The account.
        account: String,
        /// The provider's error code and description.
        detail: String,
    },
    /// The token file or key cannot be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The token endpoint failed (unreachable, 5xx, another OAuth error).
    #[error("token refresh for {account} failed: {detail}")]
    Refresh {
        /// The account.
        account: String,
        /// What failed.
        detail: String,
    },
}

impl OAuthError {
    /// The account the error is about, if known.
    pub fn account(&self) -> Option<&str> {
        match self {
            OAuthError::NotAuthorized { account }
            | OAuthError::Revoked { account, .. }
            | OAuthError::Refused { account, .. }
            | OAuthError::Refresh { account, .. }
            | OAuthError::Store(StoreError::Corrupt { account, .. }) => Some(account),
            OAuthError::Store(_) => None,
        }
    }

    /// What a mail client is told, after the protocol's status (`NO [AUTHENTICATIONFAILED]`,
    /// `451 4.7.0`): one sentence, the command the operator must run when there is one.
    pub fn client_text(&self) -> String {
        if let OAuthError::Refused { .. } = self {
            return "the identity provider refused mailgate's app credentials for this account (service account key or its delegation, or client certificate); the administrator must check them (see the mailgate log)".into();
        }
        match (self.needs_authorize(), self.account()) {
            (true, Some(account)) => format!("mailgate has no valid OAuth authorization for this account (revoked or never made); the administrator must run `mailgate oauth authorize {account}`"),
            (true, None) => "mailgate has no valid OAuth authorization for this account; the administrator must run `mailgate oauth authorize` for it".into(),
            (false, _) => "mailgate could not get an OAuth access token from the identity provider; try again later".into(),
        }
    }

    /// Whether the operator must act (run `mailgate oauth authorize`, or fix an app's
    /// credentials), as opposed to waiting.
    pub fn needs_authorize(&self) -> bool {
        matches!(
            self,
            OAuthError::NotAuthorized { .. }
                | OAuthError::Revoked { .. }
                | OAuthError::Refused { .. }
                | OAuthError::Store(StoreError::Corrupt { .. })
        )
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Tokens from a token response. `old` are the tokens the request renewed (`None` for a new
/// authorization): their refresh token is kept when the provider sent none (providers that do
/// not rotate refresh tokens omit it on refresh), and with it its expiry unless the provider
/// states one.
pub fn tokens_from(grant: Grant, resp: TokenResponse, old: Option<&Tokens>, now: u64) -> Tokens {
    let refresh_expires_at = match (resp.refresh_expires_in, &resp.refresh_token) {
        (Some(secs), _) => Some(now.saturating_add(secs)),
        // A new refresh token whose lifetime the provider did not state.
        (None, Some(_)) => None,
        (None, None) => old.and_then(|t| t.refresh_expires_at),
    };
    Tokens {
        grant,
        refresh_token: resp
            .refresh_token
            .or_else(|| old.and_then(|t| t.refresh_token.clone())),
        access_token: Some(resp.access_token),
        expires_at: resp.expires_in.map(|s| now.saturating_add(s)),
        refresh_expires_at,
        scope: resp.scope,
        last_refresh: Some(LastRefresh {
            at: now,
            result: "ok".into(),
            detail: String::new(),
        }),
    }
}

/// One account's token state for `mailgate oauth status`.
pub struct Status {
    /// The token file's tokens (`None`: never authorized).
    pub tokens: Result<Option<Tokens>, StoreError>,
    /// The note a running gateway left when it could not save newer tokens: the Unix time of
    /// the first failure, a space, the error (empty when the disk had no room for more).
    pub unsaved: Option<String>,
}

/// [`Status`] of one account.
pub fn status(oauth: &OAuth2) -> Result<Status, StoreError> {
    let store = store::open(&oauth.state_dir)?;
    Ok(Status {
        tokens: store.load(&oauth.identity),
        unsaved: store.unsaved(&oauth.identity),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn response(refresh: Option<&str>, refresh_expires_in: Option<u64>) -> TokenResponse {
        TokenResponse {
            access_token: Secret::from("a2"),
            refresh_token: refresh.map(Secret::from),
            expires_in: Some(3600),
            refresh_expires_in,
            scope: None,
        }
    }

    /// The refresh token's expiry: the provider's word when it says one; else the old one
    /// while the old refresh token is kept; unknown for a new refresh token.
    #[test]
    fn refresh_expiry_follows_the_refresh_token() {
        let grant = Grant::AuthorizationCode;
        let first = tokens_from(grant, response(Some("r1"), Some(86_400)), None, 1_000);
        assert_eq!(first.refresh_expires_at, Some(87_400));
        assert_eq!(first.expires_at, Some(4_600));

        let kept = tokens_from(grant, response(None, None), Some(&first), 2_000);
        assert_eq!(kept.refresh_token, Some(Secret::from("r1")));
        assert_eq!(kept.refresh_expires_at, Some(87_400));

        let stated = tokens_from(grant, response(None, Some(50_000)), Some(&first), 2_000);
        assert_eq!(stated.refresh_expires_at, Some(52_000));

        let rotated = tokens_from(grant, response(Some("r2"), None), Some(&first), 2_000);
        assert_eq!(rotated.refresh_token, Some(Secret::from("r2")));
        assert_eq!(rotated.refresh_expires_at, None);

        let never = tokens_from(grant, response(Some("r1"), None), None, 1_000);
        assert_eq!(never.refresh_expires_at, None);
    }
}
