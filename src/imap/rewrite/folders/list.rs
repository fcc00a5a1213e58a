//! LIST, LSUB and XLIST commands (RFC 3501 6.3.8, LIST-EXTENDED RFC 5258): the client's
//! patterns match the names the client sees, the provider's only its own names. So the rule
//! reads the client's patterns (the reference prefixed), and for each one:
//! - inside a mapped folder's tree (`Sent Items/%`), or no wildcard: the provider's name;
//! - wildcards that may reach a mapped client name or its children but not (all of) the
//!   provider's: the pattern plus the provider's name and `<name><delimiter>*` (a pattern list
//!   where the provider has LIST-EXTENDED; else `*`, the whole tree);
//! - anything else: as it is.
//!
//! The replies are then filtered against the client's patterns ([`super::reply`]).
//! SPECIAL-USE as a selection or return option is removed where the provider does not know
//! it; the rule then adds the attributes and does the selection itself.

use super::command::{name_token, Command, ListKind, Stop};
use super::Names;
use crate::imap::folders::pattern::{covers_below, has_wildcards, matches, may_match_below};
use crate::imap::folders::syntax::{line_end, quotable, Kind as TokenKind, Scanner, Token};
use std::borrow::Cow;
use std::ops::Range;

/// More patterns than this in one LIST, or more bytes of them all, are passed on as they
/// are (and their replies not filtered): matching each reply against them stays cheap.
const MAX_PATTERNS: usize = 64;
const MAX_PATTERN_BYTES: usize = 4096;

/// A LIST the rule waits on, to filter its replies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Pending {
    /// The command's tag.
    pub tag: Vec<u8>,
    /// The client's patterns with the reference prefixed (UTF-8); empty: no filtering.
    pub patterns: Vec<String>,
    /// The provider was asked for `*`: names it did not map are filtered too.
    pub filter_all: bool,
    /// SPECIAL-USE selection the provider cannot do: only entries with a special-use
    /// attribute are shown.
    pub special_only: bool,
    /// The provider's name of the last entry left out: its LIST-STATUS reply goes too.
    pub last_dropped: Option<Vec<u8>>,
}

/// What becomes of a LIST.
#[derive(Debug)]
pub(super) enum Outcome {
    /// A reference or pattern is a literal still to come.
    Hold,
    /// The command goes on as it is.
    Pass(Pending),
    /// These bytes go in its place.
    Replace(Vec<u8>, Pending),
}

/// The parts of a LIST command.
struct Parsed {
    /// The items of the selection options, if any.
    select: Option<Vec<Range<usize>>>,
    reference: Token,
    patterns: Vec<Token>,
    /// The items of the return options, if any.
    ret: Option<Vec<Range<usize>>>,
}

/// How one pattern is sent.
#[derive(Debug, PartialEq)]
enum Plan {
    /// As the client sent it.
    Same,
    /// As this provider pattern (wire form).
    Mapped(Vec<u8>),
    /// As it is, plus these provider patterns (wire form).
    Widened(Vec<Vec<u8>>),
}

/// The verdict on a LIST, LSUB or XLIST command, and what to remember of it.
pub(super) fn rewrite(names: Names<'_>, line: &[u8], c: &Command, kind: ListKind) -> Outcome {
    let mut pending = Pending {
        tag: line.get(c.tag.clone()).unwrap_or_default().to_vec(),
        ..Pending::default()
    };
    let parsed = match parse(line, c.name.end, kind) {
        Ok(p) => p,
        Err(Stop::Hold) => return Outcome::Hold,
        Err(Stop::Pass) => return Outcome::Pass(pending),
    };
    let special_use = |items: Option<Vec<Range<usize>>>| -> (Option<Vec<Range<usize>>>, bool) {
        let Some(items) = items else {
            return (None, false);
        };
        if names.view.provider_special_use {
            return (Some(items), false);
        }
        let before = items.len();
        let kept: Vec<Range<usize>> = items
            .into_iter()
            .filter(|r| !line[r.clone()].eq_ignore_ascii_case(b"SPECIAL-USE"))
            .collect();
        let removed = kept.len() != before;
        // An empty list is left out: a provider without LIST-EXTENDED would refuse `()`.
        (Some(kept).filter(|k| !k.is_empty() || !removed), removed)
    };
    let (select, select_changed) = special_use(parsed.select.clone());
    let (ret, ret_changed) = special_use(parsed.ret.clone());
    pending.special_only = select_changed;

    let reference = parsed.reference.string(line).unwrap_or_default();
    let wires: Vec<Cow<[u8]>> = parsed
        .patterns
        .iter()
        .map(|t| t.string(line).unwrap_or_default())
        .collect();
    // Full patterns (RFC 3501 6.3.8: the reference is prefixed), as the client wrote them.
    let full: Vec<Vec<u8>> = wires.iter().map(|w| [&reference[..], w].concat()).collect();
    let decoded: Option<Vec<String>> = full
        .iter()
        .map(|f| names.decode(f).map(Cow::into_owned))
        .collect();
    // Delimiter queries (`""`), undecodable names, names that cannot be written as quoted
    // strings (they stay as the client sent them) and very long lists are not looked into.
    let analysable = wires.iter().all(|w| !w.is_empty())
        && full.iter().all(|f| quotable(f, names.utf8))
        && wires.len() <= MAX_PATTERNS
        && full.iter().map(Vec::len).sum::<usize>() <= MAX_PATTERN_BYTES;
    let clients = decoded.filter(|_| analysable).unwrap_or_default();
    let plans: Vec<Plan> = clients.iter().map(|p| plan(names, p)).collect();
    pending.patterns = clients;

    let inline = std::iter::once(&parsed.reference)
        .chain(&parsed.patterns)
        .any(|t| matches!(t.kind, TokenKind::Literal { .. }));
    let widen = plans.iter().any(|p| *p != Plan::Same);
    if !(widen || inline || select_changed || ret_changed) {
        return Outcome::Pass(pending);
    }
    let mut out = Vec::with_capacity(line.len() + 64);
    out.extend_from_slice(line.get(..c.name.end).unwrap_or_default());
    if let Some(items) = &select {
        push_group(&mut out, line, items);
    }
    out.push(b' ');
    if widen {
        let (provider, all) = provider_patterns(names, kind, &full, &plans);
        pending.filter_all = all;
        out.extend_from_slice(b"\"\" ");
        if let [one] = &provider[..] {
            names.push(&mut out, one, true);
        } else {
            out.push(b'(');
            for (i, p) in provider.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                names.push(&mut out, p, true);
            }
            out.push(b')');
        }
    } else {
        push_same(names, &mut out, line, &parsed);
    }
    if let Some(items) = &ret {
        out.extend_from_slice(b" RETURN");
        push_group(&mut out, line, items);
    }
    out.extend_from_slice(&line[line_end(line)..]);
    Outcome::Replace(out, pending)
}

/// How `pattern` (client side, reference prefixed) reaches the provider.
fn plan(names: Names<'_>, pattern: &str) -> Plan {
    let mapping = &names.view.mapping;
    if let Some(provider) = mapping.to_provider(pattern) {
        return Plan::Mapped(names.encode(&provider));
    }
    if !has_wildcards(pattern) {
        return Plan::Same;
    }
    let mut extra: Vec<Vec<u8>> = Vec::new();
    for (client, provider, delimiter) in mapping.folders() {
        if matches(pattern, client, delimiter) && !matches(pattern, provider, delimiter) {
            extra.push(names.encode(provider));
        }
        if let Some(d) = delimiter {
            let below = format!("{client}{d}");
            if may_match_below(pattern, &below, delimiter)
                && !covers_below(pattern, &format!("{provider}{d}"), delimiter)
            {
                extra.push(names.encode(&format!("{provider}{d}*")));
            }
        }
    }
    if extra.is_empty() {
        Plan::Same
    } else {
        Plan::Widened(extra)
    }
}

/// The patterns the provider gets (wire form), and whether they are `*` in place of the
/// client's (the provider cannot take a list of patterns).
fn provider_patterns(
    names: Names<'_>,
    kind: ListKind,
    full: &[Vec<u8>],
    plans: &[Plan],
) -> (Vec<Vec<u8>>, bool) {
    let list = kind == ListKind::List && names.view.provider_list_extended;
    if let (false, [Plan::Mapped(one)]) = (list, plans) {
        return (vec![one.clone()], false);
    }
    if !list {
        return (vec![b"*".to_vec()], true);
    }
    let mut out: Vec<Vec<u8>> = Vec::new();
    for (client, plan) in full.iter().zip(plans) {
        let add: Vec<&Vec<u8>> = match plan {
            Plan::Same => vec![client],
            Plan::Mapped(p) => vec![p],
            Plan::Widened(extra) => std::iter::once(client).chain(extra).collect(),
        };
        for p in add {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
    }
    (out, false)
}

/// The reference and patterns as the client sent them, a literal written as a string.
fn push_same(names: Names<'_>, out: &mut Vec<u8>, line: &[u8], parsed: &Parsed) {
    let push = |out: &mut Vec<u8>, t: &Token| match t.kind {
        TokenKind::Literal { .. } => {
            names.push(out, &t.string(line).unwrap_or_default(), true);
        }
        _ => out.extend_from_slice(&line[t.span.clone()]),
    };
    push(out, &parsed.reference);
    out.push(b' ');
    let multi = parsed.patterns.len() != 1;
    if multi {
        out.push(b'(');
    }
    for (i, t) in parsed.patterns.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        push(out, t);
    }
    if multi {
        out.push(b')');
    }
}

/// ` (a b c)` of these items of `line`.
fn push_group(out: &mut Vec<u8>, line: &[u8], items: &[Range<usize>]) {
    out.extend_from_slice(b" (");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(&line[item.clone()]);
    }
    out.push(b')');
}

/// `[(selection)] reference pattern-or-(patterns) [RETURN (options)]`.
fn parse(line: &[u8], from: usize, kind: ListKind) -> Result<Parsed, Stop> {
    let mut s = Scanner::new(line, from);
    let mut token = s.next_token()?.ok_or(Stop::Pass)?;
    let mut select = None;
    if kind == ListKind::List && token.kind == TokenKind::Open {
        select = Some(s.group()?);
        token = s.next_token()?.ok_or(Stop::Pass)?;
    }
    let mut found = Vec::new();
    if !token.is_string() {
        return Err(Stop::Pass);
    }
    name_token(token, &mut found)?;
    let token = s.next_token()?.ok_or(Stop::Pass)?;
    if token.kind == TokenKind::Open && kind == ListKind::List {
        loop {
            let t = s.next_token()?.ok_or(Stop::Pass)?;
            match t.kind {
                TokenKind::Close => break,
                _ if t.is_string() => name_token(t, &mut found)?,
                _ => return Err(Stop::Pass),
            }
        }
    } else if token.is_string() {
        name_token(token, &mut found)?;
    } else {
        return Err(Stop::Pass);
    }
    let mut ret = None;
    if let Some(t) = s.next_token()? {
        let open = s.next_token()?;
        if !t.is_word(line, b"RETURN") || !open.is_some_and(|o| o.kind == TokenKind::Open) {
            return Err(Stop::Pass);
        }
        ret = Some(s.group()?);
    }
    if s.next_token()?.is_some() || found.len() < 2 {
        return Err(Stop::Pass);
    }
    let reference = found.remove(0);
    Ok(Parsed {
        select,
        reference,
        patterns: found,
        ret,
    })
}
