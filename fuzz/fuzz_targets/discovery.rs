//! The two readers of what discovery gets from the network: DNS replies
//! (`net::dns::read_reply`) and Mozilla autoconfig files (`discover::autoconfig::parse`,
//! which may come over plain http). Nothing panics; a reply has at most 64 records, names of
//! at most 255 bytes, and MX hosts that are host names (letters, digits, `.`, `-`, `_`); a
//! server read from a file has a host that is such a name (lower case) or an IP address, and
//! a port that is not 0.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailgate::discover::autoconfig;
use mailgate::net::dns;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        // A DNS reply whose id matches (taken from the reply itself, so the parser goes past
        // that check), to an A, MX or AAAA question.
        let id = match rest {
            [a, b, ..] => u16::from_be_bytes([*a, *b]),
            _ => 0,
        };
        let qtype = [1, 15, 28][usize::from(selector >> 1) % 3];
        if let Ok(lines) = dns::read_reply(rest, id, qtype) {
            assert!(lines.len() <= 64, "{} records", lines.len());
            for line in lines {
                assert!(line.len() <= 255 + 12, "{line}");
                // Exchanges are host names: nothing to escape in a note or a log line.
                if let Some(mx) = line.strip_prefix("MX ") {
                    let host = mx.split_once(' ').map_or("", |(_, h)| h);
                    assert!(
                        !host.is_empty()
                            && host
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
                        "{line:?}"
                    );
                }
            }
        }
    } else {
        let text = String::from_utf8_lossy(rest);
        if let Ok(parsed) = autoconfig::parse(&text, "ola@example.test") {
            for server in parsed.imap.iter().chain(parsed.smtp.iter()) {
                let dns_name = !server.host.is_empty()
                    && server
                        .host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
                assert!(
                    dns_name || server.host.parse::<std::net::IpAddr>().is_ok(),
                    "{:?}",
                    server.host
                );
                assert_eq!(server.host, server.host.to_ascii_lowercase());
                assert_ne!(server.port, 0);
            }
        }
    }
});
