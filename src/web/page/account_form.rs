//! The fields of the account forms read in setup's terms: `#advanced` and `#edit` (servers
//! typed by hand), and the found page's `#password-form` and `#oauth`, which carry what
//! discovery found as hidden fields — a preset's id (its servers then come from the built-in
//! table) or the servers themselves. Nothing secret travels in a hidden field. Servers go
//! through [`setup::manual`]; what is wrong is a typed [`FormError`], said in the page's words.

use super::advanced::Prefill;
use super::fields::MAX_EMAIL;
use crate::discover::{self, Discovery, Source};
use crate::net::TlsMode;
use crate::secret::Secret;
use crate::setup::{self, AddressError, Manual, ManualError, Which};
use crate::web::lang::Text;
use serde::{Deserialize, Serialize};

/// Every field an account form may have (absent ones empty). Serialized (for a sign-in in
/// progress) without the passwords.
#[derive(Deserialize, Serialize, Default)]
pub struct AccountForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub imap_server: String,
    #[serde(default)]
    pub imap_security: String,
    #[serde(default)]
    pub smtp_server: String,
    #[serde(default)]
    pub smtp_security: String,
    #[serde(default)]
    pub username: String,
    /// The preset the found page used (its id); its servers are the built-in table's.
    #[serde(default)]
    pub preset: String,
    #[serde(default, skip_serializing)]
    password: String,
    #[serde(default, skip_serializing)]
    local_password: String,
}

/// What is wrong with a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// Not an email address.
    NotAnAddress,
    /// A server is not `host:port`.
    Server(ManualError),
    /// A security choice that is not one of the list's.
    Security(Which),
    /// No password where one is needed.
    NoPassword,
}

impl AccountForm {
    /// The address, trimmed.
    pub fn email(&self) -> &str {
        self.email.trim()
    }

    /// Takes the upstream password out of the form (`None` when empty).
    pub fn take_password(&mut self) -> Option<Secret> {
        let p = std::mem::take(&mut self.password);
        (!p.is_empty()).then(|| Secret::new(p))
    }

    /// Takes the local password out of the form (`None` when empty).
    pub fn take_local_password(&mut self) -> Option<Secret> {
        let p = std::mem::take(&mut self.local_password);
        (!p.is_empty()).then(|| Secret::new(p))
    }

    /// The address checked, and the servers: the named preset's, or the typed ones.
    pub fn discovery(&self) -> Result<Discovery, FormError> {
        let email = self.email();
        if email.len() > MAX_EMAIL || discover::domain_of(email).is_none() {
            return Err(FormError::NotAnAddress);
        }
        if let Some(p) = crate::provider::by_id(&self.preset).filter(|_| !self.preset.is_empty()) {
            return Ok(discover::from_preset(email, p, Source::Provider(p.id)));
        }
        let imap_tls = mode(&self.imap_security, &self.imap_server, Which::Imap)?;
        let smtp = match self.smtp_server.trim() {
            "" => None,
            s => Some((s, mode(&self.smtp_security, s, Which::Smtp)?)),
        };
        let m = Manual {
            imap: &self.imap_server,
            imap_tls,
            smtp,
            username: Some(&self.username),
        };
        setup::manual(email, &m).map_err(FormError::Server)
    }

    /// The form as typed, to show it again (never the passwords).
    pub fn prefill(&self) -> Prefill {
        let mode = |word: &str| setup::security(word);
        Prefill {
            email: self.email().to_owned(),
            imap_server: self.imap_server.trim().to_owned(),
            imap_security: mode(&self.imap_security),
            smtp_server: self.smtp_server.trim().to_owned(),
            smtp_security: mode(&self.smtp_security),
            username: self.username.trim().to_owned(),
        }
    }
}

/// The security chosen for `server`; empty: the port's usual one.
fn mode(word: &str, server: &str, which: Which) -> Result<TlsMode, FormError> {
    if word.trim().is_empty() {
        let port = setup::host_port(server).map(|(_, p)| p).unwrap_or(993);
        return Ok(setup::default_security(port));
    }
    setup::security(word).ok_or(FormError::Security(which))
}

/// `e` in the page's words.
pub fn sentence(t: &Text, e: &FormError) -> String {
    let server = |which: &Which| match which {
        Which::Imap => t.imap_server_label,
        Which::Smtp => t.smtp_server_label,
    };
    match e {
        FormError::NotAnAddress => t.not_an_address.to_owned(),
        FormError::NoPassword => t.password_missing.to_owned(),
        FormError::Security(which) => format!("{}: {}", server(which), t.bad_security),
        FormError::Server(ManualError { which, error }) => {
            let why = match error {
                AddressError::NotHostPort(_) => t.address_not_host_port,
                AddressError::BadPort(_) => t.address_bad_port,
                AddressError::NoHost(_) => t.address_no_host,
            };
            format!("{}: {why}", server(which))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(imap: &str, security: &str) -> AccountForm {
        AccountForm {
            email: "ola@example.test".into(),
            imap_server: imap.into(),
            imap_security: security.into(),
            ..AccountForm::default()
        }
    }

    #[test]
    fn typed_errors_and_servers() {
        let e = form("imap.example.test", "tls").discovery().unwrap_err();
        assert!(matches!(
            e,
            FormError::Server(ManualError {
                which: Which::Imap,
                ..
            })
        ));
        assert_eq!(
            sentence(&crate::web::lang::EN, &e),
            format!(
                "{}: {}",
                crate::web::lang::EN.imap_server_label,
                crate::web::lang::EN.address_not_host_port
            )
        );
        assert_eq!(
            form("h:143", "ssh").discovery().unwrap_err(),
            FormError::Security(Which::Imap)
        );
        let d = form("h:143", "").discovery().unwrap();
        assert_eq!(
            (d.imap.port, d.imap.tls, d.smtp.is_none()),
            (143, TlsMode::Starttls, true)
        );
        let mut gmail = form("", "");
        gmail.preset = "gmail".into();
        assert!(gmail.discovery().unwrap().preset.is_some());
        let mut bad = form("h:1", "none");
        bad.email = "nope".into();
        assert_eq!(bad.discovery().unwrap_err(), FormError::NotAnAddress);
    }
}
