//! The PROXY protocol header (HAProxy's `proxy-protocol.txt`, versions 1 and 2), without I/O.
//!
//! A proxy in front of mailgate (HAProxy `send-proxy` / `send-proxy-v2`) writes one header at
//! the start of each connection, naming the client it accepted. [`parse`] looks at the bytes
//! read so far and says either what the header is or how many more bytes may be read *without
//! reading past it* ([`Step::Need`]): the IMAP or SMTP session (or the TLS handshake) starts on
//! the very next byte, and the relay splices sockets, so nothing of it may be swallowed into a
//! buffer here. Version 1 is read up to its CRLF (at most [`V1_MAX`] bytes, as the spec says);
//! version 2 as its 16-byte prefix, then the length it announces (at most [`V2_MAX`] bytes in
//! all: the addresses and a few TLVs, which are skipped).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest version 1 header, CRLF included (the spec's own bound).
pub const V1_MAX: usize = 107;
/// The longest version 2 header accepted, prefix included: the spec leaves up to 64 KiB for
/// TLVs; a proxy sending addresses and a few TLVs needs far less.
pub const V2_MAX: usize = 1024;
/// The shortest valid header (`PROXY UNKNOWN\r\n`; version 2's fixed part is 16): this many
/// bytes may always be read first.
pub const MIN: usize = 15;

/// Version 2's first 12 bytes.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Version 1's first 6 bytes.
const V1_PREFIX: &[u8] = b"PROXY ";

/// Which version of the protocol the header was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// The text header (`send-proxy`).
    V1,
    /// The binary header (`send-proxy-v2`).
    V2,
}

/// Whom the connection is for, as the proxy says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addresses {
    /// No client named: the proxy's own connection (version 2 `LOCAL`, sent by HAProxy's
    /// health checks) or a client it could not describe (version 1 `UNKNOWN`, version 2
    /// `AF_UNSPEC`).
    Unknown,
    /// A TCP client: where it connected from, and the address it connected to (the proxy's).
    Tcp {
        /// The client's address.
        source: SocketAddr,
        /// The address the client connected to.
        destination: SocketAddr,
    },
}

/// A whole header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Its version.
    pub version: Version,
    /// What it says of the client.
    pub addresses: Addresses,
    /// Its length in bytes: the session's bytes start right after.
    pub len: usize,
}

/// What [`parse`] found in the bytes so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Not complete yet: read at most this many more bytes (at least 1); all of them belong
    /// to the header if it is valid.
    Need(usize),
    /// The header, complete.
    Done(Header),
}

/// Why bytes are not a header mailgate accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The connection does not start with `PROXY ` or version 2's signature (a client that
    /// connected directly, or a proxy not set to send the header).
    #[error("no PROXY protocol header at the start of the connection")]
    NotProxy,
    /// No CRLF within 107 bytes (version 1), or a version 2 header longer than mailgate takes.
    #[error("PROXY header too long")]
    TooLong,
    /// The header's fields do not follow the spec (version 1 syntax, addresses, ports; a
    /// version 2 address block too short for its family).
    #[error("malformed PROXY header")]
    Malformed,
    /// A version 2 header of another version, command or family than TCP over IPv4/IPv6.
    #[error("unsupported PROXY header (version, command or address family)")]
    Unsupported,
}

impl HeaderError {
    /// The `reason` label of the refusal metric.
    pub fn label(self) -> &'static str {
        match self {
            HeaderError::NotProxy => "not_proxy",
            HeaderError::TooLong => "too_long",
            HeaderError::Malformed => "malformed",
            HeaderError::Unsupported => "unsupported",
        }
    }
}

/// Looks at `buf`, the connection's first bytes (all of them, as read so far). Fails as soon
/// as the bytes cannot start a valid header.
pub fn parse(buf: &[u8]) -> Result<Step, HeaderError> {
    match buf.first() {
        None => Ok(Step::Need(MIN)),
        Some(b'\r') => v2(buf),
        Some(_) => v1(buf),
    }
}

/// A version 1 header: `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` or `PROXY UNKNOWN ...\r\n`.
fn v1(buf: &[u8]) -> Result<Step, HeaderError> {
    let n = buf.len().min(V1_PREFIX.len());
    if buf[..n] != V1_PREFIX[..n] {
        return Err(HeaderError::NotProxy);
    }
    let Some(lf) = buf.iter().position(|&b| b == b'\n') else {
        if let Some(i) = buf.iter().position(|&b| b == b'\r') {
            if i + 1 < buf.len() {
                return Err(HeaderError::Malformed);
            }
        }
        // The rest holds at least "\r\n", or just "\n" after a CR: never more than that is
        // read, so the byte after the header stays unread.
        let need = if buf.ends_with(b"\r") { 1 } else { 2 };
        let need = need.max(MIN.saturating_sub(buf.len()));
        if buf.len() + need > V1_MAX {
            return Err(HeaderError::TooLong);
        }
        return Ok(Step::Need(need));
    };
    if lf >= V1_MAX {
        return Err(HeaderError::TooLong);
    }
    if lf == 0 || buf[lf - 1] != b'\r' {
        return Err(HeaderError::Malformed);
    }
    let line = &buf[V1_PREFIX.len()..lf - 1];
    Ok(Step::Done(Header {
        version: Version::V1,
        addresses: v1_fields(line)?,
        len: lf + 1,
    }))
}

/// The fields after `PROXY `, without the CRLF.
fn v1_fields(line: &[u8]) -> Result<Addresses, HeaderError> {
    if line == b"UNKNOWN" || line.starts_with(b"UNKNOWN ") {
        // The spec: whatever follows UNKNOWN up to the CRLF is ignored.
        return Ok(Addresses::Unknown);
    }
    let text = std::str::from_utf8(line).map_err(|_| HeaderError::Malformed)?;
    let mut fields = text.split(' ');
    let (Some(family), Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(HeaderError::Malformed);
    };
    let ip = |s: &str| -> Result<IpAddr, HeaderError> {
        match family {
            "TCP4" => s.parse::<Ipv4Addr>().map(IpAddr::V4),
            "TCP6" => s.parse::<Ipv6Addr>().map(IpAddr::V6),
            _ => return Err(HeaderError::Malformed),
        }
        .map_err(|_| HeaderError::Malformed)
    };
    Ok(Addresses::Tcp {
        source: SocketAddr::new(ip(src)?, port(sport)?),
        destination: SocketAddr::new(ip(dst)?, port(dport)?),
    })
}

/// A decimal port: digits only (Rust's parser would take a `+` sign too).
fn port(s: &str) -> Result<u16, HeaderError> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HeaderError::Malformed);
    }
    s.parse().map_err(|_| HeaderError::Malformed)
}

/// A version 2 header: the signature, version and command, family and transport, the length
/// of what follows, then the addresses and TLVs.
fn v2(buf: &[u8]) -> Result<Step, HeaderError> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] != V2_SIGNATURE[..n] {
        return Err(HeaderError::NotProxy);
    }
    if buf.len() < 16 {
        return Ok(Step::Need(16 - buf.len()));
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 || command > 1 {
        return Err(HeaderError::Unsupported);
    }
    let total = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if total > V2_MAX {
        return Err(HeaderError::TooLong);
    }
    if buf.len() < total {
        return Ok(Step::Need(total - buf.len()));
    }
    let block = &buf[16..total];
    let addresses = match (command, buf[13]) {
        // LOCAL: the proxy's own connection; the spec says to ignore the family and block.
        (0, _) | (1, 0x00) => Addresses::Unknown,
        (1, 0x11) => {
            let a = block.get(..12).ok_or(HeaderError::Malformed)?;
            let ip = |at: usize| IpAddr::from([a[at], a[at + 1], a[at + 2], a[at + 3]]);
            Addresses::Tcp {
                source: SocketAddr::new(ip(0), be16(a[8], a[9])),
                destination: SocketAddr::new(ip(4), be16(a[10], a[11])),
            }
        }
        (1, 0x21) => {
            let a = block.get(..36).ok_or(HeaderError::Malformed)?;
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&a[at..at + 16]);
                IpAddr::from(octets)
            };
            Addresses::Tcp {
                source: SocketAddr::new(ip(0), be16(a[32], a[33])),
                destination: SocketAddr::new(ip(16), be16(a[34], a[35])),
            }
        }
        // UDP, UNIX sockets and unknown families: not a TCP client mailgate could name.
        _ => return Err(HeaderError::Unsupported),
    };
    Ok(Step::Done(Header {
        version: Version::V2,
        addresses,
        len: total,
    }))
}

fn be16(hi: u8, lo: u8) -> u16 {
    u16::from_be_bytes([hi, lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` as a reader would: never more than [`parse`] asks for.
    fn drive(bytes: &[u8]) -> (Result<Header, HeaderError>, usize) {
        let mut have = 0;
        loop {
            match parse(&bytes[..have]) {
                Err(e) => return (Err(e), have),
                Ok(Step::Done(h)) => return (Ok(h), have),
                Ok(Step::Need(n)) => {
                    assert!(n >= 1);
                    if have == bytes.len() {
                        return (Err(HeaderError::Malformed), have);
                    }
                    have = (have + n).min(bytes.len());
                }
            }
        }
    }

    fn tcp(source: &str, destination: &str) -> Addresses {
        Addresses::Tcp {
            source: source.parse().unwrap(),
            destination: destination.parse().unwrap(),
        }
    }

    fn v2_header(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&u16::try_from(block.len()).unwrap().to_be_bytes());
        h.extend_from_slice(block);
        h
    }

    #[test]
    fn version_1_is_read_to_its_crlf_and_not_a_byte_further() {
        let line = b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 1143\r\n";
        let mut bytes = line.to_vec();
        bytes.extend_from_slice(b"a1 LOGIN u p\r\n");
        let (h, read) = drive(&bytes);
        let h = h.unwrap();
        assert_eq!(read, line.len());
        assert_eq!(h.len, line.len());
        assert_eq!(h.version, Version::V1);
        assert_eq!(h.addresses, tcp("192.0.2.7:40000", "127.0.0.1:1143"));
        let six = b"PROXY TCP6 2001:db8::7 ::1 65535 993\r\n";
        assert_eq!(
            drive(six).0.unwrap().addresses,
            tcp("[2001:db8::7]:65535", "[::1]:993")
        );
        for unknown in [
            &b"PROXY UNKNOWN\r\n"[..],
            b"PROXY UNKNOWN ::1 ::2 1 2\r\nxyz",
        ] {
            let (h, read) = drive(unknown);
            assert_eq!(h.unwrap().addresses, Addresses::Unknown);
            assert_eq!(&unknown[read - 2..read], b"\r\n");
        }
    }

    #[test]
    fn version_1_errors() {
        let cases: [(&[u8], HeaderError); 13] = [
            (b"a1 LOGIN u p\r\n", HeaderError::NotProxy),
            (b"EHLO client\r\n...", HeaderError::NotProxy),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", HeaderError::Malformed),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX\n",
                HeaderError::Malformed,
            ),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", HeaderError::Malformed),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
                HeaderError::Malformed,
            ),
            (
                b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
                HeaderError::Malformed,
            ),
            (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", HeaderError::Malformed),
            (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", HeaderError::Malformed),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
                HeaderError::Malformed,
            ),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
                HeaderError::Malformed,
            ),
            (
                b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
                HeaderError::Malformed,
            ),
            (b"PROXY UNKNOWNX\r\n", HeaderError::Malformed),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                drive(bytes).0,
                Err(want),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        // 107 bytes at most, CRLF included: refused without reading more than that.
        let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 200]].concat();
        let (r, read) = drive(&long);
        assert_eq!(r, Err(HeaderError::TooLong));
        assert!(read <= V1_MAX, "{read}");
        let mut fits = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 91]].concat();
        fits.extend_from_slice(b"\r\n");
        assert_eq!(fits.len(), V1_MAX);
        assert_eq!(drive(&fits).0.unwrap().len, V1_MAX);
        // Given all at once, too.
        let mut over = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 92]].concat();
        over.extend_from_slice(b"\r\n");
        assert_eq!(parse(&over), Err(HeaderError::TooLong));
        assert_eq!(parse(&fits), Ok(Step::Done(drive(&fits).0.unwrap())));
    }

    #[test]
    fn version_2_reads_the_prefix_then_the_announced_length() {
        let mut block = vec![192, 0, 2, 7, 127, 0, 0, 1, 0x9c, 0x40, 0x04, 0x77];
        // A TLV (PP2_TYPE_AUTHORITY), skipped.
        block.extend_from_slice(&[0x02, 0x00, 0x03, b'a', b'.', b'b']);
        let mut bytes = v2_header(1, 0x11, &block);
        let len = bytes.len();
        bytes.extend_from_slice(b"\x16\x03\x01 TLS hello follows");
        let (h, read) = drive(&bytes);
        let h = h.unwrap();
        assert_eq!((read, h.len, h.version), (len, len, Version::V2));
        assert_eq!(h.addresses, tcp("192.0.2.7:40000", "127.0.0.1:1143"));

        let mut six = [0u8; 36];
        six[15] = 1;
        six[16] = 0x20;
        six[17] = 0x01;
        six[32..36].copy_from_slice(&[0, 80, 1, 187]);
        let h = drive(&v2_header(1, 0x21, &six)).0.unwrap();
        assert_eq!(h.addresses, tcp("[::1]:80", "[2001::]:443"));

        // LOCAL (health checks): whatever the family says, no client.
        let local = drive(&v2_header(0, 0x11, &block)).0.unwrap();
        assert_eq!(local.addresses, Addresses::Unknown);
        let unspec = drive(&v2_header(1, 0x00, &[])).0.unwrap();
        assert_eq!(unspec.addresses, Addresses::Unknown);
    }

    #[test]
    fn version_2_errors() {
        let four = [0u8; 12];
        let mut wrong_version = v2_header(1, 0x11, &four);
        wrong_version[12] = 0x11;
        let cases = [
            (v2_header(1, 0x11, &four[..11]), HeaderError::Malformed),
            (v2_header(1, 0x21, &[0u8; 35]), HeaderError::Malformed),
            (v2_header(1, 0x12, &four), HeaderError::Unsupported),
            (v2_header(1, 0x31, &[0u8; 216]), HeaderError::Unsupported),
            (v2_header(2, 0x11, &four), HeaderError::Unsupported),
            (wrong_version, HeaderError::Unsupported),
            (
                v2_header(1, 0x11, &[0u8; V2_MAX - 15]),
                HeaderError::TooLong,
            ),
            (b"\r\n\r\n\0\r\nQUIX\n".to_vec(), HeaderError::NotProxy),
            (b"\r\nA1 NOOP\r\n".to_vec(), HeaderError::NotProxy),
        ];
        for (bytes, want) in cases {
            assert_eq!(drive(&bytes).0, Err(want), "{bytes:?}");
        }
        // The length is refused from the prefix alone, before anything of the body is read.
        let mut huge = v2_header(1, 0x11, &four);
        huge[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(parse(&huge[..16]), Err(HeaderError::TooLong));
        let fits = v2_header(1, 0x11, &[0u8; V2_MAX - 16]);
        assert_eq!(drive(&fits).0.unwrap().len, V2_MAX);
    }

    #[test]
    fn the_first_read_fits_the_shortest_header() {
        assert_eq!(parse(b""), Ok(Step::Need(MIN)));
        assert_eq!(parse(b"P"), Ok(Step::Need(MIN - 1)));
        assert_eq!(parse(b"\r"), Ok(Step::Need(15)));
    }
}
