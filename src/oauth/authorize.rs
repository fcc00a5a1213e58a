//! `mailgate oauth authorize`: getting the first tokens.
//!
//! - Authorization code with PKCE (RFC 7636, S256) and a loopback redirect (RFC 8252 7.3): a
//!   listener on 127.0.0.1 with a random port receives the browser's redirect. Headless
//!   machines: the browser on another machine fails to load `http://127.0.0.1:PORT/?code=…`;
//!   the operator pastes that address on standard input instead. Whichever comes first wins;
//!   the `state` value must match either way (no login CSRF).
//! - Device code (RFC 8628): prints the verification address and user code, polls at the
//!   provider's interval, slows down on `slow_down`, and needs no terminal input.
//! - Client credentials: app-only tokens (Microsoft 365), no user involved.
//! - Service account (Google domain-wide delegation): a signed assertion, no user involved.
//!
//! Every wait is bounded by the flow's deadline; nothing prints or logs a token.

use crate::config::OAuth2;
use crate::config::ServerConfig;
use crate::net::http;
use crate::oauth::store::{self, Grant, StoreError, Tokens};
use crate::oauth::token::{self, TokenError};
use crate::oauth::{tokens_from, unix_now};
use crate::provider::OAuthProvider as Provider;
use crate::secret::Secret;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use std::io::Write;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Longest request head accepted by the redirect listener.
const MAX_REQUEST: usize = 16 * 1024;
/// Connections the redirect listener serves before giving up (browsers also ask for icons).
const MAX_CONNECTIONS: usize = 50;

/// An authorization that did not complete.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// The token endpoint refused or failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The tokens could not be stored.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The account has no authorization endpoint (the browser flow needs one).
    #[error("{0}")]
    NotConfigured(String),
    /// The redirect listener could not be set up.
    #[error("cannot listen for the redirect on 127.0.0.1: {0}")]
    Listen(std::io::Error),
    /// The user or the provider refused (`error=access_denied`, …).
    #[error("the authorization was refused: {0}")]
    Denied(String),
    /// A redirect whose `state` does not match ours (possible login forgery): ignored.
    #[error("the redirect's state does not match this authorization request")]
    StateMismatch,
    /// Nothing happened before the deadline.
    #[error("no answer within {0} s; run the command again")]
    Timeout(u64),
}

/// Random URL-safe text from `bytes` random bytes (PKCE verifier, state).
fn random_text(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// The PKCE S256 challenge of `verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// Saves the account's new tokens in its store.
fn save(oauth: &OAuth2, tokens: &Tokens) -> Result<(), StoreError> {
    store::open(&oauth.state_dir)?.save(&oauth.identity, tokens)
}

/// Lines from standard input, read by a thread (a blocking read cannot be cancelled; the
/// thread ends with the process or at end of input).
pub fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(4);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut line = String::new();
        // Ends at end of input, on a read error, or when the receiver is gone.
        while matches!(stdin.read_line(&mut line), Ok(n) if n > 0) {
            if tx.blocking_send(std::mem::take(&mut line)).is_err() {
                break;
            }
        }
    });
    rx
}

/// The authorization-code flow with PKCE. Prints the address to open on `out`, then waits for
/// the redirect on the loopback listener or a pasted redirect address on `pasted`.
pub async fn authorization_code(
    oauth: &OAuth2,
    server: &ServerConfig,
    out: &mut dyn Write,
    pasted: mpsc::Receiver<String>,
    deadline: Duration,
) -> Result<Tokens, AuthorizeError> {
    // Said before a listener is opened.
    authorize_url(oauth)?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(AuthorizeError::Listen)?;
    let port = listener
        .local_addr()
        .map_err(AuthorizeError::Listen)?
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/");
    let pending = begin(oauth, &redirect_uri)?;
    let _ = writeln!(
        out,
        "Open this address in a browser, sign in as {} and allow access:\n\n{}\n",
        oauth.signing_in(),
        pending.url
    );
    let _ = writeln!(out, "Waiting for the redirect to {redirect_uri} ... (on a machine without a browser: open the address elsewhere, then paste the address the browser ends on, starting with {redirect_uri}, here and press Enter)");
    let _ = out.flush();

    let mut redirects = Redirects {
        listener,
        pasted,
        stdin_open: true,
        served: 0,
    };
    let state = pending.state.expose();
    let code = wait_for_code(&mut redirects, state, out, deadline).await?;
    finish(oauth, &pending, &code, state, server).await
}

/// An authorization request on its way through the browser: the address to send the browser
/// to, and what ties the answer to it. Neither secret is ever shown or logged.
pub struct Pending {
    /// The identity provider's authorization address, with the request in its query.
    pub url: String,
    /// Where the browser comes back to (`redirect_uri`).
    pub redirect_uri: String,
    /// Echoed by the redirect: a redirect without it is not an answer to this request
    /// (login forgery). Random, 16 bytes.
    pub state: Secret,
    /// The PKCE verifier (S256): only its challenge goes to the browser.
    pub verifier: Secret,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// Starts the authorization-code flow (PKCE S256, a random `state`, `login_hint` = the user
/// who signs in) for the browser to come back to `redirect_uri`: the loopback listener of
/// `mailgate oauth authorize`, or the connect page's callback. The caller keeps the
/// [`Pending`] (the page: in the session) until [`finish`].
pub fn begin(oauth: &OAuth2, redirect_uri: &str) -> Result<Pending, AuthorizeError> {
    let authorize_url = authorize_url(oauth)?;
    let verifier = Secret::new(random_text(32));
    let state = Secret::new(random_text(16));
    let mut params = vec![
        ("response_type", "code".to_owned()),
        ("client_id", oauth.client_id.clone()),
        ("redirect_uri", redirect_uri.to_owned()),
        ("scope", oauth.scopes.join(" ")),
        ("state", state.expose().to_owned()),
        ("code_challenge", pkce_challenge(verifier.expose())),
        ("code_challenge_method", "S256".to_owned()),
        ("login_hint", oauth.identity.clone()),
    ];
    if oauth.provider == Some(Provider::Google) {
        // Without these Google gives a refresh token only on the very first consent.
        params.push(("access_type", "offline".to_owned()));
        params.push(("prompt", "consent".to_owned()));
    }
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(Pending {
        url: authorize_url.with_query(&params),
        redirect_uri: redirect_uri.to_owned(),
        state,
        verifier,
    })
}

/// Where the user approves access: the account's authorization endpoint.
fn authorize_url(oauth: &OAuth2) -> Result<&http::HttpUrl, AuthorizeError> {
    oauth.authorize_url.as_ref().ok_or_else(|| {
        AuthorizeError::NotConfigured(
            "no authorize_url for this account: set provider or authorize_url, or use --device"
                .into(),
        )
    })
}

/// Ends the flow [`begin`] started: `returned_state` (the redirect's) must be `pending`'s
/// (compared in constant time; else [`AuthorizeError::StateMismatch`] and nothing is asked),
/// then `code` is exchanged for tokens, which are stored in the account's token store.
pub async fn finish(
    oauth: &OAuth2,
    pending: &Pending,
    code: &Secret,
    returned_state: &str,
    server: &ServerConfig,
) -> Result<Tokens, AuthorizeError> {
    use subtle::ConstantTimeEq;
    let same: bool = pending
        .state
        .expose()
        .as_bytes()
        .ct_eq(returned_state.as_bytes())
        .into();
    if !same {
        return Err(AuthorizeError::StateMismatch);
    }
    let resp = token::exchange_code(
        oauth,
        code,
        &pending.verifier,
        &pending.redirect_uri,
        server,
    )
    .await?;
    let tokens = tokens_from(Grant::AuthorizationCode, resp, None, unix_now());
    save(oauth, &tokens)?;
    Ok(tokens)
}

/// Where redirects come from: the loopback listener (the browser) and pasted lines.
struct Redirects {
    listener: TcpListener,
    pasted: mpsc::Receiver<String>,
    stdin_open: bool,
    /// Connections served so far (bounded by [`MAX_CONNECTIONS`]).
    served: usize,
}

impl Redirects {
    /// The query of the next redirect within `left`; `Ok(None)` for something that was not
    /// one (a favicon request, a pasted line without a query, the end of the input).
    async fn next(
        &mut self,
        out: &mut dyn Write,
        left: Duration,
    ) -> Result<Option<String>, AuthorizeError> {
        tokio::select! {
            accepted = tokio::time::timeout(left, self.listener.accept()) => {
                let Ok(Ok((mut stream, _))) = accepted else { return Ok(None) };
                self.served += 1;
                match read_redirect(&mut stream).await {
                    Some(query) => {
                        let page = "<!doctype html><title>mailgate</title><p>mailgate received the authorization. You can close this window.";
                        let _ = stream.write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}", page.len()).as_bytes()).await;
                        Ok(Some(query))
                    }
                    None => {
                        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
                        Ok(None)
                    }
                }
            }
            line = self.pasted.recv(), if self.stdin_open => {
                match line {
                    None => { self.stdin_open = false; Ok(None) }
                    Some(line) => match line.trim().split_once('?') {
                        Some((_, q)) => Ok(Some(q.split('#').next().unwrap_or_default().to_owned())),
                        None => {
                            let _ = writeln!(out, "That is not the redirect address (it has no ?code=...); paste the whole address.");
                            Ok(None)
                        }
                    },
                }
            }
        }
    }
}

/// Waits for the redirect that answers the request with `state`, and returns its code.
async fn wait_for_code(
    redirects: &mut Redirects,
    state: &str,
    out: &mut dyn Write,
    deadline: Duration,
) -> Result<Secret, AuthorizeError> {
    let started = Instant::now();
    loop {
        let left = deadline.saturating_sub(started.elapsed());
        if left.is_zero() || redirects.served >= MAX_CONNECTIONS {
            return Err(AuthorizeError::Timeout(deadline.as_secs()));
        }
        let Some(query) = redirects.next(out, left).await? else {
            continue;
        };
        let fields = http::parse_query(&query);
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if get("state").as_deref() != Some(state) {
            let _ = writeln!(
                out,
                "Ignored a redirect with a different state (not from this request)."
            );
            continue;
        }
        if let Some(error) = get("error") {
            let desc = get("error_description").unwrap_or_default();
            return Err(AuthorizeError::Denied(clean(&format!("{error} {desc}"))));
        }
        match get("code") {
            Some(code) if !code.is_empty() => return Ok(Secret::new(code)),
            _ => continue,
        }
    }
}

fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The query of a `GET /?...` redirect request, or `None` for anything else (favicon, junk).
async fn read_redirect(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let read = async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Some(())
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .ok()??;
    let first = buf.split(|&b| b == b'\n').next()?;
    let first = std::str::from_utf8(first).ok()?.trim();
    let target = first.strip_prefix("GET ")?.split(' ').next()?;
    let (path, query) = target.split_once('?')?;
    (path == "/").then(|| query.to_owned())
}

/// The device flow: prints where to go and the code, then polls until the user approved, the
/// codes expired or `deadline` passed.
pub async fn device_code(
    oauth: &OAuth2,
    server: &ServerConfig,
    out: &mut dyn Write,
    deadline: Duration,
) -> Result<Tokens, AuthorizeError> {
    let start = token::device_start(oauth, server).await?;
    let _ = writeln!(
        out,
        "To allow access as {}, open {} and enter the code {}",
        oauth.signing_in(),
        start.verification_uri,
        start.user_code
    );
    if let Some(complete) = &start.verification_uri_complete {
        let _ = writeln!(out, "(or open {complete})");
    }
    let _ = writeln!(
        out,
        "Waiting for the approval (the code expires in {} s) ...",
        start.expires_in
    );
    let _ = out.flush();
    let limit = deadline.min(Duration::from_secs(start.expires_in));
    let started = Instant::now();
    let mut interval = start.interval;
    // Each round waits at least one second, so the count is bounded by the deadline too.
    for _ in 0..=limit.as_secs() {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        if started.elapsed() > limit {
            break;
        }
        match token::device_poll(oauth, &start.device_code, server).await {
            Ok(resp) => {
                let tokens = tokens_from(Grant::DeviceCode, resp, None, unix_now());
                save(oauth, &tokens)?;
                return Ok(tokens);
            }
            Err(e) => match e.code() {
                Some("authorization_pending") => {}
                // RFC 8628 3.5: add 5 seconds to the interval from now on.
                Some("slow_down") => interval = (interval + 5).min(60),
                Some("access_denied") => return Err(AuthorizeError::Denied(e.to_string())),
                Some("expired_token") => break,
                _ => return Err(e.into()),
            },
        }
    }
    Err(AuthorizeError::Timeout(limit.as_secs()))
}

/// App-only tokens with the client secret or certificate (Microsoft 365 client credentials).
pub async fn client_credentials(
    oauth: &OAuth2,
    server: &ServerConfig,
) -> Result<Tokens, AuthorizeError> {
    let resp = token::client_credentials(oauth, server).await?;
    keep(oauth, Grant::ClientCredentials, resp)
}

/// A service account's token for the account's mailbox. The gateway asks by itself when it
/// needs one; asking here checks that the key and its domain-wide delegation work.
pub async fn service_account(
    oauth: &OAuth2,
    server: &ServerConfig,
) -> Result<Tokens, AuthorizeError> {
    let resp = token::jwt_bearer(oauth, server).await?;
    keep(oauth, Grant::JwtBearer, resp)
}

/// Stores the tokens of an app-only grant's answer.
fn keep(
    oauth: &OAuth2,
    grant: Grant,
    resp: token::TokenResponse,
) -> Result<Tokens, AuthorizeError> {
    let tokens = tokens_from(grant, resp, None, unix_now());
    save(oauth, &tokens)?;
    Ok(tokens)
}

/// `YYYY-MM-DD HH:MM:SS UTC` for a Unix time (status output without a date crate).
pub fn format_utc(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Howard Hinnant's civil-from-days algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(random_text(32).len(), 43);
    }

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }
}
