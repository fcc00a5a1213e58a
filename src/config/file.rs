//! The file as written: structs that mirror the TOML one to one, so that serde rejects typos
//! and unknown keys with a position. Validation turns them into [`super::Config`].

use super::located::Located;
use super::oauth2::OAuth2File;
use super::TlsMode;
use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    #[serde(default)]
    pub(super) server: ServerFile,
    #[serde(default)]
    pub(super) account: Vec<Located<AccountFile>>,
    pub(super) metrics: Option<MetricsFile>,
    pub(super) store: Option<Located<StoreFile>>,
    pub(super) web: Option<Located<WebFile>>,
}

/// `[store]`: the shared store on PostgreSQL.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoreFile {
    pub(super) postgres: Option<String>,
    pub(super) postgres_env: Option<String>,
    pub(super) postgres_file: Option<PathBuf>,
    pub(super) key_file: Option<PathBuf>,
    pub(super) key_env: Option<String>,
    pub(super) ca_file: Option<PathBuf>,
}

/// The tables of a file of accounts for the shared store (`mailgate account add`): nothing
/// but `[[account]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AccountsFile {
    #[serde(default)]
    pub(super) account: Vec<Located<AccountFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MetricsFile {
    pub(super) listen: Spanned<String>,
    #[serde(default)]
    pub(super) per_account: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServerFile {
    pub(super) imap_listen: Option<Spanned<String>>,
    pub(super) smtp_listen: Option<Spanned<String>>,
    pub(super) imaps_listen: Option<Spanned<String>>,
    pub(super) smtps_listen: Option<Spanned<String>>,
    pub(super) tls: Option<Located<LocalTlsFile>>,
    pub(super) proxy_protocol: Option<Located<ProxyProtocolFile>>,
    pub(super) warm_sessions: Option<WarmSessionsFile>,
    pub(super) login_throttle_threshold: Option<u32>,
    pub(super) login_throttle_max_delay_ms: Option<u64>,
    pub(super) login_lockout_secs: Option<u64>,
    pub(super) max_message_size: Option<u64>,
    pub(super) max_sessions: Option<usize>,
    pub(super) max_preauth_sessions: Option<Spanned<usize>>,
    pub(super) max_connections_per_ip: Option<usize>,
    pub(super) preauth_timeout_secs: Option<u64>,
    pub(super) preauth_deadline_secs: Option<u64>,
    pub(super) max_bad_commands: Option<u32>,
    pub(super) idle_timeout_secs: Option<Spanned<u64>>,
    pub(super) auth_failure_delay_ms: Option<u64>,
    pub(super) login_cache_secs: Option<u64>,
    pub(super) max_auth_failures: Option<u32>,
    pub(super) connect_timeout_secs: Option<u64>,
    pub(super) upstream_timeout_secs: Option<u64>,
    pub(super) oauth_upkeep_secs: Option<u64>,
    pub(super) state_dir: Option<PathBuf>,
    pub(super) resolver: Option<Spanned<String>>,
    pub(super) allow_no_accounts: Option<bool>,
    pub(super) allow_core_dumps: Option<bool>,
}

/// `[server.tls]`: the certificate mailgate presents to its own clients.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LocalTlsFile {
    pub(super) cert: Spanned<String>,
    pub(super) key: Spanned<String>,
}

/// `[server.proxy_protocol]`: the listeners a proxy in front of mailgate speaks to with a
/// PROXY header, and where that proxy connects from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProxyProtocolFile {
    pub(super) listeners: Spanned<Vec<Spanned<String>>>,
    pub(super) trusted: Spanned<Vec<Spanned<String>>>,
    pub(super) header_timeout_ms: Option<Spanned<u64>>,
}

/// `[server.warm_sessions]`: upstream IMAP connections kept for the account's next login.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WarmSessionsFile {
    pub(super) keep_secs: Option<Spanned<u64>>,
    pub(super) per_account: Option<Spanned<usize>>,
    pub(super) max_total: Option<Spanned<usize>>,
    pub(super) pre_open_secs: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AccountFile {
    pub(super) email: String,
    pub(super) local_password_hash: String,
    #[serde(default)]
    pub(super) aliases: Vec<String>,
    pub(super) provider: Option<Spanned<String>>,
    pub(super) imap: Option<Located<EndpointFile>>,
    pub(super) smtp: Option<Located<EndpointFile>>,
    pub(super) oauth2: Option<Spanned<OAuth2File>>,
    pub(super) folders: Option<Located<FoldersFile>>,
}

/// `[account.folders]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FoldersFile {
    pub(super) client: Option<String>,
    pub(super) sent: Option<String>,
    pub(super) drafts: Option<String>,
    pub(super) trash: Option<String>,
    pub(super) junk: Option<String>,
    pub(super) archive: Option<String>,
    pub(super) sent_copy: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EndpointFile {
    pub(super) server: Option<String>,
    pub(super) host: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) tls: Option<TlsMode>,
    #[serde(default)]
    pub(super) allow_plaintext: bool,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) tls_server_name: Option<String>,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) password_env: Option<String>,
    pub(super) password_file: Option<PathBuf>,
}

impl EndpointFile {
    /// The password key this table sets, if any.
    pub(super) fn password_key(&self) -> Option<&'static str> {
        if self.password.is_some() {
            Some("password")
        } else if self.password_env.is_some() {
            Some("password_env")
        } else if self.password_file.is_some() {
            Some("password_file")
        } else {
            None
        }
    }
}

/// `[web]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WebFile {
    pub(super) listen: Spanned<String>,
    pub(super) tls: Option<Located<LocalTlsFile>>,
    pub(super) operator_password_hash: Option<Spanned<String>>,
    pub(super) public_url: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) oauth: Vec<Located<WebOAuthFile>>,
}

/// `[[web.oauth]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WebOAuthFile {
    pub(super) provider: Option<crate::provider::OAuthProvider>,
    pub(super) authorize_url: Option<String>,
    pub(super) token_url: Option<String>,
    #[serde(default)]
    pub(super) domains: Vec<String>,
    pub(super) client_id: String,
    pub(super) client_secret_env: Option<String>,
    pub(super) tenant: Option<String>,
    #[serde(default)]
    pub(super) scopes: Vec<String>,
}
