//! The servers of the new account: a preset, the options, discovery, or typed in; shown, and
//! confirmed at the terminal.

use super::{TlsArg, Wizard};
use crate::cli::ask::{ask, ask_until};
use anyhow::{bail, Context, Result};
use mailgate::config::{ServerConfig, TlsMode};
use mailgate::discover::{self, Discovery, Source};
use mailgate::setup::{self, Manual, Which};
use std::path::PathBuf;

/// The settings to use: found (or given), printed, and confirmed.
pub(super) fn settings(
    w: &Wizard,
    server: &ServerConfig,
    ca_file: Option<&PathBuf>,
) -> Result<Discovery> {
    let found = find(w, server, ca_file)?;
    println!("{}:\n{}", settings_header(&found), found.report());
    confirm(w, found)
}

/// The settings from `--provider`, from `--imap-server`/`--smtp-server`, or discovered (typed
/// in at the terminal when discovery finds nothing).
fn find(w: &Wizard, server: &ServerConfig, ca_file: Option<&PathBuf>) -> Result<Discovery> {
    let (args, email) = (w.args, &w.email);
    if let Some(id) = &args.provider {
        let preset = mailgate::provider::by_id(id).with_context(|| {
            format!(
                "unknown provider `{id}`; known: {}",
                mailgate::provider::known_ids()
            )
        })?;
        return Ok(discover::from_preset(
            email,
            preset,
            Source::Provider(preset.id),
        ));
    }
    if let (Some(imap), Some(imap_tls)) = (&args.imap_server, args.imap_tls) {
        return given(w, imap, imap_tls);
    }
    let opts = discover::Options {
        resolver: match &args.resolver {
            Some(_) => crate::cli::parse_resolver(args.resolver.as_deref())?,
            None => mailgate::net::dns::Resolver::new(server.resolver),
        },
        timeout: std::time::Duration::from_secs(5),
        ca_file: ca_file.cloned(),
        network: true,
    };
    match w.rt.block_on(discover::discover(email, &opts)) {
        Ok(found) => Ok(found),
        // As a mail client's wizard falls back to manual settings.
        Err(e) if w.interactive => {
            eprintln!("No settings found for {email}: {e}\nType them in instead (your provider's help pages list them).");
            ask_servers(email)
        }
        Err(e) => Err(anyhow::Error::new(e).context(
            "no settings found; give them with --provider or --imap-server/--imap-tls/--smtp-server/--smtp-tls",
        )),
    }
}

/// The servers given as options (`imap`, `imap_tls`, and the SMTP ones if any).
fn given(w: &Wizard, imap: &str, imap_tls: TlsArg) -> Result<Discovery> {
    let args = w.args;
    let manual = Manual {
        imap,
        imap_tls: imap_tls.into(),
        // clap requires both or neither.
        smtp: args
            .smtp_server
            .as_deref()
            .zip(args.smtp_tls.map(Into::into)),
        username: None,
    };
    setup::manual(&w.email, &manual).map_err(|e| {
        let option = match e.which {
            Which::Imap => "--imap-server",
            Which::Smtp => "--smtp-server",
        };
        anyhow::anyhow!("{option} {}", e.error)
    })
}

/// The shown settings, accepted or replaced by typed ones. A server found without encryption
/// (the report shows the warning) is used only when the user says so (see
/// `Discovery::plaintext_warning`): asked with "no" as the default, or --allow-plaintext.
fn confirm(w: &Wizard, found: Discovery) -> Result<Discovery> {
    let plaintext = found
        .plaintext_warning()
        .filter(|_| !w.args.allow_plaintext);
    if w.interactive {
        let accepted = if plaintext.is_some() {
            let answer = ask("Use these settings without encryption? [y/N] ")?;
            answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes")
        } else {
            let answer = ask("Use these settings? [Y/n] ")?;
            !(answer.eq_ignore_ascii_case("n") || answer.eq_ignore_ascii_case("no"))
        };
        if accepted {
            return Ok(found);
        }
        let typed = ask_servers(&w.email)?;
        println!("{}:\n{}", settings_header(&typed), typed.report());
        Ok(typed)
    } else if plaintext.is_some() {
        bail!(
            "not using a server without encryption on discovery's word: give --allow-plaintext \
             to use it anyway, or the servers with --imap-server/--imap-tls/--smtp-server/--smtp-tls"
        );
    } else {
        Ok(found)
    }
}

/// The servers typed in, as a mail client's manual set-up asks for them: when discovery finds
/// nothing, or the settings it found are declined. Each server's security defaults from its
/// port ([`setup::default_security`]); the user name defaults to the email address.
fn ask_servers(email: &str) -> Result<Discovery> {
    // `optional`: an empty answer means none (an account that only receives has no SMTP).
    let endpoint =
        |what: &str, example: &str, optional: bool| -> Result<Option<(String, TlsMode)>> {
            let question = if optional {
                format!("{what} server (host:port, e.g. {example}; empty: none, receive only): ")
            } else {
                format!("{what} server (host:port, e.g. {example}): ")
            };
            let Some((text, port)) = ask_until(&question, |t| {
                if optional && t.trim().is_empty() {
                    return Ok(None);
                }
                let (_, port) = setup::host_port(t).map_err(|e| anyhow::anyhow!("{what} {e}"))?;
                Ok(Some((t.trim().to_owned(), port)))
            })?
            else {
                return Ok(None);
            };
            let default = setup::default_security(port);
            let tls = ask_until(
                &format!(
                    "{what} security [implicit/starttls/none] ({}): ",
                    default.as_str()
                ),
                |t| match t {
                    "" => Ok(default),
                    word => setup::security(word)
                        .with_context(|| format!("`{word}`: answer implicit, starttls or none")),
                },
            )?;
            Ok(Some((text, tls)))
        };
    // Not optional, so never `None`; the context only names the impossible case.
    let (imap, imap_tls) =
        endpoint("IMAP", "imap.example.com:993", false)?.context("an IMAP server is needed")?;
    let smtp = endpoint("SMTP", "smtp.example.com:465", true)?;
    let user = ask(&format!("User name at the provider ({email}): "))?;
    let manual = Manual {
        imap: &imap,
        imap_tls,
        smtp: smtp.as_ref().map(|(t, tls)| (t.as_str(), *tls)),
        username: Some(&user),
    };
    Ok(setup::manual(email, &manual)?)
}

/// "Settings found" for discovered ones, "Settings given" for typed or given ones.
fn settings_header(found: &mailgate::discover::Discovery) -> &'static str {
    match found.imap.source {
        mailgate::discover::Source::Given => "Settings given",
        _ => "Settings found",
    }
}
