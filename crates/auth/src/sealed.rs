//! Secrets sealed at rest: the token-signing keys are stored encrypted
//! (ChaCha20-Poly1305) under a key-encryption key that lives outside the
//! database, so a copy of the database (a backup, a dump, a file another
//! local user could read) does not let anyone mint tokens.
//!
//! A sealed value is `TLK1`, a random 96-bit nonce, then the ciphertext
//! and its tag. The label (a signing key's `kid`) is authenticated too, so
//! a sealed key cannot be moved to another row and opened as that one.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};

use crate::secret::random_bytes;

/// What every sealed value starts with. A bare PKCS#8 document (what
/// databases before sealing hold) starts with 0x30 instead.
const MAGIC: &[u8; 4] = b"TLK1";

/// The 256-bit key that seals signing keys. Its `Debug` shows nothing.
#[derive(Clone)]
pub struct KeyEncryptionKey {
    key: [u8; 32],
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(***)")
    }
}

/// Whether `stored` is a sealed value (rather than a legacy bare key).
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(MAGIC)
}

impl KeyEncryptionKey {
    /// A new random key.
    pub fn generate() -> KeyEncryptionKey {
        KeyEncryptionKey {
            key: random_bytes::<32>(),
        }
    }

    /// Reads 64 hex digits (surrounding white space allowed, as a file
    /// written by `openssl rand -hex 32` has).
    pub fn from_hex(text: &str) -> Result<KeyEncryptionKey, String> {
        let text = text.trim();
        let bytes = hex::decode(text).map_err(|_| "is not hexadecimal".to_string())?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("holds {} bytes; a key-encryption key is 32 (64 hex digits)", b.len()))?;
        Ok(KeyEncryptionKey { key })
    }

    /// The key as 64 hex digits (what a key file holds).
    pub fn to_hex(&self) -> String {
        hex::encode(self.key)
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &self.key).expect("a 32-byte key suits ChaCha20-Poly1305"))
    }

    /// Seals `secret` under this key, bound to `label`.
    pub fn seal(&self, label: &str, secret: &[u8]) -> Vec<u8> {
        let nonce = random_bytes::<NONCE_LEN>();
        let mut body = secret.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(label.as_bytes()),
                &mut body,
            )
            .expect("sealing a short secret cannot fail");
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        out
    }

    /// Opens what [`KeyEncryptionKey::seal`] made with this key and label;
    /// an error for another key, another label, or any changed byte.
    pub fn open(&self, label: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
        let rest = sealed.strip_prefix(MAGIC).ok_or("is not a sealed value")?;
        if rest.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return Err("is truncated".into());
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "has a bad nonce")?;
        let mut body = body.to_vec();
        let plain = self
            .aead()
            .open_in_place(nonce, Aad::from(label.as_bytes()), &mut body)
            .map_err(|_| "cannot be opened with this key-encryption key (another key sealed it, or it was changed)")?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_label_and_unchanged() {
        let kek = KeyEncryptionKey::generate();
        let sealed = kek.seal("kid-1", b"the private key");
        assert!(is_sealed(&sealed));
        assert!(
            !sealed.windows(15).any(|w| w == b"the private key"),
            "the secret is not stored in the clear"
        );
        assert_eq!(kek.open("kid-1", &sealed).unwrap(), b"the private key");
        assert_ne!(kek.seal("kid-1", b"the private key"), sealed, "a fresh nonce each time");

        assert!(
            KeyEncryptionKey::generate().open("kid-1", &sealed).is_err(),
            "another key"
        );
        assert!(kek.open("kid-2", &sealed).is_err(), "moved to another row");
        for i in 0..sealed.len() {
            let mut bent = sealed.clone();
            bent[i] ^= 1;
            assert!(kek.open("kid-1", &bent).is_err(), "byte {i} changed");
        }
        assert!(kek.open("kid-1", &sealed[..20]).is_err());
        assert!(kek.open("kid-1", b"0\x82 a bare PKCS#8").is_err());
        assert!(!is_sealed(b"0\x82 a bare PKCS#8"));
    }

    #[test]
    fn a_key_reads_from_64_hex_digits_and_hides_itself() {
        let kek = KeyEncryptionKey::generate();
        let again = KeyEncryptionKey::from_hex(&format!("  {}\n", kek.to_hex())).unwrap();
        assert_eq!(again.open("x", &kek.seal("x", b"s")).unwrap(), b"s");
        assert!(KeyEncryptionKey::from_hex("zz").unwrap_err().contains("hexadecimal"));
        assert!(KeyEncryptionKey::from_hex("abcd")
            .unwrap_err()
            .contains("holds 2 bytes"));
        assert_eq!(format!("{kek:?}"), "KeyEncryptionKey(***)");
    }
}
