//! Who files the copy of a message sent through the gateway (`[account.folders] sent_copy`).
//!
//! Gmail and Microsoft 365 put every message submitted over SMTP in the Sent folder
//! themselves; a client that also uploads its copy makes a duplicate. iCloud and most hosts
//! file nothing; a client that does not upload leaves no record. Only the gateway sees both
//! the submission and the upload, so only it can make "exactly one copy" true.

/// What happens to the Sent copy of a message submitted through mailgate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentCopy {
    /// `provider` where the provider is known to file submissions itself, else `client`.
    Auto,
    /// The provider files submissions: a client's upload of a message mailgate just submitted
    /// is answered OK without storing a second copy.
    Provider,
    /// mailgate uploads the copy (flagged `\Seen`) after the provider accepted the message.
    Gateway,
    /// Nothing changes: the client uploads its copy or not.
    Client,
}

impl SentCopy {
    /// Every setting, as written in the config.
    pub const ALL: [SentCopy; 4] = [
        SentCopy::Auto,
        SentCopy::Provider,
        SentCopy::Gateway,
        SentCopy::Client,
    ];

    /// The config word.
    pub fn as_str(self) -> &'static str {
        match self {
            SentCopy::Auto => "auto",
            SentCopy::Provider => "provider",
            SentCopy::Gateway => "gateway",
            SentCopy::Client => "client",
        }
    }

    /// The setting a config word names.
    pub fn parse(word: &str) -> Option<SentCopy> {
        SentCopy::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(word.trim()))
    }

    /// What `Auto` means for a provider that does (`true`) or does not file submissions
    /// itself; the other settings mean themselves.
    pub fn resolve(self, provider_files_sent: bool) -> SentCopy {
        match self {
            SentCopy::Auto if provider_files_sent => SentCopy::Provider,
            SentCopy::Auto => SentCopy::Client,
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_auto() {
        for s in SentCopy::ALL {
            assert_eq!(SentCopy::parse(s.as_str()), Some(s));
        }
        assert_eq!(SentCopy::parse(" Gateway "), Some(SentCopy::Gateway));
        assert_eq!(SentCopy::parse("both"), None);
        assert_eq!(SentCopy::Auto.resolve(true), SentCopy::Provider);
        assert_eq!(SentCopy::Auto.resolve(false), SentCopy::Client);
        assert_eq!(SentCopy::Gateway.resolve(true), SentCopy::Gateway);
    }
}
