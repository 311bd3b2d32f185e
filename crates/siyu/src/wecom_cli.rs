//! `siyu wecom …`: the callback debugger operators use while connecting WeCom, and the
//! contract the tests use. Output is exact: the decrypted message with nothing added, or the
//! reason for rejection on stderr with a non-zero exit.

use std::io::{Read, Write};

use anyhow::{bail, Result};
use clap::{Args, Subcommand, ValueEnum};

use siyu_wecom::crypto::{Format, MsgCrypt};

#[derive(Subcommand)]
pub enum WecomCmd {
    /// Verify and decrypt a callback: the POST body (XML or JSON envelope) on stdin, or the
    /// URL-verification echostr with --echostr. Prints exactly the decrypted message.
    VerifyCallback(VerifyArgs),
    /// Encrypt a plaintext message (stdin) into a signed callback body.
    Encrypt(EncryptArgs),
}

#[derive(Args)]
pub struct Common {
    /// The callback Token set in WeCom's admin console.
    #[arg(long)]
    token: String,
    /// The 43-character EncodingAESKey.
    #[arg(long)]
    encoding_aes_key: String,
    /// The CorpID (or suite id); empty skips the receiver check.
    #[arg(long, default_value = "")]
    receiver_id: String,
    #[arg(long)]
    timestamp: String,
    #[arg(long)]
    nonce: String,
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    msg_signature: String,
    /// The echostr of a URL verification (already URL-decoded); stdin is not read.
    #[arg(long)]
    echostr: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Fmt {
    Xml,
    Json,
}

#[derive(Args)]
pub struct EncryptArgs {
    #[command(flatten)]
    common: Common,
    /// The 16-byte random prefix, for reproducible output [default: random letters and digits].
    #[arg(long)]
    random: Option<String>,
    #[arg(long, value_enum, default_value = "xml")]
    format: Fmt,
}

fn crypt(c: &Common) -> Result<MsgCrypt> {
    MsgCrypt::new(&c.token, &c.encoding_aes_key, &c.receiver_id).map_err(|e| anyhow::anyhow!("{e}"))
}

fn stdin_string() -> Result<String> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s)?;
    Ok(s)
}

pub fn run(cmd: WecomCmd) -> Result<()> {
    match cmd {
        WecomCmd::VerifyCallback(a) => {
            let c = crypt(&a.common)?;
            let msg = match &a.echostr {
                Some(e) => c.verify_url(&a.msg_signature, &a.common.timestamp, &a.common.nonce, e),
                None => c
                    .decrypt_body(&a.msg_signature, &a.common.timestamp, &a.common.nonce, &stdin_string()?)
                    .map(|(_, p)| p.msg),
            };
            match msg {
                Ok(m) => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(m.as_bytes())?;
                    out.flush()?;
                    Ok(())
                }
                Err(e) => bail!("rejected: {e}"),
            }
        }
        WecomCmd::Encrypt(a) => {
            let c = crypt(&a.common)?;
            let random: [u8; 16] = match &a.random {
                Some(r) => match r.as_bytes().try_into() {
                    Ok(b) => b,
                    Err(_) => bail!("--random must be exactly 16 bytes, got {}", r.len()),
                },
                None => {
                    use rand::distributions::{Alphanumeric, Distribution};
                    let mut rng = rand::thread_rng();
                    std::array::from_fn(|_| Alphanumeric.sample(&mut rng))
                }
            };
            let fmt = match a.format {
                Fmt::Xml => Format::Xml,
                Fmt::Json => Format::Json,
            };
            let body = c.seal(&stdin_string()?, &a.common.timestamp, &a.common.nonce, &random, fmt);
            println!("{body}");
            Ok(())
        }
    }
}
