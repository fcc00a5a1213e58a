//! A string that must never be printed: upstream passwords, tokens, local passwords in flight.
//!
//! `Secret` zeroizes its memory on drop and formats as `***` under both `Debug` and `Display`,
//! so that a `tracing` field or an error message that accidentally includes one leaks nothing.
//! The only way to the bytes is [`Secret::expose`], which makes every use greppable.

use std::fmt;
use zeroize::Zeroizing;

/// A secret string, zeroized on drop, printed as `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a string; the caller's copy should not outlive this call.
    pub fn new(s: String) -> Self {
        Secret(Zeroizing::new(s))
    }

    /// The secret text. Call only where the bytes go on the wire or into a hash.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Reads a secret from a file, without its trailing line ending (editors add one). The file's
/// text is zeroized after the copy into the `Secret`.
pub fn read_file(path: &std::path::Path) -> std::io::Result<Secret> {
    let text = Zeroizing::new(std::fs::read_to_string(path)?);
    Ok(Secret::new(text.trim_end_matches(['\r', '\n']).to_owned()))
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::new(s.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_its_content() {
        let s = Secret::from("hunter2");
        assert_eq!(format!("{s} {s:?} {:?}", Some(&s)), "*** *** Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }
}
