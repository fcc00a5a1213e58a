//! Latency to a distant provider (`MAILGATE_BENCH_DELAY_MS`, one way): a [`DelayProxy`] in
//! front of Dovecot's TLS port and Postfix's implicit-TLS port, used by both the direct client
//! and mailgate (whose `l-…` accounts point at the proxies), so that every upstream round trip
//! pays the delay twice, as it would to a far-away provider. The client → mailgate leg stays on
//! loopback, as users run it.
//!
//! Steps: `poll` (a mail client's poll cycle: connect, LOGIN, SELECT INBOX, UID FETCH of the
//! 1–5 messages delivered since the last poll, LOGOUT), `poll-warm` (the same cycle through a
//! second mailgate with warm sessions on, [`Warm`]) and `smtp-one` (one message on a new
//! connection: connect, EHLO, AUTH, MAIL, RCPT, DATA, QUIT).

use std::path::Path;

use super::delay::DelayProxy;
use super::warm::{Warm, WARM_DIRECT, WARM_GATE};
use super::*;

/// The users polled: one per side and step, so each side's "messages since the last poll" are
/// its own and both sides of a pair poll mailboxes of the same size.
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
        for user in [POLL_DIRECT, POLL_GATE, WARM_DIRECT, WARM_GATE] {
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
        let imap = self.imap_upstream(imap_ca);
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

    /// Dovecot's TLS port behind the proxy, as mailgate's latency accounts reach it.
    pub fn imap_upstream(&self, imap_ca: &Path) -> Upstream {
        Upstream::tls(self.imaps.addr, "implicit", Some(imap_ca)).tls_server_name("localhost")
    }
}

/// Runs the `poll`, `poll-warm` and `smtp-one` steps (those enabled) and adds their rows and
/// notes.
pub fn latency(s: &Setup, l: &Latency, sz: &Sizes, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let rtt = 2 * l.one_way.as_millis();
    eprintln!("== latency, {rtt} ms RTT to the upstream ==");
    let warm = step_enabled("poll-warm").then(|| Warm::start(l.imap_upstream(&s.pki.ca)));
    let mut cpu = CpuLog {
        pid: s.mailgate.pid(),
        steps: Vec::new(),
    };
    let mut warm_cpu = CpuLog {
        pid: warm.as_ref().map_or(0, |w| w.gate.pid()),
        steps: Vec::new(),
    };
    let cycles = sz.latency_cycles;
    let (mut poll_d, mut poll_g) = (Poller::direct(POLL_DIRECT), Poller::gate(s, POLL_GATE));
    let mut warm_d = Poller::direct(WARM_DIRECT);
    let mut warm_g = warm
        .as_ref()
        .map(|w| Poller::on(w.gate.imap_addr, WARM_GATE));
    // Untimed: the accounts' first logins pay argon2 once; the steps measure the network. The
    // warm instance's also leaves the first kept connection.
    poll_g.login().logout();
    if let Some(p) = &warm_g {
        p.login().logout();
    }
    let mut first = FastSmtp::connect(s.mailgate.smtp_addr, None);
    first.auth(&format!("l-smtp@{PF_DOMAIN}"), LOCAL_PW);
    first.cmd("QUIT", "221");
    let (mut poll, mut poll_warm, mut smtp) =
        (Samples::default(), Samples::default(), Samples::default());
    let mut raw = Vec::new();
    for round in 0..sz.rounds {
        let pollers = (&mut poll_d, &mut poll_g);
        if let Some(r) = poll_pair(s, l, round, &mut cpu, "poll", cycles, pollers) {
            raw.push(poll.record(round, "poll", r));
        }
        if let Some(warm_g) = &mut warm_g {
            let pollers = (&mut warm_d, warm_g);
            if let Some(r) = poll_pair(s, l, round, &mut warm_cpu, "poll-warm", cycles, pollers) {
                raw.push(poll_warm.record(round, "poll-warm", r));
            }
        }
        if let Some(r) = measure_pair(round, &mut cpu, "smtp-one", cycles, |direct| {
            (0..cycles)
                .map(|_| smtp_one(s, l, direct))
                .collect::<Vec<f64>>()
        }) {
            raw.push(smtp.record(round, "smtp-one", r));
        }
    }
    let label = |what: &str| format!("{what} (TLS upstream, {rtt} ms RTT)");
    let mut row = |what: &str, samples: Samples, target: Target| {
        if !samples.direct.is_empty() {
            rows.push(Row {
                name: label(what),
                unit: "ms",
                direct: median(samples.direct),
                gate: median(samples.gate),
                target,
            });
        }
    };
    row(
        "poll cycle p50, warm sessions off",
        poll,
        Target::RatioAtMost(1.0),
    );
    row(
        "poll cycle p50, warm sessions on",
        poll_warm,
        Target::RatioAtMost(0.6),
    );
    row(
        "one SMTP message on a new connection p50",
        smtp,
        Target::RatioAtMost(0.9),
    );
    if let Some(w) = &warm {
        notes.push(w.note(sz.rounds * cycles));
    }
    // The warm instance's CPU (its only step) goes on the same line as the main one's.
    cpu.steps.append(&mut warm_cpu.steps);
    notes.extend(cpu.note(&label("latency")));
    if !raw.is_empty() {
        notes.push(format!(
            "latency, medians per round ({cycles} per side and round): {}",
            raw.join("; ")
        ));
    }
}

/// All samples of one latency step, per side.
#[derive(Default)]
struct Samples {
    direct: Vec<f64>,
    gate: Vec<f64>,
}

impl Samples {
    /// Adds one round's samples of `step`; returns the round's medians as text.
    fn record(&mut self, round: usize, step: &str, (d, g): (Vec<f64>, Vec<f64>)) -> String {
        let line = format!(
            "round {}: {step} direct {:.1} ms, mailgate {:.1} ms",
            round + 1,
            median(d.clone()),
            median(g.clone())
        );
        self.direct.extend(d);
        self.gate.extend(g);
        line
    }
}

/// One round of a poll step: `cycles` polls on each side, interleaved as every step.
fn poll_pair(
    s: &Setup,
    l: &Latency,
    round: usize,
    cpu: &mut CpuLog,
    step: &str,
    cycles: usize,
    (direct, gate): (&mut Poller, &mut Poller),
) -> Option<(Vec<f64>, Vec<f64>)> {
    measure_pair(round, cpu, step, cycles, |is_direct| {
        let p = if is_direct { &mut *direct } else { &mut *gate };
        (0..cycles)
            .map(|i| p.cycle(s, l, (i % 5) + 1))
            .collect::<Vec<f64>>()
    })
}

/// One side of a poll step: an upstream user polled directly (TLS, through the proxy) or
/// through a mailgate instance (plaintext on loopback, as its `l-{user}@…` account), and the
/// last UID it has seen.
struct Poller {
    user: &'static str,
    /// The mailgate instance's IMAP listener; `None`: direct.
    gate: Option<SocketAddr>,
    last_uid: u32,
}

impl Poller {
    fn direct(user: &'static str) -> Poller {
        Poller {
            user,
            gate: None,
            last_uid: 0,
        }
    }

    /// Through the main mailgate instance.
    fn gate(s: &Setup, user: &'static str) -> Poller {
        Poller::on(s.mailgate.imap_addr, user)
    }

    /// Through the mailgate instance listening on `addr`.
    fn on(addr: SocketAddr, user: &'static str) -> Poller {
        Poller {
            user,
            gate: Some(addr),
            last_uid: 0,
        }
    }

    /// A logged-in session through mailgate (the gate sides only).
    fn login(&self) -> FastImap {
        let addr = self.gate.expect("a mailgate side");
        let mut c = FastImap::connect(addr, None);
        c.login(&format!("l-{}@{DOMAIN}", self.user), LOCAL_PW);
        c
    }

    /// Delivers `new` messages to the user's INBOX (untimed), then times one poll cycle from
    /// TCP connect to LOGOUT's completion; checks the fetch returned at least the new
    /// messages' bytes.
    fn cycle(&mut self, s: &Setup, l: &Latency, new: usize) -> f64 {
        let fresh: Vec<Vec<u8>> = (0..new)
            .map(|i| message(self.last_uid as usize + i, POLL_MESSAGE))
            .collect();
        s.dovecot.fill_maildir(self.user, &fresh);
        let t = Instant::now();
        let mut c = match self.gate {
            Some(_) => self.login(),
            None => {
                let mut c = FastImap::connect(l.imaps.addr, Some(&s.tls));
                c.login(self.user, UPSTREAM_PW);
                c
            }
        };
        c.ok("s", "SELECT INBOX");
        // UIDs are given in delivery order, one each: the new ones follow the last seen.
        let n = c.ok(
            "f",
            &format!("UID FETCH {}:* (BODY.PEEK[])", self.last_uid + 1),
        );
        c.logout();
        let elapsed = ms(t.elapsed());
        assert!(
            n as usize >= new * POLL_MESSAGE,
            "poll fetched {n} bytes, fewer than the {new} new messages"
        );
        self.last_uid += new as u32;
        elapsed
    }
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
