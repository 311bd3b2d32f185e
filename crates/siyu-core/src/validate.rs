//! Input validation shared by the API and the console: every problem names its field.

use serde::Serialize;

/// One invalid field: `field` is a JSON pointer-ish dotted path such as `name` or `items.2.qty`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub field: String,
    /// Stable machine code, e.g. `required`, `too_long`, `invalid_format`.
    pub code: &'static str,
    /// Human explanation in English; the console translates by `code`.
    pub message: String,
}

/// Collects violations so a form shows every problem at once instead of one per submit.
#[derive(Debug, Default)]
pub struct Violations(pub Vec<Violation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, field: &str, code: &'static str, message: impl Into<String>) {
        self.0.push(Violation { field: field.to_string(), code, message: message.into() });
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn into_result(self) -> Result<(), Vec<Violation>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }

    /// Trimmed, non-empty, at most `max` characters.
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> String {
        let v = value.trim();
        if v.is_empty() {
            self.push(field, "required", format!("{field} is required"));
        } else if v.chars().count() > max {
            self.push(field, "too_long", format!("{field} must be at most {max} characters"));
        }
        v.to_string()
    }

    /// Optional text: empty becomes `None`.
    pub fn opt_text(&mut self, field: &str, value: Option<&str>, max: usize) -> Option<String> {
        let v = value.map(str::trim).filter(|v| !v.is_empty())?;
        if v.chars().count() > max {
            self.push(field, "too_long", format!("{field} must be at most {max} characters"));
        }
        Some(v.to_string())
    }

    /// Lower-case letters, digits and `-`/`_`, 2..=max chars, starting with a letter or digit.
    pub fn code(&mut self, field: &str, value: &str, max: usize) -> String {
        let v = value.trim().to_string();
        if v.is_empty() {
            self.push(field, "required", format!("{field} is required"));
        } else if !is_code(&v, max) {
            self.push(
                field,
                "invalid_format",
                format!(
                    "{field} must be 2-{max} lower-case letters, digits, '-' or '_', starting with a letter or digit"
                ),
            );
        }
        v
    }

    /// One of a fixed set of values, `default` when absent; `allowed` lists them for the message.
    pub fn choice<T>(
        &mut self,
        field: &str,
        value: Option<&str>,
        default: T,
        parse: fn(&str) -> Option<T>,
        allowed: &str,
    ) -> T {
        match value {
            None => default,
            Some(s) => parse(s).unwrap_or_else(|| {
                self.push(field, "invalid_value", format!("{field} must be one of: {allowed}"));
                default
            }),
        }
    }

    /// A mainland-China mobile number (11 digits starting with 1), optionally written with +86.
    pub fn opt_mobile(&mut self, field: &str, value: Option<&str>) -> Option<String> {
        let v = value.map(str::trim).filter(|v| !v.is_empty())?;
        match normalize_cn_mobile(v) {
            Some(m) => Some(m),
            None => {
                self.push(field, "invalid_format", format!("{field} must be an 11-digit mainland mobile number"));
                Some(v.to_string())
            }
        }
    }

    pub fn login(&mut self, field: &str, value: &str) -> String {
        let v = value.trim().to_lowercase();
        if v.is_empty() {
            self.push(field, "required", format!("{field} is required"));
        } else if v.chars().count() > 64
            || !v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+'))
        {
            self.push(
                field,
                "invalid_format",
                format!("{field} may contain only letters, digits and . _ - @ + (at most 64)"),
            );
        }
        v
    }
}

pub fn is_code(v: &str, max: usize) -> bool {
    let n = v.len();
    (2..=max).contains(&n)
        && v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && v.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// `+86 138-0013-8000` → `+8613800138000`; `None` when not a valid mainland mobile.
pub fn normalize_cn_mobile(v: &str) -> Option<String> {
    let digits: String = v.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let local = digits.strip_prefix("+86").or_else(|| digits.strip_prefix("0086")).unwrap_or(&digits);
    if local.len() == 11 && local.starts_with('1') && local.chars().all(|c| c.is_ascii_digit()) {
        Some(format!("+86{local}"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_problem_with_its_field() {
        let mut v = Violations::new();
        v.text("name", "   ", 10);
        v.text("title", "一二三四五六七八九十十", 10);
        v.code("code", "Bad Code", 32);
        let errs = v.into_result().unwrap_err();
        let got: Vec<_> = errs.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert_eq!(got, vec![("name", "required"), ("title", "too_long"), ("code", "invalid_format")]);
    }

    #[test]
    fn text_counts_characters_not_bytes() {
        let mut v = Violations::new();
        assert_eq!(v.text("n", " 上海旗舰店 ", 5), "上海旗舰店");
        assert!(v.is_empty());
    }

    #[test]
    fn mobiles_normalise_to_e164() {
        assert_eq!(normalize_cn_mobile("138-0013-8000").as_deref(), Some("+8613800138000"));
        assert_eq!(normalize_cn_mobile("+86 13800138000").as_deref(), Some("+8613800138000"));
        assert_eq!(normalize_cn_mobile("23800138000"), None);
        assert_eq!(normalize_cn_mobile("1380013800"), None);
    }

    #[test]
    fn codes() {
        assert!(is_code("sh-01", 32));
        assert!(!is_code("-sh", 32));
        assert!(!is_code("x", 32));
        assert!(!is_code("SH01", 32));
    }
}
