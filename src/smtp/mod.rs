//! The SMTP submission side of the gateway: one [`serve`] call per client connection.
//!
//! `session` is the command loop (mailgate is the server for the client) and `state` where
//! it stands, without I/O; `auth`, `envelope` (MAIL/RCPT) and `body` (DATA/BDAT) are its
//! commands, `reply` the words for what the provider said. [`command`] parses command lines,
//! [`submit`] is the client of the real provider (its exchanges timed in `wire`), and
//! [`data`] does dot-stuffing in both directions; [`sent_copy`] (with [`message_id`]) does
//! what `[account.folders] sent_copy` asks once the provider accepted a message. The upstream transaction mirrors the
//! client's step by step (MAIL at MAIL, RCPT at RCPT, the body as it arrives), so every reply
//! the client hears is the provider's own verdict, and a `250` after the data means the
//! provider took it.

mod auth;
mod body;
pub mod command;
#[cfg(test)]
mod conversation_tests;
pub mod data;
mod envelope;
pub mod limits;
mod reply;
pub mod sent_copy;
mod session;
mod state;
pub mod submit;
mod wire;

pub use crate::session::Session;

pub use session::serve;
