//! Built-in provider presets: email domain → IMAP and SMTP endpoints, TLS mode, user-name form,
//! the ways the provider accepts a login, and where its help pages are.
//!
//! One table, [`PRESETS`] (in `table.rs`), each entry with a comment naming where its facts
//! come from (Mozilla Thunderbird's ISPDB, `ispdb/*.xml` in the thunderbird/autoconfig
//! repository, and the provider's own help pages). The table is data only: no network, so
//! presets resolve when the config is loaded. An entry that accepts OAuth names an
//! [`OAuthProvider`]; its endpoints and scopes are in `oauth.rs`, once per identity provider.
//! `servers.rs` turns a preset into the servers of one address ([`Discovery`]), the form
//! network discovery gives too.
//!
//! `mailgate check` reuses [`Preset::help`] and [`Preset::advice`] for its one-line advice.

mod oauth;
mod servers;
mod table;

pub use oauth::{IdentityPreset, OAuthProvider};
pub use servers::{domain_of, from_preset, Discovery, Found, Source};
pub use table::PRESETS;

use crate::net::TlsMode;

/// How the provider wants the user name written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserName {
    /// The full email address (`%EMAILADDRESS%` in autoconfig).
    Email,
    /// The part before the `@` (`%EMAILLOCALPART%`), e.g. iCloud's IMAP login.
    LocalPart,
}

impl UserName {
    /// The user name for `email` in this form.
    pub fn apply(self, email: &str) -> String {
        match self {
            UserName::Email => email.to_owned(),
            UserName::LocalPart => email
                .rsplit_once('@')
                .map_or(email, |(local, _)| local)
                .to_owned(),
        }
    }

    /// The word used in `mailgate discover` output.
    pub fn as_str(self) -> &'static str {
        match self {
            UserName::Email => "email address",
            UserName::LocalPart => "local part",
        }
    }
}

/// One server of a preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Server {
    /// Host name.
    pub host: &'static str,
    /// TCP port.
    pub port: u16,
    /// Implicit TLS or STARTTLS (no preset uses plaintext).
    pub tls: TlsMode,
    /// How the user name is formed from the email address.
    pub username: UserName,
}

/// A way the provider accepts a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The account's normal password.
    Password,
    /// A generated application password (usually needs 2-step verification turned on).
    AppPassword,
    /// OAuth 2.0 tokens; `Some` when mailgate has a preset for the identity provider
    /// (`[account.oauth2] provider = …`), `None` when endpoints must be given by hand.
    OAuth(Option<OAuthProvider>),
}

/// Where the user reads how to prepare the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Help {
    /// How to turn IMAP access on, for providers where it is off by default.
    pub enable_imap: Option<&'static str>,
    /// How to create an app password.
    pub app_password: Option<&'static str>,
    /// The provider's IMAP/SMTP settings page.
    pub settings: Option<&'static str>,
}

/// A built-in provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// The name used in `provider = "…"`.
    pub id: &'static str,
    /// A human name.
    pub name: &'static str,
    /// Email domains served by this provider (lower case).
    pub domains: &'static [&'static str],
    /// MX host name suffixes that identify the provider for custom domains (lower case, no
    /// trailing dot). A suffix starting with `.` matches sub-domains; otherwise the whole name.
    pub mx: &'static [&'static str],
    /// IMAP server.
    pub imap: Server,
    /// SMTP submission server.
    pub smtp: Server,
    /// Ways to log in, preferred first.
    pub auth: &'static [Auth],
    /// Help pages.
    pub help: Help,
    /// One sentence the user needs before the first login (empty when there is nothing).
    pub advice: &'static str,
    /// The provider files every message submitted over SMTP in the Sent folder itself, so a
    /// client that also uploads a copy makes a duplicate (`[account.folders] sent_copy = "auto"`
    /// then means `provider`).
    pub files_sent: bool,
}

impl Preset {
    /// The OAuth preset of `[account.oauth2]`, if the provider accepts OAuth and mailgate knows
    /// its endpoints.
    pub fn oauth_provider(&self) -> Option<OAuthProvider> {
        self.auth.iter().find_map(|a| match a {
            Auth::OAuth(p) => *p,
            _ => None,
        })
    }

    /// Whether a password (normal or app password) can log in at all.
    pub fn accepts_password(&self) -> bool {
        self.auth
            .iter()
            .any(|a| matches!(a, Auth::Password | Auth::AppPassword))
    }
}

/// The preset named `id` (as in `provider = "gmail"`), case-insensitive.
pub fn by_id(id: &str) -> Option<&'static Preset> {
    PRESETS
        .iter()
        .find(|p| p.id.eq_ignore_ascii_case(id.trim()))
}

/// The preset serving `domain` (the part after `@`), case-insensitive.
pub fn by_domain(domain: &str) -> Option<&'static Preset> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    PRESETS.iter().find(|p| p.domains.contains(&d.as_str()))
}

/// The preset whose MX hosts include `mx_host` (Google Workspace and Microsoft 365 custom
/// domains), case-insensitive, trailing dot ignored.
pub fn by_mx(mx_host: &str) -> Option<&'static Preset> {
    let h = mx_host.trim().trim_end_matches('.').to_ascii_lowercase();
    PRESETS.iter().find(|p| {
        p.mx.iter().any(|m| match m.strip_prefix('.') {
            Some(bare) => h == bare || h.ends_with(m),
            None => h == *m,
        })
    })
}

/// The preset whose IMAP server is `host:port` (host case-insensitive, trailing dot ignored).
/// The port counts: a preset on a loopback address (Proton Mail Bridge on 127.0.0.1:1143) must
/// not claim every other server on that address.
pub fn by_imap_server(host: &str, port: u16) -> Option<&'static Preset> {
    let h = host.trim().trim_end_matches('.');
    PRESETS
        .iter()
        .find(|p| p.imap.host.eq_ignore_ascii_case(h) && p.imap.port == port)
}

/// The known names, for error messages: `gmail, microsoft365, …`.
pub fn known_ids() -> String {
    PRESETS.iter().map(|p| p.id).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preset_is_found_by_its_imap_host_and_port() {
        let id = |h, p| by_imap_server(h, p).map(|p| p.id);
        assert_eq!(id("IMAP.gmail.com.", 993), Some("gmail"));
        assert_eq!(id("imap.gmail.com", 143), None);
        assert_eq!(id("127.0.0.1", 1143), Some("proton-bridge"));
        assert_eq!(id("127.0.0.1", 143), None);
    }

    /// (address, preset id, IMAP host:port/tls/user, SMTP host:port/tls/user)
    const CASES: &[(&str, &str, &str, &str)] = &[
        (
            "ola@gmail.com",
            "gmail",
            "imap.gmail.com:993 implicit ola@gmail.com",
            "smtp.gmail.com:465 implicit ola@gmail.com",
        ),
        (
            "ola@GoogleMail.com",
            "gmail",
            "imap.gmail.com:993 implicit ola@GoogleMail.com",
            "smtp.gmail.com:465 implicit ola@GoogleMail.com",
        ),
        (
            "ola@hotmail.com",
            "outlook",
            "outlook.office365.com:993 implicit ola@hotmail.com",
            "smtp-mail.outlook.com:587 starttls ola@hotmail.com",
        ),
        (
            "ola@outlook.com",
            "outlook",
            "outlook.office365.com:993 implicit ola@outlook.com",
            "smtp-mail.outlook.com:587 starttls ola@outlook.com",
        ),
        (
            "ola@live.com",
            "outlook",
            "outlook.office365.com:993 implicit ola@live.com",
            "smtp-mail.outlook.com:587 starttls ola@live.com",
        ),
        (
            "ola@msn.com",
            "outlook",
            "outlook.office365.com:993 implicit ola@msn.com",
            "smtp-mail.outlook.com:587 starttls ola@msn.com",
        ),
        (
            "ola@yahoo.com",
            "yahoo",
            "imap.mail.yahoo.com:993 implicit ola@yahoo.com",
            "smtp.mail.yahoo.com:465 implicit ola@yahoo.com",
        ),
        (
            "ola@ymail.com",
            "yahoo",
            "imap.mail.yahoo.com:993 implicit ola@ymail.com",
            "smtp.mail.yahoo.com:465 implicit ola@ymail.com",
        ),
        (
            "ola@aol.com",
            "aol",
            "imap.aol.com:993 implicit ola@aol.com",
            "smtp.aol.com:465 implicit ola@aol.com",
        ),
        (
            "ola@icloud.com",
            "icloud",
            "imap.mail.me.com:993 implicit ola",
            "smtp.mail.me.com:587 starttls ola@icloud.com",
        ),
        (
            "ola@me.com",
            "icloud",
            "imap.mail.me.com:993 implicit ola",
            "smtp.mail.me.com:587 starttls ola@me.com",
        ),
        (
            "ola@fastmail.com",
            "fastmail",
            "imap.fastmail.com:993 implicit ola@fastmail.com",
            "smtp.fastmail.com:465 implicit ola@fastmail.com",
        ),
        (
            "ola@zoho.com",
            "zoho",
            "imap.zoho.com:993 implicit ola@zoho.com",
            "smtp.zoho.com:465 implicit ola@zoho.com",
        ),
        (
            "ola@zoho.eu",
            "zoho-eu",
            "imap.zoho.eu:993 implicit ola@zoho.eu",
            "smtp.zoho.eu:465 implicit ola@zoho.eu",
        ),
        (
            "ola@zoho.in",
            "zoho-in",
            "imap.zoho.in:993 implicit ola@zoho.in",
            "smtp.zoho.in:465 implicit ola@zoho.in",
        ),
        (
            "ola@zoho.com.au",
            "zoho-au",
            "imap.zoho.com.au:993 implicit ola@zoho.com.au",
            "smtp.zoho.com.au:465 implicit ola@zoho.com.au",
        ),
        (
            "ola@zoho.jp",
            "zoho-jp",
            "imap.zoho.jp:993 implicit ola@zoho.jp",
            "smtp.zoho.jp:465 implicit ola@zoho.jp",
        ),
        (
            "ola@zohocloud.ca",
            "zoho-ca",
            "imap.zohocloud.ca:993 implicit ola@zohocloud.ca",
            "smtp.zohocloud.ca:465 implicit ola@zohocloud.ca",
        ),
        (
            "ola@gmx.net",
            "gmx",
            "imap.gmx.net:993 implicit ola@gmx.net",
            "mail.gmx.net:465 implicit ola@gmx.net",
        ),
        (
            "ola@gmx.de",
            "gmx",
            "imap.gmx.net:993 implicit ola@gmx.de",
            "mail.gmx.net:465 implicit ola@gmx.de",
        ),
        (
            "ola@gmx.com",
            "gmx-com",
            "imap.gmx.com:993 implicit ola@gmx.com",
            "mail.gmx.com:465 implicit ola@gmx.com",
        ),
        (
            "ola@web.de",
            "webde",
            "imap.web.de:993 implicit ola",
            "smtp.web.de:465 implicit ola",
        ),
        (
            "ola@online.no",
            "telenor",
            "imap.online.no:993 implicit ola@online.no",
            "smtp.online.no:465 implicit ola@online.no",
        ),
        (
            "ola@proton.me",
            "proton-bridge",
            "127.0.0.1:1143 starttls ola@proton.me",
            "127.0.0.1:1025 starttls ola@proton.me",
        ),
        (
            "ola@pm.me",
            "proton-bridge",
            "127.0.0.1:1143 starttls ola@pm.me",
            "127.0.0.1:1025 starttls ola@pm.me",
        ),
    ];

    fn show(s: &Server, email: &str) -> String {
        format!(
            "{}:{} {} {}",
            s.host,
            s.port,
            s.tls.as_str(),
            s.username.apply(email)
        )
    }

    #[test]
    fn each_domain_resolves_to_its_preset() {
        for (email, id, imap, smtp) in CASES {
            let domain = email.rsplit_once('@').unwrap().1;
            let p = by_domain(domain).unwrap_or_else(|| panic!("{email}: no preset"));
            assert_eq!(p.id, *id, "{email}");
            assert_eq!(show(&p.imap, email), *imap, "{email}");
            assert_eq!(show(&p.smtp, email), *smtp, "{email}");
            assert_eq!(by_id(id).map(|p| p.id), Some(*id));
        }
        assert!(by_domain("example.no").is_none());
        assert!(by_id("nope").is_none());
        assert_eq!(by_id(" GMAIL ").map(|p| p.id), Some("gmail"));
    }

    #[test]
    fn table_is_consistent() {
        let mut ids = std::collections::HashSet::new();
        let mut domains = std::collections::HashSet::new();
        for p in PRESETS {
            assert!(ids.insert(p.id), "{} twice", p.id);
            for d in p.domains {
                assert!(domains.insert(*d), "{d} twice");
                assert_eq!(*d, d.to_ascii_lowercase());
            }
            assert!(!p.auth.is_empty(), "{}", p.id);
            assert!(p.imap.tls != TlsMode::None && p.smtp.tls != TlsMode::None);
            // Every preset that needs an app password says where to make one.
            if p.auth.contains(&Auth::AppPassword) {
                assert!(p.help.app_password.is_some(), "{}", p.id);
            }
            assert!(p.help.settings.is_some(), "{}", p.id);
        }
        // Every preset is either reachable by a domain or by MX.
        assert!(PRESETS
            .iter()
            .all(|p| !p.domains.is_empty() || !p.mx.is_empty()));
    }

    #[test]
    fn mx_hosts_identify_workspace_and_microsoft_365() {
        for (mx, id) in [
            ("aspmx.l.google.com.", "gmail"),
            ("ALT1.ASPMX.L.GOOGLE.COM", "gmail"),
            ("smtp.google.com", "gmail"),
            ("contoso-com.mail.protection.outlook.com", "microsoft365"),
            ("in1-smtp.messagingengine.com", "fastmail"),
        ] {
            assert_eq!(by_mx(mx).map(|p| p.id), Some(id), "{mx}");
        }
        assert!(by_mx("mx.example.no").is_none());
        assert!(by_mx("evilgoogle.com").is_none());
    }

    #[test]
    fn oauth_links_to_the_oauth_presets() {
        assert_eq!(
            by_id("gmail").unwrap().oauth_provider(),
            Some(OAuthProvider::Google)
        );
        for id in ["microsoft365", "outlook"] {
            let p = by_id(id).unwrap();
            assert_eq!(p.oauth_provider(), Some(OAuthProvider::Microsoft));
            assert!(!p.accepts_password());
        }
        assert_eq!(by_id("yahoo").unwrap().oauth_provider(), None);
        assert!(known_ids().starts_with("gmail, microsoft365, outlook"));
    }
}
