//! `[server.proxy_protocol]`: the listeners that take a PROXY protocol header first (a proxy
//! such as HAProxy in front of them, `send-proxy` / `send-proxy-v2`), the networks that proxy
//! connects from, and how long its header may take.

use super::file::ProxyProtocolFile;
use super::locate::Locator;
use super::located::Located;
use super::ConfigError;
use ipnet::IpNet;
use std::net::IpAddr;
use std::time::Duration;

/// The listener names a table may list: the `[server]` keys without `_listen`, as the log
/// names them (`imap listening on …`).
pub const LISTENER_NAMES: [&str; 4] = ["imap", "smtp", "imaps", "smtps"];

/// The header's default time limit: a proxy writes it with the connection, so anything
/// slower is not a proxy.
const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// The longest `header_timeout_ms` allowed.
const MAX_TIMEOUT_MS: u64 = 60_000;

/// `[server.proxy_protocol]`, validated.
#[derive(Debug, Clone)]
pub struct ProxyProtocol {
    /// The listeners behind the proxy, by name (`imap`, `smtp`, `imaps`, `smtps`).
    pub listeners: Vec<&'static str>,
    /// Where the proxy connects from; a connection from anywhere else is closed.
    pub trusted: Vec<IpNet>,
    /// How long the header may take to arrive (`header_timeout_ms`).
    pub header_timeout: Duration,
}

impl ProxyProtocol {
    /// Whether the listener named `name` takes a PROXY header.
    pub fn covers(&self, name: &str) -> bool {
        self.listeners.contains(&name)
    }

    /// Whether a connection from `ip` may send a PROXY header (an IPv4 client of a
    /// dual-stack listener, `::ffff:a.b.c.d`, is matched as `a.b.c.d`).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|net| net.contains(&ip))
    }
}

/// Validates the table; `configured` names the listeners `[server]` sets.
pub(super) fn proxy_protocol(
    file: &Located<ProxyProtocolFile>,
    configured: &[&str],
    loc: Locator,
) -> Result<ProxyProtocol, ConfigError> {
    let f = file.get_ref();
    let field = |name: &str| format!("server.proxy_protocol.{name}");
    if f.listeners.get_ref().is_empty() {
        return Err(loc.at(
            f.listeners.span().start,
            field("listeners"),
            "name the listeners behind the proxy: \"imap\", \"smtp\", \"imaps\", \"smtps\"".into(),
        ));
    }
    let mut listeners = Vec::new();
    for (i, name) in f.listeners.get_ref().iter().enumerate() {
        let at = |message: String| {
            loc.at(
                name.span().start,
                field(&format!("listeners[{i}]")),
                message,
            )
        };
        let Some(&known) = LISTENER_NAMES.iter().find(|&&n| n == name.get_ref()) else {
            return Err(at(format!(
                "`{}` is not a listener; one of \"imap\", \"smtp\", \"imaps\", \"smtps\"",
                name.get_ref()
            )));
        };
        if !configured.contains(&known) {
            return Err(at(format!(
                "there is no `{known}` listener: set server.{known}_listen"
            )));
        }
        listeners.push(known);
    }
    if f.trusted.get_ref().is_empty() {
        return Err(loc.at(
            f.trusted.span().start,
            field("trusted"),
            "name the networks the proxy connects from (e.g. \"127.0.0.1/32\"): with none, every connection would be closed".into(),
        ));
    }
    let mut trusted = Vec::new();
    for (i, text) in f.trusted.get_ref().iter().enumerate() {
        let net = network(text.get_ref()).map_err(|message| {
            loc.at(text.span().start, field(&format!("trusted[{i}]")), message)
        })?;
        trusted.push(net);
    }
    let header_timeout = match &f.header_timeout_ms {
        None => Duration::from_millis(DEFAULT_TIMEOUT_MS),
        Some(v) if (1..=MAX_TIMEOUT_MS).contains(v.get_ref()) => {
            Duration::from_millis(*v.get_ref())
        }
        Some(v) => {
            return Err(loc.at(
                v.span().start,
                field("header_timeout_ms"),
                format!("must be between 1 and {MAX_TIMEOUT_MS}"),
            ))
        }
    };
    Ok(ProxyProtocol {
        listeners,
        trusted,
        header_timeout,
    })
}

/// A network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`) or one address.
fn network(text: &str) -> Result<IpNet, String> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    let net: IpNet = text.parse().map_err(|_| {
        format!(
            "`{text}` is not a network (e.g. \"10.0.0.0/8\", \"2001:db8::/32\") or an IP address"
        )
    })?;
    // `10.0.0.1/8` is most likely a typo for one address or for the network: say which.
    if net.trunc() != net {
        return Err(format!(
            "`{text}` has bits set after the prefix: write `{}` for the network, or the address alone",
            net.trunc()
        ));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ServerConfig};
    use std::net::IpAddr;
    use std::path::Path;
    use std::time::Duration;

    fn server(table: &str) -> Result<ServerConfig, String> {
        let text = format!(
            "[server]\nimap_listen = \"127.0.0.1:1143\"\n\n[server.proxy_protocol]\n{table}"
        );
        Config::parse_server(&text, Path::new("m.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn listeners_and_networks_are_read() {
        let s = server("listeners = [\"imap\", \"smtp\"]\ntrusted = [\"127.0.0.1\", \"10.0.0.0/8\", \"fd00::/8\"]\n").unwrap();
        let p = s.proxy_protocol.unwrap();
        assert_eq!(p.listeners, ["imap", "smtp"]);
        assert!(p.covers("imap") && p.covers("smtp") && !p.covers("imaps"));
        assert_eq!(p.header_timeout, Duration::from_secs(5));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for yes in ["127.0.0.1", "10.1.2.3", "fd12::1", "::ffff:10.9.9.9"] {
            assert!(p.trusts(ip(yes)), "{yes}");
        }
        for no in ["127.0.0.2", "11.0.0.1", "fe80::1", "::1"] {
            assert!(!p.trusts(ip(no)), "{no}");
        }
        let s = server("listeners = [\"imap\"]\ntrusted = [\"::1\"]\nheader_timeout_ms = 250\n")
            .unwrap();
        assert_eq!(
            s.proxy_protocol.unwrap().header_timeout,
            Duration::from_millis(250)
        );
        let none = Config::parse_server("[server]\n", Path::new("m.toml")).unwrap();
        assert!(none.proxy_protocol.is_none());
    }

    #[test]
    fn errors_name_the_line_the_column_and_the_item() {
        let cases = [
            ("listeners = []\ntrusted = [\"127.0.0.1\"]\n", ":5:13: server.proxy_protocol.listeners:"),
            ("listeners = [\"imap\", \"pop3\"]\ntrusted = [\"127.0.0.1\"]\n", ":5:22: server.proxy_protocol.listeners[1]: `pop3` is not a listener"),
            ("listeners = [\"imaps\"]\ntrusted = [\"127.0.0.1\"]\n", ":5:14: server.proxy_protocol.listeners[0]: there is no `imaps` listener: set server.imaps_listen"),
            ("listeners = [\"imap\"]\ntrusted = []\n", ":6:11: server.proxy_protocol.trusted:"),
            ("listeners = [\"imap\"]\ntrusted = [\"::1\", \"10.0.0.0/33\"]\n", ":6:19: server.proxy_protocol.trusted[1]: `10.0.0.0/33` is not a network"),
            ("listeners = [\"imap\"]\ntrusted = [\"localhost\"]\n", ":6:12: server.proxy_protocol.trusted[0]: `localhost` is not a network"),
            ("listeners = [\"imap\"]\ntrusted = [\"10.0.0.1/8\"]\n", ":6:12: server.proxy_protocol.trusted[0]: `10.0.0.1/8` has bits set after the prefix: write `10.0.0.0/8`"),
            ("listeners = [\"imap\"]\ntrusted = [\"::1\"]\nheader_timeout_ms = 0\n", ":7:21: server.proxy_protocol.header_timeout_ms: must be between 1 and 60000"),
            ("listeners = [\"imap\"]\n", "missing field `trusted`"),
            ("listeners = [\"imap\"]\ntrusted = [\"::1\"]\nsend = true\n", "unknown field `send`"),
        ];
        for (table, want) in cases {
            let e = server(table).unwrap_err();
            assert!(e.contains(want), "{table}\n{e}");
        }
    }
}
