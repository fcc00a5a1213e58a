//! The config file before the account: the shipped example account, and where mail clients
//! connect (`[server]` listen addresses).

use super::SetupArgs;
use crate::cli::ask::{ask, ask_until};
use anyhow::{bail, Context, Result};

/// The shipped example account stays in a file only if the user says so: left there, it makes
/// `check-config` fail once `MAILGATE_IMAP_PASSWORD` is not set. Without a terminal it goes.
pub(super) fn drop_example(target: &mut mailgate::setup::Target, interactive: bool) -> Result<()> {
    if !target.has_example() {
        return Ok(());
    }
    let example = mailgate::setup::EXAMPLE_EMAIL;
    if interactive {
        let answer = ask(&format!(
            "The file still has the example account {example} (local password change-me). Remove it? [Y/n] "
        ))?;
        if answer.trim().to_ascii_lowercase().starts_with('n') {
            println!("Keeping the example account {example}: it needs MAILGATE_IMAP_PASSWORD set to load.");
            return Ok(());
        }
    }
    target.remove_example()?;
    println!(
        "The example account {example} is removed from {} when the new account is written.",
        target.path.display()
    );
    Ok(())
}

/// `--imap-listen` / `--smtp-listen`, or at the terminal for a new file the answers to "where
/// do mail clients connect", written into `[server]`.
pub(super) fn set_listeners(
    target: &mut mailgate::setup::Target,
    args: &SetupArgs,
    interactive: bool,
) -> Result<()> {
    let new_file = target.is_new();
    for (key, given, what) in [
        ("imap_listen", args.imap_listen, "IMAP"),
        ("smtp_listen", args.smtp_listen, "SMTP"),
    ] {
        let addr = match given {
            Some(a) => Some(a),
            // A new file has only the defaults: the ports are the user's choice, as in the
            // file's [server] table later.
            None if interactive && new_file => {
                let server = target.server()?;
                let current = match key {
                    "imap_listen" => server.imap_listen,
                    _ => server.smtp_listen,
                };
                ask_until(
                    &format!("Address mail clients connect to for {what} ({current}): "),
                    |t| match t {
                        "" => Ok(None),
                        t => listen_arg(t).map(Some),
                    },
                )?
            }
            None => None,
        };
        if let Some(addr) = addr {
            target.set_listen(key, addr)?;
        }
    }
    Ok(())
}

/// A listen address typed at the terminal: `IP:PORT` on loopback (any other address needs
/// `[server.tls]`, which a new file does not have).
fn listen_arg(text: &str) -> Result<std::net::SocketAddr> {
    let addr: std::net::SocketAddr = text
        .parse()
        .with_context(|| format!("`{text}` is not IP:PORT (e.g. 127.0.0.1:1143)"))?;
    if !addr.ip().is_loopback() {
        bail!("{addr} is not a loopback address: another address needs [server.tls] (see README, Local TLS); edit the file afterwards");
    }
    Ok(addr)
}
