//! The live test's steps as a list (`#steps`): `li.ok` ✓ or `li.fail` ✗ with the reason in
//! the server's words and one line of advice. Shared by the connect, edit and *Check now*
//! pages; the steps themselves are `setup`'s ([`crate::setup::Step`]).

use crate::setup::{Step, StepFailure, StepKind};
use crate::upstream::{FailureKind, TlsFailure};
use crate::web::lang::Text;
use maud::{html as markup, Markup};

/// `ul#steps`.
pub fn list(t: &Text, steps: &[Step]) -> Markup {
    markup! {
        ul id="steps" {
            @for s in steps {
                @match &s.outcome {
                    Ok(()) => li.ok { span.mark { "✓" } " " (name(t, s.kind)) },
                    Err(f) => li.fail {
                        span.mark { "✗" } " " (name(t, s.kind)) ": " span.reason { (f.reason) }
                        @if let Some(advice) = advice(t, f) { br; span.advice { (advice) } }
                    },
                }
            }
        }
    }
}

/// A step in the page's words.
pub fn name(t: &Text, kind: StepKind) -> &'static str {
    match kind {
        StepKind::ImapLogin => t.step_imap_login,
        StepKind::FolderList => t.step_folder_list,
        StepKind::SmtpAuth => t.step_smtp_auth,
    }
}

/// A failed step's advice, chosen by its kind: the page's own for an untrusted certificate
/// (setup's names a command-line option), else setup's line (`None` when there is none).
fn advice<'a>(t: &Text, f: &'a StepFailure) -> Option<&'a str> {
    match f.kind {
        Some(FailureKind::Tls(TlsFailure::UntrustedIssuer)) => Some(t.advice_untrusted_certificate),
        _ => Some(f.advice.as_str()).filter(|a| !a.is_empty()),
    }
}
