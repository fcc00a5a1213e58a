//! What the configuration accepts as an email address (an account's, an alias, a sign-in).

/// A deliberately loose check: something@something, no spaces or control characters.
pub(super) fn is_address(s: &str) -> bool {
    match s.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}
