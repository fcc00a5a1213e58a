//! The command line: check-config, `run` with a broken config, hash-password.

use super::*;

/// A valid single-account config (nothing needs to listen upstream for these tests).
fn valid_config() -> String {
    let imap = Upstream::tls("127.0.0.1:1", "implicit", None).login(UPSTREAM_USER, UPSTREAM_PW);
    config([account(EMAIL, imap)]).to_toml()
}

/// `valid_config()` with the line starting `tls = ` replaced by `replacement`; returns the
/// config and the 1-based line number of the replacement.
fn config_with_tls_line(replacement: &str) -> (String, usize) {
    let mut line_no = 0;
    let lines: Vec<String> = valid_config()
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if l.starts_with("tls = ") {
                line_no = i + 1;
                replacement.to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(line_no > 0);
    (lines.join("\n") + "\n", line_no)
}

fn write_config(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("mailgate.toml");
    fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn assert_names(stderr: &str, path: &str, line: usize, field: &str) {
    assert!(
        stderr.contains(path),
        "stderr does not name the file {path}:\n{stderr}"
    );
    assert!(
        stderr.contains(field),
        "stderr does not name the field {field}:\n{stderr}"
    );
    let lower = stderr.to_lowercase();
    assert!(
        lower.contains(&format!("line {line}")) || stderr.contains(&format!(":{line}:")),
        "stderr does not give line {line}:\n{stderr}"
    );
}

#[test]
fn check_config_accepts_a_good_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, &valid_config());
    let out = mailgate::run(&["check-config", "--config", &path], None);
    assert!(
        out.status.success(),
        "check-config rejected a good config:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_config_names_file_line_and_field() {
    let cases = [
        ("tls = \"sometimes\"", "tls"),
        ("colour = \"blue\"", "colour"),
        ("tls = \"none\"", "allow_plaintext"),
    ];
    for (replacement, field) in cases {
        let (text, line) = config_with_tls_line(replacement);
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(&dir, &text);
        let out = mailgate::run(&["check-config", "--config", &path], None);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "check-config accepted `{replacement}`"
        );
        assert!(!stderr.contains(UPSTREAM_PW), "{stderr}");
        if field == "allow_plaintext" {
            // The error is about the combination; the line may be the section's or tls's.
            assert!(stderr.contains(&path) && stderr.contains(field), "{stderr}");
        } else {
            assert_names(&stderr, &path, line, field);
        }
    }
}

#[test]
fn run_with_a_broken_config_exits_nonzero_naming_the_field() {
    for (replacement, field) in [
        ("tls = \"sometimes\"", "tls"),
        ("colour = \"blue\"", "colour"),
    ] {
        let (text, line) = config_with_tls_line(replacement);
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(&dir, &text);
        let out = mailgate::run(&["run", "--config", &path, "--log-format", "text"], None);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "run accepted `{replacement}`:\n{stderr}"
        );
        assert!(!stderr.contains("imap listening on"), "{stderr}");
        assert_names(&stderr, &path, line, field);
    }
}

#[test]
fn hash_password_prints_an_argon2id_phc_string() {
    let a = mailgate::hash_password("some-local-pw");
    let b = mailgate::hash_password("some-local-pw");
    assert!(a.starts_with("$argon2id$v=19$"), "{a}");
    assert_ne!(a, b, "each hash has its own salt");
    assert!(!a.contains("some-local-pw"));
}
