//! Commands that name mailboxes: which arguments are names, and those names in the provider's
//! form. LIST, LSUB and XLIST are only recognised here ([`super::list`] rewrites them).

use super::Names;
use crate::imap::folders::syntax::{splice, Kind as TokenKind, Malformed, Scanner, Token};
use crate::imap::rewrite::{Verdict, HOLD_MAX};
use std::ops::Range;

/// A command the rule looks into.
#[derive(Debug, Clone)]
pub(super) struct Command {
    /// The tag's bytes in the line.
    pub tag: Range<usize>,
    /// The command's name (with `UID`, or `NOTIFY SET`) as sent.
    pub name: Range<usize>,
    /// What names mailboxes in it.
    pub kind: Kind,
    /// CREATE, DELETE or RENAME: its success changes the folder list.
    pub changes_folders: bool,
}

/// Where a command's mailbox names are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// The arguments at these positions (0: the first after the name; a parenthesized list
    /// is one argument).
    Args(&'static [usize]),
    /// GETMETADATA: the first argument that is not its option list.
    Metadata,
    /// NOTIFY SET: the names in `(mailboxes …)`, `(subtree …)`, `(subtree-one …)` filters.
    Notify,
    /// LIST, LSUB or XLIST.
    List(ListKind),
}

/// The three list commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ListKind {
    List,
    Lsub,
    Xlist,
}

/// Commands whose mailboxes are at fixed positions.
const ARGS: [(&[u8], &[usize]); 17] = [
    (b"SELECT", &[0]),
    (b"EXAMINE", &[0]),
    (b"CREATE", &[0]),
    (b"DELETE", &[0]),
    (b"RENAME", &[0, 1]),
    (b"SUBSCRIBE", &[0]),
    (b"UNSUBSCRIBE", &[0]),
    (b"STATUS", &[0]),
    (b"APPEND", &[0]),
    (b"COPY", &[1]),
    (b"MOVE", &[1]),
    (b"GETQUOTAROOT", &[0]),
    (b"GETACL", &[0]),
    (b"SETACL", &[0]),
    (b"DELETEACL", &[0]),
    (b"LISTRIGHTS", &[0]),
    (b"MYRIGHTS", &[0]),
];

/// The command `line` is, if it may name a mailbox. Looks at the first words only and does
/// not allocate: most commands (FETCH, STORE, UID SEARCH, NOOP, IDLE) end here.
pub(super) fn classify(line: &[u8]) -> Option<Command> {
    let end = crate::imap::folders::syntax::line_end(line);
    let line = line.get(..end)?;
    let tag_len = memchr::memchr(b' ', line)?;
    let name_start = tag_len + 1;
    let rest = line.get(name_start..)?;
    let name_len = memchr::memchr(b' ', rest).unwrap_or(rest.len());
    let name = &rest[..name_len];
    let is = |w: &[u8]| name.eq_ignore_ascii_case(w);
    // The word after the name, for UID COPY/MOVE and NOTIFY SET.
    let second = || {
        let from = name_start + name_len + 1;
        let sub = line.get(from..).unwrap_or_default();
        let len = memchr::memchr(b' ', sub).unwrap_or(sub.len());
        (&sub[..len], from + len)
    };
    let simple = |kind: Kind, name_end: usize| Command {
        tag: 0..tag_len,
        name: name_start..name_end,
        kind,
        changes_folders: is(b"CREATE") || is(b"DELETE") || is(b"RENAME"),
    };
    let name_end = name_start + name_len;
    if let Some((_, args)) = ARGS.iter().find(|(w, _)| is(w)) {
        return Some(simple(Kind::Args(args), name_end));
    }
    let kind = if is(b"LIST") {
        Kind::List(ListKind::List)
    } else if is(b"LSUB") {
        Kind::List(ListKind::Lsub)
    } else if is(b"XLIST") {
        Kind::List(ListKind::Xlist)
    } else if is(b"GETMETADATA") {
        Kind::Metadata
    } else if is(b"SETMETADATA") {
        Kind::Args(&[0])
    } else if is(b"UID") {
        let (sub, end) = second();
        if !(sub.eq_ignore_ascii_case(b"COPY") || sub.eq_ignore_ascii_case(b"MOVE")) {
            return None;
        }
        return Some(simple(Kind::Args(&[1]), end));
    } else if is(b"NOTIFY") {
        let (sub, end) = second();
        return sub
            .eq_ignore_ascii_case(b"SET")
            .then(|| simple(Kind::Notify, end));
    } else {
        return None;
    };
    Some(simple(kind, name_end))
}

/// Why the mailbox arguments were not all read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// A name is a literal still to come, short enough to hold.
    Hold,
    /// The line is left as it is (a form the rule does not know, a literal too long to hold).
    Pass,
}

impl From<Malformed> for Stop {
    fn from(_: Malformed) -> Stop {
        Stop::Pass
    }
}

/// A name argument: taken, or the reason to stop when it is a literal still to come.
pub(super) fn name_token(token: Token, found: &mut Vec<Token>) -> Result<(), Stop> {
    match token.kind {
        TokenKind::Trailing { length } if length <= HOLD_MAX => Err(Stop::Hold),
        TokenKind::Trailing { .. } => Err(Stop::Pass),
        _ => {
            found.push(token);
            Ok(())
        }
    }
}

/// The verdict on a command of kind [`Kind::Args`], [`Kind::Metadata`] or [`Kind::Notify`].
pub(super) fn rewrite(names: Names<'_>, line: &[u8], command: &Command) -> Verdict {
    let from = command.name.end;
    let found = match command.kind {
        Kind::Args(positions) => at_positions(line, from, positions),
        Kind::Metadata => {
            let mut s = Scanner::new(line, from);
            let options = matches!(s.next_token(), Ok(Some(t)) if t.kind == TokenKind::Open);
            at_positions(line, from, if options { &[1] } else { &[0] })
        }
        Kind::Notify => notify_names(line, from),
        Kind::List(_) => return Verdict::Pass,
    };
    match found {
        Err(Stop::Hold) => Verdict::Hold,
        Err(Stop::Pass) => Verdict::Pass,
        Ok(tokens) => match to_provider(names, line, &tokens) {
            Some(bytes) => Verdict::Replace(bytes),
            None => Verdict::Pass,
        },
    }
}

/// The name arguments at `positions`. A literal still to come that is not one of them ends
/// the search (an APPEND's message is never held).
fn at_positions(line: &[u8], from: usize, positions: &[usize]) -> Result<Vec<Token>, Stop> {
    let last = positions.iter().copied().max().unwrap_or(0);
    let mut s = Scanner::new(line, from);
    let mut found = Vec::new();
    let mut index = 0usize;
    let mut depth = 0usize;
    while index <= last {
        let Some(token) = s.next_token()? else { break };
        match token.kind {
            TokenKind::Open => depth += 1,
            TokenKind::Close => {
                depth = depth.checked_sub(1).ok_or(Stop::Pass)?;
                if depth == 0 {
                    index += 1;
                }
            }
            TokenKind::Trailing { .. } if depth > 0 || !positions.contains(&index) => break,
            _ if depth > 0 => {}
            _ => {
                if positions.contains(&index) {
                    name_token(token, &mut found)?;
                }
                index += 1;
            }
        }
    }
    Ok(found)
}

/// The names in a NOTIFY SET's filters: `(mailboxes name)`, `(subtree (name name))`, …
fn notify_names(line: &[u8], from: usize) -> Result<Vec<Token>, Stop> {
    #[derive(Clone, Copy, PartialEq)]
    enum At {
        Other,
        /// Just after `(`: a filter name may follow.
        Opened,
        /// After a filter name: one name or a list of names.
        Names,
        /// Inside the list of names.
        List,
    }
    let mut s = Scanner::new(line, from);
    let mut found = Vec::new();
    let mut at = At::Other;
    while let Some(token) = s.next_token()? {
        let is = |w: &[u8]| token.is_word(line, w);
        at = match (at, &token.kind) {
            (At::List, TokenKind::Close) => At::Other,
            (At::List, _) if token.is_string() => {
                name_token(token, &mut found)?;
                At::List
            }
            (At::Names, TokenKind::Open) => At::List,
            (At::Names, _) if token.is_string() => {
                name_token(token, &mut found)?;
                At::Other
            }
            (At::Opened, TokenKind::Atom)
                if is(b"mailboxes") || is(b"subtree") || is(b"subtree-one") =>
            {
                At::Names
            }
            (_, TokenKind::Open) => At::Opened,
            // A literal still to come where no name is: the rest is not read.
            (_, TokenKind::Trailing { .. }) => break,
            _ => At::Other,
        };
    }
    Ok(found)
}

/// `line` with each name token in the provider's form, as a quoted string; a name that was a
/// literal is quoted even when it is not mapped (so that no literal is left inline). `None`
/// when nothing changes.
fn to_provider(names: Names<'_>, line: &[u8], tokens: &[Token]) -> Option<Vec<u8>> {
    let mut edits: Vec<(Range<usize>, Vec<u8>)> = Vec::new();
    for token in tokens {
        let Some(wire) = token.string(line) else {
            continue;
        };
        let mapped = names
            .decode(&wire)
            .and_then(|name| names.view.mapping.to_provider(&name));
        let inline = matches!(token.kind, TokenKind::Literal { .. });
        let replacement = match mapped {
            Some(provider) => names.encode(&provider),
            None if inline => wire.into_owned(),
            None => continue,
        };
        let mut out = Vec::with_capacity(replacement.len() + 2);
        names.push(&mut out, &replacement, true);
        edits.push((token.span.clone(), out));
    }
    (!edits.is_empty()).then(|| splice(line, &edits))
}
