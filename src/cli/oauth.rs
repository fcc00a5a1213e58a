//! `mailgate oauth`: getting an account's tokens, and what the token store holds for each.

use anyhow::{Context, Result};
use mailgate::config::{Config, OAuth2};
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
        /// Client-credentials flow (Microsoft 365 app-only access; needs the client secret or
        /// certificate).
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
    /// A service account's assertion (Google domain-wide delegation).
    ServiceAccount,
}

/// `oauth authorize EMAIL`: runs `flow` and stores the tokens.
fn authorize_account(email: &str, flow: Flow, config: &Path, timeout_secs: u64) -> Result<()> {
    let rt = super::runtime()?;
    // With a `[store]`, its accounts too, and the tokens go to the store.
    let cfg = rt.block_on(mailgate::discover::load(config))?;
    let oauth = match cfg.account(email) {
        Some(account) => account.imap.credential.oauth().cloned().with_context(|| {
            format!(
                "account {email} has no [account.oauth2] table in {}",
                config.display()
            )
        })?,
        // The delegate of shared mailboxes need not be an account itself.
        None => signing_in_as(&cfg, email)
            .first()
            .map(|a| (*a).clone())
            .with_context(|| {
                format!(
                    "no account {email} in {}, and no account signs in as {email}",
                    config.display()
                )
            })?,
    };
    let users = signing_in_as(&cfg, &oauth.identity)
        .iter()
        .map(|o| o.account.as_str())
        .filter(|a| !a.eq_ignore_ascii_case(&oauth.identity))
        .collect::<Vec<_>>()
        .join(", ");
    // A service account has one way to get tokens, whatever the flags say.
    let flow = match oauth.service_account {
        Some(_) => Flow::ServiceAccount,
        None => flow,
    };
    let deadline = std::time::Duration::from_secs(timeout_secs.max(1));
    let mut out = std::io::stdout();
    let tokens = rt.block_on(async {
        match flow {
            Flow::ClientCredentials => authorize::client_credentials(&oauth, &cfg.server).await,
            Flow::ServiceAccount => authorize::service_account(&oauth, &cfg.server).await,
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
    let used_by = if users.is_empty() {
        String::new()
    } else {
        format!(" (signing in for {users})")
    };
    println!(
        "Authorized {}{used_by}: {expiry}; {}; tokens stored encrypted in {}",
        oauth.identity,
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

/// The OAuth settings of every account whose tokens are `identity`'s.
fn signing_in_as<'a>(cfg: &'a Config, identity: &str) -> Vec<&'a std::sync::Arc<OAuth2>> {
    cfg.accounts
        .iter()
        .filter_map(|a| a.imap.credential.oauth())
        .filter(|o| o.identity.eq_ignore_ascii_case(identity))
        .collect()
}

/// `oauth status`: one line per OAuth account (two when tokens are not saved).
fn status(config: &Path) -> Result<()> {
    // Kept while the tokens are read: a shared store's calls run on it.
    let rt = super::runtime()?;
    let cfg = rt.block_on(mailgate::discover::load(config))?;
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
        let who = oauth.signing_in();
        match tokens {
            Err(e) => println!("{who}: error: {e}"),
            Ok(None) => println!(
                "{who}: no token (run `mailgate oauth authorize {}`)",
                oauth.identity
            ),
            Ok(Some(t)) => println!(
                "{who}: {}",
                token_line(&oauth.identity, &t, now, cfg.server.oauth_upkeep)
            ),
        }
        if let Some(note) = unsaved {
            print_unsaved(&who, &oauth.identity, &note);
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

/// `oauth status`'s words for stored tokens `t` of `email` (the identity; the command to run
/// names it), `upkeep` being the config's `oauth_upkeep_secs` (`None`: off).
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
        "token present ({}, refresh token {}); {access}{refresh}; {last}{}",
        match t.grant {
            Grant::AuthorizationCode => "authorization code",
            Grant::DeviceCode => "device code",
            Grant::ClientCredentials => "client credentials",
            Grant::JwtBearer => "service account (JWT bearer)",
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
fn print_unsaved(who: &str, email: &str, note: &str) {
    let (since, error) = note.split_once(' ').unwrap_or((note, ""));
    let since = since.parse().map_or_else(
        |_| "an unknown time".to_owned(),
        mailgate::oauth::authorize::format_utc,
    );
    println!(
        "{who}: NOT SAVED: since {since} the running gateway holds newer tokens than the token file and cannot save them ({}); it retries at each login. Fix the cause (disk space, the state folder) before restarting it, or run `mailgate oauth authorize {email}` after",
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
            "token present (authorization code, refresh token present)",
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
