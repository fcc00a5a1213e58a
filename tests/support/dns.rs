//! A tiny DNS responder for discovery tests: answers A, AAAA and MX questions over UDP and
//! TCP on 127.0.0.1 (the same port) from a fixed table, "no such name" for names it does not
//! know. It stands in for the internet's DNS (this machine has none), which the test rules
//! allow for discovery. Like Unbound and Knot, an answer larger than the datagram the query
//! offers (512 bytes, or its EDNS size) goes out over UDP truncated — TC set, no records — and
//! whole over TCP.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// One record the responder knows.
#[derive(Clone, Debug)]
pub enum Rec {
    /// An address (A for IPv4, AAAA for IPv6).
    Addr(IpAddr),
    /// An MX record: preference and exchange.
    Mx(u16, String),
}

pub struct DnsServer {
    pub addr: SocketAddr,
    records: Arc<Mutex<HashMap<String, Vec<Rec>>>>,
    queries: Arc<Mutex<Vec<String>>>,
    /// While set, answers are kept back (see [`DnsServer::hold`]).
    held: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// What both transports share.
#[derive(Clone)]
struct Table {
    records: Arc<Mutex<HashMap<String, Vec<Rec>>>>,
    queries: Arc<Mutex<Vec<String>>>,
}

impl Table {
    /// The whole answer to one query, noting the question (with " over TCP" for TCP).
    fn respond(&self, query: &[u8], tcp: bool) -> Option<Vec<u8>> {
        let (id, name, qtype, question) = parse_question(query)?;
        let over = if tcp { " over TCP" } else { "" };
        self.queries
            .lock()
            .unwrap()
            .push(format!("{name} {}{over}", type_name(qtype)));
        let recs = self.records.lock().unwrap().get(&name).cloned();
        Some(answer(id, &question, qtype, recs.as_deref()))
    }
}

impl DnsServer {
    pub fn start(records: &[(&str, Rec)]) -> DnsServer {
        // The TCP listener needs the UDP socket's port, which another test may hold for TCP:
        // then try another port (bounded).
        let (sock, addr, listener) = (0..50)
            .find_map(|_| {
                let sock = UdpSocket::bind("127.0.0.1:0").expect("bind dns");
                let addr = sock.local_addr().expect("dns addr");
                let listener = TcpListener::bind(addr).ok()?;
                Some((sock, addr, listener))
            })
            .expect("bind dns over UDP and TCP on one port");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        listener.set_nonblocking(true).expect("nonblocking");
        let mut map: HashMap<String, Vec<Rec>> = HashMap::new();
        for (name, rec) in records {
            map.entry(name.to_ascii_lowercase())
                .or_default()
                .push(rec.clone());
        }
        let table = Table {
            records: Arc::new(Mutex::new(map)),
            queries: Arc::new(Mutex::new(Vec::new())),
        };
        let held = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let udp = {
            let (table, held, stop) = (table.clone(), held.clone(), stop.clone());
            thread::spawn(move || {
                let mut buf = [0u8; 512];
                // Answers kept back while held, sent (late) once released.
                let mut kept: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    if !held.load(Ordering::SeqCst) {
                        for (reply, peer) in kept.drain(..) {
                            let _ = sock.send_to(&reply, peer);
                        }
                    }
                    let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                        continue;
                    };
                    let Some(mut reply) = table.respond(&buf[..n], false) else {
                        continue;
                    };
                    if reply.len() > offered_size(&buf[..n]) {
                        reply = truncated(&reply);
                    }
                    if held.load(Ordering::SeqCst) {
                        kept.push((reply, peer));
                        continue;
                    }
                    let _ = sock.send_to(&reply, peer);
                }
            })
        };
        let tcp = {
            let (table, held, stop) = (table.clone(), held.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => serve_tcp(conn, &table, &held, &stop),
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        DnsServer {
            addr,
            records: table.records,
            queries: table.queries,
            held,
            stop,
            threads: vec![udp, tcp],
        }
    }

    /// Adds a record while running.
    pub fn add(&self, name: &str, rec: Rec) {
        self.records
            .lock()
            .unwrap()
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(rec);
    }

    /// Keeps every answer back until [`DnsServer::release`]: a resolver that has gone silent,
    /// for as long as a test needs (questions are still recorded).
    pub fn hold(&self) {
        self.held.store(true, Ordering::SeqCst);
    }

    /// Answers again, first the questions kept back (within the 50 ms receive time-out).
    pub fn release(&self) {
        self.held.store(false, Ordering::SeqCst);
    }

    /// "name TYPE" for every question asked so far.
    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Queries on one TCP connection, each after its two-byte length, until the client closes
/// it; while held, the answer waits for the release.
fn serve_tcp(mut conn: TcpStream, table: &Table, held: &AtomicBool, stop: &AtomicBool) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    loop {
        let mut len = [0u8; 2];
        if conn.read_exact(&mut len).is_err() {
            return;
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if conn.read_exact(&mut query).is_err() {
            return;
        }
        let Some(reply) = table.respond(&query, true) else {
            return;
        };
        while held.load(Ordering::SeqCst) && !stop.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(10));
        }
        let mut out = (reply.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&reply);
        if conn.write_all(&out).is_err() {
            return;
        }
    }
}

/// The answer size a UDP query offers: its EDNS(0) payload size (an OPT record right after
/// the question), else 512 bytes.
fn offered_size(query: &[u8]) -> usize {
    let additional = query
        .get(10..12)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let question_end = parse_question(query).map_or(query.len(), |(_, _, _, q)| 12 + q.len());
    match query.get(question_end..question_end + 5) {
        Some([0, 0, 41, hi, lo]) if additional > 0 => {
            usize::from(u16::from_be_bytes([*hi, *lo])).max(512)
        }
        _ => 512,
    }
}

/// A reply cut down the way Unbound and Knot cut one: header and question, TC set, no records.
fn truncated(reply: &[u8]) -> Vec<u8> {
    let question_end = parse_question(reply).map_or(12, |(_, _, _, q)| 12 + q.len());
    let mut cut = reply[..question_end].to_vec();
    cut[2] |= 0x02;
    cut[6..12].fill(0);
    cut
}

fn type_name(t: u16) -> &'static str {
    match t {
        1 => "A",
        15 => "MX",
        28 => "AAAA",
        _ => "other",
    }
}

/// (id, lower-case name, qtype, the question section's bytes)
fn parse_question(msg: &[u8]) -> Option<(u16, String, u16, Vec<u8>)> {
    if msg.len() < 12 {
        return None;
    }
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = *msg.get(pos)? as usize;
        if len == 0 {
            pos += 1;
            break;
        }
        labels.push(String::from_utf8_lossy(msg.get(pos + 1..pos + 1 + len)?).to_ascii_lowercase());
        pos += 1 + len;
    }
    let qtype = u16::from_be_bytes([*msg.get(pos)?, *msg.get(pos + 1)?]);
    let question = msg.get(12..pos + 4)?.to_vec();
    Some((id, labels.join("."), qtype, question))
}

fn encode_name(out: &mut Vec<u8>, name: &str) {
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

fn answer(id: u16, question: &[u8], qtype: u16, recs: Option<&[Rec]>) -> Vec<u8> {
    let mut rdatas: Vec<(u16, Vec<u8>)> = Vec::new();
    for r in recs.unwrap_or_default() {
        match (r, qtype) {
            (Rec::Addr(IpAddr::V4(ip)), 1) => rdatas.push((1, ip.octets().to_vec())),
            (Rec::Addr(IpAddr::V6(ip)), 28) => rdatas.push((28, ip.octets().to_vec())),
            (Rec::Mx(pref, host), 15) => {
                let mut d = pref.to_be_bytes().to_vec();
                encode_name(&mut d, host);
                rdatas.push((15, d));
            }
            _ => {}
        }
    }
    let rcode = if recs.is_none() { 3 } else { 0 };
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x81, 0x80 | rcode]);
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(&(rdatas.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(question);
    for (t, d) in rdatas {
        m.extend_from_slice(&[0xC0, 12]);
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 30]);
        m.extend_from_slice(&(d.len() as u16).to_be_bytes());
        m.extend_from_slice(&d);
    }
    m
}
