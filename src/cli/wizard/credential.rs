//! The credentials: the provider's (a password or OAuth 2.0), the local password for the mail
//! client, and a CA file for a provider with a private CA.

use super::Wizard;
use crate::cli::ask::ask;
use anyhow::{bail, Context, Result};
use mailgate::provider::Preset;
use mailgate::secret::Secret;
use mailgate::setup::{self as s, Credential};
use std::path::PathBuf;

/// The provider credential: OAuth when asked for, or when the preset takes no password and
/// none was given; a password otherwise.
pub(super) fn upstream(w: &Wizard, preset: Option<&'static Preset>) -> Result<Credential> {
    let args = w.args;
    let use_oauth = args.oauth
        || (w.interactive
            && args.password_env.is_none()
            && preset.is_some_and(|p| !p.accepts_password()));
    if use_oauth {
        oauth(w, preset)
    } else {
        Ok(Credential::Password(password(w, preset)?))
    }
}

/// OAuth 2.0 settings: the preset's identity provider or the given endpoints, and the app's
/// client id.
fn oauth(w: &Wizard, preset: Option<&'static Preset>) -> Result<Credential> {
    let args = w.args;
    let provider = preset
        .and_then(|p| p.oauth_provider())
        .map(mailgate::discover::oauth_name);
    let endpoints = args.authorize_url.clone().zip(args.token_url.clone());
    if provider.is_none() && endpoints.is_none() {
        bail!(
            "mailgate has no OAuth preset for this provider: give --authorize-url and --token-url"
        );
    }
    let client_id = match (&args.client_id, w.interactive) {
        (Some(c), _) => c.clone(),
        (None, true) => ask("OAuth client id of your app registration: ")?,
        (None, false) => bail!("--oauth needs --client-id"),
    };
    Ok(Credential::OAuth {
        provider,
        endpoints,
        scopes: args.scopes.clone(),
        client_id,
        client_secret_env: args.client_secret_env.clone(),
        tenant: args.tenant.clone(),
    })
}

/// The provider password, from `--password-env` or asked for (with the preset's advice on
/// app passwords first).
fn password(w: &Wizard, preset: Option<&'static Preset>) -> Result<Secret> {
    let email = &w.email;
    Ok(match (&w.args.password_env, w.interactive) {
        (Some(var), _) => secret_env(var, "--password-env")?,
        (None, false) => {
            bail!("--password-env VAR is required with --non-interactive (or --oauth)")
        }
        (None, true) => {
            if let Some(p) = preset {
                if !p.advice.is_empty() {
                    eprintln!("{}: {}", p.name, p.advice);
                }
                if let Some(link) = p.help.app_password {
                    eprintln!("Create an app password: {link}");
                }
                if let Some(link) = p.help.enable_imap {
                    eprintln!("Enable IMAP: {link}");
                }
            }
            let p = Secret::new(rpassword::prompt_password(format!(
                "Password or app password for {email} at the provider: "
            ))?);
            if p.is_empty() {
                bail!("an empty password is not allowed");
            }
            p
        }
    })
}

/// The local password for the mail client, and whether it was generated (then it is printed
/// once at the end).
pub(super) fn local_password(w: &Wizard) -> Result<(Secret, bool)> {
    Ok(match (&w.args.local_password_env, w.interactive) {
        (Some(var), _) => (secret_env(var, "--local-password-env")?, false),
        (None, false) => (s::generate_password(), true),
        (None, true) => {
            eprintln!("Local password for the mail client (empty: generate one).");
            let first = Secret::new(rpassword::prompt_password("Local password: ")?);
            if first.is_empty() {
                (s::generate_password(), true)
            } else {
                let second = Secret::new(rpassword::prompt_password("Again: ")?);
                if first != second {
                    bail!("the two passwords differ");
                }
                (first, false)
            }
        }
    })
}

/// A non-empty environment variable's value as a secret.
fn secret_env(var: &str, what: &str) -> Result<Secret> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
        _ => bail!("{what}: environment variable `{var}` is not set"),
    }
}

/// A CA file that loads, as an absolute path: the config resolves a relative `ca_file` from
/// its own folder, not from where `setup` ran.
pub(super) fn ca_file_arg(path: &std::path::Path) -> Result<PathBuf> {
    let abs = std::fs::canonicalize(path).with_context(|| format!("CA file {}", path.display()))?;
    mailgate::net::tls::client_config(Some(&abs))
        .with_context(|| format!("CA file {}", path.display()))?;
    Ok(abs)
}
