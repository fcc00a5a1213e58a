//! The `mailgate` command line: run the gateway, check a config, hash a local password.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use mailgate::config::{self, Config};
use mailgate::secret::Secret;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "mailgate",
    version,
    about = "Local IMAP/SMTP gateway for password-only mail clients"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        /// Configuration file.
        #[arg(long, short, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// Log line format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Validate a configuration file without starting.
    CheckConfig {
        /// Configuration file.
        #[arg(long, short, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Hash a local password for `local_password_hash` (reads it from stdin or a prompt).
    HashPassword,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailgate: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run { config, log_format } => {
            init_logging(log_format);
            mailgate::tls::install_crypto_provider();
            let cfg = Config::load(&config)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(async {
                let server = mailgate::server::Server::bind(cfg).await?;
                server.run().await?;
                Ok::<_, anyhow::Error>(())
            })
        }
        Command::CheckConfig { config } => {
            mailgate::tls::install_crypto_provider();
            let cfg = Config::load(&config)?;
            println!(
                "{}: OK ({} account{})",
                config.display(),
                cfg.accounts.len(),
                if cfg.accounts.len() == 1 { "" } else { "s" }
            );
            Ok(())
        }
        Command::HashPassword => {
            let password = read_password()?;
            let hash = mailgate::account::hash_password(&password)
                .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
            println!("{hash}");
            Ok(())
        }
    }
}

/// The password from a terminal prompt (asked twice) or the first line of stdin.
fn read_password() -> Result<Secret> {
    if std::io::stdin().is_terminal() {
        let first = Secret::new(rpassword::prompt_password("Local password: ")?);
        let second = Secret::new(rpassword::prompt_password("Again: ")?);
        if first != second {
            bail!("the two passwords differ");
        }
        if first.is_empty() {
            bail!("an empty password is not allowed");
        }
        return Ok(first);
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line)?;
    let pw = Secret::new(line.trim_end_matches(['\r', '\n']).to_owned());
    if pw.is_empty() {
        bail!("no password on standard input");
    }
    Ok(pw)
}
