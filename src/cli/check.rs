//! `mailgate check` (each account's servers, step by step) and `mailgate check-config`.

use anyhow::Result;
use mailgate::config::Config;
use std::path::Path;

/// `mailgate check`: exit status 0 when every step passed, 1 when one failed (or the config
/// cannot be loaded), 2 when EMAIL names no account (a usage error, as clap's own).
pub fn check(email: Option<&str>, json: bool, path: &std::path::Path) -> std::process::ExitCode {
    use std::process::ExitCode;
    mailgate::net::tls::install_crypto_provider();
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mailgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let accounts = match email {
        // Nothing checked is not "everything passed": a script must not take it for success.
        None if cfg.accounts.is_empty() => {
            eprintln!("mailgate: no accounts in {} to check", path.display());
            return ExitCode::FAILURE;
        }
        None => cfg.accounts.clone(),
        Some(e) => match cfg.account(e) {
            Some(a) => vec![a.clone()],
            None => {
                let known: Vec<&str> = cfg.accounts.iter().map(|a| a.email.as_str()).collect();
                eprintln!(
                    "mailgate: no account {e} in {} (accounts: {})",
                    path.display(),
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
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mailgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
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

/// `mailgate check-config`: the file loads; accounts left to discovery at start-up are named.
pub fn check_config(config: &Path) -> Result<()> {
    mailgate::net::tls::install_crypto_provider();
    let cfg = Config::load(config)?;
    println!(
        "{}: OK ({} account{})",
        config.display(),
        cfg.accounts.len(),
        if cfg.accounts.len() == 1 { "" } else { "s" }
    );
    for email in &cfg.undiscovered {
        println!(
            "{email}: no servers in the file and no preset for the domain; `mailgate run` discovers them at start-up (see `mailgate discover {email}`)"
        );
    }
    Ok(())
}
