//! The HTML shell of every page: language, title, style sheet, header with the navigation
//! (when signed in) and the sign-out form.

use crate::web::guard::Visitor;
use maud::{html, Markup, DOCTYPE};

/// A whole page around `body`.
pub fn page(v: &Visitor, title: &str, body: Markup) -> Markup {
    let t = v.text;
    html! {
        (DOCTYPE)
        html lang=(t.code) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · " (t.site) }
                link rel="stylesheet" href="/style.css";
            }
            body {
                header {
                    div.bar {
                        a.site href="/" { (t.site) }
                        @if v.signed_in() {
                            nav {
                                a href="/connect" { (t.nav_connect) }
                                a href="/accounts" { (t.nav_accounts) }
                                a href="/help" { (t.nav_help) }
                                form method="post" action="/signout" {
                                    (csrf(v))
                                    button.link type="submit" id="signout" { (t.sign_out) }
                                }
                            }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The hidden CSRF field every POST form carries.
pub fn csrf(v: &Visitor) -> Markup {
    html! { input type="hidden" name="csrf" value=(v.csrf()); }
}
