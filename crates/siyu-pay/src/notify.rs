//! Payment and refund notifications (protocols.md §7.1–7.6): the signature over the raw body,
//! the five-minute timestamp window, the platform key chosen by `Wechatpay-Serial`, and the
//! AEAD_AES_256_GCM resource.
//!
//! Verification reads the body's bytes exactly as received: re-serialised JSON would not match
//! the signature. Every refusal is a [`NotifyError`] whose message says precisely what failed,
//! because an operator debugging a live integration has nothing else to go on.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier as _;
use rsa::traits::PublicKeyParts;
use rsa::RsaPublicKey;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The only signature type WeChat Pay v3 uses.
pub const SIGNATURE_TYPE: &str = "WECHATPAY2-SHA256-RSA2048";
/// Notifications whose timestamp is this far from now (either way) are refused.
pub const TIMESTAMP_WINDOW_SECS: i64 = 300;
/// Probe traffic carries signatures with this prefix; it must fail verification.
pub const SIGNTEST_PREFIX: &str = "WECHATPAY/SIGNTEST/";

/// Why a notification (or a platform key) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("unsupported Wechatpay-Signature-Type {0:?} (expected WECHATPAY2-SHA256-RSA2048)")]
    SignatureType(String),
    #[error("Wechatpay-Timestamp {0:?} is not a Unix time in seconds")]
    BadTimestamp(String),
    #[error("Wechatpay-Timestamp is {skew} s away from now; at most 299 s is accepted")]
    Expired { skew: i64 },
    #[error("signature test probe (WECHATPAY/SIGNTEST/): refused as a verification failure")]
    SignTest,
    #[error("no platform certificate or public key with serial {0}")]
    UnknownSerial(String),
    #[error("Wechatpay-Signature is not base64")]
    SignatureEncoding,
    #[error("the signature does not match the body (RSASSA-PKCS1-v1_5 with SHA-256)")]
    SignatureMismatch,
    #[error("the body is not a notification: {0}")]
    Body(String),
    #[error("unsupported resource algorithm {0:?} (expected AEAD_AES_256_GCM)")]
    Algorithm(String),
    #[error("the APIv3 key must be exactly 32 bytes, got {0}")]
    KeyLength(usize),
    #[error("the resource nonce must be 12 bytes, got {0}")]
    NonceLength(usize),
    #[error("the resource ciphertext is not base64 or is shorter than its 16-byte tag")]
    Ciphertext,
    #[error("decryption failed: the tag does not match (wrong APIv3 key, nonce or associated data)")]
    Decrypt,
    #[error("platform key: {0}")]
    Key(String),
}

/// The `Wechatpay-*` headers of a notification or a response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pub timestamp: String,
    pub nonce: String,
    pub signature: String,
    pub serial: String,
    pub signature_type: Option<String>,
}

impl Headers {
    /// Picks the `Wechatpay-*` headers out of (name, value) pairs, names matched without case.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Headers, NotifyError> {
        let mut h = Headers::default();
        let (mut ts, mut nonce, mut sig, mut serial) = (None, None, None, None);
        for (name, value) in pairs {
            let v = value.trim().to_string();
            match name.trim().to_ascii_lowercase().as_str() {
                "wechatpay-timestamp" => ts = Some(v),
                "wechatpay-nonce" => nonce = Some(v),
                "wechatpay-signature" => sig = Some(v),
                "wechatpay-serial" => serial = Some(v),
                "wechatpay-signature-type" => h.signature_type = Some(v),
                _ => {}
            }
        }
        h.timestamp = ts.ok_or(NotifyError::MissingHeader("Wechatpay-Timestamp"))?;
        h.nonce = nonce.ok_or(NotifyError::MissingHeader("Wechatpay-Nonce"))?;
        h.signature = sig.ok_or(NotifyError::MissingHeader("Wechatpay-Signature"))?;
        h.serial = serial.ok_or(NotifyError::MissingHeader("Wechatpay-Serial"))?;
        Ok(h)
    }
}

/// A key WeChat Pay signs with: a platform certificate's (chosen by its serial) or the
/// WeChat Pay public key (chosen by its id, `PUB_KEY_ID_…`).
#[derive(Debug, Clone)]
struct PlatformKey {
    /// The certificate serial (uppercase hex) or public-key id; `None` accepts any serial.
    serial: Option<String>,
    key: RsaPublicKey,
}

/// The platform keys a merchant trusts.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    keys: Vec<PlatformKey>,
}

fn rsa2048(key: RsaPublicKey) -> Result<RsaPublicKey, NotifyError> {
    if key.size() != 256 {
        return Err(NotifyError::Key(format!("an RSA-2048 key is required, got {} bits", key.size() * 8)));
    }
    Ok(key)
}

impl Verifier {
    /// Adds a platform certificate (PEM); its serial selects it. Validity dates are not
    /// checked here: an expired certificate's signatures still verify, and when to stop
    /// trusting it is the caller's decision on its own clock.
    pub fn add_certificate_pem(&mut self, pem: &str) -> Result<String, NotifyError> {
        use x509_cert::der::{DecodePem, Encode};
        let cert = x509_cert::Certificate::from_pem(pem.trim().as_bytes())
            .map_err(|e| NotifyError::Key(format!("not a PEM certificate: {e}")))?;
        let serial = serial_hex(cert.tbs_certificate.serial_number.as_bytes());
        let spki =
            cert.tbs_certificate.subject_public_key_info.to_der().map_err(|e| NotifyError::Key(e.to_string()))?;
        let key = RsaPublicKey::from_public_key_der(&spki)
            .map_err(|e| NotifyError::Key(format!("the certificate's key is not RSA: {e}")))?;
        self.keys.push(PlatformKey { serial: Some(serial.clone()), key: rsa2048(key)? });
        Ok(serial)
    }

    /// Adds the WeChat Pay public key (PEM, SubjectPublicKeyInfo). With an id, only
    /// notifications naming it use this key; without, it verifies whatever serial they name.
    pub fn add_public_key_pem(&mut self, id: Option<&str>, pem: &str) -> Result<(), NotifyError> {
        let key = public_key_from_pem(pem)?;
        self.keys.push(PlatformKey { serial: id.map(str::to_string), key });
        Ok(())
    }

    pub fn serials(&self) -> Vec<String> {
        self.keys.iter().filter_map(|k| k.serial.clone()).collect()
    }

    /// Verifies a notification (or a response) exactly as §7.2 says: probes refused, the
    /// timestamp within five minutes of `now` (Unix seconds), the key chosen by serial, and
    /// the signature over `timestamp\nnonce\nbody\n` with the raw body bytes.
    pub fn verify(&self, h: &Headers, body: &[u8], now: i64) -> Result<(), NotifyError> {
        if let Some(t) = &h.signature_type {
            if t != SIGNATURE_TYPE {
                return Err(NotifyError::SignatureType(t.clone()));
            }
        }
        if h.signature.starts_with(SIGNTEST_PREFIX) {
            return Err(NotifyError::SignTest);
        }
        let ts: i64 = h.timestamp.parse().map_err(|_| NotifyError::BadTimestamp(h.timestamp.clone()))?;
        let skew = (now - ts).abs();
        if skew >= TIMESTAMP_WINDOW_SECS {
            return Err(NotifyError::Expired { skew });
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.serial.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(&h.serial)))
            .or_else(|| self.keys.iter().find(|k| k.serial.is_none()))
            .ok_or_else(|| NotifyError::UnknownSerial(h.serial.clone()))?;
        let mut message = Vec::with_capacity(body.len() + h.timestamp.len() + h.nonce.len() + 3);
        message.extend_from_slice(h.timestamp.as_bytes());
        message.push(b'\n');
        message.extend_from_slice(h.nonce.as_bytes());
        message.push(b'\n');
        message.extend_from_slice(body);
        message.push(b'\n');
        verify_rsa(&key.key, &message, &h.signature)
    }
}

/// Parses an RSA-2048 public key (PEM, SubjectPublicKeyInfo).
pub(crate) fn public_key_from_pem(pem: &str) -> Result<RsaPublicKey, NotifyError> {
    let key = RsaPublicKey::from_public_key_pem(pem.trim())
        .map_err(|e| NotifyError::Key(format!("not a PEM RSA public key: {e}")))?;
    rsa2048(key)
}

/// SHA256-RSA (RSASSA-PKCS1-v1_5) over `message` with a base64 signature: the one check behind
/// notifications, responses and (in the sandbox) merchants' request signatures.
pub(crate) fn verify_rsa(key: &RsaPublicKey, message: &[u8], signature_b64: &str) -> Result<(), NotifyError> {
    let sig = B64.decode(signature_b64.as_bytes()).map_err(|_| NotifyError::SignatureEncoding)?;
    let sig = Signature::try_from(sig.as_slice()).map_err(|_| NotifyError::SignatureEncoding)?;
    VerifyingKey::<Sha256>::new(key.clone()).verify(message, &sig).map_err(|_| NotifyError::SignatureMismatch)
}

/// Signs as WeChat Pay (or a merchant) does: SHA256-RSA over the message, base64. The
/// merchant client signs its requests with one, the sandbox its notifications and responses.
#[derive(Clone)]
pub struct Signer {
    key: rsa::pkcs1v15::SigningKey<Sha256>,
}

/// A private key must never reach a log, so `Debug` shows only that one is there.
impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<private key>)")
    }
}

impl Signer {
    /// A PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Signer, NotifyError> {
        use rsa::pkcs8::DecodePrivateKey;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem.trim())
            .map_err(|e| NotifyError::Key(format!("not a PKCS#8 PEM RSA private key: {e}")))?;
        Ok(Signer { key: rsa::pkcs1v15::SigningKey::new(key) })
    }

    /// The matching public key (PEM, SubjectPublicKeyInfo): what the other side verifies with.
    pub fn public_key_pem(&self) -> String {
        use rsa::pkcs8::EncodePublicKey;
        let key: &rsa::RsaPrivateKey = self.key.as_ref();
        // Encoding a valid in-memory RSA key as SPKI cannot fail.
        key.to_public_key().to_public_key_pem(rsa::pkcs8::LineEnding::LF).expect("an RSA public key encodes as PEM")
    }

    pub fn sign(&self, message: &[u8]) -> String {
        use rsa::signature::{SignatureEncoding, Signer as _};
        B64.encode(self.key.sign(message).to_bytes())
    }

    /// The `Wechatpay-*` headers of a notification or response carrying `body`.
    pub fn headers(&self, serial: &str, timestamp: i64, nonce: &str, body: &[u8]) -> Headers {
        let mut message = format!("{timestamp}\n{nonce}\n").into_bytes();
        message.extend_from_slice(body);
        message.push(b'\n');
        Headers {
            timestamp: timestamp.to_string(),
            nonce: nonce.to_string(),
            signature: self.sign(&message),
            serial: serial.to_string(),
            signature_type: Some(SIGNATURE_TYPE.to_string()),
        }
    }
}

/// A certificate serial as WeChat Pay writes it: uppercase hex without leading zero bytes.
fn serial_hex(bytes: &[u8]) -> String {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len().saturating_sub(1));
    hex::encode_upper(&bytes[start..])
}

/// A notification body (§7.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    #[serde(default)]
    pub create_time: String,
    #[serde(default)]
    pub resource_type: String,
    pub event_type: String,
    #[serde(default)]
    pub summary: String,
    pub resource: Resource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    #[serde(default)]
    pub original_type: String,
    pub algorithm: String,
    pub ciphertext: String,
    #[serde(default)]
    pub associated_data: Option<String>,
    pub nonce: String,
}

/// Checks an APIv3 key as configured: exactly 32 bytes.
pub fn check_apiv3_key(key: &str) -> Result<(), NotifyError> {
    if key.len() != 32 {
        return Err(NotifyError::KeyLength(key.len()));
    }
    Ok(())
}

/// Decrypts an AEAD_AES_256_GCM resource: `base64(ciphertext || tag)` under the APIv3 key,
/// with the resource's nonce and associated data (absent means empty).
pub fn decrypt(
    apiv3_key: &str,
    nonce: &str,
    associated_data: &str,
    ciphertext_b64: &str,
) -> Result<Vec<u8>, NotifyError> {
    check_apiv3_key(apiv3_key)?;
    if nonce.len() != 12 {
        return Err(NotifyError::NonceLength(nonce.len()));
    }
    let ct = B64.decode(ciphertext_b64.trim().as_bytes()).map_err(|_| NotifyError::Ciphertext)?;
    if ct.len() < 16 {
        return Err(NotifyError::Ciphertext);
    }
    let cipher =
        Aes256Gcm::new_from_slice(apiv3_key.as_bytes()).map_err(|_| NotifyError::KeyLength(apiv3_key.len()))?;
    cipher
        .decrypt(Nonce::from_slice(nonce.as_bytes()), Payload { msg: &ct, aad: associated_data.as_bytes() })
        .map_err(|_| NotifyError::Decrypt)
}

/// Encrypts a resource the way WeChat Pay does (for the sandbox and tests).
pub fn encrypt(apiv3_key: &str, nonce: &str, associated_data: &str, plaintext: &[u8]) -> Result<String, NotifyError> {
    check_apiv3_key(apiv3_key)?;
    if nonce.len() != 12 {
        return Err(NotifyError::NonceLength(nonce.len()));
    }
    let cipher =
        Aes256Gcm::new_from_slice(apiv3_key.as_bytes()).map_err(|_| NotifyError::KeyLength(apiv3_key.len()))?;
    let ct = cipher
        .encrypt(Nonce::from_slice(nonce.as_bytes()), Payload { msg: plaintext, aad: associated_data.as_bytes() })
        .map_err(|_| NotifyError::Decrypt)?;
    Ok(B64.encode(ct))
}

/// Verifies a notification and decrypts its resource: the whole of §7.2 and §7.3. Returns
/// the parsed notification and the resource's plaintext (JSON).
pub fn open(
    verifier: &Verifier,
    apiv3_key: &str,
    headers: &Headers,
    body: &[u8],
    now: i64,
) -> Result<(Notification, Vec<u8>), NotifyError> {
    check_apiv3_key(apiv3_key)?;
    verifier.verify(headers, body, now)?;
    let n: Notification = serde_json::from_slice(body).map_err(|e| NotifyError::Body(e.to_string()))?;
    if n.resource.algorithm != "AEAD_AES_256_GCM" {
        return Err(NotifyError::Algorithm(n.resource.algorithm.clone()));
    }
    let aad = n.resource.associated_data.clone().unwrap_or_default();
    let plain = decrypt(apiv3_key, &n.resource.nonce, &aad, &n.resource.ciphertext)?;
    Ok((n, plain))
}

#[cfg(test)]
mod tests;
