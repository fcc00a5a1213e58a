//! Who owns the files mailgate writes for a service that runs as another user.
//!
//! `mailgate setup` and `mailgate oauth authorize` are often run as root (sudo) for a gateway
//! that runs as the unprivileged `mailgate` user. A file they replace keeps its owner and group
//! (as `sed -i`, `install` and Postfix's `postconf -e` keep them), and a new file or folder
//! takes the owner and group of the folder it is made in — under `state_dir` that is the
//! service's own folder (systemd's `StateDirectory`). Only root can give a file away: a process
//! run as anyone else makes files it owns, as before.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A user and group id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl Owner {
    /// The owner of `path` (a file that will be replaced, or the folder a new file goes in);
    /// `None` when it cannot be read (the file is then left to whoever makes it).
    pub fn of(path: &Path) -> Option<Owner> {
        std::fs::metadata(path).ok().map(|m| Owner {
            uid: m.uid(),
            gid: m.gid(),
        })
    }

    /// The owner a new file in `dir` gets: `dir`'s.
    pub fn for_new_in(dir: &Path) -> Option<Owner> {
        Owner::of(dir)
    }

    /// Gives the open file to this owner, when this process is root and the owner differs
    /// (before it is renamed into place, so the file never appears with the wrong owner).
    pub fn apply_to(&self, file: &std::fs::File) -> io::Result<()> {
        let meta = file.metadata()?;
        if !is_root() || (meta.uid(), meta.gid()) == (self.uid, self.gid) {
            return Ok(());
        }
        std::os::unix::fs::fchown(file, Some(self.uid), Some(self.gid))
    }

    /// [`Owner::apply_to`] for a path (a folder just made).
    pub fn apply_to_path(&self, path: &Path) -> io::Result<()> {
        let meta = std::fs::symlink_metadata(path)?;
        if !is_root() || (meta.uid(), meta.gid()) == (self.uid, self.gid) {
            return Ok(());
        }
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid))
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
