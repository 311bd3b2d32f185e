//! The customer profile: lifecycle stages, validated input, phone numbers and their masking.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ids::{StaffId, StoreId};
use crate::validate::{normalize_cn_mobile, Violation, Violations};

/// A lifecycle stage: a stable key (what segments and the API use) and its display names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stage {
    pub key: String,
    pub name: String,
}

/// The default stages of scrm-rules C-30, in order: key, zh-CN name, English name.
pub const DEFAULT_STAGES: [(&str, &str, &str); 7] = [
    ("new", "新客", "New"),
    ("following", "跟进中", "Following up"),
    ("intent", "意向", "Interested"),
    ("deal", "成交", "Purchased"),
    ("repurchase", "复购", "Repeat buyer"),
    ("dormant", "沉睡", "Dormant"),
    ("lost", "流失", "Lost"),
];

/// The stage a new customer starts in.
pub const INITIAL_STAGE: &str = "new";

/// Where a customer record first came from.
pub const SOURCES: [&str; 4] = ["manual", "import", "wecom", "order"];

/// Validated fields of a customer created or edited by hand or by import. Serialisable so a
/// validated import can wait (sealed) for its job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CustomerInput {
    pub name: String,
    /// E.164, e.g. `+8613812345678`.
    pub phone: Option<String>,
    pub gender: Gender,
    pub lifecycle: Option<String>,
    pub owner_staff_id: Option<StaffId>,
    pub store_id: Option<StoreId>,
    pub fields: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    #[default]
    Unknown,
    Male,
    Female,
}

impl Gender {
    /// WeCom's numbering: 0 unknown, 1 male, 2 female.
    pub fn code(self) -> i64 {
        match self {
            Gender::Unknown => 0,
            Gender::Male => 1,
            Gender::Female => 2,
        }
    }
    pub fn from_code(c: i64) -> Gender {
        match c {
            1 => Gender::Male,
            2 => Gender::Female,
            _ => Gender::Unknown,
        }
    }
    pub fn parse(s: &str) -> Option<Gender> {
        match s {
            "unknown" | "" => Some(Gender::Unknown),
            "male" | "男" | "m" | "M" => Some(Gender::Male),
            "female" | "女" | "f" | "F" => Some(Gender::Female),
            _ => None,
        }
    }
}

pub const MAX_FIELD_VALUE: usize = 200;

impl CustomerInput {
    /// `stages` are the tenant's stage keys; `field_keys` its custom field keys.
    #[allow(clippy::too_many_arguments)]
    pub fn validate(
        name: &str,
        phone: Option<&str>,
        gender: Option<&str>,
        lifecycle: Option<&str>,
        owner_staff_id: Option<StaffId>,
        store_id: Option<StoreId>,
        fields: &BTreeMap<String, String>,
        stages: &[String],
        field_keys: &[String],
    ) -> Result<Self, Vec<Violation>> {
        let mut v = Violations::new();
        let name = v.text("name", name, 64);
        let phone = match phone.map(str::trim).filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => match normalize_phone(p) {
                Some(p) => Some(p),
                None => {
                    v.push(
                        "phone",
                        "invalid_format",
                        "phone must be a mainland mobile number or an international number starting with +",
                    );
                    None
                }
            },
        };
        let gender = v.choice("gender", gender, Gender::Unknown, Gender::parse, "unknown, male, female");
        let lifecycle = lifecycle.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        if let Some(l) = &lifecycle {
            if !stages.iter().any(|s| s == l) {
                v.push("lifecycle", "unknown_stage", format!("lifecycle must be one of: {}", stages.join(", ")));
            }
        }
        let mut clean = BTreeMap::new();
        for (k, val) in fields {
            let path = format!("fields.{k}");
            if !field_keys.iter().any(|f| f == k) {
                v.push(&path, "unknown_field", format!("{k} is not a custom field of this tenant"));
                continue;
            }
            let val = val.trim();
            if val.chars().count() > MAX_FIELD_VALUE {
                v.push(&path, "too_long", format!("{path} must be at most {MAX_FIELD_VALUE} characters"));
            }
            if !val.is_empty() {
                clean.insert(k.clone(), val.to_string());
            }
        }
        v.into_result()?;
        Ok(CustomerInput { name, phone, gender, lifecycle, owner_staff_id, store_id, fields: clean })
    }
}

/// E.164 from what people type: mainland mobiles with or without +86, or any `+` number of
/// 8–15 digits. Spaces and dashes are ignored.
pub fn normalize_phone(p: &str) -> Option<String> {
    if let Some(cn) = normalize_cn_mobile(p) {
        return Some(cn);
    }
    let digits: String = p.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')')).collect();
    let rest = digits.strip_prefix('+')?;
    let ok = (8..=15).contains(&rest.len()) && rest.chars().all(|c| c.is_ascii_digit()) && !rest.starts_with('0');
    ok.then(|| format!("+{rest}"))
}

/// The masked form shown to viewers without the personal-data permission: the country code,
/// the first three and the last four digits of the national number (`+86 138****5678`).
pub fn mask_phone(e164: &str) -> String {
    let (cc, national) = match e164.strip_prefix("+86") {
        Some(n) => ("+86", n),
        None => {
            // Without a numbering plan, keep only the last four digits.
            let digits = e164.trim_start_matches('+');
            let tail = &digits[digits.len().saturating_sub(4)..];
            return format!("+{}{}", "*".repeat(digits.len().saturating_sub(4)), tail);
        }
    };
    if national.len() < 8 {
        return format!("{cc} ****");
    }
    format!("{cc} {}****{}", &national[..3], &national[national.len() - 4..])
}

/// The automatic stage after purchases (scrm-rules C-31): a first purchase day moves an
/// early-stage customer to 成交, a purchase on a later day to 复购. A stage set by hand is
/// locked for a while (C-32) and stages automation does not own are left alone. `None` means
/// no change.
pub fn stage_after_purchases(current: &str, purchase_days: usize, locked: bool) -> Option<&'static str> {
    if locked || purchase_days == 0 {
        return None;
    }
    let target = if purchase_days >= 2 { "repurchase" } else { "deal" };
    let movable = match target {
        "deal" => matches!(current, "new" | "following" | "intent" | "dormant" | "lost"),
        _ => matches!(current, "new" | "following" | "intent" | "deal" | "dormant" | "lost"),
    };
    (movable && current != target).then_some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages() -> Vec<String> {
        DEFAULT_STAGES.iter().map(|s| s.0.to_string()).collect()
    }

    #[test]
    fn purchases_move_early_stages_only() {
        assert_eq!(stage_after_purchases("new", 1, false), Some("deal"));
        assert_eq!(stage_after_purchases("deal", 2, false), Some("repurchase"));
        assert_eq!(stage_after_purchases("deal", 1, false), None);
        assert_eq!(stage_after_purchases("repurchase", 1, false), None);
        assert_eq!(stage_after_purchases("new", 3, true), None);
        assert_eq!(stage_after_purchases("new", 0, false), None);
        assert_eq!(stage_after_purchases("vip-custom", 2, false), None);
    }

    #[test]
    fn phones_normalise_and_mask() {
        assert_eq!(normalize_phone("138 1234 5678").as_deref(), Some("+8613812345678"));
        assert_eq!(normalize_phone("+44 20 7946 0958").as_deref(), Some("+442079460958"));
        assert_eq!(normalize_phone("12345"), None);
        assert_eq!(normalize_phone("+0123456789"), None);
        assert_eq!(mask_phone("+8613812345678"), "+86 138****5678");
        assert_eq!(mask_phone("+442079460958"), "+********0958");
    }

    #[test]
    fn input_names_every_bad_field() {
        let fields = BTreeMap::from([("city".to_string(), "x".repeat(201)), ("nope".to_string(), "1".to_string())]);
        let errs = CustomerInput::validate(
            " ",
            Some("abc"),
            Some("other"),
            Some("vip"),
            None,
            None,
            &fields,
            &stages(),
            &["city".to_string()],
        )
        .unwrap_err();
        let got: Vec<(&str, &str)> = errs.iter().map(|v| (v.field.as_str(), v.code)).collect();
        assert_eq!(
            got,
            vec![
                ("name", "required"),
                ("phone", "invalid_format"),
                ("gender", "invalid_value"),
                ("lifecycle", "unknown_stage"),
                ("fields.city", "too_long"),
                ("fields.nope", "unknown_field"),
            ]
        );
        let ok = CustomerInput::validate(
            "王小明",
            Some("13812345678"),
            Some("female"),
            Some("intent"),
            None,
            None,
            &BTreeMap::new(),
            &stages(),
            &[],
        )
        .unwrap();
        assert_eq!(ok.phone.as_deref(), Some("+8613812345678"));
        assert_eq!(ok.gender, Gender::Female);
    }
}
