//! The upstream side of an IMAP login: greeting, STARTTLS, CAPABILITY and authentication with
//! the account's stored credential.
//!
//! Security choices made here:
//! - `tls = "starttls"` never falls back to plaintext: a server that does not offer STARTTLS,
//!   or refuses it, ends the attempt before any credential is sent.
//! - Bytes the server sent after its STARTTLS `OK` and before the handshake are discarded; a
//!   man in the middle could otherwise inject responses that we would read as if encrypted
//!   (CVE-2011-0411 style).
//! - The credential goes out only as AUTHENTICATE PLAIN or LOGIN, never when the server
//!   advertises LOGINDISABLED, and never appears in an error: errors carry the server's words.
//! - Every answer the server owes us is bounded twice: [`MAX_ANSWER`] bytes, and one deadline
//!   of `upstream_timeout` for the whole step (not per read), so a server — or, before
//!   STARTTLS, anyone on the path — that keeps talking or drips bytes cannot hold a session or
//!   grow its memory.
//! - Accounts with `[account.oauth2]` log in with AUTHENTICATE XOAUTH2 or OAUTHBEARER and an
//!   access token; a rejected token is refreshed once and tried again on the same connection.

use crate::config::OAuth2;
use crate::config::{Account, Credential, Endpoint, ServerConfig, TlsMode};
use crate::sasl;
use crate::sasl::Mechanism;
use crate::secret::Secret;
use crate::upstream::{self, Trace, UpstreamError, UpstreamStream};
use tokio::io::AsyncWriteExt;
use zeroize::Zeroizing;

mod capabilities;
mod conn;

pub use capabilities::{shared as shared_capabilities, Capabilities};
pub use conn::exchange;
pub(crate) use conn::tagged;
use conn::{printable, truncate, Conn};

/// Most bytes read from the server for one step of the login (greeting, CAPABILITY,
/// STARTTLS, authentication, LOGOUT): a real answer is a few hundred bytes, and the untagged
/// lines of a step are kept until its tagged reply.
pub const MAX_ANSWER: usize = 256 * 1024;

/// A logged-in upstream IMAP connection, ready for the relay.
pub struct LoggedIn {
    /// The connection.
    pub stream: UpstreamStream,
    /// Capabilities the server announced after login, as it spelled them.
    pub capabilities: Capabilities,
    /// Bytes the server sent after the login completed, not yet relayed.
    pub leftover: Vec<u8>,
}

/// Connects to the account's IMAP server and logs in with the stored credential.
pub async fn login(account: &Account, server: &ServerConfig) -> Result<LoggedIn, UpstreamError> {
    login_traced(account, server, &mut Trace::off()).await
}

/// [`login`], recording each step it gets through in `trace` (for `mailgate check`).
pub async fn login_traced(
    account: &Account,
    server: &ServerConfig,
    trace: &mut Trace,
) -> Result<LoggedIn, UpstreamError> {
    let ep = &account.imap;
    let tcp =
        upstream::tcp_connect_traced(&ep.target, server.connect_timeout, server.resolver, trace)
            .await?;
    let peer = tcp.peer_addr().ok();
    let stream = match ep.target.tls {
        TlsMode::Implicit => {
            upstream::tls_handshake_traced(&ep.target, tcp, server.connect_timeout, "imap", trace)
                .await?
        }
        TlsMode::Starttls | TlsMode::None => UpstreamStream::Plain(tcp),
    };
    let mut conn = Conn::new(stream, Vec::new(), ep.address(), server.upstream_timeout);

    let greeting = upstream::await_greeting(
        &ep.target,
        peer,
        server.connect_timeout,
        conn.read_line("greeting"),
    )
    .await?;
    trace.greeting(|| printable(&greeting));
    let mut caps = greeting_status(&conn, &greeting)?;

    if ep.target.tls == TlsMode::Starttls {
        if caps.is_none() {
            caps = Some(capability(&mut conn).await?);
        }
        trace.capabilities(|| caps.clone().unwrap_or_default());
        if !has(caps.as_deref().unwrap_or_default(), "STARTTLS") {
            return Err(UpstreamError::NoStarttls {
                address: conn.address.clone(),
                reason: "the server does not offer STARTTLS; refusing to send the credential in clear text (set tls = \"implicit\" if this is a TLS port)".into(),
            });
        }
        let (status, text, _) = conn.command(b"STARTTLS", "STARTTLS", None).await?;
        if status != "OK" {
            return Err(conn.protocol(format!("STARTTLS refused: {status} {text}")));
        }
        trace.starttls_accepted();
        // Anything already buffered arrived before the handshake: discard it (no injection).
        let Conn { stream, .. } = conn;
        let UpstreamStream::Plain(tcp) = stream else {
            return Err(UpstreamError::Protocol {
                address: ep.address(),
                reason: "STARTTLS on an encrypted connection".into(),
            });
        };
        let tls =
            upstream::tls_handshake_traced(&ep.target, tcp, server.connect_timeout, "imap", trace)
                .await?;
        conn = Conn::new(tls, Vec::new(), ep.address(), server.upstream_timeout);
        conn.next_tag = 1;
        caps = None; // capabilities before TLS must not be trusted (RFC 9051 6.2.1)
    }

    let caps = match caps {
        Some(c) => c,
        None => capability(&mut conn).await?,
    };
    trace.capabilities(|| caps.clone());
    let after = match &ep.credential {
        Credential::OAuth2(oauth) => {
            authenticate_oauth(&mut conn, ep, oauth, &caps, server).await?
        }
        Credential::Password(password) => authenticate(&mut conn, ep, password, &caps).await?,
    };
    let capabilities = match after {
        Some(c) => c,
        None => capability(&mut conn).await?,
    };
    Ok(LoggedIn {
        stream: conn.stream,
        capabilities: capabilities::shared(capabilities),
        leftover: conn.buf,
    })
}

/// Ends a logged-in session with LOGOUT (RFC 9051 6.1.3) and returns the server's tagged
/// answer, e.g. `OK Logout completed.` (`mailgate check`; the relay passes the client's own).
pub async fn logout(
    logged_in: LoggedIn,
    ep: &Endpoint,
    server: &ServerConfig,
) -> Result<String, UpstreamError> {
    let mut conn = Conn::new(
        logged_in.stream,
        logged_in.leftover,
        ep.address(),
        server.upstream_timeout,
    );
    conn.next_tag = 100;
    let (status, text, _) = conn.command(b"LOGOUT", "LOGOUT", None).await?;
    if status != "OK" {
        return Err(conn.protocol(format!("LOGOUT failed: {status} {text}")));
    }
    let _ = tokio::time::timeout_at(conn.deadline, conn.stream.shutdown()).await;
    Ok(format!("{status} {text}"))
}

/// Checks the greeting; returns the capabilities it carries, if any.
fn greeting_status(conn: &Conn, line: &[u8]) -> Result<Option<Vec<String>>, UpstreamError> {
    let text = printable(line);
    if text.starts_with("+OK") {
        return Err(conn.protocol(
            "the server speaks POP3, not IMAP; mailgate supports IMAP only (check the port)".into(),
        ));
    }
    let upper = text.to_ascii_uppercase();
    if upper.starts_with("* OK") {
        return Ok(bracket_capabilities(&text));
    }
    if upper.starts_with("* PREAUTH") {
        return Err(conn.protocol(
            "the server pre-authenticated the connection (PREAUTH); it cannot be logged in as the account".into(),
        ));
    }
    if upper.starts_with("* BYE") {
        return Err(conn.protocol(format!("the server refused the connection: {text}")));
    }
    Err(conn.protocol(format!(
        "unexpected greeting {:?} (not an IMAP server, or implicit TLS and STARTTLS swapped)",
        truncate(&text, 80)
    )))
}

async fn capability(conn: &mut Conn) -> Result<Vec<String>, UpstreamError> {
    let (status, text, untagged) = conn.command(b"CAPABILITY", "CAPABILITY", None).await?;
    if status != "OK" {
        return Err(conn.protocol(format!("CAPABILITY failed: {status} {text}")));
    }
    for line in untagged {
        let t = printable(&line);
        if t.len() > 13 && t[..13].eq_ignore_ascii_case("* CAPABILITY ") {
            return Ok(t[13..]
                .split_ascii_whitespace()
                .map(str::to_owned)
                .collect());
        }
    }
    Err(conn.protocol("CAPABILITY returned no capability list".into()))
}

/// Logs in; returns the capabilities the server sent with its OK, if any.
async fn authenticate(
    conn: &mut Conn,
    ep: &Endpoint,
    password: &Secret,
    caps: &[String],
) -> Result<Option<Vec<String>>, UpstreamError> {
    let (status, text, untagged) = if has(caps, "AUTH=PLAIN") {
        let payload = sasl::encode_plain(&ep.username, password);
        if has(caps, "SASL-IR") {
            let mut cmd = Zeroizing::new(b"AUTHENTICATE PLAIN ".to_vec());
            cmd.extend_from_slice(payload.expose().as_bytes());
            conn.command(&cmd, "AUTHENTICATE", None).await?
        } else {
            conn.command(
                b"AUTHENTICATE PLAIN",
                "AUTHENTICATE",
                Some(payload.expose().as_bytes()),
            )
            .await?
        }
    } else if has(caps, "LOGINDISABLED") {
        return Err(conn.protocol(
            "the server disables LOGIN and offers no AUTH=PLAIN on this connection (does it need TLS?)".into(),
        ));
    } else {
        login_command(conn, &ep.username, password.expose()).await?
    };
    if status != "OK" {
        return Err(UpstreamError::Auth {
            address: conn.address.clone(),
            username: ep.username.clone(),
            reason: truncate(&format!("{status} {text}"), 300),
        });
    }
    Ok(capabilities_after_login(&text, untagged))
}

/// The capabilities a server sent with its login OK (response code or untagged), if any.
fn capabilities_after_login(text: &str, untagged: Vec<Vec<u8>>) -> Option<Vec<String>> {
    if let Some(c) = bracket_capabilities(text) {
        return Some(c);
    }
    for line in untagged {
        let t = printable(&line);
        if t.len() > 13 && t[..13].eq_ignore_ascii_case("* CAPABILITY ") {
            return Some(
                t[13..]
                    .split_ascii_whitespace()
                    .map(str::to_owned)
                    .collect(),
            );
        }
    }
    None
}

/// Error challenges (`+ base64-JSON`) answered before giving up on an exchange.
const MAX_CHALLENGES: usize = 4;

/// AUTHENTICATE with an OAuth access token: XOAUTH2 or OAUTHBEARER as configured, else what
/// the server offers (XOAUTH2 first: Gmail and Microsoft 365 document it). If the server
/// rejects the token, one refresh and one more try on the same connection.
async fn authenticate_oauth(
    conn: &mut Conn,
    ep: &Endpoint,
    oauth: &OAuth2,
    caps: &[String],
    server: &ServerConfig,
) -> Result<Option<Vec<String>>, UpstreamError> {
    let mechanism = Mechanism::choose(oauth.mechanism, has(caps, "AUTH=XOAUTH2"));
    if !has(caps, &format!("AUTH={}", mechanism.as_str())) {
        return Err(UpstreamError::NoOAuthMechanism { address: conn.address.clone(), reason: format!(
            "the server does not offer AUTH={} (offered: {}); it cannot log in with an OAuth token here",
            mechanism.as_str(),
            caps.iter().filter(|c| c.to_ascii_uppercase().starts_with("AUTH=")).cloned().collect::<Vec<_>>().join(" ")
        )});
    }
    let mut rejected: Option<Secret> = None;
    let mut last = String::new();
    for attempt in 0..2 {
        let token = crate::oauth::access_token(oauth, server, rejected.as_ref()).await?;
        let payload = mechanism.message(&ep.username, &ep.target.host, ep.target.port, &token);
        let (status, text, untagged, challenge) =
            sasl_exchange(conn, mechanism.as_str(), &payload, has(caps, "SASL-IR")).await?;
        if status == "OK" {
            return Ok(capabilities_after_login(&text, untagged));
        }
        last = format!("{status} {text}");
        if let Some(c) = challenge {
            last.push_str(&format!(" (token status: {c})"));
        }
        tracing::info!(attempt, mechanism = mechanism.as_str(), reply = %truncate(&last, 300), "upstream rejected the OAuth access token");
        rejected = Some(token);
    }
    Err(UpstreamError::Auth {
        address: conn.address.clone(),
        username: ep.username.clone(),
        reason: truncate(&last, 300),
    })
}

/// `AUTHENTICATE MECH` with `payload` (as SASL-IR when offered, else after the first `+`).
/// A later `+` is the server's error challenge (base64 JSON): answered with an empty line, as
/// RFC 7628 3.2.3 and Google's XOAUTH2 describe, so the server sends its tagged NO. Returns
/// the status, text, untagged lines and the challenge's `status` field.
async fn sasl_exchange(
    conn: &mut Conn,
    mechanism: &str,
    payload: &Secret,
    sasl_ir: bool,
) -> Result<(String, String, Vec<Vec<u8>>, Option<String>), UpstreamError> {
    conn.begin();
    let tag = conn.tag();
    let mut line = Zeroizing::new(format!("{tag} AUTHENTICATE {mechanism}").into_bytes());
    if sasl_ir {
        line.push(b' ');
        line.extend_from_slice(payload.expose().as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    conn.send(&line, "AUTHENTICATE").await?;
    let mut payload_sent = sasl_ir;
    let mut challenge = None;
    let mut untagged = Vec::new();
    for _ in 0..MAX_CHALLENGES {
        // Untagged lines do not count as rounds; the step's byte and time bounds hold them.
        loop {
            let resp = conn.read_line("AUTHENTICATE").await?;
            if let Some(rest) = resp.strip_prefix(b"+") {
                if payload_sent {
                    challenge = sasl::oauth_error_status(rest.trim_ascii());
                    conn.send(b"\r\n", "AUTHENTICATE").await?;
                } else {
                    let mut d = Zeroizing::new(payload.expose().as_bytes().to_vec());
                    d.extend_from_slice(b"\r\n");
                    conn.send(&d, "AUTHENTICATE").await?;
                    payload_sent = true;
                }
                break;
            }
            if let Some((status, text)) = tagged(&resp, &tag) {
                return Ok((status, text, untagged, challenge));
            }
            if untagged.len() > 100 {
                return Err(conn.protocol("too many untagged lines during AUTHENTICATE".into()));
            }
            untagged.push(resp);
        }
    }
    Err(conn.protocol(format!(
        "more than {MAX_CHALLENGES} continuation requests during AUTHENTICATE {mechanism}"
    )))
}

/// `LOGIN user pass`, each as a quoted string where possible, else as a synchronizing literal.
async fn login_command(
    conn: &mut Conn,
    user: &str,
    pass: &str,
) -> Result<(String, String, Vec<Vec<u8>>), UpstreamError> {
    let quotable = |s: &str| s.bytes().all(|b| (0x20..0x7f).contains(&b));
    if quotable(user) && quotable(pass) {
        let mut cmd = Zeroizing::new(b"LOGIN ".to_vec());
        push_quoted(&mut cmd, user);
        cmd.push(b' ');
        push_quoted(&mut cmd, pass);
        return conn.command(&cmd, "LOGIN", None).await;
    }
    // 8-bit or control characters: send both as literals, waiting for each continuation.
    conn.begin();
    let tag = conn.tag();
    let header = Zeroizing::new(format!("{tag} LOGIN {{{}}}\r\n", user.len()).into_bytes());
    conn.send(&header, "LOGIN").await?;
    expect_continue(conn, &tag).await?;
    let mut part = Zeroizing::new(user.as_bytes().to_vec());
    part.extend_from_slice(format!(" {{{}}}\r\n", pass.len()).as_bytes());
    conn.send(&part, "LOGIN").await?;
    expect_continue(conn, &tag).await?;
    let mut last = Zeroizing::new(pass.as_bytes().to_vec());
    last.extend_from_slice(b"\r\n");
    conn.send(&last, "LOGIN").await?;
    let mut untagged = Vec::new();
    loop {
        let resp = conn.read_line("LOGIN").await?;
        if let Some((status, rest)) = tagged(&resp, &tag) {
            return Ok((status, rest, untagged));
        }
        untagged.push(resp);
    }
}

async fn expect_continue(conn: &mut Conn, tag: &str) -> Result<(), UpstreamError> {
    loop {
        let resp = conn.read_line("LOGIN").await?;
        if resp.starts_with(b"+") {
            return Ok(());
        }
        if resp.starts_with(tag.as_bytes()) {
            return Err(UpstreamError::Auth {
                address: conn.address.clone(),
                username: String::new(),
                reason: truncate(&printable(&resp[tag.len()..]), 300),
            });
        }
    }
}

fn push_quoted(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for b in s.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Whether `caps` contains `name` (case-insensitive).
pub fn has(caps: &[String], name: &str) -> bool {
    caps.iter().any(|c| c.eq_ignore_ascii_case(name))
}

/// The capability list inside a `[CAPABILITY …]` response code, if the text has one.
fn bracket_capabilities(text: &str) -> Option<Vec<String>> {
    let upper = text.to_ascii_uppercase();
    let start = upper.find("[CAPABILITY ")? + "[CAPABILITY ".len();
    let end = start + text[start..].find(']')?;
    Some(
        text[start..end]
            .split_ascii_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_code_is_found() {
        assert_eq!(
            bracket_capabilities("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] Dovecot ready."),
            Some(vec![
                "IMAP4rev1".into(),
                "STARTTLS".into(),
                "AUTH=PLAIN".into()
            ])
        );
        assert_eq!(bracket_capabilities("OK Logged in"), None);
    }

    #[test]
    fn quoting() {
        let mut v = Vec::new();
        push_quoted(&mut v, r#"a"b\c"#);
        assert_eq!(v, br#""a\"b\\c""#);
        assert_eq!(printable(b"a\x01b\r\n"), "a?b");
    }
}
