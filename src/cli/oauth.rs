//! `mailgate oauth`: getting an account's tokens, and what the token store holds for each.

use anyhow::{Context, Result};
use mailgate::config::Config;
use mailgate::oauth::authorize;
use mailgate::oauth::store::{Grant, Tokens};
use std::path::{Path, PathBuf};
use std::time::Duration;

// (No doc comment: clap would take it into the help text.)
#[derive(clap::Subcommand)]
pub enum OauthCommand {
    /// Get tokens for an account: browser (authorization code + PKCE) unless told otherwise.
    Authorize {
        /// The account's email address.
        email: String,
        /// Device-code flow: prints a code to enter on another device; no terminal input.
        #[arg(long, conflicts_with = "client_credentials")]
        device: bool,
        /// Client-credentials flow (Microsoft 365 app-only access; needs the client secret).
        #[arg(long)]
        client_credentials: bool,
        /// Configuration file.
        #[arg(long, short, default_value = mailgate::config::DEFAULT_PATH)]
        config: PathBuf,
        /// How long to wait for the approval, in seconds.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
    /// Per account: whether a token is stored, when it expires, the last refresh result, upkeep.
    Status {
        /// Configuration file.
        #[arg(long, short, default_value = mailgate::config::DEFAULT_PATH)]
        config: PathBuf,
    },
}

/// Runs `mailgate oauth …`.
pub fn run(cmd: OauthCommand) -> Result<()> {
    mailgate::net::tls::install_crypto_provider();
    match cmd {
        OauthCommand::Authorize {
            email,
            device,
            client_credentials,
            config,
            timeout_secs,
        } => {
            let flow = if client_credentials {
                Flow::ClientCredentials
            } else if device {
                Flow::Device
            } else {
                Flow::Browser
            };
            authorize_account(&email, flow, &config, timeout_secs)
        }
        OauthCommand::Status { config } => status(&config),
    }
}

/// How `oauth authorize` gets the tokens.
enum Flow {
    /// Authorization code + PKCE, approved in a browser.
    Browser,
    /// Device code, approved on another device.
    Device,
    /// Client credentials (app-only access).
    ClientCredentials,
}

/// `oauth authorize EMAIL`: runs `flow` and stores the tokens.
fn authorize_account(email: &str, flow: Flow, config: &Path, timeout_secs: u64) -> Result<()> {
    let cfg = Config::load(config)?;
    let account = cfg
        .account(email)
        .with_context(|| format!("no account {email} in {}", config.display()))?;
    let oauth = account.imap.credential.oauth().cloned().with_context(|| {
        format!(
            "account {email} has no [account.oauth2] table in {}",
            config.display()
        )
    })?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let deadline = std::time::Duration::from_secs(timeout_secs.max(1));
    let mut out = std::io::stdout();
    let tokens = rt.block_on(async {
        match flow {
            Flow::ClientCredentials => authorize::client_credentials(&oauth, &cfg.server).await,
            Flow::Device => authorize::device_code(&oauth, &cfg.server, &mut out, deadline).await,
            Flow::Browser => {
                let pasted = authorize::stdin_lines();
                authorize::authorization_code(&oauth, &cfg.server, &mut out, pasted, deadline).await
            }
        }
    })?;
    let expiry = match tokens.expires_at {
        Some(at) => format!("access token valid until {}", authorize::format_utc(at)),
        None => "access token without a stated expiry".into(),
    };
    println!(
        "Authorized {}: {expiry}; {}; tokens stored encrypted in {}",
        oauth.account,
        if tokens.refresh_token.is_some() {
            "refresh token stored"
        } else {
            "no refresh token (renewed by asking again)"
        },
        oauth.state_dir.display()
    );
    // The stdin reader thread may still be blocked on a read: exit without waiting.
    rt.shutdown_background();
    Ok(())
}

/// `oauth status`: one line per OAuth account (two when tokens are not saved).
fn status(config: &Path) -> Result<()> {
    let cfg = Config::load(config)?;
    let now = mailgate::oauth::unix_now();
    let mut any = false;
    for account in &cfg.accounts {
        let Some(oauth) = account.imap.credential.oauth() else {
            continue;
        };
        any = true;
        let (tokens, unsaved) = match mailgate::oauth::status(oauth) {
            Ok(found) => (found.tokens, found.unsaved),
            Err(e) => (Err(e), None),
        };
        match tokens {
            Err(e) => println!("{}: error: {e}", account.email),
            Ok(None) => println!(
                "{}: no token (run `mailgate oauth authorize {}`)",
                account.email, account.email
            ),
            Ok(Some(t)) => println!(
                "{}",
                token_line(&account.email, &t, now, cfg.server.oauth_upkeep)
            ),
        }
        if let Some(note) = unsaved {
            print_unsaved(&account.email, &note);
        }
    }
    if !any {
        println!(
            "no account in {} has an [account.oauth2] table",
            config.display()
        );
    }
    Ok(())
}

/// `oauth status`'s line for an account with stored tokens `t`, `upkeep` being the config's
/// `oauth_upkeep_secs` (`None`: off).
fn token_line(email: &str, t: &Tokens, now: u64, upkeep: Option<Duration>) -> String {
    let access = match (t.access_token.is_some(), t.expires_at) {
        (false, _) => "no access token".to_owned(),
        (true, None) => "access token without expiry".to_owned(),
        (true, Some(at)) => format!("access token {}", expiry(at, now)),
    };
    let refresh = match (&t.refresh_token, t.refresh_expires_at) {
        (Some(_), Some(at)) => format!("; refresh token {}", expiry(at, now)),
        _ => String::new(),
    };
    let last = match &t.last_refresh {
        None => "never refreshed".to_owned(),
        Some(r) if r.detail.is_empty() => {
            format!(
                "last refresh {} at {}",
                r.result,
                authorize::format_utc(r.at)
            )
        }
        Some(r) => format!(
            "last refresh {} at {} ({})",
            r.result,
            authorize::format_utc(r.at),
            r.detail
        ),
    };
    format!(
        "{email}: token present ({}, refresh token {}); {access}{refresh}; {last}{}",
        match t.grant {
            Grant::AuthorizationCode => "authorization code",
            Grant::DeviceCode => "device code",
            Grant::ClientCredentials => "client credentials",
        },
        if t.refresh_token.is_some() {
            "present"
        } else {
            "absent"
        },
        next_step(email, t, now, upkeep)
    )
}

/// "expires TIME (in N s)" or "expired TIME".
fn expiry(at: u64, now: u64) -> String {
    if at > now {
        format!("expires {} (in {} s)", authorize::format_utc(at), at - now)
    } else {
        format!("expired {}", authorize::format_utc(at))
    }
}

/// What happens to the refresh token next: the command to run when it was refused, or when
/// upkeep uses it again (the first pass after `oauth_upkeep_secs` since its last use).
fn next_step(email: &str, t: &Tokens, now: u64, upkeep: Option<Duration>) -> String {
    let last = t.last_refresh.as_ref();
    if last.is_some_and(|r| r.result == "revoked") {
        return format!("; needs authorization: run `mailgate oauth authorize {email}`");
    }
    if t.grant == Grant::ClientCredentials || t.refresh_token.is_none() {
        return String::new();
    }
    let Some(every) = upkeep else {
        return "; upkeep off: only logins use the refresh token".into();
    };
    let due = last
        .filter(|r| r.result == "ok")
        .map(|r| r.at.saturating_add(every.as_secs()))
        .filter(|&due| due > now);
    match due {
        Some(due) => format!(
            "; kept alive by upkeep: next use due {}",
            authorize::format_utc(due)
        ),
        None => "; kept alive by upkeep: next use at its next pass".into(),
    }
}

/// `oauth status`'s line for tokens a running gateway could not save (the store's note:
/// Unix time of the first failure, then the error; empty when the disk had no room for more).
fn print_unsaved(email: &str, note: &str) {
    let (since, error) = note.split_once(' ').unwrap_or((note, ""));
    let since = since.parse().map_or_else(
        |_| "an unknown time".to_owned(),
        mailgate::oauth::authorize::format_utc,
    );
    println!(
        "{email}: NOT SAVED: since {since} the running gateway holds newer tokens than the token file and cannot save them ({}); it retries at each login. Fix the cause (disk space, the state folder) before restarting it, or run `mailgate oauth authorize {email}` after",
        if error.is_empty() { "see its log" } else { error }
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailgate::oauth::store::LastRefresh;
    use mailgate::secret::Secret;

    const NOW: u64 = 1_800_000_000;

    fn tokens(result: &str) -> Tokens {
        Tokens {
            grant: Grant::AuthorizationCode,
            refresh_token: Some(Secret::from("r")),
            access_token: Some(Secret::from("a")),
            expires_at: Some(NOW + 600),
            refresh_expires_at: Some(NOW + 86_400),
            scope: None,
            last_refresh: Some(LastRefresh {
                at: NOW - 100,
                result: result.into(),
                detail: String::new(),
            }),
        }
    }

    #[test]
    fn status_line_says_expiries_and_what_upkeep_does_next() {
        let day = Some(Duration::from_secs(86_400));
        let line = token_line("a@b.c", &tokens("ok"), NOW, day);
        let want = [
            "a@b.c: token present (authorization code, refresh token present)",
            "; access token expires 2027-01-15 08:10:00 UTC (in 600 s)",
            "; refresh token expires 2027-01-16 08:00:00 UTC (in 86400 s)",
            "; last refresh ok at 2027-01-15 07:58:20 UTC",
            "; kept alive by upkeep: next use due 2027-01-16 07:58:20 UTC",
        ]
        .concat();
        assert_eq!(line, want);

        let line = token_line("a@b.c", &tokens("revoked"), NOW, day);
        assert!(
            line.ends_with(
                "last refresh revoked at 2027-01-15 07:58:20 UTC; needs authorization: run `mailgate oauth authorize a@b.c`"
            ),
            "{line}"
        );
        let line = token_line("a@b.c", &tokens("error"), NOW, day);
        assert!(
            line.ends_with("; kept alive by upkeep: next use at its next pass"),
            "{line}"
        );
        let line = token_line("a@b.c", &tokens("ok"), NOW, None);
        assert!(
            line.ends_with("; upkeep off: only logins use the refresh token"),
            "{line}"
        );

        let mut app = tokens("ok");
        app.grant = Grant::ClientCredentials;
        app.refresh_token = None;
        app.expires_at = Some(NOW - 5);
        let line = token_line("a@b.c", &app, NOW, day);
        assert!(
            line.ends_with("access token expired 2027-01-15 07:59:55 UTC; last refresh ok at 2027-01-15 07:58:20 UTC"),
            "{line}"
        );
    }
}
