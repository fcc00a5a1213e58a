//! The live test: the gateway's own upstream login code, run on the account as it will load
//! (set-up), or as it is loaded now ([`super::check_account`]).

use super::{Plan, SetupError, Target};
use crate::check::folders::FolderReport;
use crate::config::{Account, Config, ServerConfig};
use crate::net::ConnectError;
use crate::provider::Preset;
use crate::secret::Secret;
use crate::upstream::UpstreamError;
use std::path::Path;

/// What a passed live test found.
pub struct Tested {
    /// The account's config as it will load.
    pub config: Config,
    /// The provider's folders and the names the client will see (`None` when the server would
    /// not list them).
    pub folders: Option<FolderReport>,
}

/// Logs in to the upstream IMAP and SMTP servers with the account as it will be loaded (the
/// password inline, in memory only), and lists the folders. For OAuth, tokens must already be
/// stored.
pub async fn live_test(target: &Target, plan: &Plan) -> Result<Tested, SetupError> {
    let cfg = loaded(target, plan)?;
    let account = first(&cfg)?;
    let ran = run(account, &cfg.server, true).await;
    let failed = |step, e: &UpstreamError| {
        let f = failure(plan.found.preset, plan.ca_file.as_deref(), e);
        SetupError::LiveTest {
            step,
            reason: f.reason,
            advice: f.advice,
            untrusted_certificate: f.untrusted,
        }
    };
    let folders = ran.imap.map_err(|e| failed("IMAP login", &e))?;
    if let Some(Err(e)) = &ran.smtp {
        return Err(failed("SMTP AUTH", e));
    }
    Ok(Tested {
        config: cfg,
        folders,
    })
}

/// The account of `plan` as it will load (the password inline, in memory only), alone in a
/// config with the file's `[server]`.
pub(super) fn loaded(target: &Target, plan: &Plan) -> Result<Config, SetupError> {
    let none = Secret::default();
    target.load_alone(plan, super::store::inline_credential(target, plan, &none)?)
}

/// The one account of a config from [`loaded`].
pub(super) fn first(cfg: &Config) -> Result<&Account, SetupError> {
    cfg.accounts
        .first()
        .map(|a| &**a)
        .ok_or_else(|| SetupError::Invalid("the account did not load".into()))
}

/// What the steps found: the IMAP login (with the folders, `None` when the server would not
/// list them), and the SMTP login (`None`: no SMTP server, or not tried after a failed IMAP
/// login when `stop_early`).
pub(super) struct Ran {
    pub(super) imap: Result<Option<FolderReport>, UpstreamError>,
    pub(super) smtp: Option<Result<(), UpstreamError>>,
}

/// The steps on `account`: IMAP login and folder list, then SMTP AUTH.
pub(super) async fn run(account: &Account, server: &ServerConfig, stop_early: bool) -> Ran {
    let imap = match crate::imap::upstream::login(account, server).await {
        Ok(mut logged_in) => {
            use tokio::io::AsyncWriteExt;
            let folders =
                crate::imap::folders::learn::list(&mut logged_in, server.upstream_timeout)
                    .await
                    .ok()
                    .map(|entries| crate::check::folders::report(&entries, &account.folders));
            // Say goodbye politely; the answer does not matter.
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                logged_in.stream.write_all(b"mgz LOGOUT\r\n"),
            )
            .await;
            Ok(folders)
        }
        Err(e) => Err(e),
    };
    let smtp = match &account.smtp {
        Some(_) if stop_early && imap.is_err() => None,
        Some(smtp) => Some(
            match crate::smtp::submit::Upstream::connect(smtp, server).await {
                Ok(up) => {
                    up.quit().await;
                    Ok(())
                }
                Err(e) => Err(e),
            },
        ),
        None => None,
    };
    Ran { imap, smtp }
}

/// A failed step in words that fit set-up (nothing is stored yet), and one line of advice from
/// the error's kind and the preset's facts.
pub(super) struct Failure {
    pub(super) reason: String,
    pub(super) advice: String,
    /// The server's certificate chains to no trusted root: a CA file would fix it.
    pub(super) untrusted: bool,
}

/// [`Failure`] of `e`, with the advice of `preset` (its app-password link) and `ca_file`.
pub(super) fn failure(
    preset: Option<&'static Preset>,
    ca_file: Option<&Path>,
    e: &UpstreamError,
) -> Failure {
    use crate::upstream::TlsFailure;
    let untrusted = matches!(
        e,
        UpstreamError::Net(ConnectError::Tls {
            failure: TlsFailure::UntrustedIssuer,
            ..
        })
    );
    let reason = match e {
        UpstreamError::Auth {
            address,
            username,
            reason,
        } => format!("{address} rejected the password for {username}: {reason}"),
        other => other.to_string(),
    };
    let advice = match e {
        UpstreamError::Auth { .. } => match preset {
            Some(p) if !p.advice.is_empty() => {
                let link = p.help.app_password.or(p.help.enable_imap).unwrap_or_default();
                format!("{}: {} {link}", p.name, p.advice).trim_end().to_owned()
            }
            _ => "check the password (many providers want an app password when 2-step verification is on)".into(),
        },
        _ if untrusted => match ca_file {
            None => "the server's certificate is not trusted: give its CA file with --ca-file".into(),
            Some(f) => format!(
                "the server's certificate is not trusted, not even with the CA file {}: give the CA that issued it",
                f.display()
            ),
        },
        _ => String::new(),
    };
    Failure {
        reason,
        advice,
        untrusted,
    }
}
