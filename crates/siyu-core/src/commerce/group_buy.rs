//! Group-buy (拼团; commerce-rules GB-1..GB-12): what an activity may be, when each group
//! expires, what becomes of a group at its deadline, and who leads when the leader leaves.
//!
//! A group is opened by a buyer's order and fills with other buyers' orders. A seat is taken
//! when an order is placed (held) and becomes paid with its payment; a group succeeds the
//! moment its N-th member pays before the group's own deadline. Storage keeps the counters
//! and moves them with conditional updates; this module decides.

use serde::{Deserialize, Serialize};

use super::pricing::MAX_UNIT_FEN;
use crate::time::Timestamp;
use crate::validate::{Violation, Violations};

/// Unpaid group-buy orders time out after this long by default (INV-5).
pub const DEFAULT_TIMEOUT_SECS: i64 = 15 * 60;
pub const MAX_CAPACITY: i64 = 100;
const HOUR_MICROS: i64 = 3_600_000_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSkuInput {
    pub sku_id: String,
    pub price_fen: i64,
    /// Units the activity may sell of this SKU, over all its groups.
    pub quota: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupBuyInput {
    pub name: String,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// Members a group needs (N ≥ 2), copied into each group when it opens (GB-1).
    pub capacity: i64,
    /// Hours a group has to fill, copied into each group (GB-1, GB-2).
    pub valid_hours: i64,
    /// Units one buyer may hold over the activity, unpaid and paid together (GB-9).
    pub per_user: i64,
    /// 模拟成团: a group short of members at its deadline still succeeds when its paid
    /// members reach this share of N, in basis points (GB-6). `None`: never.
    pub virtual_bp: Option<i64>,
    /// Only buyers without an earlier effective order may join (老带新); the opener is exempt.
    pub new_joiners_only: bool,
    pub timeout_secs: i64,
    pub skus: Vec<GroupSkuInput>,
}

/// What the API and console send.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct GroupBuyDraft {
    pub name: String,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub capacity: Option<i64>,
    pub valid_hours: Option<i64>,
    pub per_user: Option<i64>,
    pub virtual_bp: Option<i64>,
    #[serde(default)]
    pub new_joiners_only: bool,
    pub timeout_secs: Option<i64>,
    #[serde(default)]
    pub skus: Vec<GroupSkuInput>,
}

impl GroupBuyDraft {
    pub fn validate(&self) -> Result<GroupBuyInput, Vec<Violation>> {
        let mut v = Violations::new();
        let name = v.text("name", &self.name, 32);
        let (starts_at, ends_at) = match (self.starts_at, self.ends_at) {
            (Some(s), Some(e)) if s < e => (s, e),
            (Some(s), Some(_)) => {
                v.push("ends_at", "out_of_range", "an activity must end after it starts");
                (s, s)
            }
            _ => {
                v.push("starts_at", "required", "give the start and end of the activity");
                (Timestamp(0), Timestamp(0))
            }
        };
        let capacity = self.capacity.unwrap_or(2);
        if !(2..=MAX_CAPACITY).contains(&capacity) {
            v.push("capacity", "out_of_range", format!("a group has 2 to {MAX_CAPACITY} members"));
        }
        let valid_hours = self.valid_hours.unwrap_or(24);
        if !(1..=720).contains(&valid_hours) {
            v.push("valid_hours", "out_of_range", "a group has 1 to 720 hours to fill");
        }
        let per_user = self.per_user.unwrap_or(1);
        if !(1..=99).contains(&per_user) {
            v.push("per_user", "out_of_range", "a buyer may take 1 to 99 units");
        }
        if let Some(bp) = self.virtual_bp {
            if !(1..=10_000).contains(&bp) {
                v.push("virtual_bp", "out_of_range", "the 模拟成团 threshold is 0.01% to 100% of the group");
            }
        }
        let timeout_secs = self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if !(60..=3600).contains(&timeout_secs) {
            v.push("timeout_secs", "out_of_range", "unpaid orders wait 1 to 60 minutes");
        }
        if self.skus.is_empty() || self.skus.len() > 50 {
            v.push("skus", "out_of_range", "an activity offers 1 to 50 SKUs");
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
        Ok(GroupBuyInput {
            name,
            starts_at,
            ends_at,
            capacity,
            valid_hours,
            per_user,
            virtual_bp: self.virtual_bp,
            new_joiners_only: self.new_joiners_only,
            timeout_secs,
            skus: self.skus.clone(),
        })
    }
}

/// GB-2: a group's own deadline, never past the activity's end.
pub fn expires_at(opened_at: Timestamp, valid_hours: i64, activity_end: Timestamp) -> Timestamp {
    Timestamp(opened_at.0.saturating_add(valid_hours.saturating_mul(HOUR_MICROS)).min(activity_end.0))
}

/// What a group that reached its deadline short of members becomes (GB-6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Expiry {
    /// 模拟成团: it succeeds, the missing seats filled by this many virtual members, who have
    /// no order, payment or refund and count in no statistic (GB-7).
    Succeeds { virtual_members: i64 },
    /// It fails: every paid member is refunded in full, and stock goes back.
    Fails,
}

/// GB-6: `paid × 10000 ≥ N × threshold_bp` decides, in integers; an empty group always fails.
pub fn at_deadline(paid: i64, capacity: i64, virtual_bp: Option<i64>) -> Expiry {
    match virtual_bp {
        Some(bp)
            if paid > 0 && paid < capacity && i128::from(paid) * 10_000 >= i128::from(capacity) * i128::from(bp) =>
        {
            Expiry::Succeeds { virtual_members: capacity - paid }
        }
        _ => Expiry::Fails,
    }
}

/// A member as the leadership rule sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seat<K> {
    pub key: K,
    pub joined_at: Timestamp,
    pub paid: bool,
}

/// GB-11: when the leader leaves before success, the earliest-joined remaining paid member
/// leads (ties by key); `None` means no paid member remains and the group closes as failed.
pub fn next_leader<K: Copy + Ord>(remaining: &[Seat<K>]) -> Option<K> {
    remaining.iter().filter(|s| s.paid).min_by_key(|s| (s.joined_at, s.key)).map(|s| s.key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn draft() -> GroupBuyDraft {
        GroupBuyDraft {
            name: "3人团".into(),
            starts_at: Some(Timestamp(0)),
            ends_at: Some(Timestamp(10 * HOUR_MICROS)),
            capacity: Some(3),
            valid_hours: Some(24),
            per_user: Some(1),
            virtual_bp: Some(6_000),
            new_joiners_only: false,
            timeout_secs: None,
            skus: vec![GroupSkuInput { sku_id: "a".into(), price_fen: 990, quota: 30 }],
        }
    }

    #[test]
    fn a_good_activity_validates_with_defaults() {
        let g = draft().validate().unwrap();
        assert_eq!((g.capacity, g.valid_hours, g.timeout_secs), (3, 24, DEFAULT_TIMEOUT_SECS));
    }

    #[test]
    fn bad_activities_name_their_fields() {
        let mut d = draft();
        d.capacity = Some(1);
        d.valid_hours = Some(0);
        d.virtual_bp = Some(0);
        d.per_user = Some(100);
        d.ends_at = Some(Timestamp(0));
        d.skus.push(GroupSkuInput { sku_id: "a".into(), price_fen: 0, quota: 0 });
        let fields: Vec<String> = d.validate().unwrap_err().into_iter().map(|v| v.field).collect();
        for f in [
            "capacity",
            "valid_hours",
            "virtual_bp",
            "per_user",
            "ends_at",
            "skus.1.price_fen",
            "skus.1.quota",
            "skus.1.sku_id",
        ] {
            assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn each_group_has_its_own_deadline_within_the_activity() {
        let end = Timestamp(10 * HOUR_MICROS);
        assert_eq!(expires_at(Timestamp(0), 2, end), Timestamp(2 * HOUR_MICROS));
        assert_eq!(expires_at(Timestamp(HOUR_MICROS), 2, end), Timestamp(3 * HOUR_MICROS));
        // A late opener gets what is left of the activity, not a deadline past it.
        assert_eq!(expires_at(Timestamp(9 * HOUR_MICROS), 2, end), end);
        assert_eq!(expires_at(Timestamp(i64::MAX - 1), 720, Timestamp(i64::MAX)), Timestamp(i64::MAX));
    }

    #[test]
    fn the_virtual_threshold_is_basis_points_of_the_group() {
        // 5 members, 60 %: 3 paid is enough, 2 is not.
        assert_eq!(at_deadline(3, 5, Some(6_000)), Expiry::Succeeds { virtual_members: 2 });
        assert_eq!(at_deadline(2, 5, Some(6_000)), Expiry::Fails);
        // 2 of 3 is 6,666.67 bp: short of 6,667, enough for 6,666 (20,000 vs 20,001 and 19,998).
        assert_eq!(at_deadline(2, 3, Some(6_667)), Expiry::Fails);
        assert_eq!(at_deadline(2, 3, Some(6_666)), Expiry::Succeeds { virtual_members: 1 });
        assert_eq!(at_deadline(2, 5, None), Expiry::Fails);
        assert_eq!(at_deadline(0, 5, Some(1)), Expiry::Fails, "an empty group never succeeds");
    }

    #[test]
    fn leadership_passes_to_the_earliest_paid_member() {
        let s = |key: u8, t: i64, paid: bool| Seat { key, joined_at: Timestamp(t), paid };
        assert_eq!(next_leader(&[s(3, 30, true), s(2, 20, false), s(4, 25, true)]), Some(4));
        assert_eq!(next_leader(&[s(3, 30, false)]), None);
        assert_eq!(next_leader(&[s(5, 10, true), s(4, 10, true)]), Some(4));
        assert_eq!(next_leader::<u8>(&[]), None);
    }

    proptest! {
        #[test]
        fn virtual_success_never_fills_a_group_that_is_full_or_empty(paid in 0i64..200, cap in 2i64..=100, bp in 1i64..=10_000) {
            match at_deadline(paid, cap, Some(bp)) {
                Expiry::Succeeds { virtual_members } => {
                    prop_assert!(paid > 0 && paid < cap);
                    prop_assert_eq!(paid + virtual_members, cap);
                    prop_assert!(paid * 10_000 >= cap * bp);
                }
                Expiry::Fails => prop_assert!(paid == 0 || paid >= cap || paid * 10_000 < cap * bp),
            }
        }
    }
}
