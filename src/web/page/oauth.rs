//! Signing in at the provider (OAuth authorization code + PKCE) from the connect page:
//! `POST /connect/oauth` (a new account, from the found page's `#oauth`) and
//! `POST /accounts/reauthorize` (new tokens for an account whose tokens were revoked or ran
//! out) send the browser to the identity provider with [`authorize::begin`]; the request's
//! state, verifier and purpose wait in the session (never in the page or a URL of ours), and
//! `GET /oauth/callback` takes them out once, checks the `state` ([`authorize::finish`],
//! constant time) and exchanges the code. A new account is then tested and written as a
//! password one is (a failed test removes the sign-in's tokens: [`setup::SignIn::undo`]); a
//! re-authorized one gets *Check now*'s steps.

use super::account_form::AccountForm;
use super::connect::oauth_app;
use super::done;
use super::refusal::unknown_account;
use super::save::{self, Saved};
use super::{html, layout, steps};
use crate::config::WebOAuthApp;
use crate::oauth::authorize::{self, AuthorizeError, Pending};
use crate::secret::Secret;
use crate::setup::{self, Credential, SetupError, SignIn, Target};
use crate::web::guard::Visitor;
use crate::web::App;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use maud::html as markup;
use serde::{Deserialize, Serialize};

/// The session's name for the sign-in in progress.
const KEPT: &str = "oauth";

/// What a sign-in in progress keeps in the session until the callback.
#[derive(Serialize, Deserialize)]
struct Kept {
    /// Why the browser went to the provider.
    purpose: Purpose,
    state: String,
    verifier: String,
    redirect_uri: String,
}

#[derive(Serialize, Deserialize)]
enum Purpose {
    /// A new account: the found page's fields, and the local password made for it (shown
    /// once on the done page) with its hash.
    Connect {
        form: Box<AccountForm>,
        local_password: String,
        hash: String,
    },
    /// New tokens for the loaded account of this address.
    Reauthorize(String),
}

/// Why a callback ends without tokens (the page says it in the visitor's language).
enum Refusal {
    /// The provider answered with `error=` (the user cancelled, or it refused).
    Denied,
    /// The `state` is not this session's.
    StateMismatch,
    /// No sign-in in progress in this session (or its value is unreadable).
    NoPending,
    /// The code could not be exchanged or the tokens stored.
    Token(AuthorizeError),
}

/// The callback's query.
#[derive(Deserialize)]
pub struct Callback {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// `POST /connect/oauth`: the app serving the address, then to the identity provider.
pub async fn connect(
    State(app): State<App>,
    Extension(v): Extension<Visitor>,
    Form(f): Form<AccountForm>,
) -> Response {
    let t = v.text;
    let config = app.config();
    let found = match f.discovery() {
        Ok(d) => d,
        Err(e) => {
            return sentence(
                &v,
                StatusCode::UNPROCESSABLE_ENTITY,
                &super::account_form::sentence(t, &e),
            )
        }
    };
    if config.account(&found.email).is_some() {
        return sentence(&v, StatusCode::CONFLICT, t.duplicate_account);
    }
    let apps = config.web.as_ref().map_or(&[][..], |w| &w.oauth[..]);
    let Some(web_app) = oauth_app(apps, &found) else {
        return sentence(&v, StatusCode::BAD_REQUEST, t.oauth_no_app);
    };
    let local = setup::generate_password();
    let hash = match save::hash(&local).await {
        Ok(h) => h,
        Err(e) => return save::refused(&v, &e),
    };
    let prepared = Target::open(&config.path, &found.email).and_then(|target| {
        let plan = save::plan(
            found.email.clone(),
            found,
            credential(web_app),
            hash.clone(),
        );
        SignIn::prepare(&target, &plan)
    });
    let signin = match prepared {
        Ok(s) => s,
        Err(SetupError::Duplicate { .. }) => {
            return sentence(&v, StatusCode::CONFLICT, t.duplicate_account)
        }
        Err(e) => return save::refused(&v, &e),
    };
    let purpose = Purpose::Connect {
        form: Box::new(f),
        local_password: local.expose().to_owned(),
        hash,
    };
    begin(&app, &v, &signin.oauth, purpose)
}

/// `POST /accounts/reauthorize`: new tokens for a loaded OAuth account.
pub async fn reauthorize(
    State(app): State<App>,
    Extension(v): Extension<Visitor>,
    Form(f): Form<AccountForm>,
) -> Response {
    let config = app.config();
    let Some(account) = config.account(f.email()) else {
        return unknown_account(&v);
    };
    let Some(oauth) = account.imap.credential.oauth() else {
        return sentence(&v, StatusCode::BAD_REQUEST, v.text.not_oauth_account);
    };
    begin(&app, &v, oauth, Purpose::Reauthorize(account.email.clone()))
}

/// The new account's OAuth settings, from the `[[web.oauth]]` app.
fn credential(a: &WebOAuthApp) -> Credential {
    Credential::OAuth {
        provider: a.provider.map(|p| p.name()),
        endpoints: a.endpoints.clone(),
        scopes: a.scopes.clone(),
        client_id: a.client_id.clone(),
        client_secret_env: a.client_secret_env.clone(),
        tenant: a.tenant.clone(),
    }
}

/// Starts the authorization for `oauth`, keeps it in the session and sends the browser to
/// the identity provider (303).
fn begin(app: &App, v: &Visitor, oauth: &crate::config::OAuth2, purpose: Purpose) -> Response {
    let redirect = format!("{}/oauth/callback", app.public_url());
    let pending = match authorize::begin(oauth, &redirect) {
        Ok(p) => p,
        Err(e) => return refused(v, &Refusal::Token(e)),
    };
    let kept = Kept {
        purpose,
        state: pending.state.expose().to_owned(),
        verifier: pending.verifier.expose().to_owned(),
        redirect_uri: pending.redirect_uri.clone(),
    };
    let stored = match (serde_json::to_string(&kept), &v.session) {
        (Ok(json), Some(s)) => app.sessions().put(&s.key, KEPT, Secret::new(json)),
        _ => false,
    };
    let location = HeaderValue::from_str(&pending.url);
    match (stored, location) {
        (true, Ok(location)) => {
            let mut resp = StatusCode::SEE_OTHER.into_response();
            resp.headers_mut().insert(header::LOCATION, location);
            resp
        }
        _ => refused(v, &Refusal::NoPending),
    }
}

/// `GET /oauth/callback?code=&state=` (or `?error=`).
pub async fn callback(
    State(app): State<App>,
    Extension(v): Extension<Visitor>,
    Query(q): Query<Callback>,
) -> Response {
    let kept = v
        .session
        .as_ref()
        .and_then(|s| app.sessions().take(&s.key, KEPT))
        .and_then(|json| serde_json::from_str::<Kept>(json.expose()).ok());
    let Some(kept) = kept else {
        return refused(&v, &Refusal::NoPending);
    };
    if q.error.is_some() {
        return refused(&v, &Refusal::Denied);
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return refused(&v, &Refusal::Denied);
    };
    let pending = Pending {
        url: String::new(),
        redirect_uri: kept.redirect_uri,
        state: Secret::new(kept.state),
        verifier: Secret::new(kept.verifier),
    };
    let code = Secret::new(code);
    let config = app.config();
    let finish = |oauth| authorize::finish(oauth, &pending, &code, &state, &config.server);
    match kept.purpose {
        Purpose::Reauthorize(email) => {
            let Some(oauth) = config
                .account(&email)
                .and_then(|a| a.imap.credential.oauth())
            else {
                return unknown_account(&v);
            };
            if let Err(e) = finish(oauth).await {
                return refused(&v, &Refusal::of(e));
            }
            tracing::info!(%email, "connect page: account re-authorized");
            reauthorized(&v, &config, &email).await
        }
        Purpose::Connect {
            form,
            local_password,
            hash,
        } => {
            let t = v.text;
            let found = match form.discovery() {
                Ok(d) => d,
                Err(_) => return refused(&v, &Refusal::NoPending),
            };
            let apps = config.web.as_ref().map_or(&[][..], |w| &w.oauth[..]);
            let Some(web_app) = oauth_app(apps, &found) else {
                return sentence(&v, StatusCode::BAD_REQUEST, t.oauth_no_app);
            };
            let local = Secret::new(local_password);
            let plan = save::plan(found.email.clone(), found, credential(web_app), hash);
            let target = match Target::open(&config.path, &plan.email) {
                Ok(t) => t,
                Err(SetupError::Duplicate { .. }) => {
                    return sentence(&v, StatusCode::CONFLICT, t.duplicate_account)
                }
                Err(e) => return save::refused(&v, &e),
            };
            let signin = match SignIn::prepare(&target, &plan) {
                Ok(s) => s,
                Err(e) => return save::refused(&v, &e),
            };
            if let Err(e) = finish(&signin.oauth).await {
                return refused(&v, &Refusal::of(e));
            }
            let shared = match save::shared(&config).await {
                Ok(s) => s,
                Err(e) => return undone(&v, &signin, &e),
            };
            match save::test_and_write(&app, &target, &plan, shared.as_deref()).await {
                Ok(Saved::Written { tested, applied }) => {
                    done::page(&v, &app, &plan, &local, &tested, applied)
                }
                Ok(Saved::Failed(tested)) => {
                    undo(&signin);
                    let body = markup! {
                        p.error id="form-error" { (t.test_failed) }
                        (steps::list(t, &tested.steps))
                        p { a href="/connect" { (t.nav_connect) } }
                    };
                    html(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        layout::page(&v, t.oauth_failed_title, body),
                    )
                }
                Err(e) => undone(&v, &signin, &e),
            }
        }
    }
}

/// After a failed test: the sign-in's tokens go (the account was not added).
fn undo(signin: &SignIn) {
    if let Err(e) = signin.undo() {
        tracing::warn!(error = %e, "connect page: the tokens of a failed sign-in could not be removed");
    }
}

/// [`undo`], then the page saying why nothing was written.
fn undone(v: &Visitor, signin: &SignIn, e: &SetupError) -> Response {
    undo(signin);
    save::refused(v, e)
}

/// The re-authorized account's steps (*Check now*'s, on the account as loaded).
async fn reauthorized(v: &Visitor, config: &crate::config::Config, email: &str) -> Response {
    let t = v.text;
    let Some(outcome) = setup::check_account(config, email).await else {
        return unknown_account(v);
    };
    let body = markup! {
        p id="reauthorized" { (t.reauthorized_text) }
        (steps::list(t, &outcome.steps))
    };
    html(StatusCode::OK, layout::page(v, t.reauthorized_title, body))
}

impl Refusal {
    fn of(e: AuthorizeError) -> Refusal {
        match e {
            AuthorizeError::StateMismatch => Refusal::StateMismatch,
            AuthorizeError::Denied(_) => Refusal::Denied,
            other => Refusal::Token(other),
        }
    }
}

/// 400: the sign-in did not complete; nothing was written.
fn refused(v: &Visitor, r: &Refusal) -> Response {
    let t = v.text;
    let (id, text) = match r {
        Refusal::Denied => ("oauth-denied", t.oauth_denied),
        Refusal::StateMismatch => ("oauth-state-mismatch", t.oauth_state_mismatch),
        Refusal::NoPending => ("oauth-no-pending", t.oauth_no_pending),
        Refusal::Token(_) => ("oauth-token-failed", t.oauth_token_failed),
    };
    if let Refusal::Token(e) = r {
        tracing::warn!(error = %e, "connect page: OAuth sign-in failed");
    }
    let body = markup! {
        p.error id=(id) { (text) }
        @if let Refusal::Token(e) = r { pre.detail { (e.to_string()) } }
        p { a href="/connect" { (t.nav_connect) } }
    };
    html(
        StatusCode::BAD_REQUEST,
        layout::page(v, t.oauth_failed_title, body),
    )
}

/// A page of one sentence (`p.error#oauth-error`) with `status`.
fn sentence(v: &Visitor, status: StatusCode, text: &str) -> Response {
    let body = markup! { p.error id="oauth-error" { (text) } };
    html(status, layout::page(v, v.text.oauth_failed_title, body))
}
