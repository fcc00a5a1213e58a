//! The configuration file: TOML schema (serde, `deny_unknown_fields`) → validated [`Config`].
//!
//! Two layers on purpose. The `*File` structs mirror the file one to one, so that serde rejects
//! typos and unknown keys with a position. [`Config`] is what the rest of the program sees:
//! every default applied, every path resolved against the config file's folder, every
//! credential read (from the file, the environment or a secret file) and every TLS client
//! configuration built — so a config that loads is a config that can run, and a broken one is
//! reported at start-up (or on reload) instead of at the first login.
//!
//! Errors name the file, line, column and the field path (`account[0].imap.tls`), the way an
//! operator wants to read them.

use crate::net::{tls, Target};
use crate::oauth::settings::{OAuth2, OAuth2File};
use crate::secret::Secret;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;

/// Where `mailgate run` looks when no `--config` is given.
pub const DEFAULT_PATH: &str = "conf/mailgate.toml";

/// A configuration file that cannot be used, with the place in it that says why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{path}: cannot read the config file: {error}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error (in the message, not a `source`: an error chain would print it twice).
        error: std::io::Error,
    },
    /// An account without servers in the file whose servers could not be discovered at start-up.
    #[error("{path}: account {email}: cannot discover its servers: {reason}\n  set them in the file: [account.imap] server = \"host:port\" and tls (and [account.smtp]), or provider = \"…\" (one of {known})")]
    Discovery {
        /// The config file.
        path: PathBuf,
        /// The account.
        email: String,
        /// What discovery tried.
        reason: String,
        /// The preset names.
        known: String,
    },
    /// The file holds nothing but blanks and comments: an editor's half-written save or a full
    /// disk, never a configuration.
    #[error(
        "{path}: the config file is empty; it was not read (a half-written save or a full disk?)"
    )]
    Empty {
        /// The config file.
        path: PathBuf,
    },
    /// The file has no `[[account]]` table and does not say that this is meant: a file that
    /// lost its accounts would make every login fail.
    #[error("no accounts in {path}: every login would fail, so the file is refused (a file cut short by a half-written save or a full disk looks like this); add an [[account]] (`mailgate setup`), or set `allow_no_accounts = true` in [server] to run without accounts")]
    NoAccounts {
        /// The config file.
        path: PathBuf,
    },
    /// The file is not valid TOML, or does not match the schema, or a value is unusable.
    #[error("{path}:{line}:{column}: {field}: {message}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the offending value.
        line: usize,
        /// 1-based column of the offending value.
        column: usize,
        /// Dotted field path, e.g. `account[0].imap.tls`.
        field: String,
        /// What is wrong, in words.
        message: String,
    },
}

pub use crate::net::TlsMode;

// ---------------------------------------------------------------------------------------------
// The file as written.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    server: ServerFile,
    #[serde(default)]
    account: Vec<Spanned<AccountFile>>,
    metrics: Option<MetricsFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsFile {
    listen: Spanned<String>,
    #[serde(default)]
    per_account: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerFile {
    imap_listen: Option<Spanned<String>>,
    smtp_listen: Option<Spanned<String>>,
    imaps_listen: Option<Spanned<String>>,
    smtps_listen: Option<Spanned<String>>,
    tls: Option<Spanned<LocalTlsFile>>,
    login_throttle_threshold: Option<u32>,
    login_throttle_max_delay_ms: Option<u64>,
    login_lockout_secs: Option<u64>,
    max_message_size: Option<u64>,
    max_sessions: Option<usize>,
    max_preauth_sessions: Option<Spanned<usize>>,
    max_connections_per_ip: Option<usize>,
    preauth_timeout_secs: Option<u64>,
    preauth_deadline_secs: Option<u64>,
    max_bad_commands: Option<u32>,
    idle_timeout_secs: Option<Spanned<u64>>,
    auth_failure_delay_ms: Option<u64>,
    login_cache_secs: Option<u64>,
    max_auth_failures: Option<u32>,
    connect_timeout_secs: Option<u64>,
    upstream_timeout_secs: Option<u64>,
    state_dir: Option<PathBuf>,
    resolver: Option<Spanned<String>>,
    allow_no_accounts: Option<bool>,
    allow_core_dumps: Option<bool>,
}

/// `[server.tls]`: the certificate mailgate presents to its own clients.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LocalTlsFile {
    cert: Spanned<String>,
    key: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountFile {
    email: String,
    local_password_hash: String,
    #[serde(default)]
    aliases: Vec<String>,
    provider: Option<Spanned<String>>,
    imap: Option<Spanned<EndpointFile>>,
    smtp: Option<Spanned<EndpointFile>>,
    oauth2: Option<Spanned<OAuth2File>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointFile {
    server: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    tls: Option<TlsMode>,
    #[serde(default)]
    allow_plaintext: bool,
    ca_file: Option<PathBuf>,
    tls_server_name: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
}

impl EndpointFile {
    /// The password key this table sets, if any.
    fn password_key(&self) -> Option<&'static str> {
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

// ---------------------------------------------------------------------------------------------
// The validated configuration.

/// A loaded, validated configuration. Shared as `Arc<Config>`; a reload builds a new one.
#[derive(Debug)]
pub struct Config {
    /// The file this came from (for reload and messages).
    pub path: PathBuf,
    /// Listener and limit settings.
    pub server: ServerConfig,
    /// Accounts in file order.
    pub accounts: Vec<Arc<Account>>,
    /// The Prometheus endpoint; `None` when the file has no `[metrics]` table.
    pub metrics: Option<MetricsConfig>,
    /// Lower-cased login name → index into `accounts`.
    by_login: HashMap<String, usize>,
    /// Accounts left out because their servers need network discovery (no servers in the file
    /// and no preset for the domain); [`Config::load_discovering`] fills them in.
    pub undiscovered: Vec<String>,
}

/// `[server]`: listeners, limits and time-outs, defaults applied.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the IMAP listener binds.
    pub imap_listen: SocketAddr,
    /// Where the SMTP submission listener binds.
    pub smtp_listen: SocketAddr,
    /// Where the implicit-TLS IMAP listener binds (`imaps_listen`), if any; needs `tls`.
    pub imaps_listen: Option<SocketAddr>,
    /// Where the implicit-TLS SMTP submission listener binds (`smtps_listen`), if any.
    pub smtps_listen: Option<SocketAddr>,
    /// `[server.tls]`: the certificate for STARTTLS and the implicit-TLS listeners. Built at
    /// load, so a reload (SIGHUP) picks up a renewed certificate for new sessions.
    pub tls: Option<LocalTls>,
    /// Failed-login throttling across connections.
    pub throttle: ThrottleConfig,
    /// Largest message accepted for submission, in bytes (advertised as SIZE).
    pub max_message_size: u64,
    /// Sessions served at once (all protocols); one more is greeted with BYE and closed.
    pub max_sessions: usize,
    /// Sessions that have not logged in yet, at most; a new connection over it closes the
    /// oldest of them (as Dovecot's login processes do), so they never hold every slot.
    pub max_preauth_sessions: usize,
    /// Connections from one IP address at once (loopback included); 0: no limit.
    pub max_connections_per_ip: usize,
    /// How long a client may stay silent before logging in (per read).
    pub preauth_timeout: Duration,
    /// How long the whole pre-login phase may last, however active the client is.
    pub preauth_deadline: Duration,
    /// Invalid or refused commands before login; one more closes the connection.
    pub max_bad_commands: u32,
    /// How long a logged-in client may stay silent (RFC 9051 5.4: at least 30 minutes).
    pub idle_timeout: Duration,
    /// Delay before answering a failed login, the same for unknown users and bad passwords.
    pub auth_failure_delay: Duration,
    /// How long a verified local password is remembered (keyed hash only), so that a client
    /// that logs in every few seconds pays argon2 once; zero turns the cache off.
    pub login_cache: Duration,
    /// Failed logins on one connection before it is closed.
    pub max_auth_failures: u32,
    /// TCP connect (per address) and TLS handshake time-out towards the upstream.
    pub connect_timeout: Duration,
    /// How long the upstream may take to answer one command before login completes.
    pub upstream_timeout: Duration,
    /// Where mailgate keeps state it writes itself (OAuth tokens), apart from the config file,
    /// which mailgate never rewrites. Default: `state` beside the config file.
    pub state_dir: PathBuf,
    /// The DNS server for discovery and upstream host names (`resolver = "ADDR[:PORT]"`, like
    /// nginx's `resolver`); `None`: /etc/resolv.conf and the system's own lookup.
    pub resolver: Option<SocketAddr>,
    /// Whether the process may write a core dump (`allow_core_dumps`, default false): a dump
    /// holds provider passwords and tokens. Read at start-up only.
    pub allow_core_dumps: bool,
}

/// The local certificate and the rustls server configuration made from it.
#[derive(Debug, Clone)]
pub struct LocalTls {
    /// The certificate chain file (resolved path).
    pub cert: PathBuf,
    /// The private key file (resolved path).
    pub key: PathBuf,
    /// Ready to accept handshakes.
    pub config: Arc<rustls::ServerConfig>,
}

/// Login throttling settings (`login_throttle_*`, `login_lockout_secs`); see `throttle`.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    /// Distinct failed passwords from one client IP for one login name before answers slow
    /// down; the account as a whole (all IPs) gets [`ThrottleConfig::ACCOUNT_FACTOR`] times
    /// as many. Zero turns throttling off.
    pub threshold: u32,
    /// The longest delay a throttled failure waits before its answer.
    pub max_delay: Duration,
    /// How long a locked-out client (or account) is refused, and how long failures are
    /// remembered without a new one.
    pub lockout: Duration,
}

impl ThrottleConfig {
    /// The per-account threshold is this many times the per-IP one: high enough that one
    /// misbehaving client (which locks out only its own IP) does not lock out everyone.
    pub const ACCOUNT_FACTOR: u32 = 4;
}

/// `[metrics]`: where Prometheus scrapes.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Address of the `/metrics` HTTP listener.
    pub listen: SocketAddr,
    /// Whether to add per-account series (one per account and label value).
    pub per_account: bool,
}

/// One mailbox served through the gateway.
#[derive(Debug)]
pub struct Account {
    /// The address the client logs in with (as written in the file).
    pub email: String,
    /// Other addresses this account may send as.
    pub aliases: Vec<String>,
    /// argon2 PHC string of the local password.
    pub local_password_hash: String,
    /// The upstream IMAP server.
    pub imap: Endpoint,
    /// The upstream SMTP submission server; `None` when the account cannot send.
    pub smtp: Option<Endpoint>,
    /// Where the servers came from: `config`, or a preset / MX / autoconfig / guess (for the
    /// start-up log).
    pub source: String,
    /// `[account.smtp]` names no password of its own and uses `[account.imap]`'s (so advice
    /// about a refused SMTP password points at `[account.imap]`).
    pub smtp_password_inherited: bool,
}

/// An upstream server plus everything needed to log in there.
#[derive(Debug)]
pub struct Endpoint {
    /// Where the server is and how the connection is secured.
    pub target: Target,
    /// User name presented upstream.
    pub username: String,
    /// What proves the account upstream.
    pub credential: Credential,
}

/// How an account logs in upstream.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A stored password or app password.
    Password(Secret),
    /// OAuth 2.0 settings (`[account.oauth2]`): a token is had for each login; the same for
    /// the account's IMAP and SMTP endpoints.
    OAuth2(Arc<OAuth2>),
}

impl Credential {
    /// The OAuth 2.0 settings, if the account logs in with tokens.
    pub fn oauth(&self) -> Option<&Arc<OAuth2>> {
        match self {
            Credential::OAuth2(o) => Some(o),
            Credential::Password(_) => None,
        }
    }

    /// The stored password, if the account logs in with one.
    pub fn password(&self) -> Option<&Secret> {
        match self {
            Credential::Password(p) => Some(p),
            Credential::OAuth2(_) => None,
        }
    }
}

impl Endpoint {
    /// `host:port`, for logs and messages.
    pub fn address(&self) -> String {
        self.target.address()
    }
}

/// The config file's text.
fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_owned(),
        error,
    })
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read(path)?;
        Config::parse(&text, path)
    }

    /// Reads the file and discovers the servers of accounts that need the network (`mailgate
    /// run` at start-up and on SIGHUP). A failure names the account and what to set, and the
    /// whole load fails: like nginx, which refuses a configuration whose upstream host does not
    /// resolve, a gateway that silently dropped an account would leave its users with
    /// "authentication failed" and no hint; at reload the old configuration stays.
    pub async fn load_discovering(path: &Path) -> Result<Config, ConfigError> {
        let text = read(path)?;
        let first = Config::parse(&text, path)?;
        if first.undiscovered.is_empty() {
            return Ok(first);
        }
        let opts = crate::discover::Options {
            resolver: crate::net::dns::Resolver::new(first.server.resolver),
            timeout: first.server.connect_timeout.min(Duration::from_secs(10)),
            ca_file: None,
            network: true,
        };
        let mut found = HashMap::new();
        for email in &first.undiscovered {
            let d = crate::discover::discover(email, &opts).await.map_err(|e| {
                ConfigError::Discovery {
                    path: path.to_owned(),
                    email: email.clone(),
                    reason: e.to_string(),
                    known: crate::provider::known_ids(),
                }
            })?;
            found.insert(email.to_ascii_lowercase(), d);
        }
        Config::parse_with(&text, path, &found)
    }

    /// Validates `text` as if it had been read from `path` (relative paths resolve against
    /// `path`'s folder; environment variables are read now). No network: accounts that need
    /// discovery are listed in [`Config::undiscovered`] and left out.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        Config::parse_with(text, path, &HashMap::new())
    }

    /// [`Config::parse`] with the servers discovered for some accounts (by lower-case email).
    /// A file without `[[account]]` tables is refused unless `[server]` says
    /// `allow_no_accounts = true`, and an empty one always: both are what a half-written save
    /// or a full disk leaves, and serving them would fail every login.
    pub fn parse_with(
        text: &str,
        path: &Path,
        discovered: &HashMap<String, crate::discover::Discovery>,
    ) -> Result<Config, ConfigError> {
        Config::parse_inner(text, path, discovered, true)
    }

    /// The `[server]` settings of `text`, whether or not it has accounts (`mailgate setup`
    /// reads them before the file has its first account).
    pub fn parse_server(text: &str, path: &Path) -> Result<ServerConfig, ConfigError> {
        Config::parse_inner(text, path, &HashMap::new(), false).map(|c| c.server)
    }

    /// [`Config::parse_server`] of the file at `path` (`mailgate throttle` needs only
    /// `state_dir`, whatever the accounts).
    pub fn load_server(path: &Path) -> Result<ServerConfig, ConfigError> {
        let text = read(path)?;
        Config::parse_server(&text, path)
    }

    fn parse_inner(
        text: &str,
        path: &Path,
        discovered: &HashMap<String, crate::discover::Discovery>,
        need_accounts: bool,
    ) -> Result<Config, ConfigError> {
        if need_accounts && text.trim().is_empty() {
            return Err(ConfigError::Empty {
                path: path.to_owned(),
            });
        }
        let err_at = |offset: usize, field: String, message: String| {
            let (line, column) = line_col(text, offset);
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                column,
                field,
                message,
            }
        };
        let file: FileConfig = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let message = e.message().trim().to_owned();
            err_at(offset, field_path_at(text, offset), message)
        })?;
        if need_accounts && file.account.is_empty() && file.server.allow_no_accounts != Some(true) {
            return Err(ConfigError::NoAccounts {
                path: path.to_owned(),
            });
        }
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));

        let s = file.server;
        let listen = |v: &Option<Spanned<String>>, field: &str, default: &str| match v {
            // `default` is one of our own IP:port literals below, never input: it parses.
            None => Ok(default.parse().expect("literal address is valid")),
            Some(v) => v.get_ref().parse::<SocketAddr>().map_err(|_| {
                err_at(
                    v.span().start,
                    format!("server.{field}"),
                    format!("`{}` is not an IP:port address", v.get_ref()),
                )
            }),
        };
        let imap_listen = listen(&s.imap_listen, "imap_listen", "127.0.0.1:1143")?;
        let smtp_listen = listen(&s.smtp_listen, "smtp_listen", "127.0.0.1:1587")?;
        let optional = |v: &Option<Spanned<String>>, field: &str| match v {
            None => Ok(None),
            Some(_) => listen(v, field, "127.0.0.1:0").map(Some),
        };
        let imaps_listen = optional(&s.imaps_listen, "imaps_listen")?;
        let smtps_listen = optional(&s.smtps_listen, "smtps_listen")?;
        let local_tls = match &s.tls {
            None => None,
            Some(t) => {
                let t = t.get_ref();
                let cert = base.join(t.cert.get_ref());
                let key = base.join(t.key.get_ref());
                let config = tls::server_config(&cert, &key).map_err(|e| {
                    let (at, field) = match e {
                        tls::TlsError::ServerKey { .. } => (t.key.span().start, "server.tls.key"),
                        _ => (t.cert.span().start, "server.tls.cert"),
                    };
                    err_at(at, field.into(), e.to_string())
                })?;
                Some(LocalTls { cert, key, config })
            }
        };
        // Without TLS a listener that is reachable from elsewhere would carry local passwords
        // in clear over a network (Dovecot's `ssl = required` / Postfix's
        // `smtpd_tls_auth_only` stance): refuse to start rather than leak them.
        let listeners = [
            (&s.imap_listen, "imap_listen", Some(imap_listen)),
            (&s.smtp_listen, "smtp_listen", Some(smtp_listen)),
            (&s.imaps_listen, "imaps_listen", imaps_listen),
            (&s.smtps_listen, "smtps_listen", smtps_listen),
        ];
        for (spanned, field, addr) in listeners {
            let Some(addr) = addr else { continue };
            let at = spanned.as_ref().map_or(0, |v| v.span().start);
            let implicit = field.ends_with("s_listen");
            if local_tls.is_none() && implicit {
                return Err(err_at(
                    at,
                    format!("server.{field}"),
                    "an implicit-TLS listener needs a certificate: add [server.tls] with cert and key (see `mailgate cert generate`)".into(),
                ));
            }
            if local_tls.is_none() && !addr.ip().is_loopback() {
                return Err(err_at(
                    at,
                    format!("server.{field}"),
                    format!("`{addr}` is not a loopback address, and without [server.tls] local passwords would cross the network in clear; listen on 127.0.0.1 or add [server.tls] with cert and key (see `mailgate cert generate`)"),
                ));
            }
        }
        let idle_timeout = match &s.idle_timeout_secs {
            None => Duration::from_secs(30 * 60),
            Some(v) if *v.get_ref() < 30 * 60 => {
                return Err(err_at(
                    v.span().start,
                    "server.idle_timeout_secs".into(),
                    "must be at least 1800 (RFC 9051 requires at least 30 minutes)".into(),
                ))
            }
            Some(v) => Duration::from_secs(*v.get_ref()),
        };
        let resolver = match &s.resolver {
            None => None,
            Some(v) => Some(crate::net::dns::parse_server(v.get_ref()).ok_or_else(|| {
                err_at(
                    v.span().start,
                    "server.resolver".into(),
                    format!("`{}` is not an IP address or IP:port", v.get_ref()),
                )
            })?),
        };
        let max_sessions = s.max_sessions.unwrap_or(1000).max(1);
        let max_preauth_sessions = match &s.max_preauth_sessions {
            None => (max_sessions / 2).max(1),
            Some(v) if *v.get_ref() == 0 || *v.get_ref() > max_sessions => {
                return Err(err_at(
                    v.span().start,
                    "server.max_preauth_sessions".into(),
                    format!("must be between 1 and max_sessions ({max_sessions}): the sessions that have not logged in are part of max_sessions"),
                ))
            }
            Some(v) => *v.get_ref(),
        };
        let server = ServerConfig {
            imap_listen,
            smtp_listen,
            imaps_listen,
            smtps_listen,
            tls: local_tls,
            throttle: ThrottleConfig {
                threshold: s.login_throttle_threshold.unwrap_or(5),
                max_delay: Duration::from_millis(s.login_throttle_max_delay_ms.unwrap_or(15_000)),
                lockout: Duration::from_secs(s.login_lockout_secs.unwrap_or(300).max(1)),
            },
            max_message_size: s.max_message_size.unwrap_or(50 * 1024 * 1024).max(1),
            max_sessions,
            max_preauth_sessions,
            max_connections_per_ip: s.max_connections_per_ip.unwrap_or(max_sessions / 2),
            preauth_timeout: Duration::from_secs(s.preauth_timeout_secs.unwrap_or(60).max(1)),
            preauth_deadline: Duration::from_secs(s.preauth_deadline_secs.unwrap_or(180).max(1)),
            max_bad_commands: s.max_bad_commands.unwrap_or(10).max(1),
            idle_timeout,
            auth_failure_delay: Duration::from_millis(s.auth_failure_delay_ms.unwrap_or(1000)),
            login_cache: Duration::from_secs(s.login_cache_secs.unwrap_or(600)),
            max_auth_failures: s.max_auth_failures.unwrap_or(3).max(1),
            connect_timeout: Duration::from_secs(s.connect_timeout_secs.unwrap_or(15).max(1)),
            upstream_timeout: Duration::from_secs(s.upstream_timeout_secs.unwrap_or(60).max(1)),
            state_dir: base.join(s.state_dir.unwrap_or_else(|| PathBuf::from("state"))),
            resolver,
            allow_core_dumps: s.allow_core_dumps.unwrap_or(false),
        };

        let metrics = match file.metrics {
            None => None,
            Some(m) => Some(MetricsConfig {
                listen: m.listen.get_ref().parse().map_err(|_| {
                    err_at(
                        m.listen.span().start,
                        "metrics.listen".into(),
                        format!("`{}` is not an IP:port address", m.listen.get_ref()),
                    )
                })?,
                per_account: m.per_account,
            }),
        };

        let mut accounts = Vec::new();
        let mut by_login = HashMap::new();
        let mut undiscovered = Vec::new();
        for (i, spanned) in file.account.into_iter().enumerate() {
            let at = spanned.span().start;
            let a = spanned.into_inner();
            let name = format!("account[{i}]");
            let email = a.email.trim().to_owned();
            if !is_address(&email) {
                return Err(err_at(
                    at,
                    format!("{name}.email"),
                    format!("`{email}` is not an email address"),
                ));
            }
            for alias in &a.aliases {
                if !is_address(alias) {
                    return Err(err_at(
                        at,
                        format!("{name}.aliases"),
                        format!("`{alias}` is not an email address"),
                    ));
                }
            }
            if argon2::PasswordHash::new(&a.local_password_hash).is_err() {
                return Err(err_at(
                    at,
                    format!("{name}.local_password_hash"),
                    "is not an argon2 PHC string; make one with `mailgate hash-password`".into(),
                ));
            }
            if by_login
                .insert(email.to_ascii_lowercase(), accounts.len())
                .is_some()
            {
                return Err(err_at(
                    at,
                    format!("{name}.email"),
                    format!("`{email}` is configured twice"),
                ));
            }
            let imap_at = a.imap.as_ref().map_or(at, |t| t.span().start);
            let located = |at: usize, table: &str, (field, msg): (String, String)| {
                let key = field.trim_start_matches('.');
                let at = key_offset(text, at, key).unwrap_or(at);
                err_at(at, format!("{name}.{table}{field}"), msg)
            };
            // Servers: given in the file, else the named preset, else the domain's preset,
            // else network discovery (done before this pass by `load_discovering`). Whatever
            // the file sets wins, field by field.
            let has_server = a
                .imap
                .as_ref()
                .is_some_and(|t| t.get_ref().server.is_some() || t.get_ref().host.is_some());
            let found: Option<crate::discover::Discovery> = match &a.provider {
                Some(p) => {
                    let preset = crate::provider::by_id(p.get_ref()).ok_or_else(|| {
                        let at = key_offset(text, at, "provider").unwrap_or(at);
                        err_at(
                            at,
                            format!("{name}.provider"),
                            format!(
                                "unknown provider `{}`; known: {}",
                                p.get_ref(),
                                crate::provider::known_ids()
                            ),
                        )
                    })?;
                    Some(crate::discover::from_preset(
                        &email,
                        preset,
                        crate::discover::Source::Provider(preset.id),
                    ))
                }
                None if has_server => None,
                None => match crate::discover::domain_of(&email)
                    .and_then(|d| crate::provider::by_domain(&d))
                {
                    Some(preset) => Some(crate::discover::from_preset(
                        &email,
                        preset,
                        crate::discover::Source::Domain(preset.id),
                    )),
                    None => match discovered.get(&email.to_ascii_lowercase()) {
                        Some(d) => Some(d.clone()),
                        None => {
                            by_login.remove(&email.to_ascii_lowercase());
                            undiscovered.push(email);
                            continue;
                        }
                    },
                },
            };
            let oauth = match a.oauth2 {
                None => None,
                Some(spanned) => {
                    let at = spanned.span().start;
                    let o = spanned.into_inner();
                    Some(Arc::new(
                        o.validate(&email, &base, &server.state_dir)
                            .map_err(|e| located(at, "oauth2", e))?,
                    ))
                }
            };
            // With OAuth 2.0 the token is the credential: no password is needed, and one left
            // in the file would be silently unused — say so instead.
            if oauth.is_some() {
                let tables = [("imap", a.imap.as_ref().map(|t| (t.get_ref(), imap_at)))]
                    .into_iter()
                    .chain(
                        a.smtp
                            .as_ref()
                            .map(|t| ("smtp", Some((t.get_ref(), t.span().start)))),
                    );
                for (table, file) in tables {
                    if let Some((key, at)) =
                        file.and_then(|(f, at)| f.password_key().map(|k| (k, at)))
                    {
                        return Err(located(
                            at,
                            table,
                            (
                                format!(".{key}"),
                                "is not used with [account.oauth2] (the token is the credential); remove it".into(),
                            ),
                        ));
                    }
                }
            }
            let imap_default = oauth.map(Credential::OAuth2);
            let imap_file = a.imap.map(Spanned::into_inner).unwrap_or_default();
            let imap_found = found.as_ref().map(|d| &d.imap);
            let imap = endpoint(imap_file, &email, &base, imap_default.as_ref(), imap_found)
                .map_err(|e| located(imap_at, "imap", e))?;
            // The SMTP credential defaults to the IMAP one: most providers use one password.
            // Without an [account.smtp] table, a preset or discovery still gives the server.
            let smtp_found = found.as_ref().and_then(|d| d.smtp.as_ref());
            let smtp_table = match a.smtp {
                Some(spanned) => Some((spanned.span().start, spanned.into_inner())),
                None => smtp_found.map(|_| (at, EndpointFile::default())),
            };
            let smtp_password_inherited = smtp_table.as_ref().is_some_and(|(_, f)| {
                f.password.is_none() && f.password_env.is_none() && f.password_file.is_none()
            });
            let smtp = match smtp_table {
                None => None,
                Some((smtp_at, file)) => {
                    let smtp = endpoint(file, &email, &base, Some(&imap.credential), smtp_found)
                        .map_err(|e| located(smtp_at, "smtp", e))?;
                    Some(smtp)
                }
            };
            let source = found
                .as_ref()
                .map_or_else(|| "config".to_owned(), |d| d.imap.source.to_string());
            accounts.push(Arc::new(Account {
                email,
                aliases: a.aliases,
                local_password_hash: a.local_password_hash,
                imap,
                smtp,
                source,
                smtp_password_inherited,
            }));
        }

        Ok(Config {
            path: path.to_owned(),
            server,
            accounts,
            metrics,
            by_login,
            undiscovered,
        })
    }

    /// The account a client logs in as, by email address (case-insensitive).
    pub fn account(&self, login: &str) -> Option<&Arc<Account>> {
        self.by_login
            .get(&login.trim().to_ascii_lowercase())
            .map(|&i| &self.accounts[i])
    }
}

/// Validates one `[account.imap]`-style table. Errors are (sub-field, message). Without a
/// credential in the table, `inherited` is used if given (SMTP reuses the IMAP one; with
/// `[account.oauth2]` it is the OAuth settings).
fn endpoint(
    e: EndpointFile,
    email: &str,
    base: &Path,
    inherited: Option<&Credential>,
    found: Option<&crate::discover::Found>,
) -> Result<Endpoint, (String, String)> {
    let bad = |field: &str, msg: String| (format!(".{field}"), msg);
    let (host, port) = match (&e.server, &e.host) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "server",
                "give either `server = \"host:port\"` or `host` and `port`, not both".into(),
            ))
        }
        (Some(server), None) => {
            if e.port.is_some() {
                return Err(bad(
                    "port",
                    "the port is already part of `server = \"host:port\"`".into(),
                ));
            }
            split_host_port(server).ok_or_else(|| {
                bad(
                    "server",
                    format!("`{server}` is not host:port (e.g. \"imap.example.com:993\")"),
                )
            })?
        }
        (None, Some(host)) => {
            let port = e.port.ok_or_else(|| bad("port", "is missing".into()))?;
            (host.trim().to_owned(), port)
        }
        (None, None) => match found {
            Some(f) => (f.host.clone(), f.port),
            None => return Err(bad("server", "is missing (\"host:port\")".into())),
        },
    };
    // TLS as written, else the preset's / discovered mode when it is for the same port, else
    // implicit (the documented default).
    let tls = e.tls.unwrap_or(match found {
        Some(f) if f.port == port => f.tls,
        _ => TlsMode::Implicit,
    });
    if host.is_empty() || port == 0 {
        return Err(bad(
            "server",
            "needs a host name and a non-zero port".into(),
        ));
    }
    if tls == TlsMode::None && !e.allow_plaintext {
        return Err(bad(
            "tls",
            "`none` sends the password in clear text; set `allow_plaintext = true` to allow it"
                .into(),
        ));
    }
    let name_text = e.tls_server_name.clone().unwrap_or_else(|| host.clone());
    let server_name = rustls_pki_types::ServerName::try_from(name_text.clone()).map_err(|_| {
        bad(
            "tls_server_name",
            format!("`{name_text}` is not a valid TLS name"),
        )
    })?;
    let ca_file = e.ca_file.map(|p| base.join(p));
    let tls_config = match tls {
        TlsMode::None => None,
        _ => Some(
            tls::client_config(ca_file.as_deref())
                .map_err(|err| bad("ca_file", err.to_string()))?,
        ),
    };
    let sources = [
        e.password.is_some(),
        e.password_env.is_some(),
        e.password_file.is_some(),
    ];
    let credential = match (sources.iter().filter(|s| **s).count(), inherited) {
        (0, Some(inherited)) => inherited.clone(),
        (0, None) => {
            return Err(bad(
                "password_env",
                "no upstream credential: set one of password_env, password_file or password".into(),
            ))
        }
        (1, _) => Credential::Password(if let Some(p) = e.password {
            Secret::new(p)
        } else if let Some(var) = e.password_env {
            match std::env::var(&var) {
                Ok(v) if !v.is_empty() => Secret::new(v),
                _ => {
                    return Err(bad(
                        "password_env",
                        format!("environment variable `{var}` is not set"),
                    ))
                }
            }
        } else {
            let file = base.join(e.password_file.unwrap_or_default());
            crate::secret::read_file(&file).map_err(|err| {
                bad(
                    "password_file",
                    format!("cannot read {}: {err}", file.display()),
                )
            })?
        }),
        _ => {
            return Err(bad(
                "password",
                "give only one of password, password_env and password_file".into(),
            ))
        }
    };
    Ok(Endpoint {
        target: Target {
            host,
            port,
            tls,
            server_name,
            tls_config,
            ca_file,
        },
        username: e
            .username
            .or_else(|| found.map(|f| f.username.clone()))
            .unwrap_or_else(|| email.to_owned()),
        credential,
    })
}

/// "host:port", "[v6]:port" → (host, port).
fn split_host_port(s: &str) -> Option<(String, u16)> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        (h, p)
    } else {
        s.rsplit_once(':')?
    };
    if host.is_empty() || host.contains(':') && !s.starts_with('[') {
        return None;
    }
    Some((host.to_owned(), port.parse().ok()?))
}

/// A deliberately loose check: something@something, no spaces or control characters.
fn is_address(s: &str) -> bool {
    match s.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// The offset of the line that sets `key` in the table starting at `table_at`, if the key is
/// written there (validation errors then point at the value, not at the table header).
fn key_offset(text: &str, table_at: usize, key: &str) -> Option<usize> {
    let mut pos = text[..table_at.min(text.len())]
        .rfind('\n')
        .map_or(0, |p| p + 1);
    for (i, line) in text[pos..].split_inclusive('\n').enumerate() {
        let t = line.trim_start();
        if i > 0 && t.starts_with('[') {
            return None;
        }
        if let Some(rest) = t.strip_prefix(key) {
            if rest.trim_start().starts_with('=') {
                return Some(pos + (line.len() - t.len()));
            }
        }
        pos += line.len();
    }
    None
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// The dotted field path of the key at `offset`, found by replaying the table headers before it
/// (`[[account]]` counts array elements, so the path reads `account[1].imap.tls`). toml's own
/// errors give a position but not the path; operators want both.
fn field_path_at(text: &str, offset: usize) -> String {
    let mut table = String::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut indexed: HashMap<String, String> = HashMap::new();
    let mut pos = 0;
    for raw in text.split_inclusive('\n') {
        let line_end = pos + raw.len();
        let line = raw.trim();
        let header = if let Some(name) = line.strip_prefix("[[") {
            name.split("]]").next().map(|n| (n.trim().to_owned(), true))
        } else if let Some(name) = line.strip_prefix('[') {
            name.split(']').next().map(|n| (n.trim().to_owned(), false))
        } else {
            None
        };
        let is_header = header.is_some();
        if let Some((name, is_array)) = header {
            // Rewrite a prefix that names an array of tables to its current element.
            let mut resolved = name.clone();
            for (plain, with_index) in &indexed {
                let same = name == *plain && !is_array;
                if same || name.starts_with(&format!("{plain}.")) {
                    resolved = format!("{with_index}{}", &name[plain.len()..]);
                }
            }
            if is_array {
                let n = counts.entry(name.clone()).or_insert(0);
                resolved = format!("{resolved}[{n}]");
                *n += 1;
                indexed.insert(name, resolved.clone());
            }
            table = resolved;
        }
        if offset < line_end {
            if !is_header {
                if let Some((key, _)) = line.split_once('=') {
                    let key = key.trim().trim_matches('"');
                    if !key.is_empty() && !line.starts_with('#') {
                        return if table.is_empty() {
                            key.to_owned()
                        } else {
                            format!("{table}.{key}")
                        };
                    }
                }
            }
            break;
        }
        pos = line_end;
    }
    if table.is_empty() {
        "(top level)".into()
    } else {
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/mailgate/test.toml"))
    }

    fn account(extra_imap: &str) -> String {
        format!(
            "[[account]]\nemail = \"ola@example.no\"\nlocal_password_hash = \"{HASH}\"\n\n[account.imap]\nserver = \"imap.example.no:993\"\npassword = \"x\"\n{extra_imap}"
        )
    }

    #[test]
    fn minimal_account_gets_defaults() {
        let c = parse(&account("")).unwrap();
        assert_eq!(c.server.imap_listen.to_string(), "127.0.0.1:1143");
        let a = c.account("OLA@Example.no").unwrap();
        assert_eq!(a.imap.target.host, "imap.example.no");
        assert_eq!(a.imap.target.port, 993);
        assert_eq!(a.imap.target.tls, TlsMode::Implicit);
        assert_eq!(a.imap.username, "ola@example.no");
        assert_eq!(a.imap.credential.password().unwrap().expose(), "x");
        let t = c.server.throttle;
        assert_eq!(
            (t.threshold, t.max_delay, t.lockout),
            (5, Duration::from_secs(15), Duration::from_secs(300))
        );
        assert!(c.server.tls.is_none() && c.server.imaps_listen.is_none());
    }

    #[test]
    fn preauth_limits_default_to_half_of_max_sessions() {
        let c = parse(&format!("[server]\nmax_sessions = 40\n{}", account(""))).unwrap();
        let s = &c.server;
        assert_eq!((s.max_preauth_sessions, s.max_connections_per_ip), (20, 20));
        assert_eq!(
            (s.preauth_timeout, s.preauth_deadline, s.max_bad_commands),
            (Duration::from_secs(60), Duration::from_secs(180), 10)
        );
        let e = parse(&format!(
            "[server]\nmax_sessions = 40\nmax_preauth_sessions = 41\n{}",
            account("")
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("/etc/mailgate/test.toml:3:24: server.max_preauth_sessions: must be between 1 and max_sessions (40)"),
            "{e}"
        );
    }

    #[test]
    fn bad_enum_names_file_line_and_field() {
        let e = parse(&account("tls = \"sometimes\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/mailgate/test.toml:8:7: account[0].imap.tls:"),
            "{e}"
        );
        assert!(e.contains("sometimes"), "{e}");
    }

    #[test]
    fn unknown_field_is_rejected_with_path() {
        let text = format!("{}\n[[account]]\nemail = \"b@x.no\"\nlocal_password_hash = \"{HASH}\"\n[account.imap]\nserver = \"h:1\"\npassword = \"y\"\npasword = \"z\"\n", account(""));
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains(":15:1: account[1].imap.pasword:"), "{e}");
        assert!(e.contains("unknown field"), "{e}");
    }

    #[test]
    fn plaintext_needs_consent() {
        let e = parse(&account("tls = \"none\"\n")).unwrap_err().to_string();
        assert!(e.contains(":8:1: account[0].imap.tls"), "{e}");
        assert!(parse(&account("tls = \"none\"\nallow_plaintext = true\n")).is_ok());
    }

    #[test]
    fn one_credential_source_only() {
        let e = parse(&account("password_env = \"X\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("only one of"), "{e}");
    }

    #[test]
    fn missing_env_is_named_but_value_never_shown() {
        let text = account("").replace(
            "password = \"x\"",
            "password_env = \"MAILGATE_TEST_UNSET_VAR\"",
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("MAILGATE_TEST_UNSET_VAR"), "{e}");
    }

    #[test]
    fn bad_hash_and_duplicates() {
        let e = parse(&account("").replace(HASH, "plain"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("hash-password"), "{e}");
        let twice = format!("{}\n{}", account(""), account(""));
        assert!(parse(&twice).unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn smtp_defaults_and_credential_reuse() {
        let c = parse(&account("")).unwrap();
        assert_eq!(c.server.smtp_listen.to_string(), "127.0.0.1:1587");
        assert_eq!(c.server.max_message_size, 50 * 1024 * 1024);
        assert!(c.accounts[0].smtp.is_none());
        let text = format!(
            "{}\n[account.smtp]\nserver = \"smtp.example.no:587\"\ntls = \"starttls\"\n",
            account("")
        );
        let c = parse(&text).unwrap();
        let smtp = c.accounts[0].smtp.as_ref().unwrap();
        assert_eq!(smtp.address(), "smtp.example.no:587");
        assert_eq!(smtp.target.tls, TlsMode::Starttls);
        assert_eq!(smtp.credential.password().unwrap().expose(), "x");
        assert_eq!(smtp.username, "ola@example.no");
        let own = format!("{text}password = \"y\"\n");
        let c = parse(&own).unwrap();
        assert_eq!(
            c.accounts[0]
                .smtp
                .as_ref()
                .unwrap()
                .credential
                .password()
                .unwrap()
                .expose(),
            "y"
        );
    }

    #[test]
    fn smtp_errors_name_the_smtp_table() {
        let text = format!(
            "{}\n[account.smtp]\nserver = \"smtp.example.no:587\"\ntls = \"none\"\n",
            account("")
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("account[0].smtp.tls"), "{e}");
        let e = parse(&format!(
            "[server]\nsmtp_listen = \"nope\"\n{}",
            account("")
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains(":2:15: server.smtp_listen:"), "{e}");
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("a.b:993"), Some(("a.b".into(), 993)));
        assert_eq!(split_host_port("[::1]:143"), Some(("::1".into(), 143)));
        assert_eq!(split_host_port("::1:143"), None);
        assert_eq!(split_host_port("a.b"), None);
        let c = parse(&account("").replace(
            "server = \"imap.example.no:993\"",
            "host = \"h\"\nport = 143",
        ))
        .unwrap();
        assert_eq!(c.accounts[0].imap.address(), "h:143");
    }

    fn bare(body: &str) -> String {
        format!("[[account]]\nemail = \"ola@icloud.com\"\nlocal_password_hash = \"{HASH}\"\n{body}")
    }

    #[test]
    fn presets_fill_what_the_file_leaves_out() {
        // Domain preset, credential only: both servers from the preset, IMAP user = local part.
        let c = parse(&bare("[account.imap]\npassword = \"x\"\n")).unwrap();
        let a = &c.accounts[0];
        assert_eq!(
            (a.imap.address(), a.imap.target.tls),
            ("imap.mail.me.com:993".into(), TlsMode::Implicit)
        );
        assert_eq!(a.imap.username, "ola");
        let smtp = a.smtp.as_ref().unwrap();
        assert_eq!(
            (smtp.address(), smtp.target.tls),
            ("smtp.mail.me.com:587".into(), TlsMode::Starttls)
        );
        assert_eq!(
            (
                smtp.username.as_str(),
                smtp.credential.password().unwrap().expose()
            ),
            ("ola@icloud.com", "x")
        );
        assert_eq!(a.source, "preset icloud (by email domain)");
        // A named preset for a custom domain; explicit fields win one by one.
        let text = bare("provider = \"gmail\"\n[account.imap]\npassword = \"x\"\nusername = \"other\"\n[account.smtp]\nserver = \"smtp.gmail.com:587\"\ntls = \"starttls\"\n")
            .replace("ola@icloud.com", "ola@example.no");
        let c = parse(&text).unwrap();
        let a = &c.accounts[0];
        assert_eq!(
            (a.imap.address(), a.imap.username.as_str()),
            ("imap.gmail.com:993".into(), "other")
        );
        let smtp = a.smtp.as_ref().unwrap();
        assert_eq!(
            (smtp.address(), smtp.target.tls),
            ("smtp.gmail.com:587".into(), TlsMode::Starttls)
        );
        assert_eq!(a.source, "preset gmail (named in the config)");
        // A server written in the file without a provider keeps the old meaning: no preset.
        let c = parse(&account("")).unwrap();
        assert!(c.accounts[0].smtp.is_none());
        assert_eq!(c.accounts[0].source, "config");
    }

    #[test]
    fn unknown_provider_lists_the_known_ones() {
        let e = parse(&bare(
            "provider = \"gmial\"\n[account.imap]\npassword = \"x\"\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("/etc/mailgate/test.toml:4:1: account[0].provider: unknown provider `gmial`; known: gmail, microsoft365"),
            "{e}"
        );
    }

    #[test]
    fn unknown_domains_wait_for_discovery() {
        let text = bare("[account.imap]\npassword = \"x\"\n").replace("icloud.com", "example.test");
        let c = parse(&format!("{text}\n{}", account(""))).unwrap();
        assert_eq!(c.undiscovered, ["ola@example.test"]);
        assert_eq!(c.accounts.len(), 1);
        assert!(c.account("ola@example.test").is_none());
        assert!(c.account("ola@example.no").is_some());
        let mut found = HashMap::new();
        let d = crate::discover::Discovery {
            email: "ola@example.test".into(),
            preset: None,
            imap: crate::discover::Found {
                host: "imap.example.test".into(),
                port: 143,
                tls: TlsMode::Starttls,
                username: "ola".into(),
                source: crate::discover::Source::Guess,
            },
            smtp: None,
            notes: vec![],
        };
        found.insert("ola@example.test".to_owned(), d);
        let c = Config::parse_with(&text, Path::new("/m.toml"), &found).unwrap();
        let a = c.account("ola@example.test").unwrap();
        assert_eq!(
            (a.imap.address(), a.imap.target.tls),
            ("imap.example.test:143".into(), TlsMode::Starttls)
        );
        assert!(a.smtp.is_none() && c.undiscovered.is_empty());
        assert_eq!(a.source, "guess (a server answered)");
    }

    #[test]
    fn listeners_off_loopback_need_tls() {
        let e = parse(&format!(
            "[server]\nimap_listen = \"0.0.0.0:1143\"\n{}",
            account("")
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains(":2:15: server.imap_listen:"), "{e}");
        assert!(e.contains("in clear"), "{e}");
        let e = parse(&format!(
            "[server]\nsmtps_listen = \"127.0.0.1:1465\"\n{}",
            account("")
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("server.smtps_listen:"), "{e}");
        assert!(e.contains("[server.tls]"), "{e}");
    }

    #[test]
    fn local_tls_files_are_checked_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let text = |cert: &str, key: &str| {
            format!(
                "[server]\nimap_listen = \"0.0.0.0:0\"\nimaps_listen = \"127.0.0.1:0\"\n\n[server.tls]\ncert = \"{cert}\"\nkey = \"{key}\"\n{}",
                account("")
            )
        };
        let path = dir.path().join("m.toml");
        let e = Config::parse(&text("missing.pem", "missing.key"), &path)
            .unwrap_err()
            .to_string();
        assert!(e.contains(":6:8: server.tls.cert:"), "{e}");
        let g = crate::cert::generate(dir.path(), &[], 2, false).unwrap();
        let e = Config::parse(&text(crate::cert::CERT_FILE, "missing.key"), &path)
            .unwrap_err()
            .to_string();
        assert!(e.contains(":7:7: server.tls.key:"), "{e}");
        let c = Config::parse(&text(crate::cert::CERT_FILE, crate::cert::KEY_FILE), &path).unwrap();
        let tls = c.server.tls.as_ref().unwrap();
        assert_eq!(tls.cert, g.cert);
        assert!(c.server.imaps_listen.is_some());
    }
}
