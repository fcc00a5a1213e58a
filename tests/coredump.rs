//! Core dumps are off for `mailgate run` (a dump would hold provider passwords and tokens)
//! unless `[server] allow_core_dumps = true`: the process's soft core-file limit, read from
//! /proc/PID/limits, is 0 even when mailgate was started with a higher one, and is left as
//! started with the setting.
//!
//! Run: `cargo test --test coredump`

mod support;

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use support::{Account, GateConfig, Upstream};

/// The soft limit mailgate is started with (inherited from this test process).
const STARTED_WITH: u64 = 4096;

fn config() -> GateConfig {
    GateConfig::new().account(
        Account::password("ola@example.no", "Core-pw-51ab")
            .imap(Upstream::plain("127.0.0.1:9").password("x")),
    )
}

/// The soft "Max core file size" of process `pid`, as /proc shows it.
fn core_soft_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("read limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or_else(|| panic!("no core line in:\n{limits}"));
    line["Max core file size".len()..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn core_dumps_are_off_unless_allowed() {
    // Children inherit the limit: start mailgate with core files allowed (a few KiB).
    let hard = getrlimit(Resource::Core).maximum;
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(hard.map_or(STARTED_WITH, |h| h.min(STARTED_WITH))),
            maximum: hard,
        },
    )
    .expect("raise the soft core limit");
    let started_with = getrlimit(Resource::Core)
        .current
        .expect("a finite soft limit")
        .to_string();
    assert_ne!(
        started_with, "0",
        "cannot start mailgate with core dumps on"
    );

    let mut off = config().start();
    assert_eq!(core_soft_limit(off.pid()), "0", "{}", off.log());
    off.stop();

    let mut on = config().server("allow_core_dumps", true).start();
    assert_eq!(core_soft_limit(on.pid()), started_with, "{}", on.log());
    assert!(
        on.log()
            .contains("core dumps allowed (allow_core_dumps = true)"),
        "{}",
        on.log()
    );
    on.stop();
}
