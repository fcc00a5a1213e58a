//! DNS messages as bytes (RFC 1035 4.1): the query written, the reply read within its own
//! length, with compression pointers followed a bounded number of times.

use super::{DnsError, Mx, EDNS_PAYLOAD, MAX_RECORDS};
use std::net::{Ipv4Addr, Ipv6Addr};

/// What is wrong with a reply's bytes (the query is asked again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadReply(pub &'static str);

/// Record types asked for (RFC 1035 3.2.2, RFC 3596).
pub(super) const TYPE_A: u16 = 1;
pub(super) const TYPE_MX: u16 = 15;
pub(super) const TYPE_AAAA: u16 = 28;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Record {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Mx(Mx),
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Answer {
    Records(Vec<Record>),
    /// The TC bit: the records that fit (often none); the whole answer needs TCP.
    Truncated(Vec<Record>),
    NoSuchName,
    Error(Rcode),
}

/// An error code of a reply other than "no such name" (RFC 1035 4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rcode {
    /// The server did not understand the query (an old one, refusing EDNS).
    FormErr,
    ServFail,
    Refused,
    Other,
}

impl Rcode {
    /// The code's name, for messages.
    pub(super) fn name(self) -> &'static str {
        match self {
            Rcode::FormErr => "FORMERR",
            Rcode::ServFail => "SERVFAIL",
            Rcode::Refused => "REFUSED",
            Rcode::Other => "an error",
        }
    }
}

/// A standard query with recursion desired; with `edns`, an OPT record (RFC 6891) in the
/// additional section offers answers of [`EDNS_PAYLOAD`] bytes.
pub(super) fn encode_query(
    id: u16,
    name: &str,
    qtype: u16,
    edns: bool,
) -> Result<Vec<u8>, DnsError> {
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

pub(super) fn encode_name(p: &mut Vec<u8>, name: &str) -> Result<(), DnsError> {
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
fn read_name(msg: &[u8], mut pos: usize) -> Result<(String, usize), BadReply> {
    let mut name = String::new();
    let mut end = None;
    for _ in 0..64 {
        let len = *msg.get(pos).ok_or(BadReply("name runs past the end"))? as usize;
        match len {
            0 => {
                return Ok((name, end.unwrap_or(pos + 1)));
            }
            l if l & 0xC0 == 0xC0 => {
                let low =
                    *msg.get(pos + 1)
                        .ok_or(BadReply("pointer runs past the end"))? as usize;
                end.get_or_insert(pos + 2);
                pos = ((l & 0x3F) << 8) | low;
            }
            l if l <= 63 => {
                let label = msg
                    .get(pos + 1..pos + 1 + l)
                    .ok_or(BadReply("label runs past the end"))?;
                if !name.is_empty() {
                    name.push('.');
                }
                name.push_str(&String::from_utf8_lossy(label).to_ascii_lowercase());
                if name.len() > 255 {
                    return Err(BadReply("name longer than 255 bytes"));
                }
                pos += 1 + l;
            }
            _ => return Err(BadReply("bad label type")),
        }
    }
    Err(BadReply("too many compression pointers"))
}

fn u16_at(msg: &[u8], pos: usize) -> Result<u16, BadReply> {
    msg.get(pos..pos + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or(BadReply("message too short"))
}

/// What a reply to an A (`qtype` 1), MX (15) or AAAA (28) query with `id` says, as text:
/// each address, `MX <preference> <host>`, or `no such name`. The entry point of the
/// `discovery` fuzz target: these bytes come from the network, so any of them must give an
/// answer or an error, never a panic.
#[doc(hidden)]
pub fn read_reply(msg: &[u8], id: u16, qtype: u16) -> Result<Vec<String>, BadReply> {
    Ok(match parse_response(msg, id, qtype)? {
        Answer::NoSuchName => vec!["no such name".to_owned()],
        Answer::Error(e) => vec![format!("error {}", e.name())],
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

pub(super) fn parse_response(msg: &[u8], id: u16, qtype: u16) -> Result<Answer, BadReply> {
    if u16_at(msg, 0)? != id {
        return Err(BadReply("answer to another query"));
    }
    let flags = u16_at(msg, 2)?;
    if flags & 0x8000 == 0 {
        return Err(BadReply("not a response"));
    }
    match flags & 0x000F {
        0 => {}
        3 => return Ok(Answer::NoSuchName),
        2 => return Ok(Answer::Error(Rcode::ServFail)),
        5 => return Ok(Answer::Error(Rcode::Refused)),
        1 => return Ok(Answer::Error(Rcode::FormErr)),
        _ => return Ok(Answer::Error(Rcode::Other)),
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
) -> Result<(), BadReply> {
    for _ in 0..an.min(MAX_RECORDS) {
        let (_, after) = read_name(msg, pos)?;
        let rtype = u16_at(msg, after)?;
        let rdlen = u16_at(msg, after + 8)? as usize;
        let rdata = after + 10;
        let data = msg
            .get(rdata..rdata + rdlen)
            .ok_or(BadReply("record runs past the end"))?;
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
