//! The plain HTTP/1.1 client of the connect page's tests (one for `tests/web.rs` and the
//! browser tests): one request per connection (`Connection: close`), std sockets, bounded in
//! time and bytes; plus [`WebSession`], a browser stand-in that keeps the session cookie and
//! language and every response.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Upper bound on one plain HTTP response.
const MAX_RESPONSE: u64 = 4 * 1024 * 1024;

/// A plain HTTP response: status code, headers (names lower-cased, in order) and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of the session cookie this response sets, if any (empty when it ends it).
    pub fn set_cookie(&self) -> Option<String> {
        let v = self.header("set-cookie")?;
        let first = v.split(';').next()?;
        first.strip_prefix("mailgate_session=").map(str::to_owned)
    }

    /// The `value` of the first hidden `csrf` field, if the page has a form.
    pub fn csrf(&self) -> Option<String> {
        let at = self.body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
        self.body[at..].split('"').next().map(str::to_owned)
    }
}

/// One HTTP/1.1 request to `url` (`http://IP:PORT/path`) outside the browser, e.g. a POST
/// with the browser's cookie but no CSRF field. `Connection: close`, so the response ends at
/// the close (chromedriver refuses HTTP/1.0). Bounded in time and bytes.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<Response, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// address: {url}"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr: SocketAddr = host.parse().map_err(|e| format!("{host}: {e}"))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let timeout = Some(Duration::from_secs(30));
    s.set_read_timeout(timeout).map_err(|e| e.to_string())?;
    s.set_write_timeout(timeout).map_err(|e| e.to_string())?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if let Some(body) = body {
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
    }
    head.push_str("\r\n");
    head.push_str(body.unwrap_or_default());
    s.write_all(head.as_bytes())
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let raw = read_response(&mut s).map_err(|e| format!("read from {addr}: {e}"))?;
    parse_response(&String::from_utf8_lossy(&raw))
}

/// Reads one response: up to its `Content-Length` when it has one (chromedriver keeps the
/// connection open despite `Connection: close`), else to the end of the stream.
fn read_response(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(end) = complete_length(&raw) {
            if raw.len() >= end {
                raw.truncate(end);
                return Ok(raw);
            }
        }
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(raw);
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.len() as u64 > MAX_RESPONSE {
            return Err(std::io::Error::other("response too large"));
        }
    }
}

/// Where a response with a complete head and a `Content-Length` ends.
fn complete_length(raw: &[u8]) -> Option<usize> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let length = head.split("\r\n").find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    })?;
    Some(head_end + length)
}

fn parse_response(raw: &str) -> Result<Response, String> {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {} bytes", raw.len()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// The body of a `Transfer-Encoding: chunked` response (trailers ignored).
fn dechunk(mut rest: &str) -> Result<String, String> {
    let mut body = String::new();
    loop {
        let (size_line, after) = rest.split_once("\r\n").ok_or("chunked body cut short")?;
        let size_text = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        if size == 0 {
            return Ok(body);
        }
        let chunk = after.get(..size).ok_or("chunk cut short")?;
        body.push_str(chunk);
        rest = after
            .get(size..)
            .and_then(|r| r.strip_prefix("\r\n"))
            .ok_or("no line end after a chunk")?;
    }
}

/// `application/x-www-form-urlencoded` of `fields`.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", form_escape(k), form_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn form_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// A browser stand-in: a cookie, a language, every response kept.
pub struct WebSession {
    pub addr: SocketAddr,
    pub cookie: Option<String>,
    pub language: Option<String>,
    /// Every response so far (for the "no secret on any page" check).
    pub seen: Vec<Response>,
}

impl WebSession {
    pub fn new(addr: SocketAddr) -> WebSession {
        WebSession {
            addr,
            cookie: None,
            language: None,
            seen: Vec::new(),
        }
    }

    fn send(&mut self, method: &str, path: &str, body: Option<&str>) -> Response {
        let cookie = self
            .cookie
            .as_ref()
            .map(|c| format!("mailgate_session={c}"));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(c) = &cookie {
            headers.push(("Cookie", c));
        }
        if let Some(l) = &self.language {
            headers.push(("Accept-Language", l));
        }
        if body.is_some() {
            headers.push(("Content-Type", "application/x-www-form-urlencoded"));
        }
        let url = format!("http://{}{path}", self.addr);
        let resp = request(method, &url, &headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        if let Some(c) = resp.set_cookie() {
            self.cookie = (!c.is_empty()).then_some(c);
        }
        self.seen.push(resp.clone());
        resp
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.send("GET", path, None)
    }

    /// POSTs `fields` (plain values: they are encoded here).
    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.send("POST", path, Some(&form_body(fields)))
    }
}
