//! `[server.warm_sessions]`: upstream IMAP connections kept logged in after a client logs
//! out, for the account's next login (see `imap::warm`).

use super::file::WarmSessionsFile;
use super::locate::Locator;
use super::ConfigError;
use std::time::Duration;

/// Most connections kept per account: well below the providers' own limits on simultaneous
/// IMAP connections (Gmail allows 15 per account, Microsoft 365 about 20), which the
/// account's live sessions share.
pub const PER_ACCOUNT_MAX: usize = 10;

/// Longest a connection may be kept: providers log out idle sessions after 30 minutes
/// (RFC 9051's minimum), Gmail sooner, and a long-kept connection mostly costs the
/// provider's resources.
pub const KEEP_MAX_SECS: u64 = 600;

/// Warm upstream sessions; off unless `keep_secs` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmSessions {
    /// How long a connection is kept after the client's LOGOUT (`keep_secs`); zero: off.
    pub keep: Duration,
    /// Most connections kept per account (`per_account`, default 2).
    pub per_account: usize,
    /// Most connections kept in all (`max_total`, default 1000): each holds a socket here
    /// and a session at the provider.
    pub max_total: usize,
}

impl WarmSessions {
    /// Off: every login opens its own upstream connection and LOGOUT ends it.
    pub const OFF: WarmSessions = WarmSessions {
        keep: Duration::ZERO,
        per_account: 2,
        max_total: 1000,
    };

    /// Whether connections are kept at all.
    pub fn on(&self) -> bool {
        !self.keep.is_zero()
    }
}

/// Validates `[server.warm_sessions]`.
pub(super) fn warm_sessions(
    file: Option<&WarmSessionsFile>,
    loc: Locator,
) -> Result<WarmSessions, ConfigError> {
    // Not `Spanned`: toml cannot give a span to a table written with dotted keys
    // (`warm_sessions.keep_secs = 60` under `[server]`), and each value has its own.
    let Some(f) = file else {
        return Ok(WarmSessions::OFF);
    };
    let field = |name: &str| format!("server.warm_sessions.{name}");
    let keep = match &f.keep_secs {
        None => 0,
        Some(v) if *v.get_ref() > KEEP_MAX_SECS => {
            return Err(loc.at(
                v.span().start,
                field("keep_secs"),
                format!("must be at most {KEEP_MAX_SECS} (0 turns warm sessions off)"),
            ))
        }
        Some(v) => *v.get_ref(),
    };
    let per_account = match &f.per_account {
        None => WarmSessions::OFF.per_account,
        Some(v) if !(1..=PER_ACCOUNT_MAX).contains(v.get_ref()) => {
            return Err(loc.at(
                v.span().start,
                field("per_account"),
                format!("must be between 1 and {PER_ACCOUNT_MAX}: the provider counts kept connections against the account's limit of simultaneous connections"),
            ))
        }
        Some(v) => *v.get_ref(),
    };
    let max_total = match &f.max_total {
        None => WarmSessions::OFF.max_total,
        Some(v) if *v.get_ref() == 0 => {
            return Err(loc.at(
                v.span().start,
                field("max_total"),
                "must be at least 1 (set keep_secs = 0 to turn warm sessions off)".into(),
            ))
        }
        Some(v) => *v.get_ref(),
    };
    Ok(WarmSessions {
        keep: Duration::from_secs(keep),
        per_account,
        max_total,
    })
}
