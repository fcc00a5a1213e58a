//! A minimal HTTP/1.1 client for the token endpoint: one `POST` of a form, one JSON answer.
//!
//! Why not a crate: the token endpoint needs one request shape, and the HTTP clients that fit
//! (reqwest, ureq, hyper-util) would add a connection pool, a second HTTP stack or, by default,
//! a second TLS provider. This goes through [`crate::net::connect`]'s connect and TLS (same roots,
//! same time-outs, same errors, rustls with ring) and reads at most [`MAX_RESPONSE`] bytes.
//! `Connection: close` keeps it to one exchange per connection; bodies may be sized by
//! `Content-Length`, chunked, or end at close.
//!
//! Nothing here logs: the request carries client secrets and refresh tokens, the response
//! access tokens. Errors name the URL and the failing step only.

use super::connect::{self, ConnectError, Unobserved, UpstreamStream};
use super::target::{Target, TlsMode};
use crate::secret::Secret;
use std::fmt;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

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

impl HttpUrl {
    /// Parses an absolute http(s) URL. User info (`user:pass@`) is refused: it would put a
    /// secret into a config value that is printed in messages.
    pub fn parse(text: &str) -> Result<HttpUrl, String> {
        let text = text.trim();
        let (https, rest) = if let Some(r) = text.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = text.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("`{text}` is not an http:// or https:// URL"));
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
            return Err(format!("`{text}`: user info in a URL is not allowed"));
        }
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("`{text}`: unclosed [ in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("`{text}`: bad port"))?,
                None if after.is_empty() => default_port,
                None => return Err(format!("`{text}`: bad host")),
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_owned(),
                    p.parse().map_err(|_| format!("`{text}`: bad port"))?,
                ),
                None => (authority.to_owned(), default_port),
            }
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
        if !host_ok || port == 0 || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("`{text}` is not a usable URL"));
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

/// `POST url` with a form body and `Accept: application/json`; the response as it came. Host
/// names go through `resolver` (`None`: the system's); `connect_timeout` bounds connecting,
/// `timeout` each read and write.
pub async fn post_form(
    url: &HttpUrl,
    body: &Secret,
    resolver: Option<std::net::SocketAddr>,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let mut request = Zeroizing::new(format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: mailgate/{}\r\nAccept: application/json\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION"),
        body.expose().len()
    ));
    request.push_str(body.expose());
    exchange(url, &request, resolver, connect_timeout, timeout).await
}

/// `GET url` (discovery's autoconfig files). Host names go through `resolver` (`None`: the
/// system's); `timeout` bounds connecting and each read and write.
pub async fn get(
    url: &HttpUrl,
    resolver: Option<std::net::SocketAddr>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let request = Zeroizing::new(format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: mailgate/{}\r\nAccept: application/xml, text/xml\r\n\
         Connection: close\r\n\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION"),
    ));
    exchange(url, &request, resolver, timeout, timeout).await
}

/// Connects (TLS for https, verified against the normal roots), sends `request` and reads the
/// whole response.
async fn exchange(
    url: &HttpUrl,
    request: &str,
    resolver: Option<std::net::SocketAddr>,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<Response, HttpError> {
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
    let mut stream = if url.https {
        connect::tls_handshake(&target, tcp, connect_timeout, &mut Unobserved).await?
    } else {
        UpstreamStream::Plain(tcp)
    };
    let io = |step: &'static str, e: String| HttpError::Io {
        url: url.to_string(),
        step,
        reason: e,
    };
    let write = async {
        stream.write_all(request.as_bytes()).await?;
        stream.flush().await
    };
    with_timeout(timeout, url, "sending the request", write)
        .await?
        .map_err(|e| io("sending the request", e.to_string()))?;
    read_response(&mut stream, url, timeout).await
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

/// Reads until the response is complete (by length, chunk end or close), at most
/// [`MAX_RESPONSE`] bytes and `timeout` per read.
async fn read_response(
    stream: &mut UpstreamStream,
    url: &HttpUrl,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let mut buf = Zeroizing::new(Vec::with_capacity(4096));
    let mut chunk = Zeroizing::new(vec![0u8; 8192]);
    loop {
        if let Some(done) = complete(&buf).map_err(|reason| HttpError::Response {
            url: url.to_string(),
            reason,
        })? {
            return Ok(done);
        }
        if buf.len() > MAX_RESPONSE {
            return Err(HttpError::Response {
                url: url.to_string(),
                reason: format!("larger than {MAX_RESPONSE} bytes"),
            });
        }
        let n = match with_timeout(
            timeout,
            url,
            "reading the response",
            stream.read(&mut chunk),
        )
        .await?
        {
            Ok(n) => n,
            // A TLS peer that closes without close_notify: treat as end of data.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => {
                return Err(HttpError::Io {
                    url: url.to_string(),
                    step: "reading the response",
                    reason: e.to_string(),
                })
            }
        };
        if n == 0 {
            return finish_at_close(&buf).map_err(|reason| HttpError::Response {
                url: url.to_string(),
                reason,
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

struct Head {
    status: u16,
    header_len: usize,
    content_length: Option<usize>,
    chunked: bool,
}

fn head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let header_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("{e}")),
    };
    let status = resp.code.unwrap_or(0);
    let mut content_length = None;
    let mut chunked = false;
    for h in resp.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        if h.name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .trim()
                    .parse()
                    .map_err(|_| "bad Content-Length".to_owned())?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    Ok(Some(Head {
        status,
        header_len,
        content_length,
        chunked,
    }))
}

/// `Some` once `buf` holds a whole response.
fn complete(buf: &[u8]) -> Result<Option<Response>, String> {
    let Some(h) = head(buf)? else {
        return Ok(None);
    };
    let body = &buf[h.header_len..];
    if h.chunked {
        return Ok(dechunk(body)?.map(|body| Response {
            status: h.status,
            body,
        }));
    }
    match h.content_length {
        Some(n) if body.len() >= n => Ok(Some(Response {
            status: h.status,
            body: Zeroizing::new(body[..n].to_vec()),
        })),
        _ => Ok(None),
    }
}

fn finish_at_close(buf: &[u8]) -> Result<Response, String> {
    let h =
        head(buf)?.ok_or_else(|| "the connection closed before the headers ended".to_owned())?;
    if h.chunked || h.content_length.is_some() {
        return Err("the connection closed before the body ended".into());
    }
    Ok(Response {
        status: h.status,
        body: Zeroizing::new(buf[h.header_len..].to_vec()),
    })
}

/// Decodes a chunked body; `None` while incomplete.
fn dechunk(mut body: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
    let mut out = Zeroizing::new(Vec::new());
    // Each round consumes one chunk; the body is bounded, so is the loop.
    loop {
        let Some(eol) = memchr::memmem::find(body, b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&body[..eol]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        let start = eol + 2;
        if size == 0 {
            return Ok(Some(out));
        }
        if body.len() < start + size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
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

    #[test]
    fn responses() {
        let r = complete(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}junk")
            .unwrap()
            .unwrap();
        assert_eq!((r.status, &r.body[..]), (200, &b"{}"[..]));
        assert!(complete(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}")
            .unwrap()
            .is_none());
        let chunked = b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n";
        let r = complete(chunked).unwrap().unwrap();
        assert_eq!((r.status, &r.body[..]), (400, &b"abcde"[..]));
        assert!(complete(&chunked[..chunked.len() - 7]).unwrap().is_none());
        let r = finish_at_close(b"HTTP/1.0 200 OK\r\n\r\nbody").unwrap();
        assert_eq!(&r.body[..], b"body");
        assert!(finish_at_close(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nx").is_err());
        assert!(complete(b"garbage\r\n\r\n").is_err());
    }
}
