//! The bounds of an SMTP session, shared by the server side (`session`) and the
//! upstream client ([`super::submit`]), so neither imports the other for them.

use std::time::Duration;

/// Read buffer size; also the largest piece of message written upstream at once.
pub const READ_BUF: usize = 64 * 1024;
/// Longest command line, CRLF included (RFC 5321 4.5.3.1.4 says 512; we allow text-line size).
pub const MAX_LINE: usize = 1000;
/// Recipients per message (RFC 5321 4.5.3.1.8 minimum is 100).
pub const MAX_RECIPIENTS: usize = 100;
/// Silence allowed while waiting for a command (RFC 5321 4.5.3.2.7: at least 5 minutes).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Silence allowed inside DATA/BDAT data.
pub const DATA_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Protocol errors on one connection before it is closed.
pub const MAX_ERRORS: u32 = 20;
/// Bytes of one command line without a line end read (and dropped) before the connection is
/// closed. A line a little over [`MAX_LINE`] gets `500` and the session goes on; a line that
/// never ends would otherwise keep a session busy for as long as the client sends (nginx's
/// mail proxy closes on a full command buffer too).
pub const MAX_ENDLESS_LINE: usize = 64 * 1024;
