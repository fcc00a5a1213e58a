//! The SMTP command parser (nom 7, the same nom imap-codec pulls in).
//!
//! A command line is parsed into a verb and its raw arguments; only the arguments the gateway
//! acts on are parsed further ([`parse_path`] for MAIL/RCPT, [`parse_bdat`], [`parse_auth`]).
//! ESMTP parameters stay raw text, so they reach the upstream exactly as the client wrote them.
//! Parsing is deliberately liberal where real clients are sloppy (case, `MAIL FROM: <a>` with
//! a space) and strict where ambiguity could hurt (no CR/LF/NUL inside a line, bounded sizes).

use nom::branch::alt;
use nom::bytes::complete::{tag, tag_no_case, take_while, take_while1, take_while_m_n};
use nom::character::complete::{char, digit1, space0, space1};
use nom::combinator::{all_consuming, map, map_res, opt, rest};
use nom::sequence::{delimited, preceded, tuple};
use nom::IResult;

/// Why a command line could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Not `VERB [arguments]` in printable ASCII/UTF-8.
    #[error("syntax error in command line")]
    Syntax,
    /// MAIL FROM / RCPT TO without a well-formed `<path>`.
    #[error("syntax error in the address; use <user@example.com>")]
    Path,
    /// An ESMTP parameter that is not `keyword[=value]`.
    #[error("syntax error in the parameters")]
    Params,
    /// BDAT without a valid chunk size.
    #[error("syntax error in BDAT; use BDAT <size> [LAST]")]
    Bdat,
    /// AUTH without a mechanism.
    #[error("syntax error in AUTH; use AUTH <mechanism> [initial-response]")]
    Auth,
    /// A DSN parameter (RFC 3461) with a malformed, over-long or repeated value.
    #[error("syntax error in the DSN parameter {0} (RFC 3461)")]
    Dsn(&'static str),
}

/// The command verbs the gateway knows; anything else is [`Verb::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `EHLO domain`.
    Ehlo,
    /// `HELO domain`.
    Helo,
    /// `AUTH mechanism [initial-response]`.
    Auth,
    /// `MAIL FROM:<path> [params]`.
    Mail,
    /// `RCPT TO:<path> [params]`.
    Rcpt,
    /// DATA.
    Data,
    /// `BDAT size [LAST]`.
    Bdat,
    /// RSET.
    Rset,
    /// `NOOP [string]`.
    Noop,
    /// QUIT.
    Quit,
    /// `VRFY string`.
    Vrfy,
    /// `HELP [string]`.
    Help,
    /// STARTTLS (RFC 3207).
    Starttls,
    /// A word we do not implement (EXPN, TURN, …).
    Unknown,
}

/// One parsed command line: the verb and everything after it, raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    /// What the client asked for.
    pub verb: Verb,
    /// The arguments after the verb and its separating space, without CRLF.
    pub args: &'a str,
}

/// A MAIL FROM or RCPT TO argument: the address between `<>` and the raw parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path<'a> {
    /// The address without angle brackets; empty for the null path `<>`.
    pub address: &'a str,
    /// The ESMTP parameters as written (leading space removed), e.g. `SIZE=123 BODY=8BITMIME`.
    pub params: &'a str,
}

fn verb_word(i: &str) -> IResult<&str, &str> {
    take_while_m_n(1, 16, |c: char| c.is_ascii_alphabetic())(i)
}

fn verb_of(word: &str) -> Verb {
    const VERBS: &[(&str, Verb)] = &[
        ("EHLO", Verb::Ehlo),
        ("HELO", Verb::Helo),
        ("AUTH", Verb::Auth),
        ("MAIL", Verb::Mail),
        ("RCPT", Verb::Rcpt),
        ("DATA", Verb::Data),
        ("BDAT", Verb::Bdat),
        ("RSET", Verb::Rset),
        ("NOOP", Verb::Noop),
        ("QUIT", Verb::Quit),
        ("VRFY", Verb::Vrfy),
        ("HELP", Verb::Help),
        ("STARTTLS", Verb::Starttls),
    ];
    VERBS
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(word))
        .map_or(Verb::Unknown, |(_, v)| *v)
}

/// Parses one command line (with or without its CRLF).
pub fn parse_command(line: &[u8]) -> Result<Command<'_>, CommandError> {
    let line = line
        .strip_suffix(b"\n")
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| CommandError::Syntax)?;
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(CommandError::Syntax);
    }
    let parsed: IResult<&str, (&str, Option<&str>)> = all_consuming(tuple((
        verb_word,
        alt((map(preceded(space1, rest), Some), map(space0, |_| None))),
    )))(text);
    match parsed {
        Ok((_, (word, args))) => Ok(Command {
            verb: verb_of(word),
            args: args.unwrap_or("").trim_end(),
        }),
        Err(_) => Err(CommandError::Syntax),
    }
}

/// Characters allowed in an address between `<` and `>`: anything printable except the
/// brackets themselves and space (quoted local parts with spaces are not supported).
fn address_char(c: char) -> bool {
    !c.is_control() && c != '<' && c != '>' && c != ' '
}

fn path<'a>(prefix: &'static str) -> impl FnMut(&'a str) -> IResult<&'a str, Path<'a>> {
    map(
        tuple((
            tag_no_case(prefix),
            space0,
            delimited(char('<'), take_while(address_char), char('>')),
            alt((preceded(space1, rest), map(space0, |_| ""))),
        )),
        |(_, _, address, params): (&str, &str, &str, &str)| Path {
            address,
            params: params.trim(),
        },
    )
}

/// Parses the argument of MAIL (`prefix` = `FROM:`) or RCPT (`prefix` = `TO:`).
pub fn parse_path<'a>(args: &'a str, prefix: &'static str) -> Result<Path<'a>, CommandError> {
    let (_, p) = all_consuming(path(prefix))(args).map_err(|_| CommandError::Path)?;
    // Source routes (`<@a,@b:user@c>`) are obsolete; an address must be user@domain or empty.
    if !p.address.is_empty() && (p.address.starts_with('@') || !p.address.contains('@')) {
        return Err(CommandError::Path);
    }
    for param in p.params.split_ascii_whitespace() {
        parse_param(param)?;
    }
    Ok(p)
}

/// Splits one ESMTP parameter into keyword and optional value.
pub fn parse_param(param: &str) -> Result<(&str, Option<&str>), CommandError> {
    let keyword = take_while1(|c: char| c.is_ascii_alphanumeric() || c == '-');
    let value = preceded(
        char('='),
        take_while1(|c: char| c != '=' && !c.is_control() && c != ' '),
    );
    let (_, (k, v)) = all_consuming(tuple((keyword, opt(value))))(param)
        .map_err(|_: nom::Err<nom::error::Error<&str>>| CommandError::Params)?;
    Ok((k, v))
}

/// A DSN parameter (RFC 3461): RET and ENVID of MAIL, NOTIFY and ORCPT of RCPT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dsn {
    /// `RET=FULL|HDRS`: what a failure notice returns of the message.
    Ret,
    /// `ENVID=xtext`: the sender's envelope identifier.
    Envid,
    /// `NOTIFY=NEVER` or a list of SUCCESS, FAILURE, DELAY.
    Notify,
    /// `ORCPT=addr-type;xtext`: the original recipient.
    Orcpt,
}

/// Longest ENVID value (RFC 3461 4.4: 100 characters).
pub const MAX_ENVID: usize = 100;
/// Longest ORCPT value (RFC 3461 4.2: 500 characters).
pub const MAX_ORCPT: usize = 500;

impl Dsn {
    fn name(self) -> &'static str {
        match self {
            Dsn::Ret => "RET",
            Dsn::Envid => "ENVID",
            Dsn::Notify => "NOTIFY",
            Dsn::Orcpt => "ORCPT",
        }
    }
}

/// RFC 3461 4: `xtext = *( xchar / hexchar )`, xchar any of `!`..`~` but `+` and `=`,
/// hexchar `+` and two upper-case hex digits.
fn is_xtext(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex =
                    |c: Option<&u8>| c.is_some_and(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F'));
                if !(hex(b.get(i + 1)) && hex(b.get(i + 2))) {
                    return false;
                }
                i += 3;
            }
            b'!'..=b'~' if b[i] != b'=' => i += 1,
            _ => return false,
        }
    }
    true
}

/// Checks one ESMTP parameter of MAIL (`mail`) or RCPT as a DSN parameter: `None` when
/// `keyword` is not one of that command's, else which one or why its value is not well-formed.
pub fn dsn_param(
    keyword: &str,
    value: Option<&str>,
    mail: bool,
) -> Option<Result<Dsn, CommandError>> {
    let kind = [Dsn::Ret, Dsn::Envid, Dsn::Notify, Dsn::Orcpt]
        .into_iter()
        .find(|d| d.name().eq_ignore_ascii_case(keyword))
        .filter(|d| matches!(d, Dsn::Ret | Dsn::Envid) == mail)?;
    let v = value.unwrap_or("");
    let ok = match kind {
        Dsn::Ret => v.eq_ignore_ascii_case("FULL") || v.eq_ignore_ascii_case("HDRS"),
        Dsn::Envid => !v.is_empty() && v.len() <= MAX_ENVID && is_xtext(v),
        Dsn::Notify => {
            let words: Vec<String> = v.split(',').map(str::to_ascii_uppercase).collect();
            let known = ["SUCCESS", "FAILURE", "DELAY"];
            let distinct = words
                .iter()
                .enumerate()
                .all(|(i, w)| !words[..i].contains(w));
            (words.len() == 1 && words[0] == "NEVER")
                || (distinct && words.iter().all(|w| known.contains(&w.as_str())))
        }
        Dsn::Orcpt => match v.split_once(';') {
            Some((addr_type, addr)) => {
                v.len() <= MAX_ORCPT
                    && !addr_type.is_empty()
                    && addr_type
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'-')
                    && !addr.is_empty()
                    && is_xtext(addr)
            }
            None => false,
        },
    };
    Some(if ok {
        Ok(kind)
    } else {
        Err(CommandError::Dsn(kind.name()))
    })
}

/// Parses `BDAT` arguments: the chunk size and whether it is the last chunk.
pub fn parse_bdat(args: &str) -> Result<(u64, bool), CommandError> {
    let size = map_res(digit1, str::parse::<u64>);
    let last = opt(preceded(space1, tag_no_case("LAST")));
    let parsed: IResult<&str, (u64, Option<&str>)> = all_consuming(tuple((size, last)))(args);
    match parsed {
        Ok((_, (size, last))) => Ok((size, last.is_some())),
        Err(_) => Err(CommandError::Bdat),
    }
}

/// Parses `AUTH` arguments: the mechanism (upper-cased) and the optional initial response.
pub fn parse_auth(args: &str) -> Result<(String, Option<&str>), CommandError> {
    let mech = take_while_m_n(1, 20, |c: char| {
        c.is_ascii_alphanumeric() || c == '-' || c == '_'
    });
    let ir = opt(preceded(
        space1,
        alt((
            tag("="),
            take_while1(|c: char| c.is_ascii_alphanumeric() || "+/=".contains(c)),
        )),
    ));
    let parsed: IResult<&str, (&str, Option<&str>)> = all_consuming(tuple((mech, ir)))(args);
    match parsed {
        Ok((_, (m, ir))) => Ok((m.to_ascii_uppercase(), ir)),
        Err(_) => Err(CommandError::Auth),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_and_raw_arguments() {
        let c = parse_command(b"mail FROM:<a@b> SIZE=10 BODY=8BITMIME\r\n").unwrap();
        assert_eq!(c.verb, Verb::Mail);
        assert_eq!(c.args, "FROM:<a@b> SIZE=10 BODY=8BITMIME");
        assert_eq!(parse_command(b"QUIT\r\n").unwrap().verb, Verb::Quit);
        assert_eq!(parse_command(b"NOOP   \r\n").unwrap().args, "");
        assert_eq!(parse_command(b"EXPN list\r\n").unwrap().verb, Verb::Unknown);
        assert_eq!(parse_command(b"StartTLS").unwrap().verb, Verb::Starttls);
    }

    #[test]
    fn garbage_lines() {
        for bad in [
            &b"\r\n"[..],
            b" MAIL\r\n",
            b"MAIL\0FROM\r\n",
            b"\xff\xfe\r\n",
            b"12345\r\n",
            b"HELO\x1b[1m\r\n",
            b"GET / HTTP/1.1\r\n",
        ] {
            let r = parse_command(bad);
            assert!(
                r.is_err() || r.as_ref().unwrap().verb == Verb::Unknown,
                "{bad:?} -> {r:?}"
            );
        }
    }

    #[test]
    fn paths() {
        let p = parse_path("FROM:<Ola@Example.no> SIZE=5 SMTPUTF8", "FROM:").unwrap();
        assert_eq!(p.address, "Ola@Example.no");
        assert_eq!(p.params, "SIZE=5 SMTPUTF8");
        let p = parse_path("from: <a@b>", "FROM:").unwrap();
        assert_eq!((p.address, p.params), ("a@b", ""));
        assert_eq!(parse_path("FROM:<>", "FROM:").unwrap().address, "");
        assert_eq!(parse_path("TO:<ø@ø.no>", "TO:").unwrap().address, "ø@ø.no");
        for bad in [
            "FROM:a@b",
            "FROM:<a@b",
            "TO:<a@b>",
            "FROM:<a b@c>",
            "FROM:<nodomain>",
            "FROM:<@r:a@b>",
            "FROM:<a@b> =x",
            "FROM:<a@b>SIZE=1",
        ] {
            assert!(parse_path(bad, "FROM:").is_err(), "{bad}");
        }
    }

    #[test]
    fn params() {
        assert_eq!(parse_param("SIZE=100"), Ok(("SIZE", Some("100"))));
        assert_eq!(parse_param("SMTPUTF8"), Ok(("SMTPUTF8", None)));
        assert!(parse_param("A=b=c").is_err());
        assert!(parse_param("=x").is_err());
    }

    #[test]
    fn dsn_parameters() {
        assert_eq!(dsn_param("ret", Some("hdrs"), true), Some(Ok(Dsn::Ret)));
        assert_eq!(
            dsn_param("ENVID", Some("x+2By"), true),
            Some(Ok(Dsn::Envid))
        );
        assert_eq!(
            dsn_param("NOTIFY", Some("SUCCESS,FAILURE"), false),
            Some(Ok(Dsn::Notify))
        );
        assert_eq!(
            dsn_param("ORCPT", Some("rfc822;x@y"), false),
            Some(Ok(Dsn::Orcpt))
        );
        // Not DSN, or not this command's.
        assert_eq!(dsn_param("SIZE", Some("1"), true), None);
        assert_eq!(dsn_param("NOTIFY", Some("NEVER"), true), None);
        assert_eq!(dsn_param("RET", Some("FULL"), false), None);
        for (k, v, mail) in [
            ("RET", None, true),
            ("RET", Some("ALL"), true),
            ("ENVID", Some("a+2g"), true),
            ("ENVID", Some("a+"), true),
            ("NOTIFY", Some("NEVER,SUCCESS"), false),
            ("NOTIFY", Some("SUCCESS,SUCCESS"), false),
            ("NOTIFY", Some(""), false),
            ("ORCPT", Some("x@y"), false),
            ("ORCPT", Some(";x@y"), false),
            ("ORCPT", Some("rfc822;"), false),
        ] {
            assert!(
                matches!(dsn_param(k, v, mail), Some(Err(_))),
                "{k}={v:?} must be refused"
            );
        }
        let long = "e".repeat(MAX_ENVID + 1);
        assert!(matches!(
            dsn_param("ENVID", Some(&long), true),
            Some(Err(_))
        ));
        let long = format!("rfc822;{}", "o".repeat(MAX_ORCPT));
        assert!(matches!(
            dsn_param("ORCPT", Some(&long), false),
            Some(Err(_))
        ));
    }

    #[test]
    fn bdat_and_auth() {
        assert_eq!(parse_bdat("100"), Ok((100, false)));
        assert_eq!(parse_bdat("0 last"), Ok((0, true)));
        assert!(parse_bdat("").is_err());
        assert!(parse_bdat("-1").is_err());
        assert!(parse_bdat("99999999999999999999999").is_err());
        assert!(parse_bdat("10 LASTX").is_err());
        assert_eq!(parse_auth("plain"), Ok(("PLAIN".into(), None)));
        assert_eq!(
            parse_auth("PLAIN AGEAYgBj"),
            Ok(("PLAIN".into(), Some("AGEAYgBj")))
        );
        assert_eq!(parse_auth("LOGIN ="), Ok(("LOGIN".into(), Some("="))));
        assert!(parse_auth("").is_err());
        assert!(parse_auth("PLAIN a b").is_err());
    }
}
