//! The single price pipeline (commerce-rules §4): the quote endpoint and order submission both
//! call [`quote`], so what checkout shows is what the order stores (PC-4).
//!
//! Every amount is held per unit, in fen. A step either changes unit prices directly (member
//! price, activity price, 第二件半价, bundles) or takes an order-level discount (满减/满折,
//! coupon, points) that is allocated to its eligible lines by largest remainder and each line's
//! share to its units (AL-1, AL-2). So after every step the per-unit amounts are exact, sum to
//! the order's amount, and are what refunds and commissions read later (AL-3). Each step
//! re-evaluates its threshold on the amounts left by the steps before it (PC-1), with one
//! eligible amount for both test and allocation (PC-2), and never takes more than that amount
//! (PC-3).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::allocate::allocate;

/// How many units one line may carry; a mall line beyond this is a mistake, not an order.
pub const MAX_QTY: u32 = 9_999;
/// The largest unit price accepted (¥10,000,000.00), so every product stays far from overflow.
pub const MAX_UNIT_FEN: i64 = 1_000_000_000;
/// 100 % in basis points.
pub const BP: i64 = 10_000;

/// Which marketing play, if any, prices a line. The play decides what else may apply to it
/// (STK-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// 限时折扣: replaces the price, and the line still takes 满减, coupons and points.
    LimitedDiscount,
    /// 秒杀.
    Flash,
    /// 拼团.
    GroupBuy,
    /// 砍价.
    Bargain,
    /// 预售 balance payment: coupons and points only when the presale opts in.
    PresaleBalance,
}

/// A play's price for one line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub kind: ActivityKind,
    /// The unit price the play sets.
    pub unit_price: i64,
    /// For a presale balance: whether coupons and points may apply (STK-2 "opt-in").
    #[serde(default)]
    pub allow_coupon_and_points: bool,
}

/// One cart line as priced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The SKU (or line) key, stable across quote and submit.
    pub sku: String,
    pub product: String,
    /// The product's categories with all their ancestors, for scopes.
    #[serde(default)]
    pub categories: Vec<String>,
    pub unit_list: i64,
    pub qty: u32,
    /// The paid-member (付费会员) price of this SKU, when it has one.
    #[serde(default)]
    pub paid_member_unit: Option<i64>,
    #[serde(default)]
    pub activity: Option<Activity>,
}

/// The buyer's price privileges (ML-2): the lower of the level price and the paid-member
/// price, never both.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The share of the list price a level pays, in bp (9,000 = 90 %, 九折).
    pub level_price_bp: Option<i64>,
    /// Whether the buyer is a paid member (付费会员) now.
    #[serde(default)]
    pub paid_member: bool,
}

/// Which lines a promotion or coupon applies to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// Products in scope; with `categories` also empty, every product is.
    #[serde(default)]
    pub products: Vec<String>,
    /// Categories in scope (a product in a descendant category is in scope).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Products never in scope.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl Scope {
    pub fn covers(&self, l: &Line) -> bool {
        if self.exclude.contains(&l.product) {
            return false;
        }
        (self.products.is_empty() && self.categories.is_empty())
            || self.products.contains(&l.product)
            || l.categories.iter().any(|c| self.categories.contains(c))
    }
}

/// 第二件半价 over a set of products (H2-1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondHalf {
    pub id: String,
    pub scope: Scope,
}

/// 组合套餐: these products in these quantities together cost `price` (BD-1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    pub id: String,
    pub components: Vec<(String, u32)>,
    pub price: i64,
}

/// An order-level promotion's rule (MJ-1, MJ-2, MS-1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum PromoRule {
    /// 满减 in tiers: the highest tier whose threshold is met applies.
    Tiers { tiers: Vec<(i64, i64)> },
    /// 每满减: `off` for every full `step`, at most `max_off`.
    Every { step: i64, off: i64, max_off: Option<i64> },
    /// 满折: `off_bp` off the eligible amount once it reaches `threshold`.
    Percent { threshold: i64, off_bp: i64 },
    /// 满送: a gift once the eligible amount reaches `threshold`.
    Gift { threshold: i64, sku: String, qty: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPromo {
    pub id: String,
    pub scope: Scope,
    pub rule: PromoRule,
}

/// What a coupon takes off (CP-5).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum CouponKind {
    /// 满X减Y (threshold 0: 无门槛).
    Amount { face: i64, threshold: i64 },
    /// `off_bp` off, at most `cap`.
    Percent { off_bp: i64, cap: Option<i64>, threshold: i64 },
    /// Off the shipping fee.
    Shipping { face: i64, threshold: i64 },
}

/// A coupon instance the buyer chose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coupon {
    pub id: String,
    pub kind: CouponKind,
    #[serde(default)]
    pub scope: Scope,
}

/// Points the buyer wants to spend, and the tenant's points rules (PT-1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Points {
    pub requested: i64,
    pub balance: i64,
    /// Points are spent in multiples of `unit_points`, each worth `unit_fen`.
    pub unit_points: i64,
    pub unit_fen: i64,
    pub per_order_cap: i64,
    /// Points may pay at most this share of the goods, in bp.
    pub max_bp: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipping {
    pub fee: i64,
    /// 包邮: no fee once the goods reach this amount (after coupons).
    pub free_from: Option<i64>,
}

/// Everything the price depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    pub lines: Vec<Line>,
    #[serde(default)]
    pub member: Member,
    #[serde(default)]
    pub second_half: Vec<SecondHalf>,
    #[serde(default)]
    pub bundles: Vec<Bundle>,
    #[serde(default)]
    pub promos: Vec<OrderPromo>,
    #[serde(default)]
    pub coupons: Vec<Coupon>,
    #[serde(default)]
    pub points: Option<Points>,
    #[serde(default)]
    pub shipping: Shipping,
}

/// A step of the pipeline, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    MemberPrice,
    ActivityPrice,
    SecondHalf,
    Bundle,
    FullReduction,
    FullPercent,
    Coupon,
    Points,
    ShippingCoupon,
}

/// What one step took off and from whom, with what the operator needs to explain it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub kind: StepKind,
    /// The promotion, bundle or coupon behind it.
    pub source: Option<String>,
    /// The amount the step's threshold was tested on (and allocated over).
    pub eligible: i64,
    /// The threshold that was met, when the step has one.
    pub threshold: Option<i64>,
    pub discount: i64,
    /// The discount per line (same order as the cart's lines).
    pub shares: Vec<i64>,
}

/// A priced line: its unit price after member and activity prices, and what each unit pays
/// for goods after every step (shipping is the order's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineQuote {
    pub sku: String,
    pub qty: u32,
    pub unit_list: i64,
    pub unit_price: i64,
    pub units: Vec<i64>,
    pub paid: i64,
}

/// A 满送 gift the order earns; stock for it is reserved with the order (MS-1, INV-4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gift {
    pub promo: String,
    pub sku: String,
    pub qty: u32,
}

/// Why the price is what it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Quote {
    pub lines: Vec<LineQuote>,
    pub steps: Vec<Step>,
    pub gifts: Vec<Gift>,
    /// The goods at list prices.
    pub list_total: i64,
    /// The goods after every step (points included).
    pub goods: i64,
    pub points_used: i64,
    pub points_fen: i64,
    pub shipping_fee: i64,
    pub shipping_discount: i64,
    pub payable: i64,
}

/// Why a cart cannot be priced as asked. Each names what to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(rename_all = "snake_case", tag = "code")]
pub enum PricingError {
    #[error("the cart is empty")]
    EmptyCart,
    #[error("line {line}: quantity must be 1 to {MAX_QTY}")]
    BadQuantity { line: usize },
    #[error("line {line}: prices must be 1 fen to {MAX_UNIT_FEN} fen")]
    BadPrice { line: usize },
    #[error("promotion {id} is not valid: {why}")]
    BadPromotion { id: String, why: &'static str },
    #[error("at most one goods coupon and one shipping coupon per order")]
    TooManyCoupons,
    #[error("coupon {id} cannot be used with flash sale, group-buy or bargain items")]
    CouponNotAllowed { id: String },
    #[error("coupon {id} applies to none of these items")]
    CouponOutOfScope { id: String },
    #[error("coupon {id} needs {threshold} fen of eligible goods; these come to {eligible}")]
    CouponThreshold { id: String, threshold: i64, eligible: i64 },
    #[error("points cannot pay for flash sale, group-buy or bargain items")]
    PointsNotAllowed,
    #[error("points are spent in multiples of {unit}")]
    PointsNotMultiple { unit: i64 },
    #[error("at most {max} points can be used on this order")]
    PointsOverLimit { max: i64 },
}

/// Kinds of line that take only their play's price (STK-2: no member price, 满减, coupon or
/// points).
fn closed_play(l: &Line) -> bool {
    matches!(
        l.activity.as_ref().map(|a| a.kind),
        Some(ActivityKind::Flash | ActivityKind::GroupBuy | ActivityKind::Bargain)
    )
}

/// Lines that take order promotions (满减/满折/满送): normal and 限时折扣 lines.
fn takes_order_promos(l: &Line) -> bool {
    matches!(l.activity.as_ref().map(|a| a.kind), None | Some(ActivityKind::LimitedDiscount))
}

/// Lines that take coupons and points.
fn takes_coupons(l: &Line) -> bool {
    match &l.activity {
        None => true,
        Some(a) => match a.kind {
            ActivityKind::LimitedDiscount => true,
            ActivityKind::PresaleBalance => a.allow_coupon_and_points,
            _ => false,
        },
    }
}

/// Floor of `amount × bp / 10000`, in i128 so nothing overflows.
fn bp_of(amount: i64, bp: i64) -> i64 {
    (amount as i128 * bp as i128 / BP as i128) as i64
}

struct Work<'a> {
    cart: &'a Cart,
    units: Vec<Vec<i64>>,
    steps: Vec<Step>,
}

impl Work<'_> {
    fn line_amount(&self, i: usize) -> i64 {
        self.units[i].iter().sum()
    }

    /// The amount of the lines `eligible` picks.
    fn eligible(&self, eligible: &[bool]) -> i64 {
        (0..self.units.len()).filter(|i| eligible[*i]).map(|i| self.line_amount(i)).sum()
    }

    /// Takes `discount` (≤ the eligible amount) off the eligible lines, by largest remainder
    /// over line amounts and then over each line's units, and records the step.
    fn take(&mut self, kind: StepKind, source: Option<&str>, eligible: &[bool], threshold: Option<i64>, discount: i64) {
        let weights: Vec<i64> =
            (0..self.units.len()).map(|i| if eligible[i] { self.line_amount(i) } else { 0 }).collect();
        let total: i64 = weights.iter().sum();
        let discount = discount.clamp(0, total);
        let shares = allocate(&weights, discount).expect("0 ≤ discount ≤ Σ weights by construction");
        for (i, share) in shares.iter().enumerate() {
            if *share > 0 {
                let per_unit = allocate(&self.units[i], *share).expect("a line's share is within its amount");
                for (u, cut) in self.units[i].iter_mut().zip(per_unit) {
                    *u -= cut;
                }
            }
        }
        if discount > 0 {
            self.steps.push(Step {
                kind,
                source: source.map(str::to_string),
                eligible: total,
                threshold,
                discount,
                shares,
            });
        }
    }

    /// Records a step that changed unit prices directly (per-line discounts given).
    fn direct(&mut self, kind: StepKind, source: Option<&str>, shares: Vec<i64>) {
        let discount: i64 = shares.iter().sum();
        if discount > 0 {
            self.steps.push(Step {
                kind,
                source: source.map(str::to_string),
                eligible: 0,
                threshold: None,
                discount,
                shares,
            });
        }
    }
}

fn check(cart: &Cart) -> Result<(), PricingError> {
    if cart.lines.is_empty() {
        return Err(PricingError::EmptyCart);
    }
    for (i, l) in cart.lines.iter().enumerate() {
        if l.qty == 0 || l.qty > MAX_QTY {
            return Err(PricingError::BadQuantity { line: i });
        }
        let ok = |p: i64| (1..=MAX_UNIT_FEN).contains(&p);
        if !ok(l.unit_list)
            || l.paid_member_unit.is_some_and(|p| !ok(p))
            || l.activity.as_ref().is_some_and(|a| !ok(a.unit_price))
        {
            return Err(PricingError::BadPrice { line: i });
        }
    }
    let bad = |id: &str, why| Err(PricingError::BadPromotion { id: id.to_string(), why });
    for p in &cart.promos {
        let valid = match &p.rule {
            PromoRule::Tiers { tiers } => !tiers.is_empty() && tiers.iter().all(|(t, off)| *t >= 0 && *off > 0),
            PromoRule::Every { step, off, max_off } => *step > 0 && *off > 0 && max_off.is_none_or(|m| m > 0),
            PromoRule::Percent { threshold, off_bp } => *threshold >= 0 && (1..BP).contains(off_bp),
            PromoRule::Gift { threshold, qty, .. } => *threshold >= 0 && *qty > 0,
        };
        if !valid {
            return bad(&p.id, "amounts must be positive and rates between 0 and 100 %");
        }
    }
    for b in &cart.bundles {
        if b.components.is_empty() || b.components.iter().any(|c| c.1 == 0) || b.price < 1 {
            return bad(&b.id, "a bundle needs components and a price of at least 1 fen");
        }
    }
    if let Some(m) = cart.member.level_price_bp {
        if !(1..=BP).contains(&m) {
            return bad("member", "a level price is 0-100 % of the list price");
        }
    }
    Ok(())
}

/// Prices a cart through every step in the order of commerce-rules §4.1.
pub fn quote(cart: &Cart) -> Result<Quote, PricingError> {
    check(cart)?;
    let n = cart.lines.len();
    let mut w =
        Work { cart, units: cart.lines.iter().map(|l| vec![l.unit_list; l.qty as usize]).collect(), steps: vec![] };

    // 2. Member price: the lower of level and paid-member price, never both, ≥ 1 fen; not on
    //    lines a play prices.
    let mut unit_price: Vec<i64> = cart.lines.iter().map(|l| l.unit_list).collect();
    let mut shares = vec![0; n];
    for (i, l) in cart.lines.iter().enumerate() {
        if l.activity.is_some() {
            continue;
        }
        let level = cart.member.level_price_bp.map(|bp| bp_of(l.unit_list, bp).max(1));
        let paid = l.paid_member_unit.filter(|_| cart.member.paid_member);
        let best = [level, paid].into_iter().flatten().min().map_or(l.unit_list, |p| p.min(l.unit_list));
        shares[i] = (l.unit_list - best) * l.qty as i64;
        unit_price[i] = best;
    }
    w.direct(StepKind::MemberPrice, None, shares);

    // 3. Activity price replaces the unit price.
    let mut shares = vec![0; n];
    for (i, l) in cart.lines.iter().enumerate() {
        if let Some(a) = &l.activity {
            let p = a.unit_price.min(l.unit_list);
            shares[i] = (l.unit_list - p) * l.qty as i64;
            unit_price[i] = p;
        }
    }
    w.direct(StepKind::ActivityPrice, None, shares);
    for (i, p) in unit_price.iter().enumerate() {
        w.units[i] = vec![*p; cart.lines[i].qty as usize];
    }

    // 4. Item promotions, on lines no play prices. A unit takes at most one of them.
    let mut promoted: Vec<Vec<bool>> = cart.lines.iter().map(|l| vec![false; l.qty as usize]).collect();
    for sh in &cart.second_half {
        second_half(&mut w, &mut promoted, sh);
    }
    for b in &cart.bundles {
        bundle(&mut w, &mut promoted, b);
    }

    // 5. Order promotions on their eligible lines, each tested on what is left (PC-1).
    let mut gifts = Vec::new();
    for p in &cart.promos {
        let eligible: Vec<bool> = cart.lines.iter().map(|l| takes_order_promos(l) && p.scope.covers(l)).collect();
        let amount = w.eligible(&eligible);
        match &p.rule {
            PromoRule::Tiers { tiers } => {
                if let Some((t, off)) = tiers.iter().filter(|(t, _)| amount >= *t).max_by_key(|(t, _)| *t) {
                    w.take(StepKind::FullReduction, Some(&p.id), &eligible, Some(*t), (*off).min(amount));
                }
            }
            PromoRule::Every { step, off, max_off } => {
                let mut d = (amount / step).saturating_mul(*off);
                if let Some(m) = max_off {
                    d = d.min(*m);
                }
                if d > 0 {
                    w.take(StepKind::FullReduction, Some(&p.id), &eligible, Some(*step), d.min(amount));
                }
            }
            PromoRule::Percent { threshold, off_bp } => {
                if amount >= *threshold && amount > 0 {
                    w.take(StepKind::FullPercent, Some(&p.id), &eligible, Some(*threshold), bp_of(amount, *off_bp));
                }
            }
            PromoRule::Gift { threshold, sku, qty } => {
                if amount >= *threshold && amount > 0 {
                    gifts.push(Gift { promo: p.id.clone(), sku: sku.clone(), qty: *qty });
                }
            }
        }
    }

    // 6. At most one goods coupon and one shipping coupon (CP-6).
    let goods_coupons: Vec<&Coupon> =
        cart.coupons.iter().filter(|c| !matches!(c.kind, CouponKind::Shipping { .. })).collect();
    let ship_coupons: Vec<&Coupon> =
        cart.coupons.iter().filter(|c| matches!(c.kind, CouponKind::Shipping { .. })).collect();
    if goods_coupons.len() > 1 || ship_coupons.len() > 1 {
        return Err(PricingError::TooManyCoupons);
    }
    if let Some(c) = cart.coupons.first() {
        if cart.lines.iter().any(closed_play) {
            return Err(PricingError::CouponNotAllowed { id: c.id.clone() });
        }
    }
    if let Some(c) = goods_coupons.first() {
        let eligible: Vec<bool> = cart.lines.iter().map(|l| takes_coupons(l) && c.scope.covers(l)).collect();
        if !eligible.iter().any(|e| *e) {
            return Err(PricingError::CouponOutOfScope { id: c.id.clone() });
        }
        let amount = w.eligible(&eligible);
        let (threshold, d) = match c.kind {
            CouponKind::Amount { face, threshold } => (threshold, face.min(amount)),
            CouponKind::Percent { off_bp, cap, threshold } => {
                let d = bp_of(amount, off_bp.clamp(0, BP));
                (threshold, cap.map_or(d, |m| d.min(m)).min(amount))
            }
            CouponKind::Shipping { .. } => unreachable!("filtered above"),
        };
        if amount < threshold {
            return Err(PricingError::CouponThreshold { id: c.id.clone(), threshold, eligible: amount });
        }
        w.take(StepKind::Coupon, Some(&c.id), &eligible, Some(threshold), d);
    }
    let goods_after_coupons: i64 = (0..n).map(|i| w.line_amount(i)).sum();

    // 7. Points: whole units only, within balance, the per-order cap and max_bp of the goods.
    let (mut points_used, mut points_fen) = (0, 0);
    if let Some(p) = cart.points.as_ref().filter(|p| p.requested > 0) {
        if cart.lines.iter().any(|l| !takes_coupons(l)) {
            return Err(PricingError::PointsNotAllowed);
        }
        if p.unit_points <= 0 || p.unit_fen <= 0 || p.requested % p.unit_points != 0 {
            return Err(PricingError::PointsNotMultiple { unit: p.unit_points.max(1) });
        }
        let eligible = vec![true; n];
        let worth_cap = bp_of(w.eligible(&eligible), p.max_bp.clamp(0, BP));
        let max_units = [p.balance, p.per_order_cap].into_iter().min().unwrap_or(0).max(0) / p.unit_points;
        let max_units = max_units.min(worth_cap / p.unit_fen);
        let max = max_units * p.unit_points;
        if p.requested > max {
            return Err(PricingError::PointsOverLimit { max });
        }
        points_used = p.requested;
        points_fen = p.requested / p.unit_points * p.unit_fen;
        w.take(StepKind::Points, None, &eligible, None, points_fen);
    }

    // 8. Shipping: free from the threshold on the goods after coupons; then a shipping coupon.
    let fee = match cart.shipping.free_from {
        Some(t) if goods_after_coupons >= t => 0,
        _ => cart.shipping.fee.max(0),
    };
    let mut shipping_discount = 0;
    if let Some(c) = ship_coupons.first() {
        if let CouponKind::Shipping { face, threshold } = c.kind {
            if goods_after_coupons < threshold {
                return Err(PricingError::CouponThreshold {
                    id: c.id.clone(),
                    threshold,
                    eligible: goods_after_coupons,
                });
            }
            shipping_discount = face.clamp(0, fee);
            if shipping_discount > 0 {
                w.steps.push(Step {
                    kind: StepKind::ShippingCoupon,
                    source: Some(c.id.clone()),
                    eligible: fee,
                    threshold: Some(threshold),
                    discount: shipping_discount,
                    shares: vec![0; n],
                });
            }
        }
    }

    // 9. Payable.
    let lines: Vec<LineQuote> = cart
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| LineQuote {
            sku: l.sku.clone(),
            qty: l.qty,
            unit_list: l.unit_list,
            unit_price: unit_price[i],
            units: w.units[i].clone(),
            paid: w.line_amount(i),
        })
        .collect();
    let goods: i64 = lines.iter().map(|l| l.paid).sum();
    let list_total = cart.lines.iter().map(|l| l.unit_list * l.qty as i64).sum();
    Ok(Quote {
        lines,
        steps: w.steps,
        gifts,
        list_total,
        goods,
        points_used,
        points_fen,
        shipping_fee: fee,
        shipping_discount,
        payable: goods + fee - shipping_discount,
    })
}

/// Units a play does not price and no item promotion has taken yet: (line, unit) pairs.
fn open_units(w: &Work, promoted: &[Vec<bool>], scope: impl Fn(&Line) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, l) in w.cart.lines.iter().enumerate() {
        if l.activity.is_none() && scope(l) {
            out.extend((0..l.qty as usize).filter(|u| !promoted[i][*u]).map(|u| (i, u)));
        }
    }
    out
}

/// H2-1: units sorted by price descending (ties by line order) are paired (1,2), (3,4), …;
/// the cheaper of each pair takes half its price off, rounded down; an odd last unit pays in
/// full.
fn second_half(w: &mut Work, promoted: &mut [Vec<bool>], sh: &SecondHalf) {
    let mut units = open_units(w, promoted, |l| sh.scope.covers(l));
    units.sort_by(|a, b| w.units[b.0][b.1].cmp(&w.units[a.0][a.1]).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    let mut shares = vec![0; w.units.len()];
    for pair in units.chunks_exact(2) {
        let (i, u) = pair[1];
        let cut = bp_of(w.units[i][u], 5_000);
        w.units[i][u] -= cut;
        shares[i] += cut;
        for (i, u) in pair {
            promoted[*i][*u] = true;
        }
    }
    w.direct(StepKind::SecondHalf, Some(&sh.id), shares);
}

/// BD-1: while every component is present in its quantity, those units together cost the
/// bundle's price, split over them pro rata to their current price. A bundle cheaper than
/// nothing or dearer than its parts is not applied.
fn bundle(w: &mut Work, promoted: &mut [Vec<bool>], b: &Bundle) {
    let mut shares = vec![0; w.units.len()];
    loop {
        let mut picked = Vec::new();
        for (product, qty) in &b.components {
            let open = open_units(w, promoted, |l| &l.product == product);
            let open: Vec<_> = open.into_iter().filter(|p| !picked.contains(p)).take(*qty as usize).collect();
            if open.len() < *qty as usize {
                w.direct(StepKind::Bundle, Some(&b.id), shares);
                return;
            }
            picked.extend(open);
        }
        let amounts: Vec<i64> = picked.iter().map(|(i, u)| w.units[*i][*u]).collect();
        let sum: i64 = amounts.iter().sum();
        if b.price >= sum {
            w.direct(StepKind::Bundle, Some(&b.id), shares);
            return;
        }
        // The discount, split like the price: each unit keeps its pro-rata share of the price.
        let cuts = allocate(&amounts, sum - b.price).expect("0 < discount < Σ amounts");
        for ((i, u), cut) in picked.iter().zip(cuts) {
            w.units[*i][*u] -= cut;
            shares[*i] += cut;
            promoted[*i][*u] = true;
        }
    }
}

/// Which steps apply to which kind of line, for the console's explanation of STK-2.
pub fn allowed_steps(l: &Line) -> BTreeSet<StepKind> {
    let mut s = BTreeSet::new();
    if l.activity.is_none() {
        s.extend([StepKind::MemberPrice, StepKind::SecondHalf, StepKind::Bundle]);
    } else {
        s.insert(StepKind::ActivityPrice);
    }
    if takes_order_promos(l) {
        s.extend([StepKind::FullReduction, StepKind::FullPercent]);
    }
    if takes_coupons(l) {
        s.extend([StepKind::Coupon, StepKind::Points]);
    }
    s
}

#[cfg(test)]
mod tests;
