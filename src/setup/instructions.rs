//! What the user is given at the end: a generated local password, and the mail client's
//! settings.

use crate::secret::Secret;

/// A random local password: 20 characters from an alphabet without look-alikes.
pub fn generate_password() -> Secret {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    Secret::new(
        (0..20)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect(),
    )
}

/// What to type into the mail client; `sends` is whether the account has an SMTP server
/// (without one, the client gets no outgoing server to set).
pub fn client_instructions(
    server: &crate::config::ServerConfig,
    email: &str,
    local_password: Option<&Secret>,
    sends: bool,
) -> String {
    // The address itself, as the README's client table gives it: "localhost" may resolve to
    // ::1 first, where mailgate does not listen.
    let host = |a: std::net::SocketAddr| a.ip().to_string();
    let password = match local_password {
        Some(p) => format!("{}   (generated; shown only now)", p.expose()),
        None => "the local password you chose".to_owned(),
    };
    let outgoing = if sends {
        format!(
            "server {}  port {}  connection security: none, authentication: normal password",
            host(server.smtp_listen),
            server.smtp_listen.port()
        )
    } else {
        "none (no SMTP server was set up: this account receives only)".to_owned()
    };
    format!(
        "In the mail client:\n  \
         incoming mail (IMAP): server {}  port {}  connection security: none\n  \
         outgoing mail (SMTP): {outgoing}\n  \
         user name: {email}\n  \
         password: {password}\n",
        host(server.imap_listen),
        server.imap_listen.port(),
    )
}
