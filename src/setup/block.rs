//! Where one `[[account]]` table lies in the config file's text, so that it can be replaced or
//! cut out while every other byte stays as it was. Re-serialising the parsed document would
//! move comments and blank lines; the byte range comes from toml_edit's spans instead.

use std::ops::Range;
use toml_edit::{ImDocument, Item, Table};

/// The addresses of the file's `[[account]]` tables, in order (trimmed, as written).
pub(super) fn emails(doc: &toml_edit::DocumentMut) -> Vec<String> {
    doc.get("account")
        .and_then(Item::as_array_of_tables)
        .map(|a| {
            a.iter()
                .map(|t| {
                    t.get("email")
                        .and_then(Item::as_str)
                        .unwrap_or_default()
                        .trim()
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The index of `email`'s `[[account]]` (case-insensitive), if the file has it.
pub(super) fn index_of(doc: &toml_edit::DocumentMut, email: &str) -> Option<usize> {
    emails(doc)
        .iter()
        .position(|e| e.eq_ignore_ascii_case(email.trim()))
}

/// The bytes of the `index`-th `[[account]]`: from the comment and blank lines above its
/// header (its decor prefix, where `mailgate setup` writes its note) to the comments above
/// the next table that is not one of its own (`[account.imap]`, …), or the end of the text.
/// The second range is the header and body alone (the comments above it excluded). `None`
/// when the text does not parse or has no such table.
pub(super) fn account_range(text: &str, index: usize) -> Option<(Range<usize>, Range<usize>)> {
    let doc = ImDocument::parse(text).ok()?;
    let account = doc.get("account")?.as_array_of_tables()?.get(index)?;
    let header = account.span()?;
    let start = lead(account, &header);
    let mut own = Vec::new();
    headers(account, &mut own);
    let mut all = Vec::new();
    headers(doc.as_table(), &mut all);
    // The first table after this one that is not its own ends the block, at its comments.
    let end = all
        .iter()
        .filter(|(h, _)| h.start > header.start && !own.iter().any(|(o, _)| o == h))
        .min_by_key(|(h, _)| h.start)
        .map_or(text.len(), |(_, lead)| *lead);
    (start <= header.start && header.start <= end).then_some((start..end, header.start..end))
}

/// Every table with a header below `table` (itself excluded): its header's span and where its
/// leading comments start.
fn headers(table: &Table, out: &mut Vec<(Range<usize>, usize)>) {
    for (_, item) in table.iter() {
        let mut one = |t: &Table| {
            if let Some(h) = t.span() {
                let lead = lead(t, &h);
                out.push((h, lead));
            }
            headers(t, out);
        };
        match item {
            Item::Table(t) => one(t),
            Item::ArrayOfTables(a) => a.iter().for_each(one),
            _ => {}
        }
    }
}

/// Where the comment and blank lines above `t`'s header (at `header`) start.
fn lead(t: &Table, header: &Range<usize>) -> usize {
    t.decor()
        .prefix()
        .and_then(|p| p.span())
        .filter(|p| !p.is_empty())
        .map_or(header.start, |p| p.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# top\n[server]\nx = 1\n\n# first\n[[account]]\nemail = \"a@x\"\n[account.imap]\nserver = \"h:1\"\n\n# b's note\n[[account]]\nemail = \"b@x\" # b\n[account.imap]\nserver = \"h:2\"\n[account.smtp]\nserver = \"h:3\"\n\n# metrics\n[metrics]\nlisten = \"1\"\n";

    #[test]
    fn a_block_runs_from_its_comments_to_the_next_tables_comments() {
        let (block, body) = account_range(TEXT, 1).unwrap();
        assert_eq!(
            &TEXT[block],
            "\n# b's note\n[[account]]\nemail = \"b@x\" # b\n[account.imap]\nserver = \"h:2\"\n[account.smtp]\nserver = \"h:3\"\n"
        );
        assert!(TEXT[body].starts_with("[[account]]\nemail = \"b@x\""));
        let (first, _) = account_range(TEXT, 0).unwrap();
        assert_eq!(
            &TEXT[first],
            "\n# first\n[[account]]\nemail = \"a@x\"\n[account.imap]\nserver = \"h:1\"\n"
        );
        assert!(account_range(TEXT, 2).is_none());
    }

    #[test]
    fn the_last_block_runs_to_the_end() {
        let text = "[[account]]\nemail = \"a@x\"\n\n[[account]]\nemail = \"b@x\"\n# trailing\n";
        let (block, _) = account_range(text, 1).unwrap();
        assert_eq!(&text[block], "\n[[account]]\nemail = \"b@x\"\n# trailing\n");
    }
}
