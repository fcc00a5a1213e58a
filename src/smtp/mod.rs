//! The SMTP submission side of the gateway: one [`serve`] call per client connection.
//!
//! [`command`] parses command lines, [`session`] is the server state machine (mailgate is the
//! server for the client), [`submit`] is the client of the real provider, and [`data`] does
//! dot-stuffing in both directions. The upstream transaction mirrors the client's step by
//! step (MAIL at MAIL, RCPT at RCPT, the body as it arrives), so every reply the client hears
//! is the provider's own verdict, and a `250` after the data means the provider took it.

pub mod command;
pub mod data;
pub mod session;
pub mod submit;

use crate::config::Config;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// Per-connection context for an SMTP session.
pub struct Session {
    /// Session number, unique per process, for correlating log lines.
    pub id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the client reached us on a loopback address: only there is AUTH offered
    /// without TLS (local clients often cannot do TLS to localhost; nothing crosses a network).
    pub loopback: bool,
    /// TLS from the first byte (an `smtps_listen` connection); becomes true after STARTTLS.
    pub tls: bool,
    /// The configuration this session started with (a reload does not change it).
    pub config: Arc<Config>,
    /// Becomes `true` when the gateway shuts down.
    pub shutdown: watch::Receiver<bool>,
}

pub use session::serve;
