//! Exact allocation of an order-level amount to lines by largest remainder (commerce-rules
//! §4.3). Every discount, coupon, points deduction and bundle price is split with this one
//! routine, so shares always add up to the total to the fen, refunds and commissions read
//! stored per-line and per-unit amounts, and nothing is re-apportioned later.

/// Why an allocation was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    #[error("weights must not be negative")]
    NegativeWeight,
    #[error("the total must be between 0 and the sum of the weights")]
    TotalOutOfRange,
}

/// Splits `total` over `weights` in proportion: ⌊total·wᵢ/W⌋ each, then one more fen to the
/// entries with the largest remainders (ties to the lower index) until the total is met.
/// Σ shares = total exactly, 0 ≤ shareᵢ ≤ wᵢ, and a zero weight gets zero.
pub fn allocate(weights: &[i64], total: i64) -> Result<Vec<i64>, AllocError> {
    if weights.iter().any(|w| *w < 0) {
        return Err(AllocError::NegativeWeight);
    }
    let sum: i128 = weights.iter().map(|w| *w as i128).sum();
    if total < 0 || total as i128 > sum {
        return Err(AllocError::TotalOutOfRange);
    }
    if sum == 0 {
        return Ok(vec![0; weights.len()]);
    }
    // Multiply before dividing, in i128, so no product overflows and no ratio is rounded early.
    let mut shares: Vec<i64> = Vec::with_capacity(weights.len());
    let mut rems: Vec<(i128, usize)> = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let p = total as i128 * *w as i128;
        shares.push((p / sum) as i64);
        rems.push((p % sum, i));
    }
    let mut left = total - shares.iter().sum::<i64>();
    // Largest remainder first; equal remainders go to the lower index (stable line order).
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (rem, i) in rems {
        if left == 0 {
            break;
        }
        if weights[i] > 0 && rem > 0 {
            shares[i] += 1;
            left -= 1;
        }
    }
    debug_assert_eq!(left, 0, "fewer leftover fen than entries with a remainder");
    Ok(shares)
}

/// A line's share spread over its units, weighted by unit amount (AL-2).
pub fn per_unit(unit_amounts: &[i64], line_share: i64) -> Result<Vec<i64>, AllocError> {
    allocate(unit_amounts, line_share)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_worked_example() {
        // A ¥10.00 coupon over 3 × ¥10.00 and 1 × ¥5.00: bases 857 and 142, and the second
        // line's larger remainder takes the last fen.
        assert_eq!(allocate(&[3000, 500], 1000).unwrap(), vec![857, 143]);
        // The first line's 857 over its three units.
        assert_eq!(per_unit(&[1000, 1000, 1000], 857).unwrap(), vec![286, 286, 285]);
    }

    #[test]
    fn edges() {
        assert_eq!(allocate(&[0, 0], 0).unwrap(), vec![0, 0]);
        assert_eq!(allocate(&[5, 0, 5], 10).unwrap(), vec![5, 0, 5]);
        assert_eq!(allocate(&[1, 1, 1], 2).unwrap(), vec![1, 1, 0], "ties go to the lower index");
        assert_eq!(allocate(&[3, -1], 1), Err(AllocError::NegativeWeight));
        assert_eq!(allocate(&[3, 1], 5), Err(AllocError::TotalOutOfRange));
        assert_eq!(allocate(&[3, 1], -1), Err(AllocError::TotalOutOfRange));
        assert_eq!(
            allocate(&[i64::MAX, i64::MAX], i64::MAX).unwrap().iter().map(|x| *x as i128).sum::<i128>(),
            i64::MAX as i128
        );
    }

    proptest! {
        #[test]
        fn shares_sum_exactly_and_stay_within_their_weights(
            weights in proptest::collection::vec(0i64..1_000_000, 1..20),
            frac in 0.0f64..=1.0,
        ) {
            let sum: i64 = weights.iter().sum();
            let total = (sum as f64 * frac) as i64;
            let shares = allocate(&weights, total).unwrap();
            prop_assert_eq!(shares.iter().sum::<i64>(), total);
            for (s, w) in shares.iter().zip(&weights) {
                prop_assert!(0 <= *s && s <= w);
                if *w == 0 { prop_assert_eq!(*s, 0); }
            }
            // Deterministic.
            prop_assert_eq!(shares, allocate(&weights, total).unwrap());
        }

        #[test]
        fn each_share_is_within_one_fen_of_the_exact_proportion(weights in proptest::collection::vec(1i64..100_000, 1..12), total_frac in 0u32..=1000) {
            let sum: i64 = weights.iter().sum();
            let total = (sum as i128 * total_frac as i128 / 1000) as i64;
            let shares = allocate(&weights, total).unwrap();
            for (s, w) in shares.iter().zip(&weights) {
                let exact_floor = (total as i128 * *w as i128 / sum as i128) as i64;
                prop_assert!(*s == exact_floor || *s == exact_floor + 1);
            }
        }
    }
}
