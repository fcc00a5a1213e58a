//! What mailgate knows about mailboxes without talking to a server: the roles a folder can
//! play ([`Role`]: Sent, Drafts, Trash, Junk, Archive, and the names each goes by at providers
//! and in many languages), the names clients expect ([`Profile`]), and who files the copy of a
//! sent message ([`SentCopy`]), with the memory of recent submissions that needs
//! ([`submitted`]). Configuration, `check` and the IMAP session all use it.

pub mod message_id;
pub mod profile;
pub mod role;
pub mod sent_copy;
pub mod submitted;

pub use profile::Profile;
pub use role::Role;
pub use sent_copy::SentCopy;
