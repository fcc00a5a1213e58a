//! Field values in text log lines, quoted and escaped (logfmt style), so that a value a client
//! or an upstream server chose — a login name, a MAIL FROM address, a server's reply, an error
//! carrying one — cannot forge a field (`login=x reason=ok`) or a line (CR, LF, U+2028) or
//! reverse what a terminal shows (U+202E).
//!
//! One formatter for every field, instead of a wrapper at each call site: a field added later
//! is escaped without anyone remembering to. A value made only of printable ASCII other than
//! `"`, `\` and `=` (numbers, addresses, host:port, plain words) stays bare, so the lines read
//! as before (string fields, such as `kind`, stay quoted as they always were); anything else
//! is written `"…"`, with `\"`, `\\`, `\n`, `\r`, `\t` and `\u{…}` for
//! the other characters of Unicode categories Cc, Cf, Zl and Zp. The message itself stays
//! unquoted (it is ours) but gets the same escapes. JSON lines need none of this: the JSON
//! encoder quotes every string.

use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;

/// The text-log field formatter (`tracing_subscriber::fmt().fmt_fields(TextFields)`).
#[derive(Debug, Default, Clone, Copy)]
pub struct TextFields;

impl<'w> FormatFields<'w> for TextFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut v = Visitor {
            writer,
            result: Ok(()),
            first: true,
        };
        fields.record(&mut v);
        v.result
    }
}

struct Visitor<'w> {
    writer: Writer<'w>,
    result: fmt::Result,
    first: bool,
}

impl Visitor<'_> {
    fn write(&mut self, field: &Field, value: &str, quote: bool) {
        if self.result.is_err() {
            return;
        }
        let name = field.name();
        // `log` crate records bridged by tracing-log: their metadata, not fields.
        if name.starts_with("log.") {
            return;
        }
        let sep = if std::mem::take(&mut self.first) {
            ""
        } else {
            " "
        };
        self.result = if name == "message" {
            write!(self.writer, "{sep}{}", Escaped(value))
        } else {
            let name = name.strip_prefix("r#").unwrap_or(name);
            let q = Quoted {
                text: value,
                always: quote,
            };
            write!(self.writer, "{sep}{name}={q}")
        };
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // String fields were always quoted (tracing's own formatter): they stay so.
        self.write(field, value, true);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields arrive here too, with Display behind Debug.
        self.write(field, &format!("{value:?}"), false);
    }
}

/// A field value: bare when it is one plain token (unless `always`), else quoted and escaped.
pub struct Quoted<'a> {
    /// The value.
    pub text: &'a str,
    /// Quote even a plain token.
    pub always: bool,
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bare = !self.always
            && !self.text.is_empty()
            && self
                .text
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'='));
        if bare {
            f.write_str(self.text)
        } else {
            f.write_char('"')?;
            write_escaped(f, self.text, true)?;
            f.write_char('"')
        }
    }
}

/// Text with line breaks, controls and format characters escaped; nothing else changed.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, false)
    }
}

/// Writes `text` with [`escape_char`]'s escapes (and, when `quoted`, `\"` and `\\`). Runs
/// of printable ASCII — nearly every byte of a log line — go out in one piece: a check per
/// character against the invisible ranges was a third of the cost of a line.
fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str, quoted: bool) -> fmt::Result {
    let bytes = text.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii() && !b.is_ascii_control() && !(quoted && matches!(b, b'"' | b'\\')) {
            i += 1;
            continue;
        }
        f.write_str(&text[start..i])?;
        // `i` is on a character boundary: only whole characters are stepped over.
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        match c {
            '"' if quoted => f.write_str("\\\"")?,
            '\\' if quoted => f.write_str("\\\\")?,
            c => escape_char(f, c)?,
        }
        i += c.len_utf8();
        start = i;
    }
    f.write_str(&text[start..])
}

fn escape_char(f: &mut fmt::Formatter<'_>, c: char) -> fmt::Result {
    match c {
        '\n' => f.write_str("\\n"),
        '\r' => f.write_str("\\r"),
        '\t' => f.write_str("\\t"),
        c if is_invisible(c) => write!(f, "\\u{{{:x}}}", c as u32),
        c => f.write_char(c),
    }
}

/// Unicode categories Cc (controls), Cf (format: bidi overrides, zero-width characters, …),
/// Zl and Zp (line and paragraph separators), after Unicode 15.
pub fn is_invisible(c: char) -> bool {
    const FORMAT: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x2028, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let n = c as u32;
    c.is_control() || FORMAT.iter().any(|&(lo, hi)| (lo..=hi).contains(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_tokens_stay_bare_the_rest_is_quoted_and_escaped() {
        let q = |s: &str| {
            Quoted {
                text: s,
                always: false,
            }
            .to_string()
        };
        assert_eq!(q("ola@example.no"), "ola@example.no");
        assert_eq!(q("127.0.0.1:1143"), "127.0.0.1:1143");
        assert_eq!(q(""), "\"\"");
        assert_eq!(q("a b"), "\"a b\"");
        assert_eq!(q("x reason=ok"), "\"x reason=ok\"");
        assert_eq!(q("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
        assert_eq!(q("a\r\nb\tc\u{7}"), "\"a\\r\\nb\\tc\\u{7}\"");
        assert_eq!(
            q("a\u{2028}b\u{2029}c\u{202e}d\u{200b}e\u{feff}"),
            "\"a\\u{2028}b\\u{2029}c\\u{202e}d\\u{200b}e\\u{feff}\""
        );
        assert_eq!(q("kåre"), "\"kåre\"");
        let always = Quoted {
            text: "dns",
            always: true,
        };
        assert_eq!(always.to_string(), "\"dns\"");
        assert_eq!(
            Escaped("one\ntwo \u{202e}x \"q\"").to_string(),
            "one\\ntwo \\u{202e}x \"q\""
        );
    }

    /// One character through [`escape_char`], as every character once went.
    struct OneChar(char);

    impl fmt::Display for OneChar {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            escape_char(f, self.0)
        }
    }

    #[test]
    fn runs_of_plain_text_come_out_as_character_by_character() {
        let by_char = |text: &str, quoted: bool| {
            let mut out = String::new();
            for c in text.chars() {
                match c {
                    '"' if quoted => out.push_str("\\\""),
                    '\\' if quoted => out.push_str("\\\\"),
                    c => out.push_str(&OneChar(c).to_string()),
                }
            }
            out
        };
        let mut chars: Vec<char> = (0..0x300u32).filter_map(char::from_u32).collect();
        chars.extend(
            [
                0x061C, 0x180E, 0x200A, 0x200B, 0x202E, 0x202F, 0x2066, 0xFEFF, 0xE007F, 0x1F600,
            ]
            .into_iter()
            .filter_map(char::from_u32),
        );
        for c in chars {
            for text in [format!("{c}"), format!("ab{c}cd"), format!("{c}{c}x{c}")] {
                assert_eq!(
                    Escaped(&text).to_string(),
                    by_char(&text, false),
                    "{text:?}"
                );
                let quoted = Quoted {
                    text: &text,
                    always: true,
                };
                let want = format!("\"{}\"", by_char(&text, true));
                assert_eq!(quoted.to_string(), want, "{text:?}");
            }
        }
    }
}
