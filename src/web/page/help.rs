//! `/help`: troubleshooting — IMAP only, blocked sign-ins and "less secure apps", app
//! passwords with each preset's own help link ([`crate::provider::PRESETS`]), and what each
//! ✗ line of the live test means, by the steps of `mailgate check` ([`crate::check::Kind`],
//! named as the check names them).

use super::{html, layout};
use crate::check::{Kind, Protocol};
use crate::provider::PRESETS;
use crate::web::guard::Visitor;
use crate::web::lang::Text;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html as markup, Markup};

/// Every step of the live test, in the order they run (with STARTTLS the TLS step comes
/// after the greeting).
const STEPS: [Kind; 7] = [
    Kind::Dns,
    Kind::Tcp,
    Kind::Tls,
    Kind::Greeting,
    Kind::Capabilities,
    Kind::Login,
    Kind::Logout,
];

/// What a failed step means.
fn meaning(t: &Text, kind: Kind) -> &'static str {
    match kind {
        Kind::Dns => t.step_dns,
        Kind::Tcp => t.step_tcp,
        Kind::Tls => t.step_tls,
        Kind::Greeting => t.step_greeting,
        Kind::Capabilities => t.step_capabilities,
        Kind::Login => t.step_login,
        Kind::Logout => t.step_logout,
    }
}

/// `GET /help`.
pub async fn show(Extension(v): Extension<Visitor>) -> Response {
    let t = v.text;
    html(StatusCode::OK, layout::page(&v, t.help_title, body(t)))
}

fn body(t: &Text) -> Markup {
    markup! {
        section id="imap-only" {
            h2 { (t.help_imap_title) }
            p { (t.help_imap) }
        }
        section id="blocked" {
            h2 { (t.help_blocked_title) }
            p { (t.help_blocked) }
            p { (t.help_less_secure) }
        }
        section id="app-passwords" {
            h2 { (t.help_app_title) }
            p { (t.help_app) }
            ul {
                @for p in PRESETS {
                    @if let Some(url) = p.help.app_password {
                        li { a href=(url) rel="noopener noreferrer" { (p.name) } }
                    } @else if !p.accepts_password() {
                        li { (p.name) ": " (t.help_app_none) }
                    }
                }
            }
        }
        section id="steps" {
            h2 { (t.help_steps_title) }
            p { (t.help_steps_intro) }
            dl {
                @for kind in STEPS {
                    dt { code { "imap." (kind.label(Protocol::Imap)) } " / " code { "smtp." (kind.label(Protocol::Smtp)) } }
                    dd { (meaning(t, kind)) }
                }
            }
        }
    }
}
