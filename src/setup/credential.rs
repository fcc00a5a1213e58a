//! The provider password's own file (mode 0600 in a 0700 folder, owned as the state folder),
//! and writing it and the config file.

use super::account::{appended, CredentialLine};
use super::{Credential, Plan, SetupError, Target};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where the upstream password of `email` is kept: (absolute path, path as written in the
/// config — relative to the config's folder when it lies below it).
pub fn credential_path(target: &Target, state_dir: &Path, email: &str) -> (PathBuf, String) {
    let safe: String = email
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '-' | '_' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let abs = state_dir
        .join("credentials")
        .join(format!("{safe}.password"));
    let base = target.path.parent().unwrap_or(Path::new("."));
    let written = abs
        .strip_prefix(base)
        .ok()
        .filter(|_| !base.as_os_str().is_empty())
        .map(|rel| rel.display().to_string())
        .unwrap_or_else(|| abs.display().to_string());
    (abs, written)
}

/// Writes the credential file (0600, folder 0700, both the state folder's owner) and appends
/// the account to the config file, or — for a target from [`Target::open_edit`] — replaces
/// its `[[account]]` table, the rest of the file byte for byte (temporary file + rename; the
/// file's mode, owner and group are kept). An edit with [`Credential::Keep`] leaves the
/// credential file as it is; one to OAuth deletes it. Returns the credential file written, if
/// any.
pub fn write(
    target: &Target,
    plan: &Plan,
    state_dir: &Path,
) -> Result<Option<PathBuf>, SetupError> {
    use crate::oauth::store::write_atomic_as;
    use crate::owner::Owner;
    use std::os::unix::fs::PermissionsExt;
    let werr = |path: &Path, e: std::io::Error| SetupError::Write {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let secret = match &plan.credential {
        Credential::Password(p) => {
            let (abs, written) = credential_path(target, state_dir, &plan.email);
            Some((p, abs, written))
        }
        Credential::OAuth { .. } | Credential::Keep => None,
    };
    let line = match (&plan.credential, &secret) {
        (Credential::Keep, _) => CredentialLine::Kept(super::edit::kept(target)?),
        (_, Some((_, _, written))) => CredentialLine::File(written),
        (_, None) => CredentialLine::File(""),
    };
    let text = match target.old.as_ref().and_then(|o| o.index) {
        Some(index) => super::edit::replaced(target, index, target.account(plan, line))?,
        None => appended(target, target.account(plan, line))?,
    };
    // The credential file first: a config naming a file that is not there would not load.
    if let Some((p, abs, _)) = &secret {
        let dir = abs.parent().unwrap_or(Path::new("."));
        if !state_dir.is_dir() {
            std::fs::create_dir_all(state_dir).map_err(|e| werr(state_dir, e))?;
            std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| werr(state_dir, e))?;
            if let Some(o) = state_dir.parent().and_then(Owner::for_new_in) {
                o.apply_to_path(state_dir).map_err(|e| werr(state_dir, e))?;
            }
        }
        let owner = Owner::of(state_dir);
        private_dir(dir, owner).map_err(|e| werr(dir, e))?;
        let mut bytes = Zeroizing::new(p.expose().as_bytes().to_vec());
        bytes.push(b'\n');
        write_atomic_as(abs, &bytes, 0o600, owner, &mut |_| Ok(())).map_err(|e| werr(abs, e))?;
    }
    let secret_file = secret.map(|(_, abs, _)| abs);
    if let Err(e) = write_config(target, &text) {
        // No account names the credential file now: do not leave the secret behind (an edit's
        // file is the account's own, named by the file as it is).
        if let Some(f) = secret_file.as_ref().filter(|_| !target.is_edit()) {
            let _ = std::fs::remove_file(f);
        }
        return Err(werr(&target.path, e));
    }
    if target.is_edit() && matches!(plan.credential, Credential::OAuth { .. }) {
        // The account signs in with OAuth now: its old password is not kept around.
        let (abs, _) = credential_path(target, state_dir, &plan.email);
        let _ = std::fs::remove_file(abs);
    }
    Ok(secret_file)
}

/// Replaces the config file with `text` (temporary file + rename). A new file holds no secret:
/// owner read-write, group read (for a `mailgate` group). A replaced one keeps its mode, owner
/// and group, or the service could not read it.
pub(super) fn write_config(target: &Target, text: &str) -> std::io::Result<()> {
    use crate::owner::Owner;
    use std::os::unix::fs::PermissionsExt;
    let (mode, owner) = match std::fs::metadata(&target.path) {
        Ok(m) => (m.permissions().mode() & 0o7777, Owner::of(&target.path)),
        Err(_) => (
            0o640,
            target.path.parent().and_then(|d| {
                Owner::for_new_in(if d.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    d
                })
            }),
        ),
    };
    crate::oauth::store::write_atomic_as(
        &target.path,
        text.as_bytes(),
        mode,
        owner,
        &mut |_| Ok(()),
    )
}

/// The credentials folder: made with mode 0700 for `owner`, or, when it exists, tightened to
/// 0700 if group or others could enter it (it holds nothing but provider passwords, and the
/// README promises 0700; like OpenSSH's `~/.ssh`, but fixed instead of refused, since
/// mailgate made it).
fn private_dir(dir: &Path, owner: Option<crate::owner::Owner>) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => match owner {
            Some(o) => o.apply_to_path(dir),
            None => Ok(()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {
            let mode = std::fs::metadata(dir)?.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700))?;
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}
