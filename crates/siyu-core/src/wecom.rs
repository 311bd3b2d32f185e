//! WeCom connection settings: what an operator enters, validated once for the API, the
//! console and the CLI alike.

use crate::validate::{Violation, Violations};

/// Validated settings of a self-built WeCom app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppInput {
    pub name: String,
    pub corp_id: String,
    pub agent_id: String,
    /// API base URL: WeCom's, or a sandbox's.
    pub base_url: String,
}

impl AppInput {
    pub fn validate(name: &str, corp_id: &str, agent_id: &str, base_url: &str) -> Result<AppInput, Vec<Violation>> {
        let mut v = Violations::new();
        let name = v.text("name", name, 64);
        let corp_id = v.text("corp_id", corp_id, 64);
        // CorpIDs are `ww` or `wx` followed by letters and digits.
        if !corp_id.is_empty()
            && !((corp_id.starts_with("ww") || corp_id.starts_with("wx"))
                && corp_id.len() >= 8
                && corp_id.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            v.push(
                "corp_id",
                "invalid_format",
                "corp_id looks like ww followed by letters and digits (我的企业 → 企业信息)",
            );
        }
        let agent_id = v.text("agent_id", agent_id, 16);
        if !agent_id.is_empty() && !agent_id.chars().all(|c| c.is_ascii_digit()) {
            v.push("agent_id", "invalid_format", "agent_id is the app's numeric AgentId");
        }
        let base_url = v.text("base_url", base_url, 200);
        if !(base_url.is_empty() || base_url.starts_with("https://") || is_loopback_http(&base_url)) {
            // The app Secret travels to this address: plain http only to this machine.
            v.push(
                "base_url",
                "invalid_format",
                "base_url must start with https:// (plain http only for a sandbox on this machine)",
            );
        }
        v.into_result()?;
        Ok(AppInput { name, corp_id, agent_id, base_url: base_url.trim_end_matches('/').to_string() })
    }
}

fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = if host.starts_with('[') {
        host.split(']').next().map(|h| &h[1..]).unwrap_or("")
    } else {
        host.split(':').next().unwrap_or("")
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// A new app secret must be present and plausible; checking it for real is the connection
/// check's job.
pub fn validate_secret(secret: &str) -> Result<String, Vec<Violation>> {
    let mut v = Violations::new();
    let s = v.text("secret", secret, 128);
    if !s.is_empty() && s.len() < 8 {
        v.push("secret", "invalid_format", "the Secret is the long string on the app's page in WeCom's admin console");
    }
    v.into_result()?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_settings() {
        let ok =
            AppInput::validate(" 客户联系 ", "ww1436e0e65a779aee", "1000002", "https://qyapi.weixin.qq.com/").unwrap();
        assert_eq!((ok.name.as_str(), ok.base_url.as_str()), ("客户联系", "https://qyapi.weixin.qq.com"));
        let e = AppInput::validate("", "corp", "abc", "ftp://x").unwrap_err();
        let f: Vec<_> = e.iter().map(|x| x.field.as_str()).collect();
        assert_eq!(f, vec!["name", "corp_id", "agent_id", "base_url"]);
        assert!(validate_secret("short").is_err());
        assert!(validate_secret("").is_err());
        assert!(validate_secret("0123456789abcdef").is_ok());
        assert!(AppInput::validate("x", "ww12345678", "1", "http://127.0.0.1:8090/wecom-sandbox").is_ok());
        assert!(AppInput::validate("x", "ww12345678", "1", "http://[::1]:8090").is_ok());
        assert!(
            AppInput::validate("x", "ww12345678", "1", "http://evil.example.com").is_err(),
            "the secret would travel in clear"
        );
        assert!(AppInput::validate("x", "ww12345678", "1", "http://127.0.0.1.evil.com").is_err());
    }
}
