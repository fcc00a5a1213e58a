//! Placing an error in the config file: line and column of a byte offset, the dotted field path
//! (`account[1].imap.tls`) at an offset, and the line that sets a key.

use super::ConfigError;
use std::collections::HashMap;
use std::path::Path;

/// A field of a table that cannot be used: the sub-field (`.server`, `.tls`) and why. The
/// caller knows the table and places it in the file at `file:line:col`.
#[derive(Debug)]
pub struct FieldError {
    /// `.field`, relative to the table.
    pub field: String,
    /// What is wrong, in words.
    pub message: String,
}

impl FieldError {
    /// An error of `field` (without the leading dot).
    pub fn new(field: &str, message: String) -> FieldError {
        FieldError {
            field: format!(".{field}"),
            message,
        }
    }
}

/// The config file's text and path, to turn an offset into a [`ConfigError::Invalid`].
#[derive(Clone, Copy)]
pub(super) struct Locator<'a> {
    /// The file's text.
    pub text: &'a str,
    /// The file.
    pub path: &'a Path,
}

impl Locator<'_> {
    /// The error at byte `offset`, naming `field`.
    pub fn at(&self, offset: usize, field: String, message: String) -> ConfigError {
        let (line, column) = line_col(self.text, offset);
        ConfigError::Invalid {
            path: self.path.to_owned(),
            line,
            column,
            field,
            message,
        }
    }

    /// A TOML or schema error, placed at its span with the field path found there.
    pub fn toml(&self, e: &toml::de::Error) -> ConfigError {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        let message = e.message().trim().to_owned();
        self.at(offset, field_path_at(self.text, offset), message)
    }

    /// `e`, an error of a field of `table` of `name` (e.g. `account[0]`), placed on the line
    /// that sets the field if the table at `table_at` has one, else on the table.
    pub fn field(&self, table_at: usize, name: &str, table: &str, e: FieldError) -> ConfigError {
        let key = e.field.trim_start_matches('.');
        let at = key_offset(self.text, table_at, key).unwrap_or(table_at);
        self.at(at, format!("{name}.{table}{}", e.field), e.message)
    }
}

/// The offset of the line that sets `key` in the table starting at `table_at`, if the key is
/// written there (validation errors then point at the value, not at the table header).
pub(super) fn key_offset(text: &str, table_at: usize, key: &str) -> Option<usize> {
    let mut pos = text[..table_at.min(text.len())]
        .rfind('\n')
        .map_or(0, |p| p + 1);
    for (i, line) in text[pos..].split_inclusive('\n').enumerate() {
        let t = line.trim_start();
        if i > 0 && t.starts_with('[') {
            return None;
        }
        if let Some(rest) = t.strip_prefix(key) {
            if rest.trim_start().starts_with('=') {
                return Some(pos + (line.len() - t.len()));
            }
        }
        pos += line.len();
    }
    None
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// The dotted field path of the key at `offset`, found by replaying the table headers before it
/// (`[[account]]` counts array elements, so the path reads `account[1].imap.tls`). toml's own
/// errors give a position but not the path; operators want both.
fn field_path_at(text: &str, offset: usize) -> String {
    let mut table = String::new();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut indexed: HashMap<String, String> = HashMap::new();
    let mut pos = 0;
    for raw in text.split_inclusive('\n') {
        let line_end = pos + raw.len();
        let line = raw.trim();
        let header = if let Some(name) = line.strip_prefix("[[") {
            name.split("]]").next().map(|n| (n.trim().to_owned(), true))
        } else if let Some(name) = line.strip_prefix('[') {
            name.split(']').next().map(|n| (n.trim().to_owned(), false))
        } else {
            None
        };
        let is_header = header.is_some();
        if let Some((name, is_array)) = header {
            // Rewrite a prefix that names an array of tables to its current element.
            let mut resolved = name.clone();
            for (plain, with_index) in &indexed {
                let same = name == *plain && !is_array;
                if same || name.starts_with(&format!("{plain}.")) {
                    resolved = format!("{with_index}{}", &name[plain.len()..]);
                }
            }
            if is_array {
                let n = counts.entry(name.clone()).or_insert(0);
                resolved = format!("{resolved}[{n}]");
                *n += 1;
                indexed.insert(name, resolved.clone());
            }
            table = resolved;
        }
        if offset < line_end {
            if !is_header {
                if let Some((key, _)) = line.split_once('=') {
                    let key = key.trim().trim_matches('"');
                    if !key.is_empty() && !line.starts_with('#') {
                        return if table.is_empty() {
                            key.to_owned()
                        } else {
                            format!("{table}.{key}")
                        };
                    }
                }
            }
            break;
        }
        pos = line_end;
    }
    if table.is_empty() {
        "(top level)".into()
    } else {
        table
    }
}
