//! The upstream side of a submission: connect, TLS, EHLO, AUTH with the stored credential, then
//! one envelope step at a time, and the message bytes written by us.
//!
//! mail-send does connect-level work on our own stream: we connect with
//! [`crate::net::connect::tcp`] and [`crate::net::connect::tls_handshake`] (so the account's CA
//! file and TLS name apply) and wrap the stream in `mail_send::SmtpClient { stream, timeout }`
//! for EHLO, STARTTLS and AUTH. Message bytes are *not* sent with mail-send's `data` /
//! `write_message`: it appends an extra CRLF and does not stuff a dot at the start of the first
//! line. We write the body ourselves: as one `BDAT n LAST` when the server offers CHUNKING and
//! the message is small, else after DATA through [`Stuffer`]; both keep the client's bytes.
//!
//! Security choices:
//! - `tls = "starttls"` never falls back to plaintext: no STARTTLS offered means no credential
//!   sent. mail-send reads one reply per read call and drops what follows it in the same read,
//!   so nothing injected after the STARTTLS `220` survives into the TLS session.
//! - mail-send's own time-out default is one hour; ours is the config's `upstream_timeout`,
//!   applied to every read and write.
//! - Errors carry the server's words and the user name, never the credential.

use crate::config::OAuth2;
use crate::config::{Credential, Endpoint, ServerConfig, TlsMode};
use crate::sasl;
use crate::sasl::Mechanism;
use crate::secret::Secret;
use crate::smtp::data::Stuffer;
pub use crate::smtp::wire::reply_text;
use crate::smtp::wire::{from_mail_send, timed, write_timed};
use crate::upstream::{self, Trace, UpstreamError, UpstreamStream};
use mail_send::{Credentials, SmtpClient};
use smtp_proto::{
    EhloResponse, AUTH_OAUTHBEARER, AUTH_XOAUTH2, EXT_CHUNKING, EXT_DSN, EXT_PIPELINING,
    EXT_START_TLS,
};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// Message bytes held back before a write to the server (see [`Upstream::write_body`]).
const COALESCE: usize = 32 * 1024;

/// Room kept in front of a held message for its `BDAT <size> LAST` line (at most
/// 5 + 20 digits + 7 bytes), so command and message go out in one write without a copy.
const BDAT_HEAD: usize = 32;

pub use crate::smtp::wire::Reply;

/// Where a message stands with the server (see [`Upstream::send_data`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing is due from the server: no message under way, or DATA's `354` was read and
    /// the bytes go out stuffed.
    Ready,
    /// The message so far is held unstuffed in `out` and nothing of it (not even `DATA`) has
    /// been sent: it goes by `BDAT <size> LAST` unless it outgrows the hold.
    Held,
    /// `DATA` was sent and its reply not read yet.
    DataSent,
}

/// A logged-in upstream SMTP connection.
pub struct Upstream {
    client: SmtpClient<UpstreamStream>,
    address: String,
    timeout: Duration,
    stuffer: Stuffer,
    out: Vec<u8>,
    /// What the server offers: its EHLO capabilities (smtp-proto's `EXT_*` bits).
    capabilities: u32,
    /// Where the message under way stands with the server.
    phase: Phase,
    /// Message bytes (as the client meant them) taken into `out` and not written yet: the
    /// byte counter counts them when they are written, never for a refused DATA that drops
    /// them.
    unsent: u64,
    /// The byte counters (with the account's, see [`Upstream::count_bytes_for`]).
    bytes: Option<crate::metrics::ByteCounters>,
}

impl Upstream {
    /// Connects to the account's SMTP server and logs in with the stored credential.
    pub async fn connect(
        endpoint: &Endpoint,
        server: &ServerConfig,
    ) -> Result<Upstream, UpstreamError> {
        Upstream::connect_traced(endpoint, server, &mut Trace::off()).await
    }

    /// [`Upstream::connect`], recording each step it gets through in `trace` (for
    /// `mailgate check`).
    pub async fn connect_traced(
        endpoint: &Endpoint,
        server: &ServerConfig,
        trace: &mut Trace,
    ) -> Result<Upstream, UpstreamError> {
        let address = endpoint.address();
        let timeout = server.upstream_timeout;
        let tcp = upstream::tcp_connect_traced(
            &endpoint.target,
            server.connect_timeout,
            server.resolver,
            trace,
        )
        .await?;
        // The EHLO name: our own address as a literal, which every server accepts as syntax.
        let peer = tcp.peer_addr().ok();
        let helo = match tcp.local_addr() {
            Ok(a) if a.is_ipv6() => format!("[IPv6:{}]", a.ip()),
            Ok(a) => format!("[{}]", a.ip()),
            Err(_) => "localhost".to_owned(),
        };
        let stream = match endpoint.target.tls {
            TlsMode::Implicit => {
                upstream::tls_handshake_traced(
                    &endpoint.target,
                    tcp,
                    server.connect_timeout,
                    "smtp",
                    trace,
                )
                .await?
            }
            TlsMode::Starttls | TlsMode::None => UpstreamStream::Plain(tcp),
        };
        let mut client = SmtpClient { stream, timeout };
        let ms = |e| from_mail_send(e, &address, timeout, "greeting");
        let read = async {
            tokio::time::timeout(timeout, client.read())
                .await
                .map_err(|_| ms(mail_send::Error::Timeout))?
                .map_err(ms)
        };
        let greeting =
            upstream::await_greeting(&endpoint.target, peer, server.connect_timeout, read).await?;
        trace.greeting(|| reply_text(&greeting));
        if greeting.code != 220 {
            return Err(UpstreamError::Protocol {
                address,
                reason: format!("refused the connection: {}", reply_text(&greeting)),
            });
        }
        let mut ehlo = client
            .ehlo(&helo)
            .await
            .map_err(|e| from_mail_send(e, &address, timeout, "EHLO"))?;
        trace.capabilities(|| extensions(&ehlo));
        if endpoint.target.tls == TlsMode::Starttls {
            (client, ehlo) =
                starttls(client, &ehlo, endpoint, &helo, &address, server, trace).await?;
        }
        match &endpoint.credential {
            Credential::OAuth2(oauth) => {
                authenticate_oauth(&mut client, endpoint, oauth, &ehlo, &address, server).await?
            }
            Credential::Password(password) => {
                authenticate(&mut client, endpoint, password, &ehlo, &address, timeout).await?
            }
        }
        Ok(Upstream {
            client,
            address,
            timeout,
            stuffer: Stuffer::new(),
            out: Vec::with_capacity(crate::smtp::limits::READ_BUF + 1024),
            capabilities: ehlo.capabilities,
            phase: Phase::Ready,
            unsent: 0,
            bytes: None,
        })
    }

    /// Counts the message bytes written from now on for `account` too
    /// (`mailgate_account_bytes_total` with `per_account = true`).
    pub fn count_bytes_for(&mut self, account: &str) {
        self.bytes = Some(crate::metrics::ByteCounters::new("smtp", account));
    }

    /// host:port, for logs.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends one command line (without CRLF) and returns the server's reply, whatever its code.
    pub async fn command(
        &mut self,
        line: &str,
        step: &'static str,
    ) -> Result<Reply, UpstreamError> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.client
            .cmd(bytes)
            .await
            .map_err(|e| from_mail_send(e, &self.address, self.timeout, step))
    }

    /// Whether the server offers DSN (RFC 3461): the client's DSN parameters can be passed on.
    pub fn dsn(&self) -> bool {
        self.capabilities & EXT_DSN != 0
    }

    /// Whether the server accepts several commands in one write (RFC 2920 PIPELINING).
    pub fn pipelining(&self) -> bool {
        self.capabilities & EXT_PIPELINING != 0
    }

    /// Whether a small message may go as one `BDAT <size> LAST` with its bytes: the server
    /// offers CHUNKING (RFC 3030) and PIPELINING.
    fn chunking(&self) -> bool {
        self.capabilities & EXT_CHUNKING != 0 && self.pipelining()
    }

    /// Sends command lines (without CRLF) in one write and returns the server's replies, one
    /// per line and in order. Only for a server that offers PIPELINING, and only with commands
    /// RFC 2920 allows anywhere in a group (MAIL, RCPT).
    pub async fn pipeline(
        &mut self,
        lines: &[&str],
        step: &'static str,
    ) -> Result<Vec<Reply>, UpstreamError> {
        let mut bytes = Vec::with_capacity(lines.iter().map(|l| l.len() + 2).sum());
        for line in lines {
            bytes.extend_from_slice(line.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        let client = &mut self.client;
        let exchange = async {
            client.stream.write_all(&bytes).await?;
            client.stream.flush().await?;
            client.read_many(lines.len()).await
        };
        timed(exchange, &self.address, self.timeout, step).await
    }

    /// Starts a message body; the client may be told `354` as soon as this returns.
    ///
    /// With a server that offers CHUNKING and PIPELINING nothing is sent yet: the body is
    /// held, and a message that ends within `COALESCE` (32 KiB) bytes goes as `BDAT <size> LAST`
    /// and its bytes in one write (see [`Upstream::finish_data`]). That is one command, one
    /// reply and one wake-up of each side fewer per message than DATA (whose `354` must
    /// arrive before the first byte), the body needs no dot-stuffing, and Gmail, Microsoft
    /// 365 and Postfix all offer it. A message that outgrows the hold switches to DATA at
    /// that point (one round trip to the server, paid only by messages over 32 KiB): BDAT
    /// chunks of a long message would each get a reply that must be read to keep the
    /// server's replies from filling the socket.
    ///
    /// Otherwise `DATA` is sent without waiting for its reply, so the client can be told
    /// `354` at once and start sending while the server's `354` is on its way. The reply is
    /// read before the first message byte is written (no byte goes out before the server's
    /// `354`, RFC 5321 4.1.1.4); when it is a refusal, [`Upstream::write_body`] or
    /// [`Upstream::finish_data`] returns it as the message's verdict and the client's bytes
    /// are dropped — the client hears the refusal after its end marker, never a `250`. The
    /// session only starts a body after a recipient was accepted, so a refusal here is rare
    /// (a data restriction, a temporary failure).
    pub async fn send_data(&mut self) -> Result<(), UpstreamError> {
        self.stuffer = Stuffer::new();
        self.out.clear();
        self.unsent = 0;
        if self.chunking() {
            self.out.resize(BDAT_HEAD, 0);
            self.phase = Phase::Held;
            return Ok(());
        }
        self.start_data().await
    }

    /// Sends `DATA`; its reply is read later (see [`Upstream::send_data`]).
    async fn start_data(&mut self) -> Result<(), UpstreamError> {
        self.phase = Phase::Ready;
        let stream = &mut self.client.stream;
        write_timed(stream, b"DATA\r\n", &self.address, self.timeout, "DATA").await?;
        self.phase = Phase::DataSent;
        Ok(())
    }

    /// Reads the reply to [`Upstream::send_data`] if it is still due: `Ok(None)` when the
    /// body may be written (`354`), `Ok(Some(reply))` when the server refused DATA. After a
    /// refusal other than `421` the server's transaction is cleared with RSET so the
    /// connection can serve the next message (an RSET that fails is an error: the session
    /// then drops the connection).
    async fn data_reply(&mut self) -> Result<Option<Reply>, UpstreamError> {
        if self.phase != Phase::DataSent {
            return Ok(None);
        }
        self.phase = Phase::Ready;
        let client = &mut self.client;
        let r = timed(client.read(), &self.address, self.timeout, "DATA").await?;
        if r.code == 354 {
            return Ok(None);
        }
        self.out.clear();
        self.unsent = 0;
        if r.code != 421 {
            self.reset_after_refusal().await?;
        }
        Ok(Some(r))
    }

    /// RSET after the server refused a message's data, so the connection can serve the next
    /// message; an RSET that fails is an error (the session then drops the connection).
    async fn reset_after_refusal(&mut self) -> Result<(), UpstreamError> {
        let rset = self.command("RSET", "RSET").await?;
        if !(200..300).contains(&rset.code) {
            return Err(UpstreamError::Closed {
                address: self.address.clone(),
                step: "RSET",
            });
        }
        Ok(())
    }

    /// Writes message bytes (unstuffed, as the client meant them), stuffed, to the server.
    /// Less than `COALESCE` bytes wait for more (or for the end marker): a small message
    /// then reaches the server in one write with its end, one wake-up fewer on both sides.
    /// `Ok(Some(reply))`: the server refused DATA (see [`Upstream::send_data`]); the bytes
    /// are dropped and `reply` is the message's verdict.
    pub async fn write_body(&mut self, bytes: &[u8]) -> Result<Option<Reply>, UpstreamError> {
        self.unsent += bytes.len() as u64;
        if self.phase == Phase::Held {
            self.out.extend_from_slice(bytes);
            if self.out.len() - BDAT_HEAD < COALESCE {
                return Ok(None);
            }
            // Too long for one BDAT: DATA after all, with what is held stuffed now.
            self.start_data().await?;
            let held = std::mem::take(&mut self.out);
            self.stuffer.feed(&held[BDAT_HEAD..], &mut self.out);
        } else {
            self.stuffer.feed(bytes, &mut self.out);
            if self.out.len() < COALESCE {
                return Ok(None);
            }
        }
        if let Some(refused) = self.data_reply().await? {
            return Ok(Some(refused));
        }
        let stream = &mut self.client.stream;
        write_timed(
            stream,
            &self.out,
            &self.address,
            self.timeout,
            "message data",
        )
        .await?;
        self.out.clear();
        crate::metrics::smtp_body_bytes(self.bytes.as_ref(), std::mem::take(&mut self.unsent));
        Ok(None)
    }

    /// Ends the message (end marker, and CRLF first if the message lacked one) and returns the
    /// server's verdict on it (the refusal of DATA itself when that is still to be read).
    /// A held message goes as `BDAT <size> LAST` with its bytes as the client meant them; a
    /// refused one is followed by RSET, as after a refused DATA, so that the server's
    /// transaction is cleared whatever it keeps after a failed chunk (RFC 3030 leaves that
    /// open).
    pub async fn finish_data(&mut self) -> Result<Reply, UpstreamError> {
        if self.phase == Phase::Held {
            self.phase = Phase::Ready;
            let head = format!("BDAT {} LAST\r\n", self.out.len() - BDAT_HEAD);
            let start = BDAT_HEAD - head.len();
            self.out[start..BDAT_HEAD].copy_from_slice(head.as_bytes());
            let r = self.send_end(start).await?;
            if !(200..300).contains(&r.code) && r.code != 421 {
                self.reset_after_refusal().await?;
            }
            return Ok(r);
        }
        if let Some(refused) = self.data_reply().await? {
            return Ok(refused);
        }
        self.out.extend_from_slice(self.stuffer.finish());
        self.send_end(0).await
    }

    /// Writes `out[from..]` — the message's last bytes, with its end — and reads the
    /// server's verdict on the message.
    async fn send_end(&mut self, from: usize) -> Result<Reply, UpstreamError> {
        let step = "reply to the end of data";
        let (client, out, unsent) = (&mut self.client, &mut self.out, &mut self.unsent);
        let bytes = self.bytes.as_ref();
        let exchange = async {
            client.stream.write_all(&out[from..]).await?;
            out.clear();
            crate::metrics::smtp_body_bytes(bytes, std::mem::take(unsent));
            client.stream.flush().await?;
            client.read().await
        };
        timed(exchange, &self.address, self.timeout, step).await
    }

    /// Says QUIT (best effort) and closes.
    pub async fn quit(mut self) {
        let _ = self.command("QUIT", "QUIT").await;
        let _ = tokio::time::timeout(self.timeout, self.client.stream.shutdown()).await;
    }
}

/// STARTTLS on the plaintext `client`, the TLS handshake, and EHLO again (the capabilities
/// said in plaintext are forgotten, RFC 3207).
async fn starttls(
    mut client: SmtpClient<UpstreamStream>,
    plain_ehlo: &EhloResponse<String>,
    endpoint: &Endpoint,
    helo: &str,
    address: &str,
    server: &ServerConfig,
    trace: &mut Trace,
) -> Result<(SmtpClient<UpstreamStream>, EhloResponse<String>), UpstreamError> {
    let timeout = server.upstream_timeout;
    let address = address.to_owned();
    if plain_ehlo.capabilities & EXT_START_TLS == 0 {
        return Err(from_mail_send(
            mail_send::Error::MissingStartTls,
            &address,
            timeout,
            "EHLO",
        ));
    }
    let reply = client
        .cmd(b"STARTTLS\r\n")
        .await
        .map_err(|e| from_mail_send(e, &address, timeout, "STARTTLS"))?;
    if reply.code != 220 {
        return Err(UpstreamError::Protocol {
            address,
            reason: format!("refused STARTTLS: {}", reply_text(&reply)),
        });
    }
    trace.starttls_accepted();
    let UpstreamStream::Plain(tcp) = client.stream else {
        return Err(UpstreamError::Protocol {
            address,
            reason: "STARTTLS on a TLS connection".into(),
        });
    };
    client = SmtpClient {
        stream: upstream::tls_handshake_traced(
            &endpoint.target,
            tcp,
            server.connect_timeout,
            "smtp",
            trace,
        )
        .await?,
        timeout,
    };
    let ehlo = client
        .ehlo(helo)
        .await
        .map_err(|e| from_mail_send(e, &address, timeout, "EHLO after STARTTLS"))?;
    trace.capabilities(|| extensions(&ehlo));
    Ok((client, ehlo))
}

/// The EHLO extensions as the server would list them (`PIPELINING`, `AUTH PLAIN LOGIN`, …),
/// rendered by smtp-proto from what it parsed (mail-send keeps no raw lines).
fn extensions(ehlo: &EhloResponse<String>) -> Vec<String> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = ehlo.write(&mut out);
    String::from_utf8_lossy(&out)
        .lines()
        .skip(1) // the first line is the server's name
        .map(|l| l.get(4..).unwrap_or_default().to_owned())
        .collect()
}

/// AUTH with the account's credential, with the best mechanism both sides support.
async fn authenticate(
    client: &mut SmtpClient<UpstreamStream>,
    endpoint: &Endpoint,
    password: &Secret,
    ehlo: &EhloResponse<String>,
    address: &str,
    timeout: Duration,
) -> Result<(), UpstreamError> {
    if ehlo.auth_mechanisms == 0 {
        return Err(UpstreamError::Protocol {
            address: address.to_owned(),
            reason: "the server offers no AUTH mechanism (on this connection)".into(),
        });
    }
    let credentials = Credentials::new(endpoint.username.as_str(), password.expose());
    match client.authenticate(&credentials, ehlo).await {
        Ok(_) => Ok(()),
        Err(mail_send::Error::AuthenticationFailed(r)) => Err(UpstreamError::Auth {
            address: address.to_owned(),
            username: endpoint.username.clone(),
            reason: reply_text(&r),
        }),
        Err(mail_send::Error::UnsupportedAuthMechanism) => Err(UpstreamError::Auth {
            address: address.to_owned(),
            username: endpoint.username.clone(),
            reason: "no AUTH mechanism in common (mailgate uses PLAIN or LOGIN)".into(),
        }),
        Err(e) => Err(from_mail_send(e, address, timeout, "AUTH")),
    }
}

/// Longest AUTH line sent with an initial response (RFC 5321's 512-octet command line); a
/// longer token (Microsoft's are several KiB) goes after the server's `334`.
const MAX_INITIAL_RESPONSE_LINE: usize = 512;

/// AUTH XOAUTH2 / OAUTHBEARER with an OAuth access token, built here rather than with
/// mail-send's `Credentials::XOauth2` / `new_oauth_from_token` (whose OAUTHBEARER lacks the
/// RFC 7628 header). A `334` after the token is the server's error challenge: answered with an
/// empty line so the server sends its final `535`. A rejected token is refreshed once and tried
/// again on the same connection (RFC 4954 allows another AUTH after a failed one).
async fn authenticate_oauth(
    client: &mut SmtpClient<UpstreamStream>,
    endpoint: &Endpoint,
    oauth: &OAuth2,
    ehlo: &EhloResponse<String>,
    address: &str,
    server: &ServerConfig,
) -> Result<(), UpstreamError> {
    let timeout = server.upstream_timeout;
    let offered = |bit| ehlo.auth_mechanisms & bit != 0;
    let mechanism = Mechanism::choose(oauth.mechanism, offered(AUTH_XOAUTH2));
    let bit = match mechanism {
        Mechanism::Xoauth2 => AUTH_XOAUTH2,
        Mechanism::Oauthbearer => AUTH_OAUTHBEARER,
    };
    if !offered(bit) {
        return Err(UpstreamError::NoOAuthMechanism {
            address: address.to_owned(),
            reason: format!(
                "the server does not offer AUTH {}; it cannot log in with an OAuth token here",
                mechanism.as_str()
            ),
        });
    }
    let ms = |e| from_mail_send(e, address, timeout, "AUTH");
    let mut rejected: Option<Secret> = None;
    let mut last = String::new();
    for attempt in 0..2 {
        let token = crate::oauth::access_token(oauth, server, rejected.as_ref()).await?;
        let payload = mechanism.message(
            &endpoint.username,
            &endpoint.target.host,
            endpoint.target.port,
            &token,
        );
        let name = mechanism.as_str();
        let mut with_ir = zeroize::Zeroizing::new(format!("AUTH {name} {}\r\n", payload.expose()));
        let mut reply = if with_ir.len() <= MAX_INITIAL_RESPONSE_LINE {
            client.cmd(with_ir.as_bytes()).await.map_err(ms)?
        } else {
            let first = client.cmd(format!("AUTH {name}\r\n")).await.map_err(ms)?;
            if first.code != 334 {
                first
            } else {
                with_ir = zeroize::Zeroizing::new(format!("{}\r\n", payload.expose()));
                client.cmd(with_ir.as_bytes()).await.map_err(ms)?
            }
        };
        let mut challenge = None;
        if reply.code == 334 {
            challenge = sasl::oauth_error_status(reply.message.trim().as_bytes());
            reply = client.cmd(b"\r\n").await.map_err(ms)?;
        }
        if (200..300).contains(&reply.code) {
            return Ok(());
        }
        last = reply_text(&reply);
        if let Some(c) = challenge {
            last.push_str(&format!(" (token status: {c})"));
        }
        tracing::info!(attempt, mechanism = name, reply = %last, "upstream rejected the OAuth access token");
        rejected = Some(token);
    }
    Err(UpstreamError::Auth {
        address: address.to_owned(),
        username: endpoint.username.clone(),
        reason: last,
    })
}
