//! `/connect/advanced`: the servers typed in (`#advanced`), as a mail client's manual set-up
//! asks for them: incoming and outgoing `host:port`, SSL/TLS, STARTTLS or none, the user name,
//! the password. Prefilled from a preset of the address's domain when there is one (no
//! network); shown with a sentence why when recognition failed.

use super::fields::{local_password, security_name, Email, MAX_EMAIL};
use super::{html, layout};
use crate::discover::{self, Discovery, Found};
use crate::net::TlsMode;
use crate::web::guard::Visitor;
use crate::web::lang::Text;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html as markup, Markup};

/// `GET /connect/advanced?email=`.
pub async fn show(Extension(v): Extension<Visitor>, Query(q): Query<Email>) -> Response {
    let t = v.text;
    let email: String = q.email().chars().take(MAX_EMAIL).collect();
    let preset = discover::domain_of(&email)
        .and_then(|d| crate::provider::by_domain(&d))
        .map(|p| discover::from_preset(&email, p, discover::Source::Domain(p.id)));
    let body = form(&v, &email, preset.as_ref(), None);
    html(StatusCode::OK, layout::page(&v, t.advanced_title, body))
}

/// What the servers form shows: the address and the servers as typed or found.
#[derive(Default)]
pub struct Prefill {
    /// The address.
    pub email: String,
    /// IMAP `host:port`.
    pub imap_server: String,
    /// Its security (`None`: SSL/TLS).
    pub imap_security: Option<TlsMode>,
    /// SMTP `host:port` (empty: receive only).
    pub smtp_server: String,
    /// Its security.
    pub smtp_security: Option<TlsMode>,
    /// The user name at the provider (empty: the address).
    pub username: String,
}

impl Prefill {
    /// The servers of `d` (the user name only when it is not the address).
    pub fn of(d: &Discovery) -> Prefill {
        let username = Some(d.imap.username.as_str())
            .filter(|u| *u != d.email)
            .unwrap_or_default();
        Prefill {
            email: d.email.clone(),
            imap_server: d.imap.address(),
            imap_security: Some(d.imap.tls),
            smtp_server: d.smtp.as_ref().map(Found::address).unwrap_or_default(),
            smtp_security: d.smtp.as_ref().map(|f| f.tls),
            username: username.to_owned(),
        }
    }
}

/// Which servers form: a new account's (`#advanced`), or an account's edit (`#edit`: the
/// address read-only, empty passwords keep the stored ones; an OAuth account has none).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `form#advanced`, to `/connect/password`.
    New,
    /// `form#edit`, to `/accounts/edit`.
    Edit {
        /// The account signs in with OAuth: no password fields.
        oauth: bool,
    },
}

/// The `#advanced` form; `why`: the sentence and what discovery tried when recognition
/// failed (technical, so folded away; each line once).
pub fn form(
    v: &Visitor,
    email: &str,
    prefill: Option<&Discovery>,
    why: Option<(&str, Vec<String>)>,
) -> Markup {
    let mut p = prefill.map(Prefill::of).unwrap_or_default();
    p.email = email.to_owned();
    let t = v.text;
    markup! {
        @if let Some((sentence, tried)) = why {
            p.note id="not-recognised" { (sentence) }
            @if !tried.is_empty() {
                details id="tried" {
                    summary { (t.discovery_details) }
                    ul.detail { @for line in distinct(&tried) { li { (line) } } }
                }
            }
        } @else {
            p { (t.advanced_intro) }
        }
        (servers_form(v, Kind::New, &p))
    }
}

/// The servers form of `kind`, filled with `p` (passwords always empty).
pub fn servers_form(v: &Visitor, kind: Kind, p: &Prefill) -> Markup {
    let t = v.text;
    let (id, action, button) = match kind {
        Kind::New => ("advanced", "/connect/password", t.connect_button),
        Kind::Edit { .. } => ("edit", "/accounts/edit", t.save_button),
    };
    let edit = matches!(kind, Kind::Edit { .. });
    markup! {
        form id=(id) method="post" action=(action) {
            (layout::csrf(v))
            label for="email" { (t.email_label) }
            @if edit {
                input type="email" id="email" name="email" value=(p.email) readonly;
            } @else {
                input type="email" id="email" name="email" value=(p.email) maxlength="254" required;
            }
            label for="imap_server" { (t.imap_server_label) }
            input type="text" id="imap_server" name="imap_server" value=(p.imap_server) placeholder="imap.example.com:993" required;
            (security(t, "imap_security", p.imap_security))
            label for="smtp_server" { (t.smtp_server_label) }
            input type="text" id="smtp_server" name="smtp_server" value=(p.smtp_server) placeholder="smtp.example.com:465";
            p.hint { (t.smtp_empty_hint) }
            (security(t, "smtp_security", p.smtp_security))
            @match kind {
                Kind::Edit { oauth: true } => {},
                Kind::Edit { oauth: false } => {
                    (username(t, &p.username))
                    label for="password" { (t.password_label) }
                    input type="password" id="password" name="password" autocomplete="off";
                    p.hint { (t.keep_password_hint) }
                    label for="local_password" { (t.local_password_label) }
                    input type="password" id="local_password" name="local_password" autocomplete="new-password";
                    p.hint { (t.keep_local_password_hint) }
                },
                Kind::New => {
                    (username(t, &p.username))
                    label for="password" { (t.password_label) }
                    input type="password" id="password" name="password" autocomplete="off" required;
                    (local_password(t))
                },
            }
            button type="submit" id="connect-button" { (button) }
        }
    }
}

/// `lines` in order, each once.
fn distinct(lines: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for l in lines {
        if !out.contains(&l.as_str()) {
            out.push(l);
        }
    }
    out
}

fn username(t: &Text, value: &str) -> Markup {
    markup! {
        label for="username" { (t.username_label) }
        input type="text" id="username" name="username" value=(value) autocomplete="off";
        p.hint { (t.username_hint) }
    }
}

/// A security choice (`tls`, `starttls`, `none`), SSL/TLS unless the prefill says otherwise.
fn security(t: &Text, name: &str, chosen: Option<TlsMode>) -> Markup {
    let chosen = chosen.unwrap_or(TlsMode::Implicit);
    let options = [
        ("tls", TlsMode::Implicit),
        ("starttls", TlsMode::Starttls),
        ("none", TlsMode::None),
    ];
    markup! {
        label for=(name) { (t.security_label) }
        select id=(name) name=(name) {
            @for (value, mode) in options {
                option value=(value) selected[mode == chosen] { (security_name(t, mode)) }
            }
        }
    }
}
