//! Core dumps off: a dump of mailgate holds provider passwords, OAuth tokens and the token
//! store key in plain memory, and lands in a file (or systemd-coredump's journal) that other
//! people read. Like OpenSSH's sshd and Dovecot's processes, mailgate asks the kernel for none.
//!
//! Two switches, because either alone leaves a hole: `RLIMIT_CORE = 0` stops the classic core
//! file, but a `core_pattern` that pipes to a helper ignores that limit; `PR_SET_DUMPABLE = 0`
//! stops both, and also keeps other processes of the same user from attaching a debugger or
//! reading `/proc/PID/mem`. Both are set at the very start, before any secret is read; `mailgate
//! run` with `[server] allow_core_dumps = true` puts back what the process was started with.

use rustix::process::{
    getrlimit, set_dumpable_behavior, setrlimit, DumpableBehavior, Resource, Rlimit,
};

/// What the process was started with, to put back when core dumps are allowed.
#[derive(Debug, Clone)]
pub struct Before {
    core: Rlimit,
}

/// Turns core dumps off for this process (best effort: a failure is returned for the log, the
/// process goes on). Returns what was there before.
pub fn forbid() -> (Before, Result<(), rustix::io::Errno>) {
    let core = getrlimit(Resource::Core);
    let result = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: core.maximum,
        },
    )
    .and(set_dumpable_behavior(DumpableBehavior::NotDumpable));
    (Before { core }, result)
}

/// Puts back the core limit the process was started with and makes it dumpable again
/// (`allow_core_dumps = true`).
pub fn allow(before: &Before) -> Result<(), rustix::io::Errno> {
    setrlimit(Resource::Core, before.core)?;
    set_dumpable_behavior(DumpableBehavior::Dumpable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::process::dumpable_behavior;

    /// The dumpable flag cannot be read from outside a process run by root (its /proc files
    /// stay root's either way), so it is checked here, on the test process itself.
    #[test]
    fn forbid_then_allow() {
        let (before, result) = forbid();
        result.expect("forbid");
        assert_eq!(dumpable_behavior(), Ok(DumpableBehavior::NotDumpable));
        assert_eq!(getrlimit(Resource::Core).current, Some(0));
        allow(&before).expect("allow");
        assert_eq!(dumpable_behavior(), Ok(DumpableBehavior::Dumpable));
        assert_eq!(getrlimit(Resource::Core).current, before.core.current);
    }
}
