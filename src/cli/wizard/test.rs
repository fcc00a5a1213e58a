//! The OAuth sign-in and the live test at the provider; nothing is written before both pass.

use super::credential::ca_file_arg;
use super::Wizard;
use crate::cli::ask::{ask_until, ASK_TRIES};
use anyhow::Result;
use mailgate::check::folders::FolderReport;
use mailgate::setup::{self as s, Credential, Plan, Target};

/// Signs in (OAuth accounts), then tests the account live; a failed test removes the tokens
/// of this sign-in, since the account is not added. Returns the folders the test found.
pub(super) fn sign_in_and_test(
    w: &Wizard,
    target: &Target,
    plan: &mut Plan,
) -> Result<Option<FolderReport>> {
    let signed_in = match &plan.credential {
        Credential::OAuth { .. } => Some(sign_in(w, target, plan)?),
        Credential::Password(_) | Credential::Keep => None,
    };
    match live_test(w, target, plan) {
        Ok(folders) => Ok(folders),
        // As before the split: a question left unanswered ends set-up with the tokens kept.
        Err(LiveTestFailed::Asking(e)) => Err(e),
        Err(LiveTestFailed::Test(e)) => {
            if let Some(Err(why)) = signed_in.map(|s| s.undo()) {
                eprintln!("warning: the tokens of this sign-in could not be removed: {why}");
            }
            Err(e.into())
        }
    }
}

/// The browser sign-in for the new account's OAuth settings.
fn sign_in(w: &Wizard, target: &Target, plan: &Plan) -> Result<s::SignIn> {
    let signed_in = s::SignIn::prepare(target, plan)?;
    let server = target.server()?;
    let deadline = std::time::Duration::from_secs(w.args.timeout_secs.max(1));
    let mut out = std::io::stdout();
    w.rt.block_on(mailgate::oauth::authorize::authorization_code(
        &signed_in.oauth,
        &server,
        &mut out,
        mailgate::oauth::authorize::stdin_lines(),
        deadline,
    ))?;
    Ok(signed_in)
}

/// IMAP login and SMTP AUTH at the provider. At the terminal, a certificate from an untrusted
/// CA is not the end: the user gives the CA file and the test runs again, without typing
/// everything anew.
fn live_test(
    w: &Wizard,
    target: &Target,
    plan: &mut Plan,
) -> Result<Option<FolderReport>, LiveTestFailed> {
    let mut asked = 0;
    loop {
        eprintln!("Testing IMAP login and SMTP AUTH at the provider…");
        match w.rt.block_on(s::live_test(target, plan)) {
            Err(e) if w.interactive && e.untrusted_certificate() && asked < ASK_TRIES => {
                asked += 1;
                if let s::SetupError::LiveTest { step, reason, .. } = &e {
                    eprintln!("{step} failed: {reason}");
                }
                let answer = ask_until(
                    "The server's certificate is not trusted: give its CA file (PEM; empty: stop): ",
                    |t| match t {
                        "" => Ok(None),
                        path => ca_file_arg(std::path::Path::new(path)).map(Some),
                    },
                )
                .map_err(LiveTestFailed::Asking)?;
                match answer {
                    Some(file) => plan.ca_file = Some(file),
                    None => return Err(LiveTestFailed::Test(e)),
                }
            }
            Err(e) => return Err(LiveTestFailed::Test(e)),
            Ok(tested) => return Ok(tested.folders),
        }
    }
}

/// Why [`live_test`] ended without a pass.
enum LiveTestFailed {
    /// The test failed.
    Test(s::SetupError),
    /// The question for a CA file could not be answered.
    Asking(anyhow::Error),
}
