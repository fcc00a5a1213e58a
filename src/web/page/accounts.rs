//! `GET /accounts`: every account as it serves now (`table#accounts`, one `tr data-email`
//! each): how it signs in upstream, its servers, its token's state with the expiry dates
//! (UTC), the last client login and the last check, with *Check now*, *Edit*, *Remove* and —
//! for an OAuth account whose token is withdrawn, expired or missing — *Re-authorize*.
//! Accounts whose servers discovery did not find at start are listed too: they do not serve
//! and are not loaded, so *Edit* (which starts from the loaded account) has nothing to show;
//! *Remove* and connecting again is how to fix them. The rows are `setup`'s ([`setup::overview`]); no secret is in
//! them.

use super::fields::query_value;
use super::{html, layout};
use crate::activity::{Login, Protocol};
use crate::oauth::authorize::format_utc;
use crate::setup::{self, AccountState, Auth, CheckOutcome, TokenState};
use crate::web::guard::Visitor;
use crate::web::lang::Text;
use crate::web::App;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html as markup, Markup};

/// `GET /accounts`.
pub async fn show(State(app): State<App>, Extension(v): Extension<Visitor>) -> Response {
    let config = app.config();
    let rows = setup::overview(&config);
    let t = v.text;
    let body = if rows.is_empty() && config.undiscovered.is_empty() {
        markup! {
            p id="no-accounts" {
                (t.accounts_none) " "
                a href="/connect" { (t.accounts_connect_first) }
            }
        }
    } else {
        table(&v, &rows, &config.undiscovered)
    };
    html(StatusCode::OK, layout::page(&v, t.accounts_title, body))
}

/// `table#accounts`: the serving accounts, then those without servers.
fn table(v: &Visitor, rows: &[AccountState], undiscovered: &[String]) -> Markup {
    let t = v.text;
    markup! {
        table id="accounts" {
            thead {
                tr {
                    th { (t.col_account) }
                    th { (t.col_sign_in) }
                    th { (t.col_servers) }
                    th { (t.col_token) }
                    th { (t.col_last_login) }
                    th { (t.col_last_check) }
                    th {}
                }
            }
            tbody {
                @for r in rows { (row(v, r)) }
                @for email in undiscovered {
                    tr data-email=(email) {
                        td.email { (email) }
                        td.auth colspan="5" { (t.undiscovered) }
                        td.actions { (remove(t, email)) }
                    }
                }
            }
        }
    }
}

fn row(v: &Visitor, r: &AccountState) -> Markup {
    let t = v.text;
    let reauthorize = matches!(
        r.token,
        Some(TokenState::Revoked { .. } | TokenState::Expired { .. } | TokenState::NeedsAuthorize)
    );
    markup! {
        tr data-email=(r.email) {
            td.email { (r.email) }
            td.auth {
                @match &r.auth {
                    Auth::Password => (t.auth_password),
                    Auth::OAuth { identity } => { (t.auth_oauth) " " span.identity { (identity) } },
                }
            }
            td.servers {
                "IMAP " code.imap { (r.imap) } br;
                @match &r.smtp {
                    Some(s) => { "SMTP " code.smtp { (s) } },
                    None => span.muted { (t.receives_only) },
                }
            }
            td.token { (token(t, r.token.as_ref())) }
            td.login { (login(t, r.last_login.as_ref())) }
            td.check { (check(t, r.last_check.as_ref())) }
            td.actions {
                form.check method="post" action="/accounts/check" {
                    (layout::csrf(v))
                    input type="hidden" name="email" value=(r.email);
                    button type="submit" { (t.check_button) }
                }
                @if reauthorize {
                    form.reauthorize method="post" action="/accounts/reauthorize" {
                        (layout::csrf(v))
                        input type="hidden" name="email" value=(r.email);
                        button type="submit" { (t.reauthorize_button) }
                    }
                }
                (edit_remove(t, &r.email))
            }
        }
    }
}

/// The *Edit* and *Remove* links of a row.
fn edit_remove(t: &Text, email: &str) -> Markup {
    let q = query_value(email);
    markup! {
        a.edit href=(format!("/accounts/edit?email={q}")) { (t.edit_link) }
        " "
        (remove(t, email))
    }
}

/// The *Remove* link of a row.
fn remove(t: &Text, email: &str) -> Markup {
    let q = query_value(email);
    markup! { a.remove href=(format!("/accounts/remove?email={q}")) { (t.remove_link) } }
}

/// The token's state in words, with its dates.
fn token(t: &Text, state: Option<&TokenState>) -> Markup {
    let Some(state) = state else {
        return markup! { span.muted { (t.token_not_used) } };
    };
    match state {
        TokenState::Present {
            access_expires_at,
            refresh_expires_at,
        } => markup! {
            span.ok { (t.token_valid) }
            @if let Some(at) = access_expires_at { br; (t.token_access_until) " " (format_utc(*at)) }
            @if let Some(at) = refresh_expires_at { br; (t.token_refresh_until) " " (format_utc(*at)) }
        },
        TokenState::Expired { at } => {
            markup! { span.fail { (t.token_expired) " " (format_utc(*at)) } }
        }
        TokenState::Revoked { detail } => markup! {
            span.fail { (t.token_revoked) }
            @if !detail.is_empty() { br; small { (detail) } }
        },
        TokenState::NeedsAuthorize => markup! { span.fail { (t.token_needs_authorize) } },
        TokenState::Unreadable(why) => markup! {
            span.fail { (t.token_unreadable) } br; small { (why) }
        },
    }
}

/// The last client login: when (UTC) and over which protocol.
fn login(t: &Text, last: Option<&Login>) -> Markup {
    match last {
        Some(l) => {
            let protocol = match l.protocol {
                Protocol::Imap => "IMAP",
                Protocol::Smtp => "SMTP",
            };
            markup! { (format_utc(l.at)) " (" (protocol) ")" }
        }
        None => markup! { span.muted { (t.login_never) } },
    }
}

/// The last check: ✓ or ✗ and when.
fn check(t: &Text, last: Option<&CheckOutcome>) -> Markup {
    match last {
        Some(c) if c.passed() => markup! { span.ok { "✓ " } (format_utc(c.at)) },
        Some(c) => markup! { span.fail { "✗ " } (format_utc(c.at)) },
        None => markup! { span.muted { (t.check_never) } },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undiscovered_account_has_no_edit_link() {
        let v = Visitor {
            text: &crate::web::lang::EN,
            session: None,
        };
        let html = table(&v, &[], &["ola@example.test".to_owned()]).into_string();
        assert!(
            html.contains("/accounts/remove?email=ola%40example.test"),
            "{html}"
        );
        assert!(!html.contains("/accounts/edit"), "{html}");
    }
}
