//! `mailgate run`: logging set up, the configuration loaded (with discovery), the gateway run.

use anyhow::Result;
use std::io::IsTerminal;
use std::path::Path;

// (No doc comment: clap would take it into the help text.)
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(mailgate::logbuf::Stderr::install())
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        // Values clients and servers chose are quoted and escaped (see `logfmt`).
        LogFormat::Text => builder.fmt_fields(mailgate::logfmt::TextFields).init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs the gateway with the configuration at `config` until it is told to stop.
pub fn run(
    config: &Path,
    log_format: LogFormat,
    dumps_before: &mailgate::coredump::Before,
) -> Result<()> {
    init_logging(log_format);
    mailgate::net::tls::install_crypto_provider();
    let rt = super::runtime()?;
    rt.block_on(async {
        let cfg = mailgate::discover::resolve(config).await?;
        if let Some(store) = &cfg.store {
            // Account changes in the store reload every node (see `pgstore::listen`).
            mailgate::pgstore::listen(store);
        }
        if cfg.server.allow_core_dumps {
            match mailgate::coredump::allow(dumps_before) {
                Ok(()) => tracing::warn!("core dumps allowed (allow_core_dumps = true): a dump holds passwords and tokens"),
                Err(e) => tracing::warn!(error = %e, "allow_core_dumps = true, but core dumps stay off"),
            }
        }
        if cfg.accounts.is_empty() {
            tracing::warn!(
                "no accounts in the config: every login will fail; add one with `mailgate setup --config {}`",
                config.display()
            );
        }
        let server = mailgate::server::Server::bind(cfg).await?;
        server.run().await?;
        Ok::<_, anyhow::Error>(())
    })
}
