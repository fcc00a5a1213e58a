//! `/signin` (the operator password form `#signin`, or the one-time link `?token=`) and
//! `/signout`. A successful sign-in gets a new session id (see `guard::sessions`).

use super::fields::with_command;
use super::{html, layout, see_other};
use crate::secret::Secret;
use crate::web::guard::{self, signin::Refused, Visitor};
use crate::web::{App, Peer};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::{Extension, Form};
use maud::{html as markup, Markup};
use serde::Deserialize;

/// `?token=` of the one-time link.
#[derive(Deserialize)]
pub struct LinkQuery {
    token: Option<String>,
}

/// The sign-in form.
#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    password: String,
}

/// `GET /signin`: the form (a session is opened for its CSRF token), or the one-time link.
pub async fn show(
    State(app): State<App>,
    Extension(v): Extension<Visitor>,
    Query(q): Query<LinkQuery>,
) -> Response {
    if let Some(token) = q.token {
        if app.one_time().redeem(&token) {
            tracing::info!("connect page: signed in with the one-time link");
            return signed_in(&app, &v);
        }
        let t = v.text;
        return form(&app, v, StatusCode::FORBIDDEN, Some(t.signin_link_invalid));
    }
    if v.signed_in() {
        return see_other("/");
    }
    form(&app, v, StatusCode::OK, None)
}

/// `POST /signin`: the operator password (the guard checked the CSRF token).
pub async fn submit(
    State(app): State<App>,
    Extension(v): Extension<Visitor>,
    Extension(Peer(peer)): Extension<Peer>,
    Form(f): Form<SignInForm>,
) -> Response {
    let config = app.config();
    match guard::signin::password(&config, peer.ip(), Secret::new(f.password)).await {
        Ok(()) => {
            tracing::info!(%peer, "connect page: operator signed in");
            signed_in(&app, &v)
        }
        Err(Refused::Wrong) => {
            let t = v.text;
            form(&app, v, StatusCode::UNAUTHORIZED, Some(t.signin_wrong))
        }
        Err(Refused::Locked) => {
            let t = v.text;
            form(
                &app,
                v,
                StatusCode::TOO_MANY_REQUESTS,
                Some(t.signin_locked),
            )
        }
    }
}

/// `POST /signout`: ends the session.
pub async fn sign_out(State(app): State<App>, Extension(v): Extension<Visitor>) -> Response {
    if let Some(s) = &v.session {
        app.sessions().remove(&s.key);
    }
    let mut resp = see_other("/signin");
    resp.headers_mut()
        .insert(header::SET_COOKIE, guard::set_cookie(None, app.secure()));
    resp
}

/// A new signed-in session (the old one ended), then to the start page.
fn signed_in(app: &App, v: &Visitor) -> Response {
    let id = app.sessions().sign_in(v.session.as_ref().map(|s| &s.key));
    let mut resp = see_other("/");
    resp.headers_mut().insert(
        header::SET_COOKIE,
        guard::set_cookie(Some(&id), app.secure()),
    );
    resp
}

/// The sign-in page, with an anonymous session opened for the form if there is none.
fn form(app: &App, mut v: Visitor, status: StatusCode, error: Option<&str>) -> Response {
    let mut cookie = None;
    if v.session.is_none() {
        let (id, session) = app.sessions().create(false);
        v.session = Some(session);
        cookie = Some(id);
    }
    let has_password = app
        .config()
        .web
        .as_ref()
        .is_some_and(|w| w.operator_password_hash.is_some());
    let t = v.text;
    let mut resp = html(
        status,
        layout::page(&v, t.signin_title, body(&v, has_password, error)),
    );
    if let Some(id) = cookie {
        resp.headers_mut().insert(
            header::SET_COOKIE,
            guard::set_cookie(Some(&id), app.secure()),
        );
    }
    resp
}

fn body(v: &Visitor, has_password: bool, error: Option<&str>) -> Markup {
    let t = v.text;
    markup! {
        @if let Some(e) = error { p.error id="signin-error" { (with_command(e)) } }
        @if has_password {
            p { (t.signin_with_password) }
            form id="signin" method="post" action="/signin" {
                (layout::csrf(v))
                label for="password" { (t.password_label) }
                input type="password" id="password" name="password" autocomplete="current-password" required autofocus;
                button type="submit" { (t.signin_button) }
            }
        } @else {
            p { (with_command(t.signin_with_link)) }
        }
    }
}
