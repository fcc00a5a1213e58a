//! The live test as a list of steps, each ✓ or ✗ with its reason and one line of advice: for
//! the connect page's new and edited accounts ([`live_steps`], on the account as it will load)
//! and for *Check now* ([`super::check_account`], on the account as it is loaded). The same
//! steps as [`super::live_test`], which stops at the first failure for the wizard.

use super::live::{failure, first, loaded, run, Ran};
use super::{CheckOutcome, Plan, SetupError, Step, StepFailure, StepKind, Target};
use crate::check::folders::FolderReport;
use crate::provider::Preset;
use crate::upstream::UpstreamError;
use std::path::Path;

/// Runs every step on the account of `plan` as it will load (the password inline, in memory
/// only; an OAuth account's tokens must be stored already), without stopping at a failure,
/// so the page can show each one.
pub async fn live_steps(target: &Target, plan: &Plan) -> Result<CheckOutcome, SetupError> {
    let cfg = loaded(target, plan)?;
    let ran = run(first(&cfg)?, &cfg.server, false).await;
    let (steps, folders) = steps_of(&ran, plan.found.preset, plan.ca_file.as_deref());
    Ok(CheckOutcome {
        at: crate::activity::unix_now(),
        steps,
        folders,
    })
}

/// The steps `ran` went through, in order, and the folders it listed; the advice from
/// `preset` and `ca_file` ([`failure`]).
pub(super) fn steps_of(
    ran: &Ran,
    preset: Option<&'static Preset>,
    ca_file: Option<&Path>,
) -> (Vec<Step>, Option<FolderReport>) {
    let failed = |e: &UpstreamError| {
        let f = failure(preset, ca_file, e);
        StepFailure {
            kind: Some(e.kind()),
            reason: f.reason,
            advice: f.advice,
        }
    };
    let mut steps = Vec::new();
    let mut folders = None;
    match &ran.imap {
        Ok(listed) => {
            steps.push(Step {
                kind: StepKind::ImapLogin,
                outcome: Ok(()),
            });
            folders = listed.clone();
            steps.push(Step {
                kind: StepKind::FolderList,
                outcome: match listed {
                    Some(_) => Ok(()),
                    None => Err(StepFailure {
                        kind: None,
                        reason: "the server would not list the folders".into(),
                        advice: String::new(),
                    }),
                },
            });
        }
        Err(e) => steps.push(Step {
            kind: StepKind::ImapLogin,
            outcome: Err(failed(e)),
        }),
    }
    if let Some(smtp) = &ran.smtp {
        steps.push(Step {
            kind: StepKind::SmtpAuth,
            outcome: smtp.as_ref().map(|_| ()).map_err(failed),
        });
    }
    (steps, folders)
}
