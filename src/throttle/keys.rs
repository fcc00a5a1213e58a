//! The keys failures are counted under: the client (IPv6 by /64), the login name, and a
//! keyed fingerprint of the password so that a repeated one is recognised.

use crate::secret::Secret;
use std::net::IpAddr;
use std::sync::OnceLock;

/// Longest login name kept as a key (longer ones are cut): bounded memory per entry.
const MAX_LOGIN: usize = 256;

/// The client part of a key: the address, but for IPv6 only its /64 (one host usually has a
/// whole /64 to pick source addresses from; Dovecot's auth penalty groups IPv6 likewise). An
/// IPv4 client of a dual-stack listener (`::ffff:a.b.c.d`) is keyed by its IPv4 address, or
/// every IPv4 client would share one key.
pub(super) fn client(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None if v6.is_loopback() => ip,
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

pub(super) fn name_key(login: &str) -> String {
    login
        .trim()
        .to_lowercase()
        .chars()
        .take(MAX_LOGIN)
        .collect()
}

pub(super) fn login_key(ip: IpAddr, login: &str) -> (IpAddr, String) {
    (client(ip), name_key(login))
}

/// A keyed 64-bit fingerprint of (login, password): equal for a repeated password, useless
/// to anyone without the per-process key.
pub fn fingerprint(login: &str, password: &Secret) -> u64 {
    static KEY: OnceLock<Option<ring::hmac::Key>> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &ring::rand::SystemRandom::new()).ok()
    });
    let Some(key) = key else {
        // No randomness: treat every password as new (counts every failure; never weaker).
        return rand::random::<u64>() | 1;
    };
    let mut ctx = ring::hmac::Context::with_key(key);
    ctx.update(login.trim().to_lowercase().as_bytes());
    ctx.update(&[0]);
    ctx.update(password.expose().as_bytes());
    let t = ctx.sign();
    let mut b = [0u8; 8];
    b.copy_from_slice(&t.as_ref()[..8]);
    // 0 marks an empty slot.
    u64::from_le_bytes(b) | 1
}
