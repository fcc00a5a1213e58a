//! `mailgate check`: for each account, connect to its IMAP and SMTP servers step by step —
//! DNS, TCP, TLS, greeting, capabilities, login, LOGOUT/QUIT — and say which step failed and
//! what to do about it, in one line.
//!
//! The steps are not a second implementation of the protocols: the check runs the gateway's own
//! login code ([`crate::imap::upstream::login_traced`], [`crate::smtp::submit::Upstream`]) with
//! a [`Trace`] that records how far it got, so what passes here is what `mailgate run` does.
//! Two diagnostic extras are the check's own: the certificate is inspected even when refused
//! ([`inspect`]), and when TLS and plaintext look swapped a second connection asks the port
//! what it really speaks — the gateway's own probes ([`crate::net::probe::plaintext`],
//! [`crate::net::probe::tls`]), whose findings its errors already carry when it ran them
//! itself ([`UpstreamError::NotTls`], [`UpstreamError::ExpectsTls`]). No mail is ever sent.
//!
//! Nothing secret is shown: details are the servers' words and the gateway's errors, which never
//! carry credentials.

mod advice;
pub mod folders;
pub mod inspect;

use crate::config::{Account, Config, Endpoint, ServerConfig, TlsMode};
use crate::net::probe::PROBE_TIMEOUT;
use crate::net::ConnectError;
use crate::upstream::{Steps, Trace, UpstreamError};
use advice::{Failure, Probe};
use inspect::{CertInfo, Inspector};
use serde::Serialize;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

pub use crate::diagnosis::Protocol;

/// The steps of a check, in the order they can happen (the TLS step moves after the greeting
/// with STARTTLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Resolving the host name.
    Dns,
    /// The TCP connection.
    Tcp,
    /// The TLS handshake (after STARTTLS, or from the first byte).
    Tls,
    /// The server's greeting.
    Greeting,
    /// IMAP CAPABILITY / SMTP EHLO.
    Capabilities,
    /// IMAP login / SMTP AUTH with the stored credential.
    Login,
    /// IMAP LOGOUT / SMTP QUIT.
    Logout,
}

impl Kind {
    /// The step's name in the JSON document (`imap.tls`) and, upper-cased, in the text.
    pub fn label(self, protocol: Protocol) -> &'static str {
        match (self, protocol) {
            (Kind::Dns, _) => "dns",
            (Kind::Tcp, _) => "tcp",
            (Kind::Tls, _) => "tls",
            (Kind::Greeting, _) => "greeting",
            (Kind::Capabilities, Protocol::Imap) => "capabilities",
            (Kind::Capabilities, Protocol::Smtp) => "ehlo",
            (Kind::Login, Protocol::Imap) => "login",
            (Kind::Login, Protocol::Smtp) => "auth",
            (Kind::Logout, Protocol::Imap) => "logout",
            (Kind::Logout, Protocol::Smtp) => "quit",
        }
    }

    /// The steps before the final LOGOUT/QUIT for a TLS mode.
    fn sequence(tls: TlsMode) -> &'static [Kind] {
        use Kind::*;
        match tls {
            TlsMode::Implicit => &[Dns, Tcp, Tls, Greeting, Capabilities, Login],
            TlsMode::Starttls => &[Dns, Tcp, Greeting, Tls, Capabilities, Login],
            TlsMode::None => &[Dns, Tcp, Greeting, Capabilities, Login],
        }
    }
}

/// One step's result.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `imap.dns`, `smtp.auth`, …
    pub name: String,
    /// Whether the step passed.
    pub ok: bool,
    /// What was found (addresses, certificate, greeting, …) or what went wrong.
    pub detail: String,
    /// For a failed step: what to do, in one line.
    pub advice: Option<String>,
}

/// The steps of one account.
#[derive(Debug, Clone, Serialize)]
pub struct AccountReport {
    /// The account's address.
    pub email: String,
    /// Whether every step passed.
    pub ok: bool,
    /// `host:port (tls = mode)` of the IMAP server.
    pub imap: String,
    /// The same for the SMTP server; `None` when the account has no `[account.smtp]`.
    pub smtp: Option<String>,
    /// The steps in the order they ran; a protocol's steps stop at its first failure.
    pub steps: Vec<Step>,
    /// The folders found after the IMAP login (`None` when the login failed or the list
    /// could not be read).
    pub folders: Option<folders::FolderReport>,
}

/// The whole check (what `--json` prints).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether every step of every account passed (the exit status is 0 only then).
    pub ok: bool,
    /// One entry per account checked.
    pub accounts: Vec<AccountReport>,
}

/// Checks `accounts` one after the other (a check is for people; parallel output would only
/// interleave).
pub async fn run(config: &Config, accounts: &[Arc<Account>]) -> Report {
    // The check waits for each answer as long as the gateway does (upstream_timeout): a
    // provider that answers a wrong password only after a delay must be heard, not called
    // unstable. A port that waits silently for a TLS handshake is found out after
    // connect_timeout by the gateway's own greeting wait (`upstream::await_greeting`).
    let server = config.server.clone();
    let mut reports = Vec::new();
    for account in accounts {
        let (mut steps, folders) = imap(account, &server).await;
        if let Some(smtp_ep) = &account.smtp {
            steps.extend(smtp(account, smtp_ep, &server).await);
        }
        reports.push(AccountReport {
            email: account.email.clone(),
            ok: steps.iter().all(|s| s.ok),
            imap: describe_endpoint(&account.imap),
            smtp: account.smtp.as_ref().map(describe_endpoint),
            steps,
            folders,
        });
    }
    Report {
        ok: reports.iter().all(|a| a.ok),
        accounts: reports,
    }
}

fn describe_endpoint(ep: &Endpoint) -> String {
    format!("{} (tls = {})", ep.address(), ep.target.tls.as_str())
}

/// A trace that records, with the inspecting TLS configuration when the endpoint uses TLS.
fn traced(ep: &Endpoint) -> (Trace, Option<Arc<Inspector>>) {
    match Inspector::for_endpoint(ep) {
        Some((config, inspector)) => (Trace::on(Some(config)), Some(inspector)),
        None => (Trace::on(None), None),
    }
}

/// The IMAP steps, and the folders listed after a successful login.
async fn imap(
    account: &Account,
    server: &ServerConfig,
) -> (Vec<Step>, Option<folders::FolderReport>) {
    let ep = &account.imap;
    let (mut trace, inspector) = traced(ep);
    let result = crate::imap::upstream::login_traced(account, server, &mut trace).await;
    let trace = trace.into_steps();
    let ctx = Ctx {
        protocol: Protocol::Imap,
        account,
        ep,
        server,
        inspector: inspector.as_deref(),
    };
    let mut steps = ctx.walk(&trace, result.as_ref().err()).await;
    let mut found = None;
    if let Ok(mut logged_in) = result {
        // The folders are information, not a step: a server that refuses the LIST still
        // passes the check (the gateway then shows the provider's names).
        found = crate::imap::folders::learn::list(&mut logged_in, server.upstream_timeout)
            .await
            .ok()
            .map(|entries| folders::report(&entries, &account.folders));
        let step = match crate::imap::upstream::logout(logged_in, ep, server).await {
            Ok(reply) => ctx.pass(Kind::Logout, reply),
            Err(e) => ctx.fail(Kind::Logout, &trace, &e, Probe::NotRun),
        };
        steps.push(step);
    }
    (steps, found)
}

async fn smtp(account: &Account, ep: &Endpoint, server: &ServerConfig) -> Vec<Step> {
    let (mut trace, inspector) = traced(ep);
    let result = crate::smtp::submit::Upstream::connect_traced(ep, server, &mut trace).await;
    let trace = trace.into_steps();
    let ctx = Ctx {
        protocol: Protocol::Smtp,
        account,
        ep,
        server,
        inspector: inspector.as_deref(),
    };
    let mut steps = ctx.walk(&trace, result.as_ref().err()).await;
    if let Ok(mut upstream) = result {
        let step = match upstream.command("QUIT", "QUIT").await {
            Ok(reply) if reply.code == 221 => {
                ctx.pass(Kind::Logout, crate::smtp::submit::reply_text(&reply))
            }
            Ok(reply) => ctx.fail(
                Kind::Logout,
                &trace,
                &UpstreamError::Protocol {
                    address: ep.address(),
                    reason: format!("QUIT answered {}", crate::smtp::submit::reply_text(&reply)),
                },
                Probe::NotRun,
            ),
            Err(e) => ctx.fail(Kind::Logout, &trace, &e, Probe::NotRun),
        };
        steps.push(step);
    }
    steps
}

/// What the steps of one endpoint share.
struct Ctx<'a> {
    protocol: Protocol,
    account: &'a Account,
    ep: &'a Endpoint,
    server: &'a ServerConfig,
    inspector: Option<&'a Inspector>,
}

impl Ctx<'_> {
    fn name(&self, kind: Kind) -> String {
        let p = match self.protocol {
            Protocol::Imap => "imap",
            Protocol::Smtp => "smtp",
        };
        format!("{p}.{}", kind.label(self.protocol))
    }

    fn pass(&self, kind: Kind, detail: String) -> Step {
        Step {
            name: self.name(kind),
            ok: true,
            detail,
            advice: None,
        }
    }

    fn fail(&self, kind: Kind, trace: &Steps, error: &UpstreamError, probe: Probe) -> Step {
        let seen = self.inspector.and_then(Inspector::seen);
        let mut detail = error.to_string();
        if kind == Kind::Tls {
            if let Some(info) = seen.as_ref().and_then(|s| CertInfo::parse(&s.end_entity)) {
                detail = format!("{}; {detail}", info.summary());
            }
        }
        // The gateway's own probe findings are in its error's words already.
        let told = matches!(
            error,
            UpstreamError::Net(ConnectError::NotTls { .. } | ConnectError::ExpectsTls { .. })
        );
        match &probe {
            Probe::Plaintext(line) if !told => {
                let _ = write!(detail, "; a plaintext connection was greeted with {line:?}");
            }
            Probe::Tls if !told => detail.push_str("; the port answers a TLS handshake"),
            _ => {}
        }
        let advice = advice::advise(&Failure {
            protocol: self.protocol,
            kind,
            email: &self.account.email,
            ep: self.ep,
            error,
            trace,
            seen: seen.as_ref(),
            probe: &probe,
            smtp_password_inherited: self.account.smtp_password_inherited,
        });
        Step {
            name: self.name(kind),
            ok: false,
            detail,
            advice: Some(advice),
        }
    }

    /// The steps the attempt passed (from the trace), then the one it failed at, if any.
    async fn walk(&self, trace: &Steps, error: Option<&UpstreamError>) -> Vec<Step> {
        let mut steps = Vec::new();
        for &kind in Kind::sequence(self.ep.target.tls) {
            if let Some(detail) = self.passed(kind, trace, error.is_none()) {
                steps.push(self.pass(kind, detail));
                continue;
            }
            let Some(error) = error else {
                // Unreachable in practice: no error means every step recorded its pass.
                continue;
            };
            let probe = self.probe(kind, trace, error).await;
            steps.push(self.fail(kind, trace, error, probe));
            break;
        }
        steps
    }

    /// The detail of a step the trace shows as passed; `None` if it did not pass.
    fn passed(&self, kind: Kind, trace: &Steps, logged_in: bool) -> Option<String> {
        match kind {
            Kind::Dns => (!trace.addresses.is_empty()).then(|| {
                let list: Vec<String> =
                    trace.addresses.iter().map(|a| a.ip().to_string()).collect();
                format!("{} → {}", self.ep.target.host, list.join(", "))
            }),
            Kind::Tcp => trace.connected.map(|a| format!("connected to {a}")),
            Kind::Tls => trace.tls.as_ref().map(|tls| {
                let mut d = String::new();
                if trace.starttls {
                    d.push_str("STARTTLS accepted; ");
                }
                let _ = write!(d, "{} ({})", tls_version(&tls.version), tls.cipher);
                if let Some(info) = tls
                    .peer_certificates
                    .first()
                    .and_then(|c| CertInfo::parse(c))
                {
                    let _ = write!(d, "; {}", info.summary());
                }
                let trust = match &self.ep.target.ca_file {
                    Some(f) => format!("the system roots and ca_file {}", f.display()),
                    None => "the system roots".to_owned(),
                };
                let _ = write!(
                    d,
                    "; verified against {trust}; name {} matches",
                    self.ep.target.server_name.to_str()
                );
                d
            }),
            Kind::Greeting => trace
                .greeting
                .as_ref()
                .filter(|g| greeting_ok(self.protocol, g))
                .map(|g| truncate(g, 200)),
            Kind::Capabilities => trace.capabilities.as_ref().map(|c| c.join(" ")),
            Kind::Login => logged_in.then(|| {
                let how = match self.ep.credential.oauth() {
                    Some(_) => "an OAuth access token",
                    None => "the stored password",
                };
                format!("logged in as {} with {how}", self.ep.username)
            }),
            Kind::Logout => None,
        }
    }

    /// A diagnostic second connection where TLS and plaintext may be swapped.
    async fn probe(&self, kind: Kind, trace: &Steps, error: &UpstreamError) -> Probe {
        // The gateway's own code probed already: its error says what it found.
        match error {
            UpstreamError::Net(ConnectError::NotTls {
                greeting: Some(line),
                ..
            }) => return Probe::Plaintext(line.clone()),
            UpstreamError::Net(ConnectError::ExpectsTls { .. }) => return Probe::Tls,
            _ => {}
        }
        let Some(addr) = trace.connected else {
            return Probe::NotRun;
        };
        // At least PROBE_TIMEOUT: the probe runs only after a failure, on a port that accepted
        // the connection, and a short connect_timeout must not cost the diagnosis.
        let timeout = self.server.connect_timeout.max(PROBE_TIMEOUT);
        match (kind, self.ep.target.tls) {
            // Implicit TLS failed without a certificate: is it a plaintext port?
            (Kind::Tls, TlsMode::Implicit)
                if matches!(
                    error,
                    UpstreamError::Net(ConnectError::Tls { .. } | ConnectError::NotTls { .. })
                        | UpstreamError::Closed { .. }
                        | UpstreamError::Timeout { .. }
                ) && self.inspector.and_then(Inspector::seen).is_none() =>
            {
                match crate::net::probe::plaintext(addr, timeout).await {
                    Some(line) => Probe::Plaintext(line),
                    None => Probe::Nothing,
                }
            }
            // No greeting at all (time-out, closed): is it an implicit-TLS port? A greeting
            // that came but was wrong (POP3, BYE) speaks for itself.
            (Kind::Greeting, TlsMode::Starttls | TlsMode::None) if trace.greeting.is_none() => {
                if probe_tls(self.ep, addr, timeout).await {
                    Probe::Tls
                } else {
                    Probe::Nothing
                }
            }
            _ => Probe::NotRun,
        }
    }
}

/// Whether a greeting is the protocol's "ready".
fn greeting_ok(protocol: Protocol, greeting: &str) -> bool {
    match protocol {
        Protocol::Imap => greeting.len() >= 4 && greeting[..4].eq_ignore_ascii_case("* OK"),
        Protocol::Smtp => greeting.starts_with("220"),
    }
}

/// `TLSv1_3` → `TLS 1.3`.
fn tls_version(debug: &str) -> String {
    match debug {
        "TLSv1_3" => "TLS 1.3".into(),
        "TLSv1_2" => "TLS 1.2".into(),
        other => other.to_owned(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Whether `addr` answers a TLS handshake, asked with a fresh inspecting configuration (a
/// plaintext account has none of its own: the default trust then, the probe only asks whether
/// the port speaks TLS).
async fn probe_tls(ep: &Endpoint, addr: SocketAddr, timeout: std::time::Duration) -> bool {
    let config = match Inspector::for_endpoint(ep) {
        Some((config, _)) => config,
        None => match crate::net::tls::client_config(None) {
            Ok(c) => c,
            Err(_) => return false,
        },
    };
    crate::net::probe::tls(&ep.target, config, addr, timeout).await
}

/// The report as text: one block per account, one line per step, advice under a failed step.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    for account in &report.accounts {
        let _ = writeln!(out, "{}", account.email);
        let mut protocol = "";
        for step in &account.steps {
            let (p, name) = step.name.split_once('.').unwrap_or(("", &step.name));
            if p != protocol {
                protocol = p;
                let target = if p == "smtp" {
                    account.smtp.as_deref().unwrap_or_default()
                } else {
                    account.imap.as_str()
                };
                let _ = writeln!(out, "  {} {target}", p.to_ascii_uppercase());
            }
            let mark = if step.ok { '✓' } else { '✗' };
            let _ = writeln!(out, "    {mark} {:<13}{}", step_title(name), step.detail);
            if let Some(advice) = &step.advice {
                let _ = writeln!(out, "      → {advice}");
            }
        }
        if let Some(f) = &account.folders {
            folders::render(f, &mut out);
        }
        if account.smtp.is_none() {
            let _ = writeln!(
                out,
                "  SMTP not configured (no [account.smtp]): sending is not checked"
            );
        }
        let failed = account.steps.iter().filter(|s| !s.ok).count();
        if failed == 0 {
            let _ = writeln!(out, "  all {} steps passed", account.steps.len());
        } else {
            let _ = writeln!(out, "  {failed} step(s) failed");
        }
        out.push('\n');
    }
    out
}

fn step_title(name: &str) -> &str {
    match name {
        "dns" => "DNS",
        "tcp" => "TCP",
        "tls" => "TLS",
        "ehlo" => "EHLO",
        "auth" => "AUTH",
        "logout" => "LOGOUT",
        "quit" => "QUIT",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_follow_the_tls_mode() {
        assert_eq!(Kind::sequence(TlsMode::Implicit)[2], Kind::Tls);
        assert_eq!(Kind::sequence(TlsMode::Starttls)[3], Kind::Tls);
        assert!(!Kind::sequence(TlsMode::None).contains(&Kind::Tls));
    }

    #[test]
    fn greetings() {
        assert!(greeting_ok(
            Protocol::Imap,
            "* OK [CAPABILITY IMAP4rev1] ready"
        ));
        assert!(!greeting_ok(Protocol::Imap, "+OK POP3 ready"));
        assert!(!greeting_ok(Protocol::Imap, "*"));
        assert!(greeting_ok(Protocol::Smtp, "220 mx ESMTP"));
        assert!(!greeting_ok(Protocol::Smtp, "554 go away"));
    }

    #[test]
    fn text_report_marks_and_advice() {
        let report = Report {
            ok: false,
            accounts: vec![AccountReport {
                folders: None,
                email: "a@example.com".into(),
                ok: false,
                imap: "imap.example.com:993 (tls = implicit)".into(),
                smtp: None,
                steps: vec![
                    Step {
                        name: "imap.dns".into(),
                        ok: true,
                        detail: "imap.example.com → 192.0.2.1".into(),
                        advice: None,
                    },
                    Step {
                        name: "imap.tcp".into(),
                        ok: false,
                        detail: "refused".into(),
                        advice: Some("start the server".into()),
                    },
                ],
            }],
        };
        let text = render_text(&report);
        assert!(
            text.contains("  IMAP imap.example.com:993 (tls = implicit)\n"),
            "{text}"
        );
        assert!(
            text.contains("    ✓ DNS          imap.example.com → 192.0.2.1\n"),
            "{text}"
        );
        assert!(
            text.contains("    ✗ TCP          refused\n      → start the server\n"),
            "{text}"
        );
        assert!(text.contains("1 step(s) failed"), "{text}");
    }
}
