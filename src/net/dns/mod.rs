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

mod message;
mod transport;

pub use message::read_reply;
use message::{
    encode_query, parse_response, Answer, BadReply, Rcode, Record, TYPE_A, TYPE_AAAA, TYPE_MX,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use transport::{ask, ask_tcp};

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

/// Why one exchange with one server gave nothing usable: the query is asked again (or the
/// next server), and the last one is the reason [`DnsError::NoAnswer`] gives.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("no answer within {0} s")]
    Silent(u64),
    #[error("{0}")]
    Io(std::io::Error),
    #[error("{0}")]
    Malformed(#[from] BadReply),
    #[error("{0} (over TCP, after a truncated answer)")]
    AfterTruncation(Box<Failure>),
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
                    .and_then(|resp| Ok(parse_response(&resp, id, qtype)?));
                let reply = match reply {
                    Ok(Answer::Truncated(partial)) => {
                        // The whole answer over TCP (RFC 7766); what fit in the datagram only
                        // when the server takes no TCP.
                        match ask_tcp(*server, &packet)
                            .await
                            .and_then(|resp| Ok(parse_response(&resp, id, qtype)?))
                        {
                            Err(reason) if !partial.is_empty() => {
                                tracing::debug!(%server, name, %reason, "DNS over TCP failed; using the truncated answer");
                                Ok(Answer::Records(partial))
                            }
                            Err(reason) => Err(Failure::AfterTruncation(Box::new(reason))),
                            whole => whole,
                        }
                    }
                    other => other,
                };
                match reply {
                    // Over TCP a reply is never cut, whatever its TC bit says.
                    Ok(Answer::Records(r) | Answer::Truncated(r)) => return Ok(r),
                    Ok(Answer::NoSuchName) => return Ok(Vec::new()),
                    Ok(Answer::Error(Rcode::FormErr)) if edns => {
                        // An old server that does not know EDNS: the same query without
                        // it, not counted as a try.
                        edns = false;
                        tries -= 1;
                    }
                    Ok(Answer::Error(code)) => {
                        return Err(DnsError::Failed {
                            server: *server,
                            name: name.to_owned(),
                            code: code.name(),
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

#[cfg(test)]
mod tests {
    use super::message::encode_name;
    use super::*;
    use std::net::Ipv6Addr;
    use tokio::net::UdpSocket;

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
            Answer::Error(Rcode::ServFail)
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
