//! mailgate: a local IMAP/SMTP gateway.
//!
//! A mail client that only knows "server, user name, password" logs in to mailgate with its
//! email address and a local password; mailgate connects to the real provider with the
//! account's TLS settings and stored credential and relays the session. See `DESIGN.md` in the
//! project's shared folder for the architecture and `README.md` for operation.

pub mod account;
pub mod cert;
pub mod check;
pub mod config;
pub mod control;
pub mod coredump;
pub mod diagnosis;
pub mod discover;
pub mod imap;
pub mod logbuf;
pub mod logfmt;
pub mod metrics;
pub mod net;
pub mod oauth;
pub mod owner;
pub mod preauth;
pub mod provider;
pub mod sasl;
pub mod secret;
pub mod server;
pub mod session;
pub mod setup;
pub mod smtp;
pub mod throttle;
pub mod upstream;
pub mod verifier;
