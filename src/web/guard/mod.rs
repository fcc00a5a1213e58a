//! What stands in front of every page: the security headers on every response (404s and the
//! style sheet included), the session cookie, sign-in required for all but `/signin` and
//! `/style.css`, and the CSRF token checked on every POST before its handler runs (so a
//! handler added later cannot forget it). Handlers get a [`Visitor`]: language, session,
//! CSRF token.

mod sessions;
pub mod signin;

pub use sessions::{Session, Sessions};
pub use signin::OneTime;

use super::lang::{self, Text};
use super::App;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The session cookie's name.
pub const COOKIE: &str = "mailgate_session";
/// The largest form body read (the forms hold a few short fields).
pub const MAX_FORM: usize = 16 * 1024;

/// Who is asking, as the pages need it.
#[derive(Clone)]
pub struct Visitor {
    /// The language chosen from `Accept-Language`.
    pub text: &'static Text,
    /// The session, if the cookie names a live one.
    pub session: Option<Session>,
}

impl Visitor {
    /// The CSRF token for the forms ("" without a session: such a form is refused).
    pub fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.csrf.as_str())
    }

    /// Whether the visitor signed in.
    pub fn signed_in(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.signed_in)
    }
}

/// Paths open without signing in.
fn public(path: &str) -> bool {
    matches!(path, "/signin" | "/style.css")
}

/// The middleware (see the module's documentation).
pub async fn layer(State(app): State<App>, req: Request, next: Next) -> Response {
    let text = lang::pick(
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let session = cookie(req.headers()).and_then(|c| app.sessions().get(c));
    let visitor = Visitor { text, session };
    let mut resp = if !public(req.uri().path()) && !visitor.signed_in() {
        match *req.method() {
            Method::GET | Method::HEAD => super::page::see_other("/signin"),
            _ => super::page::refusal::forbidden(&visitor),
        }
    } else if req.method() == Method::POST {
        checked_post(req, visitor, next).await
    } else {
        let mut req = req;
        req.extensions_mut().insert(visitor);
        next.run(req).await
    };
    headers(resp.headers_mut(), &app);
    resp
}

/// A POST whose form carries the session's CSRF token goes on (the body re-attached); any
/// other is answered 403 and its handler never runs.
async fn checked_post(req: Request, visitor: Visitor, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let expected = visitor.session.as_ref().map(|s| s.csrf.as_bytes());
    let given = form_field(&bytes, "csrf");
    let ok = matches!((expected, given), (Some(e), Some(g)) if sessions::same(e, g));
    if !ok {
        tracing::warn!(path = %parts.uri.path(), "connect page: POST without a valid CSRF token refused");
        return super::page::refusal::forbidden(&visitor);
    }
    parts.extensions.insert(visitor);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The raw value of `name` in a urlencoded form (the tokens are base64url, which a browser
/// sends unencoded).
fn form_field<'a>(body: &'a [u8], name: &str) -> Option<&'a [u8]> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let mut kv = pair.splitn(2, |&b| b == b'=');
        (kv.next()? == name.as_bytes()).then(|| kv.next().unwrap_or_default())
    })
}

/// The session cookie's value from the `Cookie` headers.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// `Set-Cookie` for a session id (`Secure` over TLS); `None` ends the session's cookie.
pub fn set_cookie(id: Option<&str>, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = match id {
        Some(id) => format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/{secure}"),
        None => format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The headers every response carries. `form-action` also names the identity providers the
/// OAuth form redirects to (a browser applies it to the redirect after the POST).
fn headers(h: &mut HeaderMap, app: &App) {
    let mut form_action = String::from("'self'");
    for origin in app.idp_origins() {
        form_action.push(' ');
        form_action.push_str(&origin);
    }
    let csp = format!("default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'");
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_form_field_and_the_cookie() {
        assert_eq!(form_field(b"a=1&csrf=xyz&b=", "csrf"), Some(&b"xyz"[..]));
        assert_eq!(form_field(b"csrf", "csrf"), Some(&b""[..]));
        assert_eq!(form_field(b"xcsrf=1", "csrf"), None);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; mailgate_session=abc"),
        );
        assert_eq!(cookie(&h), Some("abc"));
    }
}
