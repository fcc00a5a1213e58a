//! Modified UTF-7 (RFC 3501 5.1.3), the form mailbox names take on the wire unless UTF8=ACCEPT
//! is on: printable ASCII stands for itself (`&` as `&-`), anything else is UTF-16BE in a
//! base64 run (`,` for `/`, no padding) between `&` and `-`. Names are compared and shown as
//! UTF-8, and sent back to the server in this form.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;

/// `wire` decoded to UTF-8; `None` when it is not valid modified UTF-7 (a server that sends
/// raw 8-bit names, or a broken run), so the caller can keep the bytes as they are.
pub fn decode(wire: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(wire.len());
    let mut rest = wire;
    while let Some((&b, tail)) = rest.split_first() {
        if b != b'&' {
            if !(0x20..0x7f).contains(&b) {
                return None;
            }
            out.push(char::from(b));
            rest = tail;
            continue;
        }
        let end = tail.iter().position(|&c| c == b'-')?;
        let run = &tail[..end];
        rest = &tail[end + 1..];
        if run.is_empty() {
            out.push('&');
            continue;
        }
        let text: Vec<u8> = run
            .iter()
            .map(|&c| if c == b',' { b'/' } else { c })
            .collect();
        let bytes = STANDARD_NO_PAD.decode(&text).ok()?;
        if bytes.len() % 2 != 0 {
            return None;
        }
        let units = bytes
            .chunks_exact(2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]));
        for c in char::decode_utf16(units) {
            let c = c.ok()?;
            // A run must not carry what could have been written directly.
            if (' '..='~').contains(&c) {
                return None;
            }
            out.push(c);
        }
    }
    Some(out)
}

/// `name` in modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, out: &mut String| {
        if run.is_empty() {
            return;
        }
        let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&STANDARD_NO_PAD.encode(bytes).replace('/', ","));
        out.push('-');
        run.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut run, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples_and_the_names_we_meet() {
        // RFC 3501 5.1.3's example.
        assert_eq!(
            decode(b"~peter/mail/&U,BTFw-/&ZeVnLIqe-").as_deref(),
            Some("~peter/mail/台北/日本語")
        );
        for (wire, name) in [
            ("Entw&APw-rfe", "Entwürfe"),
            ("S&APg-ppelpost", "Søppelpost"),
            ("&AMk-l&AOk-ments envoy&AOk-s", "Éléments envoyés"),
            ("Tom &- Jerry", "Tom & Jerry"),
            (
                "[Gmail]/&A5EDwAO1A8MDxAOxA7sDvAOtA70DsQ-",
                "[Gmail]/Απεσταλμένα",
            ),
            ("INBOX", "INBOX"),
        ] {
            assert_eq!(decode(wire.as_bytes()).as_deref(), Some(name), "{wire}");
            assert_eq!(encode(name), wire, "{name}");
        }
    }

    #[test]
    fn broken_forms_are_refused() {
        for wire in [
            &b"a&Jjo"[..],  // no closing -
            b"&AGE-",       // "a" encoded, which must be written directly
            b"caf\xc3\xa9", // raw 8-bit
            b"&A-",         // not a whole UTF-16 unit
            b"&2D0-",       // a lone surrogate
        ] {
            assert_eq!(decode(wire), None, "{}", String::from_utf8_lossy(wire));
        }
    }

    #[test]
    fn any_name_survives_a_round_trip() {
        for name in [
            "",
            "&",
            "&&-",
            "a-b&c",
            "ÆØÅ/æøå",
            "日本語 mail",
            "😀 x",
            "~/,",
        ] {
            assert_eq!(
                decode(encode(name).as_bytes()).as_deref(),
                Some(name),
                "{name}"
            );
        }
    }
}
