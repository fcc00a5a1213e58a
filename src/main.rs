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
    /// Find the IMAP/SMTP settings for an address (preset, MX, autoconfig, guess); logs in
    /// nowhere.
    Discover {
        /// The email address.
        email: String,
        /// DNS server to ask (`ADDR` or `ADDR:PORT`); default: /etc/resolv.conf.
        #[arg(long)]
        resolver: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Time-out per step, in seconds.
        #[arg(long, default_value_t = 5)]
        timeout_secs: u64,
    },
    /// OAuth 2.0 tokens for accounts with `[account.oauth2]`.
    #[command(subcommand)]
    Oauth(OauthCommand),
    /// Add an account: settings found, credential tested live, account appended to the config.
    Setup(Box<SetupArgs>),
    /// Local TLS certificates for `[server.tls]`.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Failed-login lock-outs of the running mailgate (through its control socket).
    Throttle {
        #[command(subcommand)]
        command: ThrottleCommand,
        /// Configuration file (its `state_dir` holds the control socket).
        #[arg(long, short, default_value = config::DEFAULT_PATH, global = true)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum ThrottleCommand {
    /// Print the locked-out keys (login name, client or all clients) with the time left.
    List,
    /// Lift the lock-outs and forget the failure counts of EMAIL (from every client), or of
    /// every login name without EMAIL.
    Clear {
        /// The login name (email address).
        email: Option<String>,
    },
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

#[derive(clap::Args)]
struct SetupArgs {
    /// Configuration file to add the account to (started with the defaults when missing).
    #[arg(long, short, default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// The email address (asked for when left out, unless --non-interactive).
    #[arg(long)]
    email: Option<String>,
    /// Ask nothing: every answer comes from the options.
    #[arg(long)]
    non_interactive: bool,
    /// Environment variable holding the provider password or app password.
    #[arg(long)]
    password_env: Option<String>,
    /// Environment variable holding the local password (default: asked for, or generated and
    /// printed once with --non-interactive).
    #[arg(long)]
    local_password_env: Option<String>,
    /// Log in upstream with OAuth 2.0 (needs --client-id) instead of a password.
    #[arg(long, requires = "client_id")]
    oauth: bool,
    /// OAuth application (client) id.
    #[arg(long)]
    client_id: Option<String>,
    /// Environment variable holding the OAuth client secret (written as client_secret_env).
    #[arg(long)]
    client_secret_env: Option<String>,
    /// Microsoft tenant (common, organizations, consumers, a tenant id or domain).
    #[arg(long)]
    tenant: Option<String>,
    /// OAuth authorization endpoint, for an identity provider without a preset (with
    /// --token-url).
    #[arg(long, requires_all = ["oauth", "token_url"])]
    authorize_url: Option<String>,
    /// OAuth token endpoint, for an identity provider without a preset.
    #[arg(long, requires_all = ["oauth", "authorize_url"])]
    token_url: Option<String>,
    /// OAuth scope (repeatable), when not the preset's.
    #[arg(long = "scope", requires = "oauth")]
    scopes: Vec<String>,
    /// Use this built-in provider preset instead of discovery.
    #[arg(long, conflicts_with = "imap_server")]
    provider: Option<String>,
    /// IMAP server HOST:PORT (with --imap-tls, and --smtp-server/--smtp-tls unless the
    /// account only receives) instead of discovery.
    #[arg(long, requires = "imap_tls")]
    imap_server: Option<String>,
    /// IMAP TLS mode.
    #[arg(long, value_enum, requires = "imap_server")]
    imap_tls: Option<TlsArg>,
    /// SMTP submission server HOST:PORT (with --smtp-tls); left out with --imap-server, the
    /// account only receives.
    #[arg(long, requires_all = ["imap_server", "smtp_tls"])]
    smtp_server: Option<String>,
    /// SMTP TLS mode.
    #[arg(long, value_enum, requires = "smtp_server")]
    smtp_tls: Option<TlsArg>,
    /// Accept servers discovery found without encryption (an autoconfig file saying `plain`):
    /// written with `allow_plaintext = true`; the password then crosses the network in clear.
    #[arg(long)]
    allow_plaintext: bool,
    /// Where mail clients connect for IMAP (`IP:PORT`, written as `[server] imap_listen`;
    /// asked for at the terminal when the config file is new).
    #[arg(long)]
    imap_listen: Option<std::net::SocketAddr>,
    /// Where mail clients connect for SMTP (`IP:PORT`, written as `[server] smtp_listen`).
    #[arg(long)]
    smtp_listen: Option<std::net::SocketAddr>,
    /// CA certificate file for a provider with a private CA (written as ca_file).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// DNS server for discovery (`ADDR` or `ADDR:PORT`).
    #[arg(long)]
    resolver: Option<String>,
    /// How long to wait for the OAuth approval, in seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum TlsArg {
    Implicit,
    Starttls,
    None,
}

impl From<TlsArg> for config::TlsMode {
    fn from(t: TlsArg) -> Self {
        match t {
            TlsArg::Implicit => config::TlsMode::Implicit,
            TlsArg::Starttls => config::TlsMode::Starttls,
            TlsArg::None => config::TlsMode::None,
        }
    }
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
        .with_writer(mailgate::logbuf::Stderr::install())
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        // Values clients and servers chose are quoted and escaped (see `logfmt`).
        LogFormat::Text => builder.fmt_fields(mailgate::logfmt::TextFields).init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> std::process::ExitCode {
    // Before anything reads a password, a token or the token key (see `coredump`).
    let (dumps_before, off) = mailgate::coredump::forbid();
    if let Err(e) = off {
        eprintln!("mailgate: warning: cannot turn core dumps off ({e}); a core dump would hold passwords and tokens");
    }
    let cli = Cli::parse();
    if let Command::Check {
        email,
        json,
        config,
    } = &cli.command
    {
        return check(email.as_deref(), *json, config);
    }
    let result = real_main(cli, &dumps_before);
    // Log lines still gathered (see `logbuf`) go out before anything else is printed.
    mailgate::logbuf::flush();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mailgate: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main(cli: Cli, dumps_before: &mailgate::coredump::Before) -> Result<()> {
    match cli.command {
        Command::Run { config, log_format } => {
            init_logging(log_format);
            mailgate::net::tls::install_crypto_provider();
            let rt = runtime()?;
            rt.block_on(async {
                let cfg = mailgate::discover::resolve(&config).await?;
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
        Command::CheckConfig { config } => {
            mailgate::net::tls::install_crypto_provider();
            let cfg = Config::load(&config)?;
            println!(
                "{}: OK ({} account{})",
                config.display(),
                cfg.accounts.len(),
                if cfg.accounts.len() == 1 { "" } else { "s" }
            );
            for email in &cfg.undiscovered {
                println!(
                    "{email}: no servers in the file and no preset for the domain; `mailgate run` discovers them at start-up (see `mailgate discover {email}`)"
                );
            }
            Ok(())
        }
        Command::Oauth(cmd) => oauth(cmd),
        Command::Setup(args) => setup(*args),
        Command::Discover {
            email,
            resolver,
            json,
            timeout_secs,
        } => {
            mailgate::net::tls::install_crypto_provider();
            let opts = mailgate::discover::Options {
                resolver: parse_resolver(resolver.as_deref())?,
                timeout: std::time::Duration::from_secs(timeout_secs.max(1)),
                ..Default::default()
            };
            let found = match runtime()?.block_on(mailgate::discover::discover(&email, &opts)) {
                Ok(found) => found,
                Err(e) => {
                    if json {
                        println!("{:#}", e.to_json(&email));
                    }
                    return Err(e.into());
                }
            };
            if json {
                println!("{:#}", found.to_json());
            } else {
                print!("{}", found.report());
            }
            Ok(())
        }
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
        Command::Throttle { command, config } => {
            let state_dir = Config::load_server(&config)?.state_dir;
            let line = match command {
                ThrottleCommand::List => "list".to_owned(),
                ThrottleCommand::Clear { email: None } => "clear".to_owned(),
                ThrottleCommand::Clear { email: Some(e) } if !e.contains(char::is_whitespace) => {
                    format!("clear {e}")
                }
                ThrottleCommand::Clear { .. } => bail!("a login name has no spaces"),
            };
            let reply = mailgate::control::request(&state_dir, &line)?;
            print!("{reply}");
            if reply.starts_with("error:") {
                bail!("the running mailgate refused the request");
            }
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
    mailgate::net::tls::install_crypto_provider();
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

/// `oauth status`'s line for tokens a running gateway could not save (the store's note:
/// Unix time of the first failure, then the error; empty when the disk had no room for more).
fn print_unsaved(email: &str, note: &str) {
    let (since, error) = note.split_once(' ').unwrap_or((note, ""));
    let since = since.parse().map_or_else(
        |_| "an unknown time".to_owned(),
        mailgate::oauth::authorize::format_utc,
    );
    println!(
        "{email}: NOT SAVED: since {since} the running gateway holds newer tokens than the token file and cannot save them ({}); it retries at each login. Fix the cause (disk space, the state folder) before restarting it, or run `mailgate oauth authorize {email}` after",
        if error.is_empty() { "see its log" } else { error }
    );
}

fn oauth(cmd: OauthCommand) -> Result<()> {
    use mailgate::oauth::{authorize, unix_now};
    mailgate::net::tls::install_crypto_provider();
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
            let oauth = account.imap.credential.oauth().cloned().with_context(|| {
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
                let Some(oauth) = account.imap.credential.oauth() else {
                    continue;
                };
                any = true;
                let (tokens, unsaved) = match mailgate::oauth::status(oauth) {
                    Ok(found) => (found.tokens, found.unsaved),
                    Err(e) => (Err(e), None),
                };
                match tokens {
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
                if let Some(note) = unsaved {
                    print_unsaved(&account.email, &note);
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

/// One line typed on the terminal (the prompt goes to stderr, so stdout stays the result).
fn ask(prompt: &str) -> Result<String> {
    use std::io::Write;
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        bail!("no answer (end of input)");
    }
    Ok(line.trim().to_owned())
}

/// How many times a question is asked again after an answer it cannot use.
const ASK_TRIES: usize = 5;

/// Asks `question` until `parse` takes the answer (at most [`ASK_TRIES`] times); the reason
/// an answer is refused is shown before the question comes again.
fn ask_until<T>(question: &str, parse: impl Fn(&str) -> Result<T>) -> Result<T> {
    for _ in 1..ASK_TRIES {
        match parse(&ask(question)?) {
            Ok(v) => return Ok(v),
            Err(e) => eprintln!("{e:#}"),
        }
    }
    parse(&ask(question)?)
}

/// The servers typed in, as a mail client's manual set-up asks for them: when discovery finds
/// nothing, or the settings it found are declined. Each server's security defaults from its
/// port (143, 587 and 25 are STARTTLS ports; anything else is taken as implicit TLS); the user
/// name defaults to the email address.
fn ask_servers(email: &str) -> Result<mailgate::discover::Discovery> {
    use mailgate::discover::{Discovery, Found, Source};
    // `optional`: an empty answer means none (an account that only receives has no SMTP).
    let endpoint = |what: &str, example: &str, optional: bool| -> Result<Option<Found>> {
        let question = if optional {
            format!("{what} server (host:port, e.g. {example}; empty: none, receive only): ")
        } else {
            format!("{what} server (host:port, e.g. {example}): ")
        };
        let Some((host, port)) = ask_until(&question, |t| {
            if optional && t.trim().is_empty() {
                return Ok(None);
            }
            server_arg(t, what).map(Some)
        })?
        else {
            return Ok(None);
        };
        let default = match port {
            143 | 587 | 25 => config::TlsMode::Starttls,
            _ => config::TlsMode::Implicit,
        };
        let tls = ask_until(
            &format!(
                "{what} security [implicit/starttls/none] ({}): ",
                default.as_str()
            ),
            |t| match t.to_ascii_lowercase().as_str() {
                "" => Ok(default),
                "implicit" | "ssl" | "tls" => Ok(config::TlsMode::Implicit),
                "starttls" => Ok(config::TlsMode::Starttls),
                "none" => Ok(config::TlsMode::None),
                other => bail!("`{other}`: answer implicit, starttls or none"),
            },
        )?;
        Ok(Some(Found {
            host,
            port,
            tls,
            username: email.to_owned(),
            source: Source::Given,
        }))
    };
    // Not optional, so never `None`; the context only names the impossible case.
    let mut imap =
        endpoint("IMAP", "imap.example.com:993", false)?.context("an IMAP server is needed")?;
    let mut smtp = endpoint("SMTP", "smtp.example.com:465", true)?;
    let user = ask(&format!("User name at the provider ({email}): "))?;
    if !user.is_empty() {
        imap.username = user.clone();
        if let Some(smtp) = &mut smtp {
            smtp.username = user;
        }
    }
    Ok(Discovery {
        email: email.to_owned(),
        preset: mailgate::discover::domain_of(email)
            .and_then(|d| mailgate::provider::by_domain(&d)),
        imap,
        smtp,
        notes: Vec::new(),
    })
}

/// A non-empty environment variable's value as a secret.
fn secret_env(var: &str, what: &str) -> Result<Secret> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
        _ => bail!("{what}: environment variable `{var}` is not set"),
    }
}

/// `host:port` from the command line.
fn server_arg(text: &str, what: &str) -> Result<(String, u16)> {
    let (host, port) = text
        .trim()
        .rsplit_once(':')
        .with_context(|| format!("{what} `{text}` is not HOST:PORT"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .with_context(|| format!("{what} `{text}`: bad port"))?;
    if host.is_empty() {
        bail!("{what} `{text}`: no host");
    }
    Ok((host.to_owned(), port))
}

/// The shipped example account stays in a file only if the user says so: left there, it makes
/// `check-config` fail once `MAILGATE_IMAP_PASSWORD` is not set. Without a terminal it goes.
fn drop_example(target: &mut mailgate::setup::Target, interactive: bool) -> Result<()> {
    if !target.has_example() {
        return Ok(());
    }
    let example = mailgate::setup::EXAMPLE_EMAIL;
    if interactive {
        let answer = ask(&format!(
            "The file still has the example account {example} (local password change-me). Remove it? [Y/n] "
        ))?;
        if answer.trim().to_ascii_lowercase().starts_with('n') {
            println!("Keeping the example account {example}: it needs MAILGATE_IMAP_PASSWORD set to load.");
            return Ok(());
        }
    }
    target.remove_example()?;
    println!(
        "The example account {example} is removed from {} when the new account is written.",
        target.path.display()
    );
    Ok(())
}

fn setup(args: SetupArgs) -> Result<()> {
    use mailgate::discover::{self, Found, Source};
    use mailgate::setup::{self as s, Credential, Plan, Target};
    mailgate::net::tls::install_crypto_provider();
    let interactive = !args.non_interactive;
    let email = match (&args.email, interactive) {
        (Some(e), _) => e.trim().to_owned(),
        (None, true) => ask("Email address: ")?,
        (None, false) => bail!("--email is required with --non-interactive"),
    };
    if discover::domain_of(&email).is_none() {
        bail!("`{email}` is not an email address");
    }
    let mut target = Target::open(&args.config, &email)?;
    drop_example(&mut target, interactive)?;
    set_listeners(&mut target, &args, interactive)?;
    let server = target.server()?;
    let ca_file = args.ca_file.as_deref().map(ca_file_arg).transpose()?;
    let rt = runtime()?;

    // 1. Settings.
    let found = if let Some(id) = &args.provider {
        let preset = mailgate::provider::by_id(id).with_context(|| {
            format!(
                "unknown provider `{id}`; known: {}",
                mailgate::provider::known_ids()
            )
        })?;
        discover::from_preset(&email, preset, Source::Provider(preset.id))
    } else if let (Some(imap), Some(imap_tls)) = (&args.imap_server, args.imap_tls) {
        let given = |text: &str, tls: TlsArg, what: &str| -> Result<Found> {
            let (host, port) = server_arg(text, what)?;
            Ok(Found {
                host,
                port,
                tls: tls.into(),
                username: email.clone(),
                source: Source::Given,
            })
        };
        discover::Discovery {
            email: email.clone(),
            preset: discover::domain_of(&email).and_then(|d| mailgate::provider::by_domain(&d)),
            imap: given(imap, imap_tls, "--imap-server")?,
            smtp: match (&args.smtp_server, args.smtp_tls) {
                (Some(smtp), Some(tls)) => Some(given(smtp, tls, "--smtp-server")?),
                // clap requires both or neither.
                _ => None,
            },
            notes: Vec::new(),
        }
    } else {
        let opts = discover::Options {
            resolver: match &args.resolver {
                Some(_) => parse_resolver(args.resolver.as_deref())?,
                None => mailgate::net::dns::Resolver::new(server.resolver),
            },
            timeout: std::time::Duration::from_secs(5),
            ca_file: ca_file.clone(),
            network: true,
        };
        match rt.block_on(discover::discover(&email, &opts)) {
            Ok(found) => found,
            // As a mail client's wizard falls back to manual settings.
            Err(e) if interactive => {
                eprintln!("No settings found for {email}: {e}\nType them in instead (your provider's help pages list them).");
                ask_servers(&email)?
            }
            Err(e) => return Err(anyhow::Error::new(e).context(
                "no settings found; give them with --provider or --imap-server/--imap-tls/--smtp-server/--smtp-tls",
            )),
        }
    };
    println!("{}:\n{}", settings_header(&found), found.report());
    // A server found without encryption (the report above shows the warning) is used only
    // when the user says so (see `Discovery::plaintext_warning`): asked with "no" as the
    // default, or --allow-plaintext.
    let plaintext = found.plaintext_warning().filter(|_| !args.allow_plaintext);
    let found = if interactive {
        let accepted = if plaintext.is_some() {
            let answer = ask("Use these settings without encryption? [y/N] ")?;
            answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes")
        } else {
            let answer = ask("Use these settings? [Y/n] ")?;
            !(answer.eq_ignore_ascii_case("n") || answer.eq_ignore_ascii_case("no"))
        };
        if accepted {
            found
        } else {
            let typed = ask_servers(&email)?;
            println!("{}:\n{}", settings_header(&typed), typed.report());
            typed
        }
    } else if plaintext.is_some() {
        bail!(
            "not using a server without encryption on discovery's word: give --allow-plaintext \
             to use it anyway, or the servers with --imap-server/--imap-tls/--smtp-server/--smtp-tls"
        );
    } else {
        found
    };

    // 2. Credential.
    let preset = found.preset;
    let use_oauth = args.oauth
        || (interactive
            && args.password_env.is_none()
            && preset.is_some_and(|p| !p.accepts_password()));
    let credential = if use_oauth {
        let provider = preset
            .and_then(|p| p.oauth_provider())
            .map(discover::oauth_name);
        let endpoints = args.authorize_url.clone().zip(args.token_url.clone());
        if provider.is_none() && endpoints.is_none() {
            bail!("mailgate has no OAuth preset for this provider: give --authorize-url and --token-url");
        }
        let client_id = match (&args.client_id, interactive) {
            (Some(c), _) => c.clone(),
            (None, true) => ask("OAuth client id of your app registration: ")?,
            (None, false) => bail!("--oauth needs --client-id"),
        };
        Credential::OAuth {
            provider,
            endpoints,
            scopes: args.scopes.clone(),
            client_id,
            client_secret_env: args.client_secret_env.clone(),
            tenant: args.tenant.clone(),
        }
    } else {
        let password = match (&args.password_env, interactive) {
            (Some(var), _) => secret_env(var, "--password-env")?,
            (None, false) => {
                bail!("--password-env VAR is required with --non-interactive (or --oauth)")
            }
            (None, true) => {
                if let Some(p) = preset {
                    if !p.advice.is_empty() {
                        eprintln!("{}: {}", p.name, p.advice);
                    }
                    if let Some(link) = p.help.app_password {
                        eprintln!("Create an app password: {link}");
                    }
                    if let Some(link) = p.help.enable_imap {
                        eprintln!("Enable IMAP: {link}");
                    }
                }
                let p = Secret::new(rpassword::prompt_password(format!(
                    "Password or app password for {email} at the provider: "
                ))?);
                if p.is_empty() {
                    bail!("an empty password is not allowed");
                }
                p
            }
        };
        Credential::Password(password)
    };

    // 3. Local password.
    let (local, generated) = match (&args.local_password_env, interactive) {
        (Some(var), _) => (secret_env(var, "--local-password-env")?, false),
        (None, false) => (s::generate_password(), true),
        (None, true) => {
            eprintln!("Local password for the mail client (empty: generate one).");
            let first = Secret::new(rpassword::prompt_password("Local password: ")?);
            if first.is_empty() {
                (s::generate_password(), true)
            } else {
                let second = Secret::new(rpassword::prompt_password("Again: ")?);
                if first != second {
                    bail!("the two passwords differ");
                }
                (first, false)
            }
        }
    };
    let local_password_hash = mailgate::account::hash_password(&local)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    let mut plan = Plan {
        email: email.clone(),
        found,
        credential,
        ca_file,
        local_password_hash,
    };

    // 4. OAuth sign-in, then the live test; nothing is written before both pass.
    let mut signed_in = None;
    if let Credential::OAuth { .. } = &plan.credential {
        let cfg = target.load_account(&plan)?;
        let oauth = cfg
            .accounts
            .first()
            .and_then(|a| a.imap.credential.oauth().cloned())
            .context("the new account has no OAuth settings")?;
        let deadline = std::time::Duration::from_secs(args.timeout_secs.max(1));
        let mut out = std::io::stdout();
        rt.block_on(mailgate::oauth::authorize::authorization_code(
            &oauth,
            &cfg.server,
            &mut out,
            mailgate::oauth::authorize::stdin_lines(),
            deadline,
        ))?;
        signed_in = Some(oauth);
    }
    // At the terminal, a certificate from an untrusted CA is not the end: the user gives the
    // CA file and the test runs again, without typing everything anew.
    let mut asked = 0;
    let tested = loop {
        eprintln!("Testing IMAP login and SMTP AUTH at the provider…");
        match rt.block_on(s::live_test(&target, &plan)) {
            Err(e) if interactive && e.untrusted_certificate() && asked < ASK_TRIES => {
                asked += 1;
                if let s::SetupError::LiveTest { step, reason, .. } = &e {
                    eprintln!("{step} failed: {reason}");
                }
                let answer = ask_until(
                    "The server's certificate is not trusted: give its CA file (PEM; empty: stop): ",
                    |t| match t {
                        "" => Ok(None),
                        path => ca_file_arg(std::path::Path::new(path)).map(Some),
                    },
                )?;
                match answer {
                    Some(file) => plan.ca_file = Some(file),
                    None => break Err(e),
                }
            }
            other => break other,
        }
    };
    if let Err(e) = tested {
        // The account is not added, so the tokens of this sign-in go too.
        if let Some(oauth) = &signed_in {
            let removed = mailgate::oauth::store::Store::open(&oauth.state_dir)
                .and_then(|store| store.remove(&oauth.account));
            if let Err(why) = removed {
                eprintln!("warning: the tokens of this sign-in could not be removed: {why}");
            }
        }
        return Err(e.into());
    }
    let secret_file = s::write(&target, &plan, &server.state_dir)?;
    println!("Added {email} to {}.", args.config.display());
    if let Some(f) = secret_file {
        println!(
            "The provider password is in {} (mode 0600, readable only by its owner).",
            f.display()
        );
    }
    println!("Restart mailgate or send it SIGHUP (systemctl reload mailgate) to serve the new account.\n");
    print!(
        "{}",
        s::client_instructions(
            &server,
            &email,
            generated.then_some(&local),
            plan.found.smtp.is_some()
        )
    );
    rt.shutdown_background();
    Ok(())
}

/// `--imap-listen` / `--smtp-listen`, or at the terminal for a new file the answers to "where
/// do mail clients connect", written into `[server]`.
fn set_listeners(
    target: &mut mailgate::setup::Target,
    args: &SetupArgs,
    interactive: bool,
) -> Result<()> {
    let new_file = target.is_new();
    for (key, given, what) in [
        ("imap_listen", args.imap_listen, "IMAP"),
        ("smtp_listen", args.smtp_listen, "SMTP"),
    ] {
        let addr = match given {
            Some(a) => Some(a),
            // A new file has only the defaults: the ports are the user's choice, as in the
            // file's [server] table later.
            None if interactive && new_file => {
                let server = target.server()?;
                let current = match key {
                    "imap_listen" => server.imap_listen,
                    _ => server.smtp_listen,
                };
                ask_until(
                    &format!("Address mail clients connect to for {what} ({current}): "),
                    |t| match t {
                        "" => Ok(None),
                        t => listen_arg(t).map(Some),
                    },
                )?
            }
            None => None,
        };
        if let Some(addr) = addr {
            target.set_listen(key, addr)?;
        }
    }
    Ok(())
}

/// "Settings found" for discovered ones, "Settings given" for typed or given ones.
fn settings_header(found: &mailgate::discover::Discovery) -> &'static str {
    match found.imap.source {
        mailgate::discover::Source::Given => "Settings given",
        _ => "Settings found",
    }
}

/// A listen address typed at the terminal: `IP:PORT` on loopback (any other address needs
/// `[server.tls]`, which a new file does not have).
fn listen_arg(text: &str) -> Result<std::net::SocketAddr> {
    let addr: std::net::SocketAddr = text
        .parse()
        .with_context(|| format!("`{text}` is not IP:PORT (e.g. 127.0.0.1:1143)"))?;
    if !addr.ip().is_loopback() {
        bail!("{addr} is not a loopback address: another address needs [server.tls] (see README, Local TLS); edit the file afterwards");
    }
    Ok(addr)
}

/// A CA file that loads, as an absolute path: the config resolves a relative `ca_file` from
/// its own folder, not from where `setup` ran.
fn ca_file_arg(path: &std::path::Path) -> Result<PathBuf> {
    let abs = std::fs::canonicalize(path).with_context(|| format!("CA file {}", path.display()))?;
    mailgate::net::tls::client_config(Some(&abs))
        .with_context(|| format!("CA file {}", path.display()))?;
    Ok(abs)
}

/// `--resolver ADDR[:PORT]`, or the system's.
fn parse_resolver(text: Option<&str>) -> Result<mailgate::net::dns::Resolver> {
    Ok(mailgate::net::dns::Resolver::new(match text {
        None => None,
        Some(t) => Some(
            mailgate::net::dns::parse_server(t)
                .with_context(|| format!("--resolver `{t}` is not an IP address or IP:port"))?,
        ),
    }))
}

/// A multi-threaded runtime for one command.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
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
         [server]\n\
         # ... the settings already there, and optional implicit-TLS listeners:\n\
         # imaps_listen = \"127.0.0.1:1993\"\n\
         # smtps_listen = \"127.0.0.1:1465\"\n\n\
         [server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
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
