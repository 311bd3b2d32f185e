//! Order promotions (满减, 每满减, 满折; commerce-rules MJ-1, MJ-2): what an operator may set up.
//! The amounts are the pricing pipeline's business; this module checks a promotion's rule and
//! window, and says whether two promotions' windows overlap.

use serde::{Deserialize, Serialize};

use super::pricing::{PromoRule, Scope, BP, MAX_UNIT_FEN};
use crate::time::Timestamp;
use crate::validate::{Violation, Violations};

/// At most this many tiers: more is a price list, not a promotion.
pub const MAX_TIERS: usize = 5;
/// At most this many units of a 满送 gift per order.
pub const MAX_GIFT_QTY: u32 = 10;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PromotionInput {
    pub name: String,
    pub rule: PromoRule,
    pub scope: Scope,
    /// Half-open: `[starts_at, ends_at)`.
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
}

/// What the API and console send.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PromotionDraft {
    pub name: String,
    /// `tiers` (满减 by tiers), `every` (每满减) or `percent` (满折).
    pub kind: String,
    /// For `tiers`: (threshold, off) pairs in fen.
    #[serde(default)]
    pub tiers: Vec<(i64, i64)>,
    #[serde(default)]
    pub step_fen: i64,
    #[serde(default)]
    pub off_fen: i64,
    pub max_off_fen: Option<i64>,
    #[serde(default)]
    pub threshold_fen: i64,
    #[serde(default)]
    pub off_bp: i64,
    /// For `gift` (满送): from `threshold_fen`, this SKU in this quantity at no charge.
    pub gift_sku: Option<String>,
    #[serde(default)]
    pub gift_qty: u32,
    #[serde(default)]
    pub scope: Scope,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
}

impl PromotionDraft {
    pub fn validate(&self) -> Result<PromotionInput, Vec<Violation>> {
        let mut v = Violations::new();
        let name = v.text("name", &self.name, 32);
        let money = |x: i64| (1..=MAX_UNIT_FEN).contains(&x);
        let rule = match self.kind.as_str() {
            "tiers" => {
                let mut tiers: Vec<(i64, i64)> = self.tiers.clone();
                tiers.sort();
                if tiers.is_empty() || tiers.len() > MAX_TIERS {
                    v.push("tiers", "out_of_range", format!("give 1 to {MAX_TIERS} tiers"));
                }
                for (i, (t, off)) in tiers.iter().enumerate() {
                    if !money(*t) || !money(*off) || off >= t {
                        v.push(&format!("tiers.{i}"), "out_of_range", "each tier takes off less than its threshold");
                    } else if i > 0 && (tiers[i - 1].0 == *t || tiers[i - 1].1 >= *off) {
                        v.push(&format!("tiers.{i}"), "invalid_value", "a higher tier must take off more");
                    }
                }
                PromoRule::Tiers { tiers }
            }
            "every" => {
                if !money(self.step_fen) {
                    v.push("step_fen", "out_of_range", "the step is at least 1 fen");
                }
                if !money(self.off_fen) || self.off_fen >= self.step_fen {
                    v.push("off_fen", "out_of_range", "each step takes off less than the step");
                }
                if self.max_off_fen.is_some_and(|m| !money(m)) {
                    v.push("max_off_fen", "out_of_range", "the cap is at least 1 fen");
                }
                PromoRule::Every { step: self.step_fen, off: self.off_fen, max_off: self.max_off_fen }
            }
            "percent" => {
                if !money(self.threshold_fen) {
                    v.push("threshold_fen", "out_of_range", "the threshold is at least 1 fen");
                }
                if !(1..BP).contains(&self.off_bp) {
                    v.push("off_bp", "out_of_range", "a percentage is 1 to 9999 bp off");
                }
                PromoRule::Percent { threshold: self.threshold_fen, off_bp: self.off_bp }
            }
            "gift" => {
                if !money(self.threshold_fen) {
                    v.push("threshold_fen", "out_of_range", "the threshold is at least 1 fen");
                }
                if !(1..=MAX_GIFT_QTY).contains(&self.gift_qty) {
                    v.push("gift_qty", "out_of_range", format!("a gift is 1 to {MAX_GIFT_QTY} units"));
                }
                let sku = self.gift_sku.clone().filter(|s| !s.trim().is_empty());
                if sku.is_none() {
                    v.push("gift_sku_id", "required", "choose the gift");
                }
                PromoRule::Gift { threshold: self.threshold_fen, sku: sku.unwrap_or_default(), qty: self.gift_qty }
            }
            _ => {
                v.push("kind", "invalid_value", "kind must be one of: tiers, every, percent, gift");
                PromoRule::Tiers { tiers: Vec::new() }
            }
        };
        let (starts_at, ends_at) = match (self.starts_at, self.ends_at) {
            (Some(s), Some(e)) if s < e => (s, e),
            (Some(s), Some(_)) => {
                v.push("ends_at", "out_of_range", "a promotion must end after it starts");
                (s, s)
            }
            _ => {
                v.push("starts_at", "required", "give the start and end of the promotion");
                (Timestamp(0), Timestamp(0))
            }
        };
        v.into_result()?;
        Ok(PromotionInput { name, rule, scope: self.scope.clone(), starts_at, ends_at })
    }
}

/// Whether two half-open windows share an instant.
pub fn overlaps(a: (Timestamp, Timestamp), b: (Timestamp, Timestamp)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> PromotionDraft {
        PromotionDraft {
            name: "双十一满减".into(),
            kind: "tiers".into(),
            tiers: vec![(20_000, 3_000), (10_000, 1_000)],
            starts_at: Some(Timestamp(10)),
            ends_at: Some(Timestamp(20)),
            ..Default::default()
        }
    }

    #[test]
    fn tiers_are_sorted_and_must_grow() {
        let p = draft().validate().unwrap();
        assert_eq!(p.rule, PromoRule::Tiers { tiers: vec![(10_000, 1_000), (20_000, 3_000)] });
        let mut d = draft();
        d.tiers = vec![(10_000, 1_000), (20_000, 500), (300, 300)];
        let f: Vec<String> = d.validate().unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(f, vec!["tiers.0", "tiers.2"]);
    }

    #[test]
    fn every_kind_is_checked() {
        let mut d = draft();
        d.kind = "every".into();
        d.step_fen = 10_000;
        d.off_fen = 10_000;
        assert_eq!(d.validate().unwrap_err()[0].field, "off_fen");
        d.off_fen = 500;
        d.max_off_fen = Some(2_000);
        assert_eq!(d.validate().unwrap().rule, PromoRule::Every { step: 10_000, off: 500, max_off: Some(2_000) });
        let mut d = draft();
        d.kind = "percent".into();
        d.threshold_fen = 0;
        d.off_bp = 10_000;
        let f: Vec<String> = d.validate().unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(f, vec!["threshold_fen", "off_bp"]);
        let mut d = draft();
        d.kind = "bogo".into();
        d.ends_at = Some(Timestamp(10));
        let f: Vec<String> = d.validate().unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(f, vec!["kind", "ends_at"]);
        let mut d = draft();
        d.kind = "gift".into();
        d.threshold_fen = 9_900;
        let f: Vec<String> = d.validate().unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(f, vec!["gift_qty", "gift_sku_id"]);
        d.gift_qty = 1;
        d.gift_sku = Some("sku-1".into());
        assert_eq!(d.validate().unwrap().rule, PromoRule::Gift { threshold: 9_900, sku: "sku-1".into(), qty: 1 });
    }

    #[test]
    fn windows_are_half_open() {
        let w = |a, b| (Timestamp(a), Timestamp(b));
        assert!(overlaps(w(0, 10), w(5, 15)));
        assert!(!overlaps(w(0, 10), w(10, 20)), "one ends as the other starts");
        assert!(overlaps(w(0, 30), w(10, 20)));
    }
}
