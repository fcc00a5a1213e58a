//! mailgate: a local IMAP/SMTP gateway.
//!
//! A mail client that only knows "server, user name, password" logs in to mailgate with its
//! email address and a local password; mailgate connects to the real provider with the
//! account's TLS settings and stored credential and relays the session. `docs/architecture.md`
//! draws the layers and follows one IMAP and one SMTP session through them; `README.md` is for
//! operation.

// Long functions hide the steps a reader needs to see; clippy.toml sets the bound (100 lines).
#![warn(clippy::too_many_lines)]
// Production code never unwraps: a failure is an error value. The one invariant that may
// `expect` says why where it does (and allows it there); tests are free to unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod account;
pub mod cert;
pub mod check;
pub mod config;
pub mod control;
pub mod coredump;
pub mod diagnosis;
pub mod discover;
pub mod imap;
pub mod jwt;
pub mod logbuf;
pub mod logfmt;
pub mod mailbox;
pub mod metrics;
pub mod net;
pub mod oauth;
pub mod owner;
pub mod pgstore;
pub mod preauth;
pub mod provider;
pub mod sasl;
pub mod sealed;
pub mod secret;
pub mod server;
pub mod session;
pub mod setup;
pub mod smtp;
pub mod throttle;
pub mod upstream;
pub mod verifier;
pub mod web;
