//! An OAuth account's sign-in during set-up: which settings sign in, and undoing the sign-in
//! when the live test then fails (the account is not added, so no token may outlive it). The
//! wizard signs in through the loopback flow, the connect page through its callback; both
//! with [`crate::oauth::authorize::begin`] and `finish`.

use super::{Plan, SetupError, Target};
use crate::config::OAuth2;

/// The new account's OAuth settings, and whether its user had tokens before this sign-in.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// The settings to pass to `authorize::begin` and `finish`.
    pub oauth: std::sync::Arc<OAuth2>,
    /// Tokens the user already had belong to accounts that sign in as it too (shared
    /// mailboxes): the new ones replace them, and [`SignIn::undo`] leaves them.
    pub had_tokens: bool,
}

impl SignIn {
    /// The sign-in for `plan`'s OAuth settings, as the account will load.
    pub fn prepare(target: &Target, plan: &Plan) -> Result<SignIn, SetupError> {
        let cfg = target.load_account(plan)?;
        let oauth = cfg
            .accounts
            .first()
            .and_then(|a| a.imap.credential.oauth().cloned())
            .ok_or_else(|| SetupError::Invalid("the new account has no OAuth settings".into()))?;
        let had_tokens = crate::oauth::store::open(&oauth.state_dir)
            .and_then(|store| store.load(&oauth.identity))
            .is_ok_and(|t| t.is_some());
        Ok(SignIn { oauth, had_tokens })
    }

    /// After a failed live test: removes this sign-in's tokens, unless the user had tokens
    /// before it.
    pub fn undo(&self) -> Result<(), crate::oauth::store::StoreError> {
        if self.had_tokens {
            return Ok(());
        }
        crate::oauth::store::open(&self.oauth.state_dir)?.remove(&self.oauth.identity)
    }
}
