//! One line of plain advice for each way a check can fail.
//!
//! The facts come from three places: the error the gateway's own code returned, what the
//! [`Trace`] recorded before it failed (greeting, capabilities), and, for TLS, the certificate
//! and verdict the [`super::inspect::Inspector`] saw. Provider-specific texts are matched on the
//! words the providers send (see the project's PROVIDERS.md): they are stable enough that
//! Thunderbird and other clients match them too.

use super::inspect::{CertInfo, Seen};
use super::{Kind, Protocol};
use crate::config::{Endpoint, TlsMode};
use crate::upstream::{Trace, UpstreamError};
use rustls::CertificateError;

/// What a second, diagnostic connection found out about the port (see `super::probe_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// No probe was made.
    NotRun,
    /// A plaintext connection got this first line.
    Plaintext(String),
    /// The port answered a TLS handshake.
    Tls,
    /// The probe learned nothing (no answer, or neither plaintext nor TLS).
    Nothing,
}

/// Everything the advice may look at.
pub struct Failure<'a> {
    /// IMAP or SMTP.
    pub protocol: Protocol,
    /// The step that failed.
    pub kind: Kind,
    /// The account's address.
    pub email: &'a str,
    /// The endpoint checked.
    pub ep: &'a Endpoint,
    /// The gateway's error.
    pub error: &'a UpstreamError,
    /// What the attempt got through.
    pub trace: &'a Trace,
    /// The certificate and verdict, if a handshake got that far.
    pub seen: Option<&'a Seen>,
    /// What a diagnostic connection found.
    pub probe: &'a Probe,
}

/// Help pages for the large providers whose error texts are matched below. Kept here until
/// the provider presets (`src/provider.rs`) carry them; sources: each provider's help centre.
struct Help {
    name: &'static str,
    app_password: &'static str,
    enable_imap: &'static str,
}

const GOOGLE: Help = Help {
    name: "Google",
    app_password: "https://support.google.com/accounts/answer/185833",
    enable_imap: "https://support.google.com/mail/answer/7126229",
};
/// Google's page for "Please log in via your web browser" (the sign-in it blocked).
const GOOGLE_WEB_LOGIN: &str = "https://support.google.com/mail/answer/78754";
const MICROSOFT: Help = Help {
    name: "Microsoft",
    app_password: "https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/deprecation-of-basic-authentication-exchange-online",
    enable_imap: "https://support.microsoft.com/office/pop-imap-and-smtp-settings-for-outlook-com-d088b986-291d-42b8-9564-9c414e2aa040",
};
const YAHOO: Help = Help {
    name: "Yahoo",
    app_password: "https://help.yahoo.com/kb/SLN15241.html",
    enable_imap: "https://help.yahoo.com/kb/SLN4075.html",
};
const AOL: Help = Help {
    name: "AOL",
    app_password: "https://help.aol.com/articles/Create-and-manage-app-password",
    enable_imap: "https://help.aol.com/articles/how-do-i-use-other-email-applications-to-send-and-receive-my-aol-mail",
};
const ZOHO: Help = Help {
    name: "Zoho",
    app_password:
        "https://www.zoho.com/mail/help/adminconsole/two-factor-authentication.html#alink5",
    enable_imap: "https://www.zoho.com/mail/help/imap-access.html",
};
const GMX: Help = Help {
    name: "GMX",
    app_password: "https://support.gmx.com/pop-imap/toggle.html",
    enable_imap: "https://support.gmx.com/pop-imap/toggle.html",
};

/// The provider behind the server (by host name) or the address (by domain), if known.
fn provider(ep: &Endpoint, email: &str) -> Option<&'static Help> {
    let host = ep.host.to_ascii_lowercase();
    let domain = email
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default();
    let is = |suffixes: &[&str]| {
        suffixes.iter().any(|s| {
            let dotted = format!(".{s}");
            host == *s || host.ends_with(&dotted) || domain == *s || domain.ends_with(&dotted)
        })
    };
    if is(&["gmail.com", "googlemail.com", "google.com"]) {
        Some(&GOOGLE)
    } else if is(&[
        "office365.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
    ]) {
        Some(&MICROSOFT)
    } else if is(&["yahoo.com", "ymail.com"]) {
        Some(&YAHOO)
    } else if is(&["aol.com"]) {
        Some(&AOL)
    } else if is(&["zoho.com", "zoho.eu", "zoho.in", "zoho.com.au", "zoho.jp"]) {
        Some(&ZOHO)
    } else if is(&["gmx.net", "gmx.de", "gmx.com"]) {
        Some(&GMX)
    } else {
        None
    }
}

impl Protocol {
    /// The config table of this protocol.
    fn table(self) -> &'static str {
        match self {
            Protocol::Imap => "[account.imap]",
            Protocol::Smtp => "[account.smtp]",
        }
    }

    /// The standard (implicit TLS, STARTTLS) ports.
    fn ports(self) -> (u16, u16) {
        match self {
            Protocol::Imap => (993, 143),
            Protocol::Smtp => (465, 587),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Protocol::Imap => "IMAP",
            Protocol::Smtp => "SMTP",
        }
    }

    /// Whether `line` is this protocol's greeting.
    fn greets_with(self, line: &str) -> bool {
        match self {
            Protocol::Imap => line.len() >= 4 && line[..4].eq_ignore_ascii_case("* OK"),
            Protocol::Smtp => line.starts_with("220"),
        }
    }

    fn other(self) -> Protocol {
        match self {
            Protocol::Imap => Protocol::Smtp,
            Protocol::Smtp => Protocol::Imap,
        }
    }
}

/// The advice for a failed step: one line, plain words.
pub fn advise(f: &Failure<'_>) -> String {
    if let Some(line) = greeting_problem(f) {
        return line;
    }
    match f.kind {
        Kind::Dns | Kind::Tcp => connection(f),
        Kind::Tls => tls(f),
        Kind::Greeting => greeting(f),
        Kind::Capabilities => format!(
            "the server's {} answer is not usable ({}); check that {} points at a real {} server",
            f.kind.label(f.protocol),
            f.error,
            f.protocol.table(),
            f.protocol.name()
        ),
        Kind::Login => login(f),
        Kind::Logout => "logging in works; the server did not end the session cleanly, which does not affect mailgate".into(),
    }
}

/// A greeting (seen directly or by the probe) that shows the wrong kind of server.
fn greeting_problem(f: &Failure<'_>) -> Option<String> {
    let line = match (f.probe, &f.trace.greeting) {
        (Probe::Plaintext(l), _) => l.as_str(),
        (_, Some(g)) => g.as_str(),
        _ => return None,
    };
    let address = f.ep.address();
    if line.starts_with("+OK") {
        return Some(format!(
            "{address} is a POP3 server: mailgate supports IMAP only; use the provider's IMAP server in {} (usually port 993 with tls = \"implicit\")",
            f.protocol.table()
        ));
    }
    let other = f.protocol.other();
    if other.greets_with(line) && !f.protocol.greets_with(line) {
        return Some(format!(
            "{address} is an {} server, not {}: put the {} server in {}",
            other.name(),
            f.protocol.name(),
            f.protocol.name(),
            f.protocol.table()
        ));
    }
    if let Probe::Plaintext(l) = f.probe {
        if f.protocol.greets_with(l) {
            let (implicit, _) = f.protocol.ports();
            let port = f.ep.port;
            let alternative = if port == implicit {
                String::new()
            } else {
                format!(", or use port {implicit} with tls = \"implicit\"")
            };
            return Some(format!(
                "port {port} speaks plaintext {} (STARTTLS), not implicit TLS: set tls = \"starttls\" in {}{alternative}",
                f.protocol.name(),
                f.protocol.table()
            ));
        }
    }
    None
}

fn connection(f: &Failure<'_>) -> String {
    let address = f.ep.address();
    match f.error {
        UpstreamError::Dns { host, .. } => format!(
            "the name {host} does not resolve: check the host name in {} and this machine's DNS/network",
            f.protocol.table()
        ),
        UpstreamError::Timeout { step, .. } if *step == "DNS lookup" => {
            "the DNS lookup timed out: check this machine's DNS/network".into()
        }
        UpstreamError::Connect { reason, .. } if reason.contains("refused") => format!(
            "nothing accepts connections on {address} (connection refused): the server is down or the port is wrong ({} uses {} with tls = \"implicit\" or {} with tls = \"starttls\")",
            f.protocol.name(),
            f.protocol.ports().0,
            f.protocol.ports().1
        ),
        UpstreamError::Connect { reason, .. } if reason.contains("no answer") => format!(
            "{address} does not answer (time-out): the server is down, or a firewall drops the connection"
        ),
        _ => format!(
            "{address} cannot be reached: the server is down, or the network or a firewall blocks it"
        ),
    }
}

fn tls(f: &Failure<'_>) -> String {
    let address = f.ep.address();
    let table = f.protocol.table();
    if let Some(Seen {
        end_entity,
        verdict: Err(rustls::Error::InvalidCertificate(cert_error)),
    }) = f.seen
    {
        let info = CertInfo::parse(end_entity);
        let names = info
            .as_ref()
            .map(|i| i.names.join(", "))
            .unwrap_or_else(|| "other names".into());
        let expected = f.ep.server_name.to_str();
        return match cert_error {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                let issuer = info.as_ref().map(|i| i.issuer.as_str()).unwrap_or("a CA");
                match &f.ep.ca_file {
                    None => format!(
                        "the certificate is issued by {issuer}, which this machine does not trust: if the server uses a private CA, save that CA's certificate as PEM and set ca_file = \"/path/to/ca.pem\" in {table}"
                    ),
                    Some(file) => format!(
                        "the certificate is issued by {issuer}, which neither the system roots nor ca_file {} trust: ca_file must hold the CA certificate that issued the server's certificate",
                        file.display()
                    ),
                }
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
                "the server's certificate expired on {}: its administrator must renew it (mailgate does not connect to servers with expired certificates)",
                info.as_ref().map(|i| i.not_after.as_str()).unwrap_or("an earlier date")
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
                "the server's certificate is not valid before {}: check this machine's clock",
                info.as_ref().map(|i| i.not_before.as_str()).unwrap_or("a later date")
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                "the certificate is for {names}, not for {expected}: set the server's host name to one of those in {table}, or tls_server_name = \"NAME\" when connecting by address"
            ),
            other => format!(
                "the server's certificate is not acceptable ({other:?}): ask the server's administrator"
            ),
        };
    }
    if let Probe::Tls = f.probe {
        // Plaintext greeting timed out on a STARTTLS/plaintext account, but the port speaks TLS.
        return implicit_tls_port(f);
    }
    if f.ep.tls == TlsMode::Starttls && !matches!(f.error, UpstreamError::Tls { .. }) {
        let offered = f
            .trace
            .capabilities
            .as_deref()
            .is_some_and(|c| c.iter().any(|c| c.eq_ignore_ascii_case("STARTTLS")));
        if !offered {
            return format!(
                "{address} does not offer STARTTLS: use port {} with tls = \"implicit\" in {table} (tls = \"none\" with allow_plaintext = true would send the password unencrypted)",
                f.protocol.ports().0
            );
        }
        return format!(
            "{address} refused STARTTLS ({}): try port {} with tls = \"implicit\"",
            f.error,
            f.protocol.ports().0
        );
    }
    format!(
        "the TLS handshake with {address} failed: the port may not speak TLS the way tls = \"{}\" says (implicit: {}, STARTTLS: {}), or the server only offers old TLS versions",
        f.ep.tls.as_str(),
        f.protocol.ports().0,
        f.protocol.ports().1
    )
}

/// "port 993 speaks implicit TLS: set tls = \"implicit\"".
fn implicit_tls_port(f: &Failure<'_>) -> String {
    let (_, starttls) = f.protocol.ports();
    let port = f.ep.port;
    let alternative = if port == starttls {
        String::new()
    } else {
        format!(", or use port {starttls} with tls = \"starttls\"")
    };
    format!(
        "port {port} speaks implicit TLS (it waits for a TLS handshake, not a plaintext greeting): set tls = \"implicit\" in {}{alternative}",
        f.protocol.table()
    )
}

fn greeting(f: &Failure<'_>) -> String {
    if let Probe::Tls = f.probe {
        return implicit_tls_port(f);
    }
    let address = f.ep.address();
    match (f.error, &f.trace.greeting) {
        (_, Some(g)) if g.to_ascii_uppercase().starts_with("* PREAUTH") => format!(
            "{address} logs every connection in without a password (PREAUTH): it is not a server mailgate can log in to as {}",
            f.email
        ),
        (_, Some(g)) if g.to_ascii_uppercase().starts_with("* BYE") || g.starts_with("554") || g.starts_with("421") => format!(
            "{address} turned the connection away: it may block this machine's address or be overloaded; try again later"
        ),
        (UpstreamError::Timeout { .. }, _) => format!(
            "{address} accepted the connection but sent no greeting in time: the port may be wrong, or the server is overloaded"
        ),
        (UpstreamError::Closed { .. }, _) => format!(
            "{address} closed the connection without a greeting: it may block this machine's address, or expect TLS (tls = \"implicit\")"
        ),
        _ => format!(
            "{address} does not greet like an {} server: check the host and port in {}",
            f.protocol.name(),
            f.protocol.table()
        ),
    }
}

fn login(f: &Failure<'_>) -> String {
    let table = f.protocol.table();
    let oauth = f.ep.oauth.is_some();
    let help = provider(f.ep, f.email);
    let reason = match f.error {
        UpstreamError::Auth { reason, .. } => reason.as_str(),
        UpstreamError::OAuth { source } => {
            return format!(
                "no usable OAuth token ({source}): run `mailgate oauth authorize {}`",
                f.email
            )
        }
        UpstreamError::Protocol { reason, .. } if reason.contains("OAuth token") => {
            return format!(
                "the server offers no OAuth mechanism here: remove [account.oauth2] and use an app password, or check the server ({reason})"
            )
        }
        UpstreamError::Protocol { reason, .. } => {
            return format!("logging in is not possible on this connection: {reason}")
        }
        _ => return "the connection failed while logging in: run the check again; if it persists, the server is unstable".into(),
    };
    let lower = reason.to_ascii_lowercase();
    let link = |h: Option<&Help>, page: fn(&Help) -> &'static str| {
        h.map(|h| format!(" ({} help: {})", h.name, page(h)))
            .unwrap_or_default()
    };
    if lower.contains("application-specific password required") {
        return format!(
            "Google requires an app password for this account (2-step verification is on): create one at {} and store it as the password in {table}, or use OAuth ([account.oauth2], then `mailgate oauth authorize {}`)",
            GOOGLE.app_password, f.email
        );
    }
    if lower.contains("please log in via your web browser") || lower.contains("web login required")
    {
        return format!(
            "Google blocked the sign-in and wants it confirmed in a web browser ({GOOGLE_WEB_LOGIN}): sign in there, or better, create an app password ({}) or use OAuth (`mailgate oauth authorize {}`)",
            GOOGLE.app_password, f.email
        );
    }
    if lower.contains("not enabled for imap")
        || lower.contains("enable imap")
        || lower.contains("imap access is disabled")
        || lower.contains("imap is disabled")
        || (lower.contains("imap") && lower.contains("disabled"))
    {
        return format!(
            "IMAP access is turned off for this mailbox at the provider: turn it on in the mailbox's web settings{}",
            link(help, |h| h.enable_imap)
        );
    }
    if lower.contains("user is authenticated but not connected") {
        return format!(
            "Microsoft accepted the token but it is not for this mailbox or lacks IMAP access: check the user name in {table} and the scopes, then run `mailgate oauth authorize {}`",
            f.email
        );
    }
    let microsoft_password_refused = reason.contains("AUTHENTICATE failed.")
        || reason.contains("LOGIN failed.")
        || lower.contains("basic authentication is disabled")
        || lower.contains("smtpclientauthentication is disabled");
    if microsoft_password_refused && !oauth {
        return format!(
            "Microsoft refuses passwords here (basic authentication is off): use OAuth — add [account.oauth2] and run `mailgate oauth authorize {}` ({})",
            f.email, MICROSOFT.app_password
        );
    }
    if lower.contains("invalid credentials") && !oauth {
        let h = match help {
            Some(h) if std::ptr::eq(h, &AOL) => &AOL,
            _ => &YAHOO,
        };
        return format!(
            "{} needs an app password here, not the account password: create one ({}) and store it in {table}",
            h.name, h.app_password
        );
    }
    if oauth {
        return format!(
            "the server refused the OAuth token for {}: run `mailgate oauth authorize {}` again and check the account's scopes",
            f.ep.username, f.email
        );
    }
    format!(
        "the server rejected the password for {}: re-enter the app password (or the account password) in {table} (password_env, password_file or password){}",
        f.ep.username,
        link(help, |h| h.app_password)
    )
}
