//! A new logged-in upstream connection for an account, and what keeping it later needs to
//! know of it.

use crate::config::{Account, Config, Credential};
use crate::imap::upstream::{self, LoggedIn};
use crate::upstream::UpstreamError;

/// Where a session's upstream connection came from, and what keeping it needs to know.
pub struct Origin {
    /// It was kept from an earlier session.
    pub warm: bool,
    /// When the OAuth access token it logged in with expires (Unix seconds).
    pub(super) token_expires: Option<u64>,
}

/// Logs in to the account's provider (see [`upstream::login`]).
pub(super) async fn fresh(
    account: &Account,
    config: &Config,
) -> Result<(LoggedIn, Origin), UpstreamError> {
    let up = upstream::login(account, &config.server).await?;
    // Only a connection that may be kept needs to know its token's expiry.
    let token_expires = match &account.imap.credential {
        Credential::OAuth2(oauth) if config.server.warm_sessions.on() => {
            crate::oauth::peek(oauth, |t| t.and_then(|t| t.expires_at)).await
        }
        _ => None,
    };
    let origin = Origin {
        warm: false,
        token_expires,
    };
    Ok((up, origin))
}
