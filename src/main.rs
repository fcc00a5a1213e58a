//! The `mailgate` command line: run the gateway, check a config, hash a local password, get
//! and inspect OAuth 2.0 tokens.

// As in the library: clippy.toml bounds a function at 100 lines.
#![warn(clippy::too_many_lines)]
// Production code never unwraps: a failure is an error value. The one invariant that may
// `expect` says why where it does (and allows it there); tests are free to unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod cli;

use anyhow::Result;
use clap::{Parser, Subcommand};
use cli::account::AccountCommand;
use cli::cert::CertCommand;
use cli::oauth::OauthCommand;
use cli::run::LogFormat;
use cli::throttle::ThrottleCommand;
use cli::wizard::SetupArgs;
use mailgate::config;
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
    /// Connect to each account's servers step by step (DNS, TCP, TLS, greeting, login) and
    /// say what to fix; exit status 0 only if every step passed. Sends no mail.
    Check {
        /// Check only this account (its email address).
        email: Option<String>,
        /// Print one JSON document (accounts → steps → name, ok, detail, advice).
        #[arg(long)]
        json: bool,
        /// Configuration file.
        #[arg(long, short, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Validate a configuration file without starting (with a `[store]`, the shared store's
    /// accounts too).
    CheckConfig {
        /// Configuration file.
        #[arg(long, short, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Hash a local password for `local_password_hash` (reads it from stdin or a prompt).
    HashPassword,
    /// Set the connect page's operator password (`[web] operator_password_hash`; asked twice,
    /// or read from stdin).
    WebPassword {
        /// Configuration file.
        #[arg(long, short, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Find the IMAP/SMTP settings for an address (preset, MX, autoconfig, guess); logs in
    /// nowhere.
    Discover {
        /// The email address.
        email: String,
        /// DNS server to ask (`ADDR` or `ADDR:PORT`); default: /etc/resolv.conf.
        #[arg(long)]
        resolver: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Time-out per step, in seconds.
        #[arg(long, default_value_t = 5)]
        timeout_secs: u64,
    },
    /// OAuth 2.0 tokens for accounts with `[account.oauth2]`.
    #[command(subcommand)]
    Oauth(OauthCommand),
    /// Add an account: settings found, credential tested live, account appended to the config
    /// (or, with a `[store]`, written to the shared store).
    Setup(Box<SetupArgs>),
    /// Local TLS certificates for `[server.tls]`.
    #[command(subcommand)]
    Cert(CertCommand),
    /// The accounts of the shared store (`[store]`): every node serves a change within a
    /// second.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
        /// Configuration file (its `[store]` names the database).
        #[arg(long, short, default_value = config::DEFAULT_PATH, global = true)]
        config: PathBuf,
    },
    /// Failed-login lock-outs of the running mailgate (through its control socket).
    Throttle {
        #[command(subcommand)]
        command: ThrottleCommand,
        /// Configuration file (its `state_dir` holds the control socket).
        #[arg(long, short, default_value = config::DEFAULT_PATH, global = true)]
        config: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    // Before anything reads a password, a token or the token key (see `coredump`).
    let (dumps_before, off) = mailgate::coredump::forbid();
    if let Err(e) = off {
        eprintln!("mailgate: warning: cannot turn core dumps off ({e}); a core dump would hold passwords and tokens");
    }
    let cli = Cli::parse();
    if let Command::Check {
        email,
        json,
        config,
    } = &cli.command
    {
        return cli::check::check(email.as_deref(), *json, config);
    }
    let result = dispatch(cli.command, &dumps_before);
    // Log lines still gathered (see `logbuf`) go out before anything else is printed.
    mailgate::logbuf::flush();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailgate: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command, dumps_before: &mailgate::coredump::Before) -> Result<()> {
    match command {
        Command::Run { config, log_format } => cli::run::run(&config, log_format, dumps_before),
        Command::CheckConfig { config } => cli::check::check_config(&config),
        Command::Oauth(cmd) => cli::oauth::run(cmd),
        Command::Setup(args) => cli::wizard::run(*args),
        Command::Discover {
            email,
            resolver,
            json,
            timeout_secs,
        } => cli::discover::discover(&email, resolver.as_deref(), json, timeout_secs),
        // Handled in main(): it has its own exit statuses.
        Command::Check { .. } => Ok(()),
        Command::Cert(cmd) => cli::cert::run(cmd),
        Command::Throttle { command, config } => cli::throttle::run(command, &config),
        Command::Account { command, config } => cli::account::run(command, &config),
        Command::HashPassword => cli::password::hash_password(),
        Command::WebPassword { config } => cli::web::web_password(&config),
    }
}
