//! CSRF tokens for the sign-in, consent and device forms: a random nonce
//! lives in a cookie, and a form carries HMAC(server key, nonce, session).
//! A cookie an attacker manages to plant (from a sibling subdomain, say)
//! is useless without the server's key, and a token taken from one
//! session does not work in another (issue 19 finding 20).

use ring::hmac;

use crate::secret::{constant_time_eq, random_bytes};

/// The shortest nonce accepted (a new one is 43 characters).
pub const MIN_NONCE_LEN: usize = 32;

/// The server's HMAC key for CSRF tokens. Made at start: forms rendered
/// by an earlier process stop working, like its login sessions.
pub struct CsrfKey(hmac::Key);

impl Default for CsrfKey {
    fn default() -> Self {
        CsrfKey::generate()
    }
}

impl CsrfKey {
    /// A new random key.
    pub fn generate() -> CsrfKey {
        CsrfKey(hmac::Key::new(hmac::HMAC_SHA256, &random_bytes::<32>()))
    }

    /// The token a form rendered for this nonce and session carries.
    pub fn token(&self, nonce: &str, session: Option<&str>) -> String {
        let message = format!("{nonce}\n{}", session.unwrap_or(""));
        crate::b64url(hmac::sign(&self.0, message.as_bytes()).as_ref())
    }

    /// Whether `token` was made by this key for this nonce and session.
    pub fn verify(&self, nonce: &str, session: Option<&str>, token: &str) -> bool {
        nonce.len() >= MIN_NONCE_LEN && constant_time_eq(self.token(nonce, session).as_bytes(), token.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_bound_to_its_key_nonce_and_session() {
        let key = CsrfKey::generate();
        let nonce = "n".repeat(43);
        let t = key.token(&nonce, Some("session-1"));
        assert!(key.verify(&nonce, Some("session-1"), &t));
        assert!(!key.verify(&nonce, Some("session-2"), &t), "another session");
        assert!(!key.verify(&nonce, None, &t), "no session");
        assert!(!key.verify(&"m".repeat(43), Some("session-1"), &t), "another nonce");
        assert!(
            !CsrfKey::generate().verify(&nonce, Some("session-1"), &t),
            "another server key"
        );
        // The old check's hole: a planted cookie equal to the form field.
        assert!(!key.verify(&nonce, Some("session-1"), &nonce));
        let short = "s".repeat(31);
        assert!(!key.verify(&short, None, &key.token(&short, None)), "too short a nonce");
        let pre_login = key.token(&nonce, None);
        assert!(key.verify(&nonce, None, &pre_login));
    }
}
