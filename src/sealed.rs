//! Sealing secrets at rest: XChaCha20-Poly1305 (RustCrypto, pure Rust) with a random 192-bit
//! nonce per seal, so nonces never need a counter that could repeat after a crash. The bytes are
//! `magic ‖ nonce ‖ ciphertext`; the additional data is the magic and the owner's name
//! (lower-cased), so sealed bytes moved onto another owner, or from one kind of record to
//! another (a token onto an account), fail to open instead of being taken for the other.
//!
//! Used by the token file store and by the shared store on PostgreSQL, with their own magics.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Why sealed bytes do not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unsealed {
    /// Too short, or another magic: not sealed by this kind of record.
    #[error("not a sealed mailgate record of this kind")]
    NotSealed,
    /// The tag does not verify: damaged, another owner's, or another key.
    #[error("authentication failed")]
    Authentication,
}

impl Unsealed {
    /// The reason in the words the token file store has always used.
    pub fn reason(self) -> &'static str {
        match self {
            Unsealed::NotSealed => "not a mailgate token file",
            Unsealed::Authentication => "authentication failed",
        }
    }
}

fn aad(magic: &[u8; 8], owner: &str) -> Vec<u8> {
    let mut aad = magic.to_vec();
    aad.extend_from_slice(owner.to_ascii_lowercase().as_bytes());
    aad
}

/// `plain` sealed for `owner` under `key`; `None` only if the cipher refuses (a plaintext
/// beyond its limit, which no record comes near).
pub fn seal(key: &[u8; 32], magic: &[u8; 8], owner: &str, plain: &[u8]) -> Option<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(key.into());
    let aad = aad(magic, owner);
    let payload = Payload {
        msg: plain,
        aad: &aad,
    };
    let ciphertext = cipher.encrypt(XNonce::from_slice(&nonce), payload).ok()?;
    let mut bytes = Vec::with_capacity(magic.len() + NONCE_LEN + ciphertext.len());
    bytes.extend_from_slice(magic);
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(&ciphertext);
    Some(bytes)
}

/// What [`seal`] sealed for `owner` under `key` with `magic`.
pub fn unseal(
    key: &[u8; 32],
    magic: &[u8; 8],
    owner: &str,
    bytes: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Unsealed> {
    if bytes.len() < magic.len() + NONCE_LEN + TAG_LEN || !bytes.starts_with(magic) {
        return Err(Unsealed::NotSealed);
    }
    let (nonce, ciphertext) = bytes[magic.len()..].split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(key.into());
    let aad = aad(magic, owner);
    let payload = Payload {
        msg: ciphertext,
        aad: &aad,
    };
    cipher
        .decrypt(XNonce::from_slice(nonce), payload)
        .map(Zeroizing::new)
        .map_err(|_| Unsealed::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bytes_open_only_for_their_owner_kind_and_key() {
        let key = [7u8; 32];
        let sealed = seal(&key, b"MGTEST01", "Ola@Example.no", b"secret").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        let open = unseal(&key, b"MGTEST01", "ola@example.no", &sealed).unwrap();
        assert_eq!(open.as_slice(), b"secret");
        let other = unseal(&key, b"MGTEST01", "kari@example.no", &sealed);
        assert_eq!(other, Err(Unsealed::Authentication));
        let kind = unseal(&key, b"MGTEST02", "ola@example.no", &sealed);
        assert_eq!(kind, Err(Unsealed::NotSealed));
        let wrong = unseal(&[8u8; 32], b"MGTEST01", "ola@example.no", &sealed);
        assert_eq!(wrong, Err(Unsealed::Authentication));
    }
}
