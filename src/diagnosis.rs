//! What an upstream failure means, in one table keyed by its [`FailureKind`]: the words the
//! mail client hears (IMAP `NO`, SMTP reply), and the advice the log gives the operator.
//!
//! `mailgate check` and the running gateway read the same table: a setting that is wrong
//! (implicit TLS on a plaintext port, STARTTLS on an implicit-TLS port) gets the same
//! diagnosis from both, and the log points at `mailgate check EMAIL` for the steps.

use crate::upstream::{FailureKind, UpstreamError};

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

/// The IMAP client's tagged answer (after the tag) when the upstream login failed. An OAuth
/// failure has its own words (see [`crate::oauth::OAuthError::client_text`]).
pub fn imap_text(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Auth => "NO [AUTHENTICATIONFAILED] The mail provider rejected the credential stored in mailgate for this account; the administrator must update it.",
        FailureKind::Dns | FailureKind::Connect => "NO [UNAVAILABLE] The mail provider's server cannot be reached right now; try again later.",
        FailureKind::Tls => "NO [UNAVAILABLE] The TLS handshake with the mail provider's server failed (its certificate was refused, or no TLS version in common); see the mailgate log.",
        FailureKind::NotTls | FailureKind::ExpectsTls => "NO [UNAVAILABLE] mailgate's TLS setting for the mail provider's server does not fit its port (implicit TLS and STARTTLS swapped); the administrator can run `mailgate check` to see the fix.",
        FailureKind::Timeout => "NO [UNAVAILABLE] The mail provider's server did not answer in time; try again later.",
        FailureKind::Protocol => "NO [UNAVAILABLE] The mail provider's server could not be used as configured (see the mailgate log).",
        FailureKind::OAuth => "NO [UNAVAILABLE] mailgate could not get an OAuth access token (see the mailgate log).",
    }
}

/// The SMTP client's reply when the provider failed (not a reply of its own): a `451`, so the
/// client keeps the message and retries.
pub fn smtp_reply(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Timeout => "451 4.4.1 The mail provider's server did not answer in time; the message was not sent, try again later",
        FailureKind::Dns | FailureKind::Connect => "451 4.4.1 The mail provider's server cannot be reached right now; try again later",
        FailureKind::Auth => "451 4.7.0 The mail provider rejected the credential stored in mailgate for this account; the administrator must update it",
        FailureKind::Tls => "451 4.7.5 The TLS handshake with the mail provider's server failed; see the mailgate log",
        FailureKind::NotTls | FailureKind::ExpectsTls => "451 4.7.5 mailgate's TLS setting for the mail provider's server does not fit its port (implicit TLS and STARTTLS swapped); the administrator can run `mailgate check` to see the fix",
        FailureKind::Protocol => "451 4.4.2 The connection to the mail provider failed; the message was not sent, try again later",
        FailureKind::OAuth => "451 4.7.0 mailgate could not get an OAuth access token for this account; see the mailgate log",
    }
}

/// The `result` label of `mailgate_logins_total` for a login the provider did not complete:
/// the stored credential refused (or an OAuth authorization that must be redone), or the
/// provider not usable right now.
pub fn login_result(error: &UpstreamError) -> &'static str {
    match error {
        UpstreamError::Auth { .. } => "upstream_auth_failed",
        UpstreamError::OAuth { source } if source.needs_authorize() => "upstream_auth_failed",
        _ => "upstream_unavailable",
    }
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
        UpstreamError::NotTls { port, greeting, .. } => format!(
            "{}; {check}",
            plaintext_port(protocol, *port, greeting.as_deref())
        ),
        UpstreamError::ExpectsTls { port, .. } => {
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
        let e = UpstreamError::NotTls {
            address: "h:143".into(),
            port: 143,
            greeting: Some("* OK Dovecot ready.".into()),
        };
        assert_eq!(
            log_advice(&e, Protocol::Imap, "a@b"),
            "port 143 speaks plaintext IMAP (STARTTLS), not implicit TLS: set tls = \"starttls\" in [account.imap], or use port 993 with tls = \"implicit\"; `mailgate check a@b` shows each step"
        );
        let e = UpstreamError::ExpectsTls {
            address: "h:465".into(),
            port: 465,
            secs: 15,
        };
        assert!(log_advice(&e, Protocol::Smtp, "a@b").starts_with(
            "port 465 speaks implicit TLS (it waits for a TLS handshake, not a plaintext greeting): set tls = \"implicit\" in [account.smtp], or use port 587"
        ));
    }
}
