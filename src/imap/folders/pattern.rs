//! LIST wildcards (RFC 3501 6.3.8): `*` matches anything, `%` anything but the hierarchy
//! delimiter. The folder rule matches the client's patterns against the names the client sees,
//! since the provider can only match them against its own.
//!
//! Matching runs the pattern as a set of states over the name, one pass, no backtracking: the
//! cost is at most pattern length × name length, and both are bounded ([`MAX_PATTERN`],
//! [`MAX_NAME`]); beyond them the answers are the cautious ones documented on each function.

use std::borrow::Cow;

/// Longest pattern (bytes) that is matched; longer ones are treated as matching.
pub const MAX_PATTERN: usize = 1024;

/// Longest name (bytes) that is matched; longer ones are treated as matching.
pub const MAX_NAME: usize = 4096;

/// Whether `pattern` has a wildcard.
pub fn has_wildcards(pattern: &str) -> bool {
    pattern.contains(['*', '%'])
}

/// Whether `name` matches `pattern`. `INBOX` (the first level) is matched without regard to
/// case, as it is named. Too long to match: `true` (a name is rather shown than lost).
pub fn matches(pattern: &str, name: &str, delimiter: Option<char>) -> bool {
    let Some((p, states)) = run(pattern, name, delimiter) else {
        return true;
    };
    states.get(p.len()).copied().unwrap_or(false)
}

/// Whether some name that starts with `prefix` (or is it) could match `pattern`. Too long:
/// `true`.
pub fn may_match_below(pattern: &str, prefix: &str, delimiter: Option<char>) -> bool {
    match run(pattern, prefix, delimiter) {
        Some((_, states)) => states.contains(&true),
        None => true,
    }
}

/// Whether every name that starts with `prefix` matches `pattern` (what is left of the
/// pattern is wildcards only, with a `*`). Too long: `false`.
pub fn covers_below(pattern: &str, prefix: &str, delimiter: Option<char>) -> bool {
    let Some((p, states)) = run(pattern, prefix, delimiter) else {
        return false;
    };
    states.iter().enumerate().any(|(i, &alive)| {
        let rest = p.get(i..).unwrap_or_default();
        alive && rest.contains(&'*') && rest.iter().all(|&c| c == '*' || c == '%')
    })
}

/// The pattern's characters and the states alive after reading `name` (state `i`: the
/// first `i` characters of the pattern are matched); `None` when either is too long.
fn run(pattern: &str, name: &str, delimiter: Option<char>) -> Option<(Vec<char>, Vec<bool>)> {
    if pattern.len() > MAX_PATTERN || name.len() > MAX_NAME {
        return None;
    }
    let p: Vec<char> = inbox_upper(pattern, delimiter).chars().collect();
    let mut current = vec![false; p.len() + 1];
    if let Some(first) = current.first_mut() {
        *first = true;
    }
    close(&mut current, &p);
    let mut next = vec![false; p.len() + 1];
    for c in inbox_upper(name, delimiter).chars() {
        next.fill(false);
        for (i, &pc) in p.iter().enumerate() {
            if !current.get(i).copied().unwrap_or(false) {
                continue;
            }
            let to = match pc {
                '*' => i,
                '%' if Some(c) != delimiter => i,
                '%' => continue,
                _ if pc == c => i + 1,
                _ => continue,
            };
            if let Some(s) = next.get_mut(to) {
                *s = true;
            }
        }
        close(&mut next, &p);
        std::mem::swap(&mut current, &mut next);
        if !current.contains(&true) {
            break;
        }
    }
    Some((p, current))
}

/// Wildcards match nothing too: a state before one is also a state after it.
fn close(states: &mut [bool], pattern: &[char]) {
    for (i, &c) in pattern.iter().enumerate() {
        if (c == '*' || c == '%') && states.get(i).copied().unwrap_or(false) {
            if let Some(s) = states.get_mut(i + 1) {
                *s = true;
            }
        }
    }
}

/// `s` with a first level that is `INBOX` in any case written `INBOX`.
fn inbox_upper(s: &str, delimiter: Option<char>) -> Cow<'_, str> {
    let Some(head) = s.get(..5) else {
        return Cow::Borrowed(s);
    };
    let rest = &s[5..];
    let whole = rest.is_empty() || delimiter.is_some_and(|d| rest.starts_with(d));
    if whole && head.eq_ignore_ascii_case("INBOX") && head != "INBOX" {
        Cow::Owned(format!("INBOX{rest}"))
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLASH: Option<char> = Some('/');

    #[test]
    fn star_and_percent() {
        assert!(matches("*", "Sent Items/2024", SLASH));
        assert!(matches("%", "Sent Items", SLASH));
        assert!(!matches("%", "Sent Items/2024", SLASH));
        assert!(!matches("%", "[Gmail]/Sent Mail", SLASH));
        assert!(matches("Sent*", "Sent Items/2024", SLASH));
        assert!(matches("Sent Items/%", "Sent Items/2024", SLASH));
        assert!(!matches("Sent Items/%", "Sent Items", SLASH));
        assert!(matches("%/%", "a/b", SLASH));
        assert!(!matches("%/%", "a/b/c", SLASH));
        assert!(matches("*/%", "a/b/c", SLASH));
        assert!(matches("S%s", "Sent Items", SLASH));
        assert!(!matches("x", "xy", SLASH));
        assert!(matches("", "", SLASH));
        // Without a delimiter `%` is `*`; with `.` it stops at dots.
        assert!(matches("%", "a/b", None));
        assert!(!matches("INBOX.%", "INBOX.a.b", Some('.')));
        assert!(matches("INBOX.*", "INBOX.a.b", Some('.')));
        assert!(matches("%", "Entwürfe", SLASH));
        assert!(matches("Entw?rfe", "Entw?rfe", SLASH));
    }

    #[test]
    fn inbox_in_any_case() {
        assert!(matches("inbox", "INBOX", SLASH));
        assert!(matches("Inbox/%", "INBOX/x", SLASH));
        assert!(!matches("inboxes", "INBOXES", SLASH));
    }

    #[test]
    fn below_a_prefix() {
        assert!(may_match_below("%", "Sent Items", SLASH));
        assert!(!may_match_below("%", "Sent Items/", SLASH));
        assert!(may_match_below("*", "Sent Items/", SLASH));
        assert!(may_match_below("Sent Items/%", "Sent Items/", SLASH));
        assert!(!may_match_below("Drafts*", "Sent Items/", SLASH));
        assert!(covers_below("*", "Sent Items/", SLASH));
        assert!(covers_below("Sent*", "Sent Items/", SLASH));
        assert!(!covers_below("Sent*x", "Sent Items/", SLASH));
        assert!(!covers_below("%", "Sent Items/", SLASH));
        assert!(!covers_below("[Gmail]/*", "Sent Items/", SLASH));
    }

    #[test]
    fn long_inputs_get_the_cautious_answer() {
        let long = "*".repeat(MAX_PATTERN + 1);
        assert!(matches(&long, "x", SLASH));
        assert!(may_match_below(&long, "x", SLASH));
        assert!(!covers_below(&long, "x", SLASH));
        // Many wildcards over a long name stay cheap (one pass).
        let p = "%a".repeat(500);
        let name = "a".repeat(MAX_NAME);
        assert!(matches(&p, &name, SLASH));
    }
}
