//! A plain HTTP/1.1 client for the connect page's tests: one request per connection
//! (`Connection: close`), std sockets, bounded in time; plus [`WebSession`], which keeps the
//! session cookie and language and reads the CSRF token from the last page.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

/// One answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// The first header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of the session cookie this reply sets, if any (empty when it ends it).
    pub fn set_cookie(&self) -> Option<String> {
        let v = self.header("set-cookie")?;
        let first = v.split(';').next()?;
        first.strip_prefix("mailgate_session=").map(str::to_owned)
    }

    /// The `value` of the hidden `csrf` field, if the page has a form.
    pub fn csrf(&self) -> Option<String> {
        let at = self.body.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
        self.body[at..].split('"').next().map(str::to_owned)
    }
}

/// Sends one request; `headers` are extra lines (`Name: value`).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[String],
    body: Option<&str>,
) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect to the web listener");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if let Some(b) = body {
        head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    head.push_str(body.unwrap_or_default());
    s.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the reply");
    parse(&raw)
}

fn parse(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a reply head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A browser stand-in: a cookie, a language, every reply kept.
pub struct WebSession {
    pub addr: SocketAddr,
    pub cookie: Option<String>,
    pub language: Option<String>,
    /// Every reply so far (for the "no secret on any page" check).
    pub seen: Vec<Reply>,
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

    fn headers(&self) -> Vec<String> {
        let mut h = Vec::new();
        if let Some(c) = &self.cookie {
            h.push(format!("Cookie: mailgate_session={c}"));
        }
        if let Some(l) = &self.language {
            h.push(format!("Accept-Language: {l}"));
        }
        h
    }

    fn keep(&mut self, reply: Reply) -> Reply {
        if let Some(c) = reply.set_cookie() {
            self.cookie = (!c.is_empty()).then_some(c);
        }
        self.seen.push(reply.clone());
        reply
    }

    pub fn get(&mut self, path: &str) -> Reply {
        let reply = request(self.addr, "GET", path, &self.headers(), None);
        self.keep(reply)
    }

    /// POSTs `fields` (already encoded values are encoded again: give them plain).
    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", super::idp::pct_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let reply = request(self.addr, "POST", path, &self.headers(), Some(&body));
        self.keep(reply)
    }
}
