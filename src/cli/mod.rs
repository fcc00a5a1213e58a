//! The commands of the `mailgate` binary, one module each; `main.rs` parses the arguments and
//! calls into these.

pub mod account;
pub mod ask;
pub mod cert;
pub mod check;
pub mod discover;
pub mod oauth;
pub mod password;
pub mod run;
pub mod throttle;
pub mod web;
pub mod wizard;

use anyhow::{Context, Result};

/// `--resolver ADDR[:PORT]`, or the system's.
fn parse_resolver(text: Option<&str>) -> Result<mailgate::net::dns::Resolver> {
    Ok(mailgate::net::dns::Resolver::new(match text {
        None => None,
        Some(t) => Some(
            mailgate::net::dns::parse_server(t)
                .with_context(|| format!("--resolver `{t}` is not an IP address or IP:port"))?,
        ),
    }))
}

/// A multi-threaded runtime for one command.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
