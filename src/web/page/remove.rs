//! `/accounts/remove`: `GET` asks first (`#remove`: what goes — the account, its stored
//! provider password and its tokens — and that the mailbox at the provider stays as it is);
//! `POST` removes it with `setup`'s code ([`setup::remove`], the shared store opened as
//! `mailgate account remove` opens it), waits for the server to drop it, and says what was
//! removed (`#removed`). An address without an account is a 404.

use super::fields::Email;
use super::{html, layout, refusal};
use crate::config::Config;
use crate::setup::{self, Place, Removed, SetupError, Tokens};
use crate::web::guard::Visitor;
use crate::web::lang::Text;
use crate::web::App;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use maud::{html as markup, Markup};

/// Whether `config` has the account `email`, serving or waiting for its servers.
fn known(config: &Config, email: &str) -> bool {
    config.account(email).is_some()
        || config
            .undiscovered
            .iter()
            .any(|e| e.eq_ignore_ascii_case(email))
}

/// `GET /accounts/remove?email=`: the confirmation.
pub async fn show(
    State(app): State<App>,
    Extension(v): Extension<Visitor>,
    Query(q): Query<Email>,
) -> Response {
    let email = q.email();
    if !known(&app.config(), email) {
        return refusal::unknown_account(&v);
    }
    let t = v.text;
    let body = markup! {
        p { (t.remove_question) " " strong id="remove-email" { (email) } }
        p { (t.remove_what) }
        p.note { (t.remove_untouched) }
        form id="remove" method="post" action="/accounts/remove" {
            (layout::csrf(&v))
            input type="hidden" name="email" value=(email);
            button type="submit" id="remove-button" { (t.remove_button) }
            " "
            a id="cancel" href="/accounts" { (t.cancel_link) }
        }
    };
    html(StatusCode::OK, layout::page(&v, t.remove_title, body))
}

/// `POST /accounts/remove`: removes the account, then says what went.
pub async fn submit(
    State(app): State<App>,
    Extension(v): Extension<Visitor>,
    Form(f): Form<Email>,
) -> Response {
    let email = f.email().to_owned();
    let config = app.config();
    if !known(&config, &email) {
        return refusal::unknown_account(&v);
    }
    let shared = match super::save::shared(&config).await {
        Ok(s) => s,
        Err(e) => return failed(&v, &e),
    };
    let removed = match setup::remove(&config.path, &email, shared.as_ref()).await {
        Ok(r) => r,
        Err(SetupError::NoAccount { .. }) => return refusal::unknown_account(&v),
        Err(e) => return failed(&v, &e),
    };
    tracing::info!(%email, "connect page: account removed");
    let applied = app.apply(|c| !known(c, &email)).await;
    let t = v.text;
    let body = markup! {
        section id="removed" {
            p { strong id="removed-email" { (email) } }
            (what(t, &removed))
            p { (t.remove_untouched) }
            @if !applied { p.note id="not-applied" { (t.removed_not_applied) } }
        }
        p { a id="back" href="/accounts" { (t.back_to_accounts) } }
    };
    html(StatusCode::OK, layout::page(&v, t.removed_title, body))
}

/// What was removed, in sentences.
fn what(t: &Text, r: &Removed) -> Markup {
    let (tokens, names): (Option<&str>, &[String]) = match &r.tokens {
        Tokens::None => (None, &[]),
        Tokens::Removed { .. } => (Some(t.removed_tokens), &[]),
        Tokens::NoneStored { .. } => (Some(t.removed_no_tokens), &[]),
        Tokens::InUse { users, .. } => (Some(t.kept_tokens_in_use), users),
        Tokens::Unknown { accounts, .. } => (Some(t.kept_tokens_unknown), accounts),
        Tokens::Unreadable(_) => (Some(t.kept_tokens_unreadable), &[]),
    };
    markup! {
        ul id="removed-what" {
            li.from {
                @match r.from {
                    Place::File(_) => (t.removed_from_file),
                    Place::Store => (t.removed_from_store),
                }
            }
            @if r.credential_file.is_some() { li.password { (t.removed_password) } }
            @if let Some(sentence) = tokens {
                li.tokens {
                    (sentence)
                    @if !names.is_empty() { ul { @for n in names { li { (n) } } } }
                }
            }
        }
    }
}

/// 500: removing failed, with the technical detail folded away (never file contents: a
/// config file's TOML error could quote a line with an inline password).
fn failed(v: &Visitor, e: &SetupError) -> Response {
    tracing::warn!(error = %e, "connect page: removing an account failed");
    let t = v.text;
    let detail = super::save::detail(e);
    let body = markup! {
        p.error id="remove-failed" { (t.remove_failed) }
        @if !detail.is_empty() { details { summary { (t.error_details) } pre.detail { (detail) } } }
        p { a id="back" href="/accounts" { (t.back_to_accounts) } }
    };
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        layout::page(v, t.remove_title, body),
    )
}
