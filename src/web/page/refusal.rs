//! The pages that say no: 403 (no or a wrong CSRF token, or not signed in) and 404.

use super::{html, layout::page};
use crate::web::guard::Visitor;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;

/// A page of one sentence.
fn sentence(v: &Visitor, status: StatusCode, title: &str, text: &str) -> Response {
    html(status, page(v, title, maud::html! { p { (text) } }))
}

/// 403: the form's CSRF token is missing or wrong.
pub fn forbidden(v: &Visitor) -> Response {
    sentence(
        v,
        StatusCode::FORBIDDEN,
        v.text.forbidden_title,
        v.text.forbidden_text,
    )
}

/// 404: no account with that address (the accounts' pages and actions).
pub fn unknown_account(v: &Visitor) -> Response {
    let body = maud::html! { p id="unknown-account" { (v.text.unknown_account) } };
    html(StatusCode::NOT_FOUND, page(v, v.text.not_found_title, body))
}

/// 404 for every path without a page.
pub async fn not_found(Extension(v): Extension<Visitor>) -> Response {
    sentence(
        &v,
        StatusCode::NOT_FOUND,
        v.text.not_found_title,
        v.text.not_found_text,
    )
}
