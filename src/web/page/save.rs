//! Writing an account from a page the way `mailgate setup` writes it (the same code): the live
//! test's steps on the account as it will load ([`setup::live_steps`]), and only when the
//! logins passed the config file ([`setup::write`]) or the shared store
//! ([`setup::save_stored`]), then the server asked to load the change ([`App::apply`]).

use super::{html, layout};
use crate::config::Config;
use crate::discover::Discovery;
use crate::pgstore::Shared;
use crate::secret::Secret;
use crate::setup::{self, CheckOutcome, Credential, Plan, SetupError, Target};
use crate::web::guard::Visitor;
use crate::web::App;
use axum::http::StatusCode;
use axum::response::Response;
use std::sync::Arc;

/// How a test-and-write went.
pub enum Saved {
    /// Every step passed and the account is written; `applied`: the server serves it now
    /// (else from its next reload).
    Written {
        /// The steps and the folders.
        tested: CheckOutcome,
        /// Whether the server loaded the change in time.
        applied: bool,
    },
    /// A step failed: nothing was written.
    Failed(CheckOutcome),
}

/// The shared store of the configuration in use (opened once per process), when it has a
/// `[store]`: its accounts are written there, not to the file.
pub async fn shared(config: &Config) -> Result<Option<Arc<Shared>>, SetupError> {
    match &config.store {
        Some(settings) => Ok(Some(Shared::open(settings).await?)),
        None => Ok(None),
    }
}

/// The argon2 hash of a local password (on a blocking thread: it takes a while on purpose).
pub async fn hash(password: &Secret) -> Result<String, SetupError> {
    let p = password.clone();
    let failed = |e: String| SetupError::Invalid(format!("cannot hash the local password: {e}"));
    tokio::task::spawn_blocking(move || crate::account::hash_password(&p))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))
}

/// Runs the steps on `plan`'s account; when its logins passed writes it into `shared` or the file of
/// `target`, then waits for the server to load it ([`serves`]).
pub async fn test_and_write(
    app: &App,
    target: &Target,
    plan: &Plan,
    shared: Option<&Shared>,
) -> Result<Saved, SetupError> {
    let tested = setup::live_steps(target, plan).await?;
    if !tested.logins_passed() {
        return Ok(Saved::Failed(tested));
    }
    match shared {
        Some(shared) => setup::save_stored(shared, target, plan).await?,
        None => {
            setup::write(target, plan, &target.server()?.state_dir)?;
        }
    }
    tracing::info!(email = %plan.email, edit = target.is_edit(), "connect page: account written");
    let applied = app.apply(|c| serves(c, plan)).await;
    Ok(Saved::Written { tested, applied })
}

/// A plan for servers given or found (no CA file, the client's folder names as mailgate's
/// default).
pub fn plan(
    email: String,
    found: Discovery,
    credential: Credential,
    local_password_hash: String,
) -> Plan {
    Plan {
        email,
        found,
        credential,
        ca_file: None,
        local_password_hash,
        client: None,
    }
}

/// Whether `config` has `plan`'s account with its servers (address, security, user name).
pub fn serves(config: &Config, plan: &Plan) -> bool {
    let Some(a) = config.account(&plan.email) else {
        return false;
    };
    let same = |e: &crate::config::Endpoint, f: &crate::discover::Found| {
        e.address() == f.address() && e.target.tls == f.tls && e.username == f.username
    };
    same(&a.imap, &plan.found.imap)
        && match (&a.smtp, &plan.found.smtp) {
            (Some(e), Some(f)) => same(e, f),
            (None, None) => true,
            _ => false,
        }
}

/// A page saying the account could not be tested or written, with setup's reason (which never
/// carries a secret); nothing was written.
pub fn refused(v: &Visitor, e: &SetupError) -> Response {
    let t = v.text;
    tracing::warn!(error = %e, "connect page: the account was not written");
    let status = match e {
        SetupError::Invalid(_) | SetupError::NoAccount { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let detail = detail(e);
    let body = maud::html! {
        p.error id="save-failed" { (t.save_failed) }
        @if !detail.is_empty() { pre.detail { (detail) } }
    };
    html(status, layout::page(v, t.not_saved_title, body))
}

/// What a page may show of a failure: never file contents (a config file's TOML error can
/// quote a line, and a line can hold an inline password), so a broken file is named only.
pub fn detail(e: &SetupError) -> String {
    match e {
        SetupError::Config { path, .. } => path.display().to_string(),
        SetupError::LiveTest { .. } => String::new(),
        other => other.to_string(),
    }
}
