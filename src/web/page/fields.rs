//! Form parts more than one page uses.

use crate::net::TlsMode;
use crate::web::lang::Text;
use maud::{html as markup, Markup};
use serde::Deserialize;

/// `email`, the one field of the address form and of the accounts' links and buttons
/// (`?email=` or a form body).
#[derive(Deserialize)]
pub struct Email {
    #[serde(default)]
    email: String,
}

impl Email {
    /// The address, trimmed.
    pub fn email(&self) -> &str {
        self.email.trim()
    }
}

/// The longest address taken (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;

/// The optional local password field, shared with the advanced form.
pub fn local_password(t: &Text) -> Markup {
    markup! {
        label for="local_password" { (t.local_password_label) }
        input type="password" id="local_password" name="local_password" autocomplete="new-password";
        p.hint { (t.local_password_hint) }
    }
}

/// A value for a URL query, percent-encoded (everything but unreserved characters).
pub fn query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A TLS mode in the page's words (SSL/TLS, STARTTLS, none).
pub fn security_name(t: &Text, mode: TlsMode) -> &'static str {
    match mode {
        TlsMode::Implicit => t.security_tls,
        TlsMode::Starttls => t.security_starttls,
        TlsMode::None => t.security_none,
    }
}

/// `text` with its `placeholder` (e.g. `{command}`) replaced by `part`, so a sentence in any
/// word order can hold markup; `text` as it is when it has no placeholder.
pub fn with_part(text: &str, placeholder: &str, part: Markup) -> Markup {
    match text.split_once(placeholder) {
        Some((before, after)) => markup! { (before) (part) (after) },
        None => markup! { (text) },
    }
}

/// The command that sets the operator password, in a sentence's `{command}`.
pub fn with_command(text: &str) -> Markup {
    with_part(
        text,
        "{command}",
        markup! { code { "mailgate web-password" } },
    )
}
