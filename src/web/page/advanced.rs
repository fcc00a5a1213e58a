//! `/connect/advanced`: the servers typed in (`#advanced`), as a mail client's manual set-up
//! asks for them: incoming and outgoing `host:port`, SSL/TLS, STARTTLS or none, the user name,
//! the password. Prefilled from a preset of the address's domain when there is one (no
//! network); shown with a sentence why when recognition failed.

use super::fields::{local_password, security_name, MAX_EMAIL};
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
use serde::Deserialize;

/// `?email=`.
#[derive(Deserialize)]
pub struct EmailQuery {
    #[serde(default)]
    email: String,
}

/// `GET /connect/advanced?email=`.
pub async fn show(Extension(v): Extension<Visitor>, Query(q): Query<EmailQuery>) -> Response {
    let t = v.text;
    let email: String = q.email.trim().chars().take(MAX_EMAIL).collect();
    let preset = discover::domain_of(&email)
        .and_then(|d| crate::provider::by_domain(&d))
        .map(|p| discover::from_preset(&email, p, discover::Source::Domain(p.id)));
    let body = form(&v, &email, preset.as_ref(), None);
    html(StatusCode::OK, layout::page(&v, t.advanced_title, body))
}

/// The `#advanced` form; `why`: the sentence and what discovery tried when recognition
/// failed (technical, so folded away; each line once).
pub fn form(
    v: &Visitor,
    email: &str,
    prefill: Option<&Discovery>,
    why: Option<(&str, Vec<String>)>,
) -> Markup {
    let t = v.text;
    let imap = prefill.map(|d| &d.imap);
    let smtp = prefill.and_then(|d| d.smtp.as_ref());
    let username = imap.map(|f| f.username.as_str()).filter(|u| *u != email);
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
        form id="advanced" method="post" action="/connect/password" {
            (layout::csrf(v))
            label for="email" { (t.email_label) }
            input type="email" id="email" name="email" value=(email) maxlength="254" required;
            label for="imap_server" { (t.imap_server_label) }
            input type="text" id="imap_server" name="imap_server" value=(address(imap)) placeholder="imap.example.com:993" required;
            (security(t, "imap_security", imap.map(|f| f.tls)))
            label for="smtp_server" { (t.smtp_server_label) }
            input type="text" id="smtp_server" name="smtp_server" value=(address(smtp)) placeholder="smtp.example.com:465";
            p.hint { (t.smtp_empty_hint) }
            (security(t, "smtp_security", smtp.map(|f| f.tls)))
            label for="username" { (t.username_label) }
            input type="text" id="username" name="username" value=(username.unwrap_or_default()) autocomplete="off";
            p.hint { (t.username_hint) }
            label for="password" { (t.password_label) }
            input type="password" id="password" name="password" autocomplete="off" required;
            (local_password(t))
            button type="submit" id="connect-button" { (t.connect_button) }
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

fn address(f: Option<&Found>) -> String {
    f.map(Found::address).unwrap_or_default()
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
