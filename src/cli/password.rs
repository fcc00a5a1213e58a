//! `mailgate hash-password`: a local password's hash for `local_password_hash`.

use anyhow::{bail, Result};
use mailgate::secret::Secret;
use std::io::{BufRead, IsTerminal};

/// Reads the password and prints its hash.
pub fn hash_password() -> Result<()> {
    let password = read_password("Local password: ")?;
    let hash = mailgate::account::hash_password(&password)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    println!("{hash}");
    Ok(())
}

/// The password from a terminal prompt (asked twice) or the first line of stdin.
pub fn read_password(prompt: &str) -> Result<Secret> {
    if std::io::stdin().is_terminal() {
        let first = Secret::new(rpassword::prompt_password(prompt)?);
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
