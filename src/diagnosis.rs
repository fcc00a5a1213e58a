//! What an upstream failure means, in one table keyed by its [`FailureKind`]: the words the
//! mail client hears (IMAP `NO`, SMTP reply), the metric's `kind` label, the advice the log
//! gives the operator, and `mailgate check`'s advice where the kind alone decides it.
//!
//! `mailgate check` and the running gateway read the same table: a setting that is wrong
//! (implicit TLS on a plaintext port, STARTTLS on an implicit-TLS port) gets the same
//! diagnosis from both, and the log points at `mailgate check EMAIL` for the steps. Rewording
//! an error's message changes no decision: every decision here is made on the kind (or the
//! typed fields of the error), never on its text.

use crate::config::Endpoint;
use crate::net::ConnectError;
use crate::upstream::{ConnectCause, FailureKind, UpstreamError};
use std::borrow::Cow;

/// The protocol of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The account's IMAP server.
    Imap,
    /// The account's SMTP submission server.
    Smtp,
}

impl Protocol {
    /// The config table of this protocol.
    pub fn table(self) -> &'static str {
        match self {
            Protocol::Imap => "[account.imap]",
            Protocol::Smtp => "[account.smtp]",
        }
    }

    /// The standard (implicit TLS, STARTTLS) ports.
    pub fn ports(self) -> (u16, u16) {
        match self {
            Protocol::Imap => (993, 143),
            Protocol::Smtp => (465, 587),
        }
    }

    /// `IMAP`, `SMTP`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Imap => "IMAP",
            Protocol::Smtp => "SMTP",
        }
    }

    /// Whether `line` is this protocol's greeting.
    pub fn greets_with(self, line: &str) -> bool {
        match self {
            Protocol::Imap => line.len() >= 4 && line[..4].eq_ignore_ascii_case("* OK"),
            Protocol::Smtp => line.starts_with("220"),
        }
    }

    /// The other one.
    pub fn other(self) -> Protocol {
        match self {
            Protocol::Imap => Protocol::Smtp,
            Protocol::Smtp => Protocol::Imap,
        }
    }
}

impl FailureKind {
    /// The `kind` label of `mailgate_upstream_errors_total` and of log lines.
    pub fn label(self) -> &'static str {
        use FailureKind as K;
        match self {
            K::Dns => "dns",
            K::Connect(_) => "connect",
            K::Tls(_) => "tls",
            K::NotTls | K::ExpectsTls => "tls_mode",
            K::Timeout | K::DnsTimeout => "timeout",
            K::Protocol | K::NoStarttls | K::NoOAuthMechanism => "protocol",
            K::Auth => "auth",
            K::OAuthUnavailable | K::OAuthRevoked => "oauth",
            K::StoreUnavailable => "store",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// A login that needed the shared store while it is down: temporary, and never "wrong
/// password" (the client's own password was right, or not yet judged).
const STORE_IMAP: &str =
    "NO [UNAVAILABLE] mailgate's account store cannot be reached right now; try again later.";
const STORE_SMTP: &str =
    "451 4.3.0 mailgate's account store cannot be reached right now; try again later";

/// The IMAP client's tagged answer (after the tag) when the upstream login failed. An OAuth
/// failure has its own words (see [`crate::oauth::OAuthError::client_text`]).
pub fn imap_text(kind: FailureKind) -> &'static str {
    use FailureKind as K;
    match kind {
        K::Auth => "NO [AUTHENTICATIONFAILED] The mail provider rejected the credential stored in mailgate for this account; the administrator must update it.",
        K::Dns | K::Connect(_) => "NO [UNAVAILABLE] The mail provider's server cannot be reached right now; try again later.",
        K::Tls(_) => "NO [UNAVAILABLE] The TLS handshake with the mail provider's server failed (its certificate was refused, or no TLS version in common); see the mailgate log.",
        K::NotTls | K::ExpectsTls => "NO [UNAVAILABLE] mailgate's TLS setting for the mail provider's server does not fit its port (implicit TLS and STARTTLS swapped); the administrator can run `mailgate check` to see the fix.",
        K::Timeout | K::DnsTimeout => "NO [UNAVAILABLE] The mail provider's server did not answer in time; try again later.",
        K::Protocol | K::NoStarttls | K::NoOAuthMechanism => "NO [UNAVAILABLE] The mail provider's server could not be used as configured (see the mailgate log).",
        K::OAuthUnavailable | K::OAuthRevoked => "NO [UNAVAILABLE] mailgate could not get an OAuth access token (see the mailgate log).",
        K::StoreUnavailable => STORE_IMAP,
    }
}

/// The SMTP client's reply when the provider failed (not a reply of its own): a `451`, so the
/// client keeps the message and retries.
pub fn smtp_reply(kind: FailureKind) -> &'static str {
    use FailureKind as K;
    match kind {
        K::Timeout | K::DnsTimeout => "451 4.4.1 The mail provider's server did not answer in time; the message was not sent, try again later",
        K::Dns | K::Connect(_) => "451 4.4.1 The mail provider's server cannot be reached right now; try again later",
        K::Auth => "451 4.7.0 The mail provider rejected the credential stored in mailgate for this account; the administrator must update it",
        K::Tls(_) => "451 4.7.5 The TLS handshake with the mail provider's server failed; see the mailgate log",
        K::NotTls | K::ExpectsTls => "451 4.7.5 mailgate's TLS setting for the mail provider's server does not fit its port (implicit TLS and STARTTLS swapped); the administrator can run `mailgate check` to see the fix",
        K::Protocol | K::NoStarttls | K::NoOAuthMechanism => "451 4.4.2 The connection to the mail provider failed; the message was not sent, try again later",
        K::OAuthUnavailable | K::OAuthRevoked => "451 4.7.0 mailgate could not get an OAuth access token for this account; see the mailgate log",
        K::StoreUnavailable => STORE_SMTP,
    }
}

/// The IMAP client's tagged answer (after the tag) when the upstream login failed, an OAuth
/// failure in its own words: `AUTHENTICATIONFAILED` when the operator must authorize again,
/// `UNAVAILABLE` when waiting may help.
pub fn imap_login_text(error: &UpstreamError) -> Cow<'static, str> {
    match (error.kind(), error) {
        (FailureKind::StoreUnavailable, _) => STORE_IMAP.into(),
        (FailureKind::OAuthRevoked, UpstreamError::OAuth { source }) => {
            format!("NO [AUTHENTICATIONFAILED] {}.", source.client_text()).into()
        }
        (_, UpstreamError::OAuth { source }) => {
            format!("NO [UNAVAILABLE] {}.", source.client_text()).into()
        }
        (kind, _) => imap_text(kind).into(),
    }
}

/// The SMTP reply when the upstream connection (and login) failed. A missing or revoked OAuth
/// authorization is `451 4.7.0`, not `535`: the client's own login to mailgate was right, and a
/// temporary code makes it keep the message and retry after the operator re-authorizes, where
/// a 5xx would bounce it.
pub fn smtp_login_reply(error: &UpstreamError) -> Cow<'static, str> {
    match error {
        _ if error.kind() == FailureKind::StoreUnavailable => STORE_SMTP.into(),
        UpstreamError::OAuth { source } => format!("451 4.7.0 {}", source.client_text()).into(),
        other => smtp_reply(other.kind()).into(),
    }
}

/// The `result` label of `mailgate_logins_total` for a login the provider did not complete:
/// the stored credential refused (or an OAuth authorization that must be redone), or the
/// provider not usable right now.
pub fn login_result(error: &UpstreamError) -> &'static str {
    match error.kind() {
        FailureKind::Auth | FailureKind::OAuthRevoked => "upstream_auth_failed",
        _ => "upstream_unavailable",
    }
}

/// The advice of `mailgate check` for the failures whose kind alone decides it; `None` for the
/// ones that need more (the certificate seen, the greeting, the provider's own words).
pub fn advice(
    error: &UpstreamError,
    protocol: Protocol,
    ep: &Endpoint,
    email: &str,
) -> Option<String> {
    use FailureKind as K;
    let address = ep.address();
    let table = protocol.table();
    let (implicit, starttls) = protocol.ports();
    Some(match (error.kind(), error) {
        (_, UpstreamError::Net(ConnectError::Dns { host, .. })) => format!(
            "the name {host} does not resolve: check the host name in {table} and this machine's DNS/network"
        ),
        (K::DnsTimeout, _) => "the DNS lookup timed out: check this machine's DNS/network".into(),
        (K::Connect(ConnectCause::Refused), _) => format!(
            "nothing accepts connections on {address} (connection refused): the server is down or the port is wrong ({} uses {implicit} with tls = \"implicit\" or {starttls} with tls = \"starttls\")",
            protocol.name()
        ),
        (K::Connect(ConnectCause::NoAnswer), _) => format!(
            "{address} does not answer (time-out): the server is down, or a firewall drops the connection"
        ),
        (K::Connect(ConnectCause::Other), _) => unreachable_server(&address),
        (_, UpstreamError::Net(ConnectError::NotTls { port, greeting, .. })) => {
            plaintext_port(protocol, *port, greeting.as_deref())
        }
        (_, UpstreamError::Net(ConnectError::ExpectsTls { port, .. })) => {
            implicit_tls_port(protocol, *port)
        }
        (K::NoStarttls, _) => no_starttls(protocol, &address),
        (_, UpstreamError::NoOAuthMechanism { reason, .. }) => format!(
            "the server offers no OAuth mechanism here: remove [account.oauth2] and use an app password, or check the server ({reason})"
        ),
        (K::StoreUnavailable, _) => "the shared store (PostgreSQL) cannot be reached: check the database and [store] postgres; logins that need it fail with a temporary error until it is back".into(),
        (_, UpstreamError::OAuth { source }) => format!(
            "no usable OAuth token ({source}): run `mailgate oauth authorize {email}`"
        ),
        _ => return None,
    })
}

/// An address that cannot be reached, for no reason more specific.
pub fn unreachable_server(address: &str) -> String {
    format!(
        "{address} cannot be reached: the server is down, or the network or a firewall blocks it"
    )
}

/// A server that does not offer STARTTLS where `tls = "starttls"` wants it.
pub fn no_starttls(protocol: Protocol, address: &str) -> String {
    format!(
        "{address} does not offer STARTTLS: use port {} with tls = \"implicit\" in {} (tls = \"none\" with allow_plaintext = true would send the password unencrypted)",
        protocol.ports().0,
        protocol.table()
    )
}

/// "port 993 speaks implicit TLS: set tls = \"implicit\"" — an implicit-TLS port configured
/// with `tls = "starttls"` or `"none"`.
pub fn implicit_tls_port(protocol: Protocol, port: u16) -> String {
    let (_, starttls) = protocol.ports();
    let alternative = if port == starttls {
        String::new()
    } else {
        format!(", or use port {starttls} with tls = \"starttls\"")
    };
    format!(
        "port {port} speaks implicit TLS (it waits for a TLS handshake, not a plaintext greeting): set tls = \"implicit\" in {}{alternative}",
        protocol.table()
    )
}

/// A plaintext port configured with `tls = "implicit"`; `greeting` is what a plaintext
/// connection got, if anything.
pub fn plaintext_port(protocol: Protocol, port: u16, greeting: Option<&str>) -> String {
    let (implicit, _) = protocol.ports();
    let alternative = if port == implicit {
        String::new()
    } else {
        format!(", or use port {implicit} with tls = \"implicit\"")
    };
    let table = protocol.table();
    match greeting {
        Some(line) if protocol.greets_with(line) => format!(
            "port {port} speaks plaintext {} (STARTTLS), not implicit TLS: set tls = \"starttls\" in {table}{alternative}",
            protocol.name()
        ),
        _ => format!(
            "port {port} does not speak TLS (it answered the TLS handshake in plaintext): if it is a STARTTLS port set tls = \"starttls\" in {table}{alternative}"
        ),
    }
}

/// The operator's advice for `error` in the log: what to change where the kind says it, and
/// always where to see every step.
pub fn log_advice(error: &UpstreamError, protocol: Protocol, email: &str) -> String {
    let check = format!("`mailgate check {email}` shows each step");
    match error {
        UpstreamError::Net(ConnectError::NotTls { port, greeting, .. }) => format!(
            "{}; {check}",
            plaintext_port(protocol, *port, greeting.as_deref())
        ),
        UpstreamError::Net(ConnectError::ExpectsTls { port, .. }) => {
            format!("{}; {check}", implicit_tls_port(protocol, *port))
        }
        _ => format!("{check} and what to do"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_mode_advice_names_the_setting() {
        let e = UpstreamError::Net(ConnectError::NotTls {
            address: "h:143".into(),
            port: 143,
            greeting: Some("* OK Dovecot ready.".into()),
        });
        assert_eq!(
            log_advice(&e, Protocol::Imap, "a@b"),
            "port 143 speaks plaintext IMAP (STARTTLS), not implicit TLS: set tls = \"starttls\" in [account.imap], or use port 993 with tls = \"implicit\"; `mailgate check a@b` shows each step"
        );
        let e = UpstreamError::Net(ConnectError::ExpectsTls {
            address: "h:465".into(),
            port: 465,
            secs: 15,
        });
        assert!(log_advice(&e, Protocol::Smtp, "a@b").starts_with(
            "port 465 speaks implicit TLS (it waits for a TLS handshake, not a plaintext greeting): set tls = \"implicit\" in [account.smtp], or use port 587"
        ));
    }

    /// The finer kinds keep the client's words and the metric label of the kind they were
    /// split from: only the advice may tell them apart.
    #[test]
    fn finer_kinds_keep_the_client_words() {
        use crate::upstream::TlsFailure;
        for (fine, coarse) in [
            (FailureKind::NoStarttls, FailureKind::Protocol),
            (FailureKind::NoOAuthMechanism, FailureKind::Protocol),
            (FailureKind::DnsTimeout, FailureKind::Timeout),
            (FailureKind::OAuthRevoked, FailureKind::OAuthUnavailable),
            (
                FailureKind::Tls(TlsFailure::Expired),
                FailureKind::Tls(TlsFailure::Other),
            ),
            (
                FailureKind::Connect(ConnectCause::Refused),
                FailureKind::Connect(ConnectCause::Other),
            ),
        ] {
            assert_eq!(fine.label(), coarse.label());
            assert_eq!(imap_text(fine), imap_text(coarse));
            assert_eq!(smtp_reply(fine), smtp_reply(coarse));
        }
    }

    #[test]
    fn tls_failures_by_certificate_error() {
        use crate::upstream::TlsFailure;
        use rustls::CertificateError as C;
        let of = |c| TlsFailure::of(&rustls::Error::InvalidCertificate(c));
        assert_eq!(of(C::UnknownIssuer), TlsFailure::UntrustedIssuer);
        assert_eq!(of(C::Expired), TlsFailure::Expired);
        assert_eq!(of(C::NotValidForName), TlsFailure::WrongName);
        assert_eq!(of(C::NotValidYet), TlsFailure::Other);
    }

    /// An OAuth failure is told in its own words, and its kind decides whether the login
    /// counts as refused (authorize again) or as the provider being unavailable (wait).
    #[test]
    fn oauth_failures_by_kind() {
        use crate::oauth::OAuthError;
        let revoked = UpstreamError::from(OAuthError::Revoked {
            account: "a@b.c".into(),
            detail: "invalid_grant".into(),
        });
        let down = UpstreamError::from(OAuthError::Refresh {
            account: "a@b.c".into(),
            detail: "HTTP 503".into(),
        });
        assert_eq!(revoked.kind(), FailureKind::OAuthRevoked);
        assert_eq!(down.kind(), FailureKind::OAuthUnavailable);
        assert!(imap_login_text(&revoked)
            .starts_with("NO [AUTHENTICATIONFAILED] mailgate has no valid OAuth authorization"));
        assert!(imap_login_text(&down)
            .starts_with("NO [UNAVAILABLE] mailgate could not get an OAuth access token"));
        assert!(smtp_login_reply(&revoked)
            .starts_with("451 4.7.0 mailgate has no valid OAuth authorization"));
        assert_eq!(login_result(&revoked), "upstream_auth_failed");
        assert_eq!(login_result(&down), "upstream_unavailable");
    }

    /// The shared store down: a temporary failure in both protocols, by its kind, never a
    /// refused credential.
    #[test]
    fn store_unavailable_is_temporary() {
        use crate::oauth::store::StoreError;
        use crate::oauth::OAuthError;
        let down = UpstreamError::from(OAuthError::Store(StoreError::Unavailable {
            reason: "connection refused".into(),
        }));
        assert_eq!(down.kind(), FailureKind::StoreUnavailable);
        assert!(imap_login_text(&down).starts_with("NO [UNAVAILABLE] mailgate's account store"));
        assert!(smtp_login_reply(&down).starts_with("451 4.3.0 "));
        assert_eq!(login_result(&down), "upstream_unavailable");
        assert_eq!(down.kind().label(), "store");
    }
}
