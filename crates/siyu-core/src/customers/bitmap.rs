//! The in-memory segment index: one roaring bitmap per predicate value, and bit-sliced indexes
//! for numeric facts, over dense customer numbers (`customers.num`).
//!
//! This is a pure data structure. The store feeds it at start and after every change; the
//! edge asks it for counts and pages. Every bitmap holds live customers only — [`clear`]
//! removes a number from all of them — so evaluation never needs a final mask, and `NOT x` is
//! `live − x`.
//!
//! [`clear`]: SegmentIndex::clear

use std::borrow::Cow;
use std::collections::HashMap;

use roaring::RoaringBitmap;

use super::rfm;
use super::segment::{Expr, Facts, Metric, RfmDim};
use crate::ids::{StaffId, StoreId, TagId};

/// A bit-sliced index of non-negative integers (O'Neil & Quass range encoding by bits):
/// slice `i` holds the numbers whose value has bit `i` set. A range query costs a few bitmap
/// operations per bit, independent of how many customers match.
#[derive(Clone, Debug, Default)]
pub struct Bsi {
    exists: RoaringBitmap,
    slices: Vec<RoaringBitmap>,
}

impl Bsi {
    pub fn set(&mut self, num: u32, value: u64) {
        self.clear(num);
        let bits = 64 - value.leading_zeros() as usize;
        if self.slices.len() < bits {
            self.slices.resize_with(bits, RoaringBitmap::new);
        }
        for (i, s) in self.slices.iter_mut().enumerate().take(bits) {
            if value >> i & 1 == 1 {
                s.insert(num);
            }
        }
        self.exists.insert(num);
    }

    pub fn clear(&mut self, num: u32) {
        if self.exists.remove(num) {
            for s in &mut self.slices {
                s.remove(num);
            }
        }
    }

    pub fn get(&self, num: u32) -> Option<u64> {
        if !self.exists.contains(num) {
            return None;
        }
        Some(self.slices.iter().enumerate().filter(|(_, s)| s.contains(num)).map(|(i, _)| 1u64 << i).sum())
    }

    /// Numbers whose value is ≥ `x`.
    pub fn ge(&self, x: u64) -> RoaringBitmap {
        if x == 0 {
            return self.exists.clone();
        }
        if self.slices.len() < 64 && x >> self.slices.len() != 0 {
            return RoaringBitmap::new();
        }
        // Walk from the top bit keeping `eq` (equal to x so far) and collecting `gt`.
        let mut gt = RoaringBitmap::new();
        let mut eq = self.exists.clone();
        for i in (0..self.slices.len()).rev() {
            if x >> i & 1 == 1 {
                eq &= &self.slices[i];
            } else {
                gt |= &eq & &self.slices[i];
                eq -= &self.slices[i];
            }
        }
        gt | eq
    }

    /// Numbers whose value is ≤ `x`.
    pub fn le(&self, x: u64) -> RoaringBitmap {
        if self.slices.len() < 64 && x >> self.slices.len() != 0 {
            return self.exists.clone();
        }
        let mut lt = RoaringBitmap::new();
        let mut eq = self.exists.clone();
        for i in (0..self.slices.len()).rev() {
            if x >> i & 1 == 1 {
                lt |= &eq - &self.slices[i];
                eq &= &self.slices[i];
            } else {
                eq -= &self.slices[i];
            }
        }
        lt | eq
    }

    /// Numbers whose value lies in the inclusive range; a negative bound is treated as 0.
    pub fn range(&self, min: Option<i64>, max: Option<i64>) -> RoaringBitmap {
        if max.is_some_and(|m| m < 0) {
            return RoaringBitmap::new();
        }
        let lo = min.map(|m| m.max(0) as u64).unwrap_or(0);
        match max {
            None => self.ge(lo),
            Some(hi) if lo == 0 => self.le(hi as u64),
            Some(hi) => self.ge(lo) & self.le(hi as u64),
        }
    }

    fn bytes(&self) -> u64 {
        self.exists.serialized_size() as u64 + self.slices.iter().map(|s| s.serialized_size() as u64).sum::<u64>()
    }
}

/// One tenant's segment index.
#[derive(Clone, Debug, Default)]
pub struct SegmentIndex {
    live: RoaringBitmap,
    tags: HashMap<TagId, RoaringBitmap>,
    lifecycle: HashMap<String, RoaringBitmap>,
    channels: HashMap<String, RoaringBitmap>,
    staff: HashMap<StaffId, RoaringBitmap>,
    store: HashMap<StoreId, RoaringBitmap>,
    rfm_segment: HashMap<rfm::Segment, RoaringBitmap>,
    /// `[dimension R/F/M][score − 1]`.
    rfm_score: [[RoaringBitmap; 5]; 3],
    fields: HashMap<String, HashMap<String, RoaringBitmap>>,
    orders: Bsi,
    spend: Bsi,
    last_day: Bsi,
    empty: RoaringBitmap,
}

impl SegmentIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Live customers.
    pub fn len(&self) -> u64 {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    pub fn contains(&self, num: u32) -> bool {
        self.live.contains(num)
    }

    /// Replaces everything known about one customer.
    pub fn set(&mut self, num: u32, f: &Facts) {
        self.clear(num);
        self.insert(num, f);
    }

    /// Adds a customer not yet in the index (the bulk-load path: no removal first).
    pub fn insert(&mut self, num: u32, f: &Facts) {
        self.live.insert(num);
        self.lifecycle.entry(f.lifecycle.clone()).or_default().insert(num);
        if let Some(s) = f.staff {
            self.staff.entry(s).or_default().insert(num);
        }
        if let Some(s) = f.store {
            self.store.entry(s).or_default().insert(num);
        }
        if let Some(r) = &f.rfm {
            self.rfm_segment.entry(r.segment).or_default().insert(num);
            for (d, score) in [r.scores.r, r.scores.f, r.scores.m].into_iter().enumerate() {
                if (1..=5).contains(&score) {
                    self.rfm_score[d][score as usize - 1].insert(num);
                }
            }
        }
        self.orders.set(num, f.orders.max(0) as u64);
        self.spend.set(num, f.spend_fen.max(0) as u64);
        if let Some(d) = f.last_purchase_day {
            self.last_day.set(num, d.max(0) as u64);
        }
        for t in &f.tags {
            self.insert_tag(num, *t);
        }
        for c in &f.channels {
            self.insert_channel(num, c);
        }
        for (k, v) in &f.fields {
            self.insert_field(num, k, v);
        }
    }

    pub fn insert_tag(&mut self, num: u32, tag: TagId) {
        self.tags.entry(tag).or_default().insert(num);
    }

    pub fn remove_tag(&mut self, num: u32, tag: TagId) {
        if let Some(b) = self.tags.get_mut(&tag) {
            b.remove(num);
        }
    }

    pub fn insert_channel(&mut self, num: u32, channel: &str) {
        match self.channels.get_mut(channel) {
            Some(b) => {
                b.insert(num);
            }
            None => {
                self.channels.entry(channel.to_string()).or_default().insert(num);
            }
        }
    }

    pub fn insert_field(&mut self, num: u32, key: &str, value: &str) {
        let values = match self.fields.get_mut(key) {
            Some(v) => v,
            None => self.fields.entry(key.to_string()).or_default(),
        };
        match values.get_mut(value) {
            Some(b) => {
                b.insert(num);
            }
            None => {
                values.entry(value.to_string()).or_default().insert(num);
            }
        }
    }

    /// Drops from every bitmap the numbers that are not live (after a bulk load that may
    /// have fed memberships of customers it did not insert).
    pub fn retain_live(&mut self) {
        let live = std::mem::take(&mut self.live);
        self.for_each_value_bitmap(|b| *b &= &live);
        self.live = live;
    }

    /// Every per-value bitmap (not `live`, not the numeric slices).
    fn for_each_value_bitmap(&mut self, mut f: impl FnMut(&mut RoaringBitmap)) {
        self.tags
            .values_mut()
            .chain(self.lifecycle.values_mut())
            .chain(self.channels.values_mut())
            .chain(self.staff.values_mut())
            .chain(self.store.values_mut())
            .chain(self.rfm_segment.values_mut())
            .chain(self.rfm_score.iter_mut().flatten())
            .chain(self.fields.values_mut().flat_map(|m| m.values_mut()))
            .for_each(&mut f);
    }

    /// Forgets a customer entirely (erased, merged away, or about to be re-set).
    pub fn clear(&mut self, num: u32) {
        if !self.live.remove(num) {
            return;
        }
        self.for_each_value_bitmap(|b| {
            b.remove(num);
        });
        self.orders.clear(num);
        self.spend.clear(num);
        self.last_day.clear(num);
    }

    /// Members of a resolved expression (see [`super::segment::resolve`]); `today` is the local
    /// day number used by days-since-purchase ranges.
    pub fn eval(&self, e: &Expr, today: i64) -> RoaringBitmap {
        self.eval_cow(e, today).into_owned()
    }

    pub fn count(&self, e: &Expr, today: i64) -> u64 {
        match e {
            // The common builder shape: avoid materialising the last intersection.
            Expr::And(xs) if xs.len() >= 2 && !xs.iter().any(|x| matches!(x, Expr::Not(_))) => {
                let mut parts: Vec<Cow<'_, RoaringBitmap>> = xs.iter().map(|x| self.eval_cow(x, today)).collect();
                parts.sort_by_key(|b| b.len());
                let last = parts.pop().expect("at least two parts");
                let mut acc = parts.remove(0).into_owned();
                for p in &parts {
                    acc &= &**p;
                }
                acc.intersection_len(&last)
            }
            _ => self.eval_cow(e, today).len(),
        }
    }

    fn eval_cow<'a>(&'a self, e: &Expr, today: i64) -> Cow<'a, RoaringBitmap> {
        let get = |b: Option<&'a RoaringBitmap>| -> Cow<'a, RoaringBitmap> { Cow::Borrowed(b.unwrap_or(&self.empty)) };
        match e {
            Expr::All => Cow::Borrowed(&self.live),
            Expr::And(xs) => {
                let (neg, pos): (Vec<&Expr>, Vec<&Expr>) = xs.iter().partition(|x| matches!(x, Expr::Not(_)));
                let mut parts: Vec<Cow<'_, RoaringBitmap>> = pos.iter().map(|x| self.eval_cow(x, today)).collect();
                // Smallest first keeps every intermediate result small.
                parts.sort_by_key(|b| b.len());
                let mut acc = match parts.first() {
                    Some(first) => first.clone().into_owned(),
                    None => self.live.clone(),
                };
                for p in parts.iter().skip(1) {
                    if acc.is_empty() {
                        break;
                    }
                    acc &= &**p;
                }
                for n in neg {
                    if acc.is_empty() {
                        break;
                    }
                    let Expr::Not(inner) = n else { unreachable!("partitioned on Not") };
                    acc -= &*self.eval_cow(inner, today);
                }
                Cow::Owned(acc)
            }
            Expr::Or(xs) => {
                let mut acc = RoaringBitmap::new();
                for x in xs {
                    acc |= &*self.eval_cow(x, today);
                }
                Cow::Owned(acc)
            }
            Expr::Not(x) => Cow::Owned(&self.live - &*self.eval_cow(x, today)),
            Expr::Tag(t) => get(self.tags.get(t)),
            Expr::Lifecycle(s) => get(self.lifecycle.get(s)),
            Expr::Channel(c) => get(self.channels.get(c)),
            Expr::Staff(s) => get(self.staff.get(s)),
            Expr::Store(s) => get(self.store.get(s)),
            Expr::RfmSegment(s) => get(self.rfm_segment.get(s)),
            Expr::RfmScore { dim, min, max } => {
                let d = match dim {
                    RfmDim::R => 0,
                    RfmDim::F => 1,
                    RfmDim::M => 2,
                };
                let mut acc = RoaringBitmap::new();
                for score in (*min).max(1)..=(*max).min(5) {
                    acc |= &self.rfm_score[d][score as usize - 1];
                }
                Cow::Owned(acc)
            }
            Expr::Field { key, value } => get(self.fields.get(key).and_then(|m| m.get(value))),
            Expr::Range { metric, min, max } => Cow::Owned(match metric {
                Metric::Orders => self.orders.range(*min, *max),
                Metric::SpendFen => self.spend.range(*min, *max),
                // days ∈ [min, max] ⇔ last day ∈ [today − max, today − min].
                Metric::DaysSincePurchase => {
                    let lo = max.map(|m| today.saturating_sub(m));
                    let hi = Some(today.saturating_sub(min.unwrap_or(0)));
                    self.last_day.range(lo, hi)
                }
            }),
            Expr::Segment(_) => Cow::Borrowed(&self.empty),
        }
    }

    /// Approximate heap held by the bitmaps, in bytes.
    pub fn bytes(&self) -> u64 {
        let sum = |m: &mut dyn Iterator<Item = &RoaringBitmap>| m.map(|b| b.serialized_size() as u64).sum::<u64>();
        sum(&mut std::iter::once(&self.live))
            + sum(&mut self.tags.values())
            + sum(&mut self.lifecycle.values())
            + sum(&mut self.channels.values())
            + sum(&mut self.staff.values())
            + sum(&mut self.store.values())
            + sum(&mut self.rfm_segment.values())
            + sum(&mut self.rfm_score.iter().flatten())
            + sum(&mut self.fields.values().flat_map(|m| m.values()))
            + self.orders.bytes()
            + self.spend.bytes()
            + self.last_day.bytes()
    }
}

/// Up to `limit` members in descending order, strictly below `before` when given: the pages
/// of a segment's member list, newest customers first.
pub fn page_desc(members: &RoaringBitmap, before: Option<u32>, limit: usize) -> Vec<u32> {
    let mut remaining = match before {
        Some(0) => 0,
        Some(b) => members.rank(b - 1),
        None => members.len(),
    };
    let mut out = Vec::with_capacity(limit.min(remaining as usize));
    while remaining > 0 && out.len() < limit {
        remaining -= 1;
        out.push(members.select(remaining as u32).expect("rank within length"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customers::rfm::{Scored, Scores, Segment};
    use crate::customers::segment::matches;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};
    use uuid::Uuid;

    const TAGS: u128 = 6;
    const STAGES: [&str; 3] = ["new", "deal", "lost"];
    const CHANNELS: [&str; 3] = ["c:a", "c:b", "c:c"];
    const TODAY: i64 = 20_000;

    fn tag(i: u128) -> TagId {
        TagId(Uuid::from_u128(i + 1))
    }
    fn staff(i: u128) -> StaffId {
        StaffId(Uuid::from_u128(100 + i))
    }
    fn store(i: u128) -> StoreId {
        StoreId(Uuid::from_u128(200 + i))
    }

    fn facts() -> impl Strategy<Value = Facts> {
        (
            proptest::collection::btree_set(0..TAGS, 0..4),
            0..STAGES.len(),
            proptest::collection::btree_set(0..CHANNELS.len(), 0..3),
            proptest::option::of(0u128..3),
            proptest::option::of(0u128..2),
            proptest::option::of((1u8..=5, 1u8..=5, 1u8..=5, 0usize..8)),
            proptest::option::of(0..3usize),
            (0i64..6, prop_oneof![0i64..50, 0i64..5_000_000_000], proptest::option::of(19_000i64..=TODAY)),
        )
            .prop_map(|(tags, stage, chans, st, so, rfm, city, (orders, spend, last))| Facts {
                tags: tags.into_iter().map(tag).collect(),
                lifecycle: STAGES[stage].to_string(),
                channels: chans.into_iter().map(|c| CHANNELS[c].to_string()).collect::<BTreeSet<_>>(),
                staff: st.map(staff),
                store: so.map(store),
                rfm: rfm.map(|(r, f, m, s)| Scored { scores: Scores { r, f, m }, segment: Segment::ALL[s] }),
                fields: city.map(|c| BTreeMap::from([("city".to_string(), format!("city{c}"))])).unwrap_or_default(),
                orders,
                spend_fen: spend,
                last_purchase_day: last,
            })
    }

    fn leaf() -> impl Strategy<Value = Expr> {
        let bound = || proptest::option::of(prop_oneof![0i64..60, 0i64..5_000_000_000, Just(-3i64)]);
        prop_oneof![
            Just(Expr::All),
            (0..TAGS + 1).prop_map(|t| Expr::Tag(tag(t))),
            (0..STAGES.len()).prop_map(|s| Expr::Lifecycle(STAGES[s].to_string())),
            (0..CHANNELS.len()).prop_map(|c| Expr::Channel(CHANNELS[c].to_string())),
            (0u128..4).prop_map(|s| Expr::Staff(staff(s))),
            (0u128..3).prop_map(|s| Expr::Store(store(s))),
            (0..8usize).prop_map(|s| Expr::RfmSegment(Segment::ALL[s])),
            (0..3usize, 1u8..=5, 1u8..=5).prop_map(|(d, a, b)| Expr::RfmScore {
                dim: [RfmDim::R, RfmDim::F, RfmDim::M][d],
                min: a.min(b),
                max: a.max(b)
            }),
            (0..4usize).prop_map(|c| Expr::Field { key: "city".into(), value: format!("city{c}") }),
            (0..3usize, bound(), bound()).prop_map(|(m, min, max)| Expr::Range {
                metric: [Metric::Orders, Metric::SpendFen, Metric::DaysSincePurchase][m],
                min,
                max
            }),
        ]
    }

    fn expr() -> impl Strategy<Value = Expr> {
        leaf().prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 1..4).prop_map(Expr::And),
                proptest::collection::vec(inner.clone(), 1..4).prop_map(Expr::Or),
                inner.prop_map(|x| Expr::Not(Box::new(x))),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The index, built and then changed (re-set and cleared customers), agrees with the
        /// brute-force meaning on every expression: members and count.
        #[test]
        fn index_equals_brute_force(
            people in proptest::collection::vec(facts(), 0..40),
            updates in proptest::collection::vec((0usize..40, proptest::option::of(facts())), 0..15),
            exprs in proptest::collection::vec(expr(), 1..6),
        ) {
            let mut truth: BTreeMap<u32, Facts> = BTreeMap::new();
            let mut idx = SegmentIndex::new();
            for (i, f) in people.iter().enumerate() {
                idx.insert(i as u32 * 3, f);
                truth.insert(i as u32 * 3, f.clone());
            }
            for (i, f) in updates {
                let num = i as u32 * 3;
                match f {
                    Some(f) => { idx.set(num, &f); truth.insert(num, f); }
                    None => { idx.clear(num); truth.remove(&num); }
                }
            }
            prop_assert_eq!(idx.len(), truth.len() as u64);
            for e in &exprs {
                let want: Vec<u32> = truth.iter().filter(|(_, f)| matches(e, f, TODAY)).map(|(n, _)| *n).collect();
                let got: Vec<u32> = idx.eval(e, TODAY).iter().collect();
                prop_assert_eq!(&got, &want, "expr {:?}", e);
                prop_assert_eq!(idx.count(e, TODAY), want.len() as u64);
            }
        }

        #[test]
        fn bsi_ranges_equal_comparisons(
            values in proptest::collection::vec(prop_oneof![0u64..40, 0u64..u64::from(u32::MAX), Just(u64::MAX >> 1)], 0..50),
            lo in prop_oneof![0u64..45, 0u64..u64::from(u32::MAX)],
            hi in prop_oneof![0u64..45, 0u64..u64::from(u32::MAX), Just(u64::MAX)],
        ) {
            let mut b = Bsi::default();
            for (i, v) in values.iter().enumerate() {
                b.set(i as u32, *v);
            }
            for (i, v) in values.iter().enumerate() {
                prop_assert_eq!(b.get(i as u32), Some(*v));
            }
            let ge: Vec<u32> = (0..values.len() as u32).filter(|i| values[*i as usize] >= lo).collect();
            let le: Vec<u32> = (0..values.len() as u32).filter(|i| values[*i as usize] <= hi).collect();
            prop_assert_eq!(b.ge(lo).iter().collect::<Vec<_>>(), ge);
            prop_assert_eq!(b.le(hi).iter().collect::<Vec<_>>(), le);
        }

        #[test]
        fn pages_walk_every_member_once_in_descending_order(
            members in proptest::collection::btree_set(0u32..5_000, 0..300),
            limit in 1usize..40,
        ) {
            let bm: RoaringBitmap = members.iter().copied().collect();
            let mut seen = Vec::new();
            let mut before = None;
            loop {
                let page = page_desc(&bm, before, limit);
                if page.is_empty() { break; }
                prop_assert!(page.len() <= limit);
                before = page.last().copied();
                seen.extend(page);
            }
            let want: Vec<u32> = members.iter().rev().copied().collect();
            prop_assert_eq!(seen, want);
        }
    }

    #[test]
    fn clearing_forgets_every_fact() {
        let mut idx = SegmentIndex::new();
        let f = Facts {
            tags: [tag(0)].into(),
            lifecycle: "new".into(),
            staff: Some(staff(0)),
            orders: 3,
            last_purchase_day: Some(TODAY - 2),
            ..Facts::default()
        };
        idx.insert(7, &f);
        assert_eq!(idx.count(&Expr::Tag(tag(0)), TODAY), 1);
        idx.clear(7);
        for e in [
            Expr::All,
            Expr::Tag(tag(0)),
            Expr::Lifecycle("new".into()),
            Expr::Staff(staff(0)),
            Expr::Range { metric: Metric::Orders, min: Some(0), max: None },
            Expr::Range { metric: Metric::DaysSincePurchase, min: None, max: Some(10) },
        ] {
            assert_eq!(idx.count(&e, TODAY), 0, "{e:?}");
        }
        assert!(idx.is_empty());
    }
}
