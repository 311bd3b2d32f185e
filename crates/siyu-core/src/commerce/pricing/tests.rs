use proptest::prelude::*;

use super::*;

fn line(sku: &str, unit: i64, qty: u32) -> Line {
    Line {
        sku: sku.into(),
        product: sku.into(),
        categories: vec![],
        unit_list: unit,
        qty,
        paid_member_unit: None,
        activity: None,
    }
}

fn cart(lines: Vec<Line>) -> Cart {
    Cart { lines, ..Default::default() }
}

fn amount_coupon(face: i64, threshold: i64) -> Coupon {
    Coupon { id: "c1".into(), kind: CouponKind::Amount { face, threshold }, scope: Scope::default() }
}

fn step(q: &Quote, kind: StepKind) -> Option<&Step> {
    q.steps.iter().find(|s| s.kind == kind)
}

#[test]
fn the_worked_coupon_allocation() {
    // commerce-rules §4.3: ¥10.00 over 3 × ¥10.00 and 1 × ¥5.00.
    let mut c = cart(vec![line("a", 1000, 3), line("b", 500, 1)]);
    c.coupons = vec![amount_coupon(1000, 0)];
    let q = quote(&c).unwrap();
    assert_eq!(step(&q, StepKind::Coupon).unwrap().shares, vec![857, 143]);
    assert_eq!(q.lines[0].units, vec![714, 714, 715], "857 over the units as 286/286/285");
    assert_eq!(q.lines[1].units, vec![357]);
    assert_eq!((q.goods, q.payable), (2500, 2500));
}

#[test]
fn second_item_half_price_pairs_by_price() {
    // H2-1: 3000, 2000, 2000, 1000 → (3000, 2000) and (2000, 1000) → 1000 + 500 off.
    let mut c = cart(vec![line("a", 2000, 2), line("b", 1000, 1), line("c", 3000, 1)]);
    c.second_half = vec![SecondHalf { id: "h".into(), scope: Scope::default() }];
    let q = quote(&c).unwrap();
    assert_eq!(step(&q, StepKind::SecondHalf).unwrap().discount, 1500);
    // A 999 unit paired with a dearer one takes 499 off; an odd last unit pays in full.
    let mut c = cart(vec![line("a", 1500, 1), line("b", 999, 1), line("c", 100, 1)]);
    c.second_half = vec![SecondHalf { id: "h".into(), scope: Scope::default() }];
    let q = quote(&c).unwrap();
    assert_eq!(q.lines[1].units, vec![500]);
    assert_eq!(q.lines[2].units, vec![100]);
}

#[test]
fn member_price_is_the_lower_never_both_and_never_on_plays() {
    let mut a = line("a", 999, 1);
    a.paid_member_unit = Some(850);
    let mut flash = line("f", 2000, 1);
    flash.activity = Some(Activity { kind: ActivityKind::Flash, unit_price: 990, allow_coupon_and_points: false });
    let mut c = cart(vec![a, line("b", 1000, 2), flash]);
    c.member = Member { level_price_bp: Some(9000), paid_member: true };
    let q = quote(&c).unwrap();
    assert_eq!(q.lines[0].unit_price, 850, "paid-member price beats 九折 (899)");
    assert_eq!(q.lines[1].unit_price, 900);
    assert_eq!(q.lines[2].unit_price, 990, "the play's price, no member price on top");
    assert_eq!(step(&q, StepKind::MemberPrice).unwrap().shares, vec![149, 200, 0]);
    assert_eq!(step(&q, StepKind::ActivityPrice).unwrap().shares, vec![0, 0, 1010]);
    // A tiny price never rounds to zero.
    let mut c = cart(vec![line("a", 1, 1)]);
    c.member.level_price_bp = Some(1);
    assert_eq!(quote(&c).unwrap().lines[0].unit_price, 1);
}

#[test]
fn thresholds_are_exact_in_fen() {
    let promo = |t| OrderPromo {
        id: "mj".into(),
        scope: Scope::default(),
        rule: PromoRule::Tiers { tiers: vec![(t, 1000), (t * 2, 2500)] },
    };
    let mut c = cart(vec![line("a", 9999, 1)]);
    c.promos = vec![promo(10_000)];
    assert!(step(&quote(&c).unwrap(), StepKind::FullReduction).is_none(), "¥99.99 does not meet 满100");
    c.lines[0].unit_list = 10_000;
    assert_eq!(step(&quote(&c).unwrap(), StepKind::FullReduction).unwrap().discount, 1000);
    c.lines[0].unit_list = 20_000;
    assert_eq!(step(&quote(&c).unwrap(), StepKind::FullReduction).unwrap().discount, 2500, "only the highest tier");
    // 每满 100 减 10, at most 25.
    c.promos = vec![OrderPromo {
        id: "e".into(),
        scope: Scope::default(),
        rule: PromoRule::Every { step: 10_000, off: 1000, max_off: Some(2500) },
    }];
    c.lines[0].unit_list = 29_999;
    assert_eq!(step(&quote(&c).unwrap(), StepKind::FullReduction).unwrap().discount, 2000);
    c.lines[0].unit_list = 50_000;
    assert_eq!(step(&quote(&c).unwrap(), StepKind::FullReduction).unwrap().discount, 2500);
    // The coupon threshold is tested after 满减 (CP-4): 10,000 − 1,000 no longer meets 满100.
    c.lines[0].unit_list = 10_000;
    c.promos = vec![promo(10_000)];
    c.coupons = vec![amount_coupon(500, 10_000)];
    assert_eq!(
        quote(&c).unwrap_err(),
        PricingError::CouponThreshold { id: "c1".into(), threshold: 10_000, eligible: 9_000 }
    );
}

#[test]
fn percentage_coupon_with_cap_and_scopes() {
    let mut a = line("a", 5000, 1);
    a.categories = vec!["tea".into(), "drinks".into()];
    let mut c = cart(vec![a, line("b", 5000, 1)]);
    c.coupons = vec![Coupon {
        id: "p".into(),
        kind: CouponKind::Percent { off_bp: 2000, cap: Some(800), threshold: 0 },
        scope: Scope { categories: vec!["drinks".into()], ..Default::default() },
    }];
    let q = quote(&c).unwrap();
    let s = step(&q, StepKind::Coupon).unwrap();
    assert_eq!((s.discount, s.shares.clone()), (800, vec![800, 0]), "20 % of 5,000 capped at 800, drinks only");
    c.coupons[0].scope = Scope { categories: vec!["snacks".into()], ..Default::default() };
    assert_eq!(quote(&c).unwrap_err(), PricingError::CouponOutOfScope { id: "p".into() });
    c.coupons[0].scope = Scope { exclude: vec!["a".into(), "b".into()], ..Default::default() };
    assert_eq!(quote(&c).unwrap_err(), PricingError::CouponOutOfScope { id: "p".into() });
}

#[test]
fn plays_refuse_coupons_and_points() {
    let mut g = line("g", 3000, 1);
    g.activity = Some(Activity { kind: ActivityKind::GroupBuy, unit_price: 1990, allow_coupon_and_points: false });
    let mut c = cart(vec![g]);
    c.promos = vec![OrderPromo {
        id: "mj".into(),
        scope: Scope::default(),
        rule: PromoRule::Tiers { tiers: vec![(1000, 500)] },
    }];
    let q = quote(&c).unwrap();
    assert!(step(&q, StepKind::FullReduction).is_none(), "no 满减 on a group-buy line");
    assert_eq!(q.payable, 1990);
    c.coupons = vec![amount_coupon(100, 0)];
    assert_eq!(quote(&c).unwrap_err(), PricingError::CouponNotAllowed { id: "c1".into() });
    c.coupons.clear();
    c.points = Some(Points {
        requested: 100,
        balance: 1000,
        unit_points: 100,
        unit_fen: 100,
        per_order_cap: 1000,
        max_bp: 5000,
    });
    assert_eq!(quote(&c).unwrap_err(), PricingError::PointsNotAllowed);
    // A presale balance takes them only when the presale opts in.
    let mut p = line("p", 3000, 1);
    p.activity = Some(Activity { kind: ActivityKind::PresaleBalance, unit_price: 2000, allow_coupon_and_points: true });
    let mut c = cart(vec![p]);
    c.coupons = vec![amount_coupon(100, 0)];
    assert_eq!(quote(&c).unwrap().payable, 1900);
}

#[test]
fn points_spend_whole_units_within_every_limit() {
    let mut c = cart(vec![line("a", 10_000, 1)]);
    let pts = |requested| Points {
        requested,
        balance: 5_000,
        unit_points: 100,
        unit_fen: 100,
        per_order_cap: 3_000,
        max_bp: 2_000,
    };
    // 20 % of 10,000 fen = 2,000 fen = 2,000 points; the per-order cap is 3,000; balance 5,000.
    c.points = Some(pts(2_100));
    assert_eq!(quote(&c).unwrap_err(), PricingError::PointsOverLimit { max: 2_000 });
    c.points = Some(pts(150));
    assert_eq!(quote(&c).unwrap_err(), PricingError::PointsNotMultiple { unit: 100 });
    c.points = Some(pts(2_000));
    let q = quote(&c).unwrap();
    assert_eq!((q.points_used, q.points_fen, q.payable), (2_000, 2_000, 8_000));
}

#[test]
fn shipping_is_free_on_goods_after_coupons_and_a_shipping_coupon_is_capped() {
    let mut c = cart(vec![line("a", 10_000, 1)]);
    c.shipping = Shipping { fee: 800, free_from: Some(10_000) };
    assert_eq!(quote(&c).unwrap().payable, 10_000, "包邮 at exactly the threshold");
    c.coupons = vec![amount_coupon(100, 0)];
    let q = quote(&c).unwrap();
    assert_eq!((q.shipping_fee, q.payable), (800, 10_700), "the coupon drops the goods below 包邮");
    c.coupons.push(Coupon {
        id: "s".into(),
        kind: CouponKind::Shipping { face: 1000, threshold: 0 },
        scope: Scope::default(),
    });
    let q = quote(&c).unwrap();
    assert_eq!((q.shipping_discount, q.payable), (800, 9_900));
    c.coupons.push(amount_coupon(50, 0));
    assert_eq!(quote(&c).unwrap_err(), PricingError::TooManyCoupons);
}

#[test]
fn bundles_and_gifts() {
    let mut c = cart(vec![line("a", 1000, 3), line("b", 500, 1)]);
    c.bundles = vec![Bundle { id: "set".into(), components: vec![("a".into(), 1), ("b".into(), 1)], price: 1200 }];
    let q = quote(&c).unwrap();
    // One bundle (only one b): 1,500 → 1,200, the 300 split 200/100 by price.
    assert_eq!(step(&q, StepKind::Bundle).unwrap().shares, vec![200, 100]);
    assert_eq!(q.lines[0].units, vec![800, 1000, 1000]);
    // A bundle dearer than its parts never applies.
    c.bundles[0].price = 2000;
    assert!(step(&quote(&c).unwrap(), StepKind::Bundle).is_none());
    c.promos = vec![OrderPromo {
        id: "ms".into(),
        scope: Scope::default(),
        rule: PromoRule::Gift { threshold: 3_500, sku: "gift".into(), qty: 1 },
    }];
    assert_eq!(quote(&c).unwrap().gifts, vec![Gift { promo: "ms".into(), sku: "gift".into(), qty: 1 }]);
    c.lines[1].qty = 0;
    assert_eq!(quote(&c).unwrap_err(), PricingError::BadQuantity { line: 1 });
}

#[test]
fn bad_input_is_refused() {
    assert_eq!(quote(&Cart::default()).unwrap_err(), PricingError::EmptyCart);
    assert_eq!(quote(&cart(vec![line("a", 0, 1)])).unwrap_err(), PricingError::BadPrice { line: 0 });
    let mut c = cart(vec![line("a", 100, 1)]);
    c.promos = vec![OrderPromo {
        id: "x".into(),
        scope: Scope::default(),
        rule: PromoRule::Percent { threshold: 0, off_bp: 10_000 },
    }];
    assert!(matches!(quote(&c).unwrap_err(), PricingError::BadPromotion { .. }));
}

fn arb_line() -> impl Strategy<Value = Line> {
    (0usize..4, 1i64..50_000, 1u32..6, proptest::option::of(1i64..50_000), 0u8..8, 0u8..3).prop_map(
        |(p, unit, qty, member, act, cat)| {
            let activity = match act {
                0 => Some(Activity {
                    kind: ActivityKind::LimitedDiscount,
                    unit_price: unit / 2 + 1,
                    allow_coupon_and_points: false,
                }),
                1 => Some(Activity {
                    kind: ActivityKind::PresaleBalance,
                    unit_price: unit / 3 + 1,
                    allow_coupon_and_points: true,
                }),
                _ => None,
            };
            Line {
                sku: format!("sku{p}"),
                product: format!("p{p}"),
                categories: vec![format!("cat{cat}")],
                unit_list: unit,
                qty,
                paid_member_unit: member,
                activity,
            }
        },
    )
}

fn arb_cart() -> impl Strategy<Value = Cart> {
    (
        proptest::collection::vec(arb_line(), 1..6),
        proptest::option::of(1i64..=BP),
        any::<bool>(),
        proptest::option::of((0i64..60_000, 1i64..20_000)),
        proptest::option::of((1i64..10_000, 1i64..2_000, proptest::option::of(1i64..6_000))),
        proptest::option::of((0i64..40_000, 1i64..5_000)),
        proptest::option::of((1i64..5_000, 0i64..80_000)),
        proptest::option::of((0i64..100, 1u32..4)),
        (0i64..2_000, proptest::option::of(0i64..60_000), any::<bool>(), proptest::option::of(1i64..1_500)),
    )
        .prop_map(|(lines, level, paid, tier, every, pct, coupon, points, (fee, free_from, h2, bundle))| {
            let mut promos = Vec::new();
            if let Some((t, off)) = tier {
                promos.push(OrderPromo {
                    id: "tier".into(),
                    scope: Scope::default(),
                    rule: PromoRule::Tiers { tiers: vec![(t, off)] },
                });
            }
            if let Some((step, off, max_off)) = every {
                promos.push(OrderPromo {
                    id: "every".into(),
                    scope: Scope { categories: vec!["cat0".into()], ..Default::default() },
                    rule: PromoRule::Every { step, off, max_off },
                });
            }
            if let Some((threshold, off_bp)) = pct {
                promos.push(OrderPromo {
                    id: "pct".into(),
                    scope: Scope::default(),
                    rule: PromoRule::Percent { threshold, off_bp },
                });
            }
            let coupons = coupon.map(|(face, threshold)| vec![amount_coupon(face, threshold)]).unwrap_or_default();
            let points = points.map(|(units, max_bp_tenths)| Points {
                requested: units * 10,
                balance: 100_000,
                unit_points: 10,
                unit_fen: 10,
                per_order_cap: 100_000,
                max_bp: max_bp_tenths as i64 * 2_500,
            });
            Cart {
                lines,
                member: Member { level_price_bp: level, paid_member: paid },
                second_half: if h2 { vec![SecondHalf { id: "h2".into(), scope: Scope::default() }] } else { vec![] },
                bundles: bundle
                    .map(|price| {
                        vec![Bundle { id: "b".into(), components: vec![("p0".into(), 1), ("p1".into(), 1)], price }]
                    })
                    .unwrap_or_default(),
                promos,
                coupons,
                points,
                shipping: Shipping { fee, free_from },
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The acceptance properties: every step's line allocations sum to its discount, no amount
    /// goes negative, the steps explain the whole difference from list price, and the same cart
    /// always prices the same (PC-4).
    #[test]
    fn allocations_sum_and_nothing_goes_negative(c in arb_cart()) {
        match quote(&c) {
            Ok(q) => {
                for s in &q.steps {
                    if s.kind != StepKind::ShippingCoupon {
                        prop_assert_eq!(s.shares.iter().sum::<i64>(), s.discount, "{:?}", s.kind);
                    }
                    prop_assert!(s.discount > 0);
                    prop_assert!(s.shares.iter().all(|x| *x >= 0));
                    if s.eligible > 0 && s.kind != StepKind::ShippingCoupon {
                        prop_assert!(s.discount <= s.eligible, "PC-3");
                    }
                }
                for l in &q.lines {
                    prop_assert!(l.units.iter().all(|u| *u >= 0));
                    prop_assert_eq!(l.units.iter().sum::<i64>(), l.paid);
                    prop_assert_eq!(l.units.len(), l.qty as usize);
                }
                let goods_steps: i64 = q.steps.iter().filter(|s| s.kind != StepKind::ShippingCoupon).map(|s| s.discount).sum();
                prop_assert_eq!(q.list_total - goods_steps, q.goods);
                prop_assert!(q.payable >= 0);
                prop_assert_eq!(q.payable, q.goods + q.shipping_fee - q.shipping_discount);
                for (i, l) in q.lines.iter().enumerate() {
                    let taken: i64 = q.steps.iter().map(|s| s.shares[i]).sum();
                    prop_assert_eq!(l.unit_list * l.qty as i64 - taken, l.paid, "line {} explained by its shares", i);
                }
                prop_assert_eq!(quote(&c).unwrap(), q);
            }
            Err(e) => {
                // Refusals are the documented ones, never a panic or a silent wrong price.
                let known = matches!(e, PricingError::CouponThreshold { .. } | PricingError::PointsOverLimit { .. } | PricingError::BadPromotion { .. });
                prop_assert!(known, "{e:?}");
            }
        }
    }

    /// A threshold is met at exactly its amount and missed one fen below, for every step that
    /// has one.
    #[test]
    fn thresholds_hold_at_their_boundary(t in 1i64..1_000_000, off in 1i64..1_000) {
        for (amount, met) in [(t - 1, false), (t, true)] {
            if amount < 1 { continue; }
            let mut c = cart(vec![line("a", amount, 1)]);
            c.promos = vec![OrderPromo { id: "mj".into(), scope: Scope::default(), rule: PromoRule::Tiers { tiers: vec![(t, off)] } }];
            prop_assert_eq!(step(&quote(&c).unwrap(), StepKind::FullReduction).is_some(), met);
            let mut c = cart(vec![line("a", amount, 1)]);
            c.coupons = vec![amount_coupon(off, t)];
            prop_assert_eq!(quote(&c).is_ok(), met);
            let mut c = cart(vec![line("a", amount, 1)]);
            c.shipping = Shipping { fee: 500, free_from: Some(t) };
            prop_assert_eq!(quote(&c).unwrap().shipping_fee == 0, met);
        }
    }
}

/// The random carts above mostly price (so the properties are tested on real quotes, not on
/// refusals), and they exercise every step.
#[test]
fn random_carts_reach_every_step() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut ok, mut kinds) = (0, BTreeSet::new());
    for _ in 0..500 {
        let c = arb_cart().new_tree(&mut runner).unwrap().current();
        if let Ok(q) = quote(&c) {
            ok += 1;
            kinds.extend(q.steps.iter().map(|s| s.kind));
        }
    }
    assert!(ok > 250, "only {ok} of 500 random carts priced");
    for k in [
        StepKind::MemberPrice,
        StepKind::ActivityPrice,
        StepKind::SecondHalf,
        StepKind::Bundle,
        StepKind::FullReduction,
        StepKind::FullPercent,
        StepKind::Coupon,
        StepKind::Points,
    ] {
        assert!(kinds.contains(&k), "{k:?} never reached");
    }
}
