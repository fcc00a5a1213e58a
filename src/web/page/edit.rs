//! `/accounts/edit`: the servers form prefilled from the account as it is loaded (`#edit`: the
//! address read-only, no secret ever rendered, empty passwords keep the stored ones; an OAuth
//! account changes its servers only), then — as for a new account — the live test's steps on
//! the changed account and, when all passed, `setup`'s edit ([`setup::open_edit_shared`]):
//! its `[[account]]` table replaced in the file (every other byte kept) or its row in the
//! shared store.

use super::account_form::{sentence, AccountForm};
use super::advanced::{servers_form, Kind, Prefill};
use super::fields::Email;
use super::password::form_again;
use super::refusal::unknown_account;
use super::save::{self, Saved};
use super::{html, layout, steps};
use crate::config::Account;
use crate::setup::{self, Credential, SetupError};
use crate::web::guard::Visitor;
use crate::web::App;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use maud::html as markup;

/// `GET /accounts/edit?email=`.
pub async fn show(
    State(app): State<App>,
    Extension(v): Extension<Visitor>,
    Query(q): Query<Email>,
) -> Response {
    let t = v.text;
    let config = app.config();
    let Some(account) = config.account(q.email()) else {
        return unknown_account(&v);
    };
    let oauth = is_oauth(account);
    let body = markup! {
        p { (if oauth { t.edit_oauth_intro } else { t.edit_intro }) }
        (servers_form(&v, Kind::Edit { oauth }, &prefill(account)))
    };
    html(StatusCode::OK, layout::page(&v, t.edit_title, body))
}

/// `POST /accounts/edit`.
pub async fn submit(
    State(app): State<App>,
    Extension(v): Extension<Visitor>,
    Form(mut f): Form<AccountForm>,
) -> Response {
    let t = v.text;
    let password = f.take_password();
    let local = f.take_local_password();
    let config = app.config();
    let Some(account) = config.account(f.email()) else {
        return unknown_account(&v);
    };
    let kind = Kind::Edit {
        oauth: is_oauth(account),
    };
    // Only the servers come from the form: the address is the account's.
    f.preset.clear();
    let prefill = f.prefill();
    let again =
        |why: &str, s: Option<&[setup::Step]>| form_again(&v, kind, &prefill, t.edit_title, why, s);
    let found = match f.discovery() {
        Ok(d) => d,
        Err(e) => return again(&sentence(t, &e), None),
    };
    let shared = match save::shared(&config).await {
        Ok(s) => s,
        Err(e) => return save::refused(&v, &e),
    };
    let target =
        match setup::open_edit_shared(&config.path, &account.email, shared.as_deref()).await {
            Ok(target) => target,
            Err(SetupError::NoAccount { .. }) => return unknown_account(&v),
            Err(e) => return save::refused(&v, &e),
        };
    let local_password_hash = match &local {
        Some(p) => match save::hash(p).await {
            Ok(h) => h,
            Err(e) => return save::refused(&v, &e),
        },
        None => account.local_password_hash.clone(),
    };
    let credential = match password.filter(|_| !is_oauth(account)) {
        Some(p) => Credential::Password(p),
        None => Credential::Keep,
    };
    let plan = save::plan(
        account.email.clone(),
        found,
        credential,
        local_password_hash,
    );
    let written = save::test_and_write(&app, &target, &plan, shared.as_deref()).await;
    match written {
        Ok(Saved::Written { tested, applied }) => {
            let body = markup! {
                p id="edited" { (t.edited_text) }
                @if !applied { p.note id="not-applied" { (t.not_applied) } }
                (steps::list(t, &tested.steps))
            };
            html(StatusCode::OK, layout::page(&v, t.edited_title, body))
        }
        Ok(Saved::Failed(tested)) => again(t.edit_failed, Some(&tested.steps)),
        Err(SetupError::NoAccount { .. }) => unknown_account(&v),
        Err(e) => save::refused(&v, &e),
    }
}

fn is_oauth(account: &Account) -> bool {
    account.imap.credential.oauth().is_some()
}

/// The form's values from the account as loaded (never a secret).
fn prefill(a: &Account) -> Prefill {
    Prefill {
        email: a.email.clone(),
        imap_server: a.imap.address(),
        imap_security: Some(a.imap.target.tls),
        smtp_server: a.smtp.as_ref().map(|s| s.address()).unwrap_or_default(),
        smtp_security: a.smtp.as_ref().map(|s| s.target.tls),
        username: Some(a.imap.username.as_str())
            .filter(|u| !u.eq_ignore_ascii_case(&a.email))
            .unwrap_or_default()
            .to_owned(),
    }
}
