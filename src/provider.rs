//! Built-in provider presets: email domain → IMAP and SMTP endpoints, TLS mode, user-name form,
//! the ways the provider accepts a login, and where its help pages are.
//!
//! One table, [`PRESETS`], each entry with a comment naming where its facts come from (Mozilla
//! Thunderbird's ISPDB, `ispdb/*.xml` in the thunderbird/autoconfig repository, and the
//! provider's own help pages; collected in the project's PROVIDERS.md). The table is data only:
//! no network, so presets resolve when the config is loaded. OAuth endpoints are not repeated
//! here: an entry names an [`OAuthProvider`](crate::oauth::settings::Provider) and
//! `oauth/settings.rs` owns the endpoints and scopes.
//!
//! `mailgate check` reuses [`Preset::help`] and [`Preset::advice`] for its one-line advice.

use crate::net::TlsMode;
use crate::oauth::settings::Provider as OAuthProvider;

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

const fn imap(host: &'static str, port: u16, tls: TlsMode, username: UserName) -> Server {
    Server {
        host,
        port,
        tls,
        username,
    }
}
const fn smtp(host: &'static str, port: u16, tls: TlsMode, username: UserName) -> Server {
    imap(host, port, tls, username)
}

use Auth::{AppPassword, OAuth, Password};
use TlsMode::{Implicit, Starttls};
use UserName::{Email, LocalPart};

/// Zoho keeps one data centre per region, each with its own host names (and accounts exist in
/// one region only), so each region is its own preset.
/// Source: ISPDB `zoho.com.xml` (US); Zoho's "IMAP access" help page lists the regional hosts.
const fn zoho(
    id: &'static str,
    name: &'static str,
    domains: &'static [&'static str],
    imap_host: &'static str,
    smtp_host: &'static str,
) -> Preset {
    Preset {
        id,
        name,
        domains,
        mx: &[],
        imap: imap(imap_host, 993, Implicit, Email),
        smtp: smtp(smtp_host, 465, Implicit, Email),
        auth: &[Password, AppPassword],
        help: Help {
            enable_imap: Some("https://www.zoho.com/mail/help/imap-access.html#EnableIMAP"),
            app_password: Some("https://www.zoho.com/mail/help/adminconsole/two-factor-authentication.html#alink5"),
            settings: Some("https://www.zoho.com/mail/help/imap-access.html"),
        },
        advice: "turn on IMAP access in Zoho Mail's settings first; with two-factor authentication use an app password",
    }
}

/// Every built-in provider. Domain lookups go through [`by_domain`], names through [`by_id`].
pub const PRESETS: &[Preset] = &[
    // Source: ISPDB `gmail.com` / `googlemail.com`; Thunderbird OAuth2Providers (Google);
    // Google help "Sign in with app passwords" and "Add Gmail to another email client".
    // Google Workspace custom domains are recognised by their MX hosts (`*.google.com`,
    // `aspmx.l.google.com`, `*.googlemail.com`).
    Preset {
        id: "gmail",
        name: "Gmail / Google Workspace",
        domains: &["gmail.com", "googlemail.com"],
        mx: &[".google.com", ".googlemail.com"],
        imap: imap("imap.gmail.com", 993, Implicit, Email),
        smtp: smtp("smtp.gmail.com", 465, Implicit, Email),
        auth: &[OAuth(Some(OAuthProvider::Google)), AppPassword],
        help: Help {
            enable_imap: Some("https://support.google.com/mail/answer/7126229"),
            app_password: Some("https://support.google.com/accounts/answer/185833"),
            settings: Some("https://support.google.com/mail/answer/7126229"),
        },
        advice: "use an app password (needs 2-Step Verification) or OAuth; the normal password is refused",
    },
    // Source: Microsoft Learn "POP, IMAP, and SMTP settings for Outlook.com / Microsoft 365"
    // and "Deprecation of Basic authentication in Exchange Online"; Thunderbird OAuth2Providers
    // (Microsoft). Custom domains are recognised by MX `*.mail.protection.outlook.com`.
    Preset {
        id: "microsoft365",
        name: "Microsoft 365",
        domains: &[],
        mx: &[".mail.protection.outlook.com"],
        imap: imap("outlook.office365.com", 993, Implicit, Email),
        smtp: smtp("smtp.office365.com", 587, Starttls, Email),
        auth: &[OAuth(Some(OAuthProvider::Microsoft))],
        help: Help {
            enable_imap: Some("https://learn.microsoft.com/en-us/exchange/clients-and-mobile-in-exchange-online/pop3-and-imap4/enable-or-disable-pop3-or-imap4-access"),
            app_password: None,
            settings: Some("https://support.microsoft.com/en-us/office/pop-imap-and-smtp-settings-8361e398-8af4-4e97-b147-6c6c4ac95353"),
        },
        advice: "Microsoft 365 accepts OAuth only (basic authentication is retired): add [account.oauth2] with provider = \"microsoft\"",
    },
    // Source: ISPDB `hotmail.com`; Microsoft support "POP, IMAP, and SMTP settings for
    // Outlook.com" (basic authentication for personal accounts ended September 2024).
    Preset {
        id: "outlook",
        name: "Outlook.com / Hotmail / Live / MSN",
        domains: &[
            "outlook.com",
            "hotmail.com",
            "live.com",
            "msn.com",
            "hotmail.co.uk",
            "hotmail.de",
            "hotmail.fr",
            "outlook.de",
            "live.no",
        ],
        mx: &[".olc.protection.outlook.com"],
        imap: imap("outlook.office365.com", 993, Implicit, Email),
        smtp: smtp("smtp-mail.outlook.com", 587, Starttls, Email),
        auth: &[OAuth(Some(OAuthProvider::Microsoft))],
        help: Help {
            enable_imap: Some("https://support.microsoft.com/en-us/office/pop-imap-and-smtp-settings-for-outlook-com-d088b986-291d-42b8-9564-9c414e2aa040"),
            app_password: None,
            settings: Some("https://support.microsoft.com/en-us/office/pop-imap-and-smtp-settings-for-outlook-com-d088b986-291d-42b8-9564-9c414e2aa040"),
        },
        advice: "Outlook.com accepts OAuth only: add [account.oauth2] with provider = \"microsoft\" and tenant = \"consumers\"",
    },
    // Source: ISPDB `yahoo.com.xml` (domains, hosts; OAuth endpoints there, but Yahoo no longer
    // registers new OAuth clients); Yahoo help "Generate and manage third-party app passwords".
    Preset {
        id: "yahoo",
        name: "Yahoo Mail",
        domains: &[
            "yahoo.com",
            "yahoo.de",
            "yahoo.it",
            "yahoo.fr",
            "yahoo.es",
            "yahoo.se",
            "yahoo.co.in",
            "yahoo.co.uk",
            "yahoo.co.nz",
            "yahoo.com.au",
            "yahoo.com.ar",
            "yahoo.com.br",
            "yahoo.com.mx",
            "ymail.com",
            "myyahoo.com",
            "rocketmail.com",
        ],
        mx: &[],
        imap: imap("imap.mail.yahoo.com", 993, Implicit, Email),
        smtp: smtp("smtp.mail.yahoo.com", 465, Implicit, Email),
        auth: &[AppPassword, OAuth(None)],
        help: Help {
            enable_imap: None,
            app_password: Some("https://help.yahoo.com/kb/SLN15241.html"),
            settings: Some("https://help.yahoo.com/kb/SLN4075.html"),
        },
        advice: "use an app password from Yahoo's account security page; the account password is refused",
    },
    // Source: ISPDB `aol.com.xml`; AOL help "Generate and manage third-party app passwords".
    Preset {
        id: "aol",
        name: "AOL Mail",
        domains: &["aol.com", "aim.com", "aol.de", "aol.fr", "aol.co.uk"],
        mx: &[],
        imap: imap("imap.aol.com", 993, Implicit, Email),
        smtp: smtp("smtp.aol.com", 465, Implicit, Email),
        auth: &[AppPassword, OAuth(None)],
        help: Help {
            enable_imap: None,
            app_password: Some("https://help.aol.com/articles/Create-and-manage-app-password"),
            settings: Some("https://help.aol.com/articles/how-do-i-use-other-email-applications-to-send-and-receive-my-aol-mail"),
        },
        advice: "use an app password from AOL's account security page; the account password is refused",
    },
    // Source: Apple support "iCloud Mail server settings for other email client apps"
    // (HT202304): the IMAP user name is the part before @; SMTP takes the full address.
    Preset {
        id: "icloud",
        name: "iCloud Mail",
        domains: &["icloud.com", "me.com", "mac.com"],
        mx: &[],
        imap: imap("imap.mail.me.com", 993, Implicit, LocalPart),
        smtp: smtp("smtp.mail.me.com", 587, Starttls, Email),
        auth: &[AppPassword],
        help: Help {
            enable_imap: None,
            app_password: Some("https://support.apple.com/en-us/102654"),
            settings: Some("https://support.apple.com/en-us/102525"),
        },
        advice: "use an app-specific password (appleid.apple.com → Sign-In and Security); needs two-factor authentication",
    },
    // Source: Fastmail help "Server names and ports" and "App passwords"; Thunderbird
    // OAuth2Providers (Fastmail, not preset in mailgate: give authorize_url/token_url).
    Preset {
        id: "fastmail",
        name: "Fastmail",
        domains: &["fastmail.com", "fastmail.fm", "fastmail.net", "fastmail.org", "fastmail.to", "messagingengine.com"],
        mx: &[".messagingengine.com"],
        imap: imap("imap.fastmail.com", 993, Implicit, Email),
        smtp: smtp("smtp.fastmail.com", 465, Implicit, Email),
        auth: &[AppPassword, OAuth(None)],
        help: Help {
            enable_imap: None,
            app_password: Some("https://www.fastmail.help/hc/en-us/articles/360058752854"),
            settings: Some("https://www.fastmail.help/hc/en-us/articles/1500000278342"),
        },
        advice: "use an app password with IMAP and SMTP access (Settings → Privacy & Security → App passwords)",
    },
    zoho("zoho", "Zoho Mail (US)", &["zoho.com", "zohomail.com"], "imap.zoho.com", "smtp.zoho.com"),
    zoho("zoho-eu", "Zoho Mail (EU)", &["zoho.eu", "zohomail.eu"], "imap.zoho.eu", "smtp.zoho.eu"),
    zoho("zoho-in", "Zoho Mail (India)", &["zoho.in", "zohomail.in"], "imap.zoho.in", "smtp.zoho.in"),
    zoho("zoho-au", "Zoho Mail (Australia)", &["zoho.com.au", "zohomail.com.au"], "imap.zoho.com.au", "smtp.zoho.com.au"),
    zoho("zoho-jp", "Zoho Mail (Japan)", &["zoho.jp"], "imap.zoho.jp", "smtp.zoho.jp"),
    zoho("zoho-ca", "Zoho Mail (Canada)", &["zohocloud.ca"], "imap.zohocloud.ca", "smtp.zohocloud.ca"),
    // Source: ISPDB `gmx.net` / `gmx.de` (German service: *.gmx.net hosts); GMX help
    // "IMAP aktivieren". IMAP/POP access must be switched on in GMX's settings first.
    Preset {
        id: "gmx",
        name: "GMX (Germany, Austria, Switzerland)",
        domains: &["gmx.net", "gmx.de", "gmx.at", "gmx.ch", "gmx.eu"],
        mx: &[],
        imap: imap("imap.gmx.net", 993, Implicit, Email),
        smtp: smtp("mail.gmx.net", 465, Implicit, Email),
        auth: &[Password],
        help: Help {
            enable_imap: Some("https://hilfe.gmx.net/pop-imap/einschalten.html"),
            app_password: None,
            settings: Some("https://hilfe.gmx.net/pop-imap/imap/imap-serverdaten.html"),
        },
        advice: "allow POP3/IMAP access once in GMX's e-mail settings",
    },
    // Source: ISPDB `gmx.com` (international service: *.gmx.com hosts).
    Preset {
        id: "gmx-com",
        name: "GMX (international)",
        domains: &["gmx.com", "gmx.us", "gmx.co.uk", "gmx.fr", "gmx.es"],
        mx: &[],
        imap: imap("imap.gmx.com", 993, Implicit, Email),
        smtp: smtp("mail.gmx.com", 465, Implicit, Email),
        auth: &[Password],
        help: Help {
            enable_imap: Some("https://support.gmx.com/pop-imap/toggle.html"),
            app_password: None,
            settings: Some("https://support.gmx.com/pop-imap/imap/server.html"),
        },
        advice: "allow POP3/IMAP access once in GMX's e-mail settings",
    },
    // Source: ISPDB `web.de.xml` (user name %EMAILLOCALPART%, imap.web.de 993 SSL, smtp.web.de
    // 465 SSL first; its <enable> element: POP3/IMAP access must be allowed once).
    Preset {
        id: "webde",
        name: "WEB.DE",
        domains: &["web.de"],
        mx: &[],
        imap: imap("imap.web.de", 993, Implicit, LocalPart),
        smtp: smtp("smtp.web.de", 465, Implicit, LocalPart),
        auth: &[Password],
        help: Help {
            enable_imap: Some("https://hilfe.web.de/pop-imap/einschalten.html"),
            app_password: None,
            settings: Some("https://hilfe.web.de/pop-imap/imap/imap-serverdaten.html"),
        },
        advice: "allow POP3/IMAP access once in WEB.DE's e-mail settings",
    },
    // Source: Telenor Norway help "Innstillinger for e-postprogram" (imap.online.no 993 SSL,
    // smtp.online.no 465 SSL, full address as user name); not in the ISPDB copy we read.
    Preset {
        id: "telenor",
        name: "Telenor (online.no)",
        domains: &["online.no", "telenor.no"],
        mx: &[],
        imap: imap("imap.online.no", 993, Implicit, Email),
        smtp: smtp("smtp.online.no", 465, Implicit, Email),
        auth: &[Password],
        help: Help {
            enable_imap: None,
            app_password: None,
            settings: Some("https://www.telenor.no/kundeservice/internett/e-post/innstillinger/"),
        },
        advice: "",
    },
    // Source: Proton support "Proton Mail Bridge IMAP/SMTP settings": Bridge runs on the same
    // machine, IMAP 127.0.0.1:1143 and SMTP 127.0.0.1:1025 with STARTTLS and a self-signed
    // certificate (export it from Bridge and set ca_file), and a Bridge-generated password.
    Preset {
        id: "proton-bridge",
        name: "Proton Mail (through Proton Mail Bridge)",
        domains: &["proton.me", "protonmail.com", "protonmail.ch", "pm.me"],
        mx: &[],
        imap: imap("127.0.0.1", 1143, Starttls, Email),
        smtp: smtp("127.0.0.1", 1025, Starttls, Email),
        auth: &[AppPassword],
        help: Help {
            enable_imap: Some("https://proton.me/support/protonmail-bridge-install"),
            app_password: Some("https://proton.me/support/bridge-mailbox-password"),
            settings: Some("https://proton.me/support/protonmail-bridge-clients-windows-outlook-2019"),
        },
        advice: "run Proton Mail Bridge on this machine, use the password Bridge shows, and set ca_file to Bridge's exported certificate",
    },
];

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

/// The known names, for error messages: `gmail, microsoft365, …`.
pub fn known_ids() -> String {
    PRESETS.iter().map(|p| p.id).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

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
