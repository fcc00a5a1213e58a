//! `[account.oauth2]`: the file's table and the validated settings the rest of mailgate uses.
//!
//! The account validation calls [`OAuth2File::validate`] and places errors at
//! `file:line:col`. The identity providers' presets ([`crate::provider::OAuthProvider`]) fill
//! what the table leaves out, so a Gmail or Microsoft 365 account needs only
//! `provider` and `client_id`. Endpoints must be `https://`: a token endpoint over plain HTTP
//! would hand refresh tokens and client secrets to anyone on the path. Loopback addresses are
//! the one exception (a local identity provider, the tests), because nothing leaves the host.

mod credentials;

pub use credentials::ClientAuth;

use super::locate::FieldError;
use crate::jwt::ServiceAccount;
use crate::net::http::HttpUrl;
use crate::provider::{IdentityPreset, OAuthProvider as Provider};
use crate::sasl::Mechanism;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `[account.oauth2]` as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2File {
    provider: Option<Provider>,
    client_id: Option<String>,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    client_certificate_file: Option<PathBuf>,
    client_key_file: Option<PathBuf>,
    service_account_key_file: Option<PathBuf>,
    tenant: Option<String>,
    authorize_url: Option<String>,
    token_url: Option<String>,
    device_authorization_url: Option<String>,
    scopes: Option<Vec<String>>,
    mechanism: Option<Mechanism>,
    sign_in_as: Option<String>,
}

/// Validated OAuth 2.0 settings of one account. Shared by its IMAP and SMTP endpoints.
#[derive(Debug)]
pub struct OAuth2 {
    /// The account's email address (the mailbox).
    pub account: String,
    /// Whose tokens these are: `sign_in_as` (the delegate of a shared mailbox), else the
    /// account itself. The token store's and the refresh lock's key, so several shared
    /// mailboxes of one delegate share one set of tokens and one refresh.
    pub identity: String,
    /// The preset used, if any (decides e.g. the client-credentials scope).
    pub provider: Option<Provider>,
    /// The application (client) id registered with the provider.
    pub client_id: String,
    /// How the client authenticates itself at the token endpoint (secret, certificate).
    pub client_auth: ClientAuth,
    /// A Google service account: tokens are had by a signed assertion for the account's
    /// mailbox, with no user sign-in (`None`: user-delegated or client credentials).
    pub service_account: Option<ServiceAccount>,
    /// Where the user approves access (authorization-code flow).
    pub authorize_url: Option<HttpUrl>,
    /// Where codes, refresh tokens and device codes are exchanged for tokens.
    pub token_url: HttpUrl,
    /// Where the device-code flow starts.
    pub device_authorization_url: Option<HttpUrl>,
    /// Scopes asked for in user-delegated flows.
    pub scopes: Vec<String>,
    /// Scopes asked for in the client-credentials flow (app-only access).
    pub client_credentials_scopes: Vec<String>,
    /// `None`: what the server offers (XOAUTH2 first, as Gmail and Microsoft document it).
    pub mechanism: Option<Mechanism>,
    /// Folder of the token store and its key.
    pub state_dir: PathBuf,
}

impl OAuth2 {
    /// Who signs in, for messages: the identity, and the mailbox when it is another one.
    pub fn signing_in(&self) -> String {
        if self.identity.eq_ignore_ascii_case(&self.account) {
            self.identity.clone()
        } else {
            format!("{} (for the mailbox {})", self.identity, self.account)
        }
    }
}

/// The OAuth identities seen so far while reading the accounts: accounts that sign in as the
/// same user share one token file, so they must ask the same client at the same endpoint.
#[derive(Default)]
pub(super) struct Identities(std::collections::HashMap<String, (String, String, String)>);

impl Identities {
    /// Notes `o` of account `name`; the complaint when an earlier account signs in as the same
    /// user with another client or token endpoint.
    pub(super) fn add(&mut self, name: &str, o: &OAuth2) -> Option<String> {
        let key = o.identity.to_ascii_lowercase();
        let here = (
            name.to_owned(),
            o.client_id.clone(),
            o.token_url.to_string(),
        );
        let (first, client, url) = self.0.entry(key).or_insert(here);
        (*client != o.client_id || *url != o.token_url.to_string()).then(|| {
            format!(
                "signs in as {} like {first}, but with another client_id or token endpoint; accounts that sign in as one user share its tokens, so they must use the same [account.oauth2] client",
                o.identity
            )
        })
    }
}

impl OAuth2File {
    /// Applies the preset, checks every endpoint and reads the client secret. Errors are
    /// [`FieldError`]s, like the endpoint tables'.
    pub fn validate(
        self,
        account: &str,
        base: &Path,
        state_dir: &Path,
    ) -> Result<OAuth2, FieldError> {
        let bad = FieldError::new;
        let service_account = self.service_account(base)?;
        let client_id = self.client_id(service_account.as_ref())?;
        let tenant = self.tenant()?;
        let preset = self
            .provider
            .map_or_else(IdentityPreset::default, |p| p.preset(&tenant));
        let url =
            |field: &str, given: Option<String>, preset: Option<String>| match given.or(preset) {
                None => Ok(None),
                Some(text) => HttpUrl::parse(&text)
                    .map_err(|e| e.to_string())
                    .and_then(|u| {
                        if u.https || u.is_loopback() {
                            Ok(u)
                        } else {
                            Err(format!(
                            "`{text}` must use https:// (plain http only on a loopback address)"
                        ))
                        }
                    })
                    .map(Some)
                    .map_err(|msg| bad(field, msg)),
            };
        let authorize_url = url(
            "authorize_url",
            self.authorize_url.clone(),
            preset.authorize,
        )?;
        // A service account key names its token endpoint: used when nothing else does.
        let from_key = (self.token_url.is_none() && preset.token.is_none())
            .then(|| service_account.as_ref().and_then(|k| k.token_uri.clone()))
            .flatten();
        let token_url = match from_key {
            Some(uri) => url("service_account_key_file", Some(uri), None)?,
            None => url("token_url", self.token_url.clone(), preset.token)?,
        }
        .ok_or_else(|| {
            bad(
                "token_url",
                "is missing: set provider = \"google\" | \"microsoft\" or give token_url".into(),
            )
        })?;
        let device_authorization_url = url(
            "device_authorization_url",
            self.device_authorization_url.clone(),
            preset.device,
        )?;
        let scopes: Vec<String> = match self.scopes.clone() {
            Some(s) => s,
            None => preset.scopes.iter().map(|s| (*s).to_owned()).collect(),
        };
        if let Some(s) = scopes
            .iter()
            .find(|s| s.is_empty() || s.contains(char::is_whitespace))
        {
            return Err(bad(
                "scopes",
                format!("`{s}` is not a scope (no spaces; one per list item)"),
            ));
        }
        let client_credentials_scopes = if preset.app_scopes.is_empty() {
            scopes.clone()
        } else {
            preset.app_scopes.iter().map(|s| (*s).to_owned()).collect()
        };
        if service_account.is_some() && scopes.is_empty() {
            return Err(bad(
                "scopes",
                "a service account needs the scope to ask for (e.g. [\"https://mail.google.com/\"])".into(),
            ));
        }
        let client_auth = self.client_auth(base)?;
        let identity = self.identity(account, service_account.is_some())?;
        Ok(OAuth2 {
            account: account.to_owned(),
            identity,
            provider: self.provider,
            client_id,
            client_auth,
            service_account,
            authorize_url,
            token_url,
            device_authorization_url,
            scopes,
            client_credentials_scopes,
            mechanism: self.mechanism,
            state_dir: state_dir.to_owned(),
        })
    }

    /// Whose tokens the account uses: `sign_in_as`, else the account itself.
    fn identity(&self, account: &str, service_account: bool) -> Result<String, FieldError> {
        let bad = FieldError::new;
        match &self.sign_in_as {
            None => Ok(account.to_owned()),
            // A service account's token is the mailbox's own (`sub`): no one signs in for it.
            Some(_) if service_account => Err(bad(
                "sign_in_as",
                "does not go with service_account_key_file (the service account asks for each mailbox's own token)".into(),
            )),
            Some(who) => {
                let who = who.trim();
                if !super::address::is_address(who) {
                    return Err(bad(
                        "sign_in_as",
                        format!("`{who}` is not an email address (the user who signs in for this mailbox)"),
                    ));
                }
                Ok(who.to_owned())
            }
        }
    }

    /// The client id as given, else (a service account) the key file's.
    fn client_id(&self, service_account: Option<&ServiceAccount>) -> Result<String, FieldError> {
        let given = self.client_id.as_deref().map(str::trim);
        match (given, service_account) {
            (Some(""), _) => Err(FieldError::new("client_id", "is empty".into())),
            (Some(id), _) => Ok(id.to_owned()),
            (None, Some(key)) => Ok(key
                .client_id
                .clone()
                .unwrap_or_else(|| key.client_email.clone())),
            (None, None) => Err(FieldError::new(
                "client_id",
                "is missing: the application (client) id registered with the provider".into(),
            )),
        }
    }

    /// Microsoft's tenant (`common` unless given); an error with any other provider.
    fn tenant(&self) -> Result<String, FieldError> {
        let bad = FieldError::new;
        Ok(match (&self.tenant, self.provider) {
            (Some(_), Some(Provider::Google) | None) => {
                return Err(bad(
                    "tenant",
                    "only applies to provider = \"microsoft\"".into(),
                ))
            }
            (Some(t), _) => {
                let ok = !t.is_empty()
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
                if !ok {
                    return Err(bad(
                    "tenant",
                    format!("`{t}` is not a tenant id or domain (e.g. \"common\", \"organizations\", \"contoso.onmicrosoft.com\")"),
                ));
                }
                t.clone()
            }
            (None, _) => "common".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use std::path::Path;

    const HASH: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

    fn parse(oauth: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "[[account]]\nemail = \"ola@example.no\"\nlocal_password_hash = \"{HASH}\"\n\n[account.imap]\nserver = \"outlook.office365.com:993\"\n\n[account.smtp]\nserver = \"smtp.office365.com:587\"\ntls = \"starttls\"\n\n[account.oauth2]\n{oauth}"
        );
        Config::parse(&text, Path::new("/etc/mailgate/m.toml"))
    }

    #[test]
    fn microsoft_preset_with_tenant_and_no_password() {
        let c = parse(
            "provider = \"microsoft\"\nclient_id = \"abc\"\ntenant = \"contoso.onmicrosoft.com\"\n",
        )
        .unwrap();
        assert_eq!(c.server.state_dir, Path::new("/etc/mailgate/state"));
        let a = &c.accounts[0];
        let o = a.imap.credential.oauth().unwrap();
        assert!(std::sync::Arc::ptr_eq(
            o,
            a.smtp.as_ref().unwrap().credential.oauth().unwrap()
        ));
        assert_eq!(
            o.token_url.to_string(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert!(o
            .device_authorization_url
            .as_ref()
            .unwrap()
            .path
            .ends_with("/devicecode"));
        assert_eq!(o.scopes.len(), 3);
        assert_eq!(
            o.client_credentials_scopes,
            ["https://outlook.office365.com/.default"]
        );
        assert!(a.imap.credential.password().is_none());
        assert_eq!(o.mechanism, None);
    }

    #[test]
    fn a_password_beside_oauth2_is_an_error_naming_it() {
        let text = format!(
            "[[account]]\nemail = \"ola@example.no\"\nlocal_password_hash = \"{HASH}\"\n\n[account.imap]\nserver = \"outlook.office365.com:993\"\npassword_env = \"X\"\n\n[account.oauth2]\nprovider = \"microsoft\"\nclient_id = \"abc\"\n"
        );
        let e = Config::parse(&text, Path::new("/etc/mailgate/m.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/mailgate/m.toml:7:1: account[0].imap.password_env: is not used with [account.oauth2]"),
            "{e}"
        );
    }

    #[test]
    fn google_preset_and_overrides() {
        let c = parse("provider = \"google\"\nclient_id = \"abc\"\nscopes = [\"x\"]\nmechanism = \"oauthbearer\"\ntoken_url = \"http://127.0.0.1:9/t\"\n").unwrap();
        let o = c.accounts[0].imap.credential.oauth().unwrap();
        assert_eq!(o.token_url.to_string(), "http://127.0.0.1:9/t");
        assert_eq!(
            o.authorize_url.as_ref().unwrap().host,
            "accounts.google.com"
        );
        assert!(o.device_authorization_url.is_none());
        assert_eq!(o.scopes, ["x"]);
        assert_eq!(o.mechanism, Some(crate::sasl::Mechanism::Oauthbearer));
    }

    #[test]
    fn errors_name_the_oauth2_field() {
        let e = parse("client_id = \"abc\"\ntoken_url = \"http://idp.example/token\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/mailgate/m.toml:14:1: account[0].oauth2.token_url:"),
            "{e}"
        );
        assert!(e.contains("https"), "{e}");
        let e = parse("client_id = \"abc\"\n").unwrap_err().to_string();
        assert!(
            e.contains("account[0].oauth2.token_url") && e.contains("missing"),
            "{e}"
        );
        let e = parse("provider = \"google\"\nclient_id = \"a\"\ntenant = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":15:1: account[0].oauth2.tenant:"), "{e}");
        let e = parse("provider = \"yahoo\"\nclient_id = \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("account[0].oauth2.provider"), "{e}");
        let e = parse("provider = \"google\"\nclient_id = \"a\"\nclient_secret_env = \"MAILGATE_TEST_UNSET\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("MAILGATE_TEST_UNSET"), "{e}");
        // Without oauth2 a password is still required.
        let text = format!("[[account]]\nemail = \"o@x.no\"\nlocal_password_hash = \"{HASH}\"\n[account.imap]\nserver = \"h:993\"\n");
        assert!(Config::parse(&text, Path::new("/m.toml")).is_err());
    }

    /// A shared mailbox: the tokens are the delegate's (the store's key), the IMAP user is the
    /// mailbox, SMTP authenticates as the delegate unless told otherwise.
    #[test]
    fn sign_in_as_a_delegate() {
        let c = parse(
            "provider = \"microsoft\"\nclient_id = \"abc\"\nsign_in_as = \"kari@example.no\"\n",
        )
        .unwrap();
        let a = &c.accounts[0];
        let o = a.imap.credential.oauth().unwrap();
        assert_eq!(
            (o.account.as_str(), o.identity.as_str()),
            ("ola@example.no", "kari@example.no")
        );
        assert_eq!(
            o.signing_in(),
            "kari@example.no (for the mailbox ola@example.no)"
        );
        assert_eq!(a.imap.username, "ola@example.no");
        assert_eq!(a.smtp.as_ref().unwrap().username, "kari@example.no");

        let text = format!("[[account]]\nemail = \"ola@example.no\"\nlocal_password_hash = \"{HASH}\"\n\n[account.imap]\nserver = \"outlook.office365.com:993\"\n\n[account.smtp]\nserver = \"smtp.office365.com:587\"\ntls = \"starttls\"\nusername = \"ola@example.no\"\n\n[account.oauth2]\nprovider = \"microsoft\"\nclient_id = \"abc\"\nsign_in_as = \"kari@example.no\"\n");
        let c = Config::parse(&text, Path::new("/m.toml")).unwrap();
        assert_eq!(
            c.accounts[0].smtp.as_ref().unwrap().username,
            "ola@example.no"
        );

        let e = parse("provider = \"microsoft\"\nclient_id = \"abc\"\nsign_in_as = \"kari\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("account[0].oauth2.sign_in_as: `kari` is not an email address"),
            "{e}"
        );
    }

    /// Accounts that sign in as one user share its tokens: another client for it is an error.
    #[test]
    fn one_identity_one_client() {
        let account = |email: &str, client: &str| {
            format!("[[account]]\nemail = \"{email}\"\nlocal_password_hash = \"{HASH}\"\n[account.imap]\nserver = \"outlook.office365.com:993\"\n[account.oauth2]\nprovider = \"microsoft\"\nclient_id = \"{client}\"\nsign_in_as = \"kari@example.no\"\n")
        };
        let same = account("a@example.no", "abc") + &account("b@example.no", "abc");
        assert!(Config::parse(&same, Path::new("/m.toml")).is_ok());
        let other = account("a@example.no", "abc") + &account("b@example.no", "xyz");
        let e = Config::parse(&other, Path::new("/m.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("account[1].oauth2: signs in as kari@example.no like account[0]"),
            "{e}"
        );
    }
}
