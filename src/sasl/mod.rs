//! SASL on both sides of the gateway.
//!
//! Client side (clients authenticating to us): decoding PLAIN (RFC 4616) and the LOGIN
//! mechanism's two prompts. Upstream side: encoding PLAIN for the stored credential, and the
//! two token mechanisms: XOAUTH2 (Google's and Microsoft's) and OAUTHBEARER (RFC 7628, built
//! here with its GS2 header and host/port, which mail-send's builder leaves out).
//! [`exchange`] is the server side's PLAIN/LOGIN conversation, shared by IMAP and SMTP.

pub mod exchange;
mod mechanism;

pub use mechanism::Mechanism;

use crate::secret::Secret;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// A SASL exchange that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The client's data was not valid base64.
    #[error("invalid base64 in SASL data")]
    Base64,
    /// PLAIN without the two NUL separators, or not UTF-8.
    #[error("malformed PLAIN credentials")]
    MalformedPlain,
    /// An authorization identity different from the login name (we do not proxy for others).
    #[error("authorization identity must be empty or equal to the login name")]
    AuthzidMismatch,
    /// The client answered a challenge with `*` (RFC 4954, RFC 9051 §6.2.2).
    #[error("authentication cancelled")]
    Cancelled,
    /// A response longer than [`exchange::MAX_RESPONSE`].
    #[error("SASL response too long")]
    TooLong,
}

/// Decodes base64 SASL data. An empty response ("=" per RFC 4959, or an empty line) is empty.
pub fn decode_b64(data: &[u8]) -> Result<Vec<u8>, SaslError> {
    let data = data.trim_ascii();
    if data.is_empty() || data == b"=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(data).map_err(|_| SaslError::Base64)
}

/// Decodes a PLAIN message `authzid NUL authcid NUL passwd` into (login, password).
pub fn decode_plain(message: &[u8]) -> Result<(String, Secret), SaslError> {
    let mut parts = message.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::MalformedPlain);
    };
    let authcid = std::str::from_utf8(authcid).map_err(|_| SaslError::MalformedPlain)?;
    let passwd = std::str::from_utf8(passwd).map_err(|_| SaslError::MalformedPlain)?;
    if authcid.is_empty() {
        return Err(SaslError::MalformedPlain);
    }
    if !authzid.is_empty() && authzid != authcid.as_bytes() {
        return Err(SaslError::AuthzidMismatch);
    }
    Ok((authcid.to_owned(), Secret::new(passwd.to_owned())))
}

/// Base64 of the PLAIN message for `username` / `password` (no authorization identity).
pub fn encode_plain(username: &str, password: &Secret) -> Secret {
    let mut raw = zeroize::Zeroizing::new(Vec::with_capacity(
        username.len() + password.expose().len() + 2,
    ));
    raw.push(0);
    raw.extend_from_slice(username.as_bytes());
    raw.push(0);
    raw.extend_from_slice(password.expose().as_bytes());
    Secret::new(STANDARD.encode(&*raw))
}

/// Base64 of a message built in a zeroized buffer.
fn encode_secret(build: impl FnOnce(&mut Vec<u8>)) -> Secret {
    let mut raw = zeroize::Zeroizing::new(Vec::with_capacity(256));
    build(&mut raw);
    Secret::new(STANDARD.encode(&*raw))
}

/// Base64 of the XOAUTH2 message `user=EMAIL ^A auth=Bearer TOKEN ^A ^A`.
pub fn encode_xoauth2(user: &str, token: &Secret) -> Secret {
    encode_secret(|raw| {
        raw.extend_from_slice(b"user=");
        raw.extend_from_slice(user.as_bytes());
        raw.extend_from_slice(b"\x01auth=Bearer ");
        raw.extend_from_slice(token.expose().as_bytes());
        raw.extend_from_slice(b"\x01\x01");
    })
}

/// Base64 of the RFC 7628 OAUTHBEARER message: GS2 header `n,a=USER,` (with `,` and `=` in the
/// name escaped as `=2C` / `=3D`, RFC 5801), then `host=`, `port=` and `auth=Bearer TOKEN`,
/// each ended by ^A, and a final ^A.
pub fn encode_oauthbearer(user: &str, host: &str, port: u16, token: &Secret) -> Secret {
    encode_secret(|raw| {
        raw.extend_from_slice(b"n,a=");
        raw.extend_from_slice(user.replace('=', "=3D").replace(',', "=2C").as_bytes());
        raw.extend_from_slice(
            format!(",\x01host={host}\x01port={port}\x01auth=Bearer ").as_bytes(),
        );
        raw.extend_from_slice(token.expose().as_bytes());
        raw.extend_from_slice(b"\x01\x01");
    })
}

/// The `status` of a token mechanism's error challenge (base64 JSON such as
/// `{"status":"invalid_token",...}`), for logs. It never holds the token.
pub fn oauth_error_status(challenge_b64: &[u8]) -> Option<String> {
    let raw = decode_b64(challenge_b64).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    let status: String = v
        .get("status")?
        .as_str()?
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    Some(status)
}

/// Base64 of `text` (for the LOGIN mechanism's prompts and answers).
pub fn encode_b64(text: &[u8]) -> String {
    STANDARD.encode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_round_trip() {
        let enc = encode_plain("ola@example.no", &Secret::from("pw"));
        let raw = decode_b64(enc.expose().as_bytes()).unwrap();
        let (user, pw) = decode_plain(&raw).unwrap();
        assert_eq!(user, "ola@example.no");
        assert_eq!(pw.expose(), "pw");
    }

    #[test]
    fn token_mechanisms() {
        let token = Secret::from("ya29.tok");
        let x = decode_b64(encode_xoauth2("a@b.c", &token).expose().as_bytes()).unwrap();
        assert_eq!(x, b"user=a@b.c\x01auth=Bearer ya29.tok\x01\x01");
        let o = encode_oauthbearer("a,=b@c", "imap.x", 993, &token);
        let o = decode_b64(o.expose().as_bytes()).unwrap();
        assert_eq!(
            o,
            b"n,a=a=2C=3Db@c,\x01host=imap.x\x01port=993\x01auth=Bearer ya29.tok\x01\x01"
        );
        let challenge = encode_b64(br#"{"status":"invalid_token","schemes":"bearer"}"#);
        assert_eq!(
            oauth_error_status(challenge.as_bytes()).as_deref(),
            Some("invalid_token")
        );
        assert_eq!(oauth_error_status(b"!!"), None);
    }

    #[test]
    fn plain_rejects_garbage() {
        assert_eq!(decode_plain(b"no-nuls"), Err(SaslError::MalformedPlain));
        assert_eq!(decode_plain(b"\0\0pw"), Err(SaslError::MalformedPlain));
        assert_eq!(
            decode_plain(b"other\0me\0pw"),
            Err(SaslError::AuthzidMismatch)
        );
        assert!(decode_plain(b"me\0me\0pw\0with-nul").is_ok());
        assert_eq!(decode_b64(b"!!!"), Err(SaslError::Base64));
        assert_eq!(decode_b64(b"="), Ok(vec![]));
    }
}
