//! Password hashing (argon2id) and random secrets for sessions and API tokens.
//!
//! Passwords are slow-hashed with argon2id. Session and token secrets are 256 random bits,
//! so a plain SHA-256 at rest is enough: nobody can brute-force the preimage, and lookups stay
//! a single indexed equality.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use hmac::{Hmac, Mac};
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

/// Encrypts secrets and personal data at rest with AES-256-GCM under the installation's
/// master key. Each value gets a fresh 96-bit nonce; the associated data names the tenant and
/// the purpose (`wecom.secret`, …), so a ciphertext copied into another row or tenant does not
/// decrypt. Stored form: `v1:` + base64(nonce ‖ ciphertext ‖ tag).
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    /// A key for blind indexes, derived from the master key so one key still rules both.
    index_key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the master key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("the stored secret is damaged, or was sealed with another master key")]
    Open,
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Sealer {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(b"siyu blind index v1");
        Sealer { cipher: Aes256Gcm::new(key.into()), index_key: mac.finalize().into_bytes().into() }
    }

    /// A keyed, deterministic fingerprint of a personal value (HMAC-SHA-256, hex), so an exact
    /// lookup — "which customer has this phone?" — works without storing the value in the
    /// clear. `purpose` separates the fingerprints of different kinds of value.
    pub fn blind_index(&self, purpose: &str, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.index_key).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Parses a base64 master key (as in `SIYU_SECRET_KEY`).
    pub fn from_base64(s: &str) -> Result<Sealer, SealError> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(s.trim()).map_err(|_| SealError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(Sealer::new(&key))
    }

    /// A fresh random master key, base64-encoded.
    pub fn generate_key() -> String {
        use base64::Engine;
        let mut k = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut k);
        base64::engine::general_purpose::STANDARD.encode(k)
    }

    pub fn seal(&self, aad: &str, plaintext: &str) -> String {
        use base64::Engine;
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad: aad.as_bytes() })
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("v1:{}", base64::engine::general_purpose::STANDARD.encode(out))
    }

    pub fn open(&self, aad: &str, sealed: &str) -> Result<String, SealError> {
        use base64::Engine;
        let b64 = sealed.strip_prefix("v1:").ok_or(SealError::Open)?;
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| SealError::Open)?;
        if raw.len() < 12 + 16 {
            return Err(SealError::Open);
        }
        let (nonce, ct) = raw.split_at(12);
        let pt = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: aad.as_bytes() })
            .map_err(|_| SealError::Open)?;
        String::from_utf8(pt).map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_in_their_place_and_key() {
        let s = Sealer::from_base64(&Sealer::generate_key()).unwrap();
        let c = s.seal("t1|wecom.secret", "app-secret-值");
        assert!(c.starts_with("v1:"));
        assert_ne!(c, s.seal("t1|wecom.secret", "app-secret-值"), "fresh nonce each time");
        assert_eq!(s.open("t1|wecom.secret", &c).unwrap(), "app-secret-值");
        assert_eq!(s.open("t2|wecom.secret", &c), Err(SealError::Open), "bound to its tenant and purpose");
        let other = Sealer::from_base64(&Sealer::generate_key()).unwrap();
        assert_eq!(other.open("t1|wecom.secret", &c), Err(SealError::Open));
        let mut bad = c.clone().into_bytes();
        let n = bad.len() - 3;
        bad[n] = if bad[n] == b'A' { b'B' } else { b'A' };
        assert_eq!(s.open("t1|wecom.secret", std::str::from_utf8(&bad).unwrap()), Err(SealError::Open));
        assert_eq!(Sealer::from_base64("c2hvcnQ=").unwrap_err(), SealError::BadKey);
    }

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
