//! Finding an address's IMAP and SMTP settings, the way a mail client's account wizard does:
//!
//! 1. a built-in preset by the email domain ([`crate::provider`]), no network;
//! 2. the domain's MX records: Google Workspace and Microsoft 365 host custom domains, and
//!    their MX host names say so;
//! 3. Mozilla autoconfig files ([`autoconfig::urls`]);
//! 4. a guess: `imap.DOMAIN` / `mail.DOMAIN` on 993 then 143, `smtp.DOMAIN` / `mail.DOMAIN` on
//!    465 then 587. A probe is a TCP connect (plus the TLS handshake on implicit-TLS ports) and
//!    a look at the greeting; it never logs in.
//!
//! Each result says where it came from ([`Source`]), and every step that was tried and did not
//! answer is kept as a note, so a failure can say what was tried.
//!
//! A malformed autoconfig file stops discovery with an error naming the URL instead of falling
//! through to a guess: the domain's owner published settings, and a guess past a broken file
//! could send the password to a host the owner never meant.

pub mod autoconfig;
mod resolve;

pub use resolve::{load, resolve, ResolveError};

use crate::net::dns::Resolver;
use crate::net::http::HttpUrl;
use crate::net::{Target, TlsMode};
use crate::provider;
pub use crate::provider::{domain_of, from_preset, Discovery, Found, Source};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Largest autoconfig answer read (real files are a few KiB); see also the HTTP client's own cap.
const MAX_AUTOCONFIG: usize = 64 * 1024;

/// Why nothing usable was found.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// Not an address.
    #[error("`{0}` is not an email address")]
    NotAnAddress(String),
    /// A domain's autoconfig file could not be used.
    #[error("{url}: {reason}")]
    Autoconfig {
        /// The URL fetched.
        url: String,
        /// What is wrong with it.
        reason: autoconfig::AutoconfigError,
    },
    /// Every step came up empty.
    #[error("no IMAP server found for {domain}; tried:\n  {}", .tried.join("\n  "))]
    NotFound {
        /// The domain.
        domain: String,
        /// What was tried.
        tried: Vec<String>,
    },
}

impl DiscoverError {
    /// The `mailgate discover --json` document when nothing usable was found, so a script
    /// always gets one: `"found": false`, the error, and what was tried.
    pub fn to_json(&self, email: &str) -> serde_json::Value {
        let (tried, url): (&[String], Option<&str>) = match self {
            DiscoverError::NotFound { tried, .. } => (tried, None),
            DiscoverError::Autoconfig { url, .. } => (&[], Some(url)),
            DiscoverError::NotAnAddress(_) => (&[], None),
        };
        serde_json::json!({
            "email": email.trim(),
            "found": false,
            "error": self.to_string(),
            "autoconfig_url": url,
            "tried": tried,
        })
    }
}

/// How discovery runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Which DNS server answers (MX, and host names for autoconfig and probes).
    pub resolver: Resolver,
    /// Per connection / request / probe step.
    pub timeout: Duration,
    /// Extra CA for TLS probes (a private server); the normal roots otherwise.
    pub ca_file: Option<PathBuf>,
    /// Whether steps 2–4 may use the network (false: presets only).
    pub network: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            resolver: Resolver::System,
            timeout: Duration::from_secs(5),
            ca_file: None,
            network: true,
        }
    }
}

/// Runs the steps in order and returns the first answer.
pub async fn discover(email: &str, opts: &Options) -> Result<Discovery, DiscoverError> {
    let email = email.trim();
    let domain = domain_of(email).ok_or_else(|| DiscoverError::NotAnAddress(email.to_owned()))?;
    if let Some(p) = provider::by_domain(&domain) {
        return Ok(from_preset(email, p, Source::Domain(p.id)));
    }
    let mut notes = Vec::new();
    if !opts.network {
        notes.push(format!("no preset for {domain}"));
        return Err(DiscoverError::NotFound {
            domain,
            tried: notes,
        });
    }

    match tokio::time::timeout(opts.timeout * 4, opts.resolver.mx(&domain)).await {
        Err(_) => notes.push(format!("MX {domain}: no answer in time")),
        Ok(Err(e)) => notes.push(format!("MX {domain}: {e}")),
        Ok(Ok(mx)) if mx.is_empty() => notes.push(format!("MX {domain}: none")),
        Ok(Ok(mx)) => {
            if let Some((host, p)) = mx
                .iter()
                .find_map(|m| provider::by_mx(&m.host).map(|p| (m.host.clone(), p)))
            {
                let mut d = from_preset(email, p, Source::Mx { host, preset: p.id });
                d.notes = notes;
                return Ok(d);
            }
            notes.push(format!(
                "MX {domain}: {} (no known provider)",
                mx.iter()
                    .map(|m| m.host.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }

    for url in autoconfig::urls(email, &domain) {
        match fetch(&url, opts).await {
            Err(note) => notes.push(note),
            Ok(xml) => {
                let parsed =
                    autoconfig::parse(&xml, email).map_err(|reason| DiscoverError::Autoconfig {
                        url: url.clone(),
                        reason,
                    })?;
                match parsed.imap {
                    Some(imap) => {
                        let source = Source::Autoconfig(url.clone());
                        let found = |s: autoconfig::FileServer| Found {
                            host: s.host,
                            port: s.port,
                            tls: s.tls,
                            username: s.username,
                            source: source.clone(),
                        };
                        return Ok(Discovery {
                            email: email.to_owned(),
                            preset: None,
                            imap: found(imap),
                            smtp: parsed.smtp.map(found),
                            notes,
                        });
                    }
                    None if parsed.other_incoming.is_empty() => {
                        notes.push(format!("{url}: no IMAP server in the file"))
                    }
                    None => notes.push(format!(
                        "{url}: only {} offered (mailgate speaks IMAP only)",
                        parsed.other_incoming.join(", ")
                    )),
                }
            }
        }
    }

    let imap = guess(email, &domain, Proto::Imap, opts, &mut notes).await;
    let smtp = guess(email, &domain, Proto::Smtp, opts, &mut notes).await;
    match imap {
        Some(imap) => Ok(Discovery {
            email: email.to_owned(),
            preset: None,
            imap,
            smtp,
            notes,
        }),
        None => Err(DiscoverError::NotFound {
            domain,
            tried: notes,
        }),
    }
}

/// GET one autoconfig URL: the body of a 200 answer, or a note saying why not.
async fn fetch(url: &str, opts: &Options) -> Result<String, String> {
    let parsed = HttpUrl::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let resp = crate::net::http::get(&parsed, opts.resolver.server(), opts.timeout)
        .await
        .map_err(|e| e.to_string())?;
    if resp.status != 200 {
        return Err(format!("{url}: HTTP {}", resp.status));
    }
    if resp.body.len() > MAX_AUTOCONFIG {
        return Err(format!("{url}: larger than {MAX_AUTOCONFIG} bytes"));
    }
    String::from_utf8(resp.body.to_vec()).map_err(|_| format!("{url}: not UTF-8 text"))
}

/// Which protocol a probe checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// `* OK` greeting.
    Imap,
    /// `220` greeting.
    Smtp,
}

/// The guesses for a domain in the order they are preferred.
pub fn candidates(domain: &str, proto: Proto) -> Vec<(String, u16, TlsMode)> {
    let (first, ports) = match proto {
        Proto::Imap => ("imap", [(993, TlsMode::Implicit), (143, TlsMode::Starttls)]),
        Proto::Smtp => ("smtp", [(465, TlsMode::Implicit), (587, TlsMode::Starttls)]),
    };
    let mut out = Vec::new();
    for host in [format!("{first}.{domain}"), format!("mail.{domain}")] {
        for (port, tls) in ports {
            out.push((host.clone(), port, tls));
        }
    }
    out
}

/// Probes every candidate at once (bounded: four) and keeps the most preferred that answered.
async fn guess(
    email: &str,
    domain: &str,
    proto: Proto,
    opts: &Options,
    notes: &mut Vec<String>,
) -> Option<Found> {
    let mut set = tokio::task::JoinSet::new();
    let cands = candidates(domain, proto);
    for (i, (host, port, tls)) in cands.iter().cloned().enumerate() {
        let opts = opts.clone();
        set.spawn(async move { (i, probe(proto, &host, port, tls, &opts).await) });
    }
    let mut results: Vec<Option<Result<(), ProbeError>>> = (0..cands.len()).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        if let Ok((i, r)) = joined {
            results[i] = Some(r);
        }
    }
    let mut best = None;
    for ((host, port, tls), r) in cands.into_iter().zip(results) {
        match r {
            Some(Ok(())) if best.is_none() => {
                best = Some(Found {
                    host,
                    port,
                    tls,
                    username: email.to_owned(),
                    source: Source::Guess,
                })
            }
            Some(Ok(())) => {}
            Some(Err(e)) => notes.push(format!("guess {host}:{port}: {e}")),
            None => notes.push(format!("guess {host}:{port}: probe failed")),
        }
    }
    best
}

/// Why a guessed server is not taken.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The CA file cannot be used.
    #[error(transparent)]
    Trust(#[from] crate::net::tls::TlsError),
    /// The host cannot be checked against a certificate.
    #[error("`{0}` is not a valid TLS name")]
    Name(String),
    /// Connecting or the TLS handshake failed.
    #[error(transparent)]
    Connect(#[from] crate::net::ConnectError),
    /// Nothing came within the time-out.
    #[error("no greeting within {0} s")]
    Silent(u64),
    /// A POP3 greeting where IMAP was probed.
    #[error("a POP3 server, not IMAP (mailgate speaks IMAP only)")]
    Pop3,
    /// The connection closed without a greeting.
    #[error("no greeting")]
    NoGreeting,
    /// Another protocol's greeting (its first 80 characters).
    #[error("unexpected greeting `{0}`")]
    Unexpected(String),
}

/// Connects (TLS first on implicit ports) and checks the greeting; never logs in.
pub async fn probe(
    proto: Proto,
    host: &str,
    port: u16,
    tls: TlsMode,
    opts: &Options,
) -> Result<(), ProbeError> {
    let tls_config = match tls {
        TlsMode::None => None,
        _ => Some(crate::net::tls::client_config(opts.ca_file.as_deref())?),
    };
    let target = Target {
        host: host.to_owned(),
        port,
        tls,
        server_name: rustls_pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| ProbeError::Name(host.to_owned()))?,
        tls_config,
        ca_file: opts.ca_file.clone(),
    };
    let observe = &mut crate::net::connect::Unobserved;
    let tcp =
        crate::net::connect::tcp(&target, opts.timeout, opts.resolver.server(), observe).await?;
    let mut stream = match tls {
        TlsMode::Implicit => {
            crate::net::connect::tls_handshake(&target, tcp, opts.timeout, observe).await?
        }
        _ => crate::net::connect::UpstreamStream::Plain(tcp),
    };
    let mut buf = vec![0u8; 512];
    let mut got = 0;
    // Read until the first line ends (or 512 bytes), within the time-out.
    let read = async {
        while got < buf.len() && !buf[..got].contains(&b'\n') {
            match stream.read(&mut buf[got..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
    };
    if tokio::time::timeout(opts.timeout, read).await.is_err() && got == 0 {
        return Err(ProbeError::Silent(opts.timeout.as_secs()));
    }
    let line = String::from_utf8_lossy(&buf[..got]);
    let line = line.lines().next().unwrap_or_default().trim();
    let ok = match proto {
        Proto::Imap => line.starts_with("* OK") || line.starts_with("* PREAUTH"),
        Proto::Smtp => line.starts_with("220"),
    };
    if ok {
        Ok(())
    } else if line.starts_with("+OK") {
        Err(ProbeError::Pop3)
    } else if line.is_empty() {
        Err(ProbeError::NoGreeting)
    } else {
        Err(ProbeError::Unexpected(line.chars().take(80).collect()))
    }
}

impl Discovery {
    /// A warning when a server was found (not given by the user) without any encryption —
    /// an autoconfig file may say `plain`, and one read over http may have been changed on
    /// the way. `mailgate run` refuses such a server unless the config says
    /// `allow_plaintext = true`; `setup`, which writes that line, must not do so on a file's
    /// word alone (Thunderbird, too, makes the user confirm an unencrypted server). A server
    /// on a loopback address is exempt: nothing it is sent leaves the machine.
    pub fn plaintext_warning(&self) -> Option<String> {
        let unencrypted: Vec<String> = [("IMAP", Some(&self.imap)), ("SMTP", self.smtp.as_ref())]
            .into_iter()
            .filter_map(|(what, f)| Some((what, f?)))
            .filter(|(_, f)| {
                f.tls == TlsMode::None
                    && f.source != Source::Given
                    && !f.host.eq_ignore_ascii_case("localhost")
                    && !f
                        .host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            })
            .map(|(what, f)| format!("{what} server {} (from {})", f.address(), f.source))
            .collect();
        if unencrypted.is_empty() {
            return None;
        }
        Some(format!(
            "Warning: the {} offer{} no encryption: the provider password and all mail would \
             cross the network in clear.",
            unencrypted.join(" and the "),
            if unencrypted.len() == 1 { "s" } else { "" }
        ))
    }

    /// The human-readable report of `mailgate discover`.
    pub fn report(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.email);
        let line = |out: &mut String, what: &str, f: &Found| {
            let _ = writeln!(
                out,
                "  {what:<5} {} tls={} user={}\n        from {}",
                f.address(),
                f.tls.as_str(),
                f.username,
                f.source
            );
        };
        line(&mut out, "IMAP", &self.imap);
        match &self.smtp {
            Some(s) => line(&mut out, "SMTP", s),
            None => {
                let _ = writeln!(
                    out,
                    "  SMTP  not found (the account can receive but not send)"
                );
            }
        }
        if let Some(p) = self.preset {
            let auth: Vec<String> = p.auth.iter().map(|a| auth_word(*a)).collect();
            let _ = writeln!(out, "  provider: {} (provider = \"{}\")", p.name, p.id);
            let _ = writeln!(out, "  log in with: {}", auth.join(", "));
            if !p.advice.is_empty() {
                let _ = writeln!(out, "  note: {}", p.advice);
            }
            for (what, link) in [
                ("enable IMAP", p.help.enable_imap),
                ("app password", p.help.app_password),
                ("settings", p.help.settings),
            ] {
                if let Some(link) = link {
                    let _ = writeln!(out, "  {what}: {link}");
                }
            }
        }
        if let Some(w) = self.plaintext_warning() {
            let _ = writeln!(out, "  {w}");
        }
        for n in &self.notes {
            let _ = writeln!(out, "  tried: {n}");
        }
        out
    }

    /// The same as JSON (`mailgate discover --json`).
    pub fn to_json(&self) -> serde_json::Value {
        let server = |f: &Found| {
            serde_json::json!({
                "host": f.host,
                "port": f.port,
                "tls": f.tls.as_str(),
                "username": f.username,
                "source": f.source.to_string(),
            })
        };
        serde_json::json!({
            "email": self.email,
            "found": true,
            "imap": server(&self.imap),
            "smtp": self.smtp.as_ref().map(server),
            "provider": self.preset.map(|p| serde_json::json!({
                "id": p.id,
                "name": p.name,
                "auth": p.auth.iter().map(|a| auth_word(*a)).collect::<Vec<_>>(),
                "advice": p.advice,
                "enable_imap": p.help.enable_imap,
                "app_password": p.help.app_password,
                "settings": p.help.settings,
            })),
            "warning": self.plaintext_warning(),
            "tried": self.notes,
        })
    }
}

/// `password`, `app password`, `OAuth (google)`.
pub fn auth_word(a: provider::Auth) -> String {
    match a {
        provider::Auth::Password => "password".into(),
        provider::Auth::AppPassword => "app password".into(),
        provider::Auth::OAuth(Some(p)) => format!("OAuth ({})", oauth_name(p)),
        provider::Auth::OAuth(None) => "OAuth (give the endpoints in [account.oauth2])".into(),
    }
}

/// The `[account.oauth2] provider` word of an OAuth preset.
pub fn oauth_name(p: provider::OAuthProvider) -> &'static str {
    p.name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_in_thunderbird_order() {
        let c = candidates("example.test", Proto::Imap);
        assert_eq!(
            c.iter()
                .map(|(h, p, _)| format!("{h}:{p}"))
                .collect::<Vec<_>>(),
            [
                "imap.example.test:993",
                "imap.example.test:143",
                "mail.example.test:993",
                "mail.example.test:143"
            ]
        );
        let c = candidates("example.test", Proto::Smtp);
        assert_eq!(
            (c[0].1, c[0].2, c[1].1, c[1].2),
            (465, TlsMode::Implicit, 587, TlsMode::Starttls)
        );
        assert_eq!(domain_of("Ola@Example.TEST."), Some("example.test".into()));
        assert_eq!(domain_of("nope"), None);
    }

    #[test]
    fn plaintext_found_by_discovery_is_warned_about_given_or_loopback_is_not() {
        let at = |host: &str, tls: TlsMode, source: Source| Found {
            host: host.into(),
            port: 143,
            tls,
            username: "ola".into(),
            source,
        };
        let url = || Source::Autoconfig("http://autoconfig.x.test/mail/config-v1.1.xml".into());
        let mut d = Discovery {
            email: "ola@x.test".into(),
            preset: None,
            imap: at("imap.x.test", TlsMode::None, url()),
            smtp: Some(at("smtp.x.test", TlsMode::Starttls, url())),
            notes: Vec::new(),
        };
        assert_eq!(
            d.plaintext_warning().unwrap(),
            "Warning: the IMAP server imap.x.test:143 (from autoconfig \
             http://autoconfig.x.test/mail/config-v1.1.xml) offers no encryption: the provider \
             password and all mail would cross the network in clear."
        );
        d.smtp = Some(at("smtp.x.test", TlsMode::None, Source::Guess));
        let both = d.plaintext_warning().unwrap();
        assert!(
            both.contains("(from autoconfig http://autoconfig.x.test/mail/config-v1.1.xml) and the SMTP server smtp.x.test:143 (from guess (a server answered)) offer no"),
            "{both}"
        );
        d.smtp = None;
        for (host, source) in [
            ("imap.x.test", Source::Given),
            ("127.0.0.1", url()),
            ("::1", url()),
            ("LocalHost", url()),
        ] {
            d.imap = at(host, TlsMode::None, source);
            assert_eq!(d.plaintext_warning(), None, "{host}");
        }
        d.imap = at("imap.x.test", TlsMode::Implicit, url());
        assert_eq!(d.plaintext_warning(), None);
    }

    #[tokio::test]
    async fn preset_needs_no_network() {
        let opts = Options {
            network: false,
            ..Options::default()
        };
        let d = discover("ola@icloud.com", &opts).await.unwrap();
        assert_eq!(d.imap.username, "ola");
        assert_eq!(d.imap.source, Source::Domain("icloud"));
        assert_eq!(d.smtp.unwrap().username, "ola@icloud.com");
        let e = discover("ola@example.test", &opts).await.unwrap_err();
        assert!(e.to_string().contains("example.test"), "{e}");
    }
}
