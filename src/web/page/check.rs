//! `POST /accounts/check`: *Check now* — the live test's steps on the account as it serves
//! now ([`setup::check_account`]), as the `#steps` list, and the folder names the mail
//! program sees when the provider listed them. An address without an account is a 404.

use super::fields::Email;
use super::{done, html, layout, refusal, steps};
use crate::setup;
use crate::web::guard::Visitor;
use crate::web::App;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use maud::html as markup;

/// `POST /accounts/check`.
pub async fn submit(
    State(app): State<App>,
    Extension(v): Extension<Visitor>,
    Form(f): Form<Email>,
) -> Response {
    let config = app.config();
    let Some(outcome) = setup::check_account(&config, f.email()).await else {
        return refusal::unknown_account(&v);
    };
    let t = v.text;
    let body = markup! {
        p { (t.check_intro) " " strong id="check-email" { (f.email()) } }
        (steps::list(t, &outcome.steps))
        @if outcome.passed() {
            p.ok id="check-result" { (t.check_passed) }
        } @else {
            p.error id="check-result" { (t.check_failed) }
        }
        @if let Some(report) = &outcome.folders { (done::folders(t, Some(report))) }
        p { a id="back" href="/accounts" { (t.back_to_accounts) } }
    };
    html(StatusCode::OK, layout::page(&v, t.check_title, body))
}
