//! The SMTP submission side of the gateway: one [`serve`] call per client connection.
//!
//! [`command`] parses command lines, [`session`] is the server state machine (mailgate is the
//! server for the client), [`submit`] is the client of the real provider, and [`data`] does
//! dot-stuffing in both directions. The upstream transaction mirrors the client's step by
//! step (MAIL at MAIL, RCPT at RCPT, the body as it arrives), so every reply the client hears
//! is the provider's own verdict, and a `250` after the data means the provider took it.

pub mod command;
pub mod data;
pub mod limits;
pub mod session;
pub mod submit;
mod wire;

pub use crate::session::Session;

pub use session::serve;
