//! The preset table: one entry per provider, each with a comment naming where its facts come
//! from (Mozilla Thunderbird's ISPDB, `ispdb/*.xml` in the thunderbird/autoconfig repository,
//! and the provider's own help pages).

use super::{Auth, Help, OAuthProvider, Preset, Server, UserName};
use crate::net::TlsMode;

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
        files_sent: false,
    }
}

/// Every built-in provider. Domain lookups go through [`super::by_domain`], names through
/// [`super::by_id`].
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
        files_sent: true,
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
        files_sent: true,
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
        files_sent: true,
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
        files_sent: false,
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
        files_sent: false,
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
        files_sent: false,
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
        files_sent: false,
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
        files_sent: false,
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
        files_sent: false,
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
        files_sent: false,
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
        files_sent: false,
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
        files_sent: false,
    },
];
