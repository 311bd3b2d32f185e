//! `siyu pay …`: the notification checker operators use while connecting WeChat Pay, and the
//! contract tests use. Output is exact: the decrypted resource and nothing else on stdout, or
//! the reason for rejection on stderr with a non-zero exit.

use std::io::{Read, Write};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use siyu_pay::notify::{self, Headers, Verifier};

#[derive(Subcommand)]
pub enum PayCmd {
    /// Verify a payment or refund notification and print its decrypted resource. Reads the
    /// request from stdin: HTTP headers (an optional request line first), a blank line, then
    /// the body exactly as received.
    VerifyNotify(VerifyArgs),
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("platform").required(true).args(["platform_cert", "platform_public_key"])))]
pub struct VerifyArgs {
    /// The merchant's APIv3 key (32 bytes).
    #[arg(long)]
    apiv3_key: String,
    /// A platform certificate (PEM file); Wechatpay-Serial must name its serial.
    #[arg(long)]
    platform_cert: Option<std::path::PathBuf>,
    /// The WeChat Pay public key (PEM file), used whatever Wechatpay-Serial names.
    #[arg(long)]
    platform_public_key: Option<std::path::PathBuf>,
    /// The clock for the five-minute timestamp window, in Unix seconds [default: now].
    #[arg(long)]
    now: Option<i64>,
}

type HeaderPairs = Vec<(String, String)>;

/// Splits a raw request into its header pairs and its body bytes (after the first blank line).
fn split_request(raw: &[u8]) -> Result<(HeaderPairs, &[u8])> {
    let (head, body) = match find(raw, b"\r\n\r\n") {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None => match find(raw, b"\n\n") {
            Some(i) => (&raw[..i], &raw[i + 2..]),
            None => bail!("no blank line between the headers and the body"),
        },
    };
    let head = std::str::from_utf8(head).context("the headers are not UTF-8")?;
    let pairs = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok((pairs, body))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub fn run(cmd: PayCmd) -> Result<()> {
    match cmd {
        PayCmd::VerifyNotify(a) => {
            notify::check_apiv3_key(&a.apiv3_key)?;
            let mut v = Verifier::default();
            if let Some(p) = &a.platform_cert {
                let pem = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                v.add_certificate_pem(&pem)?;
            }
            if let Some(p) = &a.platform_public_key {
                let pem = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                v.add_public_key_pem(None, &pem)?;
            }
            let mut raw = Vec::new();
            std::io::stdin().read_to_end(&mut raw)?;
            let (pairs, body) = split_request(&raw)?;
            let headers = Headers::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
            let now = a.now.unwrap_or_else(|| siyu_core::Clock::now(&siyu_core::time::SystemClock).unix_secs());
            // A body typed or piped by hand usually gains a final newline the sender never
            // signed: when the exact bytes fail, the same body without it is tried.
            let opened = match notify::open(&v, &a.apiv3_key, &headers, body, now) {
                Err(notify::NotifyError::SignatureMismatch) if body.ends_with(b"\n") => {
                    let trimmed = body.strip_suffix(b"\r\n").or_else(|| body.strip_suffix(b"\n")).unwrap_or(body);
                    notify::open(&v, &a.apiv3_key, &headers, trimmed, now)
                }
                r => r,
            };
            let (_, plain) = opened?;
            let mut out = std::io::stdout().lock();
            out.write_all(&plain)?;
            out.write_all(b"\n")?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_split_at_the_first_blank_line() {
        let raw = b"POST /pay/notify HTTP/1.1\r\nWechatpay-Nonce: n\r\n\r\n{\"a\":\"b: c\"}\n";
        let (pairs, body) = split_request(raw).unwrap();
        assert_eq!(pairs, vec![("Wechatpay-Nonce".to_string(), "n".to_string())]);
        assert_eq!(body, b"{\"a\":\"b: c\"}\n");
        let (pairs, body) = split_request(b"A: 1\nB: 2\n\n{}").unwrap();
        assert_eq!((pairs.len(), body), (2, &b"{}"[..]));
        assert!(split_request(b"A: 1").is_err());
    }
}
