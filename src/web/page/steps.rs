//! The live test's steps as a list (`#steps`): `li.ok` ✓ or `li.fail` ✗ with the reason in
//! the server's words and one line of advice. Shared by the connect, edit and *Check now*
//! pages; the steps themselves are `setup`'s ([`crate::setup::Step`]).

use crate::setup::{Step, StepKind};
use crate::web::lang::Text;
use maud::{html as markup, Markup};

/// `ul#steps`.
pub fn list(t: &Text, steps: &[Step]) -> Markup {
    markup! {
        ul id="steps" {
            @for s in steps {
                @match &s.outcome {
                    Ok(()) => li.ok { "✓ " (name(t, s.kind)) },
                    Err(f) => li.fail {
                        "✗ " (name(t, s.kind)) ": " span.reason { (f.reason) }
                        @if !f.advice.is_empty() { br; span.advice { (f.advice) } }
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
