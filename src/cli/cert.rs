//! `mailgate cert generate`: a self-signed certificate for `[server.tls]`, and how to use it.

use anyhow::Result;
use std::path::PathBuf;

// (No doc comment: clap would take it into the help text.)
#[derive(clap::Subcommand)]
pub enum CertCommand {
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

/// Runs `mailgate cert …`.
pub fn run(cmd: CertCommand) -> Result<()> {
    match cmd {
        CertCommand::Generate {
            out,
            names,
            days,
            force,
        } => {
            let g = mailgate::cert::generate(&out, &names, days, force)?;
            print_cert_instructions(&g);
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
