//! `mailgate check` (each account's servers, step by step) and `mailgate check-config`. Both
//! read the accounts a running gateway would serve: the file's, and with a `[store]` the
//! shared store's.

use anyhow::{Context, Result};
use mailgate::config::Config;
use mailgate::discover::ResolveError;
use std::path::Path;

/// The file and, with a `[store]`, the shared store's accounts (no discovery: accounts that
/// need it are named in [`Config::undiscovered`]), on `rt`, which must outlive every use of
/// the store's tokens. A store that cannot be used is named as such.
fn load(rt: &tokio::runtime::Runtime, path: &Path) -> Result<Config> {
    match rt.block_on(mailgate::discover::load(path)) {
        Ok(cfg) => Ok(cfg),
        Err(e @ ResolveError::Store(_)) => {
            Err(anyhow::Error::new(e).context(format!("{}: [store]", path.display())))
        }
        Err(e) => Err(e.into()),
    }
}

/// Where the accounts come from, for messages.
fn source(cfg: &Config, path: &Path) -> String {
    match cfg.store {
        Some(_) => format!("{} or the shared store", path.display()),
        None => path.display().to_string(),
    }
}

/// `mailgate check`: exit status 0 when every step passed, 1 when one failed (or the config
/// cannot be loaded), 2 when EMAIL names no account (a usage error, as clap's own).
pub fn check(email: Option<&str>, json: bool, path: &std::path::Path) -> std::process::ExitCode {
    use std::process::ExitCode;
    mailgate::net::tls::install_crypto_provider();
    // Multi-threaded: a shared store's token calls wait on it from the blocking pool.
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mailgate: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let cfg = match load(&rt, path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mailgate: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    skipped(&cfg, &mut std::io::stderr());
    let accounts = match email {
        // Nothing checked is not "everything passed": a script must not take it for success.
        None if cfg.accounts.is_empty() => {
            eprintln!("mailgate: no accounts in {} to check", source(&cfg, path));
            return ExitCode::FAILURE;
        }
        None => cfg.accounts.clone(),
        Some(e) => match cfg.account(e) {
            Some(a) => vec![a.clone()],
            None => {
                let known: Vec<&str> = cfg.accounts.iter().map(|a| a.email.as_str()).collect();
                eprintln!(
                    "mailgate: no account {e} in {} (accounts: {})",
                    source(&cfg, path),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
                return ExitCode::from(2);
            }
        },
    };
    let report = rt.block_on(mailgate::check::run(&cfg, &accounts));
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("mailgate: cannot write the report as JSON: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", mailgate::check::render_text(&report));
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Names the shared store's accounts that are left out, and why (as `mailgate run` logs them).
fn skipped(cfg: &Config, out: &mut impl std::io::Write) {
    for (email, why) in &cfg.store_skipped {
        let _ = writeln!(out, "{email}: shared store account not used: {why}");
    }
}

/// `mailgate check-config`: the file loads, and the shared store's accounts with it; accounts
/// left to discovery at start-up and store accounts left out are named.
pub fn check_config(config: &Path) -> Result<()> {
    mailgate::net::tls::install_crypto_provider();
    let rt = super::runtime()?;
    let cfg = load(&rt, config)?;
    let n = cfg.accounts.len();
    let plural = if n == 1 { "" } else { "s" };
    match cfg.store {
        None => println!("{}: OK ({n} account{plural})", config.display()),
        Some(_) => {
            let stored = n - count_file(config)?.min(n);
            println!(
                "{}: OK ({n} account{plural}: {} in the file, {stored} from the shared store)",
                config.display(),
                n - stored
            );
        }
    }
    skipped(&cfg, &mut std::io::stdout());
    for email in &cfg.undiscovered {
        println!(
            "{email}: no servers in the file and no preset for the domain; `mailgate run` discovers them at start-up (see `mailgate discover {email}`)"
        );
    }
    Ok(())
}

/// How many accounts the file alone holds (the store's are the rest).
fn count_file(config: &Path) -> Result<usize> {
    let file = Config::load(config).with_context(|| config.display().to_string())?;
    Ok(file.accounts.len())
}
