//! Short links (短链; scrm-rules A-40..A-44) for SMS and package cards: a case-sensitive base62
//! code pointing at one of the tenant's own public pages — a live code's landing page or the
//! H5 mall — with attribution parameters carried through. Targets are paths on siyu itself,
//! never another host, so a link can never become an open redirect.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;
use crate::validate::{Violation, Violations};

pub const CODE_LEN: usize = 7;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub const MAX_PARAMS: usize = 8;

/// A code from `CODE_LEN` random bytes (the caller draws them).
pub fn code_from(bytes: [u8; CODE_LEN]) -> String {
    // 62 does not divide 256; the bias this leaves (a few percent on some letters) costs
    // nothing for codes that are unique by constraint and not secrets.
    bytes.iter().map(|b| BASE62[*b as usize % 62] as char).collect()
}

/// Whether `s` could be a code (so `/s/{code}` rejects anything else before a lookup).
pub fn is_code(s: &str) -> bool {
    s.len() >= 6 && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShortLinkInput {
    pub name: String,
    /// A path on siyu: `/l/{tenant}/…` or `/m/{tenant}…`.
    pub target: String,
    /// Attribution parameters appended to the target (e.g. `utm_source=sms`).
    pub params: Vec<(String, String)>,
    pub expires_at: Option<Timestamp>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ShortLinkDraft {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub params: Vec<(String, String)>,
    pub expires_at: Option<Timestamp>,
}

fn param_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl ShortLinkDraft {
    /// `tenant` is the slug whose pages the link may point at.
    pub fn validate(&self, tenant: &str, now: Timestamp) -> Result<ShortLinkInput, Vec<Violation>> {
        let mut v = Violations::new();
        let name = v.text("name", &self.name, 32);
        let target = self.target.trim().to_string();
        let landing = format!("/l/{tenant}/");
        let mall = format!("/m/{tenant}");
        let own = (target.starts_with(&landing) && target.len() > landing.len())
            || target == mall
            || target.starts_with(&format!("{mall}/"))
            || target.starts_with(&format!("{mall}?"));
        let clean = !target.contains("//") && !target.contains('\\') && !target.contains('#') && !target.contains("..");
        if !own || !clean || target.len() > 500 || target.chars().any(char::is_control) {
            v.push(
                "target",
                "not_allowed",
                format!("a link points at this brand's own pages: {landing}… (a live code) or {mall}… (the mall)"),
            );
        }
        if self.params.len() > MAX_PARAMS {
            v.push("params", "too_many", format!("at most {MAX_PARAMS} parameters"));
        }
        if self.params.iter().any(|(k, val)| !param_ok(k) || !param_ok(val)) {
            v.push("params", "invalid_format", "parameters are letters, digits, -, _ and . (at most 64 each)");
        }
        if self.expires_at.is_some_and(|e| e <= now) {
            v.push("expires_at", "out_of_range", "the expiry must be in the future");
        }
        v.into_result()?;
        Ok(ShortLinkInput { name, target, params: self.params.clone(), expires_at: self.expires_at })
    }
}

impl ShortLinkInput {
    /// Where a hit is sent: the target with the link's code (`sl`) and its parameters added,
    /// so the page it lands on records where the visitor came from.
    pub fn location(&self, code: &str) -> String {
        let mut out = self.target.clone();
        let mut sep = if out.contains('?') { '&' } else { '?' };
        for (k, v) in std::iter::once(("sl", code)).chain(self.params.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            out.push(sep);
            out.push_str(k);
            out.push('=');
            out.push_str(v);
            sep = '&';
        }
        out
    }
}

/// The visitor's client class.
pub fn client_class(user_agent: &str) -> &'static str {
    if user_agent.contains("MicroMessenger") {
        "wechat"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(target: &str) -> ShortLinkDraft {
        ShortLinkDraft {
            name: "短信".into(),
            target: target.into(),
            params: vec![("utm_source".into(), "sms".into())],
            expires_at: None,
        }
    }

    #[test]
    fn codes_are_base62_of_the_length() {
        let c = code_from([0, 61, 62, 255, 10, 36, 100]);
        assert_eq!(c, "0z07Aac");
        assert!(is_code(&c));
        assert!(!is_code("abc") && !is_code("abc-def") && !is_code("../etc"));
    }

    #[test]
    fn only_the_tenants_own_pages_are_targets() {
        for ok in ["/l/acme/01a2", "/m/acme", "/m/acme/flash", "/m/acme?x=1"] {
            assert!(draft(ok).validate("acme", Timestamp(0)).is_ok(), "{ok}");
        }
        for bad in [
            "https://evil.example.com/",
            "//evil.example.com",
            "/l/other/01a2",
            "/m/acmeplus",
            "/l/acme/",
            "/console",
            "/m/acme/..//evil",
            "/m/acme/\\evil",
            "",
        ] {
            let e = draft(bad).validate("acme", Timestamp(0)).unwrap_err();
            assert_eq!(e[0].field, "target", "{bad}");
        }
        let mut bad_params = draft("/m/acme");
        bad_params.params = vec![("utm source".into(), "x".into())];
        assert_eq!(bad_params.validate("acme", Timestamp(0)).unwrap_err()[0].field, "params");
        let mut past = draft("/m/acme");
        past.expires_at = Some(Timestamp(5));
        assert_eq!(past.validate("acme", Timestamp(10)).unwrap_err()[0].field, "expires_at");
    }

    #[test]
    fn the_location_carries_the_code_and_parameters() {
        let l = draft("/l/acme/01a2").validate("acme", Timestamp(0)).unwrap();
        assert_eq!(l.location("Ab12xYz"), "/l/acme/01a2?sl=Ab12xYz&utm_source=sms");
        let m = draft("/m/acme?x=1").validate("acme", Timestamp(0)).unwrap();
        assert_eq!(m.location("Ab12xYz"), "/m/acme?x=1&sl=Ab12xYz&utm_source=sms");
        assert_eq!(client_class("Mozilla/5.0 MicroMessenger/8.0"), "wechat");
    }
}
