//! What guards the pages: sessions and their cookie, CSRF tokens, the sign-in checks, and the
//! security headers every response carries. `super::front` applies them to every request;
//! handlers get a [`Visitor`]: language, session, CSRF token.

mod sessions;
pub mod signin;

pub use sessions::{Session, Sessions};
pub use signin::OneTime;

pub use sessions::same;

use super::lang::Text;
use axum::http::{header, HeaderMap, HeaderValue};

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
pub fn public(path: &str) -> bool {
    matches!(path, "/signin" | "/style.css")
}

/// The raw value of `name` in a urlencoded form (the tokens are base64url, which a browser
/// sends unencoded).
pub fn form_field<'a>(body: &'a [u8], name: &str) -> Option<&'a [u8]> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let mut kv = pair.splitn(2, |&b| b == b'=');
        (kv.next()? == name.as_bytes()).then(|| kv.next().unwrap_or_default())
    })
}

/// The session cookie's value from the `Cookie` headers.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// `Set-Cookie` for a session id (`Secure` over TLS); `None` ends the session's cookie.
/// `SameSite=Lax`, not `Strict`: the provider's sign-in page sends the browser back to
/// `/oauth/callback` from another site, and that request must carry the session holding the
/// sign-in's state and verifier. Lax still keeps the cookie off cross-site POSTs, and every
/// POST needs the form's CSRF token besides.
pub fn set_cookie(id: Option<&str>, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = match id {
        Some(id) => format!("{COOKIE}={id}; HttpOnly; SameSite=Lax; Path=/{secure}"),
        None => format!("{COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The headers every response carries. `form-action` also names the identity providers the
/// OAuth form redirects to (a browser applies it to the redirect after the POST).
pub fn headers(h: &mut HeaderMap, idp_origins: &[String]) {
    let mut form_action = String::from("'self'");
    for origin in idp_origins {
        form_action.push(' ');
        form_action.push_str(origin);
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
