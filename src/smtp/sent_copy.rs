//! The SMTP side of the Sent copy (`[account.folders] sent_copy`): while a message streams
//! upstream, its Message-ID is found ([`MessageIdScan`]) and, with `gateway`, a copy of its
//! bytes kept; after the provider's `250` — never before, never on a failure — what the
//! setting says is done:
//!
//! - `provider`: the Message-ID is recorded ([`crate::mailbox::submitted`]) so the client's
//!   own upload of it can be recognized;
//! - `gateway`: the copy is filed in the Sent folder over IMAP ([`crate::imap::sent`]) in a
//!   task of its own, so the client's `250` does not wait;
//! - `client`: nothing.
//!
//! Bounds: a copy is kept only for messages up to [`MAX_COPY`] bytes; all copies held at
//! once (being received, or being uploaded) share [`COPY_BUDGET`] bytes, and at most
//! [`MAX_UPLOADS`] uploads run at once. A message past any of them is sent as usual and not
//! copied (logged, counted `not_copied`).

use crate::config::{Account, Config};
use crate::mailbox::message_id::MessageIdScan;
use crate::mailbox::{submitted, SentCopy};
use crate::metrics::{self, SentCopyAction};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tracing::{debug, info, warn, Instrument};

/// Largest message mailgate keeps a copy of (its bytes with CRLF line ends).
pub const MAX_COPY: usize = 32 * 1024 * 1024;
/// Bytes of all copies held at once, process-wide.
pub const COPY_BUDGET: usize = 256 * 1024 * 1024;
/// Uploads running at once, process-wide.
pub const MAX_UPLOADS: usize = 8;

static COPY_BYTES: AtomicUsize = AtomicUsize::new(0);
static UPLOADS: AtomicUsize = AtomicUsize::new(0);

/// A share of a process-wide allowance, given back when dropped.
struct Share {
    pool: &'static AtomicUsize,
    held: usize,
}

impl Share {
    fn empty(pool: &'static AtomicUsize) -> Share {
        Share { pool, held: 0 }
    }

    /// Takes `n` more, if the pool stays within `max`.
    fn grow(&mut self, n: usize, max: usize) -> bool {
        let taken = self
            .pool
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(n).filter(|&total| total <= max)
            });
        if taken.is_ok() {
            self.held += n;
        }
        taken.is_ok()
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.pool.fetch_sub(self.held, Ordering::AcqRel);
    }
}

/// Whether a copy is kept.
enum Copying {
    /// Not wanted (`sent_copy` is not `gateway`).
    Off,
    On(Copy),
    /// Wanted, but the message is past [`MAX_COPY`].
    TooLarge,
    /// Wanted, but [`COPY_BUDGET`] is used up.
    OverBudget,
}

/// The copy being kept: the message with bare LF made CRLF, and its share of the budget.
struct Copy {
    bytes: Vec<u8>,
    share: Share,
    /// The last byte kept was a CR.
    cr: bool,
}

/// What one message's Sent copy needs while it streams; see the module documentation.
pub struct Capture {
    mode: SentCopy,
    id: Option<MessageIdScan>,
    copy: Copying,
}

impl Capture {
    /// The capture for a message of an account whose effective setting is `mode`.
    pub fn new(mode: SentCopy) -> Capture {
        let copy = match mode {
            SentCopy::Gateway => Copying::On(Copy {
                bytes: Vec::new(),
                share: Share::empty(&COPY_BYTES),
                cr: false,
            }),
            _ => Copying::Off,
        };
        Capture {
            mode,
            id: (mode == SentCopy::Provider).then(MessageIdScan::new),
            copy,
        }
    }

    /// The next message bytes (unstuffed), as they go upstream.
    pub fn feed(&mut self, bytes: &[u8]) {
        if let Some(id) = self.id.as_mut() {
            id.feed(bytes);
        }
        let Copying::On(copy) = &mut self.copy else {
            return;
        };
        if copy.bytes.len() + bytes.len() > MAX_COPY {
            self.copy = Copying::TooLarge;
            return;
        }
        // Room for the bytes, a CR before each LF and the CRLF the upload may add; the
        // budget counts what the buffer really holds (its capacity), and a buffer that does
        // not fit is dropped at once.
        let lfs = memchr::memchr_iter(b'\n', bytes).count();
        copy.bytes.reserve(bytes.len() + lfs + 2);
        let need = copy.bytes.capacity().saturating_sub(copy.share.held);
        if !copy.share.grow(need, COPY_BUDGET) {
            self.copy = Copying::OverBudget;
            return;
        }
        push_crlf(copy, bytes);
    }

    /// The provider accepted the message: does what `sent_copy` says for it.
    pub fn accepted(self, account: &Arc<Account>, config: &Arc<Config>) {
        let email = account.email.as_str();
        match self.mode {
            SentCopy::Provider => {
                match self.id.and_then(MessageIdScan::finish) {
                    Some(id) => submitted::record(email, &id),
                    None => info!(account = email, "no Message-ID in the message: a client's upload of it will not be recognized"),
                }
                info!(account = email, action = "left_to_provider", "sent copy");
                metrics::sent_copy(SentCopyAction::LeftToProvider);
            }
            SentCopy::Gateway => match self.copy {
                Copying::On(copy) => upload(copy, account.clone(), config.clone()),
                Copying::TooLarge => not_copied(email, "message larger than the copy limit"),
                Copying::OverBudget => not_copied(email, "too much held in copies already"),
                Copying::Off => not_copied(email, "no copy was kept"),
            },
            SentCopy::Client | SentCopy::Auto => {
                debug!(account = email, action = "left_to_client", "sent copy");
                metrics::sent_copy(SentCopyAction::LeftToClient);
            }
        }
    }
}

/// Appends `bytes` to the copy, a bare LF made CRLF (IMAP wants CRLF line ends).
fn push_crlf(copy: &mut Copy, bytes: &[u8]) {
    let mut rest = bytes;
    while let Some(i) = memchr::memchr(b'\n', rest) {
        let before_cr = if i == 0 {
            copy.cr
        } else {
            rest[i - 1] == b'\r'
        };
        copy.bytes.extend_from_slice(&rest[..i]);
        if !before_cr {
            copy.bytes.push(b'\r');
        }
        copy.bytes.push(b'\n');
        copy.cr = false;
        rest = &rest[i + 1..];
    }
    if let Some(&last) = rest.last() {
        copy.cr = last == b'\r';
    }
    copy.bytes.extend_from_slice(rest);
}

fn not_copied(email: &str, why: &str) {
    info!(
        account = email,
        action = "not_copied",
        reason = why,
        "sent copy"
    );
    metrics::sent_copy(SentCopyAction::NotCopied);
}

/// Files the copy in a task of its own, if fewer than [`MAX_UPLOADS`] run.
fn upload(mut copy: Copy, account: Arc<Account>, config: Arc<Config>) {
    let mut slot = Share::empty(&UPLOADS);
    if !slot.grow(1, MAX_UPLOADS) {
        not_copied(&account.email, "too many uploads at once");
        return;
    }
    // What the recipient gets ends with a line end (the end marker's CRLF adds one).
    if !copy.bytes.is_empty() && !copy.bytes.ends_with(b"\r\n") {
        copy.bytes.extend_from_slice(b"\r\n");
    }
    tokio::spawn(async move {
        let email = account.email.as_str();
        let result = crate::imap::sent::file_copy(&account, &config.server, &copy.bytes).await;
        match result {
            Ok(folder) => {
                info!(account = email, action = "appended", folder, "sent copy");
                metrics::sent_copy(SentCopyAction::Appended);
            }
            Err(crate::imap::sent::SentError::NoSentFolder) => {
                not_copied(email, "no Sent folder found");
            }
            Err(e) => {
                warn!(account = email, action = "append_failed", kind = e.kind(), error = %e, "sent copy");
                // A provider that refuses the upload's login is an upstream failure like a
                // session's: the same series shows it.
                if let crate::imap::sent::SentError::Login(login) = &e {
                    metrics::upstream_error("imap", login.kind().label());
                }
                metrics::sent_copy(SentCopyAction::AppendFailed);
            }
        }
        drop(copy);
        drop(slot);
    }
    // In the session's span, so its log lines name the session.
    .in_current_span());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copied(pieces: &[&[u8]]) -> Vec<u8> {
        let mut c = Capture::new(SentCopy::Gateway);
        for p in pieces {
            c.feed(p);
        }
        match c.copy {
            Copying::On(copy) => copy.bytes,
            _ => panic!("no copy"),
        }
    }

    #[test]
    fn the_copy_has_crlf_line_ends_at_every_split() {
        let sent: &[u8] = b"A: b\nC: d\r\n\r\nbody\n.dot\r\rx\n";
        let want: &[u8] = b"A: b\r\nC: d\r\n\r\nbody\r\n.dot\r\rx\r\n";
        for split in 0..=sent.len() {
            assert_eq!(
                copied(&[&sent[..split], &sent[split..]]),
                want,
                "at {split}"
            );
        }
        let bytes: Vec<&[u8]> = sent.chunks(1).collect();
        assert_eq!(copied(&bytes), want);
    }

    #[test]
    fn large_messages_are_not_copied() {
        let mut c = Capture::new(SentCopy::Gateway);
        let piece = vec![b'x'; 1024 * 1024];
        for _ in 0..MAX_COPY / piece.len() {
            c.feed(&piece);
        }
        assert!(matches!(c.copy, Copying::On(_)));
        c.feed(b"y");
        assert!(matches!(c.copy, Copying::TooLarge));
    }

    #[test]
    fn shares_are_bounded() {
        static POOL: AtomicUsize = AtomicUsize::new(0);
        let mut a = Share::empty(&POOL);
        let mut b = Share::empty(&POOL);
        assert!(a.grow(6, 10));
        assert!(!b.grow(5, 10));
        assert!(b.grow(4, 10));
        drop(a);
        assert_eq!(POOL.load(Ordering::Acquire), 4);
        assert!(b.grow(6, 10));
        drop(b);
        assert_eq!(POOL.load(Ordering::Acquire), 0);
    }

    #[test]
    fn only_what_the_setting_needs_is_kept() {
        let mut c = Capture::new(SentCopy::Client);
        c.feed(b"Message-ID: <x@y>\r\n\r\n");
        assert!(c.id.is_none() && matches!(c.copy, Copying::Off));
        let mut c = Capture::new(SentCopy::Provider);
        c.feed(b"Message-ID: <x@y>\r\n\r\n");
        assert!(matches!(c.copy, Copying::Off));
        assert_eq!(c.id.unwrap().finish(), Some("<x@y>".into()));
    }
}
