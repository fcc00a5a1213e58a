//! Scraping `/metrics` and reading the Prometheus text exposition format (0.0.4), for the
//! tests that assert on mailgate's metrics (tests/metrics.rs for IMAP, tests/smtp.rs for SMTP):
//! a minimal HTTP GET, a parser, exact lookups by name and label set, and the check that every
//! series is documented in the README's metric table with bounded label values.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Upper bound on one `/metrics` response.
const MAX_SCRAPE: u64 = 4 * 1024 * 1024;

// Metric names, spelled out here rather than taken from `mailgate::metrics`, so that a rename
// in the code shows up as a failing test (and a README table that no longer matches).
pub const SESSIONS_TOTAL: &str = "mailgate_sessions_total";
pub const SESSIONS_ACTIVE: &str = "mailgate_sessions_active";
pub const SESSIONS_REFUSED: &str = "mailgate_sessions_refused_total";
pub const LOGINS: &str = "mailgate_logins_total";
pub const CONNECT_SECONDS: &str = "mailgate_upstream_connect_seconds";
pub const UPSTREAM_ERRORS: &str = "mailgate_upstream_errors_total";
pub const BYTES: &str = "mailgate_bytes_total";
pub const IMAP_COMMANDS: &str = "mailgate_imap_commands_total";
pub const CONFIG_RELOADS: &str = "mailgate_config_reloads_total";
pub const BUILD_INFO: &str = "mailgate_build_info";
pub const ACCOUNT_LOGINS: &str = "mailgate_account_logins_total";
pub const ACCOUNT_BYTES: &str = "mailgate_account_bytes_total";
pub const SMTP_MESSAGES: &str = "mailgate_smtp_messages_total";
pub const SMTP_MESSAGE_BYTES: &str = "mailgate_smtp_message_bytes";

/// The label values the README allows, by label name.
pub const PROTOCOLS: &[&str] = &["imap", "smtp"];
pub const LOGIN_RESULTS: &[&str] = &[
    "ok",
    "bad_password",
    "unknown_user",
    "upstream_auth_failed",
    "upstream_unavailable",
    "throttled",
];
pub const ERROR_KINDS: &[&str] = &[
    "dns", "connect", "tls", "tls_mode", "timeout", "protocol", "auth", "oauth",
];
pub const DIRECTIONS: &[&str] = &["client_to_upstream", "upstream_to_client"];
pub const RELOAD_RESULTS: &[&str] = &["ok", "error"];
/// `mailgate_smtp_messages_total`'s `result`.
pub const SMTP_RESULTS: &[&str] = &["ok", "rejected", "deferred", "too_big"];
/// The IMAP command names counted by name; anything else is `other`.
pub const KNOWN_COMMANDS: &[&str] = mailgate::metrics::IMAP_COMMANDS;

/// A sample's labels, sorted by name.
pub type Labels = Vec<(String, String)>;
/// `# TYPE` lines: metric family → counter | gauge | histogram | summary | untyped.
pub type Types = BTreeMap<String, String>;
/// Samples by (name, labels sorted by name).
pub type Samples = BTreeMap<(String, Labels), f64>;

/// One parsed `/metrics` response: samples keyed by (name, labels sorted by name).
pub struct Scrape {
    pub body: String,
    pub types: Types,
    pub samples: Samples,
}

impl Scrape {
    /// Parses a `/metrics` body.
    pub fn parse(body: String) -> Result<Scrape, String> {
        parse_exposition(&body).map(|(types, samples)| Scrape {
            body,
            types,
            samples,
        })
    }

    /// The sample with exactly these labels.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut key: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        key.sort();
        self.samples.get(&(name.to_string(), key)).copied()
    }

    /// The sample's value; a counter that was never touched is absent, which reads as 0.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// Asserts the sample exists (unless `want` is 0) and equals `want`.
    #[track_caller]
    pub fn expect(&self, name: &str, labels: &[(&str, &str)], want: f64) {
        let got = self.get(name, labels);
        let ok = match got {
            Some(v) => v == want,
            None => want == 0.0,
        };
        assert!(
            ok,
            "{name}{} = {got:?}, want {want}\nscrape:\n{}",
            format_labels(labels),
            self.body
        );
    }

    /// Asserts every sample of `name` outside `allowed` (exact label sets) is 0.
    #[track_caller]
    pub fn expect_only_nonzero(&self, name: &str, allowed: &[&[(&str, &str)]]) {
        let allowed: Vec<Labels> = allowed
            .iter()
            .map(|labels| {
                let mut l: Labels = labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                l.sort();
                l
            })
            .collect();
        for (labels, value) in self.series(name) {
            assert!(
                value == 0.0 || allowed.contains(labels),
                "unexpected {name}{labels:?} = {value}\nscrape:\n{}",
                self.body
            );
        }
    }

    /// Every sample named exactly `name`.
    pub fn series(&self, name: &str) -> Vec<(&Labels, f64)> {
        self.samples
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, labels), v)| (labels, *v))
            .collect()
    }

    /// A histogram's `_bucket` samples with these other labels, as (le, count) sorted by le.
    pub fn buckets(&self, name: &str, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
        let bucket = format!("{name}_bucket");
        let mut out: Vec<(f64, f64)> = self
            .series(&bucket)
            .into_iter()
            .filter(|(l, _)| {
                l.len() == labels.len() + 1 && labels.iter().all(|(k, v)| label(l, k) == Some(*v))
            })
            .map(|(l, v)| {
                let le = label(l, "le")
                    .unwrap_or_else(|| panic!("{bucket} without le: {l:?}"))
                    .to_string();
                let le = parse_value(&le).unwrap_or_else(|| panic!("le={le:?}"));
                (le, v)
            })
            .collect();
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }
}

pub fn label<'a>(labels: &'a Labels, name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub fn format_labels(labels: &[(&str, &str)]) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", inner.join(","))
}

/// GET /metrics: the body of a 200 response with a `text/plain` content type.
pub fn fetch(addr: SocketAddr) -> Result<String, String> {
    let HttpResponse {
        status,
        headers,
        body,
    } = http_get(addr, "/metrics").map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("HTTP {status}: {body}"));
    }
    let content_type = headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    if !content_type.starts_with("text/plain") {
        return Err(format!("content-type {content_type:?}"));
    }
    Ok(body)
}

/// A minimal HTTP/1.1 GET over a std TcpStream (`Connection: close`, so the body ends at
/// EOF; chunked and Content-Length bodies are both handled). Bounded in size and time.
pub fn http_get(addr: SocketAddr, path: &str) -> io::Result<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    (&mut stream).take(MAX_SCRAPE).read_to_end(&mut raw)?;
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of the HTTP header"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(&format!("status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    } else if let Some(len) = header("content-length") {
        let len: usize = len.parse().map_err(|_| bad("content-length"))?;
        if body.len() < len {
            return Err(bad(&format!("body {} of {len} bytes", body.len())));
        }
        body.truncate(len);
    }
    let body = String::from_utf8(body).map_err(|_| bad("body is not UTF-8"))?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

pub struct HttpResponse {
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let nl = data.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&data[..nl]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        data = &data[nl + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
    None
}

/// Parses the Prometheus text format (0.0.4): `# TYPE` lines, and samples
/// `name{label="value",...} value [timestamp]` with `\\`, `\"`, `\n` escapes in values.
/// Duplicate series are an error.
pub fn parse_exposition(body: &str) -> Result<(Types, Samples), String> {
    let mut types = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for (n, line) in body.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                types.insert(name.to_string(), kind.to_string());
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (name, mut labels, value) = parse_sample(line)
            .ok_or_else(|| format!("line {}: cannot parse {line:?}\n{body}", n + 1))?;
        labels.sort();
        let key = (name, labels);
        if samples.contains_key(&key) {
            return Err(format!("line {}: duplicate series {key:?}\n{body}", n + 1));
        }
        samples.insert(key, value);
    }
    Ok((types, samples))
}

fn parse_sample(line: &str) -> Option<(String, Labels, f64)> {
    let b = line.as_bytes();
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let name_ok = !name.is_empty()
        && !name.as_bytes()[0].is_ascii_digit()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':');
    if !name_ok {
        return None;
    }
    let mut i = name_end;
    let mut labels = Vec::new();
    if b[i] == b'{' {
        i += 1;
        loop {
            while b.get(i) == Some(&b' ') || b.get(i) == Some(&b',') {
                i += 1;
            }
            if *b.get(i)? == b'}' {
                i += 1;
                break;
            }
            let eq = i + line.get(i..)?.find('=')?;
            let key = line[i..eq].trim().to_string();
            i = eq + 1;
            if *b.get(i)? != b'"' {
                return None;
            }
            i += 1;
            let mut value = Vec::new();
            loop {
                match *b.get(i)? {
                    b'\\' => {
                        value.push(match *b.get(i + 1)? {
                            b'n' => b'\n',
                            c => c,
                        });
                        i += 2;
                    }
                    b'"' => {
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
            labels.push((key, String::from_utf8(value).ok()?));
        }
    }
    let value = parse_value(line.get(i..)?.split_whitespace().next()?)?;
    Some((name.to_string(), labels, value))
}

pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// The metric table of README.md: name → label names (the operator's reference).
pub fn documented_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = fs::read_to_string(&path).expect("read README.md");
    let mut out = BTreeMap::new();
    for line in readme.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `name` | type | `label`, `label` | meaning |, with `—` for "no labels".
        if cells.len() < 5 || !cells[1].starts_with("`mailgate_") {
            continue;
        }
        let name = cells[1].trim_matches('`').to_string();
        let labels = cells[3]
            .split(',')
            .map(|l| l.trim().trim_matches('`').to_string())
            .filter(|l| !l.is_empty() && !matches!(l.as_str(), "—" | "-"))
            .collect();
        out.insert(name, labels);
    }
    assert!(
        out.contains_key(SESSIONS_TOTAL),
        "no metric table in README.md"
    );
    out
}

/// Every series is documented in the README's metric table with exactly its label names
/// (plus `le` on histogram buckets), and every label value comes from a fixed set: the
/// documented values, known command names, the crate version, or a configured `account`.
pub fn assert_bounded(s: &Scrape, accounts: &[&str]) {
    let documented = documented_metrics();
    for ((name, labels), value) in &s.samples {
        let family = if documented.contains_key(name.as_str()) {
            name.as_str()
        } else {
            ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|suffix| name.strip_suffix(suffix))
                .find(|base| {
                    documented.contains_key(*base)
                        && s.types.get(*base).map(String::as_str) == Some("histogram")
                })
                .unwrap_or_else(|| {
                    panic!(
                        "{name} is not in the README's metric table\nscrape:\n{}",
                        s.body
                    )
                })
        };
        let mut want = documented[family].clone();
        if name.ends_with("_bucket") && family != name {
            want.insert("le".to_string());
        }
        let got: BTreeSet<String> = labels.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(got, want, "label names of {name} (README: {family})");
        for (key, v) in labels {
            let v = v.as_str();
            let allowed = match (family, key.as_str()) {
                (_, "protocol") => PROTOCOLS.contains(&v),
                (CONFIG_RELOADS, "result") => RELOAD_RESULTS.contains(&v),
                (LOGINS | ACCOUNT_LOGINS, "result") => LOGIN_RESULTS.contains(&v),
                (SMTP_MESSAGES, "result") => SMTP_RESULTS.contains(&v),
                (_, "kind") => ERROR_KINDS.contains(&v),
                (_, "direction") => DIRECTIONS.contains(&v),
                (_, "command") => v == "other" || KNOWN_COMMANDS.contains(&v),
                (_, "version") => v == env!("CARGO_PKG_VERSION"),
                (_, "account") => accounts.contains(&v),
                (_, "le") => parse_value(v).is_some(),
                // A documented metric these tests do not know yet (OAuth): its values are
                // not checked here, but they must stay short words.
                _ => v.len() <= 40 && v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'),
            };
            assert!(
                allowed,
                "{name}: label {key}={v:?} is outside its fixed set (value {value})\nscrape:\n{}",
                s.body
            );
        }
    }
}
