//! Why an upstream connection was not kept, or is kept no longer: the label of
//! `mailgate_imap_warm_discarded_total` and the words of the log line.

/// See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The client's LOGOUT went upstream: the session's state could not be proven clean.
    State,
    /// UNSELECT (or NOOP) after the client's LOGOUT did not come back clean.
    Cleanup,
    /// The account already has `per_account` connections kept, or the pool `max_total`.
    Full,
    /// Kept for `keep_secs` and not used.
    Expired,
    /// The provider closed it, or sent something, while it was kept.
    Closed,
    /// Its NOOP before being handed to a new session failed; the session got another.
    Stale,
    /// The OAuth access token it logged in with has expired.
    TokenExpired,
    /// A reload (the config file, or the shared store's accounts) since it logged in.
    Reload,
    /// Its account is gone after a reload.
    Removed,
    /// The gateway is shutting down.
    Shutdown,
}

impl Reason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Reason::State => "state",
            Reason::Cleanup => "cleanup_failed",
            Reason::Full => "full",
            Reason::Expired => "expired",
            Reason::Closed => "closed",
            Reason::Stale => "stale",
            Reason::TokenExpired => "token_expired",
            Reason::Reload => "reload",
            Reason::Removed => "removed",
            Reason::Shutdown => "shutdown",
        }
    }

    /// Counts one connection not kept for this reason.
    pub fn count(self) {
        crate::metrics::imap_warm_discarded(self.label());
    }

    /// Whether the connection is still worth a LOGOUT (it is open and clean enough to
    /// take one); otherwise it is just closed.
    pub fn logout(self) -> bool {
        !matches!(self, Reason::Closed | Reason::Stale | Reason::Cleanup)
    }
}
