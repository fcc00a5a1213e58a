//! The `poll-warm` step's mailgate: a second instance of the same release binary, started as
//! the main one is (`setup::start_gate`), with `[server.warm_sessions]` on, a `[metrics]`
//! listener and one account only (`l-pollw@…`, behind the same delay proxy, TLS upstream).
//! The main instance keeps warm sessions off, so both rows come from one run. Its accounts
//! always come from its config file, also with `MAILGATE_BENCH_STORE=postgres` (the store's
//! login path is measured by the `login` step, not here).

use super::support::scrape::{fetch, Scrape};
use super::*;

/// The upstream users of the step: one per side, as in `poll`.
pub const WARM_DIRECT: &str = "pollwd";
pub const WARM_GATE: &str = "pollw";

const WARM_LOGINS: &str = "mailgate_imap_warm_logins_total";
const WARM_CONNECTIONS: &str = "mailgate_imap_warm_connections";

pub struct Warm {
    pub gate: Mailgate,
}

impl Warm {
    /// Starts the instance; `imap` is the upstream of the latency accounts (the IMAP proxy).
    pub fn start(imap: Upstream) -> Warm {
        let config = GateConfig::new()
            .limits(&[("auth_failure_delay_ms", 0)])
            .server("warm_sessions.keep_secs", 60u64)
            .server("warm_sessions.per_account", 2u64)
            .metrics(None)
            .account(
                Account::password(&format!("l-{WARM_GATE}@{DOMAIN}"), LOCAL_PW)
                    .imap(imap.login(WARM_GATE, UPSTREAM_PW)),
            );
        Warm {
            gate: start_gate(&config, None),
        }
    }

    /// The note on the warm logins, after `cycles` timed polls (plus the untimed first
    /// login). Panics when fewer than `cycles - 1` were hits: a run whose kept connections
    /// were not used would otherwise be reported as the warm figure.
    pub fn note(&self, cycles: usize) -> String {
        let addr = self.gate.metrics_addr.expect("warm instance has /metrics");
        let scrape = fetch(addr).and_then(Scrape::parse);
        let scrape = scrape.unwrap_or_else(|e| panic!("scraping the warm instance: {e}"));
        let hits = scrape.value(WARM_LOGINS, &[("result", "hit")]);
        let misses = scrape.value(WARM_LOGINS, &[("result", "miss")]);
        let kept = scrape.value(WARM_CONNECTIONS, &[]);
        assert!(
            hits >= cycles.saturating_sub(1) as f64,
            "warm instance: {hits} warm hits over {cycles} timed polls (misses {misses}): \
             the poll-warm figures are not of warm sessions"
        );
        format!(
            "warm sessions on: {cycles} timed polls and one untimed first login, \
             {hits:.0} hits and {misses:.0} misses ({WARM_LOGINS}), \
             {kept:.0} upstream connections kept at the end"
        )
    }
}
