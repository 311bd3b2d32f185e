//! RFM scoring and the eight-segment model, exactly as analytics.md §8 defines them.
//!
//! Scores are quintiles by rank with ties sharing a score: for each customer, k is the number
//! of customers strictly worse on that dimension and the score is ⌈5(k+1)/n⌉. High/low in the
//! eight segments compares raw values with the population mean, equality counting as high,
//! in exact integer arithmetic. Better means lower R (days since last purchase), higher F
//! (orders) and higher M (fen).

use serde::Serialize;

/// One customer's raw values. R is in whole days (≥ 1), M in fen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Raw {
    pub r_days: i64,
    pub f: i64,
    pub m_fen: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Scores {
    pub r: u8,
    pub f: u8,
    pub m: u8,
}

impl Scores {
    /// The code in R, F, M order, e.g. "534".
    pub fn code(&self) -> String {
        format!("{}{}{}", self.r, self.f, self.m)
    }
    /// A sortable total: 100·R + 10·F + M.
    pub fn total(&self) -> u16 {
        100 * self.r as u16 + 10 * self.f as u16 + self.m as u16
    }
}

/// The eight segments (八类客户).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// 重要价值客户: R high, F high, M high.
    ImportantValue,
    /// 重要发展客户: R high, F low, M high.
    ImportantDevelop,
    /// 重要保持客户: R low, F high, M high.
    ImportantKeep,
    /// 重要挽留客户: R low, F low, M high.
    ImportantRetain,
    /// 一般价值客户: R high, F high, M low.
    GeneralValue,
    /// 一般发展客户: R high, F low, M low.
    GeneralDevelop,
    /// 一般保持客户: R low, F high, M low.
    GeneralKeep,
    /// 一般挽留客户: R low, F low, M low.
    GeneralRetain,
}

impl Segment {
    pub const ALL: [Segment; 8] = [
        Segment::ImportantValue,
        Segment::ImportantDevelop,
        Segment::ImportantKeep,
        Segment::ImportantRetain,
        Segment::GeneralValue,
        Segment::GeneralDevelop,
        Segment::GeneralKeep,
        Segment::GeneralRetain,
    ];

    pub fn from_highs(r: bool, f: bool, m: bool) -> Segment {
        match (r, f, m) {
            (true, true, true) => Segment::ImportantValue,
            (true, false, true) => Segment::ImportantDevelop,
            (false, true, true) => Segment::ImportantKeep,
            (false, false, true) => Segment::ImportantRetain,
            (true, true, false) => Segment::GeneralValue,
            (true, false, false) => Segment::GeneralDevelop,
            (false, true, false) => Segment::GeneralKeep,
            (false, false, false) => Segment::GeneralRetain,
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            Segment::ImportantValue => "重要价值客户",
            Segment::ImportantDevelop => "重要发展客户",
            Segment::ImportantKeep => "重要保持客户",
            Segment::ImportantRetain => "重要挽留客户",
            Segment::GeneralValue => "一般价值客户",
            Segment::GeneralDevelop => "一般发展客户",
            Segment::GeneralKeep => "一般保持客户",
            Segment::GeneralRetain => "一般挽留客户",
        }
    }
}

/// ⌈5(k+1)/n⌉ for each value, where k counts values strictly worse. `better_is_lower` for R.
pub fn quintile_scores(values: &[i64], better_is_lower: bool) -> Vec<u8> {
    let n = values.len() as i64;
    if n == 0 {
        return vec![];
    }
    // Sort worst-first; k of a value is the number of values before its first occurrence.
    let mut sorted: Vec<i64> = values.to_vec();
    if better_is_lower {
        sorted.sort_unstable_by(|a, b| b.cmp(a));
    } else {
        sorted.sort_unstable();
    }
    values
        .iter()
        .map(|v| {
            let k = if better_is_lower { sorted.partition_point(|x| x > v) } else { sorted.partition_point(|x| x < v) }
                as i64;
            ((5 * (k + 1) + n - 1) / n) as u8
        })
        .collect()
}

/// How high/low is decided. Every variant counts equality as high (analytics.md §8.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Centre {
    /// The population mean of the raw values (the default).
    #[default]
    Mean,
    /// Fixed thresholds: R ≤ days, F ≥ orders, M ≥ fen are high.
    Fixed { r_days: i64, f: i64, m_fen: i64 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Scored {
    pub scores: Scores,
    pub segment: Segment,
}

/// Scores and segments a population; output is in input order and independent of it.
pub fn score(pop: &[Raw], centre: Centre) -> Vec<Scored> {
    let n = pop.len() as i128;
    let rs = quintile_scores(&pop.iter().map(|x| x.r_days).collect::<Vec<_>>(), true);
    let fs = quintile_scores(&pop.iter().map(|x| x.f).collect::<Vec<_>>(), false);
    let ms = quintile_scores(&pop.iter().map(|x| x.m_fen).collect::<Vec<_>>(), false);
    let (sum_r, sum_f, sum_m) = pop
        .iter()
        .fold((0i128, 0i128, 0i128), |(a, b, c), x| (a + x.r_days as i128, b + x.f as i128, c + x.m_fen as i128));
    pop.iter()
        .enumerate()
        .map(|(i, x)| {
            let (r_high, f_high, m_high) = match centre {
                // Exactly: R ≤ mean ⇔ n·R ≤ ΣR, and likewise for F and M.
                Centre::Mean => (n * x.r_days as i128 <= sum_r, n * x.f as i128 >= sum_f, n * x.m_fen as i128 >= sum_m),
                Centre::Fixed { r_days, f, m_fen } => (x.r_days <= r_days, x.f >= f, x.m_fen >= m_fen),
            };
            Scored {
                scores: Scores { r: rs[i], f: fs[i], m: ms[i] },
                segment: Segment::from_highs(r_high, f_high, m_high),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn worked_examples_from_the_brief() {
        // F over n = 10: score 2 is empty.
        assert_eq!(quintile_scores(&[1, 1, 1, 1, 2, 2, 3, 4, 5, 9], false), vec![1, 1, 1, 1, 3, 3, 4, 4, 5, 5]);
        // R over n = 5 (lower is better): score 4 is empty.
        assert_eq!(quintile_scores(&[3, 10, 10, 40, 200], true), vec![5, 3, 3, 2, 1]);
    }

    #[test]
    fn equal_to_the_mean_counts_as_high() {
        // Mean F = 2 exactly: F = 2 is high.
        let pop = [
            Raw { r_days: 5, f: 1, m_fen: 100 },
            Raw { r_days: 5, f: 2, m_fen: 100 },
            Raw { r_days: 5, f: 3, m_fen: 100 },
        ];
        let s = score(&pop, Centre::Mean);
        assert_eq!(s[1].segment, Segment::ImportantValue, "R, F and M all equal or better than the mean");
        assert_eq!(s[0].segment, Segment::ImportantDevelop);
        // n = 1, or all equal: everyone is high everywhere.
        assert_eq!(score(&[Raw { r_days: 9, f: 1, m_fen: 1 }], Centre::Mean)[0].segment, Segment::ImportantValue);
    }

    #[test]
    fn fixed_thresholds_and_codes() {
        let s = score(&[Raw { r_days: 30, f: 3, m_fen: 19_999 }], Centre::Fixed { r_days: 30, f: 3, m_fen: 20_000 });
        assert_eq!(s[0].segment, Segment::GeneralValue);
        assert_eq!(Scores { r: 5, f: 3, m: 4 }.code(), "534");
        assert_eq!(Scores { r: 5, f: 3, m: 4 }.total(), 534);
    }

    fn brute(values: &[i64], lower_better: bool) -> Vec<u8> {
        let n = values.len() as i64;
        values
            .iter()
            .map(|v| {
                let k = values.iter().filter(|x| if lower_better { *x > v } else { *x < v }).count() as i64;
                ((5 * (k + 1) + n - 1) / n) as u8
            })
            .collect()
    }

    proptest! {
        #[test]
        fn scores_match_the_definition_and_ignore_order(values in proptest::collection::vec(0i64..20, 1..80), lower in any::<bool>()) {
            let got = quintile_scores(&values, lower);
            prop_assert_eq!(&got, &brute(&values, lower));
            prop_assert!(got.iter().all(|s| (1..=5).contains(s)));
            // Permuting the input permutes the output.
            let mut rev = values.clone();
            rev.reverse();
            let mut got_rev = quintile_scores(&rev, lower);
            got_rev.reverse();
            prop_assert_eq!(got, got_rev);
        }

        #[test]
        fn every_customer_lands_in_exactly_one_segment(pop in proptest::collection::vec((1i64..400, 1i64..30, 1i64..1_000_000), 1..60)) {
            let pop: Vec<Raw> = pop.into_iter().map(|(r_days, f, m_fen)| Raw { r_days, f, m_fen }).collect();
            let s = score(&pop, Centre::Mean);
            prop_assert_eq!(s.len(), pop.len());
            let total: usize = Segment::ALL.iter().map(|seg| s.iter().filter(|x| x.segment == *seg).count()).sum();
            prop_assert_eq!(total, pop.len());
        }
    }
}
