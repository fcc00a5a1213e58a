//! The pages: one file each, all in the shell of `layout.rs`, every word from `super::lang`.

pub mod account_form;
pub mod accounts;
pub mod advanced;
pub mod check;
pub mod connect;
pub mod done;
pub mod edit;
pub mod fields;
pub mod help;
pub mod layout;
pub mod oauth;
pub mod password;
pub mod refusal;
pub mod remove;
pub mod save;
pub mod signin;
pub mod steps;
pub mod style;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::Markup;

/// A page with its status.
pub fn html(status: StatusCode, page: Markup) -> Response {
    let mut resp = (status, page.into_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

/// `303 See Other` to a path of this site.
pub fn see_other(path: &'static str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(path));
    resp
}

/// `GET /`: signed in (the guard sent everyone else to `/signin`), so the accounts.
pub async fn root() -> Response {
    see_other("/accounts")
}
