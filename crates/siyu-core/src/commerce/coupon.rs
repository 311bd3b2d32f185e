//! Coupon templates and their instances' validity (commerce-rules §5.4). The amounts a coupon
//! takes off are the pricing pipeline's business (`pricing::CouponKind`); this module says
//! what a template may be, and when an instance may be used.

use serde::{Deserialize, Serialize};

use super::pricing::{CouponKind, Scope, BP, MAX_UNIT_FEN};
use crate::time::Timestamp;
use crate::validate::{Violation, Violations};

/// A template's validity: a fixed half-open window, or N days from the claim with the claim
/// day counting as day 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Validity {
    Fixed { start: Timestamp, end: Timestamp },
    Days { days: i64 },
}

/// When an instance claimed at `claimed` may be used: `[start, end)`. For N days, the end is
/// local midnight at the start of (claim date + N) in the tenant's zone.
pub fn window(v: Validity, claimed: Timestamp, offset_hours: i8) -> (Timestamp, Timestamp) {
    match v {
        Validity::Fixed { start, end } => (start, end),
        Validity::Days { days } => {
            let day = claimed.local_day(offset_hours);
            let end = Timestamp::from_unix_secs((day + days) * 86_400 - i64::from(offset_hours) * 3600);
            (claimed, end)
        }
    }
}

/// The longest "N days" validity.
pub const MAX_DAYS: i64 = 365;
/// The most a template may issue.
pub const MAX_TOTAL: i64 = 10_000_000;

/// A validated template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TemplateInput {
    pub name: String,
    pub kind: CouponKind,
    pub scope: Scope,
    pub validity: Validity,
    pub total: i64,
    pub per_user: i64,
    /// A promo code (优惠码) customers type to claim it.
    pub code: Option<String>,
}

/// What the API and console send.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TemplateDraft {
    pub name: String,
    /// `amount`, `percent` or `shipping`.
    pub kind: String,
    #[serde(default)]
    pub face_fen: i64,
    #[serde(default)]
    pub off_bp: i64,
    pub cap_fen: Option<i64>,
    #[serde(default)]
    pub threshold_fen: i64,
    #[serde(default)]
    pub scope: Scope,
    pub valid_from: Option<Timestamp>,
    pub valid_to: Option<Timestamp>,
    pub valid_days: Option<i64>,
    pub total: i64,
    pub per_user: Option<i64>,
    pub code: Option<String>,
}

impl TemplateDraft {
    pub fn validate(&self) -> Result<TemplateInput, Vec<Violation>> {
        let mut v = Violations::new();
        let name = v.text("name", &self.name, 32);
        let threshold = self.threshold_fen;
        if !(0..=MAX_UNIT_FEN).contains(&threshold) {
            v.push("threshold_fen", "out_of_range", "the threshold is 0 (none) or more fen");
        }
        let kind = match self.kind.as_str() {
            "amount" | "shipping" => {
                if !(1..=MAX_UNIT_FEN).contains(&self.face_fen) {
                    v.push("face_fen", "out_of_range", "a coupon takes off at least 1 fen");
                } else if self.kind == "amount" && threshold > 0 && self.face_fen >= threshold {
                    v.push("face_fen", "out_of_range", "the amount off must be below the threshold");
                }
                if self.kind == "amount" {
                    CouponKind::Amount { face: self.face_fen, threshold }
                } else {
                    CouponKind::Shipping { face: self.face_fen, threshold }
                }
            }
            "percent" => {
                if !(1..BP).contains(&self.off_bp) {
                    v.push("off_bp", "out_of_range", "a percentage coupon takes 1 to 9999 bp off");
                }
                if let Some(c) = self.cap_fen {
                    if !(1..=MAX_UNIT_FEN).contains(&c) {
                        v.push("cap_fen", "out_of_range", "the cap is at least 1 fen");
                    }
                }
                CouponKind::Percent { off_bp: self.off_bp, cap: self.cap_fen, threshold }
            }
            _ => {
                v.push("kind", "invalid_value", "kind must be one of: amount, percent, shipping");
                CouponKind::Amount { face: 1, threshold: 0 }
            }
        };
        let validity = match (self.valid_from, self.valid_to, self.valid_days) {
            (Some(start), Some(end), None) if start < end => Validity::Fixed { start, end },
            (Some(_), Some(_), None) => {
                v.push("valid_to", "out_of_range", "the validity must end after it starts");
                Validity::Days { days: 1 }
            }
            (None, None, Some(d)) if (1..=MAX_DAYS).contains(&d) => Validity::Days { days: d },
            (None, None, Some(_)) => {
                v.push("valid_days", "out_of_range", format!("a coupon is valid 1 to {MAX_DAYS} days"));
                Validity::Days { days: 1 }
            }
            _ => {
                v.push("valid_days", "required", "give either valid_from and valid_to, or valid_days");
                Validity::Days { days: 1 }
            }
        };
        if !(1..=MAX_TOTAL).contains(&self.total) {
            v.push("total", "out_of_range", format!("issue 1 to {MAX_TOTAL} coupons"));
        }
        let per_user = self.per_user.unwrap_or(1);
        if !(1..=100).contains(&per_user) {
            v.push("per_user", "out_of_range", "each customer may claim 1 to 100");
        }
        let code = self.code.as_deref().map(str::trim).filter(|c| !c.is_empty()).map(str::to_uppercase);
        if let Some(c) = &code {
            if !(4..=20).contains(&c.len()) || !c.bytes().all(|b| b.is_ascii_alphanumeric()) {
                v.push("code", "invalid_format", "a promo code is 4 to 20 letters and digits");
            }
        }
        v.into_result()?;
        Ok(TemplateInput { name, kind, scope: self.scope.clone(), validity, total: self.total, per_user, code })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> TemplateDraft {
        TemplateDraft {
            name: "满100减20".into(),
            kind: "amount".into(),
            face_fen: 2000,
            threshold_fen: 10000,
            valid_days: Some(7),
            total: 100,
            ..Default::default()
        }
    }

    #[test]
    fn n_days_end_at_local_midnight_with_the_claim_day_as_day_one() {
        // Claimed 2026-11-23 23:30 in Shanghai (15:30 UTC).
        let claimed = Timestamp::parse_rfc3339("2026-11-23T23:30:00+08:00").unwrap();
        let (start, end) = window(Validity::Days { days: 1 }, claimed, 8);
        assert_eq!(start, claimed);
        assert_eq!(end, Timestamp::parse_rfc3339("2026-11-24T00:00:00+08:00").unwrap());
        let (_, end) = window(Validity::Days { days: 7 }, claimed, 8);
        assert_eq!(end, Timestamp::parse_rfc3339("2026-11-30T00:00:00+08:00").unwrap());
        let (s, e) = (Timestamp(1), Timestamp(2));
        assert_eq!(window(Validity::Fixed { start: s, end: e }, claimed, 8), (s, e));
    }

    #[test]
    fn templates_are_checked() {
        let t = draft().validate().unwrap();
        assert_eq!(t.kind, CouponKind::Amount { face: 2000, threshold: 10000 });
        assert_eq!((t.per_user, t.validity), (1, Validity::Days { days: 7 }));
        let mut d = draft();
        d.face_fen = 10000;
        d.total = 0;
        d.code = Some("a b".into());
        d.valid_days = None;
        let f: Vec<String> = d.validate().unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(f, vec!["face_fen", "valid_days", "total", "code"]);
        let mut d = draft();
        d.kind = "percent".into();
        d.off_bp = 10000;
        assert_eq!(d.validate().unwrap_err()[0].field, "off_bp");
        let mut d = draft();
        d.valid_days = None;
        d.valid_from = Some(Timestamp(10));
        d.valid_to = Some(Timestamp(10));
        assert_eq!(d.validate().unwrap_err()[0].field, "valid_to");
        let mut d = draft();
        d.code = Some(" save20 ".into());
        assert_eq!(d.validate().unwrap().code.as_deref(), Some("SAVE20"));
    }
}
