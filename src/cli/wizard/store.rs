//! `mailgate setup` on a node with a `[store]`: the account goes to the shared store (every
//! node serves it within a second) and the config file is left as it is.

use super::{SetupArgs, Wizard};
use anyhow::{bail, Context, Result};
use mailgate::pgstore::{PgTokens, Shared};
use mailgate::setup::{self as s, Plan, Target};
use std::sync::Arc;

/// The shared store the file names, opened, or `None` when its accounts are the file's. It
/// becomes the token store of this node's state folder, so an OAuth sign-in's tokens go to
/// the database. An address the store has already is refused here, before any question, as
/// the file's own accounts are.
pub(super) fn open(
    rt: &tokio::runtime::Runtime,
    target: &Target,
    args: &SetupArgs,
    email: &str,
) -> Result<Option<Arc<Shared>>> {
    let Some(settings) = target.store()? else {
        return Ok(None);
    };
    if args.imap_listen.is_some() || args.smtp_listen.is_some() {
        bail!(
            "{} has a [store]: setup adds the account to the shared store and leaves the file as it is; set imap_listen and smtp_listen in its [server] by hand",
            target.path.display()
        );
    }
    let state_dir = target.server()?.state_dir;
    let named = || format!("{}: [store]", target.path.display());
    rt.block_on(async {
        let shared = Shared::open(&settings).await.with_context(named)?;
        let rows = shared.account_rows().await.with_context(named)?;
        if rows.iter().any(|r| r.email.eq_ignore_ascii_case(email.trim())) {
            bail!("the shared store already has an account {email}; replace it with `mailgate account add`, or remove it with `mailgate account remove {email}` first");
        }
        mailgate::oauth::store::install(&state_dir, PgTokens::shared(shared.clone()));
        Ok(Some(shared))
    })
}

/// Writes the tested account into the shared store; refused when the address arrived there
/// while set-up ran (never replaced).
pub(super) fn save(w: &Wizard, shared: &Shared, target: &Target, plan: &Plan) -> Result<()> {
    match w.rt.block_on(s::save_stored(shared, target, plan)) {
        Err(s::SetupError::Duplicate { .. }) => bail!(
            "the shared store got an account {} while setup ran; nothing was changed (see `mailgate account list`)",
            plan.email
        ),
        other => other?,
    }
    println!(
        "Added {} to the shared store (PostgreSQL); every node serves it within a second.",
        plan.email
    );
    Ok(())
}
