//! Server responses: `* LIST`, `* LSUB`, `* XLIST` and `* STATUS` get the client's names (and
//! lose what the client must not see), capability lists gain SPECIAL-USE where the rule
//! provides it, `* ENABLED` switches names to UTF-8, tagged replies end pending commands.
//! Every other response passes after a look at its first words, without an allocation.

use super::list::Pending;
use super::{FolderNames, Names};
use crate::imap::folders::pattern::matches;
use crate::imap::folders::syntax::{line_end, splice, Kind as TokenKind, Scanner, Token};
use crate::imap::folders::{Role, View};
use crate::imap::rewrite::{Line, Verdict, HOLD_MAX};
use std::borrow::Cow;
use std::ops::Range;

/// The response word after `* ` and where it ends.
fn word(line: &[u8], from: usize) -> (&[u8], usize) {
    let rest = line.get(from..line_end(line)).unwrap_or_default();
    let len = memchr::memchr(b' ', rest).unwrap_or(rest.len());
    (&rest[..len], from + len)
}

impl FolderNames {
    /// An untagged response.
    pub(super) fn untagged(&mut self, line: Line<'_>) -> Verdict {
        let bytes = line.bytes;
        let (w, end) = word(bytes, 2);
        // `* 3 FETCH`, `* 5 EXISTS`: message data.
        if w.first().is_some_and(u8::is_ascii_digit) {
            return Verdict::Pass;
        }
        let is = |x: &[u8]| w.eq_ignore_ascii_case(x);
        if is(b"LIST") || is(b"LSUB") || is(b"XLIST") {
            let kind = if is(b"XLIST") {
                Reply::Xlist
            } else if is(b"LSUB") {
                Reply::Lsub
            } else {
                Reply::List
            };
            let names = Names {
                view: &self.view,
                utf8: self.utf8,
            };
            return list_reply(names, bytes, end, kind, self.lists.front_mut());
        }
        if is(b"STATUS") {
            let names = Names {
                view: &self.view,
                utf8: self.utf8,
            };
            return status_reply(names, bytes, end, self.lists.front_mut());
        }
        if is(b"ENABLED") {
            let (mut from, stop) = (end, line_end(bytes));
            while from < stop {
                let (e, next) = word(bytes, from + 1);
                if e.eq_ignore_ascii_case(b"UTF8=ACCEPT") || e.eq_ignore_ascii_case(b"IMAP4rev2") {
                    self.utf8 = true;
                }
                from = next;
            }
            return Verdict::Pass;
        }
        if !self.view.edits_capabilities() {
            return Verdict::Pass;
        }
        if is(b"CAPABILITY") {
            return edit_capabilities(&self.view, bytes, end, line_end(bytes));
        }
        if is(b"OK") {
            return capability_code(&self.view, bytes, end);
        }
        Verdict::Pass
    }

    /// A tagged response: the end of a command.
    pub(super) fn tagged(&mut self, line: Line<'_>) -> Verdict {
        let bytes = line.bytes;
        let (tag, end) = word(bytes, 0);
        let (status, end) = word(bytes, end + 1);
        let ok = status.eq_ignore_ascii_case(b"OK");
        if !self.lists.is_empty() || !self.changes.is_empty() {
            self.completed(tag, ok);
        }
        if ok && self.view.edits_capabilities() {
            return capability_code(&self.view, bytes, end);
        }
        Verdict::Pass
    }
}

/// Which list reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    List,
    Lsub,
    Xlist,
}

/// What the rule reads of a LIST reply.
struct Entry {
    /// The attributes' tokens and where the list closes.
    attributes: Vec<Range<usize>>,
    close: usize,
    delimiter: Option<char>,
    name: Token,
    /// RFC 5258's OLDNAME extended data, if any.
    old_name: Option<Token>,
    /// The line ends announcing a literal (it cannot be dropped).
    trailing: bool,
}

/// A name token of a reply: a literal still to come is held when it can be.
fn take_name(token: Token) -> Result<Token, Verdict> {
    match token.kind {
        TokenKind::Trailing { length } if length <= HOLD_MAX => Err(Verdict::Hold),
        TokenKind::Trailing { .. } => Err(Verdict::Pass),
        _ if token.is_string() => Ok(token),
        _ => Err(Verdict::Pass),
    }
}

/// `(attributes) delimiter name [(extended data)]`.
fn parse_entry(line: &[u8], from: usize) -> Result<Entry, Verdict> {
    let mut s = Scanner::new(line, from);
    let mut next = || s.next_token().ok().flatten().ok_or(Verdict::Pass);
    if next()?.kind != TokenKind::Open {
        return Err(Verdict::Pass);
    }
    let mut attributes = Vec::new();
    let close = loop {
        let t = next()?;
        match t.kind {
            TokenKind::Close => break t.span.start,
            TokenKind::Atom => attributes.push(t.span),
            _ => return Err(Verdict::Pass),
        }
    };
    let d = next()?;
    let delimiter = match d.kind {
        TokenKind::Quoted => {
            let text = d.string(line).ok_or(Verdict::Pass)?;
            std::str::from_utf8(&text)
                .ok()
                .and_then(|t| t.chars().next())
        }
        _ if d.is_word(line, b"NIL") => None,
        _ => return Err(Verdict::Pass),
    };
    let name = take_name(next()?)?;
    let mut entry = Entry {
        attributes,
        close,
        delimiter,
        name,
        old_name: None,
        trailing: false,
    };
    // Extended data: `(tag value tag value …)`; OLDNAME's value is `(name)`.
    #[derive(PartialEq)]
    enum At {
        Other,
        /// After the OLDNAME tag.
        Tag,
        /// Inside its value.
        Value,
    }
    let mut depth = 0usize;
    let mut at = At::Other;
    while let Ok(Some(t)) = s.next_token() {
        at = match (&t.kind, at) {
            (TokenKind::Open, At::Tag) => {
                depth += 1;
                At::Value
            }
            (TokenKind::Open, _) => {
                depth += 1;
                At::Other
            }
            (TokenKind::Close, _) => {
                depth = depth.saturating_sub(1);
                At::Other
            }
            (TokenKind::Trailing { .. }, At::Value) => {
                return Err(take_name(t).err().unwrap_or(Verdict::Pass))
            }
            (TokenKind::Trailing { .. }, _) => {
                entry.trailing = true;
                At::Other
            }
            (_, At::Value) => {
                entry.old_name = Some(t);
                At::Other
            }
            _ if depth == 1
                && t.string(line)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"OLDNAME")) =>
            {
                At::Tag
            }
            _ => At::Other,
        };
    }
    Ok(entry)
}

/// A provider name as the client sees it: the client's name if it is mapped (`Some`), and
/// the provider's name decoded (if it decodes).
fn translate<'a>(names: Names<'_>, wire: &'a [u8]) -> (Option<Cow<'a, str>>, Option<String>) {
    let provider = names.decode(wire);
    let client = provider
        .as_deref()
        .and_then(|p| names.view.mapping.to_client(p));
    (provider, client)
}

/// Whether `name` is (under) a real mailbox a client name shadows.
fn hidden(names: Names<'_>, name: &str, delimiter: Option<char>) -> bool {
    names.view.hidden.iter().any(|h| {
        name == h
            || delimiter.is_some_and(|d| {
                name.strip_prefix(h.as_str())
                    .is_some_and(|rest| rest.starts_with(d))
            })
    })
}

/// An RFC 6154 attribute (or Gmail's XLIST `\Spam`).
fn special_use(attribute: &[u8]) -> bool {
    let a = String::from_utf8_lossy(attribute);
    Role::from_attribute(&a).is_some()
        || ["\\All", "\\Flagged", "\\Important"]
            .iter()
            .any(|x| a.eq_ignore_ascii_case(x))
}

/// A `* LIST`, `* LSUB` or `* XLIST` reply; `from` is after the response word.
fn list_reply(
    names: Names<'_>,
    line: &[u8],
    from: usize,
    kind: Reply,
    pending: Option<&mut Pending>,
) -> Verdict {
    let entry = match parse_entry(line, from) {
        Ok(e) => e,
        Err(v) => return v,
    };
    let wire = entry.name.string(line).unwrap_or_default();
    let (provider, client) = translate(names, &wire);
    let shown: Cow<str> = match (&client, &provider) {
        (Some(c), _) => Cow::Borrowed(c.as_str()),
        (None, Some(p)) => Cow::Borrowed(p.as_ref()),
        (None, None) => String::from_utf8_lossy(&wire),
    };
    let d = entry.delimiter;
    let mut drop = client.is_none() && provider.as_deref().is_some_and(|p| hidden(names, p, d));
    let added = provider
        .as_deref()
        .filter(|_| kind != Reply::Lsub)
        .and_then(|p| added_attribute(names, line, &entry, p, kind));
    if let Some(p) = pending {
        if (client.is_some() || p.filter_all) && !p.patterns.is_empty() {
            drop |= !p.patterns.iter().any(|pat| matches(pat, &shown, d));
        }
        let special = added.is_some()
            || entry
                .attributes
                .iter()
                .any(|a| special_use(&line[a.clone()]));
        drop |= p.special_only && !special;
        if drop && !entry.trailing {
            p.last_dropped = Some(wire.to_vec());
        }
    }
    if drop && !entry.trailing {
        return Verdict::Replace(Vec::new());
    }
    let mut edits: Vec<(Range<usize>, Vec<u8>)> = Vec::new();
    edits.extend(added.map(|a| (entry.close..entry.close, a)));
    edits.extend(name_edit(names, &entry.name, &wire, client.as_deref()));
    if let Some(old) = &entry.old_name {
        let old_wire = old.string(line).unwrap_or_default();
        let (_, c) = translate(names, &old_wire);
        edits.extend(name_edit(names, old, &old_wire, c.as_deref()));
    }
    if edits.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Replace(splice(line, &edits))
    }
}

/// The role attribute the provider's mailbox `provider` gets (with its leading space), when
/// the view adds one and the reply lacks it.
fn added_attribute(
    names: Names<'_>,
    line: &[u8],
    entry: &Entry,
    provider: &str,
    kind: Reply,
) -> Option<Vec<u8>> {
    let role = names.view.add_attributes.get(provider).copied()?;
    let has = entry
        .attributes
        .iter()
        .any(|a| Role::from_attribute(&String::from_utf8_lossy(&line[a.clone()])) == Some(role));
    if has {
        return None;
    }
    let attribute = match (kind, role) {
        (Reply::Xlist, Role::Junk) => "\\Spam",
        _ => role.attribute(),
    };
    let space = if entry.attributes.is_empty() { "" } else { " " };
    Some(format!("{space}{attribute}").into_bytes())
}

/// The name token's replacement: the client's name if it is mapped, else a literal's name
/// as a quoted string (a held reply goes on as one line where it can); `None`: as it is.
fn name_edit(
    names: Names<'_>,
    token: &Token,
    wire: &[u8],
    client: Option<&str>,
) -> Option<(Range<usize>, Vec<u8>)> {
    let replacement = match client {
        Some(c) => Cow::Owned(names.encode(c)),
        None if matches!(token.kind, TokenKind::Literal { .. }) => Cow::Borrowed(wire),
        None => return None,
    };
    let mut out = Vec::with_capacity(replacement.len() + 2);
    names.push(&mut out, &replacement, false);
    Some((token.span.clone(), out))
}

/// `* STATUS name (items)`; `from` is after `STATUS`.
fn status_reply(
    names: Names<'_>,
    line: &[u8],
    from: usize,
    pending: Option<&mut Pending>,
) -> Verdict {
    let Ok(Some(token)) = Scanner::new(line, from).next_token() else {
        return Verdict::Pass;
    };
    let token = match take_name(token) {
        Ok(t) => t,
        Err(v) => return v,
    };
    let wire = token.string(line).unwrap_or_default();
    // The LIST-STATUS reply of an entry left out goes too.
    if let Some(p) = pending {
        if p.last_dropped.as_deref() == Some(&wire[..]) {
            p.last_dropped = None;
            return Verdict::Replace(Vec::new());
        }
    }
    let (provider, client) = translate(names, &wire);
    if client.is_none() && provider.as_deref().is_some_and(|p| hidden(names, p, None)) {
        return Verdict::Replace(Vec::new());
    }
    match name_edit(names, &token, &wire, client.as_deref()) {
        Some(edit) => Verdict::Replace(splice(line, &[edit])),
        None => Verdict::Pass,
    }
}

/// `line` with the capabilities between `from` and `end` as the view shows them: ` SPECIAL-USE`
/// added where the provider lacks it, MULTIAPPEND removed while the Sent folder is watched
/// (a swallowed upload must not take other messages of the same command with it).
fn edit_capabilities(view: &View, line: &[u8], from: usize, end: usize) -> Verdict {
    let caps = line.get(from..end).unwrap_or_default();
    let mut edits = Vec::new();
    if view.sent_watch.is_some() {
        let mut at = from;
        for cap in caps.split(|&b| b == b' ') {
            if cap.eq_ignore_ascii_case(b"MULTIAPPEND") {
                // The word and the space before it.
                edits.push((at.saturating_sub(1)..at + cap.len(), Vec::new()));
            }
            at += cap.len() + 1;
        }
    }
    let has_special_use = caps
        .split(|&b| b == b' ')
        .any(|c| c.eq_ignore_ascii_case(b"SPECIAL-USE"));
    if !has_special_use && !view.provider_special_use {
        edits.push((end..end, b" SPECIAL-USE".to_vec()));
    }
    if edits.is_empty() {
        return Verdict::Pass;
    }
    Verdict::Replace(splice(line, &edits))
}

/// A status response's `[CAPABILITY …]` code, right after the status word (`from`).
fn capability_code(view: &View, line: &[u8], from: usize) -> Verdict {
    const CODE: &[u8] = b" [CAPABILITY ";
    let Some(code) = line.get(from..from + CODE.len()) else {
        return Verdict::Pass;
    };
    if !code.eq_ignore_ascii_case(CODE) {
        return Verdict::Pass;
    }
    let start = from + CODE.len() - 1;
    let stop = line_end(line);
    match line.get(start..stop).and_then(|l| memchr::memchr(b']', l)) {
        Some(close) => edit_capabilities(view, line, start, start + close),
        None => Verdict::Pass,
    }
}
