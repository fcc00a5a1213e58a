//! `[server]` and `[metrics]`: listeners, limits and time-outs, defaults applied.

use super::file::{LocalTlsFile, MetricsFile, ServerFile};
use super::locate::Locator;
use super::proxy::ProxyProtocol;
use super::ConfigError;
use crate::net::tls;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use toml::Spanned;

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
    /// `[server.proxy_protocol]`: the listeners behind a proxy that sends a PROXY header.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// `[server.warm_sessions]`: upstream IMAP connections kept for the account's next login.
    pub warm_sessions: super::warm::WarmSessions,
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
    /// OAuth upkeep: an account's refresh token is used at least this often, also when no
    /// client logs in (`oauth_upkeep_secs`, default a day; `None`: off).
    pub oauth_upkeep: Option<Duration>,
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

/// The listeners of `[server]` and the local certificate they need.
struct Listeners {
    imap_listen: SocketAddr,
    smtp_listen: SocketAddr,
    imaps_listen: Option<SocketAddr>,
    smtps_listen: Option<SocketAddr>,
    tls: Option<LocalTls>,
}

/// Validates `[server]`; relative paths resolve against `base`, the config file's folder.
pub(super) fn server(
    s: ServerFile,
    base: &Path,
    loc: Locator,
) -> Result<ServerConfig, ConfigError> {
    let l = listeners(&s, base, loc)?;
    let proxy_protocol = match &s.proxy_protocol {
        None => None,
        Some(p) => {
            let configured: Vec<&str> = [
                ("imap", true),
                ("smtp", true),
                ("imaps", l.imaps_listen.is_some()),
                ("smtps", l.smtps_listen.is_some()),
            ]
            .into_iter()
            .filter_map(|(name, set)| set.then_some(name))
            .collect();
            Some(super::proxy::proxy_protocol(p, &configured, loc)?)
        }
    };
    let idle_timeout = match &s.idle_timeout_secs {
        None => Duration::from_secs(30 * 60),
        Some(v) if *v.get_ref() < 30 * 60 => {
            return Err(loc.at(
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
            loc.at(
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
            return Err(loc.at(
                v.span().start,
                "server.max_preauth_sessions".into(),
                format!("must be between 1 and max_sessions ({max_sessions}): the sessions that have not logged in are part of max_sessions"),
            ))
        }
        Some(v) => *v.get_ref(),
    };
    Ok(ServerConfig {
        imap_listen: l.imap_listen,
        smtp_listen: l.smtp_listen,
        imaps_listen: l.imaps_listen,
        smtps_listen: l.smtps_listen,
        tls: l.tls,
        proxy_protocol,
        warm_sessions: super::warm::warm_sessions(s.warm_sessions.as_ref(), loc)?,
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
        oauth_upkeep: match s.oauth_upkeep_secs.unwrap_or(86_400) {
            0 => None,
            secs => Some(Duration::from_secs(secs)),
        },
        state_dir: base.join(s.state_dir.unwrap_or_else(|| PathBuf::from("state"))),
        resolver,
        allow_core_dumps: s.allow_core_dumps.unwrap_or(false),
    })
}

/// The listen addresses, the local certificate, and the rule that a listener off loopback
/// needs TLS.
fn listeners(s: &ServerFile, base: &Path, loc: Locator) -> Result<Listeners, ConfigError> {
    let listen = |v: &Option<Spanned<String>>, field: &str, default_port: u16| match v {
        None => Ok(SocketAddr::from(([127, 0, 0, 1], default_port))),
        Some(v) => v.get_ref().parse::<SocketAddr>().map_err(|_| {
            loc.at(
                v.span().start,
                format!("server.{field}"),
                format!("`{}` is not an IP:port address", v.get_ref()),
            )
        }),
    };
    let imap_listen = listen(&s.imap_listen, "imap_listen", 1143)?;
    let smtp_listen = listen(&s.smtp_listen, "smtp_listen", 1587)?;
    let optional = |v: &Option<Spanned<String>>, field: &str| match v {
        None => Ok(None),
        Some(_) => listen(v, field, 0).map(Some),
    };
    let imaps_listen = optional(&s.imaps_listen, "imaps_listen")?;
    let smtps_listen = optional(&s.smtps_listen, "smtps_listen")?;
    let local_tls = match &s.tls {
        None => None,
        Some(t) => Some(local_tls(t.get_ref(), "server.tls", base, loc)?),
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
            return Err(loc.at(
                at,
                format!("server.{field}"),
                "an implicit-TLS listener needs a certificate: add [server.tls] with cert and key (see `mailgate cert generate`)".into(),
            ));
        }
        if local_tls.is_none() && !addr.ip().is_loopback() {
            return Err(loc.at(
                at,
                format!("server.{field}"),
                format!("`{addr}` is not a loopback address, and without [server.tls] local passwords would cross the network in clear; listen on 127.0.0.1 or add [server.tls] with cert and key (see `mailgate cert generate`)"),
            ));
        }
    }
    Ok(Listeners {
        imap_listen,
        smtp_listen,
        imaps_listen,
        smtps_listen,
        tls: local_tls,
    })
}

/// The certificate and key of a TLS table (`[server.tls]`, `[web.tls]`; `table` names it in
/// errors) and the rustls server configuration made from them.
pub(super) fn local_tls(
    t: &LocalTlsFile,
    table: &str,
    base: &Path,
    loc: Locator,
) -> Result<LocalTls, ConfigError> {
    let cert = base.join(t.cert.get_ref());
    let key = base.join(t.key.get_ref());
    let config = tls::server_config(&cert, &key).map_err(|e| {
        let (at, field) = match e {
            tls::TlsError::ServerKey { .. } => (t.key.span().start, "key"),
            _ => (t.cert.span().start, "cert"),
        };
        loc.at(at, format!("{table}.{field}"), e.to_string())
    })?;
    Ok(LocalTls { cert, key, config })
}

/// Validates `[metrics]`.
pub(super) fn metrics(
    file: Option<MetricsFile>,
    loc: Locator,
) -> Result<Option<MetricsConfig>, ConfigError> {
    Ok(match file {
        None => None,
        Some(m) => Some(MetricsConfig {
            listen: m.listen.get_ref().parse().map_err(|_| {
                loc.at(
                    m.listen.span().start,
                    "metrics.listen".into(),
                    format!("`{}` is not an IP:port address", m.listen.get_ref()),
                )
            })?,
            per_account: m.per_account,
        }),
    })
}
