//! Proof Key for Code Exchange (RFC 7636), S256 only: `plain` would let
//! anyone who sees the authorization request redeem the code.

use sha2::{Digest, Sha256};

/// A verifier is 43 to 128 characters of `[A-Za-z0-9-._~]` (§4.1).
pub fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// A challenge is base64url(SHA-256(verifier)): 43 characters.
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// The S256 challenge for `verifier`.
pub fn challenge_of(verifier: &str) -> String {
    crate::b64url(&Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` answers `challenge` (compared in constant time).
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    valid_verifier(verifier) && crate::secret::constant_time_eq(challenge_of(verifier).as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(challenge_of(verifier), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(verify_s256(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!verify_s256(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }

    #[test]
    fn verifier_syntax() {
        assert!(!valid_verifier("short"));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(valid_verifier(&"a".repeat(43)));
        assert!(!valid_verifier(&format!("{}+", "a".repeat(43))));
        assert!(valid_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!valid_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c="));
    }
}
