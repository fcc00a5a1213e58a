//! A small DNS client: MX, A and AAAA queries over UDP (TCP for a truncated answer), bounded
//! in size, tries and time.
//!
//! Why our own: discovery needs three record types and one thing the system resolver
//! (`getaddrinfo`) cannot do — be pointed at another server, the way nginx's `resolver`
//! directive is (`[server] resolver = "127.0.0.1:5353"`, `--resolver`). hickory-resolver 0.25
//! does that too, but asks no second time without EDNS after a FORMERR, drops what fit in a
//! truncated answer when the server takes no TCP (both below), and adds 59 crates to the build
//! (the README's dependency notes have the measurements). This reads at most one 4 KiB
//! datagram per query and gives up after [`TRIES`] × [`QUERY_TIMEOUT`] per name server.
//!
//! Without an explicit resolver, MX queries go to the `nameserver` lines of /etc/resolv.conf and
//! host names are resolved by the system (`getaddrinfo`, so /etc/hosts still applies). With an
//! explicit resolver every name goes to it, including the upstream connections of `mailgate run`.
//!
//! Queries carry an EDNS(0) record offering answers of up to [`EDNS_PAYLOAD`] bytes (the size
//! DNS flag day 2020 settled on), so a long answer — a CNAME chain with several addresses, as
//! Microsoft's hosts have — is not cut at the old 512 bytes; a server that answers FORMERR to
//! EDNS is asked again without it. A truncated answer (TC bit) is asked again over TCP, as
//! RFC 7766 says a client must: servers such as Unbound and Knot send a truncated answer with
//! no records at all, which read as "no MX" would send discovery to guessing. Only when the
//! server takes no TCP is the part that fit in the datagram used.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long one query waits for its answer.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Queries per name server before the next one is asked.
pub const TRIES: usize = 2;
/// The UDP answer size offered with EDNS(0).
const EDNS_PAYLOAD: u16 = 1232;
/// Largest datagram read ([`EDNS_PAYLOAD`] plus margin for servers that exceed it).
const MAX_DATAGRAM: usize = 4096;
/// Answer records looked at per response.
const MAX_RECORDS: usize = 64;

const TYPE_A: u16 = 1;
const TYPE_MX: u16 = 15;
const TYPE_AAAA: u16 = 28;

/// Why a lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// No name server answered.
    #[error("no answer from the DNS server{} {servers} for {name} ({reason})", if .servers.contains(',') { "s" } else { "" })]
    NoAnswer {
        /// The servers asked, comma-separated.
        servers: String,
        /// The name asked for.
        name: String,
        /// The last failure.
        reason: String,
    },
    /// The server answered with an error code (other than "no such name").
    #[error("DNS server {server} answered {code} for {name}")]
    Failed {
        /// The server.
        server: SocketAddr,
        /// The name asked for.
        name: String,
        /// SERVFAIL, REFUSED, …
        code: &'static str,
    },
    /// The name is not a valid DNS name.
    #[error("`{0}` is not a valid DNS name")]
    BadName(String),
    /// The system resolver failed (no explicit resolver configured).
    #[error("cannot resolve {name}: {reason}")]
    System {
        /// The host name.
        name: String,
        /// The resolver's words.
        reason: String,
    },
}

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    /// Lower preference wins.
    pub preference: u16,
    /// The mail exchanger's host name, lower case, no trailing dot.
    pub host: String,
}

/// Which DNS server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resolver {
    /// /etc/resolv.conf for MX; the system's own lookup for addresses.
    #[default]
    System,
    /// This server for everything.
    At(SocketAddr),
}

/// Parses `ADDR`, `ADDR:PORT` or `[V6]:PORT` (port 53 when left out), like nginx's `resolver`.
pub fn parse_server(text: &str) -> Option<SocketAddr> {
    let t = text.trim();
    if let Ok(sa) = t.parse::<SocketAddr>() {
        return Some(sa);
    }
    let ip = t.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53))
}

/// The `nameserver` lines of a resolv.conf text (port 53); glibc's default 127.0.0.1 if none.
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = resolv_conf
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
                // A scoped IPv6 address (fe80::1%eth0) cannot be used without the scope id.
                .and_then(|w| w.parse::<IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .take(3)
        .collect();
    if out.is_empty() {
        out.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53));
    }
    out
}

impl Resolver {
    /// An explicit server, or the system's.
    pub fn new(server: Option<SocketAddr>) -> Resolver {
        server.map_or(Resolver::System, Resolver::At)
    }

    /// The explicit server, if any.
    pub fn server(&self) -> Option<SocketAddr> {
        match self {
            Resolver::At(a) => Some(*a),
            Resolver::System => None,
        }
    }

    /// For messages: `system` or the address.
    pub fn describe(&self) -> String {
        match self {
            Resolver::System => "the system resolver".into(),
            Resolver::At(a) => format!("the DNS server {a}"),
        }
    }

    fn servers(&self) -> Vec<SocketAddr> {
        match self {
            Resolver::At(a) => vec![*a],
            Resolver::System => {
                nameservers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
            }
        }
    }

    /// MX records of `domain`, best (lowest preference) first; empty when there are none.
    pub async fn mx(&self, domain: &str) -> Result<Vec<Mx>, DnsError> {
        let answers = self.query(domain, TYPE_MX).await?;
        let mut mx: Vec<Mx> = answers
            .into_iter()
            .filter_map(|r| match r {
                Record::Mx(m) => Some(m),
                _ => None,
            })
            .collect();
        mx.sort_by_key(|m| m.preference);
        Ok(mx)
    }

    /// The addresses of `host` with `port` (an IP literal is returned as it is).
    pub async fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, DnsError> {
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        match self {
            Resolver::System => match tokio::net::lookup_host((host, port)).await {
                Ok(a) => Ok(a.collect()),
                Err(e) => Err(DnsError::System {
                    name: host.to_owned(),
                    reason: e.to_string(),
                }),
            },
            Resolver::At(_) => {
                let mut out = Vec::new();
                for qtype in [TYPE_A, TYPE_AAAA] {
                    for r in self.query(host, qtype).await? {
                        match r {
                            Record::A(ip) => out.push(SocketAddr::new(IpAddr::V4(ip), port)),
                            Record::Aaaa(ip) => out.push(SocketAddr::new(IpAddr::V6(ip), port)),
                            Record::Mx(_) => {}
                        }
                    }
                }
                Ok(out)
            }
        }
    }

    /// Asks each server in turn, [`TRIES`] times each; "no such name" is an empty answer.
    async fn query(&self, name: &str, qtype: u16) -> Result<Vec<Record>, DnsError> {
        let servers = self.servers();
        let mut last = String::new();
        for server in &servers {
            // EDNS until this server refuses it (FORMERR), then plain queries.
            let mut edns = true;
            let mut tries = 0;
            while tries < TRIES {
                tries += 1;
                let id: u16 = rand::random();
                let packet = encode_query(id, name, qtype, edns)?;
                let reply = ask(*server, &packet)
                    .await
                    .and_then(|resp| parse_response(&resp, id, qtype));
                let reply = match reply {
                    Ok(Answer::Truncated(partial)) => {
                        // The whole answer over TCP (RFC 7766); what fit in the datagram only
                        // when the server takes no TCP.
                        match ask_tcp(*server, &packet)
                            .await
                            .and_then(|resp| parse_response(&resp, id, qtype))
                        {
                            Err(reason) if !partial.is_empty() => {
                                tracing::debug!(%server, name, %reason, "DNS over TCP failed; using the truncated answer");
                                Ok(Answer::Records(partial))
                            }
                            Err(reason) => {
                                Err(format!("{reason} (over TCP, after a truncated answer)"))
                            }
                            whole => whole,
                        }
                    }
                    other => other,
                };
                match reply {
                    // Over TCP a reply is never cut, whatever its TC bit says.
                    Ok(Answer::Records(r) | Answer::Truncated(r)) => return Ok(r),
                    Ok(Answer::NoSuchName) => return Ok(Vec::new()),
                    Ok(Answer::Error("FORMERR")) if edns => {
                        // An old server that does not know EDNS: the same query without
                        // it, not counted as a try.
                        edns = false;
                        tries -= 1;
                    }
                    Ok(Answer::Error(code)) => {
                        return Err(DnsError::Failed {
                            server: *server,
                            name: name.to_owned(),
                            code,
                        })
                    }
                    // No answer, or one that does not parse or belongs to another query: ask
                    // again.
                    Err(reason) => last = format!("{server}: {reason}"),
                }
            }
        }
        Err(DnsError::NoAnswer {
            servers: servers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            name: name.to_owned(),
            reason: last,
        })
    }
}

/// One datagram out, one datagram back, within [`QUERY_TIMEOUT`].
async fn ask(server: SocketAddr, packet: &[u8]) -> Result<Vec<u8>, String> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    within(async {
        let sock = UdpSocket::bind(local).await?;
        // connect() makes the kernel drop datagrams from any other address.
        sock.connect(server).await?;
        sock.send(packet).await?;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let n = sock.recv(&mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    })
    .await
}

/// The same question over TCP, each message after its two-byte length (RFC 1035 4.2.2), so
/// the answer is at most 64 KiB; within [`QUERY_TIMEOUT`], connecting included.
async fn ask_tcp(server: SocketAddr, packet: &[u8]) -> Result<Vec<u8>, String> {
    within(async {
        let mut stream = TcpStream::connect(server).await?;
        let len = u16::try_from(packet.len()).map_err(std::io::Error::other)?;
        let mut out = Vec::with_capacity(packet.len() + 2);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(packet);
        stream.write_all(&out).await?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut buf).await?;
        Ok(buf)
    })
    .await
}

/// One exchange, given up after [`QUERY_TIMEOUT`].
async fn within(
    exchange: impl std::future::Future<Output = std::io::Result<Vec<u8>>>,
) -> Result<Vec<u8>, String> {
    match tokio::time::timeout(QUERY_TIMEOUT, exchange).await {
        Err(_) => Err(format!("no answer within {} s", QUERY_TIMEOUT.as_secs())),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(b)) => Ok(b),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Record {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Mx(Mx),
}

#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Records(Vec<Record>),
    /// The TC bit: the records that fit (often none); the whole answer needs TCP.
    Truncated(Vec<Record>),
    NoSuchName,
    Error(&'static str),
}

/// A standard query with recursion desired; with `edns`, an OPT record (RFC 6891) in the
/// additional section offers answers of [`EDNS_PAYLOAD`] bytes.
fn encode_query(id: u16, name: &str, qtype: u16, edns: bool) -> Result<Vec<u8>, DnsError> {
    let mut p = Vec::with_capacity(name.len() + 29);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    encode_name(&mut p, name)?;
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    if edns {
        // Root name, type OPT (41), class = payload size, TTL = extended rcode/version/flags 0,
        // no options.
        p.extend_from_slice(&[0, 0, 41]);
        p.extend_from_slice(&EDNS_PAYLOAD.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    Ok(p)
}

fn encode_name(p: &mut Vec<u8>, name: &str) -> Result<(), DnsError> {
    let bad = || DnsError::BadName(name.to_owned());
    let trimmed = name.trim_end_matches('.');
    if trimmed.is_empty() || trimmed.len() > 253 {
        return Err(bad());
    }
    for label in trimmed.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(bad());
        }
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    Ok(())
}

/// Reads the name at `pos` (following compression pointers, at most 64 of them, so a pointer
/// loop ends); returns it and the offset after the name's in-place bytes.
fn read_name(msg: &[u8], mut pos: usize) -> Result<(String, usize), String> {
    let mut name = String::new();
    let mut end = None;
    for _ in 0..64 {
        let len = *msg.get(pos).ok_or("name runs past the end")? as usize;
        match len {
            0 => {
                return Ok((name, end.unwrap_or(pos + 1)));
            }
            l if l & 0xC0 == 0xC0 => {
                let low = *msg.get(pos + 1).ok_or("pointer runs past the end")? as usize;
                end.get_or_insert(pos + 2);
                pos = ((l & 0x3F) << 8) | low;
            }
            l if l <= 63 => {
                let label = msg
                    .get(pos + 1..pos + 1 + l)
                    .ok_or("label runs past the end")?;
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(&String::from_utf8_lossy(label).to_ascii_lowercase());
                if name.len() > 255 {
                    return Err("name longer than 255 bytes".into());
                }
                pos += 1 + l;
            }
            _ => return Err("bad label type".into()),
        }
    }
    Err("too many compression pointers".into())
}

fn u16_at(msg: &[u8], pos: usize) -> Result<u16, String> {
    msg.get(pos..pos + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| "message too short".into())
}

/// What a reply to an A (`qtype` 1), MX (15) or AAAA (28) query with `id` says, as text:
/// each address, `MX <preference> <host>`, or `no such name`. The entry point of the
/// `discovery` fuzz target: these bytes come from the network, so any of them must give an
/// answer or an error, never a panic.
#[doc(hidden)]
pub fn read_reply(msg: &[u8], id: u16, qtype: u16) -> Result<Vec<String>, String> {
    Ok(match parse_response(msg, id, qtype)? {
        Answer::NoSuchName => vec!["no such name".to_owned()],
        Answer::Error(e) => vec![format!("error {e}")],
        Answer::Records(records) | Answer::Truncated(records) => records
            .iter()
            .map(|r| match r {
                Record::A(a) => a.to_string(),
                Record::Aaaa(a) => a.to_string(),
                Record::Mx(m) => format!("MX {} {}", m.preference, m.host),
            })
            .collect(),
    })
}

fn parse_response(msg: &[u8], id: u16, qtype: u16) -> Result<Answer, String> {
    if u16_at(msg, 0)? != id {
        return Err("answer to another query".into());
    }
    let flags = u16_at(msg, 2)?;
    if flags & 0x8000 == 0 {
        return Err("not a response".into());
    }
    match flags & 0x000F {
        0 => {}
        3 => return Ok(Answer::NoSuchName),
        2 => return Ok(Answer::Error("SERVFAIL")),
        5 => return Ok(Answer::Error("REFUSED")),
        1 => return Ok(Answer::Error("FORMERR")),
        _ => return Ok(Answer::Error("an error")),
    }
    let qd = u16_at(msg, 4)?;
    let an = u16_at(msg, 6)? as usize;
    let mut pos = 12;
    for _ in 0..qd {
        pos = read_name(msg, pos)?.1 + 4;
    }
    let mut out = Vec::new();
    let read = read_records(msg, pos, an, qtype, &mut out);
    if flags & 0x0200 != 0 {
        // TC: the message was cut to fit the datagram, possibly inside a record, so a read
        // error past the records kept is expected.
        return Ok(Answer::Truncated(out));
    }
    read?;
    Ok(Answer::Records(out))
}

/// Reads `an` answer records from `pos` into `out` (at most [`MAX_RECORDS`]), keeping the A,
/// AAAA or MX ones `qtype` asked for.
fn read_records(
    msg: &[u8],
    mut pos: usize,
    an: usize,
    qtype: u16,
    out: &mut Vec<Record>,
) -> Result<(), String> {
    for _ in 0..an.min(MAX_RECORDS) {
        let (_, after) = read_name(msg, pos)?;
        let rtype = u16_at(msg, after)?;
        let rdlen = u16_at(msg, after + 8)? as usize;
        let rdata = after + 10;
        let data = msg
            .get(rdata..rdata + rdlen)
            .ok_or("record runs past the end")?;
        match (rtype, rdlen) {
            (TYPE_A, 4) if qtype == TYPE_A => {
                out.push(Record::A(Ipv4Addr::new(data[0], data[1], data[2], data[3])))
            }
            (TYPE_AAAA, 16) if qtype == TYPE_AAAA => {
                let mut b = [0u8; 16];
                b.copy_from_slice(data);
                out.push(Record::Aaaa(Ipv6Addr::from(b)));
            }
            (TYPE_MX, l) if l >= 3 && qtype == TYPE_MX => {
                let preference = u16_at(msg, rdata)?;
                let (host, _) = read_name(msg, rdata + 2)?;
                // Only a usable host name is kept: any other bytes a resolver sends would only
                // end up, unescaped, in a note or a log line.
                let usable = !host.is_empty()
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
                if usable {
                    out.push(Record::Mx(Mx { preference, host }));
                }
            }
            // CNAMEs and anything else: the resolver already followed the chain.
            _ => {}
        }
        pos = rdata + rdlen;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(
        id: u16,
        rcode: u8,
        qname: &str,
        qtype: u16,
        answers: &[(u16, Vec<u8>)],
    ) -> Vec<u8> {
        let mut m = encode_query(id, qname, qtype, false).unwrap();
        m[2] = 0x81;
        m[3] = 0x80 | rcode;
        m[7] = answers.len() as u8;
        for (t, data) in answers {
            m.extend_from_slice(&[0xC0, 12]); // pointer to the question's name
            m.extend_from_slice(&t.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            m.extend_from_slice(&(data.len() as u16).to_be_bytes());
            m.extend_from_slice(data);
        }
        m
    }

    #[test]
    fn parses_mx_a_and_aaaa_with_compression() {
        // MX 10 aspmx.l.google.com, then MX 5 "alt1." + pointer to the first exchange's "l.google.com".
        let mut first = vec![0, 10];
        encode_name(&mut first, "aspmx.l.google.com").unwrap();
        let msg = response(7, 0, "example.no", TYPE_MX, &[(TYPE_MX, first)]);
        // The first exchange's "l.google.com" starts 6 bytes after its "aspmx" length byte.
        let first_name_at = msg.windows(5).position(|w| w == b"aspmx").unwrap() - 1;
        let mut second = vec![0, 5, 4];
        second.extend_from_slice(b"alt1");
        second.extend_from_slice(&[0xC0, (first_name_at + 6) as u8]);
        let mut msg2 = msg.clone();
        msg2[7] = 2;
        msg2.extend_from_slice(&[0xC0, 12, 0, 15, 0, 1, 0, 0, 0, 60, 0, second.len() as u8]);
        msg2.extend_from_slice(&second);
        let Answer::Records(r) = parse_response(&msg2, 7, TYPE_MX).unwrap() else {
            panic!()
        };
        assert_eq!(
            r,
            vec![
                Record::Mx(Mx {
                    preference: 10,
                    host: "aspmx.l.google.com".into()
                }),
                Record::Mx(Mx {
                    preference: 5,
                    host: "alt1.l.google.com".into()
                }),
            ]
        );
        let a = response(
            9,
            0,
            "imap.example.test",
            TYPE_A,
            &[(TYPE_A, vec![127, 0, 3, 4])],
        );
        assert_eq!(
            parse_response(&a, 9, TYPE_A).unwrap(),
            Answer::Records(vec![Record::A(Ipv4Addr::new(127, 0, 3, 4))])
        );
        let mut v6 = vec![0u8; 16];
        v6[15] = 1;
        let aaaa = response(9, 0, "x.test", TYPE_AAAA, &[(TYPE_AAAA, v6)]);
        assert_eq!(
            parse_response(&aaaa, 9, TYPE_AAAA).unwrap(),
            Answer::Records(vec![Record::Aaaa(Ipv6Addr::LOCALHOST)])
        );
    }

    #[test]
    fn errors_and_hostile_answers() {
        let nx = response(1, 3, "nope.test", TYPE_MX, &[]);
        assert_eq!(parse_response(&nx, 1, TYPE_MX).unwrap(), Answer::NoSuchName);
        let sf = response(1, 2, "x.test", TYPE_MX, &[]);
        assert_eq!(
            parse_response(&sf, 1, TYPE_MX).unwrap(),
            Answer::Error("SERVFAIL")
        );
        assert!(parse_response(&nx, 2, TYPE_MX).is_err());
        // A pointer to itself loops; it must end with an error, not hang.
        let mut looped = response(1, 0, "x.test", TYPE_A, &[(TYPE_A, vec![1, 2, 3, 4])]);
        let at = looped.len() - 4 - 10 - 2;
        looped[at] = 0xC0;
        looped[at + 1] = at as u8;
        assert!(parse_response(&looped, 1, TYPE_A).is_err());
        let short = response(1, 0, "x.test", TYPE_A, &[(TYPE_A, vec![1, 2, 3, 4])]);
        for cut in 0..short.len() {
            let _ = parse_response(&short[..cut], 1, TYPE_A);
        }
        // An exchange whose name has a control character or a space is left out; the usable
        // one next to it stays.
        let mut odd = vec![0, 10, 6];
        odd.extend_from_slice(b"a\x1b[2Jb");
        odd.push(0);
        let mut spaced = vec![0, 20, 3];
        spaced.extend_from_slice(b"a b");
        spaced.push(0);
        let mut fine = vec![0, 30];
        encode_name(&mut fine, "mx.example.test").unwrap();
        let mixed = response(
            4,
            0,
            "x.test",
            TYPE_MX,
            &[(TYPE_MX, odd), (TYPE_MX, spaced), (TYPE_MX, fine)],
        );
        assert_eq!(
            read_reply(&mixed, 4, TYPE_MX).unwrap(),
            ["MX 30 mx.example.test"]
        );
        assert!(encode_query(1, "bad name.test", TYPE_A, true).is_err());
        assert!(encode_query(1, &"a".repeat(64), TYPE_A, true).is_err());
    }

    /// Queries offer EDNS(0); a server that answers FORMERR to it is asked again without it
    /// (a stand-in on loopback that knows no EDNS, as some old servers and middleboxes).
    #[tokio::test]
    async fn edns_offered_and_dropped_for_a_server_without_it() {
        let q = encode_query(5, "x.test", TYPE_A, true).unwrap();
        assert_eq!(&q[10..12], &[0, 1], "one additional record");
        assert_eq!(&q[q.len() - 11..], &[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]);

        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server = sock.local_addr().unwrap();
        let stand_in = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut buf = [0u8; 512];
            for _ in 0..2 {
                let (n, peer) = sock.recv_from(&mut buf).await.unwrap();
                let query = &buf[..n];
                let with_edns = query[11] == 1;
                seen.push(with_edns);
                // The question ends 4 bytes after its name; an OPT record follows with EDNS.
                let question_end = n - if with_edns { 11 } else { 0 };
                let mut reply = query[..question_end].to_vec();
                reply[2] = 0x81;
                reply[11] = 0; // no additional record in the reply
                if with_edns {
                    reply[3] = 0x81; // FORMERR
                } else {
                    reply[3] = 0x80;
                    reply[7] = 1;
                    reply.extend_from_slice(&[
                        0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 9, 9,
                    ]);
                }
                sock.send_to(&reply, peer).await.unwrap();
            }
            seen
        });
        let found = Resolver::At(server).query("x.test", TYPE_A).await;
        assert_eq!(found.unwrap(), vec![Record::A(Ipv4Addr::new(127, 0, 9, 9))]);
        assert_eq!(stand_in.await.unwrap(), [true, false]);
    }

    /// A truncated answer cut inside its second record keeps the first; a server that takes no
    /// TCP (nothing listens on its TCP port here) leaves that part in use, and with nothing in
    /// the part the failure names TCP.
    #[tokio::test]
    async fn truncated_answer_without_tcp_uses_what_fit() {
        let mut cut = response(
            3,
            0,
            "x.test",
            TYPE_A,
            &[(TYPE_A, vec![127, 0, 9, 1]), (TYPE_A, vec![127, 0, 9, 2])],
        );
        cut[2] |= 0x02; // TC
        cut.truncate(cut.len() - 3);
        assert_eq!(
            parse_response(&cut, 3, TYPE_A).unwrap(),
            Answer::Truncated(vec![Record::A(Ipv4Addr::new(127, 0, 9, 1))])
        );
        let mut whole_but_cut = cut.clone();
        whole_but_cut[2] &= !0x02;
        assert!(parse_response(&whole_but_cut, 3, TYPE_A).is_err());

        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server = sock.local_addr().unwrap();
        let stand_in = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            // The first name: TC with the one record that fit. The second name: TC and an
            // empty answer section, to each of its [`TRIES`] queries.
            for records in std::iter::once(1u8).chain([0].repeat(TRIES)) {
                let (n, peer) = sock.recv_from(&mut buf).await.unwrap();
                let end = n - 11; // without the OPT record
                let mut reply = buf[..end].to_vec();
                reply[2] = 0x83; // response, TC, RD
                reply[3] = 0x80;
                reply[7] = records;
                reply[11] = 0;
                if records == 1 {
                    reply.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                    reply.extend_from_slice(&[127, 0, 9, 7]);
                }
                sock.send_to(&reply, peer).await.unwrap();
            }
        });
        let found = Resolver::At(server).query("x.test", TYPE_A).await;
        assert_eq!(found.unwrap(), vec![Record::A(Ipv4Addr::new(127, 0, 9, 7))]);
        let failed = Resolver::At(server).query("y.test", TYPE_A).await;
        let text = failed.unwrap_err().to_string();
        assert!(
            text.contains("over TCP, after a truncated answer"),
            "{text}"
        );
        stand_in.await.unwrap();
    }

    #[test]
    fn resolver_addresses() {
        assert_eq!(
            parse_server("127.0.0.1:5353"),
            Some("127.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(
            parse_server("10.0.0.1"),
            Some("10.0.0.1:53".parse().unwrap())
        );
        assert_eq!(parse_server("[::1]"), Some("[::1]:53".parse().unwrap()));
        assert_eq!(parse_server("dns.example"), None);
        assert_eq!(
            nameservers("# c\nnameserver 10.255.255.53\nnameserver fe80::1%eth0\nsearch x\n"),
            vec!["10.255.255.53:53".parse().unwrap()]
        );
        assert_eq!(nameservers(""), vec!["127.0.0.1:53".parse().unwrap()]);
    }
}
