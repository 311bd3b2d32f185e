//! Bargain (砍价; commerce-rules BG-1..BG-7): what an activity may be and how much each
//! helper cuts.
//!
//! A buyer starts a bargain at the activity's price; each helper cuts a random amount, and
//! the last required helper lands it exactly on the floor. The random draw comes in as a
//! number (BG-4): storage draws it, tests choose it.

use serde::{Deserialize, Serialize};

use super::pricing::MAX_UNIT_FEN;
use crate::time::Timestamp;
use crate::validate::{Violation, Violations};

/// The share of what is left that an ordinary helper cuts, in basis points (inclusive).
pub const DEFAULT_CUT_BP: (i64, i64) = (2_000, 5_000);
/// Unpaid bargain orders time out after this long by default.
pub const DEFAULT_TIMEOUT_SECS: i64 = 15 * 60;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BargainInput {
    pub name: String,
    pub sku_id: String,
    /// Where every bargain starts.
    pub price_fen: i64,
    /// Where the last required helper lands it.
    pub floor_fen: i64,
    /// Helpers a bargain needs to reach the floor (H).
    pub helpers: i64,
    /// Bargains one person may help under this activity.
    pub help_limit: i64,
    /// Units the activity may sell.
    pub quota: i64,
    /// Helps and new bargains are taken in `[starts_at, ends_at)` (BG-7).
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    /// Orders at the bargained price are placed before this.
    pub purchase_deadline: Timestamp,
    /// Ordinary cuts are this share range of what is left, in bp.
    pub cut_bp: (i64, i64),
    /// A brand-new buyer (no order yet) cuts this share instead, when set (policy).
    pub new_user_bp: Option<i64>,
    /// Whether the buyer may order at the current price before reaching the floor (policy).
    pub buy_at_current: bool,
    pub timeout_secs: i64,
}

/// What the API and console send.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct BargainDraft {
    pub name: String,
    pub sku_id: String,
    pub price_fen: i64,
    pub floor_fen: i64,
    pub helpers: i64,
    pub help_limit: Option<i64>,
    pub quota: i64,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub purchase_deadline: Option<Timestamp>,
    pub cut_bp: Option<(i64, i64)>,
    pub new_user_bp: Option<i64>,
    #[serde(default)]
    pub buy_at_current: bool,
    pub timeout_secs: Option<i64>,
}

impl BargainDraft {
    pub fn validate(&self) -> Result<BargainInput, Vec<Violation>> {
        let mut v = Violations::new();
        let name = v.text("name", &self.name, 32);
        if self.sku_id.trim().is_empty() {
            v.push("sku_id", "required", "choose the item");
        }
        if !(2..=MAX_UNIT_FEN).contains(&self.price_fen) {
            v.push("price_fen", "out_of_range", "a price is at least 0.02 yuan");
        }
        if self.floor_fen < 1 || self.floor_fen >= self.price_fen {
            v.push("floor_fen", "out_of_range", "the floor is at least 0.01 yuan and below the price");
        }
        // BG-1: every help can cut at least 1 fen.
        let room = self.price_fen - self.floor_fen;
        if !(1..=1_000).contains(&self.helpers) {
            v.push("helpers", "out_of_range", "a bargain needs 1 to 1,000 helpers");
        } else if self.helpers > room && room >= 1 {
            v.push("helpers", "too_many_helpers", format!("{room} fen can be cut by at most {room} helpers"));
        }
        let help_limit = self.help_limit.unwrap_or(1);
        if !(1..=99).contains(&help_limit) {
            v.push("help_limit", "out_of_range", "a person may help 1 to 99 bargains");
        }
        if !(1..=1_000_000).contains(&self.quota) {
            v.push("quota", "out_of_range", "a quota is 1 to 1,000,000 units");
        }
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
        let purchase_deadline = self.purchase_deadline.unwrap_or(ends_at);
        if purchase_deadline < ends_at {
            v.push("purchase_deadline", "out_of_range", "buying closes no earlier than the activity ends");
        }
        let cut_bp = self.cut_bp.unwrap_or(DEFAULT_CUT_BP);
        if !(1 <= cut_bp.0 && cut_bp.0 <= cut_bp.1 && cut_bp.1 <= 10_000) {
            v.push("cut_bp", "out_of_range", "a cut is a share of 0.01% to 100% of what is left, low to high");
        }
        if let Some(bp) = self.new_user_bp {
            if !(1..=10_000).contains(&bp) {
                v.push("new_user_bp", "out_of_range", "a new buyer's cut is 0.01% to 100% of what is left");
            }
        }
        let timeout_secs = self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if !(60..=3600).contains(&timeout_secs) {
            v.push("timeout_secs", "out_of_range", "unpaid orders wait 1 to 60 minutes");
        }
        v.into_result()?;
        Ok(BargainInput {
            name,
            sku_id: self.sku_id.trim().to_string(),
            price_fen: self.price_fen,
            floor_fen: self.floor_fen,
            helpers: self.helpers,
            help_limit,
            quota: self.quota,
            starts_at,
            ends_at,
            purchase_deadline,
            cut_bp,
            new_user_bp: self.new_user_bp,
            buy_at_current: self.buy_at_current,
            timeout_secs,
        })
    }
}

/// The share a helper cuts: from the ordinary range by the random `r`, or the new-buyer value.
pub fn draw_bp(range: (i64, i64), new_user_bp: Option<i64>, new_user: bool, r: u64) -> i64 {
    match new_user_bp {
        Some(bp) if new_user => bp,
        _ => {
            let span = (range.1 - range.0 + 1).max(1) as u64;
            range.0 + (r % span) as i64
        }
    }
}

/// BG-3: the next cut of a bargain at `current` with `done` of `helpers` helps made, or `None`
/// when no help is due (the floor is reached). With `R` left and `k` helps to come, the last
/// cuts `R`; any other cuts `⌊R × u_bp / 10000⌋` clamped to `[1, R − (k − 1)]`, so each help
/// cuts at least 1 fen and leaves at least 1 for each after it.
pub fn cut(current: i64, floor: i64, done: i64, helpers: i64, u_bp: i64) -> Option<i64> {
    let r = current - floor;
    let k = helpers - done;
    if k < 1 || r < k {
        return None;
    }
    if k == 1 {
        return Some(r);
    }
    let raw = (i128::from(r) * i128::from(u_bp.clamp(0, 10_000)) / 10_000) as i64;
    Some(raw.clamp(1, r - (k - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn draft() -> BargainDraft {
        BargainDraft {
            name: "砍价免费拿".into(),
            sku_id: "a".into(),
            price_fen: 9_900,
            floor_fen: 100,
            helpers: 5,
            quota: 50,
            starts_at: Some(Timestamp(0)),
            ends_at: Some(Timestamp(100)),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_activity_validates_with_defaults() {
        let b = draft().validate().unwrap();
        assert_eq!((b.help_limit, b.cut_bp, b.purchase_deadline), (1, DEFAULT_CUT_BP, Timestamp(100)));
    }

    #[test]
    fn more_helpers_than_fen_to_cut_is_refused() {
        let mut d = draft();
        d.price_fen = 105;
        d.floor_fen = 100;
        d.helpers = 6;
        let e = d.validate().unwrap_err();
        assert_eq!(e[0].field, "helpers");
        assert_eq!(e[0].code, "too_many_helpers");
        d.helpers = 5;
        assert!(d.validate().is_ok(), "H = price − floor is allowed: 1 fen each");
    }

    #[test]
    fn bad_activities_name_their_fields() {
        let mut d = draft();
        d.floor_fen = 9_900;
        d.quota = 0;
        d.cut_bp = Some((6_000, 5_000));
        d.new_user_bp = Some(0);
        d.purchase_deadline = Some(Timestamp(50));
        d.help_limit = Some(0);
        let fields: Vec<String> = d.validate().unwrap_err().into_iter().map(|v| v.field).collect();
        for f in ["floor_fen", "quota", "cut_bp", "new_user_bp", "purchase_deadline", "help_limit"] {
            assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
        }
    }

    /// BG-4: a fixed draw gives an exact sequence.
    #[test]
    fn a_seeded_bargain_cuts_exactly() {
        let draws = [7u64, 1_234, 99_999, 3, 0];
        let (mut cur, mut cuts) = (9_900, Vec::new());
        for (done, r) in draws.iter().enumerate() {
            let c = cut(cur, 100, done as i64, 5, draw_bp(DEFAULT_CUT_BP, None, false, *r)).unwrap();
            cuts.push(c);
            cur -= c;
        }
        // 9,800 left × 20.07 % → 1,966; 7,834 × 32.34 % → 2,533; 5,301 × 29.66 % → 1,572;
        // 3,729 × 20.03 % → 746; the last takes the 2,983 left.
        assert_eq!(cuts, vec![1_966, 2_533, 1_572, 746, 2_983]);
        assert_eq!(cur, 100);
        assert_eq!(cut(cur, 100, 5, 5, 5_000), None, "no help after the last");
    }

    #[test]
    fn tight_bargains_cut_one_fen_each() {
        let mut cur = 105;
        for done in 0..5 {
            let c = cut(cur, 100, done, 5, 10_000).unwrap();
            assert_eq!(c, 1, "each leaves one fen for every help to come");
            cur -= c;
        }
        assert_eq!(cur, 100);
    }

    #[test]
    fn a_new_buyer_cuts_the_boosted_share() {
        assert_eq!(draw_bp((2_000, 5_000), Some(8_000), true, 5), 8_000);
        assert_eq!(draw_bp((2_000, 5_000), Some(8_000), false, 5), 2_005);
        assert_eq!(draw_bp((2_000, 5_000), None, true, 3_001), 2_000);
        let c = cut(10_100, 100, 0, 3, 8_000).unwrap();
        assert_eq!(c, 8_000);
    }

    proptest! {
        /// BG-2, BG-3: every sequence of draws lands exactly on the floor with the H-th help,
        /// each cut at least 1 fen, the price never below the floor.
        #[test]
        fn every_cut_sequence_lands_on_the_floor(
            floor in 1i64..10_000,
            room in 1i64..200_000,
            h in 1i64..60,
            draws in proptest::collection::vec(any::<u64>(), 60),
            lo in 1i64..=10_000,
            width in 0i64..10_000,
            boost in proptest::option::of(1i64..=10_000),
        ) {
            prop_assume!(h <= room);
            let range = (lo, (lo + width).min(10_000));
            let mut cur = floor + room;
            let mut total = 0;
            for done in 0..h {
                let bp = draw_bp(range, boost, draws[done as usize] % 3 == 0, draws[done as usize]);
                let c = cut(cur, floor, done, h, bp).expect("a help is due until the H-th");
                prop_assert!(c >= 1);
                cur -= c;
                total += c;
                prop_assert!(cur >= floor);
                prop_assert!(cur - floor >= h - done - 1, "one fen left for every help to come");
            }
            prop_assert_eq!(cur, floor);
            prop_assert_eq!(total, room);
            prop_assert_eq!(cut(cur, floor, h, h, 5_000), None);
        }
    }
}
