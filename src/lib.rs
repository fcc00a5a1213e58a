//! mailgate: a local IMAP/SMTP gateway.
