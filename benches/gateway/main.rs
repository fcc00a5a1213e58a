//! End-to-end benchmark: the same work directly against Dovecot/Postfix and through mailgate,
//! interleaved (A B A B …) in one run, reporting medians and the ratio mailgate/direct.
//!
//! Run: `cargo bench --bench gateway` (root: it starts Dovecot and Postfix like the tests do).
//! `MAILGATE_BENCH_ROUNDS` (default 5) sets the number of interleaved rounds; `MAILGATE_BENCH_QUICK=1`
//! shrinks every workload tenfold for a smoke run; `MAILGATE_BENCH_ONLY=imap|smtp` runs one part;
//! `MAILGATE_BENCH_LOG` sets mailgate's RUST_LOG (default `info`, as in production);
//! `MAILGATE_BENCH_STEPS` (comma-separated step names, e.g. `append,nagle-append`) runs only those;
//! `MAILGATE_BENCH_FOLDERS=superoffice` (or another client profile) gives every account that
//! `[account.folders] client`, so that the folder rule maps Dovecot's Sent, Drafts and Trash and
//! sees every line (without it no session has the rule: compare the ratios of the two runs). The numbers reported in the README come
//! from a full run on the project's 2-core machine; the client, mailgate and the servers share
//! those two cores, so the ratios (not the absolute numbers) are what carries over.
//!
//! The NOOP and SMTP steps also run through [`minimal_relay`] (this binary started again with
//! `--minimal-relay`), printed beside mailgate's figures as the floor any relay pays here.
//!
//! `MAILGATE_BENCH_DELAY_MS=15` (one way) adds the latency steps `poll`, `poll-warm` (through a
//! second mailgate with warm sessions on, [`warm`]) and `smtp-one` behind a delay proxy
//! ([`latency`]); `-- --delay-selfcheck` checks the proxy instead of benchmarking.
//!
//! Every loop is bounded by a count; every socket has a read time-out; all traffic is on
//! 127.0.0.1; the servers and relays started here are stopped by PID when the benchmark ends.

#[path = "../../tests/support/mod.rs"]
mod support;

mod delay;
mod event_relay;
mod latency;
mod measure;
mod minimal_relay;
mod setup;
mod smtp;
mod stats;
mod store;
mod warm;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use measure::*;
use minimal_relay::{Kind, MINIMAL_RELAY_ARG};
use setup::*;
use smtp::smtp;
use stats::*;
use support::dovecot::{Dovecot, DovecotOpts};
use support::fast_client::{FastImap, FastSmtp};
use support::mailgate::Mailgate;
use support::postfix::{Postfix, DOMAIN as PF_DOMAIN};
use support::procstat::rss_kib;
use support::{Account, GateConfig, Pki, Upstream};

const LOCAL_PW: &str = "bench-local-password";
/// How often each side fetches the 50 MiB message per round (see the big-fetch step).
const BIG_FETCHES: usize = 3;
const UPSTREAM_PW: &str = "bench-upstream-password";
const DOMAIN: &str = "example.no";

/// Workload sizes (divided by 10 in quick mode).
struct Sizes {
    rounds: usize,
    logins: usize,
    first_logins: usize,
    noops: usize,
    bulk_messages: usize,
    appends: usize,
    nagle_appends: usize,
    held_sessions: usize,
    smtp_messages: usize,
    /// Poll cycles and single SMTP messages per side and round (latency mode).
    latency_cycles: usize,
}

fn sizes() -> Sizes {
    let quick = std::env::var("MAILGATE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let rounds = std::env::var("MAILGATE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5usize)
        .clamp(1, 50);
    let d = if quick { 10 } else { 1 };
    Sizes {
        rounds,
        logins: 200 / d,
        first_logins: 10,
        noops: 2000 / d,
        bulk_messages: 10_000 / d,
        appends: 1000 / d,
        nagle_appends: 100 / d,
        held_sessions: 1000 / d,
        smtp_messages: 1000 / d,
        latency_cycles: if quick { 5 } else { 10 },
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == MINIMAL_RELAY_ARG) {
        relay_main(&args[i + 1..]);
        return;
    }
    if args.iter().any(|a| a == delay::SELFCHECK_ARG) {
        match delay::selfcheck() {
            Ok(()) => println!("delay proxy: self-check passed"),
            Err(e) => {
                eprintln!("delay proxy: self-check failed: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let sz = sizes();
    let s = setup(&sz);
    let mut rows: Vec<Row> = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    // One minimal relay of each kind per upstream port, started when the NOOP step first
    // needs it.
    let mut relays = std::collections::BTreeMap::new();
    for m in s.modes.iter().filter(|_| part("imap")) {
        eprintln!("== {} ==", m.name);
        let mut login_d = Vec::new();
        let mut login_g = Vec::new();
        let mut first_d = Vec::new();
        let mut first_g = Vec::new();
        let mut noop_d = Vec::new();
        let mut noop_g = Vec::new();
        // The same NOOPs through the blocking and the event-loop minimal relay.
        let mut noop_r = [RelayNoops::default(), RelayNoops::default()];
        let (mut bulk_d, mut bulk_g) = (Vec::new(), Vec::new());
        let (mut big_d, mut big_g) = (Vec::new(), Vec::new());
        let (mut app_d, mut app_g) = (Vec::new(), Vec::new());
        let (mut nagle_d, mut nagle_g) = (Vec::new(), Vec::new());
        let mut first_index = if m.tls {
            sz.first_logins * sz.rounds
        } else {
            0
        };
        let payload = message(0, 10 * 1024);
        let mut bulk_bytes = 0u64;
        let mut cpu = CpuLog {
            pid: s.mailgate.pid(),
            steps: Vec::new(),
        };

        for round in 0..sz.rounds {
            eprintln!("round {}/{}", round + 1, sz.rounds);
            // Repeat logins of one account.
            if let Some((d, g)) = measure_pair(round, &mut cpu, "login", sz.logins, |direct| {
                let mut v = Vec::with_capacity(sz.logins);
                for _ in 0..sz.logins {
                    let t = Instant::now();
                    let c = session(&s, m, direct, "bench");
                    c.logout();
                    v.push(ms(t.elapsed()));
                }
                v
            }) {
                login_d.extend(d);
                login_g.extend(g);
            }

            // First logins of accounts never seen (argon2 once each).
            if let Some((d, g)) =
                measure_pair(round, &mut cpu, "first-login", sz.first_logins, |direct| {
                    let mut v = Vec::new();
                    for i in 0..sz.first_logins {
                        let user = if direct {
                            "bench".to_string()
                        } else {
                            format!("first{}", first_index + i)
                        };
                        let t = Instant::now();
                        let c = session(&s, m, direct, &user);
                        c.logout();
                        v.push(ms(t.elapsed()));
                    }
                    v
                })
            {
                first_d.extend(d);
                first_g.extend(g);
            }
            first_index += sz.first_logins;

            // NOOP round trips in one session; the same NOOPs through the minimal relays for
            // reference, before the pair in odd rounds and after it in even ones (the figure
            // depends on what ran just before, see benches/README.md).
            let relay = step_enabled("noop").then(|| {
                [Kind::Threads, Kind::EventLoop].map(|kind| {
                    let relay = relays.entry((kind, m.prefix)).or_insert_with(|| {
                        let ca = m.tls.then_some(s.pki.ca.as_path());
                        minimal_relay::Relay::start(kind, m.direct, ca)
                    });
                    (relay.addr, relay.pid())
                })
            });
            let through_relays = |r: [(SocketAddr, u32); 2]| r.map(|r| relay_noops(r, sz.noops));
            let early = relay.filter(|_| round % 2 == 1).map(through_relays);
            if let Some((d, g)) = measure_pair(round, &mut cpu, "noop", sz.noops, |direct| {
                let mut c = session(&s, m, direct, "bench");
                let mut v = Vec::with_capacity(sz.noops);
                for i in 0..sz.noops {
                    let t = Instant::now();
                    c.ok(&format!("n{i}"), "NOOP");
                    v.push(ms(t.elapsed()));
                }
                c.logout();
                v
            }) {
                noop_d.extend(d);
                noop_g.extend(g);
            }
            if let Some(done) = early.or_else(|| relay.map(through_relays)) {
                for (sum, (lat, cpu_ms)) in noop_r.iter_mut().zip(done) {
                    sum.lat.extend(lat);
                    sum.cpu_ms += cpu_ms;
                }
            }

            // Bulk FETCH of the whole 10 KiB mailbox, and the one 50 MiB message.
            if let Some((d, g)) =
                measure_pair(round, &mut cpu, "bulk-fetch", sz.bulk_messages, |direct| {
                    let mut c = session(&s, m, direct, "bulk");
                    c.ok("s", "EXAMINE INBOX");
                    let t = Instant::now();
                    let n = c.ok("f", "UID FETCH 1:* (BODY.PEEK[])");
                    let secs = t.elapsed().as_secs_f64();
                    c.logout();
                    (n, secs)
                })
            {
                bulk_bytes = d.0;
                assert!(
                    d.0.abs_diff(g.0) < 1024,
                    "FETCH sizes differ: {} vs {}",
                    d.0,
                    g.0
                );
                bulk_d.push(d.0 as f64 / d.1 / 1e6);
                bulk_g.push(g.0 as f64 / g.1 / 1e6);
            }

            // Three fetches of the one message per side and round: one takes ~35 ms here, too
            // short a time for a steady rate (single fetches gave 0.84–1.07× in one hour).
            if let Some((d, g)) =
                measure_pair(round, &mut cpu, "big-fetch", BIG_FETCHES, |direct| {
                    let mut c = session(&s, m, direct, "big");
                    c.ok("s", "EXAMINE INBOX");
                    let t = Instant::now();
                    let mut n = 0;
                    for i in 0..BIG_FETCHES {
                        n += c.ok(&format!("f{i}"), "UID FETCH 1 (BODY.PEEK[])");
                    }
                    let secs = t.elapsed().as_secs_f64();
                    c.logout();
                    (n, secs)
                })
            {
                big_d.push(d.0 as f64 / d.1 / 1e6);
                big_g.push(g.0 as f64 / g.1 / 1e6);
            }

            // APPEND of 10 KiB messages, synchronizing literals (what most clients send). Each
            // session appends into a mailbox of its own, created empty and deleted afterwards
            // (both untimed): Dovecot's cost per APPEND grows with the mailbox (it rewrites
            // dovecot-uidlist, O(messages), every few appends), so a shared INBOX made whichever
            // side went second in a round pay for the other's 1000 messages, and with an odd
            // number of rounds the medians came from rounds where mailgate went second.
            if let Some((d, g)) = measure_pair(round, &mut cpu, "append", sz.appends, |direct| {
                let mut c = session(&s, m, direct, "append");
                let mailbox = format!("append-{round}-{}", if direct { "d" } else { "g" });
                c.ok("c", &format!("CREATE {mailbox}"));
                let t = Instant::now();
                for i in 0..sz.appends {
                    c.append(&format!("a{i}"), &mailbox, &payload);
                }
                let secs = t.elapsed().as_secs_f64();
                c.ok("d", &format!("DELETE {mailbox}"));
                c.logout();
                settle_disk();
                sz.appends as f64 / secs
            }) {
                app_d.push(d);
                app_g.push(g);
            }

            // The same APPEND from a client that leaves Nagle's algorithm on (python's imaplib,
            // many others): its kernel holds the CRLF after the literal until the literal is
            // ACKed, so a receiver that delays its ACK (40 ms on Linux) delays the command.
            if let Some((d, g)) = measure_pair(
                round,
                &mut cpu,
                "nagle-append",
                sz.nagle_appends,
                |direct| {
                    let mut c = nagle_session(&s, m, direct, "append");
                    let mailbox = format!("nagle-{round}-{}", if direct { "d" } else { "g" });
                    c.ok("c", &format!("CREATE {mailbox}"));
                    let mut v = Vec::with_capacity(sz.nagle_appends);
                    for i in 0..sz.nagle_appends {
                        let t = Instant::now();
                        c.append(&format!("a{i}"), &mailbox, &payload);
                        v.push(ms(t.elapsed()));
                    }
                    c.ok("d", &format!("DELETE {mailbox}"));
                    c.logout();
                    v
                },
            ) {
                nagle_d.extend(d);
                nagle_g.extend(g);
            }
        }

        let label = |what: &str| format!("{what} ({})", m.name);
        let p = |v: &mut Vec<f64>, q: f64| percentile(v, q);
        rows.push(Row {
            name: label("repeat login p50"),
            unit: "ms",
            direct: p(&mut login_d, 0.5),
            gate: p(&mut login_g, 0.5),
            target: Target::DiffAtMost(1.0),
        });
        rows.push(Row {
            name: label("repeat login p99"),
            unit: "ms",
            direct: p(&mut login_d, 0.99),
            gate: p(&mut login_g, 0.99),
            target: Target::None,
        });
        rows.push(Row {
            name: label("first login p50"),
            unit: "ms",
            direct: p(&mut first_d, 0.5),
            gate: p(&mut first_g, 0.5),
            target: Target::None,
        });
        rows.push(Row {
            name: label("NOOP p50"),
            unit: "ms",
            direct: p(&mut noop_d, 0.5),
            gate: p(&mut noop_g, 0.5),
            target: Target::DiffAtMost(0.03),
        });
        if !noop_r[0].lat.is_empty() {
            let [threads, event_loop] = &mut noop_r;
            let (d, r, e, g) = (
                p(&mut noop_d, 0.5),
                p(&mut threads.lat, 0.5),
                p(&mut event_loop.lat, 0.5),
                p(&mut noop_g, 0.5),
            );
            notes.push(format!(
                "{}: NOOP p50 direct {d:.3} ms, through a minimal relay {r:.3} ms ({:+.3}), \
                 through a minimal event-loop relay {e:.3} ms ({:+.3}), through mailgate {g:.3} \
                 ms ({:+.3}); the minimal relay is a floor for any relay here: blocking reads and \
                 writes, a thread per direction, no parsing, and towards a TLS upstream it speaks \
                 TLS itself, as mailgate does (the client is plain to both); the event-loop relay \
                 does the same on tokio, as mailgate runs (copy_bidirectional, nothing else)",
                m.name,
                r - d,
                e - d,
                g - d
            ));
            // The latency issue's floor: mailgate's own cost per NOOP over a relay that
            // does no work, measured in the same rounds.
            rows.push(Row {
                name: label("NOOP p50, minimal relay in the direct column"),
                unit: "ms",
                direct: r,
                gate: g,
                target: Target::DiffAtMost(0.01),
            });
            // What of that is the event loop's (no target: the floor stays the relay above).
            rows.push(Row {
                name: label("NOOP p50, minimal event-loop relay in the direct column"),
                unit: "ms",
                direct: e,
                gate: g,
                target: Target::None,
            });
        }
        rows.push(Row {
            name: label("NOOP p99"),
            unit: "ms",
            direct: p(&mut noop_d, 0.99),
            gate: p(&mut noop_g, 0.99),
            target: Target::DiffAtMost(0.1),
        });
        rows.push(Row {
            name: label(&format!(
                "bulk FETCH {} × 10 KiB ({:.0} MB)",
                sz.bulk_messages,
                bulk_bytes as f64 / 1e6
            )),
            unit: "MB/s",
            direct: median(bulk_d),
            gate: median(bulk_g),
            target: Target::RatioAtLeast(0.90),
        });
        rows.push(Row {
            name: label("FETCH one 50 MiB message"),
            unit: "MB/s",
            direct: median(big_d),
            gate: median(big_g),
            target: Target::RatioAtLeast(0.90),
        });
        rows.push(Row {
            name: label(&format!("APPEND {} × 10 KiB", sz.appends)),
            unit: "msg/s",
            direct: median(app_d),
            gate: median(app_g),
            target: Target::RatioAtLeast(0.90),
        });
        rows.push(Row {
            name: label("APPEND 10 KiB p50, client with Nagle on"),
            unit: "ms",
            direct: p(&mut nagle_d, 0.5),
            gate: p(&mut nagle_g, 0.5),
            target: Target::DiffAtMost(2.0),
        });

        notes.extend(cpu.note(m.name));
        if !noop_r[0].lat.is_empty() {
            // One latency per NOOP: their count is the NOOPs done.
            let per_noop = |r: &RelayNoops| r.cpu_ms * 1000.0 / r.lat.len() as f64;
            notes.push(format!(
                "{}: minimal relay CPU per operation: noop {:.0} µs, the event-loop relay's {:.0} \
                 µs (process totals, 10 ms ticks)",
                m.name,
                per_noop(&noop_r[0]),
                per_noop(&noop_r[1])
            ));
        }

        if step_enabled("held") {
            // Held sessions and memory, each in a fresh mailgate so that memory freed by earlier
            // work (which the allocator keeps for reuse) neither hides nor inflates the figures.
            eprintln!("holding {} sessions…", sz.held_sessions);
            let fresh = start_gate(&s.config, s.store.as_ref());
            let pid = fresh.pid();
            // One login first: the login cache entry and argon2's one-time cost are not per session.
            gate_session(fresh.imap_addr, m, "bench").logout();
            std::thread::sleep(Duration::from_millis(200));
            let idle = rss_kib(pid) as f64;
            let mut held = Vec::with_capacity(sz.held_sessions);
            for _ in 0..sz.held_sessions {
                held.push(gate_session(fresh.imap_addr, m, "bench"));
            }
            std::thread::sleep(Duration::from_millis(500));
            let holding = rss_kib(pid) as f64;
            let mut answered = 0;
            for (i, c) in held.iter_mut().enumerate() {
                c.ok(&format!("h{i}"), "NOOP");
                answered += 1;
            }
            for c in held {
                c.logout();
            }
            let per_session = (holding - idle) / sz.held_sessions as f64;
            notes.push(format!(
            "{}: a fresh mailgate's RSS after one login {:.0} KiB, holding {} sessions {:.0} KiB, {:.1} KiB per session; {answered}/{} answered NOOP afterwards",
            m.name, idle, sz.held_sessions, holding, per_session, sz.held_sessions
        ));
            rows.push(Row {
                name: label("RSS per held idle session"),
                unit: "KiB",
                direct: f64::NAN,
                gate: per_session,
                target: Target::ValueAtMost(if m.tls { 48.0 } else { 8.0 }),
            });
        }

        if step_enabled("rss") {
            // RSS while relaying the 50 MiB message: sampled from another thread.
            let fresh = start_gate(&s.config, s.store.as_ref());
            let pid = fresh.pid();
            let mut c = gate_session(fresh.imap_addr, m, "big");
            c.ok("s", "EXAMINE INBOX");
            std::thread::sleep(Duration::from_millis(200));
            let before = rss_kib(pid) as f64;
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let sampler = {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut peak: f64 = 0.0;
                    for _ in 0..600_000 {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            break;
                        }
                        peak = peak.max(rss_kib(pid) as f64);
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    peak
                })
            };
            c.ok("f", "UID FETCH 1 (BODY.PEEK[])");
            c.logout();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let peak = sampler.join().unwrap_or(f64::NAN);
            rows.push(Row {
                name: label("RSS growth while relaying 50 MiB"),
                unit: "KiB",
                direct: f64::NAN,
                gate: peak - before,
                target: Target::ValueAtMost(2048.0),
            });
        }
    }

    if part("smtp") && step_enabled("smtp") {
        smtp(&s, &sz, &mut rows, &mut notes);
    }
    // After the SMTP step: its delivery count must not see these messages.
    if let Some(l) = &s.latency {
        latency::latency(&s, l, &sz, &mut rows, &mut notes);
    }

    // The report.
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| measurement | unit | direct | mailgate | ratio | target | met |\n|---|---|---|---|---|---|---|"
    );
    for r in rows
        .iter()
        .filter(|r| !(r.direct.is_nan() && r.gate.is_nan()))
    {
        let (target, met) = r.verdict();
        let ratio = if r.direct.is_nan() {
            String::new()
        } else {
            format!("{:.3}", r.gate / r.direct)
        };
        let fmt = |v: f64| {
            if v.is_nan() {
                "–".to_string()
            } else if v >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.3}")
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.unit,
            fmt(r.direct),
            fmt(r.gate),
            ratio,
            target,
            met
        );
    }
    for n in &notes {
        let _ = writeln!(out, "\n{n}");
    }
    let _ = writeln!(
        out,
        "\n{} interleaved rounds; medians over rounds for rates, percentiles over all samples for latencies.",
        sz.rounds
    );
    println!("{out}");
}

/// This binary as a minimal relay (`args` after [`MINIMAL_RELAY_ARG`]: the target, then the
/// CA file and [`minimal_relay::EVENT_LOOP_ARG`] when given): prints its address, serves until
/// its stdin closes (the benchmark ended) or 10,000 connections. With a CA file, TLS towards
/// the target (server name `localhost`).
fn relay_main(args: &[String]) {
    let target = args
        .first()
        .and_then(|a| a.parse().ok())
        .expect("target address");
    let event_loop = args.iter().any(|a| a == minimal_relay::EVENT_LOOP_ARG);
    let ca = args[1..]
        .iter()
        .find(|a| *a != minimal_relay::EVENT_LOOP_ARG);
    let tls = ca.map(|ca| {
        mailgate::net::tls::install_crypto_provider();
        mailgate::net::tls::client_config(Some(std::path::Path::new(ca)))
            .expect("the relay's CA file")
    });
    match event_loop {
        true => event_relay::serve(target, tls),
        false => minimal_relay::serve(target, tls),
    }
}

/// NOOPs through one of the minimal relays, over the rounds.
#[derive(Default)]
struct RelayNoops {
    /// Each NOOP's latency, ms.
    lat: Vec<f64>,
    /// The relay process's CPU over them.
    cpu_ms: f64,
}

/// `n` NOOPs through the minimal relay at `relay` (address, PID), plain to it (towards a TLS
/// upstream it does the TLS, as mailgate does): each one's latency (ms), and the relay's CPU
/// milliseconds over them.
fn relay_noops(relay: (SocketAddr, u32), n: usize) -> (Vec<f64>, f64) {
    let mut c = FastImap::connect(relay.0, None);
    c.login("bench", UPSTREAM_PW);
    let before = process_cpu_ms(relay.1);
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        c.ok(&format!("n{i}"), "NOOP");
        lat.push(ms(t.elapsed()));
    }
    let cpu_ms = process_cpu_ms(relay.1) - before;
    c.logout();
    (lat, cpu_ms)
}
