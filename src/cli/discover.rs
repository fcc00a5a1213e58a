//! `mailgate discover`: the settings found for an address, logging in nowhere.

use anyhow::Result;

/// Finds and prints the settings for `email` (JSON with `json`, the failure too).
pub fn discover(email: &str, resolver: Option<&str>, json: bool, timeout_secs: u64) -> Result<()> {
    mailgate::net::tls::install_crypto_provider();
    let opts = mailgate::discover::Options {
        resolver: super::parse_resolver(resolver)?,
        timeout: std::time::Duration::from_secs(timeout_secs.max(1)),
        ..Default::default()
    };
    let found = match super::runtime()?.block_on(mailgate::discover::discover(email, &opts)) {
        Ok(found) => found,
        Err(e) => {
            if json {
                println!("{:#}", e.to_json(email));
            }
            return Err(e.into());
        }
    };
    if json {
        println!("{:#}", found.to_json());
    } else {
        print!("{}", found.report());
    }
    Ok(())
}
