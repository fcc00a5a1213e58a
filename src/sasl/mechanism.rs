//! The SASL mechanisms that carry an OAuth 2.0 access token upstream (`mechanism` in
//! `[account.oauth2]`).

use crate::secret::Secret;
use serde::Deserialize;

/// Which SASL mechanism carries the access token upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mechanism {
    /// Google's and Microsoft's `XOAUTH2`.
    Xoauth2,
    /// RFC 7628 `OAUTHBEARER`.
    Oauthbearer,
}

impl Mechanism {
    /// The SASL mechanism name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Xoauth2 => "XOAUTH2",
            Mechanism::Oauthbearer => "OAUTHBEARER",
        }
    }

    /// The configured mechanism, else XOAUTH2 when the server offers it (Gmail and Microsoft
    /// 365 document it), else OAUTHBEARER.
    pub fn choose(configured: Option<Mechanism>, offers_xoauth2: bool) -> Mechanism {
        match configured {
            Some(m) => m,
            None if offers_xoauth2 => Mechanism::Xoauth2,
            None => Mechanism::Oauthbearer,
        }
    }

    /// The base64 SASL message carrying `token` for `user` to the server at `host`:`port`
    /// (OAUTHBEARER names them).
    pub fn message(self, user: &str, host: &str, port: u16, token: &Secret) -> Secret {
        match self {
            Mechanism::Xoauth2 => super::encode_xoauth2(user, token),
            Mechanism::Oauthbearer => super::encode_oauthbearer(user, host, port, token),
        }
    }
}
