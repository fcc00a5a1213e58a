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

/// Longest a connection may be opened ahead of an expected poll (and kept after it): enough
/// for any provider's login, short enough that a client that stopped polling costs little.
pub const PRE_OPEN_MAX_SECS: u64 = 120;

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
    /// For an account whose client polls at a steady interval: how long before its next
    /// expected login a connection is opened and kept for it, when none is kept then
    /// (`pre_open_secs`); zero: off.
    pub pre_open: Duration,
}

impl WarmSessions {
    /// Off: every login opens its own upstream connection and LOGOUT ends it.
    pub const OFF: WarmSessions = WarmSessions {
        keep: Duration::ZERO,
        per_account: 2,
        max_total: 1000,
        pre_open: Duration::ZERO,
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
    let keep = value(
        loc,
        &f.keep_secs,
        "keep_secs",
        0,
        |k| k <= KEEP_MAX_SECS,
        |_| format!("must be at most {KEEP_MAX_SECS} (0 turns warm sessions off)"),
    )?;
    let per_account = value(
        loc,
        &f.per_account,
        "per_account",
        WarmSessions::OFF.per_account,
        |n| (1..=PER_ACCOUNT_MAX).contains(&n),
        |_| {
            format!("must be between 1 and {PER_ACCOUNT_MAX}: the provider counts kept connections against the account's limit of simultaneous connections")
        },
    )?;
    let max_total = value(
        loc,
        &f.max_total,
        "max_total",
        WarmSessions::OFF.max_total,
        |n| n >= 1,
        |_| "must be at least 1 (set keep_secs = 0 to turn warm sessions off)".into(),
    )?;
    let pre_open = value(
        loc,
        &f.pre_open_secs,
        "pre_open_secs",
        0,
        |p| p <= PRE_OPEN_MAX_SECS && (p == 0 || keep > 0),
        |p| match p > PRE_OPEN_MAX_SECS {
            true => format!("must be at most {PRE_OPEN_MAX_SECS} (0 turns pre-opening off)"),
            false => {
                "needs keep_secs: a pre-opened connection is kept like one a client logged out of"
                    .into()
            }
        },
    )?;
    Ok(WarmSessions {
        keep: Duration::from_secs(keep),
        per_account,
        max_total,
        pre_open: Duration::from_secs(pre_open),
    })
}

/// One value of `[server.warm_sessions]`: `default` when absent, else itself when `ok`, else
/// an error at it saying `why` not.
fn value<T: Copy>(
    loc: Locator,
    v: &Option<toml::Spanned<T>>,
    name: &str,
    default: T,
    ok: impl Fn(T) -> bool,
    why: impl Fn(T) -> String,
) -> Result<T, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) if ok(*v.get_ref()) => Ok(*v.get_ref()),
        Some(v) => Err(loc.at(
            v.span().start,
            format!("server.warm_sessions.{name}"),
            why(*v.get_ref()),
        )),
    }
}
