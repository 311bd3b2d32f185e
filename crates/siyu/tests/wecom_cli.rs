//! `siyu wecom verify-callback` and `siyu wecom encrypt` against protocols.md's vectors.

use std::io::Write;
use std::process::{Command, Stdio};

const TOKEN: &str = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo";
const KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";
const CORP: &str = "ww1436e0e65a779aee";
const POST: &str = "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n<Encrypt><![CDATA[Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+]]></Encrypt>\n<AgentID><![CDATA[1000002]]></AgentID>\n</xml>";
const MSG: &str = "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName><CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content><MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>";

fn siyu(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_siyu"))
        .args(args)
        .env_remove("SIYU_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn verify(ts: &str, nonce: &str, sig: &str, rid: &str, extra: &[&str], stdin: &str) -> (i32, String, String) {
    let mut a = vec![
        "wecom",
        "verify-callback",
        "--token",
        TOKEN,
        "--encoding-aes-key",
        KEY,
        "--receiver-id",
        rid,
        "--timestamp",
        ts,
        "--nonce",
        nonce,
        "--msg-signature",
        sig,
    ];
    a.extend_from_slice(extra);
    siyu(&a, stdin)
}

#[test]
fn verifies_and_decrypts_the_worked_examples_exactly() {
    let (code, out, err) =
        verify("1476422779", "1597212914", "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", CORP, &[], POST);
    assert_eq!((code, out.as_str()), (0, MSG), "{err}");
    let echo = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA==";
    let (code, out, err) =
        verify("1476416373", "47744683", "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", CORP, &["--echostr", echo], "");
    assert_eq!((code, out.as_str()), (0, "1288432023552776189"), "{err}");
}

#[test]
fn rejections_name_their_reason() {
    let cases: [(&str, &str, &str, &str, &str, &str); 4] = [
        ("1476422779", "1597212915", "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", CORP, POST, "bad signature"),
        (
            "1476422779",
            "1597212914",
            "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
            "wwOTHER",
            POST,
            "receiver id mismatch",
        ),
        ("1476422779", "1597212914", "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", CORP, "hello", "malformed envelope"),
        (
            "1476422779",
            "1597212914",
            "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
            CORP,
            "<xml><ToUserName>x</ToUserName></xml>",
            "malformed envelope",
        ),
    ];
    for (ts, nonce, sig, rid, body, reason) in cases {
        let (code, out, err) = verify(ts, nonce, sig, rid, &[], body);
        assert_ne!(code, 0);
        assert!(out.is_empty());
        assert!(err.contains(reason), "expected {reason:?} in {err:?}");
    }
    let (code, _, err) = siyu(
        &[
            "wecom",
            "verify-callback",
            "--token",
            TOKEN,
            "--encoding-aes-key",
            &KEY[1..],
            "--timestamp",
            "1",
            "--nonce",
            "1",
            "--msg-signature",
            "x",
        ],
        POST,
    );
    assert!(code != 0 && err.contains("bad key"), "{err}");
}

#[test]
fn bad_padding_is_named() {
    // A correctly signed ciphertext whose plaintext ends in pad byte 0, which is never valid.
    let c = siyu_wecom::MsgCrypt::new(TOKEN, KEY, CORP).unwrap();
    let enc = c.encrypt_unpadded_for_tests(&[0u8; 32]);
    let sig = siyu_wecom::crypto::signature(TOKEN, "1", "2", &enc);
    let body = format!("<xml><Encrypt><![CDATA[{enc}]]></Encrypt></xml>");
    let (code, _, err) = verify("1", "2", &sig, CORP, &[], &body);
    assert!(code != 0 && err.contains("bad padding"), "{err}");
}

#[test]
fn encrypt_reproduces_the_vector_and_round_trips() {
    let (code, out, err) = siyu(
        &[
            "wecom",
            "encrypt",
            "--token",
            TOKEN,
            "--encoding-aes-key",
            KEY,
            "--receiver-id",
            CORP,
            "--timestamp",
            "1476422779",
            "--nonce",
            "1597212914",
            "--random",
            "694ce5a83ae07fe3",
        ],
        MSG,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew"), "{out}");
    assert!(out.contains("<MsgSignature><![CDATA[0c3914025cb4b4d68103f6bfc8db550f79dcf48e]]></MsgSignature>"), "{out}");
    assert!(out.contains("<TimeStamp>1476422779</TimeStamp>") && out.contains("<Nonce><![CDATA[1597212914]]></Nonce>"));
    for fmt in ["xml", "json"] {
        let (code, body, err) = siyu(
            &[
                "wecom",
                "encrypt",
                "--token",
                TOKEN,
                "--encoding-aes-key",
                KEY,
                "--receiver-id",
                CORP,
                "--timestamp",
                "1700000000",
                "--nonce",
                "n1",
                "--format",
                fmt,
            ],
            "中文消息 with <xml> & ]]> inside",
        );
        assert_eq!(code, 0, "{err}");
        let sig = if fmt == "json" {
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["msgsignature"].as_str().unwrap().to_string()
        } else {
            body.split("<MsgSignature><![CDATA[").nth(1).unwrap().split("]]>").next().unwrap().to_string()
        };
        let (code, out, err) = verify("1700000000", "n1", &sig, CORP, &[], &body);
        assert_eq!((code, out.as_str()), (0, "中文消息 with <xml> & ]]> inside"), "{fmt}: {err}");
    }
    let (code, _, err) = siyu(
        &[
            "wecom",
            "encrypt",
            "--token",
            "t",
            "--encoding-aes-key",
            KEY,
            "--timestamp",
            "1",
            "--nonce",
            "1",
            "--random",
            "short",
        ],
        "x",
    );
    assert!(code != 0 && err.contains("16 bytes"), "{err}");
}
