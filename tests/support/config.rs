//! One builder for the mailgate configs the tests and the benchmark run:
//!
//! ```ignore
//! GateConfig::new()
//!     .server("auth_failure_delay_ms", 10)
//!     .account(Account::password(EMAIL, LOCAL_PW).imap(Upstream::plain(addr).login(USER, PW)))
//!     .metrics(None)
//!     .start()
//! ```
//!
//! Every value is written as a TOML value of its type (strings quoted and escaped), tables in
//! the order mailgate's README documents them. A test whose config is itself under test (a
//! broken file, an exact error wording) writes its TOML by hand instead.

use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use super::mailgate::{cached_hash, Mailgate};

/// A value as TOML writes it.
pub trait TomlValue {
    fn toml(&self) -> String;
}

impl TomlValue for str {
    fn toml(&self) -> String {
        toml_str(self)
    }
}
impl TomlValue for String {
    fn toml(&self) -> String {
        toml_str(self)
    }
}
impl TomlValue for Path {
    fn toml(&self) -> String {
        toml_str(&self.display().to_string())
    }
}
impl TomlValue for PathBuf {
    fn toml(&self) -> String {
        self.as_path().toml()
    }
}
impl TomlValue for SocketAddr {
    fn toml(&self) -> String {
        toml_str(&self.to_string())
    }
}
impl<T: TomlValue + ?Sized> TomlValue for &T {
    fn toml(&self) -> String {
        (**self).toml()
    }
}
impl<T: TomlValue> TomlValue for [T] {
    fn toml(&self) -> String {
        let items: Vec<String> = self.iter().map(TomlValue::toml).collect();
        format!("[{}]", items.join(", "))
    }
}
impl<T: TomlValue> TomlValue for Vec<T> {
    fn toml(&self) -> String {
        self.as_slice().toml()
    }
}
macro_rules! toml_display {
    ($($t:ty),*) => {$(
        impl TomlValue for $t {
            fn toml(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
toml_display!(bool, i32, i64, u16, u32, u64, usize);

/// TOML basic string.
pub fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `key = value` lines of one table, in the order they were set (setting a key again
/// replaces its value in place).
#[derive(Clone, Debug, Default)]
pub struct Table(Vec<(String, String)>);

impl Table {
    pub fn set(&mut self, key: &str, value: impl TomlValue) {
        let value = value.toml();
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }

    fn write(&self, out: &mut String, header: &str) {
        let _ = writeln!(out, "{header}");
        for (k, v) in &self.0 {
            let _ = writeln!(out, "{k} = {v}");
        }
    }
}

/// An `[account.imap]` or `[account.smtp]` table: how mailgate reaches the provider.
#[derive(Clone, Debug)]
pub struct Upstream(pub Table);

impl Upstream {
    /// `tls = "none"` (with the `allow_plaintext = true` it needs) to `server`.
    pub fn plain(server: impl ToString) -> Upstream {
        Upstream::tls(server, "none", None)
    }

    /// `tls = MODE` (implicit | starttls | none) to `server`, trusting `ca` in addition.
    pub fn tls(server: impl ToString, mode: &str, ca: Option<&Path>) -> Upstream {
        let mut t = Table::default();
        t.set("server", server.to_string());
        t.set("tls", mode);
        if mode == "none" {
            t.set("allow_plaintext", true);
        }
        if let Some(ca) = ca {
            t.set("ca_file", ca);
        }
        Upstream(t)
    }

    /// A table without `server` or `tls` (they come from a provider preset or discovery).
    pub fn empty() -> Upstream {
        Upstream(Table::default())
    }

    pub fn set(mut self, key: &str, value: impl TomlValue) -> Upstream {
        self.0.set(key, value);
        self
    }

    pub fn username(self, user: &str) -> Upstream {
        self.set("username", user)
    }

    /// Leaves `key` out.
    pub fn without(mut self, key: &str) -> Upstream {
        self.0.remove(key);
        self
    }

    /// The provider credential as `key` (`password`, `password_env` or `password_file`),
    /// replacing any other form of it.
    fn credential(self, key: &str, value: impl TomlValue) -> Upstream {
        self.without("password")
            .without("password_env")
            .without("password_file")
            .set(key, value)
    }

    /// An inline provider password.
    pub fn password(self, password: &str) -> Upstream {
        self.credential("password", password)
    }

    /// `username` and an inline `password`.
    pub fn login(self, user: &str, password: &str) -> Upstream {
        self.username(user).password(password)
    }

    pub fn password_env(self, var: &str) -> Upstream {
        self.credential("password_env", var)
    }

    pub fn password_file(self, path: &Path) -> Upstream {
        self.credential("password_file", path)
    }

    pub fn tls_server_name(self, name: &str) -> Upstream {
        self.set("tls_server_name", name)
    }
}

/// One `[[account]]` with its `[account.imap]`, `[account.smtp]` and `[account.oauth2]`.
#[derive(Clone, Debug)]
pub struct Account {
    pub table: Table,
    pub imap: Option<Upstream>,
    pub smtp: Option<Upstream>,
    pub oauth2: Option<Table>,
    pub folders: Option<Table>,
}

impl Account {
    /// `email` with the argon2 hash of `local_password` (computed once per test process).
    pub fn password(email: &str, local_password: &str) -> Account {
        Account::hashed(email, &cached_hash(local_password))
    }

    /// `email` with this `local_password_hash`.
    pub fn hashed(email: &str, hash: &str) -> Account {
        let mut table = Table::default();
        table.set("email", email);
        table.set("local_password_hash", hash);
        Account {
            table,
            imap: None,
            smtp: None,
            oauth2: None,
            folders: None,
        }
    }

    pub fn set(mut self, key: &str, value: impl TomlValue) -> Account {
        self.table.set(key, value);
        self
    }

    pub fn aliases<T: TomlValue>(self, aliases: &[T]) -> Account {
        self.set("aliases", aliases)
    }

    pub fn imap(mut self, imap: Upstream) -> Account {
        self.imap = Some(imap);
        self
    }

    pub fn smtp(mut self, smtp: Upstream) -> Account {
        self.smtp = Some(smtp);
        self
    }

    /// Sets a key of the `[account.oauth2]` table (made by the first one).
    pub fn oauth2(mut self, key: &str, value: impl TomlValue) -> Account {
        self.oauth2
            .get_or_insert_with(Table::default)
            .set(key, value);
        self
    }

    /// Sets a key of the `[account.folders]` table (made by the first one).
    pub fn folders(mut self, key: &str, value: impl TomlValue) -> Account {
        self.folders
            .get_or_insert_with(Table::default)
            .set(key, value);
        self
    }

    /// The `[[account]]` table and its sub-tables, as a file of accounts holds them.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(out);
        self.table.write(out, "[[account]]");
        for (header, table) in [
            ("[account.imap]", self.imap.as_ref().map(|u| &u.0)),
            ("[account.smtp]", self.smtp.as_ref().map(|u| &u.0)),
            ("[account.oauth2]", self.oauth2.as_ref()),
            ("[account.folders]", self.folders.as_ref()),
        ] {
            if let Some(table) = table {
                table.write(out, header);
            }
        }
    }
}

/// A whole mailgate config: `[server]` (IMAP and SMTP listeners on 127.0.0.1:0 to start
/// with), `[server.tls]`, the accounts, and `[metrics]` on a free port chosen at start.
#[derive(Clone, Debug)]
pub struct GateConfig {
    pub server: Table,
    pub server_tls: Option<Table>,
    pub accounts: Vec<Account>,
    /// `Some(per_account)`: a `[metrics]` table (`per_account: None` leaves the key out).
    pub metrics: Option<Option<bool>>,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig::new()
    }
}

impl GateConfig {
    pub fn new() -> GateConfig {
        let mut server = Table::default();
        server.set("imap_listen", "127.0.0.1:0");
        server.set("smtp_listen", "127.0.0.1:0");
        GateConfig {
            server,
            server_tls: None,
            accounts: Vec::new(),
            metrics: None,
        }
    }

    /// Sets a `[server]` key.
    pub fn server(mut self, key: &str, value: impl TomlValue) -> GateConfig {
        self.server.set(key, value);
        self
    }

    /// Sets several `[server]` keys with integer values (limits, delays, time-outs).
    pub fn limits(mut self, keys: &[(&str, u64)]) -> GateConfig {
        for (k, v) in keys {
            self.server.set(k, *v);
        }
        self
    }

    /// A `[server.tls]` table with this certificate chain and key.
    pub fn tls(mut self, cert: &Path, key: &Path) -> GateConfig {
        let mut t = Table::default();
        t.set("cert", cert);
        t.set("key", key);
        self.server_tls = Some(t);
        self
    }

    pub fn account(mut self, account: Account) -> GateConfig {
        self.accounts.push(account);
        self
    }

    pub fn accounts(mut self, accounts: impl IntoIterator<Item = Account>) -> GateConfig {
        self.accounts.extend(accounts);
        self
    }

    /// A `[metrics]` listener (on a free loopback port chosen by [`GateConfig::start`]).
    pub fn metrics(mut self, per_account: Option<bool>) -> GateConfig {
        self.metrics = Some(per_account);
        self
    }

    /// The config without a `[metrics]` table.
    pub fn to_toml(&self) -> String {
        let mut c = String::new();
        self.server.write(&mut c, "[server]");
        if let Some(tls) = &self.server_tls {
            let _ = writeln!(c);
            tls.write(&mut c, "[server.tls]");
        }
        for a in &self.accounts {
            a.write(&mut c);
        }
        c
    }

    /// The config with its `[metrics]` table listening on `listen`.
    pub fn to_toml_with_metrics(&self, listen: SocketAddr) -> String {
        let per_account = self.metrics.flatten();
        format!("{}{}", self.to_toml(), metrics_toml(listen, per_account))
    }

    /// Starts `mailgate run` on this config (see [`Mailgate::start_with_metrics_env`] for
    /// the metrics port).
    pub fn start(&self) -> Mailgate {
        self.start_with_env(&[])
    }

    pub fn start_with_env(&self, env: &[(&str, &str)]) -> Mailgate {
        match self.metrics {
            Some(_) => Mailgate::start_with_metrics_env(|l| self.to_toml_with_metrics(l), env),
            None => Mailgate::start_with_env(&self.to_toml(), env),
        }
    }
}

/// A `[metrics]` table, to append to a config (a TOML table may come after the account
/// tables). `per_account: None` leaves the key out (the default applies).
pub fn metrics_toml(listen: SocketAddr, per_account: Option<bool>) -> String {
    let mut c = String::new();
    let _ = writeln!(c);
    let _ = writeln!(c, "[metrics]");
    let _ = writeln!(c, "listen = {}", toml_str(&listen.to_string()));
    if let Some(per_account) = per_account {
        let _ = writeln!(c, "per_account = {per_account}");
    }
    c
}

/// `host:port` that reaches a server listening on 127.0.0.1:`port` and matches a certificate
/// for "localhost": `localhost:PORT` where `localhost` resolves to 127.0.0.1 only (as in
/// Debian's /etc/hosts), else `127.0.0.1:PORT` plus `tls_server_name = "localhost"`.
pub fn loopback_server(port: u16) -> (String, Option<String>) {
    let only_v4_loopback = ("localhost", port)
        .to_socket_addrs()
        .map(|addrs| {
            let addrs: Vec<SocketAddr> = addrs.collect();
            !addrs.is_empty()
                && addrs
                    .iter()
                    .all(|a| a.ip() == std::net::IpAddr::from([127, 0, 0, 1]))
        })
        .unwrap_or(false);
    if only_v4_loopback {
        (format!("localhost:{port}"), None)
    } else {
        (format!("127.0.0.1:{port}"), Some("localhost".to_string()))
    }
}

/// An upstream with TLS (`implicit` or `starttls`) to a server on 127.0.0.1:`port` whose
/// certificate is for "localhost", signed by `ca` (see [`loopback_server`]).
pub fn loopback_tls(port: u16, mode: &str, ca: &Path) -> Upstream {
    let (server, name) = loopback_server(port);
    let up = Upstream::tls(server, mode, Some(ca));
    match name {
        Some(name) => up.tls_server_name(&name),
        None => up,
    }
}
