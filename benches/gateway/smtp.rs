//! SMTP: 4 connections × (messages / 4), each message 10 KiB, directly to Postfix's
//! submission port and through mailgate; every message verified delivered.

use super::*;

/// Where one side of the SMTP step sends, and as whom.
#[derive(Clone)]
pub struct SmtpSide {
    pub addr: SocketAddr,
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    pub user: String,
    pub password: &'static str,
}

/// Sends `per_conn` messages on each of `conns` connections to `side` at once; returns the
/// rate (messages/s) and each message's latency (ms). Then waits, untimed, until Postfix has
/// delivered what was queued, so that the next side is not measured while competing with
/// the delivery of these messages (whichever went second paid for it before).
pub fn smtp_send(
    s: &Setup,
    side: &SmtpSide,
    conns: usize,
    per_conn: usize,
    body: &[u8],
) -> (f64, Vec<f64>) {
    let t = Instant::now();
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let (addr, tls, user, pw) = (
                side.addr,
                side.tls.clone(),
                side.user.clone(),
                side.password,
            );
            let body = body.to_vec();
            std::thread::spawn(move || {
                let mut c = FastSmtp::connect(addr, tls.as_ref());
                c.auth(&user, pw);
                let mut lat = Vec::with_capacity(per_conn);
                for _ in 0..per_conn {
                    let t = Instant::now();
                    c.send_message(
                        &format!("bench@{PF_DOMAIN}"),
                        &format!("rcpt@{PF_DOMAIN}"),
                        &body,
                    );
                    lat.push(ms(t.elapsed()));
                }
                c.quit();
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for th in threads {
        lat.extend(th.join().expect("smtp client thread"));
    }
    let secs = t.elapsed().as_secs_f64();
    let drained = Instant::now();
    while !s.postfix.queue_empty() && drained.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    settle_disk();
    (lat.len() as f64 / secs, lat)
}

pub fn smtp(s: &Setup, sz: &Sizes, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let body = message(0, 10 * 1024);
    let conns = 4;
    // One minimal relay per Postfix port, for reference (see [`minimal_relay`]).
    let mut relays = std::collections::BTreeMap::new();
    let per_conn = (sz.smtp_messages / conns).max(1);
    let mut expected = 0usize;
    for m in &s.modes {
        eprintln!("== SMTP, {} ==", m.name);
        let mut cpu = CpuLog {
            pid: s.mailgate.pid(),
            steps: Vec::new(),
        };
        // Warm-up: the account's first AUTH pays argon2 once (the first-login rows above show
        // that cost); the rounds measure sending, not four simultaneous first logins.
        let mut warm = FastSmtp::connect(s.mailgate.smtp_addr, None);
        warm.auth(&format!("{}-smtp@{PF_DOMAIN}", m.prefix), LOCAL_PW);
        warm.quit();
        let direct_addr = SocketAddr::from((
            [127, 0, 0, 1],
            if m.tls {
                s.postfix.implicit_port
            } else {
                s.postfix.plain_port
            },
        ));
        // The direct client's settings, sent to `addr` (Postfix itself or the minimal relay).
        let direct_side = |addr| SmtpSide {
            addr,
            tls: m.tls.then(|| s.smtp_tls.clone()),
            user: format!("bench@{PF_DOMAIN}"),
            password: UPSTREAM_PW,
        };
        let gate_side = SmtpSide {
            addr: s.mailgate.smtp_addr,
            tls: None,
            user: format!("{}-smtp@{PF_DOMAIN}", m.prefix),
            password: LOCAL_PW,
        };
        let relay = relays.entry(direct_addr).or_insert_with(|| {
            minimal_relay::Relay::start(
                Kind::Threads,
                direct_addr,
                m.tls.then_some(s.postfix.ca_file.as_path()),
            )
        });
        // Plain to the relay: with a TLS upstream it does the TLS, as mailgate does.
        let relay_side = SmtpSide {
            tls: None,
            ..direct_side(relay.addr)
        };
        let relay_pid = relay.pid();
        let (mut relay_cpu_ms, mut relay_ops) = (0.0, 0);
        let mut relay_send = || {
            let before = process_cpu_ms(relay_pid);
            let rate = smtp_send(s, &relay_side, conns, per_conn, &body).0;
            relay_cpu_ms += process_cpu_ms(relay_pid) - before;
            relay_ops += conns * per_conn;
            rate
        };
        let (mut rate_d, mut rate_g, mut rate_r) = (Vec::new(), Vec::new(), Vec::new());
        let (mut lat_d, mut lat_g) = (Vec::new(), Vec::new());
        if step_enabled("smtp") {
            // An untimed warm-up round of each side: Postfix's rates rise over the first rounds
            // (processes started on demand, caches), which made the first rounds' ratios
            // depend on which side happened to go first.
            for side in [&direct_side(direct_addr), &gate_side, &relay_side] {
                smtp_send(s, side, conns, per_conn, &body);
                expected += conns * per_conn;
            }
        }
        for round in 0..sz.rounds {
            // The minimal relay goes before the pair in odd rounds and after it in even ones,
            // so that Postfix's drift over a run does not favour it or mailgate.
            let relay_first = round % 2 == 1 && step_enabled("smtp");
            let early = relay_first.then(&mut relay_send);
            let Some((d, g)) = measure_pair(round, &mut cpu, "smtp", conns * per_conn, |direct| {
                if direct {
                    smtp_send(s, &direct_side(direct_addr), conns, per_conn, &body)
                } else {
                    smtp_send(s, &gate_side, conns, per_conn, &body)
                }
            }) else {
                continue;
            };
            // The same work through the minimal relay to the direct port, for reference.
            let rate_relay = early.unwrap_or_else(&mut relay_send);
            rate_r.push(rate_relay);
            // Direct, mailgate and the minimal relay each sent this round's messages.
            expected += 3 * conns * per_conn;
            eprintln!(
                "round {}/{}: direct {:.0} msg/s, mailgate {:.0} msg/s ({} first), minimal relay {:.0} msg/s",
                round + 1,
                sz.rounds,
                d.0,
                g.0,
                if round % 2 == 0 { "direct" } else { "mailgate" },
                rate_relay
            );
            rate_d.push(d.0);
            rate_g.push(g.0);
            lat_d.extend(d.1);
            lat_g.extend(g.1);
        }
        notes.extend(cpu.note(m.name));
        if relay_ops > 0 {
            notes.push(format!(
                "{}: minimal relay CPU per operation: smtp {:.0} µs (process total, 10 ms ticks)",
                m.name,
                relay_cpu_ms * 1000.0 / relay_ops as f64
            ));
        }
        let label = |what: &str| format!("{what} ({})", m.name);
        if !rate_r.is_empty() {
            let (d, r, g) = (
                median(rate_d.clone()),
                median(rate_r),
                median(rate_g.clone()),
            );
            notes.push(format!(
                "{}: SMTP direct {d:.0} msg/s, through the minimal relay {r:.0} msg/s ({:.3}×), \
                 through mailgate {g:.0} msg/s ({:.3}×)",
                m.name,
                r / d,
                g / d
            ));
            rows.push(Row {
                name: label("SMTP rate, minimal relay in the direct column"),
                unit: "msg/s",
                direct: r,
                gate: g,
                target: Target::RatioAtLeast(0.97),
            });
        }
        rows.push(Row {
            name: label(&format!(
                "SMTP {} × 10 KiB over {conns} connections",
                conns * per_conn
            )),
            unit: "msg/s",
            direct: median(rate_d),
            gate: median(rate_g),
            target: Target::RatioAtLeast(0.90),
        });
        rows.push(Row {
            name: label("SMTP message p50"),
            unit: "ms",
            direct: percentile(&mut lat_d, 0.5),
            gate: percentile(&mut lat_g, 0.5),
            target: Target::None,
        });
    }
    // Every message the clients were told 250 for must arrive.
    let mut delivered = 0;
    for _ in 0..1200 {
        delivered = count_files(&s.postfix.dir.path().join("mail"));
        if delivered >= expected {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    notes.push(format!(
        "SMTP: {expected} messages accepted (250), {delivered} delivered into Postfix's maildirs"
    ));
    assert_eq!(
        delivered, expected,
        "not every accepted message was delivered"
    );
}

/// Files below `dir` (delivered messages), counted without reading them.
pub fn count_files(dir: &std::path::Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    for _ in 0..100_000 {
        let Some(d) = stack.pop() else { break };
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() && (d.ends_with("new") || d.ends_with("cur")) => n += 1,
                _ => {}
            }
        }
    }
    n
}
