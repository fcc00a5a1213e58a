//! The `mailgate` command line: run the gateway, check a config, hash a local password, get
//! and inspect OAuth 2.0 tokens.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use mailgate::config::{self, Config};
use mailgate::secret::Secret;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "mailgate",
    version,
    about = "Local IMAP/SMTP gateway for password-only mail clients"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        /// Configuration file.
        #[arg(long, short, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// Log line format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Connect to each account's servers step by step (DNS, TCP, TLS, greeting, login) and
    /// say what to fix; exit status 0 only if every step passed. Sends no mail.
    Check {
        /// Check only this account (its email address).
        email: Option<String>,
        /// Print one JSON document (accounts → steps → name, ok, detail, advice).
        #[arg(long)]
        json: bool,
        /// Configuration file.
        #[arg(long, short, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Validate a configuration file without starting.
    CheckConfig {
        /// Configuration file.
        #[arg(long, short, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Hash a local password for `local_password_hash` (reads it from stdin or a prompt).
    HashPassword,
    /// OAuth 2.0 tokens for accounts with `[account.oauth2]`.
    #[command(subcommand)]
    Oauth(OauthCommand),
    /// Local TLS certificates for `[server.tls]`.
    #[command(subcommand)]
    Cert(CertCommand),
}

#[derive(Subcommand)]
enum CertCommand {
    /// Make a self-signed certificate for localhost, 127.0.0.1 and ::1 (mailgate.pem and
    /// mailgate.key, the key readable by its owner only).
    Generate {
        /// Folder for the two files.
        #[arg(long, default_value = "certs")]
        out: PathBuf,
        /// Another DNS name or IP address for the certificate (repeatable).
        #[arg(long = "name")]
        names: Vec<String>,
        /// Days the certificate is valid.
        #[arg(long, default_value_t = 825)]
        days: u32,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum OauthCommand {
    /// Get tokens for an account: browser (authorization code + PKCE) unless told otherwise.
    Authorize {
        /// The account's email address.
        email: String,
        /// Device-code flow: prints a code to enter on another device; no terminal input.
        #[arg(long, conflicts_with = "client_credentials")]
        device: bool,
        /// Client-credentials flow (Microsoft 365 app-only access; needs the client secret).
        #[arg(long)]
        client_credentials: bool,
        /// Configuration file.
        #[arg(long, short, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// How long to wait for the approval, in seconds.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
    /// Per account: whether a token is stored, when it expires, the last refresh result.
    Status {
        /// Configuration file.
        #[arg(long, short, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Command::Check {
        email,
        json,
        config,
    } = &cli.command
    {
        return check(email.as_deref(), *json, config);
    }
    match real_main(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailgate: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run { config, log_format } => {
            init_logging(log_format);
            mailgate::tls::install_crypto_provider();
            let cfg = Config::load(&config)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(async {
                let server = mailgate::server::Server::bind(cfg).await?;
                server.run().await?;
                Ok::<_, anyhow::Error>(())
            })
        }
        Command::CheckConfig { config } => {
            mailgate::tls::install_crypto_provider();
            let cfg = Config::load(&config)?;
            println!(
                "{}: OK ({} account{})",
                config.display(),
                cfg.accounts.len(),
                if cfg.accounts.len() == 1 { "" } else { "s" }
            );
            Ok(())
        }
        Command::Oauth(cmd) => oauth(cmd),
        // Handled in main(): it has its own exit statuses.
        Command::Check { .. } => Ok(()),
        Command::Cert(CertCommand::Generate {
            out,
            names,
            days,
            force,
        }) => {
            let g = mailgate::cert::generate(&out, &names, days, force)?;
            print_cert_instructions(&g);
            Ok(())
        }
        Command::HashPassword => {
            let password = read_password()?;
            let hash = mailgate::account::hash_password(&password)
                .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
            println!("{hash}");
            Ok(())
        }
    }
}

/// `mailgate check`: exit status 0 when every step passed, 1 when one failed (or the config
/// cannot be loaded), 2 when EMAIL names no account (a usage error, as clap's own).
fn check(email: Option<&str>, json: bool, path: &std::path::Path) -> std::process::ExitCode {
    use std::process::ExitCode;
    mailgate::tls::install_crypto_provider();
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mailgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let accounts = match email {
        // Nothing checked is not "everything passed": a script must not take it for success.
        None if cfg.accounts.is_empty() => {
            eprintln!("mailgate: no accounts in {} to check", path.display());
            return ExitCode::FAILURE;
        }
        None => cfg.accounts.clone(),
        Some(e) => match cfg.account(e) {
            Some(a) => vec![a.clone()],
            None => {
                let known: Vec<&str> = cfg.accounts.iter().map(|a| a.email.as_str()).collect();
                eprintln!(
                    "mailgate: no account {e} in {} (accounts: {})",
                    path.display(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
                return ExitCode::from(2);
            }
        },
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mailgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = rt.block_on(mailgate::check::run(&cfg, &accounts));
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("mailgate: cannot write the report as JSON: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", mailgate::check::render_text(&report));
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn oauth(cmd: OauthCommand) -> Result<()> {
    use mailgate::oauth::{authorize, unix_now};
    mailgate::tls::install_crypto_provider();
    match cmd {
        OauthCommand::Authorize {
            email,
            device,
            client_credentials,
            config,
            timeout_secs,
        } => {
            let cfg = Config::load(&config)?;
            let account = cfg
                .account(&email)
                .with_context(|| format!("no account {email} in {}", config.display()))?;
            let oauth = account.imap.oauth.clone().with_context(|| {
                format!(
                    "account {email} has no [account.oauth2] table in {}",
                    config.display()
                )
            })?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let deadline = std::time::Duration::from_secs(timeout_secs.max(1));
            let mut out = std::io::stdout();
            let tokens = rt.block_on(async {
                if client_credentials {
                    authorize::client_credentials(&oauth, &cfg.server).await
                } else if device {
                    authorize::device_code(&oauth, &cfg.server, &mut out, deadline).await
                } else {
                    let pasted = authorize::stdin_lines();
                    authorize::authorization_code(&oauth, &cfg.server, &mut out, pasted, deadline)
                        .await
                }
            })?;
            let expiry = match tokens.expires_at {
                Some(at) => format!("access token valid until {}", authorize::format_utc(at)),
                None => "access token without a stated expiry".into(),
            };
            println!(
                "Authorized {}: {expiry}; {}; tokens stored encrypted in {}",
                oauth.account,
                if tokens.refresh_token.is_some() {
                    "refresh token stored"
                } else {
                    "no refresh token (renewed by asking again)"
                },
                oauth.state_dir.display()
            );
            // The stdin reader thread may still be blocked on a read: exit without waiting.
            rt.shutdown_background();
            Ok(())
        }
        OauthCommand::Status { config } => {
            let cfg = Config::load(&config)?;
            let now = unix_now();
            let mut any = false;
            for account in &cfg.accounts {
                let Some(oauth) = &account.imap.oauth else {
                    continue;
                };
                any = true;
                match mailgate::oauth::status(oauth) {
                    Err(e) => println!("{}: error: {e}", account.email),
                    Ok(None) => println!(
                        "{}: no token (run `mailgate oauth authorize {}`)",
                        account.email, account.email
                    ),
                    Ok(Some(t)) => {
                        let expiry = match (t.access_token.is_some(), t.expires_at) {
                            (false, _) => "no access token".to_owned(),
                            (true, None) => "access token without expiry".to_owned(),
                            (true, Some(at)) if at > now => format!(
                                "access token expires {} (in {} s)",
                                authorize::format_utc(at),
                                at - now
                            ),
                            (true, Some(at)) => {
                                format!("access token expired {}", authorize::format_utc(at))
                            }
                        };
                        let last = match &t.last_refresh {
                            None => "never refreshed".to_owned(),
                            Some(r) if r.detail.is_empty() => {
                                format!(
                                    "last refresh {} at {}",
                                    r.result,
                                    authorize::format_utc(r.at)
                                )
                            }
                            Some(r) => format!(
                                "last refresh {} at {} ({})",
                                r.result,
                                authorize::format_utc(r.at),
                                r.detail
                            ),
                        };
                        let hint = match t.last_refresh.as_ref().map(|r| r.result.as_str()) {
                            Some("revoked") => {
                                format!("; run `mailgate oauth authorize {}`", account.email)
                            }
                            _ => String::new(),
                        };
                        println!(
                            "{}: token present ({}, refresh token {}); {expiry}; {last}{hint}",
                            account.email,
                            match t.grant {
                                mailgate::oauth::store::Grant::AuthorizationCode =>
                                    "authorization code",
                                mailgate::oauth::store::Grant::DeviceCode => "device code",
                                mailgate::oauth::store::Grant::ClientCredentials =>
                                    "client credentials",
                            },
                            if t.refresh_token.is_some() {
                                "present"
                            } else {
                                "absent"
                            }
                        );
                    }
                }
            }
            if !any {
                println!(
                    "no account in {} has an [account.oauth2] table",
                    config.display()
                );
            }
            Ok(())
        }
    }
}

/// What to put in the config and how to make clients trust the new certificate.
fn print_cert_instructions(g: &mailgate::cert::Generated) {
    let abs = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    let (cert, key) = (abs(&g.cert), abs(&g.key));
    println!(
        "Wrote {} (certificate) and {} (private key, mode 0600) for {}.",
        cert.display(),
        key.display(),
        g.names.join(", ")
    );
    println!(
        "\nAdd to the config (paths may also be relative to the config file's folder):\n\n\
         [server.tls]\ncert = \"{}\"\nkey = \"{}\"\n\n\
         # optional implicit-TLS listeners:\n# imaps_listen = \"127.0.0.1:1993\"\n\
         # smtps_listen = \"127.0.0.1:1465\"\n",
        cert.display(),
        key.display()
    );
    println!(
        "Then make the mail client trust the certificate (it is self-signed):\n\
         - Windows: certmgr.msc → Trusted Root Certification Authorities → Certificates → \
         All Tasks → Import… → {cert}\n\
         - macOS: sudo security add-trusted-cert -d -r trustRoot -k \
         /Library/Keychains/System.keychain {cert}\n\
         - Debian/Ubuntu: sudo cp {cert} /usr/local/share/ca-certificates/mailgate.crt && \
         sudo update-ca-certificates\n\
         - Thunderbird: on the first connection accept the security exception \
         (or Settings → Privacy & Security → Manage Certificates → Servers → Add Exception \
         for localhost:PORT)\n\
         Check it: openssl s_client -connect 127.0.0.1:1993 -CAfile {cert} </dev/null",
        cert = cert.display()
    );
}

/// The password from a terminal prompt (asked twice) or the first line of stdin.
fn read_password() -> Result<Secret> {
    if std::io::stdin().is_terminal() {
        let first = Secret::new(rpassword::prompt_password("Local password: ")?);
        let second = Secret::new(rpassword::prompt_password("Again: ")?);
        if first != second {
            bail!("the two passwords differ");
        }
        if first.is_empty() {
            bail!("an empty password is not allowed");
        }
        return Ok(first);
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line)?;
    let pw = Secret::new(line.trim_end_matches(['\r', '\n']).to_owned());
    if pw.is_empty() {
        bail!("no password on standard input");
    }
    Ok(pw)
}
