//! `Config::parse` on arbitrary text: nothing panics (a bad file is an error with a position),
//! and a configuration that loads never shows an upstream password in its `Debug` form (which
//! is what ends up in logs if someone prints it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailgate::config::Config;
use std::path::Path;

fuzz_target!(|text: &str| {
    // The path only anchors relative file names (ca_file, password_file, state_dir); parsing
    // reads such files but never writes.
    let config = match Config::parse(text, Path::new("/nonexistent/mailgate-fuzz/mailgate.toml")) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let shown = format!("{config:?}");
    for account in &config.accounts {
        assert!(config.account(&account.email).is_some());
        let endpoints = std::iter::once(&account.imap).chain(account.smtp.as_ref());
        for e in endpoints {
            let Some(password) = e.credential.password() else {
                continue;
            };
            let secret = password.expose();
            // Only a value written once in the file, and long enough not to occur by chance:
            // a password that is also, say, the user name is rightly shown as the user name.
            if secret.len() >= 8 && text.matches(secret).count() == 1 {
                assert!(!shown.contains(secret), "password in Debug output");
            }
        }
    }
});
