//! `mailgate throttle`: the running gateway's lock-outs, through its control socket.

use anyhow::{bail, Result};
use mailgate::config::Config;
use std::path::Path;

// (No doc comment: clap would take it into the help text.)
#[derive(clap::Subcommand)]
pub enum ThrottleCommand {
    /// Print the locked-out keys (login name, client or all clients) with the time left.
    List,
    /// Lift the lock-outs and forget the failure counts of EMAIL (from every client), or of
    /// every login name without EMAIL.
    Clear {
        /// The login name (email address).
        email: Option<String>,
    },
}

/// Sends `command` to the gateway running with `config` and prints its reply.
pub fn run(command: ThrottleCommand, config: &Path) -> Result<()> {
    let state_dir = Config::load_server(config)?.state_dir;
    let line = match command {
        ThrottleCommand::List => "list".to_owned(),
        ThrottleCommand::Clear { email: None } => "clear".to_owned(),
        ThrottleCommand::Clear { email: Some(e) } if !e.contains(char::is_whitespace) => {
            format!("clear {e}")
        }
        ThrottleCommand::Clear { .. } => bail!("a login name has no spaces"),
    };
    let reply = mailgate::control::request(&state_dir, &line)?;
    print!("{reply}");
    if reply.starts_with("error:") {
        bail!("the running mailgate refused the request");
    }
    Ok(())
}
