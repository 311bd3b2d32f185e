//! Customer storage stories, on both backends: profiles and scope, personal data at rest,
//! tags, and segments — the bitmap index, the SQL form and the brute-force meaning agree.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use siyu_core::auth::{Actor, DataScope, Role};
use siyu_core::customers::bitmap::SegmentIndex;
use siyu_core::customers::profile::CustomerInput;
use siyu_core::customers::rfm::{Centre, Scored, Scores, Segment};
use siyu_core::customers::segment::{matches, Expr, Facts, Metric, RfmDim};
use siyu_core::org::StaffInput;
use siyu_core::paging::PageRequest;
use siyu_core::{CustomerId, StaffId, TagId, Timestamp, UserId};
use siyu_store::customers::index::SegmentIndexes;
use siyu_store::customers::metrics::{Purchase, RfmParams};
use siyu_store::customers::CustomerFilter;
use siyu_store::{both_backends, on_read, StoreError};

const STAGES: [&str; 7] = ["new", "following", "intent", "deal", "repurchase", "dormant", "lost"];

fn input(name: &str, phone: Option<&str>, owner: Option<StaffId>) -> CustomerInput {
    let stages: Vec<String> = STAGES.iter().map(|s| s.to_string()).collect();
    CustomerInput::validate(name, phone, None, None, owner, None, &BTreeMap::new(), &stages, &["city".into()]).unwrap()
}

both_backends!(profiles_are_scoped_and_phones_sealed, |s| async move {
    let t = s.create_tenant("brand", "品牌", "Asia/Shanghai").await.unwrap();
    let admin = Actor::system(t.id);
    let g1 =
        s.create_staff(&admin, &StaffInput::validate("导购一", None, None, None, None, None).unwrap()).await.unwrap();
    let g2 =
        s.create_staff(&admin, &StaffInput::validate("导购二", None, None, None, None, None).unwrap()).await.unwrap();
    let a = s.create_customer(&admin, &input("王小明", Some("13812345678"), Some(g1.id)), "manual").await.unwrap();
    let b = s.create_customer(&admin, &input("李四", None, Some(g2.id)), "manual").await.unwrap();
    assert_eq!((a.num, b.num), (1, 2));

    // The phone is stored sealed: no column of the row holds the number.
    let raw: Vec<(Option<String>, Option<String>, Option<String>)> = on_read!(s.store, |p| sqlx::query_as(
        "SELECT phone_sealed, phone_index, phone_masked FROM customers WHERE tenant_id = $1"
    )
    .bind(t.id.0)
    .fetch_all(p)
    .await
    .unwrap());
    for (sealed, index, masked) in raw.iter().filter(|r| r.0.is_some()) {
        for v in [sealed, index, masked].into_iter().flatten() {
            assert!(!v.contains("13812345678") && !v.contains("12345678"), "{v}");
        }
    }
    assert_eq!(s.customer(t.id, DataScope::Tenant, a.id).await.unwrap().phone.as_deref(), Some("+8613812345678"));
    // The same phone cannot belong to two people.
    let dup = s.create_customer(&admin, &input("冒名", Some("+86 138 1234 5678"), None), "manual").await;
    assert!(matches!(dup, Err(StoreError::Duplicate("phone"))), "{dup:?}");
    // Search by exact phone works through the blind index.
    let f = CustomerFilter { q: Some("138-1234-5678".into()), ..Default::default() };
    let found = s.list_customers(t.id, DataScope::Tenant, &f, &PageRequest::default()).await.unwrap();
    assert_eq!(found.items.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a.id]);

    // A guide sees only their own customers, in lists, by id and by number.
    let scope = DataScope::OwnStaff(g1.id);
    let mine = s.list_customers(t.id, scope, &CustomerFilter::default(), &PageRequest::default()).await.unwrap();
    assert_eq!(mine.items.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a.id]);
    assert!(matches!(s.customer(t.id, scope, b.id).await, Err(StoreError::NotFound)));
    assert_eq!(s.customers_by_nums(t.id, scope, &[1, 2]).await.unwrap().len(), 1);

    // A guide's edit cannot move the customer to another owner.
    let guide = Actor::user(t.id, UserId::new(), Role::Guide, "g1".into(), Some(g1.id));
    let moved = s.update_customer(&guide, a.id, &input("王小明", Some("13812345678"), Some(g2.id))).await.unwrap();
    assert_eq!(moved.owner_staff_id, Some(g1.id));
    assert!(matches!(s.update_customer(&guide, b.id, &input("x", None, None)).await, Err(StoreError::NotFound)));

    // Manual stage changes land on the timeline and lock automation out.
    let c = s.set_lifecycle(&admin, a.id, "intent").await.unwrap();
    assert_eq!(c.lifecycle, "intent");
    assert!(c.lifecycle_locked_until.is_some());
    assert!(matches!(s.set_lifecycle(&admin, a.id, "nope").await, Err(StoreError::BadReference("stage"))));
    let tl = s.customer_timeline(t.id, a.id, 10).await.unwrap();
    assert_eq!(tl.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), vec!["stage", "created"]);

    // Follow-ups with a next action become due.
    let due_at = Timestamp(s.now().0 + 3_600_000_000);
    s.add_follow_up(&admin, a.id, Some(g1.id), "call", "回访", Some(due_at)).await.unwrap();
    assert!(s.due_follow_ups(t.id, scope, s.now()).await.unwrap().is_empty());
    let due = s.due_follow_ups(t.id, scope, Timestamp(due_at.0 + 1)).await.unwrap();
    assert_eq!(due.len(), 1);
    assert!(s.due_follow_ups(t.id, DataScope::OwnStaff(g2.id), Timestamp(due_at.0 + 1)).await.unwrap().is_empty());
    s.complete_follow_up(&guide, due[0].id).await.unwrap();
    assert!(s.due_follow_ups(t.id, scope, Timestamp(due_at.0 + 1)).await.unwrap().is_empty());
});

both_backends!(internal_tags_apply_once_and_corp_tags_refuse, |s| async move {
    let t = s.create_tenant("brand", "品牌", "Asia/Shanghai").await.unwrap();
    let admin = Actor::system(t.id);
    let g = s.create_tag_group(&admin, "兴趣").await.unwrap();
    assert!(matches!(s.create_tag_group(&admin, "兴趣").await, Err(StoreError::Duplicate("name"))));
    let tea = s.create_tag(&admin, g.id, "茶").await.unwrap();
    let a = s.create_customer(&admin, &input("甲", None, None), "manual").await.unwrap();
    let b = s.create_customer(&admin, &input("乙", None, None), "manual").await.unwrap();
    assert_eq!(s.apply_tag(&admin, tea.id, &[a.id, b.id], true, "manual").await.unwrap(), 2);
    assert_eq!(s.apply_tag(&admin, tea.id, &[a.id, b.id], true, "manual").await.unwrap(), 0);
    assert_eq!(s.tag(t.id, tea.id).await.unwrap().customers, 2);
    assert_eq!(s.customer_tags(t.id, a.id).await.unwrap()[0].name, "茶");
    assert_eq!(s.apply_tag(&admin, tea.id, &[a.id], false, "manual").await.unwrap(), 1);
    let other = s.create_tenant("other", "别家", "Asia/Shanghai").await.unwrap();
    let stranger = s.create_customer(&Actor::system(other.id), &input("外人", None, None), "manual").await.unwrap();
    // Another tenant's customer is silently not tagged.
    assert_eq!(s.apply_tag(&admin, tea.id, &[stranger.id], true, "manual").await.unwrap(), 0);
    assert!(matches!(s.tag(other.id, tea.id).await, Err(StoreError::NotFound)));
    s.delete_tag(&admin, tea.id).await.unwrap();
    assert!(s.customer_tags(t.id, b.id).await.unwrap().is_empty());
});

// Random customers with random facts; the tags, stages, owners, RFM and purchase metrics are
// written through the store, then random expressions are counted three ways.
both_backends!(segment_index_sql_and_meaning_agree, |s| async move {
    let t = s.create_tenant("brand", "品牌", "Asia/Shanghai").await.unwrap();
    let admin = Actor::system(t.id);
    let mut rng = StdRng::seed_from_u64(20261122);
    let group = s.create_tag_group(&admin, "随机").await.unwrap();
    let mut tags = Vec::new();
    for i in 0..5 {
        tags.push(s.create_tag(&admin, group.id, &format!("t{i}")).await.unwrap().id);
    }
    let mut staff = Vec::new();
    for i in 0..3 {
        let st = StaffInput::validate(&format!("s{i}"), None, None, None, None, None).unwrap();
        staff.push(s.create_staff(&admin, &st).await.unwrap().id);
    }
    s.define_customer_field(&admin, "city", "城市", false).await.unwrap();
    let today = Timestamp(s.now().0).local_day(8);
    let mut truth: BTreeMap<u32, Facts> = BTreeMap::new();
    let mut ids: BTreeMap<u32, CustomerId> = BTreeMap::new();
    let indexes = SegmentIndexes::new(s.store.clone());
    // Build the index early so later changes exercise the incremental catch-up.
    indexes.sync(t.id).await.unwrap();
    for i in 0..60 {
        let owner = if rng.gen_bool(0.7) { Some(staff[rng.gen_range(0..3)]) } else { None };
        let mut inp = input(&format!("c{i}"), None, owner);
        let stage = STAGES[rng.gen_range(0..3)];
        inp.lifecycle = Some(stage.to_string());
        if rng.gen_bool(0.5) {
            inp.fields.insert("city".into(), format!("city{}", rng.gen_range(0..3)));
        }
        let c = s.create_customer(&admin, &inp, "manual").await.unwrap();
        let mut f = Facts { lifecycle: stage.into(), staff: owner, fields: inp.fields.clone(), ..Facts::default() };
        for tag in &tags {
            if rng.gen_bool(0.3) {
                s.apply_tag(&admin, *tag, &[c.id], true, "manual").await.unwrap();
                f.tags.insert(*tag);
            }
        }
        truth.insert(c.num as u32, f);
        ids.insert(c.num as u32, c.id);
        if i == 30 {
            indexes.sync(t.id).await.unwrap();
        }
    }
    // Purchases through the ledger give orders, spend, last day and RFM.
    let mut purchases = Vec::new();
    for (num, id) in &ids {
        let n = rng.gen_range(0..4);
        for k in 0..n {
            let days_ago = rng.gen_range(1..400);
            purchases.push(Purchase {
                order_ref: format!("o-{num}-{k}"),
                customer_id: *id,
                paid_at: Timestamp(s.now().0 - days_ago * 86_400_000_000),
                paid_fen: rng.gen_range(100..50_000),
                refunded_fen: 0,
            });
        }
    }
    s.record_purchases(&admin, "test", &purchases).await.unwrap();
    let params = RfmParams { ref_day: today, window_days: Some(365), centre: Centre::Mean };
    s.recompute_customer_metrics(&admin, 8, params).await.unwrap();
    // Re-read facts the recompute owns (stage may have moved; metrics and RFM are new).
    type FactRow = (i64, String, i64, i64, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<String>);
    let rows: Vec<FactRow> = on_read!(s.store, |p| sqlx::query_as(
        "SELECT num, lifecycle, orders_count, spend_fen, last_order_day, rfm_r, rfm_f, rfm_m, rfm_segment \
             FROM customers WHERE tenant_id = $1"
    )
    .bind(t.id.0)
    .fetch_all(p)
    .await
    .unwrap());
    for (num, stage, orders, spend, last, r, f, m, seg) in rows {
        let fact = truth.get_mut(&(num as u32)).unwrap();
        fact.lifecycle = stage;
        fact.orders = orders;
        fact.spend_fen = spend;
        fact.last_purchase_day = last;
        fact.rfm = match (r, f, m, seg) {
            (Some(r), Some(f), Some(m), Some(seg)) => Some(Scored {
                scores: Scores { r: r as u8, f: f as u8, m: m as u8 },
                segment: siyu_store::customers::parse_segment_key(&seg).unwrap(),
            }),
            _ => None,
        };
    }
    // A fresh index built from scratch must agree with the caught-up one.
    let mut fresh = SegmentIndex::new();
    s.load_segment_index(t.id, 0, &mut fresh).await.unwrap();

    let leaf = |rng: &mut StdRng| -> Expr {
        match rng.gen_range(0..9) {
            0 => Expr::Tag(tags[rng.gen_range(0..tags.len())]),
            1 => Expr::Lifecycle(STAGES[rng.gen_range(0..5)].into()),
            2 => Expr::Staff(staff[rng.gen_range(0..3)]),
            3 => Expr::RfmSegment(Segment::ALL[rng.gen_range(0..8)]),
            4 => {
                let a = rng.gen_range(1..=5);
                let b = rng.gen_range(a..=5);
                Expr::RfmScore { dim: [RfmDim::R, RfmDim::F, RfmDim::M][rng.gen_range(0..3)], min: a, max: b }
            }
            5 => Expr::Field { key: "city".into(), value: format!("city{}", rng.gen_range(0..3)) },
            6 => Expr::Range { metric: Metric::Orders, min: Some(rng.gen_range(0..3)), max: None },
            7 => Expr::Range { metric: Metric::SpendFen, min: None, max: Some(rng.gen_range(0..80_000)) },
            _ => Expr::Range {
                metric: Metric::DaysSincePurchase,
                min: Some(rng.gen_range(0..100)),
                max: Some(rng.gen_range(100..400)),
            },
        }
    };
    for round in 0..60 {
        let mut parts: Vec<Expr> = (0..rng.gen_range(1..5)).map(|_| leaf(&mut rng)).collect();
        if rng.gen_bool(0.4) {
            let inner = parts.pop().unwrap_or(Expr::All);
            parts.push(Expr::Not(Box::new(inner)));
        }
        if parts.is_empty() {
            parts.push(Expr::All);
        }
        let e = if round % 3 == 0 {
            Expr::Or(parts)
        } else if round % 3 == 1 {
            Expr::And(parts)
        } else {
            Expr::And(vec![Expr::Or(parts), Expr::Not(Box::new(leaf(&mut rng)))])
        };
        let want: Vec<u32> = truth.iter().filter(|(_, f)| matches(&e, f, today)).map(|(n, _)| *n).collect();
        let got_index: Vec<u32> = indexes.members(t.id, DataScope::Tenant, &e, today).await.unwrap().iter().collect();
        let got_fresh: Vec<u32> = fresh.eval(&e, today).iter().collect();
        let got_sql = s.segment_nums_sql(t.id, DataScope::Tenant, &e, today).await.unwrap();
        assert_eq!(got_index, want, "index, {e:?}");
        assert_eq!(got_fresh, want, "fresh index, {e:?}");
        assert_eq!(got_sql, want, "sql, {e:?}");
        assert_eq!(s.count_segment_sql(t.id, DataScope::Tenant, &e, today).await.unwrap(), want.len() as i64);
        // A guide's view is the same expression within their own customers.
        let g = staff[round % 3];
        let want_g = want.iter().filter(|n| truth[n].staff == Some(g)).count() as u64;
        assert_eq!(indexes.count(t.id, DataScope::OwnStaff(g), &e, today).await.unwrap(), want_g);
        assert_eq!(indexes.count(t.id, DataScope::Nothing, &e, today).await.unwrap(), 0);
    }
    // Deleting a tag reaches the index through the change feed.
    let dropped: BTreeSet<TagId> = [tags[0]].into();
    s.delete_tag(&admin, tags[0]).await.unwrap();
    assert_eq!(indexes.count(t.id, DataScope::Tenant, &Expr::Tag(tags[0]), today).await.unwrap(), 0);
    let still = truth.values().filter(|f| f.tags.iter().any(|x| !dropped.contains(x))).count();
    let any_tag = Expr::Or(tags[1..].iter().map(|x| Expr::Tag(*x)).collect());
    assert_eq!(indexes.count(t.id, DataScope::Tenant, &any_tag, today).await.unwrap(), still as u64);
});

/// The Online Retail file kept in the repository's `datasets/` folder.
fn retail_bytes() -> Vec<u8> {
    use std::io::Read;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../datasets/online_retail/online_retail.csv.gz");
    let gz = std::fs::read(path).unwrap_or_else(|e| panic!("the Online Retail dataset at {path}: {e}"));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).unwrap();
    out
}

/// RFM straight from the CSV, written without siyu's code: (customer key → r, f, m, segment).
fn independent_rfm(csv_bytes: &[u8], ref_day: i64) -> BTreeMap<String, (i64, i64, i64, &'static str)> {
    // invoice → (customer, date, total in thousandths)
    let mut inv: BTreeMap<String, (String, i64, i64)> = BTreeMap::new();
    let mut rd = csv::Reader::from_reader(csv_bytes);
    for rec in rd.records() {
        let rec = rec.unwrap();
        let (no, qty, date, price, cust) = (&rec[0], &rec[3], &rec[4], &rec[5], &rec[6]);
        if no.starts_with('C') || cust.is_empty() {
            continue;
        }
        let qty: i64 = qty.parse().unwrap();
        let (i, f) = price.split_once('.').unwrap_or((price, ""));
        let milli = i.parse::<i64>().unwrap() * 1000 + format!("{f:0<3}").parse::<i64>().unwrap();
        // Whole days since 1970 of the wall-clock date.
        let d = siyu_core::time::parse_day(&date[..10]).unwrap();
        let e = inv.entry(no.to_string()).or_insert((cust.trim_end_matches(".0").to_string(), d, 0));
        e.1 = e.1.min(d);
        e.2 += qty * milli;
    }
    let mut per: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new(); // last day, orders, fen
    for (_, (cust, day, milli)) in inv {
        let fen = (milli + 5) / 10;
        if milli <= 0 || fen <= 0 {
            continue;
        }
        let e = per.entry(cust).or_insert((i64::MIN, 0, 0));
        e.0 = e.0.max(day);
        e.1 += 1;
        e.2 += fen;
    }
    let keys: Vec<&String> = per.keys().collect();
    let raw: Vec<(i64, i64, i64)> = per.values().map(|(last, f, m)| (ref_day - last, *f, *m)).collect();
    let n = raw.len() as i64;
    let score = |i: usize, worse: &dyn Fn(usize, usize) -> bool| -> i64 {
        let k = (0..raw.len()).filter(|j| worse(*j, i)).count() as i64;
        (5 * (k + 1) + n - 1) / n
    };
    let (sr, sf, sm) =
        raw.iter().fold((0i128, 0i128, 0i128), |a, x| (a.0 + x.0 as i128, a.1 + x.1 as i128, a.2 + x.2 as i128));
    let names = [
        ((true, true, true), "important_value"),
        ((true, false, true), "important_develop"),
        ((false, true, true), "important_keep"),
        ((false, false, true), "important_retain"),
        ((true, true, false), "general_value"),
        ((true, false, false), "general_develop"),
        ((false, true, false), "general_keep"),
        ((false, false, false), "general_retain"),
    ];
    let mut out = BTreeMap::new();
    for (i, key) in keys.iter().enumerate() {
        let r = score(i, &|j, i| raw[j].0 > raw[i].0);
        let f = score(i, &|j, i| raw[j].1 < raw[i].1);
        let m = score(i, &|j, i| raw[j].2 < raw[i].2);
        let n = n as i128;
        let highs = (n * raw[i].0 as i128 <= sr, n * raw[i].1 as i128 >= sf, n * raw[i].2 as i128 >= sm);
        let seg = names.iter().find(|(h, _)| *h == highs).unwrap().1;
        out.insert((*key).clone(), (r, f, m, seg));
    }
    out
}

both_backends!(rfm_on_online_retail_equals_an_independent_computation, |s| async move {
    let t = s.create_tenant("retail", "Online Retail", "Asia/Shanghai").await.unwrap();
    let admin = Actor::system(t.id);
    let bytes = retail_bytes();
    let data = siyu_core::customers::retail::parse(&bytes, 8).unwrap();
    let stages: Vec<String> = STAGES.iter().map(|s| s.to_string()).collect();
    let keys: Vec<String> = data.countries.keys().cloned().collect();
    let rows: Vec<siyu_store::customers::ImportRow> = keys
        .iter()
        .map(|k| siyu_store::customers::ImportRow {
            external_ref: Some(k.clone()),
            input: CustomerInput::validate(
                &format!("Customer {k}"),
                None,
                None,
                None,
                None,
                None,
                &BTreeMap::new(),
                &stages,
                &[],
            )
            .unwrap(),
        })
        .collect();
    let imported = s.import_customers(&admin, "online_retail", &rows).await.unwrap();
    let id_of: BTreeMap<String, CustomerId> = keys.iter().cloned().zip(imported.ids.iter().copied()).collect();
    // Importing again finds everyone and creates nobody.
    let again = s.import_customers(&admin, "online_retail", &rows).await.unwrap();
    assert_eq!((again.created, again.existing), (0, rows.len() as u64));
    let purchases: Vec<Purchase> = data
        .invoices
        .iter()
        .map(|i| Purchase {
            order_ref: i.invoice.clone(),
            customer_id: id_of[&i.customer],
            paid_at: i.at,
            paid_fen: i.paid_fen,
            refunded_fen: 0,
        })
        .collect();
    s.record_purchases(&admin, "online_retail", &purchases).await.unwrap();
    // The day after the last transaction, over all history.
    let ref_day = siyu_core::time::parse_day("2011-12-10").unwrap();
    let params = RfmParams { ref_day, window_days: None, centre: Centre::Mean };
    let sum = s.recompute_customer_metrics(&admin, 8, params).await.unwrap();
    let want = independent_rfm(&bytes, ref_day);
    assert_eq!(sum.scored as usize, want.len());
    let key_of: BTreeMap<CustomerId, &String> = id_of.iter().map(|(k, v)| (*v, k)).collect();
    let got = s.rfm_snapshot(t.id).await.unwrap();
    assert_eq!(got.len(), want.len());
    for (id, r, f, m, seg) in got {
        let key = key_of[&id];
        assert_eq!((r, f, m, seg.as_str()), want[key], "customer {key}");
    }
});
