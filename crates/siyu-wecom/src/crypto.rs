//! WeCom callback crypto (the WXBizMsgCrypt scheme): signatures, AES-256-CBC with WeCom's
//! 32-byte PKCS#7 padding, and the XML and JSON envelopes.
//!
//! Two traps break naive implementations (protocols.md §1.4), and both are handled here:
//! 1. EncodingAESKey is 43 base64 characters whose last one carries non-zero trailing bits;
//!    strict decoders reject real keys, so the key is decoded with trailing bits allowed.
//! 2. Padding is PKCS#7 to a 32-byte block (pad values 1..=32), not AES's 16; decryption uses
//!    no cipher-level padding and unpads by hand.
//!
//! This module does no I/O and draws no randomness: encryption takes the 16-byte random prefix
//! as an argument.

use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::alphabet::STANDARD as STD_ALPHABET;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

type Enc = cbc::Encryptor<aes::Aes256>;
type Dec = cbc::Decryptor<aes::Aes256>;

/// WeCom's crypto result codes (protocols.md §1.5), used as siyu's error enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("bad signature: msg_signature does not match token, timestamp, nonce and payload (-40001)")]
    ValidateSignature,
    #[error("malformed envelope: {0} (-40002)")]
    ParseEnvelope(String),
    #[error("bad key: EncodingAESKey must be 43 base64 characters decoding to 32 bytes (-40004)")]
    IllegalAesKey,
    #[error("receiver id mismatch: the message is for {found:?}, this endpoint expects {expected:?} (-40005)")]
    ValidateReceiveId { expected: String, found: String },
    #[error("bad ciphertext: {0} (-40007)")]
    DecryptAes(&'static str),
    #[error("bad padding: pad byte {0} is outside 1..=32 (-40007)")]
    BadPadding(u8),
    #[error("bad plaintext layout: {0} (-40008)")]
    IllegalBuffer(&'static str),
    #[error("bad base64 in Encrypt (-40010)")]
    DecodeBase64,
}

impl CryptoError {
    /// The WeCom result code.
    pub fn code(&self) -> i32 {
        match self {
            CryptoError::ValidateSignature => -40001,
            CryptoError::ParseEnvelope(_) => -40002,
            CryptoError::IllegalAesKey => -40004,
            CryptoError::ValidateReceiveId { .. } => -40005,
            CryptoError::DecryptAes(_) | CryptoError::BadPadding(_) => -40007,
            CryptoError::IllegalBuffer(_) => -40008,
            CryptoError::DecodeBase64 => -40010,
        }
    }
}

/// Decodes an EncodingAESKey (43 chars, with or without a trailing `=`) into the AES key.
pub fn decode_aes_key(encoding_aes_key: &str) -> Result<[u8; 32], CryptoError> {
    let k = encoding_aes_key.strip_suffix('=').unwrap_or(encoding_aes_key);
    if k.len() != 43 {
        return Err(CryptoError::IllegalAesKey);
    }
    let lenient = GeneralPurpose::new(
        &STD_ALPHABET,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let bytes = lenient.decode(k).map_err(|_| CryptoError::IllegalAesKey)?;
    bytes.try_into().map_err(|_| CryptoError::IllegalAesKey)
}

/// `lower_hex(sha1(concat(sort([token, timestamp, nonce, data]))))`.
pub fn signature(token: &str, timestamp: &str, nonce: &str, data: &str) -> String {
    let mut parts = [token, timestamp, nonce, data];
    parts.sort_unstable();
    let mut h = Sha1::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// A decrypted message and what came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plain {
    pub random: [u8; 16],
    pub msg: String,
    pub receive_id: String,
}

/// The parties' shared settings for one callback endpoint.
#[derive(Clone)]
pub struct MsgCrypt {
    token: String,
    key: [u8; 32],
    receive_id: String,
}

impl std::fmt::Debug for MsgCrypt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgCrypt").field("receive_id", &self.receive_id).finish_non_exhaustive()
    }
}

/// Which envelope a callback body uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Xml,
    Json,
}

/// The parts of a POST body siyu needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub format: Format,
    pub encrypt: String,
    pub to_user_name: Option<String>,
    pub agent_id: Option<String>,
}

impl MsgCrypt {
    /// `receive_id` may be empty, which skips the receiver check (newer JSON callbacks).
    pub fn new(token: &str, encoding_aes_key: &str, receive_id: &str) -> Result<MsgCrypt, CryptoError> {
        Ok(MsgCrypt {
            token: token.to_string(),
            key: decode_aes_key(encoding_aes_key)?,
            receive_id: receive_id.to_string(),
        })
    }

    pub fn sign(&self, timestamp: &str, nonce: &str, data: &str) -> String {
        signature(&self.token, timestamp, nonce, data)
    }

    /// Checks `msg_signature` in constant time.
    pub fn verify(&self, msg_signature: &str, timestamp: &str, nonce: &str, data: &str) -> Result<(), CryptoError> {
        let expected = self.sign(timestamp, nonce, data);
        if bool::from(expected.as_bytes().ct_eq(msg_signature.to_ascii_lowercase().as_bytes())) {
            Ok(())
        } else {
            Err(CryptoError::ValidateSignature)
        }
    }

    /// Encrypts `msg` with the given 16-byte random prefix; returns the base64 `Encrypt` text.
    pub fn encrypt(&self, msg: &str, random: &[u8; 16]) -> String {
        let mut plain = Vec::with_capacity(16 + 4 + msg.len() + self.receive_id.len() + 32);
        plain.extend_from_slice(random);
        plain.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        plain.extend_from_slice(msg.as_bytes());
        plain.extend_from_slice(self.receive_id.as_bytes());
        // Always pad: an aligned plaintext gets a whole block of 32 × 0x20.
        let k = 32 - (plain.len() % 32);
        plain.extend(std::iter::repeat_n(k as u8, k));
        let len = plain.len();
        let ct = Enc::new(&self.key.into(), self.key[..16].into())
            .encrypt_padded_mut::<NoPadding>(&mut plain, len)
            .expect("plaintext is padded to a whole number of blocks");
        STANDARD.encode(ct)
    }

    /// Encrypts raw bytes without the layout or padding, so tests can build malformed input.
    #[doc(hidden)]
    pub fn encrypt_unpadded_for_tests(&self, block_aligned: &[u8]) -> String {
        let mut buf = block_aligned.to_vec();
        let len = buf.len();
        let ct = Enc::new(&self.key.into(), self.key[..16].into())
            .encrypt_padded_mut::<NoPadding>(&mut buf, len)
            .expect("aligned input");
        STANDARD.encode(ct)
    }

    /// Decrypts an `Encrypt` value (or an `echostr`) and checks the receiver id.
    pub fn decrypt(&self, encrypt: &str) -> Result<Plain, CryptoError> {
        let mut buf = STANDARD.decode(encrypt).map_err(|_| CryptoError::DecodeBase64)?;
        if buf.is_empty() || buf.len() % 16 != 0 {
            return Err(CryptoError::DecryptAes("ciphertext length is not a non-zero multiple of 16"));
        }
        let plain = Dec::new(&self.key.into(), self.key[..16].into())
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map_err(|_| CryptoError::DecryptAes("AES-CBC decryption failed"))?;
        let k = *plain.last().expect("non-empty");
        if k == 0 || k > 32 || k as usize > plain.len() {
            return Err(CryptoError::BadPadding(k));
        }
        let body = &plain[..plain.len() - k as usize];
        if body.len() < 20 {
            return Err(CryptoError::IllegalBuffer("shorter than the 20-byte header"));
        }
        let n = u32::from_be_bytes(body[16..20].try_into().expect("4 bytes")) as usize;
        if 20 + n > body.len() {
            return Err(CryptoError::IllegalBuffer("message length runs past the end"));
        }
        let msg =
            std::str::from_utf8(&body[20..20 + n]).map_err(|_| CryptoError::IllegalBuffer("message is not UTF-8"))?;
        let rid =
            std::str::from_utf8(&body[20 + n..]).map_err(|_| CryptoError::IllegalBuffer("receiver id is not UTF-8"))?;
        if !self.receive_id.is_empty() && rid != self.receive_id {
            return Err(CryptoError::ValidateReceiveId { expected: self.receive_id.clone(), found: rid.to_string() });
        }
        Ok(Plain {
            random: body[..16].try_into().expect("16 bytes"),
            msg: msg.to_string(),
            receive_id: rid.to_string(),
        })
    }

    /// URL verification (GET): verifies the signature over `echostr` and returns the message
    /// to answer with.
    pub fn verify_url(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        echostr: &str,
    ) -> Result<String, CryptoError> {
        self.verify(msg_signature, timestamp, nonce, echostr)?;
        Ok(self.decrypt(echostr)?.msg)
    }

    /// A POST body (XML or JSON envelope, detected): verifies and decrypts it.
    pub fn decrypt_body(
        &self,
        msg_signature: &str,
        timestamp: &str,
        nonce: &str,
        body: &str,
    ) -> Result<(Envelope, Plain), CryptoError> {
        let env = parse_envelope(body)?;
        // Sign the Encrypt text exactly as received: never trimmed or re-encoded.
        self.verify(msg_signature, timestamp, nonce, &env.encrypt)?;
        let plain = self.decrypt(&env.encrypt)?;
        Ok((env, plain))
    }

    /// A callback body carrying `msg`, signed: what WeCom sends, and what a passive reply is.
    pub fn seal(&self, msg: &str, timestamp: &str, nonce: &str, random: &[u8; 16], format: Format) -> String {
        let enc = self.encrypt(msg, random);
        let sig = self.sign(timestamp, nonce, &enc);
        match format {
            Format::Xml => format!(
                "<xml><Encrypt><![CDATA[{enc}]]></Encrypt><MsgSignature><![CDATA[{sig}]]></MsgSignature><TimeStamp>{}</TimeStamp><Nonce><![CDATA[{}]]></Nonce></xml>",
                xml_text(timestamp),
                cdata(nonce)
            ),
            Format::Json => {
                let ts = match timestamp.parse::<i64>() {
                    Ok(n) => serde_json::Value::from(n),
                    Err(_) => serde_json::Value::from(timestamp),
                };
                serde_json::json!({"encrypt": enc, "msgsignature": sig, "timestamp": ts, "nonce": nonce}).to_string()
            }
        }
    }
}

fn cdata(s: &str) -> String {
    s.replace("]]>", "]]]]><![CDATA[>")
}

fn xml_text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Parses an XML or JSON envelope (detected by its first non-blank character). JSON keys are
/// matched case-insensitively and `agentid` may be a string or a number.
pub fn parse_envelope(body: &str) -> Result<Envelope, CryptoError> {
    let t = body.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(t).map_err(|e| CryptoError::ParseEnvelope(format!("invalid JSON: {e}")))?;
        let obj = v.as_object().ok_or_else(|| CryptoError::ParseEnvelope("JSON envelope is not an object".into()))?;
        let get = |name: &str| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let encrypt = get("encrypt")
            .and_then(|v| v.as_str())
            .ok_or_else(|| CryptoError::ParseEnvelope("no encrypt field".into()))?;
        Ok(Envelope {
            format: Format::Json,
            encrypt: encrypt.to_string(),
            to_user_name: get("tousername").and_then(text),
            agent_id: get("agentid").and_then(text),
        })
    } else if t.starts_with('<') {
        let fields = crate::xml::flat_fields(t).map_err(CryptoError::ParseEnvelope)?;
        let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let encrypt = get("Encrypt").ok_or_else(|| CryptoError::ParseEnvelope("no Encrypt element".into()))?;
        Ok(Envelope { format: Format::Xml, encrypt, to_user_name: get("ToUserName"), agent_id: get("AgentID") })
    } else {
        Err(CryptoError::ParseEnvelope("body is neither XML nor JSON".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TOKEN: &str = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
    const KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";
    const CORP: &str = "ww1436e0e65a779aee";

    fn crypt() -> MsgCrypt {
        MsgCrypt::new(TOKEN, KEY, CORP).unwrap()
    }

    // protocols.md §1.8, "wecom-py-verifyurl".
    const ECHO: &str = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==";

    #[test]
    fn key_with_trailing_bits_decodes() {
        let k = decode_aes_key(KEY).unwrap();
        assert_eq!(hex::encode(k), "eaa91d32babaf274ca76ece72583b5037ed6da8120a64314be4b6d453a2a854b");
        assert_eq!(decode_aes_key(&format!("{KEY}=")).unwrap(), k);
        assert_eq!(decode_aes_key(&KEY[..42]), Err(CryptoError::IllegalAesKey));
        assert_eq!(decode_aes_key(&format!("{}!", &KEY[..42])), Err(CryptoError::IllegalAesKey));
    }

    #[test]
    fn verify_url_vector() {
        let c = crypt();
        assert_eq!(
            c.verify_url("012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683", ECHO).unwrap(),
            "1288432023552776189"
        );
        let p = c.decrypt(ECHO).unwrap();
        assert_eq!(&p.random, b"8908d0ff052afda0");
        assert_eq!(p.receive_id, CORP);
        // Encrypting with the same prefix reproduces the vector byte for byte.
        assert_eq!(c.encrypt("1288432023552776189", b"8908d0ff052afda0"), ECHO);
        let raw = STANDARD.decode(ECHO).unwrap();
        assert_eq!(raw.len(), 64);
    }

    const POST: &str = "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n<Encrypt><![CDATA[Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+]]></Encrypt>\n<AgentID><![CDATA[1000002]]></AgentID>\n</xml>";
    const POST_MSG: &str = "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName><CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content><MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>";

    #[test]
    fn decrypt_msg_vector_with_pad_22_and_chinese() {
        let c = crypt();
        let (env, p) =
            c.decrypt_body("0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914", POST).unwrap();
        assert_eq!(env.format, Format::Xml);
        assert_eq!(env.agent_id.as_deref(), Some("1000002"));
        assert_eq!(p.msg, POST_MSG);
        assert_eq!(p.msg.len(), 228, "byte length, not characters");
        assert_eq!(&p.random, b"694ce5a83ae07fe3");
        let raw = STANDARD.decode(&env.encrypt).unwrap();
        assert_eq!(raw.len(), 288);
        assert_eq!(c.encrypt(POST_MSG, b"694ce5a83ae07fe3"), env.encrypt);
        // Pad byte 22: more than 16, which a stock PKCS#7 unpadder would reject.
        let mut buf = raw.clone();
        let plain = Dec::new(&c.key.into(), c.key[..16].into()).decrypt_padded_mut::<NoPadding>(&mut buf).unwrap();
        assert_eq!(*plain.last().unwrap(), 22);
    }

    #[test]
    fn negative_vectors() {
        let c = crypt();
        let body = || POST.to_string();
        assert_eq!(
            c.decrypt_body("1c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914", &body())
                .unwrap_err(),
            CryptoError::ValidateSignature
        );
        assert_eq!(
            c.decrypt_body("0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212915", &body())
                .unwrap_err()
                .code(),
            -40001
        );
        let other = MsgCrypt::new(TOKEN, KEY, "wwSOMEONEELSE").unwrap();
        assert_eq!(
            other
                .decrypt_body("0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914", &body())
                .unwrap_err()
                .code(),
            -40005
        );
        assert_eq!(MsgCrypt::new(TOKEN, &KEY[1..], CORP).unwrap_err().code(), -40004);
        let anyone = MsgCrypt::new(TOKEN, KEY, "").unwrap();
        assert!(anyone.decrypt(ECHO).is_ok(), "an empty configured receiver id skips the check");
        assert_eq!(c.decrypt("not base64!").unwrap_err(), CryptoError::DecodeBase64);
        assert_eq!(c.decrypt("AAAA").unwrap_err().code(), -40007);
        assert_eq!(parse_envelope("hello").unwrap_err().code(), -40002);
        assert_eq!(parse_envelope("<xml><ToUserName>x</ToUserName></xml>").unwrap_err().code(), -40002);
    }

    #[test]
    fn json_envelopes_any_case_any_agentid_type() {
        let e = parse_envelope(r#"{"ToUserName":"ww1","Encrypt":"abc","AgentID":1000002}"#).unwrap();
        assert_eq!((e.format, e.encrypt.as_str(), e.agent_id.as_deref()), (Format::Json, "abc", Some("1000002")));
        let e = parse_envelope(r#"{"tousername":"ww1","encrypt":"abc","agentid":"7"}"#).unwrap();
        assert_eq!(e.agent_id.as_deref(), Some("7"));
    }

    #[test]
    fn aligned_plaintext_gets_a_whole_block_of_padding() {
        let c = MsgCrypt::new("t", KEY, "").unwrap();
        // 16 + 4 + 12 = 32 bytes: aligned, so 32 bytes of 0x20 follow.
        let enc = c.encrypt("twelve bytes", &[b'a'; 16]);
        assert_eq!(STANDARD.decode(&enc).unwrap().len(), 64);
        assert_eq!(c.decrypt(&enc).unwrap().msg, "twelve bytes");
    }

    proptest! {
        #[test]
        fn seal_then_open_returns_the_message(
            msg in "\\PC{0,300}",
            key in proptest::collection::vec(any::<u8>(), 32),
            rid in "[a-zA-Z0-9]{0,24}",
            random in proptest::array::uniform16(any::<u8>()),
            ts in "[0-9]{10}", nonce in "[0-9a-z]{1,16}", json in any::<bool>(),
        ) {
            let enc_key = STANDARD.encode(&key)[..43].to_string();
            let c = MsgCrypt::new("tok", &enc_key, &rid).unwrap();
            let fmt = if json { Format::Json } else { Format::Xml };
            let body = c.seal(&msg, &ts, &nonce, &random, fmt);
            let env = parse_envelope(&body).unwrap();
            let sig = c.sign(&ts, &nonce, &env.encrypt);
            let (_, p) = c.decrypt_body(&sig, &ts, &nonce, &body).unwrap();
            prop_assert_eq!(&p.msg, &msg);
            prop_assert_eq!(p.random, random);
            // Any change to the signed inputs is rejected.
            let (ts2, nonce2) = (format!("{}1", ts), format!("{}x", nonce));
            prop_assert!(c.decrypt_body(&sig, &ts2, &nonce, &body).is_err());
            prop_assert!(c.decrypt_body(&sig, &ts, &nonce2, &body).is_err());
            let mut bad_sig = sig.clone().into_bytes();
            bad_sig[0] = if bad_sig[0] == b'0' { b'1' } else { b'0' };
            prop_assert!(c.decrypt_body(std::str::from_utf8(&bad_sig).unwrap(), &ts, &nonce, &body).is_err());
            let tampered = env.encrypt.replacen(&env.encrypt[..1], if &env.encrypt[..1] == "A" { "B" } else { "A" }, 1);
            let body2 = body.replace(&env.encrypt, &tampered);
            prop_assert!(c.decrypt_body(&sig, &ts, &nonce, &body2).is_err());
        }
    }
}
