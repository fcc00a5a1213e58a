//! The folder rule sees every line of a session; the lines it has nothing to do with (FETCH
//! and its literal data, SEARCH, EXISTS, NOOP, IDLE, tagged replies) must cost no allocation.
//! Its own binary: the counting allocator here counts only this test's thread.

use mailgate::imap::folders::{parse_list, Entry, Folders, Profile, Role, View};
use mailgate::imap::framer::announcement;
use mailgate::imap::rewrite::{FolderNames, Line, Rewrite, Verdict};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Arc;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is passed on to the system allocator unchanged; the counter is a
// thread-local `Cell` with a const initializer, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// Gmail for a SuperOffice client, with a pending CREATE and LIST and a provider without
/// SPECIAL-USE (so that tagged replies and capability codes are looked at).
fn rule() -> FolderNames {
    let entries: Vec<Entry> = [
        "* LIST (\\HasNoChildren) \"/\" INBOX\r\n",
        "* LIST (\\HasChildren \\Sent) \"/\" \"[Gmail]/Sent Mail\"\r\n",
        "* LIST (\\HasNoChildren \\Drafts) \"/\" \"[Gmail]/Drafts\"\r\n",
    ]
    .iter()
    .filter_map(|r| parse_list(r.as_bytes()))
    .collect();
    let wanted: BTreeMap<Role, String> = Role::ALL
        .into_iter()
        .filter_map(|r| Some((r, Profile::SuperOffice.name(r)?.to_owned())))
        .collect();
    let view = View::new(
        &entries,
        &Folders::learn(&entries),
        &wanted,
        &["IMAP4rev1".to_owned()],
    );
    let mut rule = FolderNames::new(Arc::new(view), Box::new(|| {}));
    for c in ["c1 CREATE x\r\n", "l1 LIST \"\" \"*\"\r\n"] {
        rule.command(line(c.as_bytes(), true));
    }
    rule
}

fn line(bytes: &[u8], starts: bool) -> Line<'_> {
    Line {
        bytes,
        literal: announcement(bytes),
        starts,
    }
}

#[test]
fn lines_without_mailboxes_cost_no_allocation() {
    let mut rule = rule();
    let commands: &[(&str, bool)] = &[
        ("a1 FETCH 1:* (FLAGS BODY.PEEK[HEADER])\r\n", true),
        ("a2 UID FETCH 1:* (UID RFC822.SIZE)\r\n", true),
        ("a3 UID SEARCH SUBJECT \"Sent Items\"\r\n", true),
        ("a4 NOOP\r\n", true),
        ("a5 IDLE\r\n", true),
        ("DONE\r\n", false),
        ("a6 UID STORE 1 +FLAGS (\\Seen)\r\n", true),
        ("a7 UID EXPUNGE 1\r\n", true),
        ("a8 SEARCH TEXT {5}\r\n", true),
        (" UNSEEN\r\n", false),
    ];
    let responses: &[(&str, bool)] = &[
        ("* 1 FETCH (FLAGS (\\Seen) BODY[] {120}\r\n", true),
        (" UID 5)\r\n", false),
        ("* LIST () \"/\" Drafts\r\n", false),
        ("* 3 EXISTS\r\n", true),
        ("* 1 EXPUNGE\r\n", true),
        ("* SEARCH 1 2 3\r\n", true),
        ("* ESEARCH (TAG \"a\") UID ALL 1:5\r\n", true),
        ("* OK [UIDNEXT 6] next\r\n", true),
        ("* FLAGS (\\Seen \\Draft)\r\n", true),
        ("+ idling\r\n", true),
        ("a1 OK FETCH done\r\n", true),
        ("a3 OK [HIGHESTMODSEQ 4] done\r\n", true),
    ];
    let before = allocations();
    for &(text, starts) in commands {
        assert_eq!(rule.command(line(text.as_bytes(), starts)), Verdict::Pass);
    }
    for &(text, starts) in responses {
        assert_eq!(rule.response(line(text.as_bytes(), starts)), Verdict::Pass);
    }
    assert_eq!(allocations() - before, 0, "allocations on the common path");
    // The count is live: a mailbox command allocates.
    rule.command(line(b"a9 SELECT \"Sent Items\"\r\n", true));
    assert!(allocations() > before);
}
