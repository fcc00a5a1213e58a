//! `mailgate web-password`: the connect page's operator password. Asked twice at a terminal
//! (or the first line of stdin), hashed with argon2, and written as `[web]
//! operator_password_hash` into the config file with toml_edit: the rest of the file stays
//! byte for byte, and it is replaced as `setup` replaces it (temporary file + rename, mode,
//! owner and group kept). A running mailgate uses it after a reload (SIGHUP).

use anyhow::{bail, Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use toml_edit::{DocumentMut, Item, Value};

/// Where `[web]` listens when the file has no `[web]` table yet.
const DEFAULT_LISTEN: &str = "127.0.0.1:8025";

/// Reads the password, hashes it, and writes it into the file at `path`.
pub fn web_password(path: &Path) -> Result<()> {
    let text = mailgate::config::read(path)?;
    let password = super::password::read_password("Operator password for the connect page: ")?;
    let hash = mailgate::account::hash_password(&password)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
    let (new, added) = with_hash(&text, &hash).with_context(|| {
        format!(
            "{}: cannot set [web] operator_password_hash",
            path.display()
        )
    })?;
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    let mode = meta.permissions().mode() & 0o7777;
    let owner = mailgate::owner::Owner::of(path);
    mailgate::oauth::store::write_atomic_as(path, new.as_bytes(), mode, owner, &mut |_| Ok(()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    if added {
        println!(
            "Added [web] with listen = \"{DEFAULT_LISTEN}\" and the operator password to {}.",
            path.display()
        );
    } else {
        println!("Operator password set in {}.", path.display());
    }
    println!("A running mailgate uses it after a reload (`kill -HUP <pid>`); a new [web] table needs a restart.");
    Ok(())
}

/// `text` with `[web] operator_password_hash = "hash"` set (the line replaced in place, its
/// comments kept, or added to `[web]`); a file without `[web]` gets one at its end. Returns
/// the new text and whether `[web]` was added.
fn with_hash(text: &str, hash: &str) -> Result<(String, bool)> {
    let mut doc: DocumentMut = text.parse().context("the file is not valid TOML")?;
    if !doc.contains_key("web") {
        // Appended as text: toml_edit would put a new table before the file's last comments.
        let mut new = text.to_owned();
        if !new.is_empty() && !new.ends_with('\n') {
            new.push('\n');
        }
        let (listen, hash) = (Value::from(DEFAULT_LISTEN), Value::from(hash));
        new.push_str(&format!(
            "\n[web]\nlisten = {listen}\noperator_password_hash = {hash}\n"
        ));
        return Ok((new, true));
    }
    let Some(web) = doc.get_mut("web").and_then(Item::as_table_like_mut) else {
        bail!("`web` is not a table");
    };
    let mut value = Value::from(hash);
    match web
        .get_mut("operator_password_hash")
        .and_then(Item::as_value_mut)
    {
        Some(old) => {
            *value.decor_mut() = old.decor().clone();
            *old = value;
        }
        None => {
            web.insert("operator_password_hash", Item::Value(value));
        }
    }
    Ok((doc.to_string(), false))
}

#[cfg(test)]
mod tests {
    use super::with_hash;

    #[test]
    fn replaces_or_adds_the_line_and_keeps_the_rest() {
        let text = "# top\n[server]\nimap_listen = \"127.0.0.1:1143\" # mine\n\n[web]\nlisten = \"127.0.0.1:8025\"\n# the hash:\noperator_password_hash = \"old\"   # set by web-password\n\n[[account]]\nemail = \"a@b.no\"\n";
        let (new, added) = with_hash(text, "$argon2id$new").unwrap();
        assert!(!added);
        assert_eq!(new, text.replace("\"old\"", "\"$argon2id$new\""));
        let without =
            "[server]\n\n[web]\nlisten = \"127.0.0.1:8025\"\n\n[[account]]\nemail = \"a@b.no\"\n";
        let (new, _) = with_hash(without, "h").unwrap();
        assert!(
            new.starts_with(
                "[server]\n\n[web]\nlisten = \"127.0.0.1:8025\"\noperator_password_hash = \"h\"\n"
            ),
            "{new}"
        );
        assert!(
            new.ends_with("\n[[account]]\nemail = \"a@b.no\"\n"),
            "{new}"
        );
        let (new, added) = with_hash("[server]\n# end\n", "h").unwrap();
        assert!(added);
        assert!(new.starts_with("[server]\n# end\n"), "{new}");
        assert!(
            new.ends_with("[web]\nlisten = \"127.0.0.1:8025\"\noperator_password_hash = \"h\"\n"),
            "{new}"
        );
        assert!(with_hash("web = 1\n", "h").is_err());
        assert!(with_hash("[server\n", "h").is_err());
    }
}
