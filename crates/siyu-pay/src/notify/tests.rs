use super::*;

/// The published WeChat Pay SDK test certificate (protocols.md §7.9); it expired in 2025,
/// which must not matter to the signature check.
const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIDrTCCApWgAwIBAgIUXxxy4qiTG3Ki4Tr43ukkces5cRUwDQYJKoZIhvcNAQEL\nBQAwZjELMAkGA1UEBhMCQ04xEjAQBgNVBAgMCUd1YW5nZG9uZzERMA8GA1UEBwwI\nc2hlbnpoZW4xITAfBgNVBAoMGEludGVybmV0IFdpZGdpdHMgUHR5IEx0ZDENMAsG\nA1UEAwwEdGVzdDAeFw0yMjA1MTAwMTU3MTBaFw0yNTA1MDkwMTU3MTBaMGYxCzAJ\nBgNVBAYTAkNOMRIwEAYDVQQIDAlHdWFuZ2RvbmcxETAPBgNVBAcMCHNoZW56aGVu\nMSEwHwYDVQQKDBhJbnRlcm5ldCBXaWRnaXRzIFB0eSBMdGQxDTALBgNVBAMMBHRl\nc3QwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQCaZzehUwzcxdLgGn/U\nNryHLdX0yBvCqD0p92/BdlCIBi0dmzZzrfc+FF0xK70AP9b2+Ry5q+zXUU+dPucJ\nmgwABiZ+Lte+4euMxqPCEkdEu9lyiphalpoaOVPbmDNatzq9k5a/P454QRWMdkLU\nJZCeoL9bF2Gn/2+wWEw3sL8zFFcOM8Jr1PdOLmAx+h7pf/87jcmXXCm+SZqw5MtI\nLKQi9zHWujYdMA0IcYNeQaNl1h/NUnungdIHKaaU+17wCXqTcZsipAGoqfqrHx/s\nr30ZszOdHYOvFNiB+rhEldBGSLWwSYE6LFkbP9GdQWKIQCip3E5dLj5ZFkDeOv4H\nekf9AgMBAAGjUzBRMB0GA1UdDgQWBBQQicr3Vq+2NG2ykH0nxQxsct1RtTAfBgNV\nHSMEGDAWgBQQicr3Vq+2NG2ykH0nxQxsct1RtTAPBgNVHRMBAf8EBTADAQH/MA0G\nCSqGSIb3DQEBCwUAA4IBAQCH//ZlSAbc6xRlwKwwfbHMsVpAfo/p+Y3397Gi4sR8\nRbsW6a3ezXhbiSGiJxDnerx9Cmp4K6U+D3Fl0N9K6CDWfwpGNiZvjmCxtM/wb7dM\nu+4U0MXJGBcaePj4mtV/+qPxSWDCQ+PR5OcYRQnac9LfrffTuejQx5aw9FcD7egI\nSYfgkZ/wgHyQcZyhh8s6DuigpEaVGMLLoWDZGJ3D+rt4kXk9y5+03KBB2vobyl6P\n+PDgaYrlNR/UQMnKMdkgWp7bebmrcXte32/6FAwK3SuHZOSkteDtRCYhYfG5SGSr\ngo1ujfIK1zIFyPkKKnsgTUPJXwdC7LI+ZqJuWTyVTNj6\n-----END CERTIFICATE-----";
const PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAmmc3oVMM3MXS4Bp/1Da8\nhy3V9Mgbwqg9KfdvwXZQiAYtHZs2c633PhRdMSu9AD/W9vkcuavs11FPnT7nCZoM\nAAYmfi7XvuHrjMajwhJHRLvZcoqYWpaaGjlT25gzWrc6vZOWvz+OeEEVjHZC1CWQ\nnqC/Wxdhp/9vsFhMN7C/MxRXDjPCa9T3Ti5gMfoe6X//O43Jl1wpvkmasOTLSCyk\nIvcx1ro2HTANCHGDXkGjZdYfzVJ7p4HSBymmlPte8Al6k3GbIqQBqKn6qx8f7K99\nGbMznR2DrxTYgfq4RJXQRki1sEmBOixZGz/RnUFiiEAoqdxOXS4+WRZA3jr+B3pH\n/QIDAQAB\n-----END PUBLIC KEY-----";
const SERIAL: &str = "5F1C72E2A8931B72A2E13AF8DEE92471EB397115";
const SIGNATURE: &str = "Rq+5ZpWV6IHTWE1+9gCrYJKguNgbItpMdlIA+PVCPCdUAKNlohZz7CL7Y8xWDIFJjdGnErMj6Z+Q/h9CF5MV+nAVkqDmBR0uP5ppsUEzco4ijvKHsvI2ro4boSW6vSfQs3W8I4QSI9a0/NFIgvj83Fv27LIYZf7deaFWmEwd1fpAeJRCyoKyBeJPdsjVx0//Lqe6Wze2zVdliLcBvaHCfpd8+rAVGS+FQDeWgHqJ7n/Zy09LmV1/ghs7pO1mdjdD16SHKlysAD3K5hNGUJX/SHrEXEcu1yO1AOb/YvOVkjNh8243rcfXNE5L4ph2XS11vS+2aToKYSOcKUagf0LLaw==";

#[test]
fn aead_vector_encrypts_and_decrypts() {
    let key = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb";
    let ct = encrypt(key, "uluk4a9R25RW", "associatedData", b"message").unwrap();
    assert_eq!(ct, "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI=");
    assert_eq!(decrypt(key, "uluk4a9R25RW", "associatedData", &ct).unwrap(), b"message");
    assert_eq!(decrypt(key, "uluk4a9R25RW", "", &ct), Err(NotifyError::Decrypt), "empty AAD fails");
    assert_eq!(decrypt(key, "uluk4a9R25RX", "associatedData", &ct), Err(NotifyError::Decrypt), "another nonce fails");
    assert_eq!(decrypt("short", "uluk4a9R25RW", "associatedData", &ct), Err(NotifyError::KeyLength(5)));
    assert_eq!(decrypt(key, "short", "associatedData", &ct), Err(NotifyError::NonceLength(5)));
    assert_eq!(decrypt(key, "uluk4a9R25RW", "associatedData", "AAAA"), Err(NotifyError::Ciphertext));
}

/// The vector signs the bare message "message"; verifying it through the notification path
/// takes a message built as `timestamp\nnonce\nbody\n`, so the raw RSA check is tested here.
fn raw_verify(key: &RsaPublicKey, message: &[u8], sig_b64: &str) -> bool {
    let sig = Signature::try_from(B64.decode(sig_b64).unwrap().as_slice()).unwrap();
    VerifyingKey::<Sha256>::new(key.clone()).verify(message, &sig).is_ok()
}

#[test]
fn rsa_vector_verifies_with_the_certificate_and_the_public_key() {
    let mut v = Verifier::default();
    assert_eq!(v.add_certificate_pem(CERT).unwrap(), SERIAL);
    let cert_key = &v.keys[0].key;
    assert!(raw_verify(cert_key, b"message", SIGNATURE));
    assert!(!raw_verify(cert_key, b"message\n", SIGNATURE));
    let mut bad = B64.decode(SIGNATURE).unwrap();
    bad[10] ^= 1;
    assert!(!raw_verify(cert_key, b"message", &B64.encode(bad)));
    let mut p = Verifier::default();
    p.add_public_key_pem(Some("PUB_KEY_ID_0114232134912410000000000000"), PUBLIC_KEY).unwrap();
    assert_eq!(&p.keys[0].key, cert_key, "the certificate's key is the published public key");
    assert!(raw_verify(&p.keys[0].key, b"message", SIGNATURE));
}

#[test]
fn notification_checks_in_order() {
    let mut v = Verifier::default();
    v.add_certificate_pem(CERT).unwrap();
    let h = |sig: &str, ts: &str, serial: &str| Headers {
        timestamp: ts.into(),
        nonce: "n".into(),
        signature: sig.into(),
        serial: serial.into(),
        signature_type: Some(SIGNATURE_TYPE.into()),
    };
    assert_eq!(v.verify(&h("WECHATPAY/SIGNTEST/abc", "1000", SERIAL), b"{}", 1000), Err(NotifyError::SignTest));
    assert_eq!(v.verify(&h(SIGNATURE, "1000", SERIAL), b"{}", 1300), Err(NotifyError::Expired { skew: 300 }));
    assert_eq!(v.verify(&h(SIGNATURE, "1000", SERIAL), b"{}", 700), Err(NotifyError::Expired { skew: 300 }));
    assert_eq!(v.verify(&h(SIGNATURE, "x", SERIAL), b"{}", 0), Err(NotifyError::BadTimestamp("x".into())));
    assert_eq!(v.verify(&h(SIGNATURE, "1000", "ABC"), b"{}", 1000), Err(NotifyError::UnknownSerial("ABC".into())));
    assert_eq!(v.verify(&h("***", "1000", SERIAL), b"{}", 1000), Err(NotifyError::SignatureEncoding));
    assert_eq!(v.verify(&h(SIGNATURE, "1000", SERIAL), b"{}", 1299), Err(NotifyError::SignatureMismatch));
    let mut wrong_type = h(SIGNATURE, "1000", SERIAL);
    wrong_type.signature_type = Some("HMAC".into());
    assert_eq!(v.verify(&wrong_type, b"{}", 1000), Err(NotifyError::SignatureType("HMAC".into())));
    // Headers are found whatever their case; a missing one is named.
    let pairs = [("wechatpay-timestamp", "1"), ("WECHATPAY-NONCE", "n"), ("Wechatpay-Signature", "s")];
    assert_eq!(Headers::from_pairs(pairs), Err(NotifyError::MissingHeader("Wechatpay-Serial")));
    assert_eq!(check_apiv3_key("0123456789abcdef0123456789abcdef"), Ok(()));
}

#[test]
fn a_signed_notification_opens_and_any_change_is_refused() {
    let signer = Signer::from_pkcs8_pem(include_str!("../../../siyu/tests/fixtures/pay_platform_key.pem")).unwrap();
    let mut v = Verifier::default();
    let serial = v.add_certificate_pem(include_str!("../../../siyu/tests/fixtures/pay_platform_cert.pem")).unwrap();
    let key = "0123456789abcdef0123456789abcdef";
    let resource = r#"{"out_trade_no":"T1","amount":{"total":100}}"#;
    // Spaced as a sender might: re-serialising it changes the bytes.
    let body = serde_json::to_string_pretty(&serde_json::json!({
        "id": "EV-1", "create_time": "2026-11-23T10:00:00+08:00", "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
        "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                     "ciphertext": encrypt(key, "abcdefghijkl", "transaction", resource.as_bytes()).unwrap(),
                     "associated_data": "transaction", "nonce": "abcdefghijkl"}
    }))
    .unwrap();
    let h = signer.headers(&serial, 1_000, "nonce-1", body.as_bytes());
    let (n, plain) = open(&v, key, &h, body.as_bytes(), 1_100).unwrap();
    assert_eq!((n.id.as_str(), plain.as_slice()), ("EV-1", resource.as_bytes()));
    // Re-serialised JSON, another nonce header, or another APIv3 key all fail.
    let reserialised = serde_json::to_vec(&serde_json::from_str::<serde_json::Value>(&body).unwrap()).unwrap();
    assert_ne!(reserialised, body.as_bytes());
    assert_eq!(open(&v, key, &h, &reserialised, 1_100).unwrap_err(), NotifyError::SignatureMismatch);
    let other_nonce = Headers { nonce: "nonce-2".into(), ..h.clone() };
    assert_eq!(open(&v, key, &other_nonce, body.as_bytes(), 1_100).unwrap_err(), NotifyError::SignatureMismatch);
    assert_eq!(
        open(&v, "fedcba9876543210fedcba9876543210", &h, body.as_bytes(), 1_100).unwrap_err(),
        NotifyError::Decrypt
    );
    // An empty body signs as a final line of just "\n".
    let empty = signer.headers(&serial, 1_000, "n", b"");
    assert_eq!(v.verify(&empty, b"", 1_000), Ok(()));
}
