//! A real PostgreSQL for the shared-store tests: Debian's server binaries, a cluster made with
//! `initdb` in a temp folder and run with `pg_ctl` on a free loopback port, as an unprivileged
//! user (the tests' system user when the tests run as root: PostgreSQL refuses root). Password
//! authentication (SCRAM) over TCP, as a real deployment has.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::dovecot::run_as;
use super::proc::{free_port, run_with_timeout};

/// Where Debian keeps each major version's server binaries.
const VERSIONS: &str = "/usr/lib/postgresql";
pub const USER: &str = "mailgate";
pub const PASSWORD: &str = "Pg-secret-5e1d";
const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Postgres {
    dir: TempDir,
    pub port: u16,
    running: bool,
    /// Only TLS connections over TCP are accepted (`hostssl`), and [`Postgres::url`] asks
    /// for it (`sslmode=require`).
    tls: bool,
}

/// The newest installed major version's binary `name`.
fn bin(name: &str) -> PathBuf {
    let newest = fs::read_dir(VERSIONS)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .max()
        .unwrap_or(15);
    Path::new(VERSIONS)
        .join(newest.to_string())
        .join("bin")
        .join(name)
}

/// `cmd` as the unprivileged user when we are root.
fn as_user(mut cmd: Command) -> Command {
    let who = run_as();
    if who.drop_from_root {
        cmd.uid(who.uid).gid(who.gid);
    }
    cmd.env("LC_ALL", "C").stdin(Stdio::null());
    cmd
}

fn run(cmd: Command, what: &str) -> Output {
    let out = run_with_timeout(as_user(cmd), None, TIMEOUT);
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Postgres {
    /// Whether the server binaries are installed (`.ci/run` installs them).
    pub fn available() -> bool {
        bin("initdb").exists()
    }

    /// A new cluster, started.
    pub fn start() -> Postgres {
        Postgres::start_with(None)
    }

    /// A new cluster that takes TCP connections only over TLS, with `cert` (the test PKI's
    /// server certificate: localhost and 127.0.0.1), started.
    pub fn start_tls(cert: &super::certs::CertFiles) -> Postgres {
        Postgres::start_with(Some(cert))
    }

    fn start_with(tls: Option<&super::certs::CertFiles>) -> Postgres {
        assert!(
            Postgres::available(),
            "PostgreSQL is not installed ({VERSIONS}); `apt-get install postgresql`"
        );
        let dir = tempfile::Builder::new()
            .prefix("mailgate-pg-")
            .tempdir()
            .expect("pg tempdir");
        let who = run_as();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        if who.drop_from_root {
            chown(dir.path(), Some(who.uid), Some(who.gid)).expect("chown pg dir");
        }
        let pwfile = dir.path().join("pw");
        fs::write(&pwfile, PASSWORD).unwrap();
        if who.drop_from_root {
            chown(&pwfile, Some(who.uid), Some(who.gid)).unwrap();
        }
        let mut init = Command::new(bin("initdb"));
        init.arg("-D")
            .arg(dir.path().join("data"))
            .args([
                "-U",
                USER,
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .arg("--no-sync");
        run(init, "initdb");
        if let Some(cert) = tls {
            let data = dir.path().join("data");
            for (from, to) in [(&cert.cert, "server.crt"), (&cert.key, "server.key")] {
                fs::copy(from, data.join(to)).expect("copy the server certificate");
                fs::set_permissions(data.join(to), fs::Permissions::from_mode(0o600)).unwrap();
                if who.drop_from_root {
                    chown(data.join(to), Some(who.uid), Some(who.gid)).unwrap();
                }
            }
            let mut conf = fs::OpenOptions::new()
                .append(true)
                .open(data.join("postgresql.conf"))
                .expect("postgresql.conf");
            use std::io::Write as _;
            writeln!(
                conf,
                "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'"
            )
            .unwrap();
            fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
            )
            .expect("pg_hba.conf");
        }
        let mut pg = Postgres {
            dir,
            port: free_port(),
            running: false,
            tls: tls.is_some(),
        };
        pg.start_again();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the stopped server again (same port, same data).
    pub fn start_again(&mut self) {
        let mut ctl = Command::new(bin("pg_ctl"));
        ctl.arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                self.port,
                self.dir.path().display()
            ))
            .args(["-w", "-t", "60", "start"]);
        let out = run_with_timeout(as_user(ctl), None, TIMEOUT);
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        self.running = true;
    }

    /// Stops the server (fast: sessions are ended).
    pub fn stop(&mut self) {
        let mut ctl = Command::new(bin("pg_ctl"));
        ctl.arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "-t", "60", "stop"]);
        run(ctl, "pg_ctl stop");
        self.running = false;
    }

    /// The connection string mailgate gets.
    pub fn url(&self) -> String {
        let mode = if self.tls { "require" } else { "disable" };
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/postgres?sslmode={mode}",
            self.port
        )
    }

    /// Runs `sql` with psql (over the Unix socket, as the cluster's owner); its output.
    pub fn psql(&self, sql: &str) -> String {
        let mut cmd = Command::new(bin("psql"));
        cmd.arg("-h")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-U", USER, "-d", "postgres"])
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]);
        let out = run(cmd, "psql");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The server's log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let mut ctl = Command::new(bin("pg_ctl"));
            ctl.arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "-t", "30", "stop"]);
            let _ = run_with_timeout(as_user(ctl), None, TIMEOUT);
        }
    }
}

/// A store key file (base64 of 32 bytes, mode 0600) in `dir`.
pub fn key_file(dir: &Path, byte: u8) -> PathBuf {
    use base64::Engine as _;
    let path = dir.join(format!("store-{byte}.key"));
    let text = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A `[store]` table for `pg` with `key`.
pub fn store_toml(pg: &Postgres, key: &Path) -> String {
    format!(
        "\n[store]\npostgres = {}\nkey_file = {}\n",
        super::config::toml_str(&pg.url()),
        super::config::toml_str(&key.display().to_string())
    )
}
