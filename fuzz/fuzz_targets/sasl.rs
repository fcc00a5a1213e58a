//! The SASL decoders on arbitrary client data: nothing panics; what decodes re-encodes to
//! something that decodes the same (base64, PLAIN); the OAuth error-status reader copes with
//! any challenge.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailgate::sasl::{decode_b64, decode_plain, encode_b64, encode_plain, oauth_error_status};

fuzz_target!(|data: &[u8]| {
    if let Ok(decoded) = decode_b64(data) {
        let again = encode_b64(&decoded);
        assert_eq!(decode_b64(again.as_bytes()).ok(), Some(decoded));
    }
    let _ = oauth_error_status(data);
    // The same bytes as the decoded challenge, so the JSON side is reached too.
    if let Some(status) = oauth_error_status(encode_b64(data).as_bytes()) {
        assert!(status.chars().count() <= 64);
        assert!(!status.chars().any(char::is_control));
    }
    if let Ok((login, password)) = decode_plain(data) {
        assert!(!login.is_empty());
        assert!(!login.contains('\0'));
        let encoded = encode_plain(&login, &password);
        let raw = decode_b64(encoded.expose().as_bytes()).expect("we encoded it");
        let (l2, p2) = decode_plain(&raw).expect("we encoded it");
        assert_eq!(l2, login);
        assert_eq!(p2.expose(), password.expose());
    }
});
