//! `mailgate setup` at the terminal or from options: the questions and their order. The steps
//! without a terminal (editing the file, storing the credential, the live test, the client
//! instructions) are in [`mailgate::setup`].

mod credential;
mod file;
mod servers;
mod store;
mod test;

use super::ask::ask;
use anyhow::{bail, Result};
use mailgate::config::TlsMode;
use mailgate::secret::Secret;
use mailgate::setup::{self as s, Plan, Target};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct SetupArgs {
    /// Configuration file to add the account to (started with the defaults when missing).
    #[arg(long, short, default_value = mailgate::config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// The email address (asked for when left out, unless --non-interactive).
    #[arg(long)]
    pub email: Option<String>,
    /// Ask nothing: every answer comes from the options.
    #[arg(long)]
    pub non_interactive: bool,
    /// Environment variable holding the provider password or app password.
    #[arg(long)]
    pub password_env: Option<String>,
    /// Environment variable holding the local password (default: asked for, or generated and
    /// printed once with --non-interactive).
    #[arg(long)]
    pub local_password_env: Option<String>,
    /// Log in upstream with OAuth 2.0 (needs --client-id) instead of a password.
    #[arg(long, requires = "client_id")]
    pub oauth: bool,
    /// OAuth application (client) id.
    #[arg(long)]
    pub client_id: Option<String>,
    /// Environment variable holding the OAuth client secret (written as client_secret_env).
    #[arg(long)]
    pub client_secret_env: Option<String>,
    /// Microsoft tenant (common, organizations, consumers, a tenant id or domain).
    #[arg(long)]
    pub tenant: Option<String>,
    /// OAuth authorization endpoint, for an identity provider without a preset (with
    /// --token-url).
    #[arg(long, requires_all = ["oauth", "token_url"])]
    pub authorize_url: Option<String>,
    /// OAuth token endpoint, for an identity provider without a preset.
    #[arg(long, requires_all = ["oauth", "authorize_url"])]
    pub token_url: Option<String>,
    /// OAuth scope (repeatable), when not the preset's.
    #[arg(long = "scope", requires = "oauth")]
    pub scopes: Vec<String>,
    /// Use this built-in provider preset instead of discovery.
    #[arg(long, conflicts_with = "imap_server")]
    pub provider: Option<String>,
    /// IMAP server HOST:PORT (with --imap-tls, and --smtp-server/--smtp-tls unless the
    /// account only receives) instead of discovery.
    #[arg(long, requires = "imap_tls")]
    pub imap_server: Option<String>,
    /// IMAP TLS mode.
    #[arg(long, value_enum, requires = "imap_server")]
    pub imap_tls: Option<TlsArg>,
    /// SMTP submission server HOST:PORT (with --smtp-tls); left out with --imap-server, the
    /// account only receives.
    #[arg(long, requires_all = ["imap_server", "smtp_tls"])]
    pub smtp_server: Option<String>,
    /// SMTP TLS mode.
    #[arg(long, value_enum, requires = "smtp_server")]
    pub smtp_tls: Option<TlsArg>,
    /// Accept servers discovery found without encryption (an autoconfig file saying `plain`):
    /// written with `allow_plaintext = true`; the password then crosses the network in clear.
    #[arg(long)]
    pub allow_plaintext: bool,
    /// Where mail clients connect for IMAP (`IP:PORT`, written as `[server] imap_listen`;
    /// asked for at the terminal when the config file is new).
    #[arg(long)]
    pub imap_listen: Option<std::net::SocketAddr>,
    /// Where mail clients connect for SMTP (`IP:PORT`, written as `[server] smtp_listen`).
    #[arg(long)]
    pub smtp_listen: Option<std::net::SocketAddr>,
    /// CA certificate file for a provider with a private CA (written as ca_file).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// The mail client, for the folder names it expects (written as `[account.folders]
    /// client`): superoffice, outlook, thunderbird or none.
    #[arg(long, value_parser = parse_client)]
    pub client: Option<mailgate::mailbox::Profile>,
    /// DNS server for discovery (`ADDR` or `ADDR:PORT`).
    #[arg(long)]
    pub resolver: Option<String>,
    /// How long to wait for the OAuth approval, in seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
}

/// `--client`: a client profile's config word.
fn parse_client(word: &str) -> Result<mailgate::mailbox::Profile, String> {
    mailgate::mailbox::Profile::parse(word).ok_or_else(|| {
        let known: Vec<&str> = mailgate::mailbox::Profile::ALL
            .iter()
            .map(|p| p.as_str())
            .collect();
        format!("use one of {}", known.join(", "))
    })
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum TlsArg {
    Implicit,
    Starttls,
    None,
}

impl From<TlsArg> for TlsMode {
    fn from(t: TlsArg) -> Self {
        match t {
            TlsArg::Implicit => TlsMode::Implicit,
            TlsArg::Starttls => TlsMode::Starttls,
            TlsArg::None => TlsMode::None,
        }
    }
}
/// What every step of the wizard reads.
struct Wizard<'a> {
    args: &'a SetupArgs,
    /// Questions may be asked (not `--non-interactive`).
    interactive: bool,
    /// The new account's address.
    email: String,
    rt: tokio::runtime::Runtime,
    /// The shared store the account goes to, when the file has a `[store]`.
    store: Option<std::sync::Arc<mailgate::pgstore::Shared>>,
}

/// Adds an account: settings, credential, local password, sign-in and live test, then the
/// account written and the mail client's settings printed.
pub fn run(args: SetupArgs) -> Result<()> {
    mailgate::net::tls::install_crypto_provider();
    let interactive = !args.non_interactive;
    let email = match (&args.email, interactive) {
        (Some(e), _) => e.trim().to_owned(),
        (None, true) => ask("Email address: ")?,
        (None, false) => bail!("--email is required with --non-interactive"),
    };
    if mailgate::discover::domain_of(&email).is_none() {
        bail!("`{email}` is not an email address");
    }
    let mut target = Target::open(&args.config, &email)?;
    let rt = super::runtime()?;
    let store = store::open(&rt, &target, &args, &email)?;
    // With a store the file is not written: nothing in it changes.
    if store.is_none() {
        file::drop_example(&mut target, interactive)?;
        file::set_listeners(&mut target, &args, interactive)?;
    }
    let server = target.server()?;
    let ca_file = args
        .ca_file
        .as_deref()
        .map(credential::ca_file_arg)
        .transpose()?;
    let w = Wizard {
        args: &args,
        interactive,
        email,
        rt,
        store,
    };

    // 1. Settings.
    let found = servers::settings(&w, &server, ca_file.as_ref())?;
    // 2. Credential.
    let credential = credential::upstream(&w, found.preset)?;
    // 3. Local password.
    let (local, generated) = credential::local_password(&w)?;
    let local_password_hash = mailgate::account::hash_password(&local)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    let mut plan = Plan {
        email: w.email.clone(),
        found,
        credential,
        ca_file,
        local_password_hash,
        client: args.client,
    };
    // 4. OAuth sign-in, then the live test; nothing is written before both pass.
    let folders = test::sign_in_and_test(&w, &target, &mut plan)?;
    // 5. The account written, and what to tell the mail client.
    finish(&w, &target, &plan, &server, generated.then_some(&local))?;
    if let Some(report) = folders {
        let mut text = String::new();
        mailgate::check::folders::render(&report, &mut text);
        print!("\n{text}");
    }
    w.rt.shutdown_background();
    Ok(())
}

/// Writes the account (to the shared store, or the file) and prints what to type into the mail
/// client (`generated`: the local password, when the user did not choose it).
fn finish(
    w: &Wizard,
    target: &Target,
    plan: &Plan,
    server: &mailgate::config::ServerConfig,
    generated: Option<&Secret>,
) -> Result<()> {
    let email = &w.email;
    match &w.store {
        Some(shared) => {
            store::save(w, shared, target, plan)?;
            println!();
        }
        None => {
            let secret_file = s::write(target, plan, &server.state_dir)?;
            println!("Added {email} to {}.", w.args.config.display());
            if let Some(f) = secret_file {
                println!(
                    "The provider password is in {} (mode 0600, readable only by its owner).",
                    f.display()
                );
            }
            println!("Restart mailgate or send it SIGHUP (systemctl reload mailgate) to serve the new account.\n");
        }
    }
    print!(
        "{}",
        s::client_instructions(server, email, generated, plan.found.smtp.is_some())
    );
    Ok(())
}
