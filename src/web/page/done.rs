//! The end of connecting (`#done`): exactly what to type into the mail client — the server
//! (the IMAP listener's address), the ports of the plain IMAP and SMTP listeners, the user
//! name, the local password (shown this once, only here), the connection security the
//! listeners offer, and the folder names the client will see — with the test's steps.

use super::{html, layout, steps};
use crate::check::folders::FolderReport;
use crate::secret::Secret;
use crate::setup::{CheckOutcome, Plan};
use crate::web::guard::Visitor;
use crate::web::lang::Text;
use crate::web::App;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html as markup, Markup};

/// The `#done` page for `plan`'s account, written after `tested` passed; `local_password`:
/// typed or generated, shown here once; `applied`: the server serves the account already.
pub fn page(
    v: &Visitor,
    app: &App,
    plan: &Plan,
    local_password: &Secret,
    tested: &CheckOutcome,
    applied: bool,
) -> Response {
    let t = v.text;
    let config = app.config();
    let server = &config.server;
    // The plain listeners, where they are bound (the port the system chose for `…:0`).
    let imap = app.listening("imap").unwrap_or(server.imap_listen);
    let smtp = app.listening("smtp").unwrap_or(server.smtp_listen);
    // With a certificate the plain listeners offer STARTTLS; without one they are plain.
    let security = match server.tls {
        Some(_) => t.security_starttls,
        None => t.security_none,
    };
    let body = markup! {
        (steps::list(t, &tested.steps))
        @if !applied { p.note id="not-applied" { (t.not_applied) } }
        section id="done" {
            p { (t.done_intro) }
            dl {
                dt { (t.client_server_label) }
                dd id="client-server" { (imap.ip()) }
                dt { (t.imap_port_label) }
                dd id="imap-port" { (imap.port()) }
                dt { (t.smtp_port_label) }
                @if plan.found.smtp.is_some() {
                    dd id="smtp-port" { (smtp.port()) }
                } @else {
                    dd { (t.no_smtp) }
                }
                dt { (t.client_security_label) }
                dd id="security" { (security) }
                dt { (t.client_user_label) }
                dd id="client-user" { (plan.email) }
                dt { (t.client_password_label) }
                dd { code id="local-password" { (local_password.expose()) } br; span.hint { (t.local_password_once) } }
            }
            (folders(t, tested.folders.as_ref()))
        }
    };
    html(StatusCode::OK, layout::page(v, t.done_title, body))
}

/// `#folders`: the inbox and each role's folder as the client sees it.
pub fn folders(t: &Text, report: Option<&FolderReport>) -> Markup {
    markup! {
        h2 { (t.folders_label) }
        @match report {
            Some(r) => ul id="folders" {
                li { "INBOX" }
                @for row in &r.roles {
                    @if let Some(name) = &row.client { li { (name) " (" (row.role) ")" } }
                }
            },
            None => p id="folders" { (t.folders_unknown) },
        }
    }
}
