//! Latency to a distant provider (`MAILGATE_BENCH_DELAY_MS`, one way): a [`DelayProxy`] in
//! front of Dovecot's TLS port and Postfix's implicit-TLS port, used by both the direct client
//! and mailgate (whose `l-…` accounts point at the proxies), so that every upstream round trip
//! pays the delay twice, as it would to a far-away provider. The client → mailgate leg stays on
//! loopback, as users run it.
//!
//! Steps: `poll` (a mail client's poll cycle: connect, LOGIN, SELECT INBOX, UID FETCH of the
//! 1–5 messages delivered since the last poll, LOGOUT) and `smtp-one` (one message on a new
//! connection: connect, EHLO, AUTH, MAIL, RCPT, DATA, QUIT).

use std::path::Path;

use super::delay::DelayProxy;
use super::*;

/// The users polled: one per side, so each side's "messages since the last poll" are its own.
const POLL_DIRECT: &str = "polld";
const POLL_GATE: &str = "pollg";
/// Size of each newly delivered message.
const POLL_MESSAGE: usize = 4 * 1024;

pub struct Latency {
    pub one_way: Duration,
    pub imaps: DelayProxy,
    pub smtps: DelayProxy,
}

impl Latency {
    /// The proxies, when `MAILGATE_BENCH_DELAY_MS` is set (one-way, 1–1000 ms); also adds the
    /// poll users to Dovecot.
    pub fn wanted(dovecot: &Dovecot, postfix: &Postfix) -> Option<Latency> {
        let ms: u64 = std::env::var("MAILGATE_BENCH_DELAY_MS")
            .ok()?
            .parse()
            .ok()?;
        let one_way = Duration::from_millis(ms.clamp(1, 1000));
        for user in [POLL_DIRECT, POLL_GATE] {
            dovecot.add_user(user, UPSTREAM_PW);
        }
        let imaps = dovecot.imaps_addr().expect("imaps port");
        let smtps = SocketAddr::from(([127, 0, 0, 1], postfix.implicit_port));
        Some(Latency {
            one_way,
            imaps: DelayProxy::start(imaps, one_way),
            smtps: DelayProxy::start(smtps, one_way),
        })
    }

    /// mailgate's accounts behind the proxies: `l-pollg@example.no` (IMAP) and
    /// `l-smtp@…` (submission), TLS upstream as in the TLS mode.
    pub fn accounts(&self, config: GateConfig, imap_ca: &Path, smtp_ca: &Path) -> GateConfig {
        let imap =
            Upstream::tls(self.imaps.addr, "implicit", Some(imap_ca)).tls_server_name("localhost");
        let smtp =
            Upstream::tls(self.smtps.addr, "implicit", Some(smtp_ca)).tls_server_name("localhost");
        let bench = format!("bench@{PF_DOMAIN}");
        config
            .account(
                Account::password(&format!("l-{POLL_GATE}@{DOMAIN}"), LOCAL_PW)
                    .imap(imap.clone().login(POLL_GATE, UPSTREAM_PW)),
            )
            .account(
                Account::password(&format!("l-smtp@{PF_DOMAIN}"), LOCAL_PW)
                    .aliases(&[&bench])
                    .imap(imap.password("unused"))
                    .smtp(smtp.login(&bench, UPSTREAM_PW)),
            )
    }
}

/// Runs the `poll` and `smtp-one` steps (those enabled) and adds their rows and notes.
pub fn latency(s: &Setup, l: &Latency, sz: &Sizes, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let rtt = 2 * l.one_way.as_millis();
    eprintln!("== latency, {rtt} ms RTT to the upstream ==");
    let mut cpu = CpuLog {
        pid: s.mailgate.pid(),
        steps: Vec::new(),
    };
    let cycles = sz.latency_cycles;
    // Untimed: the accounts' first logins pay argon2 once; the steps measure the network.
    gate_poll_login(s).logout();
    let mut warm = FastSmtp::connect(s.mailgate.smtp_addr, None);
    warm.auth(&format!("l-smtp@{PF_DOMAIN}"), LOCAL_PW);
    warm.cmd("QUIT", "221");
    let mut last_uid = [0u32; 2];
    let (mut poll_d, mut poll_g) = (Vec::new(), Vec::new());
    let (mut smtp_d, mut smtp_g) = (Vec::new(), Vec::new());
    let mut raw = Vec::new();
    for round in 0..sz.rounds {
        if let Some((d, g)) = measure_pair(round, &mut cpu, "poll", cycles, |direct| {
            let side = usize::from(!direct);
            (0..cycles)
                .map(|i| poll_cycle(s, l, direct, (i % 5) + 1, &mut last_uid[side]))
                .collect::<Vec<f64>>()
        }) {
            raw.push(record(round, "poll", (d, g), (&mut poll_d, &mut poll_g)));
        }
        if let Some((d, g)) = measure_pair(round, &mut cpu, "smtp-one", cycles, |direct| {
            (0..cycles)
                .map(|_| smtp_one(s, l, direct))
                .collect::<Vec<f64>>()
        }) {
            raw.push(record(
                round,
                "smtp-one",
                (d, g),
                (&mut smtp_d, &mut smtp_g),
            ));
        }
    }
    let label = |what: &str| format!("{what} (TLS upstream, {rtt} ms RTT)");
    if !poll_d.is_empty() {
        let (d, g) = (median(poll_d), median(poll_g));
        // mailgate keeps no upstream session warm yet: the same figure is judged against the
        // target for warm sessions on, and honestly fails it.
        rows.push(Row {
            name: label("poll cycle p50, warm sessions on (not built: same run as off)"),
            unit: "ms",
            direct: d,
            gate: g,
            target: Target::RatioAtMost(0.6),
        });
        rows.push(Row {
            name: label("poll cycle p50, warm sessions off"),
            unit: "ms",
            direct: d,
            gate: g,
            target: Target::RatioAtMost(1.0),
        });
    }
    if !smtp_d.is_empty() {
        rows.push(Row {
            name: label("one SMTP message on a new connection p50"),
            unit: "ms",
            direct: median(smtp_d),
            gate: median(smtp_g),
            target: Target::RatioAtMost(0.9),
        });
    }
    notes.extend(cpu.note(&label("latency")));
    if !raw.is_empty() {
        notes.push(format!(
            "latency, medians per round ({cycles} per side and round): {}",
            raw.join("; ")
        ));
    }
}

/// Adds one round's samples of `step` to all samples; returns the round's medians as text.
fn record(
    round: usize,
    step: &str,
    (d, g): (Vec<f64>, Vec<f64>),
    (all_d, all_g): (&mut Vec<f64>, &mut Vec<f64>),
) -> String {
    let line = format!(
        "round {}: {step} direct {:.1} ms, mailgate {:.1} ms",
        round + 1,
        median(d.clone()),
        median(g.clone())
    );
    all_d.extend(d);
    all_g.extend(g);
    line
}

/// mailgate's poll account, logged in through mailgate (plaintext on loopback).
fn gate_poll_login(s: &Setup) -> FastImap {
    let mut c = FastImap::connect(s.mailgate.imap_addr, None);
    c.login(&format!("l-{POLL_GATE}@{DOMAIN}"), LOCAL_PW);
    c
}

/// Delivers `new` messages to the side's INBOX (untimed), then times one poll cycle from TCP
/// connect to LOGOUT's completion; checks the fetch returned at least the new messages' bytes.
fn poll_cycle(s: &Setup, l: &Latency, direct: bool, new: usize, last_uid: &mut u32) -> f64 {
    let user = if direct { POLL_DIRECT } else { POLL_GATE };
    let fresh: Vec<Vec<u8>> = (0..new)
        .map(|i| message(*last_uid as usize + i, POLL_MESSAGE))
        .collect();
    s.dovecot.fill_maildir(user, &fresh);
    let t = Instant::now();
    let mut c = if direct {
        let mut c = FastImap::connect(l.imaps.addr, Some(&s.tls));
        c.login(POLL_DIRECT, UPSTREAM_PW);
        c
    } else {
        gate_poll_login(s)
    };
    c.ok("s", "SELECT INBOX");
    // UIDs are given in delivery order, one each: the new ones follow the last seen.
    let n = c.ok("f", &format!("UID FETCH {}:* (BODY.PEEK[])", *last_uid + 1));
    c.logout();
    let elapsed = ms(t.elapsed());
    assert!(
        n as usize >= new * POLL_MESSAGE,
        "poll fetched {n} bytes, fewer than the {new} new messages"
    );
    *last_uid += new as u32;
    elapsed
}

/// One message on a new connection, from TCP connect to QUIT's 221: directly with implicit
/// TLS to Postfix (through the proxy), or in plaintext to mailgate.
fn smtp_one(s: &Setup, l: &Latency, direct: bool) -> f64 {
    let body = message(0, POLL_MESSAGE);
    let t = Instant::now();
    let mut c = if direct {
        let mut c = FastSmtp::connect(l.smtps.addr, Some(&s.smtp_tls));
        c.auth(&format!("bench@{PF_DOMAIN}"), UPSTREAM_PW);
        c
    } else {
        let mut c = FastSmtp::connect(s.mailgate.smtp_addr, None);
        c.auth(&format!("l-smtp@{PF_DOMAIN}"), LOCAL_PW);
        c
    };
    c.send_message(
        &format!("bench@{PF_DOMAIN}"),
        &format!("rcpt@{PF_DOMAIN}"),
        &body,
    );
    c.cmd("QUIT", "221");
    ms(t.elapsed())
}
