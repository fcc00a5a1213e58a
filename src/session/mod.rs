//! What every client connection carries, whichever protocol it speaks: the [`Session`]
//! record, its log span, the [`Shutdown`] signal, and the shared [`serve`] wrapper.

mod serve;
mod shutdown;

pub use serve::{serve, NoTls, Protocol};
pub use shutdown::{channel as shutdown_channel, Shutdown, Trigger};

use crate::config::Config;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Per-connection context of an IMAP or SMTP session.
pub struct Session {
    /// Session number, unique per process, for correlating log lines.
    pub id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the client reached us on a loopback address: only there may it log in without
    /// TLS (elsewhere the password would cross a network in clear; local clients often cannot
    /// do TLS to localhost).
    pub loopback: bool,
    /// TLS from the first byte (an `imaps_listen`/`smtps_listen` connection); becomes true
    /// after STARTTLS.
    pub tls: bool,
    /// The configuration this session started with (a reload does not change it).
    pub config: Arc<Config>,
    /// Becomes `true` when the gateway shuts down.
    pub shutdown: Shutdown,
    /// Its place among the pre-login clients and its address's connections; `None` when not
    /// counted (a session driven directly, as in tests and fuzzing).
    pub ticket: Option<crate::preauth::Ticket>,
    /// When the connection was accepted: `preauth_deadline_secs` counts from here.
    pub accepted: Instant,
    /// The port the client connected to (named in the answer to a POP3 client).
    pub local_port: u16,
}

impl Session {
    /// When the pre-login phase must be over.
    pub fn preauth_deadline(&self) -> Instant {
        self.accepted + self.config.server.preauth_deadline
    }
}

/// The span every log line of one session is written in: its number, protocol and peer, and
/// the account once the client has logged in.
pub fn span(proto: &'static str, id: u64, peer: SocketAddr) -> tracing::Span {
    tracing::info_span!(
        "session",
        id,
        proto,
        peer = %peer,
        account = tracing::field::Empty
    )
}
