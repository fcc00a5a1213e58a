//! `/style.css`: the one style sheet (small, plain, readable; no web fonts, no images).

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

const CSS: &str = include_str!("style.css");

/// `GET /style.css`.
pub async fn css() -> Response {
    let mut resp = CSS.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    resp
}
