//! The pages that say no: 403 (no or a wrong CSRF token, or not signed in), 404, and the
//! routes a later step fills.

use super::{html, layout::page};
use crate::web::guard::Visitor;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;

/// 403: the form's CSRF token is missing or wrong.
pub fn forbidden(v: &Visitor) -> Response {
    let t = v.text;
    html(
        StatusCode::FORBIDDEN,
        page(
            v,
            t.forbidden_title,
            maud::html! { p { (t.forbidden_text) } },
        ),
    )
}

/// 404 for every path without a page.
pub async fn not_found(Extension(v): Extension<Visitor>) -> Response {
    let t = v.text;
    html(
        StatusCode::NOT_FOUND,
        page(
            &v,
            t.not_found_title,
            maud::html! { p { (t.not_found_text) } },
        ),
    )
}

/// wave 2: a placeholder for the routes the next step fills (never answers success).
pub async fn not_built(Extension(v): Extension<Visitor>) -> Response {
    let t = v.text;
    html(
        StatusCode::NOT_IMPLEMENTED,
        page(
            &v,
            t.not_built_title,
            maud::html! { p { (t.not_built_text) } },
        ),
    )
}
