//! `mailgate oauth`: getting an account's tokens, and what the token store holds for each.

use anyhow::{Context, Result};
use mailgate::config::{Config, OAuth2};
use mailgate::oauth::authorize;
use mailgate::oauth::store::{Grant, Tokens};
use std::path::{Path, PathBuf};

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
    /// Per account: whether a token is stored, when it expires, the last refresh result.
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
    let cfg = Config::load(config)?;
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
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
        let who = oauth.signing_in();
        match tokens {
            Err(e) => println!("{who}: error: {e}"),
            Ok(None) => println!(
                "{who}: no token (run `mailgate oauth authorize {}`)",
                oauth.identity
            ),
            Ok(Some(t)) => println!("{who}: {}", token_line(&oauth.identity, &t, now)),
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
/// names it).
fn token_line(email: &str, t: &Tokens, now: u64) -> String {
    let expiry = match (t.access_token.is_some(), t.expires_at) {
        (false, _) => "no access token".to_owned(),
        (true, None) => "access token without expiry".to_owned(),
        (true, Some(at)) if at > now => format!(
            "access token expires {} (in {} s)",
            authorize::format_utc(at),
            at - now
        ),
        (true, Some(at)) => {
            format!("access token expired {}", authorize::format_utc(at))
        }
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
    let hint = match t.last_refresh.as_ref().map(|r| r.result.as_str()) {
        Some("revoked") => {
            format!("; run `mailgate oauth authorize {email}`")
        }
        _ => String::new(),
    };
    format!(
        "token present ({}, refresh token {}); {expiry}; {last}{hint}",
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
        }
    )
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
