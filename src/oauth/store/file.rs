//! The encrypted file store: one file per account in `state_dir/tokens/`, kept apart from the
//! config file (which mailgate never rewrites).
//!
//! Encryption: XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`, pure Rust) with a random
//! 192-bit nonce per write, so nonces never need a counter that could repeat after a crash. The
//! additional data binds a file to its account: a file copied onto another account's name fails
//! to decrypt instead of logging in as the wrong mailbox. The key is 32 random bytes in
//! `state_dir/oauth.key`, made on first use with mode 0600; a key file others can read is
//! refused, because it opens every token.
//!
//! Writes are atomic: a temp file with a unique name in the same folder, written and fsynced,
//! renamed over the old file, then the folder fsynced (so the rename itself survives a power
//! cut). A reader sees the old or the new file, never a mix: a kill at any step leaves at most a
//! stray temp file, which readers ignore and the next write of that account removes.

use super::wire;
use super::{StoreError, TokenStore, Tokens};
use crate::owner::Owner;
use crate::sealed;
use rand::RngCore;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const MAGIC: &[u8; 8] = b"MGTOKEN1";
const KEY_FILE: &str = "oauth.key";
const TOKENS_DIR: &str = "tokens";

/// Steps of an atomic write, for tests that stop the write at each of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStep {
    /// The temp file exists, empty.
    Created,
    /// The new content is written to the temp file, not yet synced.
    Written,
    /// The temp file is synced.
    Synced,
    /// The temp file has replaced the old one.
    Renamed,
    /// The folder is synced: the write is durable.
    DirSynced,
}

/// An open file store: the folder and its key.
pub struct FileStore {
    dir: PathBuf,
    key_path: PathBuf,
    key: Zeroizing<[u8; 32]>,
    /// What the files get (see `owner`): the state folder's owner.
    owner: Option<Owner>,
}

impl FileStore {
    /// Opens the store in `state_dir`, making the folder and the key on first use.
    pub fn open(state_dir: &Path) -> Result<FileStore, StoreError> {
        let dir = state_dir.join(TOKENS_DIR);
        make_dir(state_dir, state_dir.parent().and_then(Owner::for_new_in))?;
        let owner = Owner::of(state_dir);
        make_dir(&dir, owner)?;
        let key_path = state_dir.join(KEY_FILE);
        let key = load_or_create_key(&key_path, owner)?;
        Ok(FileStore {
            dir,
            key_path,
            key,
            owner,
        })
    }

    /// The token file of `account`: its address, lower-cased and percent-encoded (so any
    /// address maps to one safe file name, and different addresses to different names).
    pub fn path(&self, account: &str) -> PathBuf {
        let mut name = String::new();
        for b in account.to_ascii_lowercase().bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'@' | b'.' | b'_' | b'-' | b'+') {
                name.push(b as char);
            } else {
                name.push_str(&format!("%{b:02X}"));
            }
        }
        self.dir.join(format!("{name}.token"))
    }
}

impl TokenStore for FileStore {
    /// The account's tokens; `None` if it was never authorized.
    fn load(&self, account: &str) -> Result<Option<Tokens>, StoreError> {
        let path = self.path(account);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StoreError::Io {
                    path,
                    what: "cannot read the token file",
                    error: source,
                })
            }
        };
        let corrupt = |reason| StoreError::Corrupt {
            path: path.clone(),
            key: self.key_path.clone(),
            account: account.to_owned(),
            reason,
        };
        let plain = self.unseal(account, &bytes).map_err(corrupt)?;
        let tokens = wire::from_json(&plain).ok_or_else(|| corrupt("unreadable content"))?;
        Ok(Some(tokens))
    }

    /// Deletes the account's tokens, if any: `mailgate setup` undoes its sign-in this way when
    /// the live test fails, so no token outlives an account that was never added.
    fn remove(&self, account: &str) -> Result<(), StoreError> {
        let path = self.path(account);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io {
                path,
                what: "remove",
                error: source,
            }),
        }
    }

    /// The note beside the token file saying that a running gateway holds newer tokens than
    /// the file ([`TokenStore::note_unsaved`]), if any.
    fn unsaved(&self, account: &str) -> Option<String> {
        fs::read_to_string(unsaved_path(&self.path(account))).ok()
    }

    /// Leaves that note (best effort: on a full disk an empty file may be all that fits, and
    /// even that may fail; the log says it too).
    fn note_unsaved(&self, account: &str, note: &str) {
        let _ = fs::write(unsaved_path(&self.path(account)), note);
    }

    /// Removes the note once the tokens are saved.
    fn clear_unsaved(&self, account: &str) {
        let _ = fs::remove_file(unsaved_path(&self.path(account)));
    }

    /// Replaces the account's tokens atomically.
    fn save(&self, account: &str, tokens: &Tokens) -> Result<(), StoreError> {
        self.save_with(account, tokens, &mut |_| Ok(()))
    }
}

impl FileStore {
    /// [`TokenStore::save`] with a hook called after each step; a hook error stops the write right
    /// there, leaving the files as a kill at that point would (tests use this).
    pub fn save_with(
        &self,
        account: &str,
        tokens: &Tokens,
        hook: &mut dyn FnMut(WriteStep) -> io::Result<()>,
    ) -> Result<(), StoreError> {
        let plain = wire::to_json(tokens);
        let bytes = self.seal(account, &plain)?;
        let path = self.path(account);
        // The store stays open for the process's life: a folder removed meanwhile is made
        // again, as opening it did when every use opened it anew.
        make_dir(&self.dir, self.owner)?;
        remove_stale_temps(&path);
        write_atomic_as(&path, &bytes, 0o600, self.owner, hook).map_err(|source| StoreError::Io {
            path,
            what: "cannot write the token file",
            error: source,
        })
    }
}

impl FileStore {
    /// The file's bytes for `plain`, the account's tokens as JSON, sealed for the account
    /// (see [`crate::sealed`]).
    fn seal(&self, account: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        sealed::seal(&self.key, MAGIC, account, plain).ok_or_else(|| StoreError::Key {
            path: self.key_path.clone(),
            reason: "encryption failed".into(),
        })
    }

    /// The JSON that [`FileStore::seal`] sealed, or why the bytes are not that.
    fn unseal(&self, account: &str, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, &'static str> {
        sealed::unseal(&self.key, MAGIC, account, bytes).map_err(sealed::Unsealed::reason)
    }
}

/// `NAME.token.unsaved`: never read as tokens.
fn unsaved_path(token: &Path) -> PathBuf {
    let mut p = token.as_os_str().to_owned();
    p.push(".unsaved");
    PathBuf::from(p)
}

/// Makes `dir` (mode 0700, given to `owner`) unless it exists.
fn make_dir(dir: &Path, owner: Option<Owner>) -> Result<(), StoreError> {
    let give = |()| match owner {
        Some(o) => o.apply_to_path(dir).map_err(|error| StoreError::Io {
            path: dir.to_owned(),
            what: "cannot give the folder the owner of the one it is in",
            error,
        }),
        None => Ok(()),
    };
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => give(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // The parent is missing: make the whole path (state_dir may be nested).
            fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_owned(),
                what: "cannot create the folder",
                error: source,
            })?;
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
            give(())
        }
        Err(source) => Err(StoreError::Io {
            path: dir.to_owned(),
            what: "cannot create the folder",
            error: source,
        }),
    }
}

/// Temp files of this target are `.NAME.tmp.PID.RANDOM` in the same folder.
fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.tmp.")
}

/// Removes temp files an interrupted write of this target left behind. Best effort.
fn remove_stale_temps(path: &Path) {
    let (Some(dir), prefix) = (path.parent(), temp_prefix(path)) else {
        return;
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    // Bounded by the folder's entries.
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Writes `bytes` to `path` atomically (temp, fsync, rename, fsync folder), mode 0600.
pub fn write_atomic(
    path: &Path,
    bytes: &[u8],
    hook: &mut dyn FnMut(WriteStep) -> io::Result<()>,
) -> io::Result<()> {
    write_atomic_as(path, bytes, 0o600, None, hook)
}

/// [`write_atomic`] with the file's mode and owner: both are set on the temp file, so the file
/// never appears under `path` with other ones.
pub fn write_atomic_as(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<Owner>,
    hook: &mut dyn FnMut(WriteStep) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        "{}{}.{:016x}",
        temp_prefix(path),
        std::process::id(),
        rand::random::<u64>()
    ));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    // A hook error stands for a kill: nothing runs after it, not even the clean-up.
    let killed = std::cell::Cell::new(false);
    let mut at = |step| hook(step).inspect_err(|_| killed.set(true));
    let result = (|| {
        if let Some(o) = owner {
            o.apply_to(&file)?;
        }
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        at(WriteStep::Created)?;
        file.write_all(bytes)?;
        at(WriteStep::Written)?;
        file.sync_all()?;
        at(WriteStep::Synced)?;
        fs::rename(&tmp, path)?;
        at(WriteStep::Renamed)?;
        fs::File::open(dir)?.sync_all()?;
        at(WriteStep::DirSynced)
    })();
    if result.is_err() && !killed.get() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads the key, or makes it: 32 random bytes written to a temp file (0600) and hard-linked
/// into place, so two processes starting at once agree on one key and nobody reads half a key.
fn load_or_create_key(
    path: &Path,
    owner: Option<Owner>,
) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let io_err = |what, source| StoreError::Io {
        path: path.to_owned(),
        what,
        error: source,
    };
    if !path.exists() {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".oauth.key.tmp.{}.{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let made = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            if let Some(o) = owner {
                o.apply_to(&f)?;
            }
            f.write_all(key.as_ref())?;
            f.sync_all()?;
            match fs::hard_link(&tmp, path) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
            fs::File::open(dir)?.sync_all()
        })();
        let _ = fs::remove_file(&tmp);
        made.map_err(|e| io_err("cannot create the key file", e))?;
    }
    let meta = fs::metadata(path).map_err(|e| io_err("cannot read the key file", e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::Key {
            path: path.to_owned(),
            reason: format!(
                "the key file is accessible to other users (mode {mode:03o}); run `chmod 600` on it"
            ),
        });
    }
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| io_err("cannot read the key file", e))?);
    let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| StoreError::Key {
        path: path.to_owned(),
        reason: format!("the key file holds {} bytes, not 32", bytes.len()),
    })?;
    Ok(Zeroizing::new(key))
}

#[cfg(test)]
mod tests {
    use super::super::{Grant, LastRefresh};
    use super::*;
    use crate::secret::Secret;

    fn tokens(access: &str, refresh: &str) -> Tokens {
        Tokens {
            grant: Grant::AuthorizationCode,
            refresh_token: Some(Secret::from(refresh)),
            access_token: Some(Secret::from(access)),
            expires_at: Some(1_900_000_000),
            refresh_expires_at: Some(1_907_776_000),
            scope: Some("mail".into()),
            last_refresh: None,
        }
    }

    /// `mailgate oauth authorize` run as root for a gateway that runs as another user: the
    /// folder, key and token files it makes belong to the state folder's owner.
    #[test]
    fn files_made_as_root_take_the_state_folders_owner() {
        use std::os::unix::fs::MetadataExt;
        assert!(
            rustix::process::geteuid().is_root(),
            "giving files away needs root (the tests run as root)"
        );
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        fs::create_dir(&state).unwrap();
        std::os::unix::fs::chown(&state, Some(64011), Some(64012)).unwrap();
        let store = FileStore::open(&state).unwrap();
        store.save("ola@example.no", &tokens("a", "r")).unwrap();
        for p in [
            state.join(TOKENS_DIR),
            state.join(KEY_FILE),
            store.path("ola@example.no"),
        ] {
            let m = fs::metadata(&p).unwrap();
            assert_eq!((m.uid(), m.gid()), (64011, 64012), "{}", p.display());
        }
    }

    #[test]
    fn round_trip_encrypted_and_key_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        assert_eq!(store.load("a@b.c").unwrap(), None);
        let t = tokens("access-SECRET-1", "refresh-SECRET-1");
        store.save("A@b.c", &t).unwrap();
        assert_eq!(store.load("a@B.c").unwrap(), Some(t));
        let raw = fs::read(store.path("a@b.c")).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.contains("SECRET") && !text.contains("refresh_token"));
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = fs::metadata(store.path("a@b.c"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The same key is found again.
        assert!(FileStore::open(dir.path())
            .unwrap()
            .load("a@b.c")
            .unwrap()
            .is_some());
    }

    #[test]
    fn damaged_swapped_or_foreign_files_give_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        store.save("a@b.c", &tokens("x", "y")).unwrap();
        // Another account's name: the additional data differs.
        fs::copy(store.path("a@b.c"), store.path("z@b.c")).unwrap();
        let e = store.load("z@b.c").unwrap_err().to_string();
        assert!(
            e.contains("cannot decrypt") && e.contains("mailgate oauth authorize z@b.c"),
            "{e}"
        );
        let mut raw = fs::read(store.path("a@b.c")).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        fs::write(store.path("a@b.c"), &raw).unwrap();
        assert!(matches!(
            store.load("a@b.c"),
            Err(StoreError::Corrupt { .. })
        ));
        fs::write(store.path("a@b.c"), b"{\"plain\": true}").unwrap();
        assert!(matches!(
            store.load("a@b.c"),
            Err(StoreError::Corrupt { .. })
        ));
        // A different key.
        fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
        store.save("a@b.c", &tokens("x", "y")).unwrap();
        assert!(FileStore::open(dir.path()).unwrap().load("a@b.c").is_err());
    }

    /// A file written before `refresh_expires_at` existed (this JSON is what that code wrote)
    /// loads, with the refresh token's expiry unknown; a file without a known expiry is
    /// written without the field, so older readers keep reading it.
    #[test]
    fn files_from_before_refresh_expiry_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let old = br#"{"version":1,"grant":"authorization_code","refresh_token":"r","access_token":"a","expires_at":1900000000,"scope":"mail","last_refresh":{"at":1000,"result":"ok","detail":""}}"#;
        fs::write(store.path("a@b.c"), store.seal("a@b.c", old).unwrap()).unwrap();
        let mut want = tokens("a", "r");
        want.refresh_expires_at = None;
        want.last_refresh = Some(LastRefresh {
            at: 1000,
            result: "ok".into(),
            detail: String::new(),
        });
        assert_eq!(store.load("a@b.c").unwrap(), Some(want.clone()));

        store.save("a@b.c", &want).unwrap();
        assert_eq!(store.load("a@b.c").unwrap(), Some(want.clone()));
        let raw = fs::read(store.path("a@b.c")).unwrap();
        let plain = store.unseal("a@b.c", &raw).unwrap();
        let text = String::from_utf8_lossy(&plain);
        assert!(!text.contains("refresh_expires_at"), "{text}");
    }

    #[test]
    fn readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        FileStore::open(dir.path()).unwrap();
        let key = dir.path().join(KEY_FILE);
        fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
        let e = FileStore::open(dir.path()).err().unwrap().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }

    /// A kill at any step of a write leaves the old or the new content, never anything else;
    /// the next write cleans up after it.
    #[test]
    fn interrupted_write_leaves_old_or_new() {
        let steps = [
            WriteStep::Created,
            WriteStep::Written,
            WriteStep::Synced,
            WriteStep::Renamed,
            WriteStep::DirSynced,
        ];
        for (i, &stop) in steps.iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let store = FileStore::open(dir.path()).unwrap();
            let old = tokens("old-access", "old-refresh");
            let new = tokens("new-access", "new-refresh");
            store.save("a@b.c", &old).unwrap();
            let r = store.save_with("a@b.c", &new, &mut |step| {
                if step == stop {
                    Err(io::Error::other("killed"))
                } else {
                    Ok(())
                }
            });
            assert!(r.is_err());
            let seen = store.load("a@b.c").unwrap().unwrap();
            if i < 3 {
                assert_eq!(seen, old, "stopped after {stop:?}");
            } else {
                assert_eq!(seen, new, "stopped after {stop:?}");
            }
            // The next write succeeds and removes the stray temp file.
            store.save("a@b.c", &new).unwrap();
            let names: Vec<String> = fs::read_dir(dir.path().join(TOKENS_DIR))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert_eq!(names, vec!["a@b.c.token".to_owned()], "after {stop:?}");
        }
    }

    #[test]
    fn file_names_are_safe_and_distinct() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let a = store.path("../x@y");
        assert_eq!(a.file_name().unwrap(), "..%2Fx@y.token");
        assert_eq!(a.parent().unwrap(), dir.path().join(TOKENS_DIR));
        assert_ne!(store.path("a b@c"), store.path("a_b@c"));
    }
}
