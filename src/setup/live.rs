//! The live test: the gateway's own upstream login code, run on the account as it will load.

use super::{Plan, SetupError, Target};
use crate::check::folders::FolderReport;
use crate::config::Config;
use crate::net::ConnectError;
use crate::secret::Secret;

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
    let none = Secret::default();
    let cfg = target.load_alone(plan, super::store::inline_credential(target, plan, &none)?)?;
    let account = cfg
        .accounts
        .first()
        .ok_or_else(|| SetupError::Invalid("the account did not load".into()))?;
    let folders = match crate::imap::upstream::login(account, &cfg.server).await {
        Ok(mut logged_in) => {
            use tokio::io::AsyncWriteExt;
            let folders =
                crate::imap::folders::learn::list(&mut logged_in, cfg.server.upstream_timeout)
                    .await
                    .ok()
                    .map(|entries| crate::check::folders::report(&entries, &account.folders));
            // Say goodbye politely; the answer does not matter.
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                logged_in.stream.write_all(b"mgz LOGOUT\r\n"),
            )
            .await;
            folders
        }
        Err(e) => return Err(live_test_error(plan, "IMAP login", &e)),
    };
    if let Some(smtp) = &account.smtp {
        match crate::smtp::submit::Upstream::connect(smtp, &cfg.server).await {
            Ok(up) => up.quit().await,
            Err(e) => return Err(live_test_error(plan, "SMTP AUTH", &e)),
        }
    }
    Ok(Tested {
        config: cfg,
        folders,
    })
}

/// A failed live test step: the error in words that fit set-up (nothing is stored yet), and
/// one line of advice from the error's kind and the preset's facts.
fn live_test_error(
    plan: &Plan,
    step: &'static str,
    e: &crate::upstream::UpstreamError,
) -> SetupError {
    use crate::upstream::{TlsFailure, UpstreamError};
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
        UpstreamError::Auth { .. } => match plan.found.preset {
            Some(p) if !p.advice.is_empty() => {
                let link = p.help.app_password.or(p.help.enable_imap).unwrap_or_default();
                format!("{}: {} {link}", p.name, p.advice).trim_end().to_owned()
            }
            _ => "check the password (many providers want an app password when 2-step verification is on)".into(),
        },
        _ if untrusted => match &plan.ca_file {
            None => "the server's certificate is not trusted: give its CA file with --ca-file".into(),
            Some(f) => format!(
                "the server's certificate is not trusted, not even with the CA file {}: give the CA that issued it",
                f.display()
            ),
        },
        _ => String::new(),
    };
    SetupError::LiveTest {
        step,
        reason,
        advice,
        untrusted_certificate: untrusted,
    }
}
