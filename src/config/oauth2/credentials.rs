//! How the client proves itself at the token endpoint (`client_secret_*`, or
//! `client_certificate_file` + `client_key_file`), and the app-only identity of a Google
//! service account (`service_account_key_file`). Keys and certificates are read and checked
//! here, at load (a reload reads them again), so that a bad file is an error at its line.

use super::OAuth2File;
use crate::config::locate::FieldError;
use crate::jwt::{ClientCertificate, ServiceAccount};
use crate::provider::OAuthProvider as Provider;
use crate::secret::Secret;
use std::path::Path;

/// How the client authenticates itself in token requests.
#[derive(Debug, Default)]
pub enum ClientAuth {
    /// A public client: the client id only.
    #[default]
    None,
    /// `client_secret` in the form (`client_secret_post`).
    Secret(Secret),
    /// A signed client assertion, new for each request (RFC 7523 section 2.2).
    Certificate(Box<ClientCertificate>),
}

impl ClientAuth {
    /// Whether the client is confidential (has a secret or a certificate).
    pub fn is_confidential(&self) -> bool {
        !matches!(self, ClientAuth::None)
    }
}

impl OAuth2File {
    /// The client authentication: at most one of the client secret's two sources or the
    /// certificate with its key (both files or neither).
    pub(super) fn client_auth(&self, base: &Path) -> Result<ClientAuth, FieldError> {
        let bad = FieldError::new;
        let secret = self.client_secret_env.is_some() || self.client_secret_file.is_some();
        let (cert, key) = match (&self.client_certificate_file, &self.client_key_file) {
            (None, None) => {
                return Ok(self
                    .client_secret(base)?
                    .map_or(ClientAuth::None, ClientAuth::Secret))
            }
            (Some(_), None) => {
                return Err(bad(
                    "client_certificate_file",
                    "needs client_key_file, the certificate's private key".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(bad(
                    "client_key_file",
                    "needs client_certificate_file, the certificate of this key".into(),
                ))
            }
            (Some(c), Some(k)) => (base.join(c), base.join(k)),
        };
        if secret {
            return Err(bad(
                "client_certificate_file",
                "give either a client secret or a client certificate, not both".into(),
            ));
        }
        ClientCertificate::load(&cert, &key)
            .map(|c| ClientAuth::Certificate(Box::new(c)))
            .map_err(|e| {
                // The error names the file it is about.
                let field = if e.path() == cert {
                    "client_certificate_file"
                } else {
                    "client_key_file"
                };
                bad(field, e.to_string())
            })
    }

    /// The service account of `service_account_key_file`, if given: only without a client
    /// secret or certificate (the key is the credential), and not with the Microsoft preset.
    pub(super) fn service_account(
        &self,
        base: &Path,
    ) -> Result<Option<ServiceAccount>, FieldError> {
        let Some(file) = &self.service_account_key_file else {
            return Ok(None);
        };
        let bad = |message: &str| FieldError::new("service_account_key_file", message.into());
        if self.client_secret_env.is_some()
            || self.client_secret_file.is_some()
            || self.client_certificate_file.is_some()
            || self.client_key_file.is_some()
        {
            return Err(bad("the service account key is the credential: remove client_secret_env, client_secret_file, client_certificate_file and client_key_file"));
        }
        if self.provider == Some(Provider::Microsoft) && self.token_url.is_none() {
            return Err(bad("is for Google service accounts (provider = \"google\"); Microsoft 365 app-only access uses client_certificate_file and client_key_file"));
        }
        ServiceAccount::load(&base.join(file))
            .map(Some)
            .map_err(|e| FieldError::new("service_account_key_file", e.to_string()))
    }

    /// The client secret from `client_secret_env` or `client_secret_file`, if one is given.
    fn client_secret(&self, base: &Path) -> Result<Option<Secret>, FieldError> {
        let bad = FieldError::new;
        Ok(match (&self.client_secret_env, &self.client_secret_file) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "client_secret_env",
                    "give only one of client_secret_env and client_secret_file".into(),
                ))
            }
            (Some(var), None) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Some(Secret::new(v)),
                _ => {
                    return Err(bad(
                        "client_secret_env",
                        format!("environment variable `{var}` is not set"),
                    ))
                }
            },
            (None, Some(file)) => {
                let file = base.join(file);
                Some(crate::secret::read_file(&file).map_err(|e| {
                    bad(
                        "client_secret_file",
                        format!("cannot read {}: {e}", file.display()),
                    )
                })?)
            }
            (None, None) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ClientAuth;
    use crate::config::Config;
    use crate::jwt::tests::{certificate, openssl, rsa_key};
    use std::path::Path;

    const HASH: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

    /// The config of one account with `oauth` as its `[account.oauth2]` table (its first key
    /// on line 8), in `dir`: the error, or the settings.
    fn parse(dir: &Path, oauth: &str) -> Result<std::sync::Arc<crate::config::OAuth2>, String> {
        let text = format!(
            "[[account]]\nemail = \"ola@example.no\"\nlocal_password_hash = \"{HASH}\"\n\n[account.imap]\nserver = \"imap.gmail.com:993\"\n[account.oauth2]\n{oauth}"
        );
        let c = Config::parse(&text, &dir.join("m.toml")).map_err(|e| e.to_string())?;
        Ok(c.accounts[0].imap.credential.oauth().unwrap().clone())
    }

    /// A service account key file `sa.json` in `dir` with this `token_uri`.
    fn key_file(dir: &Path, token_uri: &str) {
        let key = std::fs::read_to_string(rsa_key(dir, "sa.pem", 2048)).unwrap();
        let json = serde_json::json!({
            "type": "service_account", "client_email": "gate@p.iam.gserviceaccount.com",
            "client_id": "1093", "private_key_id": "k1", "private_key": key,
            "token_uri": token_uri,
        });
        std::fs::write(dir.join("sa.json"), json.to_string()).unwrap();
    }

    #[test]
    fn service_account_keys() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        key_file(d, "http://127.0.0.1:9/token");
        let o = parse(
            d,
            "provider = \"google\"\nservice_account_key_file = \"sa.json\"\n",
        )
        .unwrap();
        assert_eq!(o.client_id, "1093");
        assert_eq!(
            o.token_url.to_string(),
            "https://oauth2.googleapis.com/token"
        );
        assert_eq!(o.scopes, ["https://mail.google.com/"]);
        assert!(matches!(o.client_auth, ClientAuth::None));
        assert_eq!(
            o.service_account.as_ref().unwrap().client_email,
            "gate@p.iam.gserviceaccount.com"
        );
        // Without a preset or token_url, the key's token_uri; scopes must be given.
        let o = parse(
            d,
            "client_id = \"x\"\nservice_account_key_file = \"sa.json\"\nscopes = [\"s\"]\n",
        )
        .unwrap();
        assert_eq!(o.token_url.to_string(), "http://127.0.0.1:9/token");
        assert_eq!(o.client_id, "x");
        let e = parse(d, "service_account_key_file = \"sa.json\"\n").unwrap_err();
        assert!(e.contains(":7:1: account[0].oauth2.scopes:"), "{e}");

        let errors = [
            ("provider = \"google\"\nclient_secret_env = \"X\"\nservice_account_key_file = \"sa.json\"\n", ":10:1: account[0].oauth2.service_account_key_file: the service account key is the credential"),
            ("provider = \"microsoft\"\nservice_account_key_file = \"sa.json\"\n", ":9:1: account[0].oauth2.service_account_key_file: is for Google service accounts"),
            ("provider = \"google\"\nservice_account_key_file = \"none.json\"\n", "none.json"),
            ("provider = \"google\"\nservice_account_key_file = \"sa.pem\"\n", "is not a Google service account key: not JSON"),
        ];
        for (oauth, want) in errors {
            let e = parse(d, oauth).unwrap_err();
            assert!(e.contains(want), "{oauth}: {e}");
            assert!(!e.contains("PRIVATE KEY"), "{e}");
        }
        key_file(d, "http://idp.example/token");
        let e = parse(
            d,
            "service_account_key_file = \"sa.json\"\nscopes = [\"s\"]\n",
        )
        .unwrap_err();
        assert!(e.contains(":8:1: account[0].oauth2.service_account_key_file: `http://idp.example/token` must use https://"), "{e}");
    }

    #[test]
    fn client_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let key = rsa_key(d, "k.pem", 2048);
        certificate(d, &key, "c.pem");
        certificate(d, &rsa_key(d, "k2.pem", 2048), "c2.pem");
        openssl(d, &["genpkey", "-algorithm", "ED25519", "-out", "ed.pem"]);
        let base = "provider = \"microsoft\"\nclient_id = \"app\"\n";
        let o = parse(
            d,
            &format!("{base}client_certificate_file = \"c.pem\"\nclient_key_file = \"k.pem\"\n"),
        )
        .unwrap();
        let ClientAuth::Certificate(cert) = &o.client_auth else {
            panic!("{:?}", o.client_auth)
        };
        assert_eq!(cert.x5t.len(), 27);
        assert!(o.client_auth.is_confidential() && o.service_account.is_none());

        let errors = [
            ("client_certificate_file = \"c.pem\"\n", ":10:1: account[0].oauth2.client_certificate_file: needs client_key_file"),
            ("client_key_file = \"k.pem\"\n", ":10:1: account[0].oauth2.client_key_file: needs client_certificate_file"),
            ("client_secret_env = \"HOME\"\nclient_certificate_file = \"c.pem\"\nclient_key_file = \"k.pem\"\n", ":11:1: account[0].oauth2.client_certificate_file: give either"),
            ("client_certificate_file = \"c2.pem\"\nclient_key_file = \"k.pem\"\n", ":10:1: account[0].oauth2.client_certificate_file: "),
            ("client_certificate_file = \"c.pem\"\nclient_key_file = \"ed.pem\"\n", ":11:1: account[0].oauth2.client_key_file: "),
            ("client_certificate_file = \"k.pem\"\nclient_key_file = \"k.pem\"\n", "has no certificate"),
        ];
        for (oauth, want) in errors {
            let e = parse(d, &format!("{base}{oauth}")).unwrap_err();
            assert!(e.contains(want), "{oauth}: {e}");
            assert!(!e.contains("PRIVATE KEY"), "{e}");
        }
    }
}
