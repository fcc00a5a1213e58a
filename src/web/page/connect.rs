//! `/connect`: the email address (`#connect`), then what discovery found (`#found`): the
//! provider, how it was found, and how to sign in — the `#oauth` form when an OAuth app
//! serves the address, else the `#password-form` with the provider's app-password help link —
//! with the `#advanced-link` always; recognition failing gives the advanced form. Discovery is
//! `mailgate setup`'s: [`crate::discover::discover`] with the server's resolver.

use super::fields::{local_password, query_value, security_name, with_part, Email, MAX_EMAIL};
use super::{advanced, html, layout};
use crate::config::WebOAuthApp;
use crate::discover::{self, DiscoverError, Discovery, Source};
use crate::web::guard::Visitor;
use crate::web::lang::{self, Text};
use crate::web::App;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use maud::{html as markup, Markup};
use std::time::Duration;

/// Per discovery step, as `mailgate setup` uses.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole discovery, at most (MX, several autoconfig URLs, probes).
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// `GET /connect`.
pub async fn show(Extension(v): Extension<Visitor>) -> Response {
    let t = v.text;
    html(
        StatusCode::OK,
        layout::page(&v, t.connect_title, email_form(&v, "", None)),
    )
}

/// `POST /connect`: discovery, then the `#found` page or the advanced form.
pub async fn submit(
    State(app): State<App>,
    Extension(v): Extension<Visitor>,
    Form(f): Form<Email>,
) -> Response {
    let t = v.text;
    let email = f.email();
    if email.len() > MAX_EMAIL || discover::domain_of(email).is_none() {
        let body = email_form(&v, email, Some(t.not_an_address));
        return html(
            StatusCode::UNPROCESSABLE_ENTITY,
            layout::page(&v, t.connect_title, body),
        );
    }
    let config = app.config();
    let opts = discover::Options {
        resolver: crate::net::dns::Resolver::new(config.server.resolver),
        timeout: STEP_TIMEOUT,
        ca_file: None,
        network: true,
    };
    let found =
        match tokio::time::timeout(DISCOVERY_TIMEOUT, discover::discover(email, &opts)).await {
            Ok(found) => found,
            Err(_) => Err(DiscoverError::NotFound {
                domain: discover::domain_of(email).unwrap_or_default(),
                tried: Vec::new(),
            }),
        };
    match found {
        Ok(d) => {
            let apps = config.web.as_ref().map_or(&[][..], |w| &w.oauth[..]);
            let body = found_page(&v, &d, oauth_app(apps, &d));
            html(StatusCode::OK, layout::page(&v, t.found_title, body))
        }
        Err(e) => {
            let (why, tried) = match &e {
                DiscoverError::NotAnAddress(_) => (t.not_an_address, Vec::new()),
                DiscoverError::NotFound { tried, .. } => (t.not_recognised, tried.clone()),
                DiscoverError::Autoconfig { .. } => (t.not_recognised, vec![e.to_string()]),
            };
            let body = advanced::form(&v, email, None, Some((why, tried)));
            html(StatusCode::OK, layout::page(&v, t.advanced_title, body))
        }
    }
}

/// The `[[web.oauth]]` app that serves this address: one for the preset's identity provider,
/// or one that names the address's domain.
pub fn oauth_app<'a>(apps: &'a [WebOAuthApp], d: &Discovery) -> Option<&'a WebOAuthApp> {
    let domain = discover::domain_of(&d.email)?;
    let wanted = d.preset.and_then(|p| p.oauth_provider());
    apps.iter()
        .find(|a| a.domains.contains(&domain))
        .or_else(|| {
            wanted.and_then(|p| {
                apps.iter()
                    .find(|a| a.provider == Some(p) && a.domains.is_empty())
            })
        })
}

/// The address form (`#connect`), with an error line when the last one was not usable.
fn email_form(v: &Visitor, email: &str, error: Option<&str>) -> Markup {
    let t = v.text;
    markup! {
        p { (t.connect_intro) }
        @if let Some(e) = error { p.error { (e) } }
        form id="connect" method="post" action="/connect" {
            (layout::csrf(v))
            label for="email" { (t.email_label) }
            input type="email" id="email" name="email" value=(email) autocomplete="email" maxlength="254" required autofocus;
            button type="submit" id="next" { (t.next_button) }
        }
        p { a id="advanced-link" href="/connect/advanced" { (t.advanced_link) } }
    }
}

/// How the servers were found, in words, with the MX host or autoconfig URL when there is one.
fn how(t: &Text, source: &Source) -> Markup {
    match source {
        Source::Provider(_) | Source::Domain(_) => markup! { (t.how_preset) },
        Source::Mx { host, .. } => markup! { (t.how_mx) ": " code { (host) } },
        Source::Autoconfig(url) => markup! { (t.how_autoconfig) ": " code { (url) } },
        Source::Guess => markup! { (t.how_guess) },
        Source::Given => markup! { (t.how_given) },
    }
}

/// The `#found` page.
fn found_page(v: &Visitor, d: &Discovery, app: Option<&WebOAuthApp>) -> Markup {
    let t = v.text;
    let preset = d.preset;
    let identity = preset.and_then(|p| p.oauth_provider());
    let password_ok = preset.is_none_or(|p| p.accepts_password());
    let app_help = preset.and_then(|p| p.help.app_password);
    let advanced = format!("/connect/advanced?email={}", query_value(&d.email));
    markup! {
        section id="found" {
            dl {
                dt { (t.found_provider) }
                dd id="provider" { (preset.map_or(t.unknown_provider, |p| p.name)) }
                dt { (t.found_how) }
                dd id="how" { (how(t, &d.imap.source)) }
                dt { (t.found_imap) }
                dd { code { (d.imap.address()) } " · " (security_name(t, d.imap.tls)) }
                @if let Some(s) = &d.smtp {
                    dt { (t.found_smtp) }
                    dd { code { (s.address()) } " · " (security_name(t, s.tls)) }
                }
            }
            @if d.plaintext_warning().is_some() { p.note { (t.found_plaintext) } }
        }
        @if let Some(app) = app {
            p { (t.oauth_intro) }
            form id="oauth" method="post" action="/connect/oauth" {
                (layout::csrf(v))
                (found_fields(d))
                button type="submit" { (t.sign_in_with) " " (button_name(app, d)) }
            }
        } @else if let Some(p) = identity {
            p.note id="oauth-not-set-up" { (with_part(t.oauth_not_set_up, "{provider}", markup! { (lang::brand(p)) })) }
        }
        @if password_ok && (app.is_none() || app_help.is_some()) {
            (password_form(v, d, app_help))
        }
        p { a id="advanced-link" href=(advanced) { (t.advanced_link) } }
    }
}

/// Whose sign-in the button names: the identity provider's brand, else the preset's name or
/// the address's domain.
fn button_name(app: &WebOAuthApp, d: &Discovery) -> String {
    match (app.provider, d.preset) {
        (Some(p), _) => lang::brand(p).to_owned(),
        (None, Some(p)) => p.name.to_owned(),
        (None, None) => discover::domain_of(&d.email).unwrap_or_default(),
    }
}

/// The `#password-form`: the (app) password, and the local password (empty: generated).
fn password_form(v: &Visitor, d: &Discovery, app_help: Option<&str>) -> Markup {
    let t = v.text;
    markup! {
        form id="password-form" method="post" action="/connect/password" {
            (layout::csrf(v))
            (found_fields(d))
            @if let Some(url) = app_help {
                p { (t.app_password_intro) " " a id="app-password-help" href=(url) rel="noopener noreferrer" target="_blank" { (t.app_password_help) } }
            } @else {
                p { (t.password_intro) }
            }
            label for="password" { (t.password_label) }
            input type="password" id="password" name="password" autocomplete="off" required;
            (local_password(t))
            button type="submit" id="connect-button" { (t.connect_button) }
        }
    }
}

/// What discovery found, as hidden fields for the next step (nothing secret): the preset's id
/// when its built-in servers are used, else the servers themselves.
fn found_fields(d: &Discovery) -> Markup {
    let preset = match (&d.imap.source, d.preset) {
        (Source::Provider(_) | Source::Domain(_) | Source::Mx { .. }, Some(p)) => Some(p.id),
        _ => None,
    };
    markup! {
        input type="hidden" name="email" value=(d.email);
        @if let Some(id) = preset {
            input type="hidden" name="preset" value=(id);
        } @else {
            input type="hidden" name="imap_server" value=(d.imap.address());
            input type="hidden" name="imap_security" value=(d.imap.tls.as_str());
            @if let Some(s) = &d.smtp {
                input type="hidden" name="smtp_server" value=(s.address());
                input type="hidden" name="smtp_security" value=(s.tls.as_str());
            }
            input type="hidden" name="username" value=(d.imap.username);
        }
    }
}
