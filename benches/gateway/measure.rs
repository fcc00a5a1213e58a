//! Measuring a step: [`measure_pair`] runs it on both sides for one round and returns
//! (direct, mailgate) (rounds alternate which side goes first so neither always runs on a
//! warmer cache), and [`CpuLog`] adds up mailgate's own CPU time per step.

use super::*;

pub fn measure_pair<T>(
    round: usize,
    cpu: &mut CpuLog,
    step: &str,
    ops: usize,
    mut f: impl FnMut(bool) -> T,
) -> Option<(T, T)> {
    if !step_enabled(step) {
        return None;
    }
    let mut gate = |f: &mut dyn FnMut(bool) -> T| {
        let before = CpuSample::read(cpu.pid);
        let g = f(false);
        cpu.add(step, CpuSample::read(cpu.pid).since(&before), ops);
        g
    };
    Some(if round.is_multiple_of(2) {
        let d = f(true);
        (d, gate(&mut f))
    } else {
        let g = gate(&mut f);
        (f(true), g)
    })
}

/// Which steps run (`MAILGATE_BENCH_STEPS`, comma-separated; all when unset): for profiling
/// one workload without the others.
pub fn step_enabled(name: &str) -> bool {
    std::env::var("MAILGATE_BENCH_STEPS")
        .map_or(true, |steps| steps.split(',').any(|s| s.trim() == name))
}

/// mailgate's own CPU time (user + system, all threads) per step: a figure that does not
/// depend on what else the machine is doing, unlike the wall-clock ratios.
pub struct CpuLog {
    pub pid: u32,
    /// Step name, CPU milliseconds, operations.
    pub steps: Vec<(String, f64, usize)>,
}

impl CpuLog {
    pub fn add(&mut self, step: &str, ms: f64, ops: usize) {
        match self.steps.iter_mut().find(|s| s.0 == step) {
            Some(s) => {
                s.1 += ms;
                s.2 += ops;
            }
            None => self.steps.push((step.to_string(), ms, ops)),
        }
    }

    /// One note line: microseconds of mailgate CPU per operation for each step (none when no
    /// step ran).
    pub fn note(&self, mode: &str) -> Option<String> {
        let parts: Vec<String> = self
            .steps
            .iter()
            .map(|(name, ms, ops)| format!("{name} {:.0} µs", ms * 1000.0 / (*ops).max(1) as f64))
            .collect();
        if parts.is_empty() {
            return None;
        }
        Some(format!(
            "{mode}: mailgate CPU per operation: {}",
            parts.join(", ")
        ))
    }
}

/// One reading of a process's CPU counters, taken before and after a step.
pub struct CpuSample {
    /// Threads alive at the reading.
    pub tids: Vec<u32>,
    /// Their CPU time from the scheduler's nanosecond counters (`/proc/PID/task/*/schedstat`).
    pub live_ns: u64,
    /// The whole process's user + system time in clock ticks (`/proc/PID/stat`), which also
    /// counts threads that have ended.
    pub ticks: u64,
}

impl CpuSample {
    pub fn read(pid: u32) -> CpuSample {
        let mut tids = Vec::new();
        let mut live_ns = 0u64;
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for t in tasks.flatten() {
                let Some(tid) = t.file_name().to_str().and_then(|n| n.parse().ok()) else {
                    continue;
                };
                let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
                live_ns += stat
                    .split(' ')
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                tids.push(tid);
            }
        }
        let ticks = stat_ticks(std::path::Path::new(&format!("/proc/{pid}/stat")));
        CpuSample {
            tids,
            live_ns,
            ticks,
        }
    }

    /// CPU milliseconds used since `before`. The nanosecond counters are exact but only cover
    /// live threads, so they are used when every thread of `before` is still there; when one
    /// ended in between (tokio's blocking-pool threads, which run the argon2 of first logins,
    /// end after 10 s idle) its time would be lost, and the process total in 10 ms ticks is
    /// used instead: coarse, but complete.
    pub fn since(&self, before: &CpuSample) -> f64 {
        if before.tids.iter().all(|t| self.tids.contains(t)) {
            self.live_ns.saturating_sub(before.live_ns) as f64 / 1e6
        } else {
            // USER_HZ is 100 on the Linux builds this runs on (sysconf(_SC_CLK_TCK)).
            self.ticks.saturating_sub(before.ticks) as f64 * 10.0
        }
    }
}

/// utime + stime in clock ticks from a `/proc/.../stat` file (fields 14 and 15; counted after
/// the parenthesised command name, which may itself hold spaces).
pub fn stat_ticks(path: &std::path::Path) -> u64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

/// A process's CPU milliseconds so far, from its total in clock ticks (USER_HZ is 100 on the
/// Linux builds this runs on): coarse, but unlike the per-thread counters it keeps the time of
/// threads that ended (the minimal relay's per-connection threads).
pub fn process_cpu_ms(pid: u32) -> f64 {
    stat_ticks(std::path::Path::new(&format!("/proc/{pid}/stat"))) as f64 * 10.0
}

/// Writes what the servers left dirty in the page cache to disk, between two timed sides: else
/// the kernel's writeback of one side's mail lands in the middle of the next side's timing.
pub fn settle_disk() {
    let _ = std::process::Command::new("sync").status();
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
