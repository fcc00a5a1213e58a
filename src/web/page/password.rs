//! `POST /connect/password`: a password account from the found page's `#password-form` (the
//! servers discovery found, carried as hidden fields) or from `#advanced` (typed by hand).
//! The account is tested live step by step and written only when its logins passed, then the
//! `#done` page; else the form again, prefilled (never the passwords), with the steps.

use super::account_form::{sentence, AccountForm, FormError};
use super::advanced::{servers_form, Kind, Prefill};
use super::done;
use super::save::{self, Saved};
use super::{html, layout, steps};
use crate::setup::{self, Credential, SetupError, Step, Target};
use crate::web::guard::Visitor;
use crate::web::App;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use maud::html as markup;

/// `POST /connect/password`.
pub async fn submit(
    State(app): State<App>,
    Extension(v): Extension<Visitor>,
    Form(mut f): Form<AccountForm>,
) -> Response {
    let t = v.text;
    let password = f.take_password();
    let local = f.take_local_password();
    let prefill = f.prefill();
    let again = |why: &str, steps: Option<&[Step]>| {
        form_again(&v, Kind::New, &prefill, t.advanced_title, why, steps)
    };
    let found = match f.discovery() {
        Ok(d) => d,
        Err(e) => return again(&sentence(t, &e), None),
    };
    let Some(password) = password else {
        return again(&sentence(t, &FormError::NoPassword), None);
    };
    let config = app.config();
    let email = found.email.clone();
    if config.account(&email).is_some() {
        return again(t.duplicate_account, None);
    }
    let shared = match save::shared(&config).await {
        Ok(s) => s,
        Err(e) => return save::refused(&v, &e),
    };
    let target = match Target::open(&config.path, &email) {
        Ok(target) => target,
        Err(SetupError::Duplicate { .. }) => return again(t.duplicate_account, None),
        Err(e) => return save::refused(&v, &e),
    };
    let local = local.unwrap_or_else(setup::generate_password);
    let local_password_hash = match save::hash(&local).await {
        Ok(h) => h,
        Err(e) => return save::refused(&v, &e),
    };
    let plan = save::plan(
        email,
        found,
        Credential::Password(password),
        local_password_hash,
    );
    let written = save::test_and_write(&app, &target, &plan, shared.as_deref()).await;
    match written {
        Ok(Saved::Written { tested, applied }) => {
            done::page(&v, &app, &plan, &local, &tested, applied)
        }
        Ok(Saved::Failed(tested)) => again(t.test_failed, Some(&tested.steps)),
        Err(SetupError::Duplicate { .. }) => again(t.duplicate_account, None),
        Err(e) => save::refused(&v, &e),
    }
}

/// The servers form of `kind` again (422), prefilled, under a sentence why and the steps of
/// a failed test.
pub fn form_again(
    v: &Visitor,
    kind: Kind,
    prefill: &Prefill,
    title: &str,
    why: &str,
    tested: Option<&[Step]>,
) -> Response {
    let t = v.text;
    let body = markup! {
        p.error id="form-error" { (why) }
        @if let Some(s) = tested { (steps::list(t, s)) }
        (servers_form(v, kind, prefill))
    };
    html(
        StatusCode::UNPROCESSABLE_ENTITY,
        layout::page(v, title, body),
    )
}
