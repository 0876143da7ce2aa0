//! Password hashes: argon2id (RFC 9106) in the PHC string format, so the
//! parameters travel with each hash and can be raised later.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 12;

/// 19 MiB, 2 passes, 1 lane: OWASP's first recommended argon2id setting.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a new password was refused.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_LENGTH {
        return Err(format!(
            "the password is too short: use at least {MIN_LENGTH} characters"
        ));
    }
    if password.trim() != password {
        return Err("the password starts or ends with white space; remove it".into());
    }
    Ok(())
}

/// The PHC string for `password` with a fresh random salt.
pub fn hash_password(password: &str) -> String {
    let salt_bytes = crate::secret::random_bytes::<16>();
    let salt = SaltString::encode_b64(&salt_bytes).expect("16 bytes is a valid salt");
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("hashing with valid parameters cannot fail")
        .to_string()
}

/// Whether `password` matches `phc`; a malformed stored hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so a login for
/// an unknown name takes as long as one with a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("not a password anyone has"))
}

/// A random password for a first administrator: 20 characters.
pub fn random_password() -> String {
    crate::b64url(&crate::secret::random_bytes::<15>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let h1 = hash_password("correct horse battery");
        let h2 = hash_password("correct horse battery");
        assert!(h1.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_ne!(h1, h2);
        assert!(verify_password("correct horse battery", &h1));
        assert!(!verify_password("correct horse batterz", &h1));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn new_password_rules() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password(" twelve chars ok").is_err());
        assert!(check_new_password("twelve chars ok").is_ok());
        assert_eq!(random_password().len(), 20);
    }
}
