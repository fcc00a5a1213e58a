//! The OAuth 2.0 identity providers mailgate knows: their endpoints and scopes, so that an
//! `[account.oauth2]` table for Gmail or Microsoft 365 needs only `provider` and `client_id`.

use serde::Deserialize;

/// A built-in identity provider: endpoints and scopes known in advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OAuthProvider {
    /// Gmail and Google Workspace.
    Google,
    /// Microsoft 365 and Outlook.com (Microsoft identity platform v2.0).
    Microsoft,
}

const GOOGLE_AUTHORIZE: &str = "https://accounts.google.com/o/oauth2/auth";
const GOOGLE_TOKEN: &str = "https://oauth2.googleapis.com/token";
const GOOGLE_SCOPES: &[&str] = &["https://mail.google.com/"];
const MICROSOFT_SCOPES: &[&str] = &[
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
    "offline_access",
];
const MICROSOFT_APP_SCOPE: &str = "https://outlook.office365.com/.default";

/// What an identity provider's preset fills in (nothing, without a preset).
#[derive(Debug, Default)]
pub struct IdentityPreset {
    /// Where the user approves access (authorization-code flow).
    pub authorize: Option<String>,
    /// The token endpoint.
    pub token: Option<String>,
    /// Where the device-code flow starts, if the provider allows it for mail.
    pub device: Option<String>,
    /// Scopes of the user-delegated flows.
    pub scopes: &'static [&'static str],
    /// Scopes of the client-credentials flow; empty: the same as `scopes`.
    pub app_scopes: &'static [&'static str],
}

impl OAuthProvider {
    /// The word used in the config file (`provider = "google"`).
    pub fn name(self) -> &'static str {
        match self {
            OAuthProvider::Google => "google",
            OAuthProvider::Microsoft => "microsoft",
        }
    }

    /// The endpoints and scopes; `tenant` is Microsoft's tenant id or domain (`common` by
    /// default).
    pub fn preset(self, tenant: &str) -> IdentityPreset {
        let ms =
            |path: &str| format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/{path}");
        match self {
            OAuthProvider::Google => IdentityPreset {
                authorize: Some(GOOGLE_AUTHORIZE.into()),
                token: Some(GOOGLE_TOKEN.into()),
                // Google's device flow does not allow the mail scope.
                device: None,
                scopes: GOOGLE_SCOPES,
                app_scopes: &[],
            },
            OAuthProvider::Microsoft => IdentityPreset {
                authorize: Some(ms("authorize")),
                token: Some(ms("token")),
                device: Some(ms("devicecode")),
                scopes: MICROSOFT_SCOPES,
                app_scopes: &[MICROSOFT_APP_SCOPE],
            },
        }
    }
}
