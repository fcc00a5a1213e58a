//! Mozilla-style autoconfig: where to fetch a domain's `config-v1.1.xml`, and reading the IMAP
//! and SMTP servers out of it.
//!
//! The file format is Thunderbird's (`clientConfig/emailProvider/incomingServer[@type=imap]`,
//! `outgoingServer[@type=smtp]`, each with `hostname`, `port`, `socketType` SSL | STARTTLS |
//! plain and `username` with `%EMAILADDRESS%` / `%EMAILLOCALPART%` / `%EMAILDOMAIN%`). The first
//! usable server of each kind wins, as in Thunderbird, which lists the preferred one first.

use crate::net::TlsMode;

/// The URLs tried, in Thunderbird's order: the `autoconfig.` host over https, the domain's
/// `.well-known` over https, then the `autoconfig.` host over plain http (Thunderbird's
/// fallback; a plaintext answer is only a hint — nothing secret is sent, and the servers it
/// names are still reached with TLS verified).
pub fn urls(email: &str, domain: &str) -> Vec<String> {
    let q = crate::net::http::encode(email);
    vec![
        format!("https://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress={q}"),
        format!("https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml"),
        format!("http://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress={q}"),
    ]
}

/// One server read from the file, with the user name already filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileServer {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS mode (`plain` becomes [`TlsMode::None`]).
    pub tls: TlsMode,
    /// The user name for this address.
    pub username: String,
}

/// What a file offers: the first IMAP server and the first SMTP server, if any.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    /// `incomingServer type="imap"`.
    pub imap: Option<FileServer>,
    /// `outgoingServer type="smtp"`.
    pub smtp: Option<FileServer>,
    /// Other incoming types seen (`pop3`, …), to say "POP3 only" when there is no IMAP.
    pub other_incoming: Vec<String>,
}

/// Why an autoconfig file cannot be used; one line of text (the caller adds the URL).
#[derive(Debug, thiserror::Error)]
pub enum AutoconfigError {
    /// Not XML.
    #[error("malformed XML: {0}")]
    Xml(String),
    /// XML, but not an autoconfig file.
    #[error("not an autoconfig file: the root element is <{0}>, not <clientConfig>")]
    Root(String),
    /// No `<emailProvider>`.
    #[error("no <emailProvider> element")]
    NoProvider,
    /// A server's host name is missing or not a host name.
    #[error("<{what} type=\"{kind}\">: bad or missing <hostname> {host:?}")]
    Host {
        /// `incomingServer` or `outgoingServer`.
        what: &'static str,
        /// Its `type`.
        kind: String,
        /// The host as written.
        host: String,
    },
    /// A server's port is missing or not a port.
    #[error("<{what} type=\"{kind}\">: bad or missing <port> `{port}`")]
    Port {
        /// `incomingServer` or `outgoingServer`.
        what: &'static str,
        /// Its `type`.
        kind: String,
        /// The port as written.
        port: String,
    },
    /// A server's `<socketType>` is none of SSL, STARTTLS and plain.
    #[error("<{what} type=\"{kind}\">: unknown <socketType> `{socket}` (SSL, STARTTLS or plain)")]
    SocketType {
        /// `incomingServer` or `outgoingServer`.
        what: &'static str,
        /// Its `type`.
        kind: String,
        /// The socket type as written.
        socket: String,
    },
}

/// Parses a `config-v1.1.xml` text.
pub fn parse(xml: &str, email: &str) -> Result<Parsed, AutoconfigError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| AutoconfigError::Xml(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "clientConfig" {
        return Err(AutoconfigError::Root(root.tag_name().name().to_owned()));
    }
    let provider = root
        .children()
        .find(|n| n.has_tag_name("emailProvider"))
        .ok_or(AutoconfigError::NoProvider)?;
    let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
    let mut out = Parsed::default();
    for server in provider.children().filter(|n| n.is_element()) {
        let incoming = server.has_tag_name("incomingServer");
        let outgoing = server.has_tag_name("outgoingServer");
        if !incoming && !outgoing {
            continue;
        }
        let kind = server
            .attribute("type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let slot = match (incoming, kind.as_str()) {
            (true, "imap") => &mut out.imap,
            (false, "smtp") => &mut out.smtp,
            (true, other) => {
                if !out.other_incoming.iter().any(|o| o == other) {
                    out.other_incoming.push(other.to_owned());
                }
                continue;
            }
            _ => continue,
        };
        if slot.is_some() {
            continue;
        }
        let text = |name: &str| {
            server
                .children()
                .find(|n| n.has_tag_name(name))
                .and_then(|n| n.text())
                .map(|t| t.trim().to_owned())
                .unwrap_or_default()
        };
        let what = if incoming {
            "incomingServer"
        } else {
            "outgoingServer"
        };
        let host = text("hostname").replace("%EMAILDOMAIN%", domain);
        // A DNS name (letters, digits, `-`, `_`, dots) or an IP address; anything else — an
        // unknown placeholder, a port, control characters from a hostile file — is refused
        // and shown escaped.
        let dns_name = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !dns_name && host.parse::<std::net::IpAddr>().is_err() {
            return Err(AutoconfigError::Host { what, kind, host });
        }
        let port_text = text("port");
        let port = port_text
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| AutoconfigError::Port {
                what,
                kind: kind.clone(),
                port: port_text.clone(),
            })?;
        let tls = match text("socketType").to_ascii_uppercase().as_str() {
            "SSL" | "TLS" => TlsMode::Implicit,
            "STARTTLS" => TlsMode::Starttls,
            "PLAIN" => TlsMode::None,
            other => {
                return Err(AutoconfigError::SocketType {
                    what,
                    kind,
                    socket: other.to_owned(),
                })
            }
        };
        let username = match text("username") {
            u if u.is_empty() => email.to_owned(),
            u => u
                .replace("%EMAILADDRESS%", email)
                .replace("%EMAILLOCALPART%", local)
                .replace("%EMAILDOMAIN%", domain),
        };
        *slot = Some(FileServer {
            host: host.to_ascii_lowercase(),
            port,
            tls,
            username,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"<?xml version="1.0"?>
<clientConfig version="1.1">
  <emailProvider id="example.test">
    <domain>example.test</domain>
    <incomingServer type="pop3">
      <hostname>pop.example.test</hostname><port>995</port><socketType>SSL</socketType>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>imap.%EMAILDOMAIN%</hostname>
      <port>143</port>
      <socketType>STARTTLS</socketType>
      <username>%EMAILLOCALPART%</username>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>second.example.test</hostname><port>993</port><socketType>SSL</socketType>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>SMTP.example.test</hostname>
      <port>465</port>
      <socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>"#;

    #[test]
    fn reads_first_imap_and_smtp() {
        let p = parse(FILE, "ola@example.test").unwrap();
        assert_eq!(
            p.imap,
            Some(FileServer {
                host: "imap.example.test".into(),
                port: 143,
                tls: TlsMode::Starttls,
                username: "ola".into()
            })
        );
        let smtp = p.smtp.unwrap();
        assert_eq!(
            (
                smtp.host.as_str(),
                smtp.port,
                smtp.tls,
                smtp.username.as_str()
            ),
            (
                "smtp.example.test",
                465,
                TlsMode::Implicit,
                "ola@example.test"
            )
        );
        assert_eq!(p.other_incoming, ["pop3"]);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = parse("<clientConfig><emailProvider>", "a@b")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("malformed XML:"), "{e}");
        let e = parse("<html/>", "a@b").unwrap_err().to_string();
        assert!(e.contains("<html>"), "{e}");
        let e = parse(&FILE.replace("<port>143</port>", "<port>x</port>"), "a@b")
            .unwrap_err()
            .to_string();
        assert!(e.contains("<port> `x`"), "{e}");
        let e = parse(&FILE.replace("STARTTLS", "sometimes"), "a@b")
            .unwrap_err()
            .to_string();
        assert!(e.contains("socketType"), "{e}");
        // Hosts: an unknown placeholder, a port, a control character (DEL: XML allows it; shown escaped) are
        // refused; IP addresses are hosts.
        for (bad, shown) in [
            ("imap.%DOMAIN%", "\"imap.%DOMAIN%\""),
            ("imap.example.test:993", "\"imap.example.test:993\""),
            ("imap\u{7f}.example.test", "\"imap\\u{7f}.example.test\""),
            // Found by the `discovery` fuzz target: non-ASCII hosts used to pass.
            ("imäp.example.test", "\"imäp.example.test\""),
        ] {
            let e = parse(&FILE.replace("imap.%EMAILDOMAIN%", bad), "a@b")
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("<hostname> {shown}")), "{e}");
        }
        for ip in ["192.0.2.7", "2001:db8::7"] {
            let p = parse(&FILE.replace("imap.%EMAILDOMAIN%", ip), "a@b").unwrap();
            assert_eq!(p.imap.map(|s| s.host), Some(ip.to_owned()));
        }
        let pop_only = parse(
            "<clientConfig><emailProvider><incomingServer type='pop3'><hostname>p</hostname><port>995</port><socketType>SSL</socketType></incomingServer></emailProvider></clientConfig>",
            "a@b",
        )
        .unwrap();
        assert!(pop_only.imap.is_none() && pop_only.other_incoming == ["pop3"]);
        assert!(urls("a+b@x.test", "x.test")[0].ends_with("?emailaddress=a%2Bb%40x.test"));
    }
}
