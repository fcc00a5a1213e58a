//! The SMTP command parser on arbitrary bytes: nothing panics, and what it accepts keeps the
//! promises the session relies on (no control characters in arguments, addresses without
//! brackets or spaces, parameters that survive being written out and parsed again).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailgate::smtp::command::{
    parse_auth, parse_bdat, parse_command, parse_param, parse_path, Verb,
};

fuzz_target!(|line: &[u8]| {
    let Ok(cmd) = parse_command(line) else {
        return;
    };
    assert!(!cmd.args.chars().any(|c| c.is_control() && c != '\t'));
    assert_eq!(cmd.args, cmd.args.trim_end());
    match cmd.verb {
        Verb::Mail | Verb::Rcpt => {
            let prefix = if cmd.verb == Verb::Mail {
                "FROM:"
            } else {
                "TO:"
            };
            if let Ok(p) = parse_path(cmd.args, prefix) {
                assert!(!p.address.contains(['<', '>', ' ']));
                assert!(p.address.is_empty() || p.address.contains('@'));
                // Written out canonically, the path parses to the same thing.
                let again = if p.params.is_empty() {
                    format!("{prefix}<{}>", p.address)
                } else {
                    format!("{prefix}<{}> {}", p.address, p.params)
                };
                assert_eq!(parse_path(&again, prefix).ok(), Some(p.clone()));
                for param in p.params.split_ascii_whitespace() {
                    let (k, v) = parse_param(param).expect("checked by parse_path");
                    assert!(!k.is_empty());
                    let again = match v {
                        Some(v) => format!("{k}={v}"),
                        None => k.to_owned(),
                    };
                    assert_eq!(again, param);
                }
            }
        }
        Verb::Bdat => {
            if let Ok((size, last)) = parse_bdat(cmd.args) {
                let digits = cmd.args.split(' ').next().unwrap_or_default();
                assert_eq!(digits.parse::<u64>().ok(), Some(size));
                assert_eq!(last, cmd.args.len() > digits.len());
            }
        }
        Verb::Auth => {
            if let Ok((mech, ir)) = parse_auth(cmd.args) {
                assert!(!mech.is_empty() && mech.len() <= 20);
                assert_eq!(mech, mech.to_ascii_uppercase());
                if let Some(ir) = ir {
                    assert!(!ir.contains(' '));
                }
            }
        }
        _ => {}
    }
});
