//! Flash sales (秒杀; commerce-rules FS-1..FS-8): what a sale may be, how its pool is split
//! into stock buckets, and the order a buyer's request probes them in.
//!
//! A sale's quota is carved out of the SKU's stock when the sale is created (held as the SKU's
//! `reserved`) and split into `B` bucket rows. A request takes its units from one bucket with
//! a conditional update, starting at a random bucket and probing the others in a fixed order
//! from there, so concurrent buyers spread over `B` rows instead of queueing on one (FS-8.2).

use serde::{Deserialize, Serialize};

use super::pricing::MAX_UNIT_FEN;
use crate::time::Timestamp;
use crate::validate::{Violation, Violations};

/// Buckets a pool is split into unless the operator says otherwise.
pub const DEFAULT_BUCKETS: u32 = 8;
pub const MAX_BUCKETS: u32 = 64;
/// Unpaid flash-sale orders time out after this long by default (INV-5: shorter than normal).
pub const DEFAULT_TIMEOUT_SECS: i64 = 10 * 60;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlashSkuInput {
    pub sku_id: String,
    pub price_fen: i64,
    pub quota: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FlashInput {
    pub name: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// Units one order may take (once_num).
    pub per_order: i64,
    /// Units one buyer may hold in unpaid and paid orders of the sale (limit_num).
    pub per_user: i64,
    pub timeout_secs: i64,
    pub buckets: u32,
    pub skus: Vec<FlashSkuInput>,
}

/// What the API and console send.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct FlashDraft {
    pub name: String,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub per_order: Option<i64>,
    pub per_user: Option<i64>,
    pub timeout_secs: Option<i64>,
    pub buckets: Option<u32>,
    #[serde(default)]
    pub skus: Vec<FlashSkuInput>,
}

impl FlashDraft {
    pub fn validate(&self) -> Result<FlashInput, Vec<Violation>> {
        let mut v = Violations::new();
        let name = v.text("name", &self.name, 32);
        let (starts_at, ends_at) = match (self.starts_at, self.ends_at) {
            (Some(s), Some(e)) if s < e => (s, e),
            (Some(s), Some(_)) => {
                v.push("ends_at", "out_of_range", "a sale must end after it starts");
                (s, s)
            }
            _ => {
                v.push("starts_at", "required", "give the start and end of the sale");
                (Timestamp(0), Timestamp(0))
            }
        };
        let per_order = self.per_order.unwrap_or(1);
        if !(1..=99).contains(&per_order) {
            v.push("per_order", "out_of_range", "an order takes 1 to 99 units");
        }
        let per_user = self.per_user.unwrap_or(per_order);
        if !(per_order..=999).contains(&per_user) {
            v.push("per_user", "out_of_range", "a buyer's limit is at least one order's and at most 999");
        }
        let timeout_secs = self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if !(60..=3600).contains(&timeout_secs) {
            v.push("timeout_secs", "out_of_range", "unpaid orders wait 1 to 60 minutes");
        }
        let buckets = self.buckets.unwrap_or(DEFAULT_BUCKETS);
        if !(1..=MAX_BUCKETS).contains(&buckets) {
            v.push("buckets", "out_of_range", format!("a pool is split into 1 to {MAX_BUCKETS} buckets"));
        }
        if self.skus.is_empty() || self.skus.len() > 50 {
            v.push("skus", "out_of_range", "a sale offers 1 to 50 SKUs");
        }
        for (i, s) in self.skus.iter().enumerate() {
            if !(1..=MAX_UNIT_FEN).contains(&s.price_fen) {
                v.push(&format!("skus.{i}.price_fen"), "out_of_range", "a price is at least 0.01 yuan");
            }
            if !(1..=1_000_000).contains(&s.quota) {
                v.push(&format!("skus.{i}.quota"), "out_of_range", "a quota is 1 to 1,000,000 units");
            }
            if self.skus[..i].iter().any(|x| x.sku_id == s.sku_id) {
                v.push(&format!("skus.{i}.sku_id"), "duplicate", "each SKU appears once");
            }
        }
        v.into_result()?;
        Ok(FlashInput { name, starts_at, ends_at, per_order, per_user, timeout_secs, buckets, skus: self.skus.clone() })
    }
}

/// A quota split over `buckets` rows: as even as can be, the remainder to the first ones, so
/// the parts sum to the quota and differ by at most one.
pub fn split_quota(quota: i64, buckets: u32) -> Vec<i64> {
    let b = i64::from(buckets.max(1));
    (0..b).map(|i| quota / b + i64::from(i < quota % b)).collect()
}

/// The buckets a request probes: from `start`, then the others in order, each once.
pub fn probe_order(start: u32, buckets: u32) -> impl Iterator<Item = u32> {
    let b = buckets.max(1);
    (0..b).map(move |i| (start % b + i) % b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> FlashDraft {
        FlashDraft {
            name: "整点秒杀".into(),
            starts_at: Some(Timestamp(0)),
            ends_at: Some(Timestamp(10)),
            skus: vec![FlashSkuInput { sku_id: "a".into(), price_fen: 990, quota: 1_000 }],
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_limits() {
        let ok = draft().validate().unwrap();
        assert_eq!((ok.per_order, ok.per_user, ok.timeout_secs, ok.buckets), (1, 1, 600, 8));
        let mut d = draft();
        d.per_order = Some(3);
        d.per_user = Some(2);
        d.buckets = Some(0);
        d.timeout_secs = Some(30);
        let f: Vec<String> = d.validate().unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(f, ["per_user", "timeout_secs", "buckets"]);
        let mut d = draft();
        d.skus.push(d.skus[0].clone());
        d.skus[0].quota = 0;
        d.ends_at = Some(Timestamp(0));
        let f: Vec<String> = d.validate().unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(f, ["ends_at", "skus.0.quota", "skus.1.sku_id"]);
    }

    #[test]
    fn quotas_split_evenly_and_exactly() {
        assert_eq!(split_quota(10, 4), [3, 3, 2, 2]);
        assert_eq!(split_quota(3, 8), [1, 1, 1, 0, 0, 0, 0, 0]);
        for q in [0, 1, 7, 1_000, 999_999] {
            for b in 1..=MAX_BUCKETS {
                let parts = split_quota(q, b);
                assert_eq!(parts.len(), b as usize);
                assert_eq!(parts.iter().sum::<i64>(), q);
                assert!(parts.iter().max().unwrap() - parts.iter().min().unwrap() <= 1);
            }
        }
    }

    #[test]
    fn every_bucket_is_probed_once() {
        assert_eq!(probe_order(5, 8).collect::<Vec<_>>(), [5, 6, 7, 0, 1, 2, 3, 4]);
        for b in 1..=16 {
            for s in 0..40 {
                let mut seen: Vec<u32> = probe_order(s, b).collect();
                seen.sort();
                assert_eq!(seen, (0..b).collect::<Vec<_>>());
            }
        }
    }
}
