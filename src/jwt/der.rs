//! Just enough DER to say what is wrong with a private key that ring refuses: the PKCS#8
//! algorithm and the RSA modulus size. ring only answers "rejected"; an operator who gave an
//! EC key or a 1024-bit key deserves to be told which.

/// `rsaEncryption` (1.2.840.113549.1.1.1), the OID's content bytes.
pub const RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const RSA_PSS: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0A];
const EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const ED25519: &[u8] = &[0x2B, 0x65, 0x70];
const ED448: &[u8] = &[0x2B, 0x65, 0x71];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;

/// One TLV: its tag, its content and what follows it. `None` on anything malformed (only
/// definite lengths of up to four bytes, as keys use).
fn next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The content of a TLV with tag `want`, and what follows it.
fn expect(input: &[u8], want: u8) -> Option<(&[u8], &[u8])> {
    let (tag, content, rest) = next(input)?;
    (tag == want).then_some((content, rest))
}

/// PKCS#8 `PrivateKeyInfo`: the algorithm OID and the inner private key.
fn pkcs8(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (info, _) = expect(der, SEQUENCE)?;
    let (_version, rest) = expect(info, INTEGER)?;
    let (algorithm, rest) = expect(rest, SEQUENCE)?;
    let (oid, _) = expect(algorithm, OID)?;
    let (key, _) = expect(rest, OCTET_STRING)?;
    Some((oid, key))
}

/// The key algorithm of a PKCS#8 key, in words; `None` if it is not PKCS#8 at all.
pub fn pkcs8_algorithm(der: &[u8]) -> Option<&'static str> {
    let (oid, _) = pkcs8(der)?;
    Some(match oid {
        RSA_ENCRYPTION => "RSA",
        RSA_PSS => "RSA-PSS",
        EC_PUBLIC_KEY => "EC",
        ED25519 => "Ed25519",
        ED448 => "Ed448",
        _ => "non-RSA",
    })
}

/// The RSA key inside a PKCS#8 key (PKCS#1 `RSAPrivateKey`).
pub fn pkcs8_inner(der: &[u8]) -> Option<&[u8]> {
    pkcs8(der).map(|(_, key)| key)
}

/// The modulus size in bits of a PKCS#1 `RSAPrivateKey` (or `RSAPublicKey`, whose modulus is
/// the first integer).
pub fn rsa_modulus_bits(pkcs1: &[u8]) -> Option<usize> {
    let (key, _) = expect(pkcs1, SEQUENCE)?;
    let (first, rest) = expect(key, INTEGER)?;
    // A private key starts with its version (0); a public key with the modulus.
    let modulus = if first.len() == 1 {
        expect(rest, INTEGER)?.0
    } else {
        first
    };
    let skip = modulus.iter().take_while(|&&b| b == 0).count();
    let modulus = &modulus[skip..];
    let top = modulus.first()?;
    Some((modulus.len() - 1) * 8 + (8 - top.leading_zeros() as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_input_is_none_never_a_panic() {
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x82, 0xFF],
            &[0x30, 0x03, 0x02, 0x01],
            &[0x30, 0x02, 0x02, 0x00],
        ] {
            assert_eq!(pkcs8_algorithm(input), None);
            assert_eq!(rsa_modulus_bits(input), None);
        }
    }

    #[test]
    fn modulus_bits_ignore_the_sign_byte() {
        // SEQUENCE { INTEGER 0, INTEGER 0x00 0x80 0x00 } : a 16-bit modulus.
        let der = [0x30, 0x08, 0x02, 0x01, 0x00, 0x02, 0x03, 0x00, 0x80, 0x00];
        assert_eq!(rsa_modulus_bits(&der), Some(16));
    }
}
