//! Customer operations over HTTP, on SQLite and PostgreSQL: guides' limits and masking,
//! segments from builder count to saved member lists, bulk tagging and RFM runs.

mod common;

use reqwest::Method;
use serde_json::{json, Value};

use common::{bearer, problem};
use siyu_core::auth::Actor;
use siyu_core::{CustomerId, Timestamp};
use siyu_store::customers::metrics::Purchase;

async fn ok(r: reqwest::Response, status: u16) -> Value {
    let code = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(code.as_u16(), status, "{body}");
    if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap()
    }
}

both!(guides_see_only_their_customers_and_never_unmasked_phones, |app| async move {
    let a = app.seed("brand").await;
    let owner = app.session("brand", "owner").await;
    let guide = app.session("brand", "guide").await;
    let mine = ok(
        owner
            .send(
                &app,
                Method::POST,
                "/api/v1/customers",
                Some(&json!({"name": "王小明", "phone": "13812345678", "owner_staff_id": a.guide_staff.0})),
            )
            .await,
        201,
    )
    .await;
    assert_eq!(mine["phone"], "+8613812345678", "the owner holds customers:pii");
    let theirs = ok(
        owner
            .send(
                &app,
                Method::POST,
                "/api/v1/customers",
                Some(&json!({"name": "李四", "phone": "13900001111", "owner_staff_id": a.other_staff.0})),
            )
            .await,
        201,
    )
    .await;

    let list = ok(guide.send(&app, Method::GET, "/api/v1/customers", None).await, 200).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], mine["id"]);
    assert_eq!(items[0]["phone"], "+86 138****5678");
    let text = guide.send(&app, Method::GET, "/api/v1/customers", None).await.text().await.unwrap();
    assert!(!text.contains("13812345678") && !text.contains("李四"), "{text}");
    let other = format!("/api/v1/customers/{}", theirs["id"].as_str().unwrap());
    problem(guide.send(&app, Method::GET, &other, None).await, 404).await;
    problem(guide.send(&app, Method::GET, &format!("{other}/timeline"), None).await, 404).await;
    // A guide's counts and previews stay within their own customers.
    let all = json!({"expr": "all"});
    let c = ok(guide.send(&app, Method::POST, "/api/v1/segments/count", Some(&all)).await, 200).await;
    assert_eq!((c["count"].as_u64(), c["total"].as_u64()), (Some(1), Some(1)));
    let p = ok(guide.send(&app, Method::POST, "/api/v1/segments/preview", Some(&all)).await, 200).await;
    assert_eq!(p["items"][0]["phone"], "+86 138****5678");
    // A follow-up due now shows on the guide's reminder list, and only theirs.
    let fu = json!({"kind": "call", "content": "回电", "next_at": "2020-01-01T10:00:00+08:00"});
    let path = format!("/api/v1/customers/{}/follow-ups", mine["id"].as_str().unwrap());
    ok(owner.send(&app, Method::POST, &path, Some(&fu)).await, 201).await;
    let due = ok(guide.send(&app, Method::GET, "/api/v1/follow-ups/due", None).await, 200).await;
    assert_eq!(due.as_array().unwrap().len(), 1, "{due}");
    assert_eq!(due[0]["staff_id"], json!(a.guide_staff.0), "assigned to the customer's owner");
    let bad = json!({"kind": "fax", "content": "", "next_at": "tomorrow"});
    let v = problem(owner.send(&app, Method::POST, &path, Some(&bad)).await, 422).await;
    assert_eq!(v["errors"].as_array().unwrap().len(), 3, "{v}");
    // Searching by another guide's customer's phone finds nothing.
    let s = ok(guide.send(&app, Method::GET, "/api/v1/customers?q=13900001111", None).await, 200).await;
    assert!(s["items"].as_array().unwrap().is_empty());
    // Guides create customers for themselves and cannot define tags or segments.
    let new = ok(guide.send(&app, Method::POST, "/api/v1/customers", Some(&json!({"name": "新客"}))).await, 201).await;
    assert_eq!(new["owner_staff_id"], json!(a.guide_staff.0));
    let v = problem(guide.send(&app, Method::POST, "/api/v1/tag-groups", Some(&json!({"name": "x"}))).await, 403).await;
    assert_eq!(v["field"], "data_scope");
    // A guide's edit without the phone keeps it.
    let path = format!("/api/v1/customers/{}", mine["id"].as_str().unwrap());
    let edited = ok(
        guide.send(&app, Method::PUT, &path, Some(&json!({"name": "王小明", "phone": "+86 138****5678"}))).await,
        200,
    )
    .await;
    assert_eq!(edited["phone"], "+86 138****5678");
    let full = ok(owner.send(&app, Method::GET, &path, None).await, 200).await;
    assert_eq!(full["phone"], "+8613812345678");
});

both!(segments_from_live_count_to_saved_members, |app| async move {
    let _a = app.seed("seg").await;
    let s = app.session("seg", "owner").await;
    let g = ok(s.send(&app, Method::POST, "/api/v1/tag-groups", Some(&json!({"name": "偏好"}))).await, 201).await;
    let tea =
        ok(s.send(&app, Method::POST, "/api/v1/tags", Some(&json!({"group_id": g["id"], "name": "茶"}))).await, 201)
            .await;
    let tea_id = tea["id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for i in 0..25 {
        let stage = if i % 5 == 0 { "intent" } else { "new" };
        let c = ok(
            s.send(
                &app,
                Method::POST,
                "/api/v1/customers",
                Some(&json!({"name": format!("客{i}"), "lifecycle": stage})),
            )
            .await,
            201,
        )
        .await;
        ids.push(c["id"].as_str().unwrap().to_string());
    }
    // Bulk-tag everyone in 新客 through an expression.
    let apply = format!("/api/v1/tags/{tea_id}/apply");
    let r = ok(s.send(&app, Method::POST, &apply, Some(&json!({"expr": {"lifecycle": "new"}}))).await, 200).await;
    assert_eq!((r["customers"].as_u64(), r["changed"].as_u64()), (Some(20), Some(20)));
    let r = ok(s.send(&app, Method::POST, &apply, Some(&json!({"expr": {"lifecycle": "new"}}))).await, 200).await;
    assert_eq!(r["changed"], 0, "repeats change nothing");
    let expr = json!({"and": [{"tag": tea_id}, {"not": {"lifecycle": "intent"}}]});
    let c = ok(s.send(&app, Method::POST, "/api/v1/segments/count", Some(&json!({"expr": expr}))).await, 200).await;
    assert_eq!((c["count"].as_u64(), c["total"].as_u64()), (Some(20), Some(25)));

    // Save it and page through its members, newest first, each exactly once.
    let seg =
        ok(s.send(&app, Method::POST, "/api/v1/segments", Some(&json!({"name": "茶客", "expr": expr}))).await, 201)
            .await;
    assert_eq!(seg["count"], 20);
    let mut seen = Vec::new();
    let mut url = format!("/api/v1/segments/{}/customers?limit=7", seg["id"].as_str().unwrap());
    loop {
        let page = ok(s.send(&app, Method::GET, &url, None).await, 200).await;
        for c in page["items"].as_array().unwrap() {
            seen.push(c["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(cur) => {
                url = format!("/api/v1/segments/{}/customers?limit=7&cursor={cur}", seg["id"].as_str().unwrap())
            }
            None => break,
        }
    }
    let want: Vec<String> =
        ids.iter().enumerate().rev().filter(|(i, _)| i % 5 != 0).map(|(_, id)| id.clone()).collect();
    assert_eq!(seen, want);
    problem(s.send(&app, Method::GET, &format!("{url}&cursor=zz"), None).await, 400).await;

    // Bad expressions name the node at fault and change nothing.
    let bad = json!({"expr": {"and": [{"lifecycle": "new"}, {"tag": "01a20000-0000-7000-8000-000000000000"}]}});
    let v = problem(s.send(&app, Method::POST, "/api/v1/segments/count", Some(&bad)).await, 422).await;
    assert_eq!((v["code"].as_str(), v["field"].as_str()), (Some("validation_failed"), Some("expr.and[1].tag")));
    let v =
        problem(s.send(&app, Method::POST, "/api/v1/segments/count", Some(&json!({"expr": {"or": []}}))).await, 422)
            .await;
    assert_eq!(v["errors"][0]["code"], "empty");
    let v = problem(
        s.send(&app, Method::POST, "/api/v1/segments/count", Some(&json!({"expr": {"colour": "red"}}))).await,
        422,
    )
    .await;
    assert!(v["field"].as_str().unwrap().starts_with("expr"), "{v}");

    // Segments may use segments, but never in a cycle; a used segment cannot be deleted.
    let outer_body = json!({"name": "茶客或意向", "expr": {"or": [{"segment": seg["id"]}, {"lifecycle": "intent"}]}});
    let outer = ok(s.send(&app, Method::POST, "/api/v1/segments", Some(&outer_body)).await, 201).await;
    assert_eq!(outer["count"], 25);
    let seg_path = format!("/api/v1/segments/{}", seg["id"].as_str().unwrap());
    let cyc = json!({"name": "茶客", "expr": {"segment": outer["id"]}});
    let v = problem(s.send(&app, Method::PUT, &seg_path, Some(&cyc)).await, 422).await;
    assert_eq!(v["errors"][0]["code"], "cycle");
    let v = problem(s.send(&app, Method::DELETE, &seg_path, None).await, 409).await;
    assert!(v["detail"].as_str().unwrap().contains("茶客或意向"), "{v}");
    let dup = problem(
        s.send(&app, Method::POST, "/api/v1/segments", Some(&json!({"name": "茶客", "expr": "all"}))).await,
        409,
    )
    .await;
    assert_eq!(dup["field"], "name");
    let list = ok(s.send(&app, Method::GET, "/api/v1/segments", None).await, 200).await;
    assert_eq!(list.as_array().unwrap().len(), 2);

    // Untagging one customer moves the saved count at once.
    let one = format!("/api/v1/customers/{}/tags/{tea_id}", ids[1]);
    ok(s.send(&app, Method::DELETE, &one, None).await, 204).await;
    let seg_now = ok(s.send(&app, Method::GET, &seg_path, None).await, 200).await;
    assert_eq!(seg_now["count"], 19);
    let detail = ok(s.send(&app, Method::GET, &format!("/api/v1/customers/{}", ids[2]), None).await, 200).await;
    assert_eq!(detail["tags"][0]["name"], "茶");
    let tl = ok(s.send(&app, Method::GET, &format!("/api/v1/customers/{}/timeline", ids[1]), None).await, 200).await;
    assert_eq!(tl[0]["kind"], "tag");
});

both!(rfm_runs_on_demand_and_scores_reach_profiles_and_segments, |app| async move {
    let a = app.seed("rfm").await;
    let s = app.session("rfm", "owner").await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let c =
            ok(s.send(&app, Method::POST, "/api/v1/customers", Some(&json!({"name": format!("买家{i}")}))).await, 201)
                .await;
        ids.push(CustomerId(c["id"].as_str().unwrap().parse().unwrap()));
    }
    // Customer i bought i times, the last one i days before the reference date.
    let ref_at = Timestamp::parse_rfc3339("2026-11-01T00:00:00+08:00").unwrap();
    let mut ps = Vec::new();
    for (i, id) in ids.iter().enumerate().skip(1) {
        for k in 0..i {
            ps.push(Purchase {
                order_ref: format!("o{i}-{k}"),
                customer_id: *id,
                paid_at: Timestamp(ref_at.0 - (i as i64 + k as i64 * 3) * 86_400_000_000 + 3_600_000_000),
                paid_fen: 10_000 * i as i64,
                refunded_fen: 0,
            });
        }
    }
    let sys = Actor::system(a.tenant);
    assert_eq!(app.store.record_purchases(&sys, "test", &ps).await.unwrap(), 15);
    assert_eq!(app.store.record_purchases(&sys, "test", &ps).await.unwrap(), 0, "replays add nothing");
    let bad =
        problem(s.send(&app, Method::POST, "/api/v1/rfm/run", Some(&json!({"ref_date": "11/01/2026"}))).await, 422)
            .await;
    assert_eq!(bad["field"], "ref_date");
    let run = ok(
        s.send(&app, Method::POST, "/api/v1/rfm/run", Some(&json!({"ref_date": "2026-11-01", "window_days": 365})))
            .await,
        200,
    )
    .await;
    assert_eq!((run["buyers"].as_u64(), run["scored"].as_u64()), (Some(5), Some(5)));
    let c5 = ok(s.send(&app, Method::GET, &format!("/api/v1/customers/{}", ids[5].0), None).await, 200).await;
    assert_eq!(c5["orders_count"], 5);
    assert_eq!(c5["spend_fen"], 250_000);
    assert_eq!(c5["lifecycle"], "repurchase", "purchases on several days move the stage");
    assert_eq!(c5["rfm"]["code"], "155");
    assert_eq!(c5["rfm"]["segment"], "important_keep");
    let c0 = ok(s.send(&app, Method::GET, &format!("/api/v1/customers/{}", ids[0].0), None).await, 200).await;
    assert!(c0["rfm"].is_null() && c0["lifecycle"] == "new");
    let keep = json!({"expr": {"rfm_segment": "important_keep"}});
    let c = ok(s.send(&app, Method::POST, "/api/v1/segments/count", Some(&keep)).await, 200).await;
    assert!(c["count"].as_u64().unwrap() >= 1);
    let guide = app.session("rfm", "guide").await;
    problem(guide.send(&app, Method::POST, "/api/v1/rfm/run", Some(&json!({}))).await, 403).await;
});

/// Every text-like column of every table, as (table, column), on either backend.
async fn text_columns(store: &siyu_store::Store) -> Vec<(String, String)> {
    use siyu_store::on_read;
    match store.backend() {
        siyu_store::Backend::Postgres => on_read!(store, |p| sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND data_type IN ('text', 'jsonb', 'character varying')"
        )
        .fetch_all(p)
        .await
        .unwrap()),
        siyu_store::Backend::Sqlite => {
            let tables: Vec<String> = on_read!(store, |p| sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
            .fetch_all(p)
            .await
            .unwrap());
            let mut out = Vec::new();
            for t in tables {
                let cols: Vec<String> =
                    on_read!(store, |p| sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
                        .bind(&t)
                        .fetch_all(p)
                        .await
                        .unwrap());
                out.extend(cols.into_iter().map(|c| (t.clone(), c)));
            }
            out
        }
    }
}

/// Rows anywhere in the store whose text contains `needle`: (table, column, count).
async fn find_everywhere(store: &siyu_store::Store, needle: &str) -> Vec<(String, String, i64)> {
    use siyu_store::on_read;
    let mut hits = Vec::new();
    for (t, c) in text_columns(store).await {
        let sql = format!("SELECT COUNT(*) FROM \"{t}\" WHERE CAST(\"{c}\" AS TEXT) LIKE $1");
        let n: i64 =
            on_read!(store, |p| sqlx::query_scalar(&sql).bind(format!("%{needle}%")).fetch_one(p).await.unwrap());
        if n > 0 {
            hits.push((t, c, n));
        }
    }
    hits
}

both!(erasure_leaves_no_personal_data_anywhere_and_export_has_it_all, |app| async move {
    let a = app.seed("pipl").await;
    let s = app.session("pipl", "owner").await;
    let sys = Actor::system(a.tenant);
    app.store.define_customer_field(&sys, "city", "城市", false).await.unwrap();
    app.store.define_customer_field(&sys, "id_card", "身份证号", true).await.unwrap();
    let (name, phone, city, card, note) =
        ("独一无二的名字", "13912345678", "独一无二的城市", "110101199001011234", "独一无二的跟进内容");
    let c = ok(
        s.send(
            &app,
            Method::POST,
            "/api/v1/customers",
            Some(&json!({"name": name, "phone": phone, "owner_staff_id": a.guide_staff.0, "fields": {"city": city, "id_card": card}})),
        )
        .await,
        201,
    )
    .await;
    let id = c["id"].as_str().unwrap().to_string();
    // The sensitive field is sealed at rest and masked for the guide.
    assert!(find_everywhere(&app.store, card).await.is_empty(), "sealed at rest");
    let guide = app.session("pipl", "guide").await;
    let seen = ok(guide.send(&app, Method::GET, &format!("/api/v1/customers/{id}"), None).await, 200).await;
    assert_eq!(seen["fields"]["id_card"], "***");
    assert_eq!(seen["fields"]["city"], city);
    problem(guide.send(&app, Method::GET, &format!("/api/v1/customers/{id}/export"), None).await, 403).await;
    problem(guide.send(&app, Method::POST, &format!("/api/v1/customers/{id}/erase"), None).await, 403).await;
    ok(
        s.send(
            &app,
            Method::POST,
            &format!("/api/v1/customers/{id}/follow-ups"),
            Some(&json!({"kind": "note", "content": note})),
        )
        .await,
        201,
    )
    .await;
    let g = ok(s.send(&app, Method::POST, "/api/v1/tag-groups", Some(&json!({"name": "组"}))).await, 201).await;
    let tag =
        ok(s.send(&app, Method::POST, "/api/v1/tags", Some(&json!({"group_id": g["id"], "name": "标签"}))).await, 201)
            .await;
    ok(
        s.send(&app, Method::PUT, &format!("/api/v1/customers/{id}/tags/{}", tag["id"].as_str().unwrap()), None).await,
        204,
    )
    .await;
    let cid = CustomerId(id.parse().unwrap());
    let p = Purchase {
        order_ref: "o-1".into(),
        customer_id: cid,
        paid_at: app.store.now(),
        paid_fen: 9_900,
        refunded_fen: 0,
    };
    app.store.record_purchases(&sys, "test", &[p]).await.unwrap();

    // Export: everything, unmasked.
    let export = ok(s.send(&app, Method::GET, &format!("/api/v1/customers/{id}/export"), None).await, 200).await;
    let text = export.to_string();
    for v in [name, "+8613912345678", city, card, note, "标签", "o-1"] {
        assert!(text.contains(v), "export lacks {v}: {text}");
    }

    // The search sees plain values before erasure (so its silence afterwards means something).
    assert!(!find_everywhere(&app.store, name).await.is_empty());
    assert!(!find_everywhere(&app.store, note).await.is_empty());
    // Erase: nothing personal remains in any table; the purchase total stays countable.
    ok(s.send(&app, Method::POST, &format!("/api/v1/customers/{id}/erase"), None).await, 204).await;
    let index = app.store.sealer().blind_index("phone", "+8613912345678");
    for v in [name, phone, "5678", city, card, note, index.as_str()] {
        let hits = find_everywhere(&app.store, v).await;
        assert!(hits.is_empty(), "{v} is still stored: {hits:?}");
    }
    problem(s.send(&app, Method::GET, &format!("/api/v1/customers/{id}"), None).await, 404).await;
    problem(s.send(&app, Method::POST, &format!("/api/v1/customers/{id}/erase"), None).await, 404).await;
    let count =
        ok(s.send(&app, Method::POST, "/api/v1/segments/count", Some(&json!({"expr": "all"}))).await, 200).await;
    assert_eq!(count["total"], 0, "the erased person left the segment index");
    let kept: i64 = siyu_store::on_read!(app.store, |p| sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(paid_fen), 0) AS BIGINT) FROM customer_purchases WHERE tenant_id = $1"
    )
    .bind(a.tenant.0)
    .fetch_one(p)
    .await
    .unwrap());
    assert_eq!(kept, 9_900, "anonymous aggregates remain");
    let audit = ok(s.send(&app, Method::GET, "/api/v1/audit?limit=200", None).await, 200).await;
    assert!(audit.to_string().contains("customer.erase"));
});

both!(merge_moves_everything_and_undo_puts_it_back, |app| async move {
    let seed = app.seed("mg").await;
    let t = seed.token.as_str();
    let post = |path: String, body: Value| {
        let app = &app;
        async move { bearer(app, t, Method::POST, &path, Some(&body)).await }
    };
    let a: Value =
        post("/api/v1/customers".into(), json!({"name": "旧档案", "phone": "13811112222"})).await.json().await.unwrap();
    let b: Value = post("/api/v1/customers".into(), json!({"name": "新档案"})).await.json().await.unwrap();
    let (aid, bid) = (a["id"].as_str().unwrap().to_string(), b["id"].as_str().unwrap().to_string());
    let group: Value = post("/api/v1/tag-groups".into(), json!({"name": "组"})).await.json().await.unwrap();
    let t1: Value =
        post("/api/v1/tags".into(), json!({"group_id": group["id"], "name": "老客"})).await.json().await.unwrap();
    let t2: Value =
        post("/api/v1/tags".into(), json!({"group_id": group["id"], "name": "新客"})).await.json().await.unwrap();
    for (c, tag) in [(&aid, &t1), (&bid, &t2)] {
        let p = format!("/api/v1/customers/{c}/tags/{}", tag["id"].as_str().unwrap());
        assert_eq!(bearer(&app, t, Method::PUT, &p, None).await.status(), 204);
    }
    let r = post(format!("/api/v1/customers/{aid}/follow-ups"), json!({"kind": "call", "content": "回访"})).await;
    assert_eq!(r.status(), 201);
    let count = |expr: Value| {
        let app = &app;
        async move {
            let v: Value = bearer(app, t, Method::POST, "/api/v1/segments/count", Some(&json!({"expr": expr})))
                .await
                .json()
                .await
                .unwrap();
            v["count"].as_u64().unwrap()
        }
    };
    assert_eq!(count(json!("all")).await, 2);

    // Refusals: into itself; a guide.
    let r = post(format!("/api/v1/customers/{bid}/merge"), json!({"absorbed_id": bid})).await;
    problem(r, 409).await;
    let guide = app.session("mg", "guide").await;
    let r = guide
        .send(&app, Method::POST, &format!("/api/v1/customers/{bid}/merge"), Some(&json!({"absorbed_id": aid})))
        .await;
    problem(r, 403).await;

    // The console refuses an unknown number and explains a self-merge beside the form.
    let owner = app.session("mg", "owner").await;
    let form =
        |num: &str| vec![("_csrf".to_string(), owner.csrf.clone()), ("absorbed_num".to_string(), num.to_string())];
    let url = app.url(&format!("/console/customers/{bid}/merge"));
    let r = owner.client.post(&url).form(&form("#99999")).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("所选客户编号不存在"));
    let own = b["num"].as_i64().unwrap().to_string();
    let r = owner.client.post(&url).form(&form(&own)).send().await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("cannot be merged into itself"));

    // Merge the old profile into the new one.
    let r = post(format!("/api/v1/customers/{bid}/merge"), json!({"absorbed_id": aid})).await;
    assert_eq!(r.status(), 201);
    let merge: Value = r.json().await.unwrap();
    problem(bearer(&app, t, Method::GET, &format!("/api/v1/customers/{aid}"), None).await, 404).await;
    let got: Value =
        bearer(&app, t, Method::GET, &format!("/api/v1/customers/{bid}"), None).await.json().await.unwrap();
    assert_eq!(got["phone"], "+8613811112222", "the phone came along: {got}");
    let tags: Vec<&str> = got["tags"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert!(tags.contains(&"老客") && tags.contains(&"新客"), "{tags:?}");
    let fu: Value =
        bearer(&app, t, Method::GET, &format!("/api/v1/customers/{bid}/follow-ups"), None).await.json().await.unwrap();
    assert_eq!(fu.as_array().unwrap().len(), 1);
    let found: Value =
        bearer(&app, t, Method::GET, "/api/v1/customers?q=13811112222", None).await.json().await.unwrap();
    assert_eq!(found["items"][0]["id"], bid.as_str(), "found by the absorbed phone");
    assert_eq!(count(json!("all")).await, 1);
    assert_eq!(count(json!({"tag": t1["id"]})).await, 1);
    let tl: Value =
        bearer(&app, t, Method::GET, &format!("/api/v1/customers/{bid}/timeline"), None).await.json().await.unwrap();
    assert!(tl.to_string().contains("merged customer"), "{tl}");

    // Undo: each moved thing goes back.
    let undo = format!("/api/v1/customer-merges/{}/undo", merge["id"].as_str().unwrap());
    assert_eq!(bearer(&app, t, Method::POST, &undo, None).await.status(), 204);
    problem(bearer(&app, t, Method::POST, &undo, None).await, 409).await;
    let back: Value =
        bearer(&app, t, Method::GET, &format!("/api/v1/customers/{aid}"), None).await.json().await.unwrap();
    assert_eq!(back["phone"], "+8613811112222");
    assert_eq!(back["tags"].as_array().unwrap().len(), 1);
    let got: Value =
        bearer(&app, t, Method::GET, &format!("/api/v1/customers/{bid}"), None).await.json().await.unwrap();
    assert!(got["phone"].is_null(), "{got}");
    let tags: Vec<&str> = got["tags"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(tags, vec!["新客"]);
    let fu: Value =
        bearer(&app, t, Method::GET, &format!("/api/v1/customers/{aid}/follow-ups"), None).await.json().await.unwrap();
    assert_eq!(fu.as_array().unwrap().len(), 1);
    let found: Value =
        bearer(&app, t, Method::GET, "/api/v1/customers?q=13811112222", None).await.json().await.unwrap();
    assert_eq!(found["items"][0]["id"], aid.as_str());
    assert_eq!(count(json!("all")).await, 2);
    assert_eq!(count(json!({"tag": t1["id"]})).await, 1);
    let history: Value =
        bearer(&app, t, Method::GET, &format!("/api/v1/customers/{aid}/merges"), None).await.json().await.unwrap();
    assert!(history[0]["undone_at"].is_string(), "{history}");
});

both!(rule_tags_follow_their_rule_and_nothing_else, |app| async move {
    let seed = app.seed("rt").await;
    let t = seed.token.as_str();
    let call = |m: Method, path: String, body: Option<Value>| {
        let app = &app;
        async move { bearer(app, t, m, &path, body.as_ref()).await }
    };
    let json_of = |r: reqwest::Response| async move { r.json::<Value>().await.unwrap() };
    let c1 =
        json_of(call(Method::POST, "/api/v1/customers".into(), Some(json!({"name": "甲", "lifecycle": "deal"}))).await)
            .await;
    let c2 =
        json_of(call(Method::POST, "/api/v1/customers".into(), Some(json!({"name": "乙", "lifecycle": "new"}))).await)
            .await;
    let group = json_of(call(Method::POST, "/api/v1/tag-groups".into(), Some(json!({"name": "自动"}))).await).await;
    let seg = json_of(
        call(Method::POST, "/api/v1/segments".into(), Some(json!({"name": "成交", "expr": {"lifecycle": "deal"}})))
            .await,
    )
    .await;
    let r = call(
        Method::POST,
        "/api/v1/tags".into(),
        Some(json!({"group_id": group["id"], "name": "已成交", "rule": {"segment": seg["id"]}})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let rule = json_of(r).await;
    assert_eq!((rule["kind"].as_str(), rule["customers"].as_i64()), (Some("rule"), Some(1)), "{rule}");
    let holds = |who: &Value| {
        let who = who["id"].as_str().unwrap().to_string();
        let tag = rule["id"].clone();
        let call = &call;
        async move {
            let c: Value = call(Method::GET, format!("/api/v1/customers/{who}"), None).await.json().await.unwrap();
            c["tags"].as_array().unwrap().iter().any(|x| x["id"] == tag)
        }
    };
    assert!(holds(&c1).await && !holds(&c2).await);
    // Nobody sets a rule tag by hand.
    let r = call(
        Method::PUT,
        format!("/api/v1/customers/{}/tags/{}", c2["id"].as_str().unwrap(), rule["id"].as_str().unwrap()),
        None,
    )
    .await;
    problem(r, 409).await;
    // The customers change; a refresh makes the holders follow.
    let stage = |c: &Value, st: &str| {
        call(Method::POST, format!("/api/v1/customers/{}/stage", c["id"].as_str().unwrap()), Some(json!({"stage": st})))
    };
    assert!(stage(&c2, "deal").await.status().is_success());
    assert!(stage(&c1, "new").await.status().is_success());
    let done = json_of(call(Method::POST, "/api/v1/rule-tags/refresh".into(), None).await).await;
    assert_eq!((done["added"].as_u64(), done["removed"].as_u64()), (Some(1), Some(1)), "{done}");
    assert!(!holds(&c1).await && holds(&c2).await);
    let again = json_of(call(Method::POST, "/api/v1/rule-tags/refresh".into(), None).await).await;
    assert_eq!((again["added"].as_u64(), again["removed"].as_u64()), (Some(0), Some(0)), "idempotent");
    // A new rule applies at once; a rule may not test a rule tag.
    let r = call(
        Method::PUT,
        format!("/api/v1/tags/{}/rule", rule["id"].as_str().unwrap()),
        Some(json!({"expr": {"lifecycle": "new"}})),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(holds(&c1).await && !holds(&c2).await);
    let r = call(
        Method::POST,
        "/api/v1/tags".into(),
        Some(json!({"group_id": group["id"], "name": "套娃", "rule": {"tag": rule["id"]}})),
    )
    .await;
    assert_eq!(problem(r, 422).await["errors"][0]["code"], "rule_in_rule");
    // The console makes one from a saved segment, and refreshes on demand.
    let owner = app.session("rt", "owner").await;
    let form = vec![
        ("_csrf", owner.csrf.clone()),
        ("op", "rule".into()),
        ("rule_group_id", group["id"].as_str().unwrap().to_string()),
        ("rule_name", "成交客户".into()),
        ("segment_id", seg["id"].as_str().unwrap().to_string()),
    ];
    let r = owner.client.post(app.url("/console/tags")).form(&form).send().await.unwrap();
    assert!(r.status().is_success() && r.url().path() == "/console/tags", "{}", r.status());
    let page = r.text().await.unwrap();
    assert!(page.contains("成交客户") && page.contains("规则标签"), "the console lists it");
});

/// Campaign tags are given only while their campaign runs and let go of everyone when their
/// keep period is over, on a controllable clock.
async fn campaign_tags_story(backend: siyu_store::Backend) {
    use siyu_core::time::{format_day, ManualClock};
    use std::time::Duration;
    let start = Timestamp::from_unix_secs(1_790_000_000);
    let clock = std::sync::Arc::new(ManualClock::at(start));
    let app = common::App::start_with_clock(backend, clock.clone()).await;
    let seed = app.seed("ct").await;
    let t = seed.token.as_str();
    let call = |m: Method, path: String, body: Option<Value>| {
        let app = &app;
        async move { bearer(app, t, m, &path, body.as_ref()).await }
    };
    // The tenant's zone is UTC+8.
    let today = start.local_day(8);
    let day = |d: i64| format_day(today + d);
    let c = ok(call(Method::POST, "/api/v1/customers".into(), Some(json!({"name": "参会者"}))).await, 201).await;
    let group = ok(call(Method::POST, "/api/v1/tag-groups".into(), Some(json!({"name": "活动"}))).await, 201).await;

    // Bad campaigns name the field and create nothing.
    for (campaign, field) in [
        (json!({"first_day": day(2), "last_day": day(0)}), "last_day"),
        (json!({"first_day": "11/01", "last_day": day(0)}), "first_day"),
        (json!({"first_day": day(0), "last_day": day(1), "keep_days": -1}), "keep_days"),
    ] {
        let body = json!({"group_id": group["id"], "name": "双十一", "campaign": campaign});
        assert_eq!(problem(call(Method::POST, "/api/v1/tags".into(), Some(body)).await, 422).await["field"], field);
    }
    let body = json!({"group_id": group["id"], "name": "双十一", "rule": {"lifecycle": "new"},
                      "campaign": {"first_day": day(0), "last_day": day(2)}});
    assert_eq!(problem(call(Method::POST, "/api/v1/tags".into(), Some(body)).await, 422).await["field"], "campaign");

    // Running today through day 2; holders lose it three days after.
    let body = json!({"group_id": group["id"], "name": "线下沙龙",
                      "campaign": {"first_day": day(0), "last_day": day(2), "keep_days": 3}});
    let running = ok(call(Method::POST, "/api/v1/tags".into(), Some(body)).await, 201).await;
    assert_eq!((running["kind"].as_str(), running["campaign"]["keep_days"].as_i64()), (Some("campaign"), Some(3)));
    let body =
        json!({"group_id": group["id"], "name": "年货节", "campaign": {"first_day": day(5), "last_day": day(9)}});
    let upcoming = ok(call(Method::POST, "/api/v1/tags".into(), Some(body)).await, 201).await;
    let put =
        |tag: &Value| format!("/api/v1/customers/{}/tags/{}", c["id"].as_str().unwrap(), tag["id"].as_str().unwrap());
    assert_eq!(call(Method::PUT, put(&running), None).await.status(), 204);
    let early = problem(call(Method::PUT, put(&upcoming), None).await, 409).await;
    assert!(early.to_string().contains(&day(5)), "the refusal says when it starts: {early}");
    // Only a campaign tag has a campaign to change.
    let body = json!({"group_id": group["id"], "name": "普通"});
    let plain = ok(call(Method::POST, "/api/v1/tags".into(), Some(body)).await, 201).await;
    let path = format!("/api/v1/tags/{}/campaign", plain["id"].as_str().unwrap());
    problem(call(Method::PUT, path, Some(json!({"first_day": day(0), "last_day": day(1)}))).await, 409).await;

    // After the last day nobody new gets it; holders keep it until the keep period is over.
    clock.advance(Duration::from_secs(3 * 86_400));
    let late = problem(call(Method::PUT, put(&running), None).await, 409).await;
    assert!(late.to_string().contains(&day(2)), "{late}");
    let store = &app.store.store;
    assert_eq!(store.expire_campaign_tags(seed.tenant, today + 3).await.unwrap(), 0);
    assert_eq!(
        store
            .tag(seed.tenant, siyu_core::TagId(running["id"].as_str().unwrap().parse().unwrap()))
            .await
            .unwrap()
            .customers,
        1
    );
    let owner = app.session("ct", "owner").await;
    let page = owner.send(&app, Method::GET, "/console/tags", None).await.text().await.unwrap();
    assert!(page.contains("活动标签") && page.contains("已结束") && page.contains("未开始"), "{page}");
    // Day 6 (last day 2 + 1 + 3 kept): everyone lets go, once.
    clock.advance(Duration::from_secs(3 * 86_400));
    assert_eq!(store.expire_campaign_tags(seed.tenant, today + 6).await.unwrap(), 1);
    assert_eq!(store.expire_campaign_tags(seed.tenant, today + 6).await.unwrap(), 0);
    let tag = ok(call(Method::GET, "/api/v1/tag-groups".into(), None).await, 200).await;
    assert!(tag.to_string().contains("\"customers\":0"), "{tag}");
    // Moving the upcoming campaign to today makes it givable.
    let path = format!("/api/v1/tags/{}/campaign", upcoming["id"].as_str().unwrap());
    let moved = ok(call(Method::PUT, path, Some(json!({"first_day": day(6), "last_day": day(9)}))).await, 200).await;
    assert_eq!(moved["campaign"]["first_day"], day(6));
    assert_eq!(call(Method::PUT, put(&upcoming), None).await.status(), 204);
    // The console creates one too, and explains a bad one.
    let owner = app.session("ct", "owner").await;
    let form = [
        ("_csrf", owner.csrf.as_str()),
        ("op", "campaign"),
        ("campaign_group_id", group["id"].as_str().unwrap()),
        ("campaign_name", "直播"),
        ("first_day", &day(9)),
        ("last_day", &day(6)),
        ("keep_days", ""),
    ];
    let r = owner.client.post(app.url("/console/tags")).form(&form).send().await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 422, "{}", &body[body.len().saturating_sub(3000)..]);
    assert!(body.contains("活动结束日超出允许范围"));
    let form = [
        ("_csrf", owner.csrf.as_str()),
        ("op", "campaign"),
        ("campaign_group_id", group["id"].as_str().unwrap()),
        ("campaign_name", "直播"),
        ("first_day", &day(6)),
        ("last_day", &day(7)),
        ("keep_days", ""),
    ];
    let r = owner.client.post(app.url("/console/tags")).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("直播"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_tags_sqlite() {
    campaign_tags_story(siyu_store::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_tags_postgres() {
    campaign_tags_story(siyu_store::Backend::Postgres).await;
}
