//! Password hashing (argon2id) and random secrets for sessions and API tokens.
//!
//! Passwords are slow-hashed with argon2id. Session and token secrets are 256 random bits,
//! so a plain SHA-256 at rest is enough: nobody can brute-force the preimage, and lookups stay
//! a single indexed equality.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub fn hash_password(pw: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(pw.as_bytes(), &salt).expect("argon2 with default params cannot fail").to_string()
}

/// Constant-time verification; a malformed stored hash simply fails.
pub fn verify_password(pw: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(h) => Argon2::default().verify_password(pw.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// A hash that verifies nothing, used to spend the same time on unknown logins as on known
/// ones so response time does not reveal which logins exist.
pub fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password("siyu-timing-equaliser-0"))
}

/// 32 random bytes, hex-encoded.
pub fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let h = hash_password("s3cret-password");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret-password", &h));
        assert!(!verify_password("s3cret-passwore", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(!verify_password("anything", dummy_hash()));
    }

    #[test]
    fn secrets_are_unique_and_hashes_stable() {
        assert_ne!(random_secret(), random_secret());
        assert_eq!(random_secret().len(), 64);
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
