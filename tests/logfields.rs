//! Text log lines quote and escape what a client chose: a login name with spaces, `=`,
//! quotes, a Unicode line separator and a right-to-left override is logged as one quoted field
//! with `\"` and `\u{…}` escapes, so it neither forges a `key=value` field nor starts a line.
//!
//! Run: `cargo test --test logfields`

mod support;

use std::time::Duration;
use support::imap_client::assert_tagged;
use support::proc::poll;
use support::{Account, GateConfig, Upstream};

#[test]
fn hostile_login_name_is_one_quoted_field() {
    let gate = GateConfig::new()
        .server("auth_failure_delay_ms", 0)
        .account(
            Account::password("ola@example.no", "Logs-pw-7c1e")
                .imap(Upstream::plain("127.0.0.1:9").password("x")),
        )
        .start();
    let name = "x\" reason=ok\u{2028}forged=1 \\ \u{202e}gnp.exe";
    let mut c = gate.connect();
    // A literal: IMAP quoted strings are 7-bit, and the name has to reach the login check.
    c.send(format!("a1 LOGIN {{{}+}}\r\n", name.len()).as_bytes());
    c.send(name.as_bytes());
    c.send(b" wrong-password\r\n");
    let resp = c.read_until_tagged("a1");
    assert_tagged(&resp, "a1", "NO");

    let line = poll(Duration::from_secs(30), Duration::from_millis(20), || {
        gate.lines()
            .into_iter()
            .find(|l| l.contains("local login failed"))
    })
    .unwrap_or_else(|| panic!("no failed-login line:\n{}", gate.log()));
    let quoted = "login=\"x\\\" reason=ok\\u{2028}forged=1 \\\\ \\u{202e}gnp.exe\"";
    assert!(line.contains(quoted), "{line}");
    // Outside the quoted value, only mailgate's own fields: one `reason=`, no `forged=`.
    let rest = line.replacen(quoted, "", 1);
    assert_eq!(rest.matches("reason=").count(), 1, "{line}");
    assert!(rest.contains("reason=\"unknown_user\""), "{line}");
    let log = gate.log();
    assert!(
        !log.contains('\u{2028}') && !log.contains('\u{202e}'),
        "a raw separator or override reached the log:\n{log}"
    );
}
