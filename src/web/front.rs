//! In front of every request: the language, the session, sign-in required for all but
//! `/signin` and `/style.css` (a GET goes to `/signin`, anything else is refused), the CSRF
//! token checked on every POST before its handler runs (so a handler added later cannot
//! forget it), and the security headers on every response, 404s and the style sheet included.

use super::guard::{self, Visitor};
use super::{lang, page, App};
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The middleware (see the module's documentation).
pub async fn layer(State(app): State<App>, req: Request, next: Next) -> Response {
    let text = lang::pick(
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let session = guard::cookie(req.headers()).and_then(|c| app.sessions().get(c));
    let visitor = Visitor { text, session };
    let mut resp = if !guard::public(req.uri().path()) && !visitor.signed_in() {
        match *req.method() {
            Method::GET | Method::HEAD => page::see_other("/signin"),
            _ => page::refusal::forbidden(&visitor),
        }
    } else if req.method() == Method::POST {
        checked_post(req, visitor, next).await
    } else {
        let mut req = req;
        req.extensions_mut().insert(visitor);
        next.run(req).await
    };
    guard::headers(resp.headers_mut(), &app.idp_origins());
    resp
}

/// A POST whose form carries the session's CSRF token goes on (the body re-attached); any
/// other is answered 403 and its handler never runs.
async fn checked_post(req: Request, visitor: Visitor, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, guard::MAX_FORM).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let expected = visitor.session.as_ref().map(|s| s.csrf.as_bytes());
    let given = guard::form_field(&bytes, "csrf");
    let ok = matches!((expected, given), (Some(e), Some(g)) if guard::same(e, g));
    if !ok {
        tracing::warn!(path = %parts.uri.path(), "connect page: POST without a valid CSRF token refused");
        return page::refusal::forbidden(&visitor);
    }
    parts.extensions.insert(visitor);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
