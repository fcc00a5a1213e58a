//! One line of plain advice for each way a check can fail.
//!
//! The facts come from three places: the error the gateway's own code returned, what the
//! [`crate::upstream::Trace`] recorded before it failed (greeting, capabilities), and, for
//! TLS, the certificate and verdict the [`super::inspect::Inspector`] saw. Provider-specific
//! refusals are matched on the words the providers send (kept as such in
//! [`UpstreamError::Auth`]'s `reason`); help links come from the provider presets
//! ([`crate::provider`]). The advice that the failure's kind alone decides comes from the
//! wording table, [`diagnosis::advice`].

use super::inspect::{CertInfo, Seen};
use super::{Kind, Protocol};
use crate::config::{Endpoint, TlsMode};
use crate::diagnosis;
use crate::provider::{self, Help, Preset};
use crate::upstream::{Steps, UpstreamError};
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
    pub trace: &'a Steps,
    /// The certificate and verdict, if a handshake got that far.
    pub seen: Option<&'a Seen>,
    /// What a diagnostic connection found.
    pub probe: &'a Probe,
    /// The SMTP endpoint uses `[account.imap]`'s password (see
    /// [`crate::config::Account::smtp_password_inherited`]).
    pub smtp_password_inherited: bool,
}

/// The preset of the provider behind the account: by the address's domain, else by the
/// server's host name (a custom domain hosted at a known provider).
fn provider(ep: &Endpoint, email: &str) -> Option<&'static Preset> {
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    provider::by_domain(domain).or_else(|| {
        provider::PRESETS.iter().find(|p| {
            p.imap.host.eq_ignore_ascii_case(&ep.target.host)
                || p.smtp.host.eq_ignore_ascii_case(&ep.target.host)
        })
    })
}

/// ` (Name help: URL)` for one of a preset's help pages, or nothing.
fn link(preset: Option<&Preset>, page: fn(&Help) -> Option<&'static str>) -> String {
    preset
        .and_then(|p| page(&p.help).map(|url| format!(" ({} help: {url})", p.name)))
        .unwrap_or_default()
}

/// The advice for a failed step: one line, plain words.
pub fn advise(f: &Failure<'_>) -> String {
    if let Some(line) = greeting_problem(f) {
        return line;
    }
    if let Some(line) = diagnosis::advice(f.error, f.protocol, f.ep, f.email) {
        return line;
    }
    match f.kind {
        Kind::Dns | Kind::Tcp => diagnosis::unreachable_server(&f.ep.address()),
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
    match f.probe {
        Probe::Plaintext(l) if f.protocol.greets_with(l) => Some(diagnosis::plaintext_port(
            f.protocol,
            f.ep.target.port,
            Some(l),
        )),
        _ => None,
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
        let expected = f.ep.target.server_name.to_str();
        return match cert_error {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                let issuer = info.as_ref().map(|i| i.issuer.as_str()).unwrap_or("a CA");
                match &f.ep.target.ca_file {
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
        return diagnosis::implicit_tls_port(f.protocol, f.ep.target.port);
    }
    // With STARTTLS, a protocol error here is about the STARTTLS exchange itself (not offered,
    // refused, or the capability/EHLO before it failed), not about the handshake.
    if let (TlsMode::Starttls, UpstreamError::Protocol { .. }) = (f.ep.target.tls, f.error) {
        let (implicit, _) = f.protocol.ports();
        return match f.trace.capabilities.as_deref() {
            Some(caps) if !caps.iter().any(|c| c.eq_ignore_ascii_case("STARTTLS")) => {
                diagnosis::no_starttls(f.protocol, &address)
            }
            Some(_) => format!(
                "{address} refused STARTTLS ({}): try port {implicit} with tls = \"implicit\" in {table}",
                f.error
            ),
            None => format!(
                "{address} failed before STARTTLS ({}): check that {table} names a real {} server",
                f.error,
                f.protocol.name()
            ),
        };
    }
    format!(
        "the TLS handshake with {address} failed: the port may not speak TLS the way tls = \"{}\" says (implicit: {}, STARTTLS: {}), or the server only offers old TLS versions",
        f.ep.target.tls.as_str(),
        f.protocol.ports().0,
        f.protocol.ports().1
    )
}

fn greeting(f: &Failure<'_>) -> String {
    if let Probe::Tls = f.probe {
        return diagnosis::implicit_tls_port(f.protocol, f.ep.target.port);
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
    let oauth = f.ep.credential.oauth().is_some();
    let preset = provider(f.ep, f.email);
    let reason = match f.error {
        UpstreamError::Auth { reason, .. } => reason.as_str(),
        UpstreamError::Protocol { reason, .. } => {
            return format!("logging in is not possible on this connection: {reason}")
        }
        _ => return "the connection failed while logging in: run the check again; if it persists, the server is unstable".into(),
    };
    let lower = reason.to_ascii_lowercase();
    if lower.contains("application-specific password required") {
        return format!(
            "Google requires an app password for this account (2-step verification is on): create one and store it as the password in {table}, or use OAuth ([account.oauth2], then `mailgate oauth authorize {}`){}",
            f.email,
            link(provider::by_id("gmail"), |h| h.app_password)
        );
    }
    if lower.contains("please log in via your web browser") || lower.contains("web login required")
    {
        return format!(
            "Google blocked the sign-in and wants it confirmed in a web browser: sign in to Gmail there once, or better, create an app password or use OAuth (`mailgate oauth authorize {}`){}",
            f.email,
            link(provider::by_id("gmail"), |h| h.app_password)
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
            link(preset, |h| h.enable_imap.or(h.settings))
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
            "Microsoft refuses passwords here (basic authentication is off): use OAuth — add [account.oauth2] with provider = \"microsoft\" and run `mailgate oauth authorize {}`{}",
            f.email,
            link(preset, |h| h.settings)
        );
    }
    if lower.contains("invalid credentials") && !oauth {
        // Yahoo's and AOL's words (one mail platform): the account password is refused.
        let preset = preset
            .filter(|p| p.id == "aol" || p.id == "yahoo")
            .or(provider::by_id("yahoo"));
        return format!(
            "{} needs an app password here, not the account password: create one and store it in {table}{}",
            preset.map_or("The provider", |p| p.name),
            link(preset, |h| h.app_password)
        );
    }
    if oauth {
        return format!(
            "the server refused the OAuth token for {}: run `mailgate oauth authorize {}` again and check the account's scopes",
            f.ep.username, f.email
        );
    }
    // An SMTP password taken over from [account.imap] is re-entered there.
    let table = if f.protocol == Protocol::Smtp && f.smtp_password_inherited {
        "[account.imap] (the SMTP login uses the IMAP password)"
    } else {
        table
    };
    format!(
        "the server rejected the password for {}: re-enter the app password (or the account password) in {table} (password_env, password_file or password){}",
        f.ep.username,
        link(preset, |h| h.app_password)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::net::ConnectError;
    use crate::upstream::ConnectCause;
    use std::path::Path;

    const HASH: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";

    /// An account `email` with IMAP and SMTP at `host`.
    fn config(email: &str, host: &str) -> Config {
        let text = format!(
            "[[account]]\nemail = \"{email}\"\nlocal_password_hash = \"{HASH}\"\n\
             [account.imap]\nserver = \"imap.{host}:993\"\npassword = \"x\"\n\
             [account.smtp]\nserver = \"smtp.{host}:587\"\ntls = \"starttls\"\n"
        );
        Config::parse(&text, Path::new("/etc/mailgate/test.toml")).expect("config")
    }

    fn advice(protocol: Protocol, kind: Kind, email: &str, host: &str, e: UpstreamError) -> String {
        let cfg = config(email, host);
        let account = &cfg.accounts[0];
        let ep = match protocol {
            Protocol::Imap => &account.imap,
            Protocol::Smtp => account.smtp.as_ref().expect("smtp"),
        };
        advise(&Failure {
            protocol,
            kind,
            email,
            ep,
            error: &e,
            trace: &Steps::default(),
            seen: None,
            probe: &Probe::NotRun,
            smtp_password_inherited: account.smtp_password_inherited,
        })
    }

    fn auth(reason: &str) -> UpstreamError {
        UpstreamError::Auth {
            address: "smtp.example:587".into(),
            username: "u".into(),
            reason: reason.into(),
        }
    }

    /// SMTP refusals as the providers word them → the advice's key words.
    #[test]
    fn smtp_refusals() {
        let cases: &[(&str, &str, &str, &[&str])] = &[
            (
                "a@gmail.com",
                "gmail.com",
                "534 5.7.9 Application-specific password required. For more information, go to https://support.google.com/mail/?p=InvalidSecondFactor",
                &["Google requires an app password", "https://support.google.com/accounts/answer/185833"],
            ),
            (
                "a@gmail.com",
                "gmail.com",
                "534 5.7.14 <https://accounts.google.com/signin/continue?x> Please log in via your web browser and then try again.",
                &["Google blocked the sign-in"],
            ),
            (
                "a@contoso.example",
                "office365.com",
                "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.",
                &["basic authentication is off", "mailgate oauth authorize a@contoso.example", "Microsoft 365 help"],
            ),
            (
                "a@contoso.example",
                "office365.com",
                "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
                &["basic authentication is off"],
            ),
            (
                "a@example.no",
                "example.no",
                "535 5.7.8 Error: authentication failed: authentication failure",
                &["rejected the password for a@example.no", "in [account.imap] (the SMTP login uses the IMAP password)"],
            ),
        ];
        for (email, host, reason, words) in cases {
            let text = advice(Protocol::Smtp, Kind::Login, email, host, auth(reason));
            for word in *words {
                assert!(
                    text.contains(word),
                    "{reason}: {word:?} missing in {text:?}"
                );
            }
        }
    }

    #[test]
    fn connection_failures_say_which() {
        let dns = UpstreamError::Net(ConnectError::Dns {
            host: "imap.nowhere.example".into(),
            reason: "failed to lookup address information".into(),
        });
        let text = advice(
            Protocol::Imap,
            Kind::Dns,
            "a@nowhere.example",
            "nowhere.example",
            dns,
        );
        assert!(
            text.starts_with("the name imap.nowhere.example does not resolve"),
            "{text}"
        );

        let timeout = UpstreamError::Net(ConnectError::Connect {
            address: "imap.example.no:993".into(),
            reason: "192.0.2.1:993: no answer within 15 s".into(),
            cause: ConnectCause::NoAnswer,
        });
        let text = advice(
            Protocol::Imap,
            Kind::Tcp,
            "a@example.no",
            "example.no",
            timeout,
        );
        assert!(text.contains("does not answer (time-out)"), "{text}");

        let greeting = UpstreamError::Timeout {
            address: "imap.example.no:993".into(),
            secs: 15,
            step: "greeting",
        };
        let text = advice(
            Protocol::Imap,
            Kind::Greeting,
            "a@example.no",
            "example.no",
            greeting,
        );
        assert!(text.contains("sent no greeting in time"), "{text}");
    }

    #[test]
    fn starttls_not_offered() {
        let cfg = config("a@example.no", "example.no");
        let ep = cfg.accounts[0].smtp.as_ref().expect("smtp");
        let trace = Steps {
            capabilities: Some(vec!["PIPELINING".into(), "AUTH PLAIN".into()]),
            ..Steps::default()
        };
        let e = UpstreamError::Protocol {
            address: ep.address(),
            reason: "the server does not offer STARTTLS".into(),
        };
        let text = advise(&Failure {
            protocol: Protocol::Smtp,
            kind: Kind::Tls,
            email: "a@example.no",
            ep,
            error: &e,
            trace: &trace,
            seen: None,
            probe: &Probe::NotRun,
            smtp_password_inherited: false,
        });
        assert!(
            text.starts_with("smtp.example.no:587 does not offer STARTTLS: use port 465 with tls = \"implicit\" in [account.smtp]"),
            "{text}"
        );
    }

    /// An OAuth account on a server without an OAuth mechanism: told by the error's kind.
    #[test]
    fn no_oauth_mechanism() {
        let e = UpstreamError::NoOAuthMechanism {
            address: "imap.example.no:993".into(),
            reason: "the server does not offer AUTH=XOAUTH2 (offered: AUTH=PLAIN)".into(),
        };
        let text = advice(Protocol::Imap, Kind::Login, "a@example.no", "example.no", e);
        assert!(
            text.starts_with("the server offers no OAuth mechanism here: remove [account.oauth2]"),
            "{text}"
        );
    }
}
