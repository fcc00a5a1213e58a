//! `[[account]]`: who logs in, and the servers and credential behind the account.

use super::address::is_address;
use super::endpoint::{endpoint, Credential, Endpoint};
use super::file::{AccountFile, EndpointFile};
use super::locate::{key_offset, Locator};
use super::located::Located;
use super::ConfigError;
use crate::provider::{self, Discovery, Source};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// One mailbox served through the gateway.
#[derive(Debug)]
pub struct Account {
    /// The address the client logs in with (as written in the file).
    pub email: String,
    /// Other addresses this account may send as.
    pub aliases: Vec<String>,
    /// argon2 PHC string of the local password.
    pub local_password_hash: String,
    /// The upstream IMAP server.
    pub imap: Endpoint,
    /// The upstream SMTP submission server; `None` when the account cannot send.
    pub smtp: Option<Endpoint>,
    /// Where the servers came from: `config`, or a preset / MX / autoconfig / guess (for the
    /// start-up log).
    pub source: String,
    /// `[account.smtp]` names no password of its own and uses `[account.imap]`'s (so advice
    /// about a refused SMTP password points at `[account.imap]`).
    pub smtp_password_inherited: bool,
    /// `[account.folders]`: the folder names the client expects and who files the Sent copy.
    pub folders: super::folders::Folders,
}

/// What validating an account needs besides its table.
pub(super) struct Context<'a> {
    /// Where errors go.
    pub loc: Locator<'a>,
    /// The config file's folder.
    pub base: &'a Path,
    /// `[server] state_dir`, resolved.
    pub state_dir: &'a Path,
    /// Servers discovered over the network, by lower-case email.
    pub discovered: &'a HashMap<String, Discovery>,
}

/// The account's identity: its email address (trimmed), its aliases and its local password
/// hash, each checked; `name` is `account[i]`, `at` the table's offset.
pub(super) fn check_identity(
    a: &AccountFile,
    name: &str,
    at: usize,
    loc: Locator,
) -> Result<String, ConfigError> {
    let email = a.email.trim().to_owned();
    if !is_address(&email) {
        return Err(loc.at(
            at,
            format!("{name}.email"),
            format!("`{email}` is not an email address"),
        ));
    }
    for alias in &a.aliases {
        if !is_address(alias) {
            return Err(loc.at(
                at,
                format!("{name}.aliases"),
                format!("`{alias}` is not an email address"),
            ));
        }
    }
    if argon2::PasswordHash::new(&a.local_password_hash).is_err() {
        return Err(loc.at(
            at,
            format!("{name}.local_password_hash"),
            "is not an argon2 PHC string; make one with `mailgate hash-password`".into(),
        ));
    }
    Ok(email)
}

/// The account of table `a` (`name` is `account[i]`, `at` the table's offset), or `None` when
/// its servers need network discovery that has not run.
pub(super) fn account(
    a: AccountFile,
    email: String,
    name: &str,
    at: usize,
    cx: &Context,
) -> Result<Option<Account>, ConfigError> {
    let Some(found) = servers(&a, &email, name, at, cx)? else {
        return Ok(None);
    };
    let loc = cx.loc;
    let imap_at = a.imap.as_ref().map_or(at, |t| t.span().start);
    let oauth = match a.oauth2 {
        None => None,
        Some(spanned) => {
            let at = spanned.span().start;
            let o = spanned.into_inner();
            Some(Arc::new(
                o.validate(&email, cx.base, cx.state_dir)
                    .map_err(|e| loc.field(at, name, "oauth2", e))?,
            ))
        }
    };
    // With OAuth 2.0 the token is the credential: no password is needed, and one left in the
    // file would be silently unused — say so instead.
    if oauth.is_some() {
        let tables = [("imap", a.imap.as_ref().map(|t| (t.get_ref(), imap_at)))]
            .into_iter()
            .chain(
                a.smtp
                    .as_ref()
                    .map(|t| ("smtp", Some((t.get_ref(), t.span().start)))),
            );
        for (table, file) in tables {
            if let Some((key, at)) = file.and_then(|(f, at)| f.password_key().map(|k| (k, at))) {
                return Err(loc.field(
                    at,
                    name,
                    table,
                    super::locate::FieldError::new(
                        key,
                        "is not used with [account.oauth2] (the token is the credential); remove it".into(),
                    ),
                ));
            }
        }
    }
    let imap_default = oauth.map(Credential::OAuth2);
    let imap_file = a.imap.map(Located::into_inner).unwrap_or_default();
    let imap_found = found.as_ref().map(|d| &d.imap);
    let imap = endpoint(
        imap_file,
        &email,
        cx.base,
        imap_default.as_ref(),
        imap_found,
    )
    .map_err(|e| loc.field(imap_at, name, "imap", e))?;
    let (smtp, smtp_password_inherited) =
        smtp(a.smtp, &email, at, name, &imap, found.as_ref(), cx)?;
    let source = found
        .as_ref()
        .map_or_else(|| "config".to_owned(), |d| d.imap.source.to_string());
    // Whether the provider files submissions itself: known from the preset serving the IMAP
    // host, whichever way the servers were found.
    let files_sent =
        provider::by_imap_server(&imap.target.host, imap.target.port).is_some_and(|p| p.files_sent);
    let folders = match a.folders {
        None => super::folders::Folders::default_for(files_sent),
        Some(spanned) => {
            let at = spanned.span().start;
            spanned
                .into_inner()
                .validate(files_sent)
                .map_err(|e| loc.field(at, name, "folders", e))?
        }
    };
    Ok(Some(Account {
        email,
        aliases: a.aliases,
        local_password_hash: a.local_password_hash,
        imap,
        smtp,
        source,
        smtp_password_inherited,
        folders,
    }))
}

/// `[account.smtp]`, and whether it inherits `imap`'s credential. The SMTP credential
/// defaults to the IMAP one: most providers use one password. Without an `[account.smtp]`
/// table, a preset or discovery still gives the server.
fn smtp(
    table: Option<Located<EndpointFile>>,
    email: &str,
    at: usize,
    name: &str,
    imap: &Endpoint,
    found: Option<&Discovery>,
    cx: &Context,
) -> Result<(Option<Endpoint>, bool), ConfigError> {
    let smtp_found = found.and_then(|d| d.smtp.as_ref());
    let smtp_table = match table {
        Some(spanned) => Some((spanned.span().start, spanned.into_inner())),
        None => smtp_found.map(|_| (at, EndpointFile::default())),
    };
    let inherited = smtp_table.as_ref().is_some_and(|(_, f)| {
        f.password.is_none() && f.password_env.is_none() && f.password_file.is_none()
    });
    let smtp = match smtp_table {
        None => None,
        Some((smtp_at, file)) => {
            let named = file.username.is_some();
            let mut ep = endpoint(file, email, cx.base, Some(&imap.credential), smtp_found)
                .map_err(|e| cx.loc.field(smtp_at, name, "smtp", e))?;
            // A shared mailbox (an OAuth sign-in as its delegate) sends as the delegate: an
            // unlicensed one cannot use SMTP AUTH itself (Microsoft 365). The client's MAIL
            // FROM keeps the shared address, which the delegate's "send as" right allows.
            if let (false, Some(oauth)) = (named, imap.credential.oauth()) {
                if !oauth.identity.eq_ignore_ascii_case(email) {
                    ep.username = oauth.identity.clone();
                }
            }
            Some(ep)
        }
    };
    Ok((smtp, inherited))
}

/// Where the account's servers come from: given in the file (`Ok(Some(None))`), else the
/// named preset, else the domain's preset, else network discovery (done before this pass by
/// `crate::discover::resolve`; `Ok(None)` when it has not run). Whatever the file sets wins,
/// field by field.
fn servers(
    a: &AccountFile,
    email: &str,
    name: &str,
    at: usize,
    cx: &Context,
) -> Result<Option<Option<Discovery>>, ConfigError> {
    let has_server = a
        .imap
        .as_ref()
        .is_some_and(|t| t.get_ref().server.is_some() || t.get_ref().host.is_some());
    Ok(Some(match &a.provider {
        Some(p) => {
            let preset = provider::by_id(p.get_ref()).ok_or_else(|| {
                let at = key_offset(cx.loc.text, at, "provider").unwrap_or(at);
                cx.loc.at(
                    at,
                    format!("{name}.provider"),
                    format!(
                        "unknown provider `{}`; known: {}",
                        p.get_ref(),
                        provider::known_ids()
                    ),
                )
            })?;
            Some(provider::from_preset(
                email,
                preset,
                Source::Provider(preset.id),
            ))
        }
        None if has_server => None,
        None => match provider::domain_of(email).and_then(|d| provider::by_domain(&d)) {
            Some(preset) => Some(provider::from_preset(
                email,
                preset,
                Source::Domain(preset.id),
            )),
            None => match cx.discovered.get(&email.to_ascii_lowercase()) {
                Some(d) => Some(d.clone()),
                None => return Ok(None),
            },
        },
    }))
}
