//! Servers typed in by hand, the way a mail client's manual set-up asks for them: IMAP
//! `host:port` and its security, optionally SMTP, and the user name at the provider. The
//! wizard's questions, its `--imap-server` options and the connect page's advanced form all
//! come here.

use crate::config::TlsMode;
use crate::discover::{Discovery, Found, Source};

/// A `host:port` that is not one. Carries the text as typed (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// No `:PORT`.
    #[error("`{0}` is not HOST:PORT")]
    NotHostPort(String),
    /// The port is not a number from 1 to 65535.
    #[error("`{0}`: bad port")]
    BadPort(String),
    /// Nothing before the colon.
    #[error("`{0}`: no host")]
    NoHost(String),
}

/// Which of the typed servers is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The incoming (IMAP) server.
    Imap,
    /// The outgoing (SMTP) server.
    Smtp,
}

/// A server of [`Manual`] that is not `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} server {error}", match .which { Which::Imap => "IMAP", Which::Smtp => "SMTP" })]
pub struct ManualError {
    /// Which server.
    pub which: Which,
    /// What is wrong with it.
    pub error: AddressError,
}

/// Servers given by hand.
#[derive(Debug, Clone, Copy)]
pub struct Manual<'a> {
    /// IMAP `host:port` (`[v6]:port` too).
    pub imap: &'a str,
    /// Its security.
    pub imap_tls: TlsMode,
    /// SMTP `host:port` and security; `None`: the account only receives.
    pub smtp: Option<(&'a str, TlsMode)>,
    /// The user name at the provider; `None` or empty: the email address.
    pub username: Option<&'a str>,
}

/// `host:port` (brackets around an IPv6 address taken off).
pub fn host_port(text: &str) -> Result<(String, u16), AddressError> {
    let (host, port) = text
        .trim()
        .rsplit_once(':')
        .ok_or_else(|| AddressError::NotHostPort(text.to_owned()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| AddressError::BadPort(text.to_owned()))?;
    if host.is_empty() {
        return Err(AddressError::NoHost(text.to_owned()));
    }
    Ok((host.to_owned(), port))
}

/// A security word: `tls` (or `ssl`, `implicit`), `starttls`, `none`; any case.
pub fn security(word: &str) -> Option<TlsMode> {
    match word.trim().to_ascii_lowercase().as_str() {
        "tls" | "ssl" | "implicit" => Some(TlsMode::Implicit),
        "starttls" => Some(TlsMode::Starttls),
        "none" => Some(TlsMode::None),
        _ => None,
    }
}

/// The usual security of a port: 143, 587 and 25 are STARTTLS ports; anything else is taken
/// as implicit TLS.
pub fn default_security(port: u16) -> TlsMode {
    match port {
        143 | 587 | 25 => TlsMode::Starttls,
        _ => TlsMode::Implicit,
    }
}

/// The settings [`super::Plan`] takes for servers given by hand (source `Given`, so they are
/// written out as `server`/`tls`); the preset of the address's domain, if any, still gives
/// its advice.
pub fn manual(email: &str, m: &Manual) -> Result<Discovery, ManualError> {
    let username = m
        .username
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .unwrap_or(email)
        .to_owned();
    let found = |which, text: &str, tls| -> Result<Found, ManualError> {
        let (host, port) = host_port(text).map_err(|error| ManualError { which, error })?;
        Ok(Found {
            host,
            port,
            tls,
            username: username.clone(),
            source: Source::Given,
        })
    };
    Ok(Discovery {
        email: email.to_owned(),
        preset: crate::discover::domain_of(email).and_then(|d| crate::provider::by_domain(&d)),
        imap: found(Which::Imap, m.imap, m.imap_tls)?,
        smtp: m
            .smtp
            .map(|(text, tls)| found(Which::Smtp, text, tls))
            .transpose()?,
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_and_its_errors() {
        assert_eq!(host_port(" h.example:993 "), Ok(("h.example".into(), 993)));
        assert_eq!(host_port("[::1]:143"), Ok(("::1".into(), 143)));
        assert_eq!(host_port("h"), Err(AddressError::NotHostPort("h".into())));
        assert_eq!(host_port("h:0"), Err(AddressError::BadPort("h:0".into())));
        assert_eq!(host_port("h:x"), Err(AddressError::BadPort("h:x".into())));
        assert_eq!(host_port(":1"), Err(AddressError::NoHost(":1".into())));
    }

    #[test]
    fn manual_servers() {
        let m = Manual {
            imap: "imap.example.no:143",
            imap_tls: TlsMode::Starttls,
            smtp: Some(("smtp.example.no:465", TlsMode::Implicit)),
            username: Some(" ola "),
        };
        let d = manual("ola@example.no", &m).unwrap();
        assert_eq!(
            (d.imap.host.as_str(), d.imap.port),
            ("imap.example.no", 143)
        );
        assert_eq!(d.imap.username, "ola");
        let smtp = d.smtp.unwrap();
        assert_eq!((smtp.port, smtp.tls), (465, TlsMode::Implicit));
        assert!(matches!(smtp.source, Source::Given));
        let bad = Manual {
            smtp: Some(("smtp", TlsMode::None)),
            username: None,
            ..m
        };
        let e = manual("ola@example.no", &bad).unwrap_err();
        assert_eq!(e.which, Which::Smtp);
        assert_eq!(e.to_string(), "SMTP server `smtp` is not HOST:PORT");
        assert_eq!(security("SSL"), Some(TlsMode::Implicit));
        assert_eq!(security("x"), None);
    }
}
