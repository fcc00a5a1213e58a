//! One account's tokens as stored: JSON, sealed by each backend (the token files, the shared
//! store's rows). Strings, because `Secret` is deliberately not serializable; the conversions
//! zeroize them.

use super::{Grant, LastRefresh, Tokens};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The plaintext.
#[derive(Serialize, Deserialize)]
struct Wire {
    version: u32,
    grant: Grant,
    refresh_token: Option<String>,
    access_token: Option<String>,
    expires_at: Option<u64>,
    /// Added later: files written before it lack it (unknown), and older readers skip it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_expires_at: Option<u64>,
    scope: Option<String>,
    last_refresh: Option<LastRefresh>,
}

/// The JSON of `tokens`, zeroized when dropped.
pub fn to_json(tokens: &Tokens) -> Zeroizing<Vec<u8>> {
    let wire = Wire {
        version: 1,
        grant: tokens.grant,
        refresh_token: tokens.refresh_token.as_ref().map(|s| s.expose().to_owned()),
        access_token: tokens.access_token.as_ref().map(|s| s.expose().to_owned()),
        expires_at: tokens.expires_at,
        refresh_expires_at: tokens.refresh_expires_at,
        scope: tokens.scope.clone(),
        last_refresh: tokens.last_refresh.clone(),
    };
    let plain = Zeroizing::new(serde_json::to_vec(&wire).unwrap_or_default());
    drop(wire.refresh_token.map(Zeroizing::new));
    drop(wire.access_token.map(Zeroizing::new));
    plain
}

/// The tokens of [`to_json`]'s JSON; `None` if it is not that.
pub fn from_json(plain: &[u8]) -> Option<Tokens> {
    let wire: Wire = serde_json::from_slice(plain).ok()?;
    let Wire {
        version: _,
        grant,
        refresh_token,
        access_token,
        expires_at,
        refresh_expires_at,
        scope,
        last_refresh,
    } = wire;
    Some(Tokens {
        grant,
        refresh_token: refresh_token.map(Secret::new),
        access_token: access_token.map(Secret::new),
        expires_at,
        refresh_expires_at,
        scope,
        last_refresh,
    })
}
