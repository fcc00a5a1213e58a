//! How a refresh failed, which decides when it is tried again and what a login hears: a
//! refresh token the identity provider refused is revoked for good (until the store changes);
//! refused app-only credentials (a service account's key, a client certificate) are tried
//! again after the back-off, since a fixed key needs no new authorization.

use crate::oauth::store::Grant;
use crate::oauth::token::TokenError;
use crate::oauth::OAuthError;

/// How the last refresh failed (decides when it is tried again and what the login hears).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failed {
    /// The refresh token was refused: not tried again until the store changes.
    Revoked,
    /// An app-only grant's credentials were refused: tried after the back-off (asking again
    /// is how app-only tokens are renewed; a fixed key needs no new authorization).
    Refused,
    /// Anything else (unreachable, 5xx): tried after the back-off.
    Down,
}

impl Failed {
    /// The error a login hears.
    pub(super) fn error(self, account: String, detail: String) -> OAuthError {
        match self {
            Failed::Revoked => OAuthError::Revoked { account, detail },
            Failed::Refused => OAuthError::Refused { account, detail },
            Failed::Down => OAuthError::Refresh { account, detail },
        }
    }
}

/// How a request for tokens of `grant` failed: the identity provider's refusal of a refresh
/// token is a revocation; of an app-only grant, a refusal of the app's credentials (any OAuth
/// error short of a server error).
pub(super) fn failed(grant: Grant, e: &TokenError) -> Failed {
    match e {
        TokenError::Rejected { status, .. } if grant.is_app_only() && *status < 500 => {
            Failed::Refused
        }
        _ if !grant.is_app_only() && e.code() == Some("invalid_grant") => Failed::Revoked,
        _ => Failed::Down,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Cached;
    use super::*;
    use std::time::Instant;

    const ACCOUNT: &str = "ola@example.no";

    /// A refusal of an app-only grant is the app's credentials, tried again after the
    /// back-off; of a refresh token, a revocation.
    #[test]
    fn refusals_by_grant() {
        let rejected = |status, code: &str| TokenError::Rejected {
            url: "u".into(),
            status,
            code: code.into(),
            description: String::new(),
        };
        assert_eq!(
            failed(Grant::JwtBearer, &rejected(400, "invalid_grant")),
            Failed::Refused
        );
        assert_eq!(
            failed(Grant::ClientCredentials, &rejected(401, "invalid_client")),
            Failed::Refused
        );
        assert_eq!(
            failed(Grant::JwtBearer, &rejected(503, "temporarily_unavailable")),
            Failed::Down
        );
        assert_eq!(
            failed(Grant::DeviceCode, &rejected(400, "invalid_grant")),
            Failed::Revoked
        );
        assert_eq!(
            failed(Grant::AuthorizationCode, &rejected(400, "invalid_client")),
            Failed::Down
        );
        let refused = Cached {
            failed: Some((Instant::now(), "invalid_grant".into(), Failed::Refused)),
            ..Cached::default()
        };
        let e = refused.backoff(ACCOUNT).unwrap_err();
        assert!(matches!(e, OAuthError::Refused { .. }) && e.needs_authorize());
    }
}
