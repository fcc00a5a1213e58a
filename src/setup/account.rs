//! The new `[[account]]` table, and the file's text with it appended (the old text kept byte
//! for byte).

use super::{Credential, Plan, SetupError, Target};
use crate::config::TlsMode;
use crate::discover::{Found, Source};
use crate::secret::Secret;
use toml_edit::{value, DocumentMut, Item, Table};

/// How the new account's upstream password is written.
#[derive(Clone, Copy)]
pub(super) enum CredentialLine<'a> {
    /// Inline: the in-memory live-test config, and the shared store's account (sealed whole
    /// there); never written to a file.
    Inline(&'a Secret),
    /// `password_file = "…"`.
    File(&'a str),
    /// The password lines of the account being changed (its whole old table), copied: an
    /// edit that keeps the stored password.
    Kept(&'a Table),
}

/// The keys that name an upstream password.
const PASSWORD_KEYS: [&str; 3] = ["password", "password_file", "password_env"];

/// The old account's upstream password lines for `which` (`imap` or `smtp`), if it has any.
pub(super) fn kept_lines<'a>(old: &'a Table, which: &str) -> Vec<(&'a str, &'a Item)> {
    old.get(which)
        .and_then(Item::as_table_like)
        .map(|t| {
            PASSWORD_KEYS
                .iter()
                .filter_map(|k| t.get(k).map(|v| (*k, v)))
                .collect()
        })
        .unwrap_or_default()
}

/// The `[[account]]` table for `plan`.
pub(super) fn account_table(plan: &Plan, credential: CredentialLine) -> Table {
    let mut account = Table::new();
    account.insert("email", value(plan.email.as_str()));
    account.insert(
        "local_password_hash",
        value(plan.local_password_hash.as_str()),
    );
    if let Some(mut k) = account.key_mut("local_password_hash") {
        k.leaf_decor_mut().set_prefix(
            "# argon2 hash of the local password the mail client uses (new one: mailgate hash-password)\n",
        );
    }
    let preset_id = preset_id(plan);
    if let Some(id) = preset_id {
        account.insert("provider", value(id));
        if let Some(mut k) = account.key_mut("provider") {
            k.leaf_decor_mut().set_prefix(format!(
                "# Servers from the built-in preset (found by: {})\n",
                plan.found.imap.source
            ));
        }
    }
    let imap = endpoint_table(plan, preset_id, &plan.found.imap, Some(credential));
    if !imap.is_empty() {
        account.insert("imap", Item::Table(imap));
    }
    if let Some(smtp) = &plan.found.smtp {
        let mut t = endpoint_table(plan, preset_id, smtp, None);
        // A password of SMTP's own (else SMTP uses IMAP's) is kept as well.
        if let CredentialLine::Kept(old) = credential {
            for (k, v) in kept_lines(old, "smtp") {
                t.insert(k, v.clone());
            }
        }
        if !t.is_empty() {
            account.insert("smtp", Item::Table(t));
        }
    }
    if let Some(t) = oauth_table(&plan.credential) {
        account.insert("oauth2", Item::Table(t));
    } else if let CredentialLine::Kept(old) = credential {
        // An OAuth account edited with its credential kept: its sign-in settings, as they are.
        if let Some(t) = old.get("oauth2") {
            account.insert("oauth2", t.clone());
        }
    }
    if let Some(client) = plan.client.filter(|c| *c != crate::mailbox::Profile::None) {
        let mut folders = Table::new();
        folders.insert("client", value(client.as_str()));
        folders.decor_mut().set_prefix(
            "# The folder names the mail client expects (see the README, \"Folders the client expects\")\n",
        );
        account.insert("folders", Item::Table(folders));
    }
    account
        .decor_mut()
        .set_prefix(format!("\n# {} — added by `mailgate setup`.\n", plan.email));
    account
}

/// Settings of a changed account that neither the wizard nor the page asks about: kept from
/// its old table when the new one does not set them, so that an edit of the servers or the
/// password never drops an alias, the folder names or a CA file written by hand.
const UNASKED: [&str; 2] = ["aliases", "folders"];
/// The same for each endpoint (`[account.imap]`, `[account.smtp]`).
const UNASKED_ENDPOINT: [&str; 2] = ["ca_file", "tls_server_name"];

/// `new` with the [`UNASKED`] settings of `old` it lacks (an endpoint's only while the new
/// account has that endpoint).
pub(super) fn keep_unasked(new: &mut Table, old: &Table, has_smtp: bool) {
    for key in UNASKED {
        if let (None, Some(v)) = (new.get(key), old.get(key)) {
            new.insert(key, v.clone());
        }
    }
    for which in ["imap", "smtp"] {
        if which == "smtp" && !has_smtp {
            continue;
        }
        let Some(o) = old.get(which).and_then(Item::as_table_like) else {
            continue;
        };
        for key in UNASKED_ENDPOINT {
            let Some(v) = o.get(key) else { continue };
            let entry = new.entry(which).or_insert(Item::Table(Table::new()));
            if let Some(t) = entry.as_table_like_mut() {
                if t.get(key).is_none() {
                    t.insert(key, v.clone());
                }
            }
        }
    }
}

/// `doc` with `account` as its one `[[account]]`.
pub(super) fn accounts_doc(mut doc: DocumentMut, account: Table) -> DocumentMut {
    let mut accounts = toml_edit::ArrayOfTables::new();
    accounts.push(account);
    doc.insert("account", Item::ArrayOfTables(accounts));
    doc
}

/// The preset the servers are written as (`provider = "…"`), when they came from one.
fn preset_id(plan: &Plan) -> Option<&'static str> {
    match (&plan.found.imap.source, plan.found.preset) {
        (Source::Provider(_) | Source::Domain(_) | Source::Mx { .. }, Some(p)) => Some(p.id),
        _ => None,
    }
}

/// `[account.imap]` or `[account.smtp]` for the server `f`: written out unless a preset
/// names it; the CA file; and `credential` (the IMAP table's; none for OAuth).
fn endpoint_table(
    plan: &Plan,
    preset_id: Option<&str>,
    f: &Found,
    credential: Option<CredentialLine>,
) -> Table {
    let mut t = Table::new();
    if preset_id.is_none() {
        t.insert("server", value(f.address()));
        t.insert("tls", value(f.tls.as_str()));
        if let Some(mut k) = t.key_mut("server") {
            k.leaf_decor_mut().set_prefix(match &f.source {
                Source::Given => "# Given to `mailgate setup`\n".to_owned(),
                found => format!("# Found by: {found}\n"),
            });
        }
        if f.tls == TlsMode::None {
            t.insert("allow_plaintext", value(true));
        }
        if f.username != plan.email {
            t.insert("username", value(f.username.as_str()));
        }
    }
    if let Some(ca) = &plan.ca_file {
        t.insert("ca_file", value(ca.display().to_string()));
    }
    let oauth = matches!(plan.credential, Credential::OAuth { .. });
    match credential.filter(|_| !oauth) {
        None => {}
        Some(CredentialLine::Kept(old)) => {
            for (k, v) in kept_lines(old, "imap") {
                t.insert(k, v.clone());
            }
        }
        Some(CredentialLine::Inline(s)) => {
            t.insert("password", value(s.expose()));
        }
        Some(CredentialLine::File(path)) => {
            t.insert("password_file", value(path));
            if let Some(mut k) = t.key_mut("password_file") {
                k.leaf_decor_mut().set_prefix(
                    "# The provider password, in a file only its owner can read (mode 0600)\n",
                );
            }
        }
    }
    t
}

/// `[account.oauth2]`, for an OAuth credential.
fn oauth_table(credential: &Credential) -> Option<Table> {
    let Credential::OAuth {
        provider,
        endpoints,
        scopes,
        client_id,
        client_secret_env,
        tenant,
    } = credential
    else {
        return None;
    };
    let mut t = Table::new();
    if let Some(p) = provider {
        t.insert("provider", value(*p));
    }
    if let Some((authorize, token)) = endpoints {
        t.insert("authorize_url", value(authorize.as_str()));
        t.insert("token_url", value(token.as_str()));
    }
    if !scopes.is_empty() {
        t.insert("scopes", value(scopes.iter().collect::<toml_edit::Array>()));
    }
    t.insert("client_id", value(client_id.as_str()));
    if let Some(var) = client_secret_env {
        t.insert("client_secret_env", value(var.as_str()));
    }
    if let Some(tenant) = tenant {
        t.insert("tenant", value(tenant.as_str()));
    }
    Some(t)
}

/// The file's text with `account` added after its last byte: the old text stays exactly as it
/// was, whatever it ends with (a comment, a table, no newline). Editing the parsed document
/// instead would move a trailing comment below the new account. The result is parsed again:
/// it must hold one account more than before, the new one last.
pub(super) fn appended(target: &Target, account: Table) -> Result<String, SetupError> {
    let count = |d: &DocumentMut| {
        d.get("account")
            .and_then(Item::as_array_of_tables)
            .map_or(0, |a| a.len())
    };
    let email = account
        .get("email")
        .and_then(Item::as_str)
        .map(str::to_owned);
    let mut alone = DocumentMut::new();
    append_account(&mut alone, account);
    let mut text = target.text.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&alone.to_string());
    let unusable = |reason: String| SetupError::Write {
        path: target.path.clone(),
        reason: format!("{reason}; add the account by hand"),
    };
    let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        unusable(format!(
            "the file with the account appended is not valid TOML: {}",
            e.message().trim()
        ))
    })?;
    let last = doc
        .get("account")
        .and_then(Item::as_array_of_tables)
        .and_then(|a| a.iter().last())
        .and_then(|a| a.get("email"))
        .and_then(Item::as_str);
    if count(&doc) != count(&target.doc) + 1 || last.map(str::to_owned) != email {
        return Err(unusable(
            "the appended account would not be read as a new [[account]]".into(),
        ));
    }
    Ok(text)
}

/// Appends `table` as the last `[[account]]`, after everything in the file (toml_edit places
/// tables by position; the new ones get positions after the last existing one).
fn append_account(doc: &mut DocumentMut, mut table: Table) {
    let mut last = 0;
    fn max_pos(t: &Table, last: &mut usize) {
        if let Some(p) = t.position() {
            *last = (*last).max(p);
        }
        for (_, item) in t.iter() {
            match item {
                Item::Table(sub) => max_pos(sub, last),
                Item::ArrayOfTables(a) => a.iter().for_each(|sub| max_pos(sub, last)),
                _ => {}
            }
        }
    }
    max_pos(doc.as_table(), &mut last);
    let mut next = last + 1;
    table.set_position(next);
    for (_, item) in table.iter_mut() {
        if let Item::Table(sub) = item {
            next += 1;
            sub.set_position(next);
        }
    }
    match doc
        .get_mut("account")
        .and_then(Item::as_array_of_tables_mut)
    {
        Some(accounts) => accounts.push(table),
        None => {
            let mut accounts = toml_edit::ArrayOfTables::new();
            accounts.push(table);
            doc.insert("account", Item::ArrayOfTables(accounts));
        }
    }
}
