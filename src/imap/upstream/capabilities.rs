//! A logged-in connection's capability list, shared between connections. Every connection to
//! one server announces the same list, and each session keeps it for its whole life (for its
//! rules and a warm hand-over): as one shared copy per distinct list instead of some forty small
//! strings per session, an idle session holds about 2 KiB less.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex};

/// The capabilities a server announced after login, as it spelled them.
pub type Capabilities = Arc<[String]>;

/// Distinct lists kept for sharing; a full set is emptied and filled again, so a server that
/// varies its list (or many servers) cannot grow it without bound.
const MAX_LISTS: usize = 64;

static LISTS: LazyLock<Mutex<HashSet<Capabilities>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// The shared copy of `list`.
pub fn shared(list: Vec<String>) -> Capabilities {
    let Ok(mut lists) = LISTS.lock() else {
        // A panic elsewhere while holding the lock: no sharing, same list.
        return list.into();
    };
    if let Some(known) = lists.get(list.as_slice()) {
        return known.clone();
    }
    if lists.len() >= MAX_LISTS {
        lists.clear();
    }
    let list: Capabilities = list.into();
    lists.insert(list.clone());
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(words: &str) -> Vec<String> {
        words.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn the_same_list_is_one_copy() {
        let a = shared(list("IMAP4rev1 IDLE UNSELECT shared-test-1"));
        let b = shared(list("IMAP4rev1 IDLE UNSELECT shared-test-1"));
        assert!(Arc::ptr_eq(&a, &b));
        let c = shared(list("IMAP4rev1 IDLE shared-test-1"));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(&c[..], &list("IMAP4rev1 IDLE shared-test-1")[..]);
    }

    #[test]
    fn the_set_stays_bounded() {
        for i in 0..3 * MAX_LISTS {
            let l = list(&format!("IMAP4rev1 bounded-test-{i}"));
            assert_eq!(&shared(l.clone())[..], &l[..]);
            assert!(LISTS.lock().map(|s| s.len()).unwrap_or(0) <= MAX_LISTS);
        }
    }
}
