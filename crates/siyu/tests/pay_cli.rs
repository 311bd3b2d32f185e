//! `siyu pay verify-notify`: a notification signed with a fixture platform key, checked with
//! its certificate or its bare public key, and every way it is refused.

use std::io::Write;
use std::process::{Command, Stdio};

use siyu_pay::notify::{encrypt, Signer};

const APIV3_KEY: &str = "0123456789abcdef0123456789abcdef";
const SERIAL: &str = "3A2B1C0D9E8F7A6B5C4D3E2F1A0B9C8D7E6F5A4B";
const RESOURCE: &str = r#"{"mchid":"1900000001","appid":"wx0000000000000001","out_trade_no":"SY20261123001","transaction_id":"4200000000000000001","trade_state":"SUCCESS","amount":{"total":12900,"currency":"CNY"}}"#;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn siyu(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_siyu"))
        .args(args)
        .env_remove("SIYU_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// A notification as WeChat Pay sends it: the request line, the headers, a blank line and the
/// body; `sig` replaces the signature when given.
fn request(ts: i64, body: &str, sig: Option<&str>) -> Vec<u8> {
    let signer = Signer::from_pkcs8_pem(&std::fs::read_to_string(fixture("pay_platform_key.pem")).unwrap()).unwrap();
    let h = signer.headers(SERIAL, ts, "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", body.as_bytes());
    let sig = sig.map(str::to_string).unwrap_or(h.signature);
    format!(
        "POST /pay/notify HTTP/1.1\r\nContent-Type: application/json\r\nWechatpay-Timestamp: {}\r\nWechatpay-Nonce: {}\r\n\
         Wechatpay-Signature: {sig}\r\nWechatpay-Serial: {}\r\nWechatpay-Signature-Type: WECHATPAY2-SHA256-RSA2048\r\n\r\n{body}",
        h.timestamp, h.nonce, h.serial
    )
    .into_bytes()
}

fn body(key: &str) -> String {
    let ct = encrypt(key, "fdasflkja484", "transaction", RESOURCE.as_bytes()).unwrap();
    format!(
        r#"{{"id":"EV-018352068788","create_time":"2026-11-23T10:00:00+08:00","resource_type":"encrypt-resource","event_type":"TRANSACTION.SUCCESS","summary":"支付成功","resource":{{"original_type":"transaction","algorithm":"AEAD_AES_256_GCM","ciphertext":"{ct}","associated_data":"transaction","nonce":"fdasflkja484"}}}}"#
    )
}

fn verify(mode: &str, now: &str, stdin: &[u8]) -> (i32, String, String) {
    let (flag, file) = match mode {
        "cert" => ("--platform-cert", fixture("pay_platform_cert.pem")),
        _ => ("--platform-public-key", fixture("pay_platform_pub.pem")),
    };
    siyu(&["pay", "verify-notify", "--apiv3-key", APIV3_KEY, flag, &file, "--now", now], stdin)
}

#[test]
fn a_genuine_notification_prints_its_resource_in_either_key_mode() {
    let req = request(1_790_000_000, &body(APIV3_KEY), None);
    for mode in ["cert", "public-key"] {
        let (code, out, err) = verify(mode, "1790000100", &req);
        assert_eq!((code, out.as_str(), err.as_str()), (0, format!("{RESOURCE}\n").as_str(), ""), "{mode}");
    }
    // Typed into a terminal, the body gains a final newline the sender never signed.
    let mut typed = req.clone();
    typed.push(b'\n');
    assert_eq!(verify("cert", "1790000100", &typed).0, 0);
}

#[test]
fn every_refusal_says_why_and_exits_non_zero() {
    let b = body(APIV3_KEY);
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (request(1_790_000_000, &b, None), "1790000300", "300 s away"),
        (request(1_790_000_000, &b, None), "1789999700", "300 s away"),
        (request(1_790_000_000, &b, Some("WECHATPAY/SIGNTEST/AAAA")), "1790000000", "signature test probe"),
        (request(1_790_000_000, &body("fedcba9876543210fedcba9876543210"), None), "1790000000", "decryption failed"),
        (b"Wechatpay-Nonce: n\r\n\r\n{}".to_vec(), "1790000000", "missing header Wechatpay-Timestamp"),
    ];
    for (stdin, now, why) in cases {
        let (code, out, err) = verify("cert", now, &stdin);
        assert_ne!(code, 0, "{why}");
        assert!(out.is_empty(), "{why}: nothing on stdout");
        assert!(err.contains(why), "{why}: {err}");
    }
    // The body was altered after signing: the signature fails before anything is decrypted.
    let mut tampered = request(1_790_000_000, &b, None);
    let at = tampered.len() - 3;
    tampered[at] = b'X';
    let (code, _, err) = verify("public-key", "1790000000", &tampered);
    assert!(code != 0 && err.contains("does not match"), "{err}");
    // A certificate whose serial the notification does not name.
    let other = request(1_790_000_000, &b, None);
    let other = String::from_utf8(other).unwrap().replace(SERIAL, "0123ABCD");
    let (code, _, err) = verify("cert", "1790000000", other.as_bytes());
    assert!(code != 0 && err.contains("no platform certificate or public key with serial 0123ABCD"), "{err}");
    // A bad APIv3 key is refused before reading anything.
    let (code, _, err) = siyu(
        &["pay", "verify-notify", "--apiv3-key", "short", "--platform-cert", &fixture("pay_platform_cert.pem")],
        b"",
    );
    assert!(code != 0 && err.contains("exactly 32 bytes"), "{err}");
}
