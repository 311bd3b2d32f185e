//! The store's conformance suite: every story here runs on SQLite and on PostgreSQL.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use siyu_core::auth::{Actor, DataScope, Role, Scope};
use siyu_core::org::{StaffInput, StoreInput, TenantSettings};
use siyu_core::paging::PageRequest;
use siyu_core::time::{ManualClock, Timestamp};
use siyu_core::UserId;
use siyu_store::audit::AuditFilter;
use siyu_store::idempotency::Claim;
use siyu_store::jobs::NewJob;
use siyu_store::org::{NewUser, StaffFilter, StoreFilter, UserPatch};
use siyu_store::testing::TestStore;
use siyu_store::{both_backends, on_read, StoreError};

fn store_input(code: &str, name: &str) -> StoreInput {
    StoreInput::validate(code, name, Some("上海"), None, None, None).unwrap()
}

fn staff_input(name: &str, userid: &str) -> StaffInput {
    StaffInput::validate(name, Some(userid), None, None, None, None).unwrap()
}

both_backends!(numbered_placeholders_bind_by_number, |s| async move {
    // SQL is written once with `$N`; SQLite must bind by number, not by order of appearance.
    let (a, b): (i64, String) =
        on_read!(s.store, |p| sqlx::query_as("SELECT $2, $1").bind("one").bind(2i64).fetch_one(p).await.unwrap());
    assert_eq!((a, b.as_str()), (2, "one"));
});

both_backends!(migrations_are_idempotent, |s| async move {
    s.migrate().await.unwrap();
    assert_eq!(s.applied_migrations().await.unwrap(), s.known_migrations());
    assert!(s.known_migrations().len() >= 2);
    s.ping().await.unwrap();
});

both_backends!(tenants_never_see_each_other, |s| async move {
    let a = s.create_tenant("brand-a", "品牌A", "Asia/Shanghai").await.unwrap();
    let b = s.create_tenant("brand-b", "品牌B", "Asia/Shanghai").await.unwrap();
    let (aa, ab) = (Actor::system(a.id), Actor::system(b.id));
    let sa = s.create_store(&aa, &store_input("sh-01", "上海店")).await.unwrap();
    // Same code in another tenant is fine: uniqueness is per tenant.
    let sb = s.create_store(&ab, &store_input("sh-01", "上海店")).await.unwrap();
    let page = s.list_stores(a.id, &StoreFilter::default(), &PageRequest::default()).await.unwrap();
    assert_eq!(page.items.iter().map(|x| x.id).collect::<Vec<_>>(), vec![sa.id]);
    assert!(matches!(s.store(a.id, sb.id).await, Err(StoreError::NotFound)));
    assert!(matches!(s.update_store(&aa, sb.id, &store_input("x1", "偷改")).await, Err(StoreError::NotFound)));
    assert_eq!(s.store(b.id, sb.id).await.unwrap().name, "上海店");
    let staff_b = s.create_staff(&ab, &staff_input("乙", "yi")).await.unwrap();
    assert!(matches!(s.staff(a.id, DataScope::Tenant, staff_b.id).await, Err(StoreError::NotFound)));
    // A tenant cannot point its staff at another tenant's store.
    let mut bad = staff_input("甲", "jia");
    bad.store_id = Some(sb.id);
    assert!(matches!(s.create_staff(&aa, &bad).await, Err(StoreError::BadReference("store_id"))));
});

both_backends!(duplicates_name_their_field, |s| async move {
    let t = s.create_tenant("dup", "Dup", "Asia/Shanghai").await.unwrap();
    assert!(matches!(s.create_tenant("dup", "Again", "UTC").await, Err(StoreError::Duplicate("slug"))));
    let a = Actor::system(t.id);
    s.create_store(&a, &store_input("bj-01", "北京店")).await.unwrap();
    assert!(matches!(s.create_store(&a, &store_input("bj-01", "北京二店")).await, Err(StoreError::Duplicate("code"))));
    s.create_staff(&a, &staff_input("王芳", "wangfang")).await.unwrap();
    assert!(matches!(
        s.create_staff(&a, &staff_input("王芳2", "wangfang")).await,
        Err(StoreError::Duplicate("wecom_userid"))
    ));
    let nu = |login: &str| NewUser {
        login: login.into(),
        display_name: "x".into(),
        role: Role::Operator,
        staff_id: None,
        password_hash: "h".into(),
    };
    s.create_user(&a, nu("ops")).await.unwrap();
    assert!(matches!(s.create_user(&a, nu("ops")).await, Err(StoreError::Duplicate("login"))));
});

both_backends!(guides_see_only_their_own_staff_record, |s| async move {
    let t = s.create_tenant("g", "G", "Asia/Shanghai").await.unwrap();
    let a = Actor::system(t.id);
    let me = s.create_staff(&a, &staff_input("我", "me")).await.unwrap();
    let other = s.create_staff(&a, &staff_input("别人", "other")).await.unwrap();
    let guide = Actor::user(t.id, UserId::new(), Role::Guide, "g".into(), Some(me.id));
    let list = s.list_staff(t.id, guide.data_scope, &StaffFilter::default(), &PageRequest::default()).await.unwrap();
    assert_eq!(list.items.iter().map(|x| x.id).collect::<Vec<_>>(), vec![me.id]);
    assert!(matches!(s.staff(t.id, guide.data_scope, other.id).await, Err(StoreError::NotFound)));
    assert!(matches!(s.update_staff(&guide, other.id, &staff_input("改", "other")).await, Err(StoreError::NotFound)));
    assert_eq!(s.staff(t.id, DataScope::Tenant, other.id).await.unwrap().name, "别人");
    s.update_staff(&guide, me.id, &staff_input("我自己", "me")).await.unwrap();
    let unlinked = Actor::user(t.id, UserId::new(), Role::Guide, "u".into(), None);
    let none = s.list_staff(t.id, unlinked.data_scope, &StaffFilter::default(), &PageRequest::default()).await.unwrap();
    assert!(none.items.is_empty());
});

both_backends!(every_change_is_audited_with_before_and_after, |s| async move {
    let t = s.create_tenant("aud", "Aud", "Asia/Shanghai").await.unwrap();
    let a = Actor::user(t.id, UserId::new(), Role::Admin, "管理员".into(), None);
    let st = s.create_store(&a, &store_input("gz-01", "广州店")).await.unwrap();
    s.update_store(&a, st.id, &store_input("gz-01", "广州旗舰店")).await.unwrap();
    s.update_tenant_settings(&a, &TenantSettings::validate("新名字", "Asia/Shanghai", "en", None).unwrap())
        .await
        .unwrap();
    let f = AuditFilter { entity_type: Some("store".into()), ..Default::default() };
    let log = s.list_audit(t.id, &f, &PageRequest::default()).await.unwrap().items;
    assert_eq!(log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), vec!["store.update", "store.create"]);
    assert_eq!(log[0].before.as_ref().unwrap()["name"], "广州店");
    assert_eq!(log[0].after.as_ref().unwrap()["name"], "广州旗舰店");
    assert_eq!(log[0].actor_name, "管理员");
    assert!(log[1].before.is_none());
    // A rejected change leaves no audit row.
    let _ = s.create_store(&a, &store_input("gz-01", "重复")).await.unwrap_err();
    let all = s.list_audit(t.id, &AuditFilter::default(), &PageRequest::default()).await.unwrap().items;
    assert_eq!(all.len(), 4, "tenant.create, store.create, store.update, tenant.update");
});

both_backends!(paging_walks_every_store_once, |s| async move {
    let t = s.create_tenant("pg", "P", "Asia/Shanghai").await.unwrap();
    let a = Actor::system(t.id);
    for i in 0..23 {
        s.create_store(&a, &store_input(&format!("s-{i:02}"), &format!("店{i}"))).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let req = PageRequest::parse(Some(5), cursor.as_deref()).unwrap();
        let page = s.list_stores(t.id, &StoreFilter::default(), &req).await.unwrap();
        seen.extend(page.items.iter().map(|x| x.code.clone()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let expected: Vec<String> = (0..23).rev().map(|i| format!("s-{i:02}")).collect();
    assert_eq!(seen, expected);
    let q = StoreFilter { q: Some("S-1".into()), ..Default::default() };
    assert_eq!(s.list_stores(t.id, &q, &PageRequest::default()).await.unwrap().items.len(), 10);
});

both_backends!(last_owner_cannot_be_demoted, |s| async move {
    let t = s.create_tenant("own", "O", "Asia/Shanghai").await.unwrap();
    let a = Actor::system(t.id);
    let owner = s
        .create_user(
            &a,
            NewUser {
                login: "boss".into(),
                display_name: "老板".into(),
                role: Role::Owner,
                staff_id: None,
                password_hash: "h".into(),
            },
        )
        .await
        .unwrap();
    let demote = UserPatch { role: Some(Role::Admin), ..Default::default() };
    assert!(matches!(s.update_user(&a, owner.id, &demote).await, Err(StoreError::Conflict(_))));
    let disable = UserPatch { disabled: Some(true), ..Default::default() };
    assert!(matches!(s.update_user(&a, owner.id, &disable).await, Err(StoreError::Conflict(_))));
});

both_backends!(sessions_expire_and_die_with_the_user, |s| async move {
    let _ = s;
    let clock = ManualClock::at(Timestamp::from_unix_secs(1_800_000_000));
    let backend = s.backend();
    drop(s);
    let s = TestStore::with_clock(backend, Arc::new(clock.clone())).await;
    let t = s.create_tenant("ses", "S", "Asia/Shanghai").await.unwrap();
    let a = Actor::system(t.id);
    let hash = siyu_store::secrets::hash_password("pass1234");
    let u = s
        .create_user(
            &a,
            NewUser {
                login: "ops".into(),
                display_name: "运营".into(),
                role: Role::Operator,
                staff_id: None,
                password_hash: hash,
            },
        )
        .await
        .unwrap();
    let sess = s.create_session(&u, Some("127.0.0.1"), Some("test")).await.unwrap();
    assert_eq!(s.session(&sess.cookie).await.unwrap().unwrap().user.id, u.id);
    assert!(s.session("garbage").await.unwrap().is_none());
    // Idle past the limit: gone.
    clock.advance(siyu_store::auth::SESSION_IDLE + Duration::from_secs(1));
    assert!(s.session(&sess.cookie).await.unwrap().is_none());
    // A new session ends when the user is disabled.
    let sess = s.create_session(&u, None, None).await.unwrap();
    s.update_user(&a, u.id, &UserPatch { disabled: Some(true), ..Default::default() }).await.unwrap();
    assert!(s.session(&sess.cookie).await.unwrap().is_none());
    let (found, hash) = s.user_for_login(t.id, "OPS").await.unwrap().unwrap();
    assert_eq!(found.id, u.id);
    assert!(siyu_store::secrets::verify_password("pass1234", &hash));
});

both_backends!(tokens_resolve_until_revoked_or_expired, |s| async move {
    let t = s.create_tenant("tok", "T", "Asia/Shanghai").await.unwrap();
    let a = Actor::system(t.id);
    let (tok, plain) = s.create_token(&a, "ERP", &[Scope::StoresRead], None).await.unwrap();
    assert!(plain.starts_with("siyu_"));
    let (tenant, found) = s.token_by_secret(&plain).await.unwrap().unwrap();
    assert_eq!((tenant, found.id), (t.id, tok.id));
    assert_eq!(found.scopes, vec![Scope::StoresRead]);
    // A token string with a forged tenant does not resolve.
    let other = s.create_tenant("tok2", "T2", "Asia/Shanghai").await.unwrap();
    let forged = plain.replace(&t.id.0.simple().to_string(), &other.id.0.simple().to_string());
    assert!(s.token_by_secret(&forged).await.unwrap().is_none());
    s.revoke_token(&a, tok.id).await.unwrap();
    assert!(s.token_by_secret(&plain).await.unwrap().is_none());
    let (_, expired) = s.create_token(&a, "old", &[Scope::StoresRead], Some(Timestamp(s.now().0 - 1))).await.unwrap();
    assert!(s.token_by_secret(&expired).await.unwrap().is_none());
});

both_backends!(login_failures_are_counted_per_login, |s| async move {
    let t = s.create_tenant("lf", "L", "Asia/Shanghai").await.unwrap();
    let since = Timestamp(s.now().0 - 1);
    for _ in 0..3 {
        s.record_login_failure(t.id, "ops").await.unwrap();
    }
    s.record_login_failure(t.id, "other").await.unwrap();
    assert_eq!(s.login_failures_since(t.id, "ops", since).await.unwrap().len(), 3);
    s.clear_login_failures(t.id, "ops").await.unwrap();
    assert!(s.login_failures_since(t.id, "ops", since).await.unwrap().is_empty());
});

both_backends!(idempotency_claims_replay_and_detect_misuse, |s| async move {
    let t = s.create_tenant("idem", "I", "Asia/Shanghai").await.unwrap();
    let Claim::Fresh(c1) = s.idempotency_claim(t.id, "user:1", "k1", "h1").await.unwrap() else { panic!("fresh") };
    assert_eq!(s.idempotency_claim(t.id, "user:1", "k1", "h1").await.unwrap(), Claim::InProgress);
    assert_eq!(s.idempotency_claim(t.id, "user:1", "k1", "h2").await.unwrap(), Claim::Mismatch);
    // Another actor with the same key is independent.
    let Claim::Fresh(c2) = s.idempotency_claim(t.id, "user:2", "k1", "h9").await.unwrap() else { panic!("fresh") };
    s.idempotency_complete(
        siyu_store::idempotency::KeyRef { tenant: t.id, actor_key: "user:1", key: "k1" },
        c1,
        201,
        "application/json",
        b"{\"id\":1}",
    )
    .await
    .unwrap();
    assert_eq!(
        s.idempotency_claim(t.id, "user:1", "k1", "h1").await.unwrap(),
        Claim::Replay { status: 201, content_type: "application/json".into(), body: b"{\"id\":1}".to_vec() }
    );
    s.idempotency_abandon(siyu_store::idempotency::KeyRef { tenant: t.id, actor_key: "user:2", key: "k1" }, c2)
        .await
        .unwrap();
    assert!(matches!(s.idempotency_claim(t.id, "user:2", "k1", "h9").await.unwrap(), Claim::Fresh(_)));
    // Stored responses are sealed at rest.
    let raw: Vec<Vec<u8>> = on_read!(s.store, |p| sqlx::query_scalar(
        "SELECT response_body FROM idempotency_keys WHERE status_code IS NOT NULL"
    )
    .fetch_all(p)
    .await
    .unwrap());
    assert!(raw.iter().all(|b| b.starts_with(b"v1:") && !b.windows(4).any(|w| w == b"\"id\"")));
});

both_backends!(jobs_lease_retry_and_fence, |s| async move {
    let id = s.enqueue(NewJob::new("test.kind", serde_json::json!({"n": 1})).dedupe("once")).await.unwrap();
    assert_eq!(s.enqueue(NewJob::new("test.kind", serde_json::json!({"n": 2})).dedupe("once")).await.unwrap(), id);
    let lease = Duration::from_millis(300);
    let got = s.claim_jobs("w1", 10, lease).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attempts, 1);
    assert!(s.claim_jobs("w2", 10, lease).await.unwrap().is_empty(), "a leased job is not handed out twice");
    // w1 dies; after its lease expires w2 gets the job with a new attempt number.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = s.claim_jobs("w2", 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 2));
    assert!(!s.complete_job(id, "w1", 1).await.unwrap(), "a worker that lost its lease cannot complete");
    assert!(!s.heartbeat_job(id, "w1", 1, lease).await.unwrap());
    assert!(s.fail_job(id, "w2", 2, "boom", Some(s.now())).await.unwrap());
    let third = s.claim_jobs("w3", 10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(third[0].attempts, 3);
    assert!(s.complete_job(id, "w3", 3).await.unwrap());
    let j = s.job(id).await.unwrap();
    assert_eq!(j.status, siyu_core::jobs::JobStatus::Done);
    assert!(s.claim_jobs("w4", 10, lease).await.unwrap().is_empty());
});

both_backends!(concurrent_claimers_never_share_a_job, |s| async move {
    for i in 0..200 {
        s.enqueue(NewJob::new("test.kind", serde_json::json!({ "i": i }))).await.unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..8 {
        let st = s.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = st.claim_jobs(&format!("w{w}"), 7, Duration::from_secs(60)).await.unwrap();
                if got.is_empty() {
                    break;
                }
                for j in got {
                    assert!(st.complete_job(j.id, &format!("w{w}"), j.attempts).await.unwrap());
                    mine.push(j.id);
                }
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!((all.len(), unique.len()), (200, 200));
});

both_backends!(dead_jobs_can_be_retried_by_their_tenant, |s| async move {
    let t = s.create_tenant("dj", "D", "Asia/Shanghai").await.unwrap();
    let id = s.enqueue(NewJob::new("test.kind", serde_json::json!({})).tenant(t.id).attempts(1)).await.unwrap();
    let j = s.claim_jobs("w", 1, Duration::from_secs(30)).await.unwrap().remove(0);
    s.fail_job(id, "w", j.attempts, "no", None).await.unwrap();
    assert_eq!(s.job(id).await.unwrap().status, siyu_core::jobs::JobStatus::Dead);
    let other = s.create_tenant("dj2", "D2", "Asia/Shanghai").await.unwrap();
    assert!(matches!(s.retry_dead_job(other.id, id).await, Err(StoreError::NotFound)));
    s.retry_dead_job(t.id, id).await.unwrap();
    assert_eq!(s.job(id).await.unwrap().status, siyu_core::jobs::JobStatus::Queued);
});

both_backends!(bulk_paths_insert_exactly, |s| async move {
    let t = s.create_tenant("bulk", "B", "Asia/Shanghai").await.unwrap();
    let rows: Vec<_> = (0..5000)
        .map(|i| siyu_store::bulk::StaffSeed { name: format!("员工, \"{i}\""), wecom_userid: format!("u{i}") })
        .collect();
    assert_eq!(s.bulk_insert_staff(t.id, &rows).await.unwrap(), 5000);
    assert_eq!(s.generate_staff_in_db(t.id, 3000, "g").await.unwrap(), 3000);
    assert_eq!(s.org_counts(t.id).await.unwrap().staff, 8000);
    let f = StaffFilter { q: Some("u4999".into()), ..Default::default() };
    let found = s.list_staff(t.id, DataScope::Tenant, &f, &PageRequest::default()).await.unwrap();
    assert_eq!(found.items[0].name, "员工, \"4999\"");
});

both_backends!(searches_match_wildcards_literally, |s| async move {
    let t = s.create_tenant("lk", "L", "Asia/Shanghai").await.unwrap();
    let a = Actor::system(t.id);
    s.create_store(&a, &store_input("a_1", "下划线店")).await.unwrap();
    s.create_store(&a, &store_input("ab1", "普通店")).await.unwrap();
    let q = StoreFilter { q: Some("a_1".into()), ..Default::default() };
    let found = s.list_stores(t.id, &q, &PageRequest::default()).await.unwrap().items;
    assert_eq!(found.iter().map(|x| x.code.as_str()).collect::<Vec<_>>(), vec!["a_1"], "_ is not a wildcard");
    let q = StoreFilter { q: Some("%".into()), ..Default::default() };
    assert!(s.list_stores(t.id, &q, &PageRequest::default()).await.unwrap().items.is_empty(), "% is not a wildcard");
    let f = AuditFilter { action_prefix: Some("store.cre".into()), ..Default::default() };
    assert_eq!(s.list_audit(t.id, &f, &PageRequest::default()).await.unwrap().items.len(), 2);
});

both_backends!(processed_callbacks_are_purged_after_retention_but_events_stay, |s| async move {
    let clock = ManualClock::at(Timestamp::from_unix_secs(1_800_000_000));
    let s = TestStore::with_clock(s.backend(), Arc::new(clock.clone())).await;
    let t = s.create_tenant("ret", "R", "Asia/Shanghai").await.unwrap();
    let a = Actor::system(t.id);
    let input = siyu_core::wecom::AppInput::validate("A", "wwRETENTION1", "1", "https://qyapi.weixin.qq.com").unwrap();
    let app = s
        .create_wecom_app(&a, &input, "secret-value-1", "tok", "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt")
        .await
        .unwrap();
    let incoming = |key: &'static str| siyu_store::wecom::IncomingCallback {
        app_id: app.id,
        timestamp: 1,
        nonce: key,
        dedupe_key: key,
        envelope: "<xml/>",
        payload: "<xml/>",
        event_kind: "k",
        entity: "e",
    };
    let siyu_store::wecom::Accepted::New(old) = s.accept_callback(t.id, &incoming("old")).await.unwrap() else {
        panic!("new")
    };
    let item = s.inbox_item(t.id, old).await.unwrap();
    assert!(s.record_wecom_event(t.id, &item, "k", &serde_json::json!({}), Timestamp(0)).await.unwrap());
    clock.advance(Duration::from_secs(31 * 86_400));
    s.accept_callback(t.id, &incoming("new")).await.unwrap();
    assert_eq!(s.purge_wecom_inbox(Duration::from_secs(30 * 86_400)).await.unwrap(), 1, "only the old, processed one");
    assert!(matches!(s.inbox_item(t.id, old).await, Err(StoreError::NotFound)));
    let events = s.list_wecom_events(t.id, None, &PageRequest::default()).await.unwrap();
    assert_eq!(events.items.len(), 1, "the event outlives its callback");
});
