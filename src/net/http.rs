//! A small HTTP/1.1 client for the token endpoint (one `POST` of a form, one JSON answer) and
//! discovery's autoconfig files (one `GET`).
//!
//! HTTP itself is hyper's (already in the build for the metrics listener): one
//! `client::conn::http1` connection per request, no pool, `Connection: close`. The connection
//! is made through [`crate::net::connect`]'s connect and TLS (same resolver, roots, time-outs and
//! errors, rustls with ring), and at most [`MAX_RESPONSE`] bytes of head and body are read.
//!
//! Nothing here logs: the request carries client secrets and refresh tokens, the response
//! access tokens. Errors name the URL and the failing step only.

use super::connect::{self, ConnectError, Unobserved, UpstreamStream};
use super::target::{Target, TlsMode};
use crate::secret::Secret;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper::{header, Method, Request};
use hyper_util::rt::TokioIo;
use std::fmt;
use std::io::Cursor;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use zeroize::{Zeroize, Zeroizing};

/// Largest response accepted (token responses are a few KiB).
pub const MAX_RESPONSE: usize = 256 * 1024;

/// Why an HTTP exchange failed. Never carries request or response bodies.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connecting or TLS failed.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// Reading or writing failed after connecting.
    #[error("{url}: {step}: {reason}")]
    Io {
        /// The URL (no secrets in it).
        url: String,
        /// What we were doing.
        step: &'static str,
        /// The I/O error.
        reason: String,
    },
    /// The answer is not HTTP, or too large.
    #[error("{url}: bad HTTP response: {reason}")]
    Response {
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

/// An `http://` or `https://` URL, split into what a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `https://`.
    pub https: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port (default 443 / 80).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

/// Why a text is not a URL mailgate fetches; each names the text as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Another scheme, or none.
    #[error("`{0}` is not an http:// or https:// URL")]
    NotHttp(String),
    /// `user:pass@`: a secret in a value that messages print.
    #[error("`{0}`: user info in a URL is not allowed")]
    UserInfo(String),
    /// `[` of an IPv6 host without its `]`.
    #[error("`{0}`: unclosed [ in the host")]
    UnclosedBracket(String),
    /// A port that is not a number from 0 to 65535.
    #[error("`{0}`: bad port")]
    BadPort(String),
    /// Something after a bracketed host other than a port.
    #[error("`{0}`: bad host")]
    BadHost(String),
    /// An empty or odd host, port 0, or white space in the path.
    #[error("`{0}` is not a usable URL")]
    Unusable(String),
}

impl HttpUrl {
    /// Parses an absolute http(s) URL. User info (`user:pass@`) is refused: it would put a
    /// secret into a config value that is printed in messages.
    pub fn parse(text: &str) -> Result<HttpUrl, UrlError> {
        let text = text.trim();
        let (https, rest) = if let Some(r) = text.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = text.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(UrlError::NotHttp(text.to_owned()));
        };
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        let path = path.split('#').next().unwrap_or_default();
        let path = if path.is_empty() {
            "/".to_owned()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        if authority.contains('@') {
            return Err(UrlError::UserInfo(text.to_owned()));
        }
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| UrlError::UnclosedBracket(text.to_owned()))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| UrlError::BadPort(text.to_owned()))?,
                None if after.is_empty() => default_port,
                None => return Err(UrlError::BadHost(text.to_owned())),
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_owned(),
                    p.parse().map_err(|_| UrlError::BadPort(text.to_owned()))?,
                ),
                None => (authority.to_owned(), default_port),
            }
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
        if !host_ok || port == 0 || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::Unusable(text.to_owned()));
        }
        Ok(HttpUrl {
            https,
            host: host.to_ascii_lowercase(),
            port,
            path,
        })
    }

    /// Whether the host is a loopback address (127.0.0.0/8, ::1, localhost): the only place
    /// where plain http is allowed.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The URL with `params` added to its query (for the authorization URL).
    pub fn with_query(&self, params: &[(&str, &str)]) -> String {
        let mut s = self.to_string();
        let mut sep = if self.path.contains('?') { '&' } else { '?' };
        for (k, v) in params {
            s.push(sep);
            s.push_str(&encode(k));
            s.push('=');
            s.push_str(&encode(v));
            sep = '&';
        }
        s
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.https { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.host_header(), self.path)
    }
}

/// Percent-encoding for `application/x-www-form-urlencoded` and query values (RFC 3986
/// unreserved characters stay, everything else is `%XX`).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` and `+` (form encoding); `None` on a bad escape or non-UTF-8 result.
pub fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The `key=value` pairs of a query string or form body, decoded.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

/// A form body. Values may be secrets; the body is zeroized when dropped.
pub fn form(params: &[(&str, &str)]) -> Secret {
    let mut body = Zeroizing::new(String::new());
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            body.push('&');
        }
        body.push_str(&encode(k));
        body.push('=');
        body.push_str(&Zeroizing::new(encode(v)));
    }
    Secret::new(body.to_string())
}

/// An HTTP response: status and body (the body may hold tokens: never log it).
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Zeroizing<Vec<u8>>,
}

/// `POST url` with a form body and `Accept: application/json`; the response as it came.
pub async fn post_form(
    url: &HttpUrl,
    body: &Secret,
    resolver: Option<std::net::SocketAddr>,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let request = request(url, Method::POST, "application/json")?
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Cursor::new(Wiped(
            body.expose().as_bytes().to_vec(),
        ))));
    let request = request.map_err(|e| bad_request(url, &e))?;
    exchange(url, request, resolver, connect_timeout, timeout).await
}

/// `GET url` (discovery's autoconfig files). Host names go through `resolver` (`None`: the
/// system's); `timeout` bounds connecting and each read and write.
pub async fn get(
    url: &HttpUrl,
    resolver: Option<std::net::SocketAddr>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let request = request(url, Method::GET, "application/xml, text/xml")?
        .body(Full::new(Cursor::new(Wiped(Vec::new()))))
        .map_err(|e| bad_request(url, &e))?;
    exchange(url, request, resolver, timeout, timeout).await
}

/// A request body that is wiped when dropped (form bodies carry client secrets and refresh
/// tokens). hyper's and rustls's own buffers are not wiped; this copy at least is.
struct Wiped(Vec<u8>);

impl AsRef<[u8]> for Wiped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Wiped {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

type Body = Full<Cursor<Wiped>>;

/// The request line and the headers every request carries. `Connection: close`: one exchange
/// per connection, no pool.
fn request(
    url: &HttpUrl,
    method: Method,
    accept: &'static str,
) -> Result<hyper::http::request::Builder, HttpError> {
    let target: hyper::Uri = url.path.parse().map_err(|_| HttpError::Response {
        url: url.to_string(),
        reason: "the path is not a valid request target".into(),
    })?;
    Ok(Request::builder()
        .method(method)
        .uri(target)
        .header(header::HOST, url.host_header())
        .header(
            header::USER_AGENT,
            concat!("mailgate/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::ACCEPT, accept)
        .header(header::CONNECTION, "close"))
}

fn bad_request(url: &HttpUrl, e: &hyper::http::Error) -> HttpError {
    HttpError::Response {
        url: url.to_string(),
        reason: format!("cannot build the request: {e}"),
    }
}

/// Connects (TLS for https, verified against the normal roots), sends `request` over one
/// HTTP/1.1 connection and reads the whole response.
async fn exchange(
    url: &HttpUrl,
    request: Request<Body>,
    resolver: Option<std::net::SocketAddr>,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let stream = connect(url, resolver, connect_timeout).await?;
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        // Header names as written by hand before (`Host:`, not `host:`): some servers and
        // test stand-ins match them case-sensitively.
        .title_case_headers(true)
        // The head is bounded like the body; hyper's smallest buffer is 8 KiB.
        .max_buf_size(MAX_RESPONSE)
        .handshake::<_, Body>(TokioIo::new(EofAtClose(stream)))
        .await
        .map_err(|e| failed(url, "sending the request", &e))?;
    let exchange = async {
        let response = with_timeout(
            timeout,
            url,
            "reading the response",
            sender.send_request(request),
        )
        .await?
        .map_err(|e| failed(url, "reading the response", &e))?;
        read_body(response, url, timeout).await
    };
    // The connection future does the I/O; it is polled alongside the exchange and dropped
    // (closing the socket) when the exchange ends.
    let mut conn = std::pin::pin!(conn);
    let mut exchange = std::pin::pin!(exchange);
    tokio::select! {
        biased;
        done = &mut exchange => done,
        ended = &mut conn => match ended {
            // The connection closed after the whole response: the body waits in its channel.
            Ok(()) => exchange.await,
            Err(e) => Err(failed(url, "reading the response", &e)),
        },
    }
}

/// TCP (through `resolver`) and, for https, TLS with the project's client config.
async fn connect(
    url: &HttpUrl,
    resolver: Option<std::net::SocketAddr>,
    connect_timeout: Duration,
) -> Result<UpstreamStream, HttpError> {
    let target = Target {
        host: url.host.clone(),
        port: url.port,
        tls: if url.https {
            TlsMode::Implicit
        } else {
            TlsMode::None
        },
        server_name: rustls_pki_types::ServerName::try_from(url.host.clone()).map_err(|_| {
            HttpError::Response {
                url: url.to_string(),
                reason: "the host is not a valid TLS name".into(),
            }
        })?,
        tls_config: if url.https {
            Some(
                super::tls::client_config(None).map_err(|e| HttpError::Response {
                    url: url.to_string(),
                    reason: e.to_string(),
                })?,
            )
        } else {
            None
        },
        ca_file: None,
    };
    let tcp = connect::tcp(&target, connect_timeout, resolver, &mut Unobserved).await?;
    Ok(if url.https {
        connect::tls_handshake(&target, tcp, connect_timeout, &mut Unobserved).await?
    } else {
        UpstreamStream::Plain(tcp)
    })
}

/// The body, frame by frame, each within `timeout`, at most [`MAX_RESPONSE`] bytes.
async fn read_body(
    response: hyper::Response<Incoming>,
    url: &HttpUrl,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let too_large = || HttpError::Response {
        url: url.to_string(),
        reason: format!("larger than {MAX_RESPONSE} bytes"),
    };
    let status = response.status().as_u16();
    let mut body = response.into_body();
    if body.size_hint().lower() > MAX_RESPONSE as u64 {
        return Err(too_large());
    }
    let mut out = Zeroizing::new(Vec::new());
    while let Some(frame) = with_timeout(timeout, url, "reading the response", body.frame()).await?
    {
        let frame = frame.map_err(|e| failed(url, "reading the response", &e))?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > MAX_RESPONSE {
                return Err(too_large());
            }
            out.extend_from_slice(data);
        }
    }
    Ok(Response { status, body: out })
}

/// hyper's error as ours: a response that is not HTTP (or ends early) is a bad response, the
/// rest an I/O failure at `step`.
fn failed(url: &HttpUrl, step: &'static str, e: &hyper::Error) -> HttpError {
    let reason = if e.is_parse_too_large() {
        format!("larger than {MAX_RESPONSE} bytes")
    } else if e.is_incomplete_message() {
        "the connection closed before the response ended".into()
    } else if e.is_parse() || e.is_parse_status() {
        e.to_string()
    } else {
        let reason =
            std::error::Error::source(e).map_or_else(|| e.to_string(), ToString::to_string);
        return HttpError::Io {
            url: url.to_string(),
            step,
            reason,
        };
    };
    HttpError::Response {
        url: url.to_string(),
        reason,
    }
}

async fn with_timeout<T>(
    timeout: Duration,
    url: &HttpUrl,
    step: &'static str,
    f: impl std::future::Future<Output = T>,
) -> Result<T, HttpError> {
    tokio::time::timeout(timeout, f).await.map_err(|_| {
        HttpError::Connect(ConnectError::Timeout {
            address: url.to_string(),
            secs: timeout.as_secs(),
            step,
        })
    })
}

/// A TLS peer that closes without close_notify reads as the end of the data (as a plain TCP
/// close does), so a body that ends at close is not an error for it.
struct EofAtClose(UpstreamStream);

impl AsyncRead for EofAtClose {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for EofAtClose {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u =
            HttpUrl::parse("https://login.microsoftonline.com/common/oauth2/v2.0/token").unwrap();
        assert!(u.https && u.port == 443 && u.path == "/common/oauth2/v2.0/token");
        assert!(!u.is_loopback());
        let u = HttpUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (u.port, u.path.as_str(), u.is_loopback()),
            (8080, "/", true)
        );
        assert!(HttpUrl::parse("http://[::1]:9/x?a=b")
            .unwrap()
            .is_loopback());
        assert!(HttpUrl::parse("http://localhost/").unwrap().is_loopback());
        assert!(!HttpUrl::parse("http://127.example.com/")
            .unwrap()
            .is_loopback());
        assert!(HttpUrl::parse("ftp://x/").is_err());
        assert!(HttpUrl::parse("https://u:p@x/").is_err());
        assert!(HttpUrl::parse("https://x:0/").is_err());
        assert_eq!(
            HttpUrl::parse("https://a.b/auth?x=1")
                .unwrap()
                .with_query(&[("scope", "a b/c")]),
            "https://a.b/auth?x=1&scope=a%20b%2Fc"
        );
    }

    #[test]
    fn encoding_round_trip() {
        let q = parse_query("code=a%2Fb+c&state=xyz&empty=&bad=%zz");
        assert_eq!(
            q,
            vec![
                ("code".into(), "a/b c".into()),
                ("state".into(), "xyz".into()),
                ("empty".into(), "".into())
            ]
        );
        assert_eq!(form(&[("a", "x y&z")]).expose(), "a=x%20y%26z");
    }

    /// One connection on loopback answered with `reply` as it is, closed after it; the
    /// response `get` makes of it.
    async fn served(reply: &'static [u8]) -> Result<Response, HttpError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = HttpUrl::parse(&format!("http://{}/x", listener.local_addr().unwrap())).unwrap();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            // The request head, bounded.
            while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
                if s.read(&mut byte).await.unwrap_or(0) == 0 {
                    break;
                }
                head.push(byte[0]);
            }
            let _ = s.write_all(reply).await;
            let _ = s.shutdown().await;
            String::from_utf8(head).unwrap()
        });
        let got = get(&url, None, Duration::from_secs(5)).await;
        let head = server.await.unwrap();
        assert!(head.starts_with("GET /x HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nHost: 127.0.0.1:"), "{head}");
        assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
        got
    }

    #[tokio::test]
    async fn responses() {
        let r = served(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}junk")
            .await
            .unwrap();
        assert_eq!((r.status, &r.body[..]), (200, &b"{}"[..]));
        assert!(served(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}")
            .await
            .is_err());
        let r = served(b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n")
            .await
            .unwrap();
        assert_eq!((r.status, &r.body[..]), (400, &b"abcde"[..]));
        assert!(served(
            b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde"
        )
        .await
        .is_err());
        let r = served(b"HTTP/1.0 200 OK\r\n\r\nbody").await.unwrap();
        assert_eq!(&r.body[..], b"body");
        assert!(served(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nx")
            .await
            .is_err());
        assert!(served(b"garbage\r\n\r\n").await.is_err());
    }

    /// A body past [`MAX_RESPONSE`] is refused, whether its length is announced or not.
    #[tokio::test]
    async fn responses_are_bounded() {
        static ANNOUNCED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n{}";
        let e = served(ANNOUNCED).await.err().unwrap().to_string();
        assert!(e.contains("larger than"), "{e}");
        static UNANNOUNCED: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let big = UNANNOUNCED.get_or_init(|| {
            let mut r = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
            r.resize(r.len() + MAX_RESPONSE + 1, b'x');
            r
        });
        let e = served(big).await.err().unwrap().to_string();
        assert!(e.contains("larger than"), "{e}");
    }
}
