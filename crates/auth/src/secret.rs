//! Opaque secrets: authorization codes, refresh tokens, client secrets,
//! device codes. They are random enough (256 bits) that a plain SHA-256 is
//! a safe way to store them: the database never holds one that works.

use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

/// `n` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // SystemRandom only fails if the OS has no entropy source at all, and
    // then no secure token can be made: stopping is the only safe answer.
    SystemRandom::new()
        .fill(&mut out)
        .expect("the operating system's random source failed");
    out
}

/// A new secret: `prefix` then 256 random bits in base64url. The prefix
/// (`tlr_` for refresh tokens, say) lets secret scanners recognise a leak.
pub fn new_secret(prefix: &str) -> String {
    format!("{prefix}{}", crate::b64url(&random_bytes::<32>()))
}

/// The form a secret is stored and looked up in.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Equality that takes the same time wherever the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A code a person types (RFC 8628 §6.1): 8 letters from an alphabet
/// without vowels or look-alikes, shown as `BCDF-GHJK`.
pub fn new_user_code() -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let bytes = random_bytes::<8>();
    let letters: String = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &letters[..4], &letters[4..])
}

/// A typed user code in canonical form: upper case, dash restored,
/// anything else dropped (people type spaces and lower case).
pub fn normalise_user_code(typed: &str) -> String {
    let letters: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if letters.len() == 8 {
        format!("{}-{}", &letters[..4], &letters[4..])
    } else {
        letters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_distinct_and_hash_stably() {
        let a = new_secret("tlr_");
        let b = new_secret("tlr_");
        assert_ne!(a, b);
        assert!(a.starts_with("tlr_") && a.len() == 4 + 43);
        assert_eq!(hash_secret(&a), hash_secret(&a));
        assert_ne!(hash_secret(&a), hash_secret(&b));
        assert!(!hash_secret(&a).contains(&a[4..]));
    }

    #[test]
    fn user_codes_round_trip_typing() {
        let code = new_user_code();
        assert_eq!(code.len(), 9);
        assert_eq!(normalise_user_code(&code.to_lowercase().replace('-', " ")), code);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
