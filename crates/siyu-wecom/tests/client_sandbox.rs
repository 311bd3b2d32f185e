//! The real WeCom client against the sandbox, over HTTP on loopback, on a controllable clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::post;
use axum::Router;

use siyu_core::time::{Clock, ManualClock};
use siyu_core::Timestamp;
use siyu_wecom::api::{AddCorpTag, ContactWay, JoinWay, MsgTemplate, NewTag, Text};
use siyu_wecom::errcode::Action;
use siyu_wecom::events::{ContactChange, Event};
use siyu_wecom::sandbox::{Sandbox, SandboxConfig};
use siyu_wecom::{Callback, Client, ClientConfig, MsgCrypt, WecomError};

const CORP: &str = "wwSANDBOX0001";
const SECRET: &str = "app-secret-0001";
const TOKEN: &str = "cbtoken";
const KEY: &str = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt";

struct World {
    sb: Arc<Sandbox>,
    clock: ManualClock,
    base: String,
    received: Arc<Mutex<Vec<String>>>,
}

async fn serve(app: Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

/// A minimal callback receiver: verifies and decrypts with the same settings, records the
/// plaintext, and answers 200 only when everything checks out.
async fn receiver(received: Arc<Mutex<Vec<String>>>) -> String {
    type St = Arc<Mutex<Vec<String>>>;
    async fn recv(
        State(r): State<St>,
        Query(q): Query<std::collections::HashMap<String, String>>,
        body: String,
    ) -> axum::http::StatusCode {
        let c = MsgCrypt::new(TOKEN, KEY, CORP).unwrap();
        match c.decrypt_body(&q["msg_signature"], &q["timestamp"], &q["nonce"], &body) {
            Ok((_, p)) => {
                r.lock().unwrap().push(p.msg);
                axum::http::StatusCode::OK
            }
            Err(_) => axum::http::StatusCode::UNAUTHORIZED,
        }
    }
    let app = Router::new().route("/callback", post(recv)).with_state(received);
    format!("{}/callback", serve(app).await)
}

async fn world() -> World {
    let clock = ManualClock::at(Timestamp::from_unix_secs(1_800_000_000));
    let received = Arc::new(Mutex::new(Vec::new()));
    let mut cfg = SandboxConfig::new(CORP, SECRET, TOKEN, KEY);
    cfg.callback_url = Some(receiver(received.clone()).await);
    let sb = Sandbox::new(cfg, Arc::new(clock.clone()));
    sb.add_department(2, "上海门店", 1);
    sb.add_member("wangfang", "王芳", 2);
    sb.add_member("zhangwei", "张伟", 2);
    let base = serve(sb.router()).await;
    World { sb, clock, base, received }
}

fn client(w: &World) -> Arc<Client> {
    Arc::new(Client::new(ClientConfig::new(&w.base, CORP, SECRET), Arc::new(w.clock.clone())))
}

#[tokio::test]
async fn tokens_are_fetched_once_under_concurrency_and_refreshed_ahead_of_expiry() {
    let w = world().await;
    let c = client(&w);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move { c.departments().await.unwrap().len() }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 2);
    }
    assert_eq!(c.gettoken_calls(), 1, "one gettoken for fifty concurrent first calls");
    // At 80 % of expires_in the client refreshes before WeCom would reject the token.
    w.clock.advance(Duration::from_secs(5761));
    c.departments().await.unwrap();
    assert_eq!(c.gettoken_calls(), 2);
}

#[tokio::test]
async fn invalid_or_expired_tokens_are_refreshed_once_and_the_call_retried() {
    let w = world().await;
    let c = client(&w);
    c.departments().await.unwrap();
    w.sb.invalidate_tokens(); // 40014
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move { c.members(2).await.unwrap().len() }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 2);
    }
    assert_eq!(c.gettoken_calls(), 2, "twenty callers hitting 40014 share one refresh");
    w.sb.expire_tokens_now(); // 42001
    c.members(2).await.unwrap();
    assert_eq!(c.gettoken_calls(), 3);
}

#[tokio::test]
async fn configuration_errors_are_typed_and_not_retried() {
    let w = world().await;
    let bad = Client::new(ClientConfig::new(&w.base, CORP, "wrong"), Arc::new(w.clock.clone()));
    match bad.departments().await.unwrap_err() {
        WecomError::Api { code: 40001, action: Action::Configuration, meaning, .. } => {
            assert!(meaning.contains("Secret"))
        }
        other => panic!("{other:?}"),
    }
    let bad = Client::new(ClientConfig::new(&w.base, "wwWRONG", SECRET), Arc::new(w.clock.clone()));
    assert_eq!(bad.departments().await.unwrap_err().code(), Some(40013));
    let c = client(&w);
    w.sb.fail_next_gettoken(60020);
    assert_eq!(c.departments().await.unwrap_err().code(), Some(60020));
    assert!(c.departments().await.is_ok(), "the next attempt fetches a token normally");
}

#[tokio::test]
async fn busy_is_retried_and_rate_limits_pause_the_api() {
    let w = world().await;
    let c = client(&w);
    w.sb.fail_next_call(-1);
    assert_eq!(c.departments().await.unwrap().len(), 2, "-1 is retried");
    w.sb.set_per_minute(3);
    w.clock.advance(Duration::from_secs(60));
    for _ in 0..3 {
        c.members(2).await.unwrap();
    }
    assert_eq!(c.members(2).await.unwrap_err().code(), Some(45009));
    // Paused: the client does not call WeCom again until the block has passed.
    assert!(matches!(c.members(2).await.unwrap_err(), WecomError::Paused { .. }));
    assert!(c.departments().await.is_ok(), "other APIs are not paused");
    w.clock.advance(Duration::from_secs(61));
    assert!(c.members(2).await.is_ok());
}

#[tokio::test]
async fn a_scan_adds_a_contact_sends_a_callback_and_a_welcome_can_be_sent_once() {
    let w = world().await;
    let c = client(&w);
    let way = ContactWay {
        kind: 2,
        scene: 2,
        state: Some("c:1f".into()),
        user: vec!["wangfang".into(), "zhangwei".into()],
        skip_verify: true,
        ..Default::default()
    };
    let added = c.add_contact_way(&way).await.unwrap();
    assert!(!added.config_id.is_empty() && !added.qr_code.is_empty());
    let got = c.get_contact_way(&added.config_id).await.unwrap();
    assert_eq!((got.state.as_deref(), got.user.len()), (Some("c:1f"), 2));
    c.update_contact_way(&ContactWay {
        config_id: added.config_id.clone(),
        user: vec!["wangfang".into()],
        skip_verify: false,
        ..got.clone()
    })
    .await
    .unwrap();
    assert_eq!(w.sb.contact_way(&added.config_id).unwrap().user, vec!["wangfang"]);

    let ext = w.sb.add_external_user("李雷", Some("unionid-li"));
    let (userid, code) = w.sb.scan_contact_way(&added.config_id, &ext).await.unwrap();
    assert_eq!(userid, "wangfang");
    // The receiver verified and decrypted the callback; it parses into a typed add event.
    let msg = w.received.lock().unwrap().last().cloned().expect("a callback arrived");
    let cb = Callback::parse(&msg).unwrap();
    assert_eq!(cb.corp_id, CORP);
    match cb.event {
        Event::ExternalContact {
            change: ContactChange::Add, user_id, external_user_id, state, welcome_code, ..
        } => {
            assert_eq!(
                (user_id.as_str(), external_user_id.as_str(), state.as_deref(), welcome_code.as_deref()),
                ("wangfang", ext.as_str(), Some("c:1f"), Some(code.as_str()))
            );
        }
        other => panic!("{other:?}"),
    }
    let detail = c.contact(&ext).await.unwrap();
    assert_eq!(detail.external_contact.unionid.as_deref(), Some("unionid-li"));
    assert_eq!(detail.follow_user[0].state.as_deref(), Some("c:1f"));
    assert_eq!(c.contacts_of("wangfang").await.unwrap(), vec![ext.clone()]);
    let batch = c.contacts_by_users(&["wangfang".into()], "", 50).await.unwrap();
    assert_eq!(batch.external_contact_list[0].follow_info.state.as_deref(), Some("c:1f"));

    c.send_welcome_msg(&code, Some("欢迎！"), &[]).await.unwrap();
    assert_eq!(w.sb.welcomes()[0].text.as_deref(), Some("欢迎！"));
    assert_eq!(c.send_welcome_msg(&code, Some("again"), &[]).await.unwrap_err().code(), Some(41051), "single use");
    // A welcome code is worth 20 seconds.
    let ext2 = w.sb.add_external_user("韩梅梅", None);
    let (_, code2) = w.sb.scan_contact_way(&added.config_id, &ext2).await.unwrap();
    w.clock.advance(Duration::from_secs(21));
    assert_eq!(c.send_welcome_msg(&code2, Some("late"), &[]).await.unwrap_err().code(), Some(41051));
    assert_eq!(w.sb.welcomes().len(), 1);

    c.del_contact_way(&added.config_id).await.unwrap();
    assert_eq!(c.get_contact_way(&added.config_id).await.unwrap_err().code(), Some(40058));
    assert_eq!(c.contact("wmNOBODY").await.unwrap_err().code(), Some(40096));
}

#[tokio::test]
async fn corp_tags_round_trip_and_mark_relationships() {
    let w = world().await;
    let c = client(&w);
    let way = c
        .add_contact_way(&ContactWay { kind: 1, scene: 2, user: vec!["zhangwei".into()], ..Default::default() })
        .await
        .unwrap();
    let ext = w.sb.add_external_user("客户", None);
    w.sb.scan_contact_way(&way.config_id, &ext).await.unwrap();
    let g = c
        .add_corp_tag(&AddCorpTag {
            group_name: Some("渠道".into()),
            tag: vec![NewTag { name: "小红书".into(), order: None }, NewTag { name: "门店".into(), order: None }],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(g.tag.len(), 2);
    let tag = g.tag[0].id.clone();
    c.edit_corp_tag(&tag, Some("小红书种草"), None).await.unwrap();
    let all = c.corp_tags(&[], &[]).await.unwrap();
    assert_eq!(all[0].tag[0].name, "小红书种草");
    c.mark_tag("zhangwei", &ext, std::slice::from_ref(&tag), &[]).await.unwrap();
    assert_eq!(w.sb.relationship_tags(&ext, "zhangwei"), vec![tag.clone()]);
    assert_eq!(c.contact(&ext).await.unwrap().follow_user[0].tags[0].tag_name, "小红书种草");
    assert_eq!(c.mark_tag("zhangwei", &ext, &["etNOPE".into()], &[]).await.unwrap_err().code(), Some(40068));
    assert_eq!(c.mark_tag("wangfang", &ext, std::slice::from_ref(&tag), &[]).await.unwrap_err().code(), Some(84061));
    c.del_corp_tag(std::slice::from_ref(&tag), &[]).await.unwrap();
    assert!(w.sb.relationship_tags(&ext, "zhangwei").is_empty());
}

#[tokio::test]
async fn groups_join_ways_mass_sends_and_transfers() {
    let w = world().await;
    let c = client(&w);
    let chat = w.sb.add_group_chat("wangfang", "VIP 1 群");
    let list = c.group_chats(&["wangfang".into()], "", 100).await.unwrap();
    assert_eq!(list.group_chat_list[0].chat_id, chat);
    assert_eq!(c.group_chat(&chat).await.unwrap().owner, "wangfang");
    let jw = c
        .add_join_way(&JoinWay {
            scene: 2,
            auto_create_room: 1,
            chat_id_list: vec![chat.clone()],
            state: Some("g:1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let got = c.get_join_way(&jw).await.unwrap();
    assert_eq!(got.chat_id_list, vec![chat.clone()]);
    c.update_join_way(&JoinWay { config_id: jw.clone(), ..got }).await.unwrap();
    let too_many = JoinWay { scene: 2, chat_id_list: vec![chat.clone(); 6], ..Default::default() };
    assert_eq!(c.add_join_way(&too_many).await.unwrap_err().code(), Some(40058), "at most five groups");
    c.del_join_way(&jw).await.unwrap();

    let sent = c
        .add_msg_template(&MsgTemplate {
            sender: Some("wangfang".into()),
            text: Some(Text { content: "新品到店".into() }),
            external_userid: vec!["wmX".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!sent.msgid.is_empty());

    // 在职继承: waiting for 24 hours, then done; the relationship moves.
    let way = c
        .add_contact_way(&ContactWay { kind: 1, scene: 2, user: vec!["wangfang".into()], ..Default::default() })
        .await
        .unwrap();
    let ext = w.sb.add_external_user("老客", None);
    w.sb.scan_contact_way(&way.config_id, &ext).await.unwrap();
    let r = c
        .transfer_customer(false, "wangfang", "zhangwei", std::slice::from_ref(&ext), Some("您好，我是新的专属顾问"))
        .await
        .unwrap();
    assert_eq!(r[0].errcode, 0);
    assert_eq!(c.transfer_result(false, "wangfang", "zhangwei", "").await.unwrap().customer[0].status, 2);
    w.clock.advance(Duration::from_secs(86_401));
    assert_eq!(c.transfer_result(false, "wangfang", "zhangwei", "").await.unwrap().customer[0].status, 1);
    assert_eq!(c.contacts_of("zhangwei").await.unwrap(), vec![ext.clone()]);

    // Group transfer: a resigned-owner transfer fails while the owner is active.
    let failed = c.transfer_group_chats(true, std::slice::from_ref(&chat), "zhangwei").await.unwrap();
    assert_eq!(failed[0].errcode, 90500);
    w.sb.resign_member("wangfang");
    assert!(c.transfer_group_chats(true, std::slice::from_ref(&chat), "zhangwei").await.unwrap().is_empty());
    assert_eq!(w.sb.group_chat_owner(&chat).as_deref(), Some("zhangwei"));
}

#[tokio::test]
async fn miniprogram_login_codes_are_single_use_and_expire() {
    let w = world().await;
    let cfg = w.sb.config();
    let mp = siyu_wecom::miniprogram::MiniProgram::new(&w.base, &cfg.miniprogram_appid, &cfg.miniprogram_secret);
    let code = w.sb.issue_login_code("oOPENID1", Some("unionid-li"));
    let s = mp.code2session(&code).await.unwrap();
    assert_eq!((s.openid.as_str(), s.unionid.as_deref()), ("oOPENID1", Some("unionid-li")));
    assert!(!format!("{s:?}").contains(&s.session_key), "the session key never prints");
    assert_eq!(mp.code2session(&code).await.unwrap_err().code(), Some(40029), "single use");
    let late = w.sb.issue_login_code("oOPENID2", None);
    w.clock.advance(Duration::from_secs(301));
    assert_eq!(mp.code2session(&late).await.unwrap_err().code(), Some(40029), "valid five minutes");
    w.sb.flag_risky("oRISKY");
    let risky = w.sb.issue_login_code("oRISKY", None);
    match mp.code2session(&risky).await.unwrap_err() {
        WecomError::Api { code: 40226, meaning, .. } => assert!(meaning.contains("high-risk")),
        other => panic!("{other:?}"),
    }
    let wrong = siyu_wecom::miniprogram::MiniProgram::new(&w.base, &cfg.miniprogram_appid, "wrong");
    assert_eq!(wrong.code2session(&w.sb.issue_login_code("o3", None)).await.unwrap_err().code(), Some(40125));
}

#[tokio::test]
async fn mass_sends_wait_for_confirmation_and_respect_the_receive_limit() {
    let w = world().await;
    let c = client(&w);
    let way = c
        .add_contact_way(&ContactWay { kind: 1, scene: 2, user: vec!["wangfang".into()], ..Default::default() })
        .await
        .unwrap();
    let a = w.sb.add_external_user("甲", None);
    let b = w.sb.add_external_user("乙", None);
    w.sb.scan_contact_way(&way.config_id, &a).await.unwrap();
    w.sb.scan_contact_way(&way.config_id, &b).await.unwrap();
    let stranger = w.sb.add_external_user("丙", None);
    let send = |to: Vec<String>| MsgTemplate {
        sender: Some("wangfang".into()),
        text: Some(Text { content: "周末上新".into() }),
        external_userid: to,
        ..Default::default()
    };
    let first = c.add_msg_template(&send(vec![a.clone(), b.clone(), stranger.clone()])).await.unwrap();
    assert_eq!(first.fail_list, vec![stranger.clone()], "not a friend");
    // Nothing is sent until the member confirms in the WeCom client.
    assert_eq!(c.groupmsg_task(&first.msgid, "").await.unwrap().task_list[0].status, 0);
    let r = c.groupmsg_send_result(&first.msgid, "wangfang", "").await.unwrap();
    assert!(r.send_list.iter().filter(|x| x.external_userid != stranger).all(|x| x.status == 0));
    w.sb.confirm_mass_send(&first.msgid).unwrap();
    assert_eq!(c.groupmsg_task(&first.msgid, "").await.unwrap().task_list[0].status, 2);
    let r = c.groupmsg_send_result(&first.msgid, "wangfang", "").await.unwrap();
    let status =
        |r: &siyu_wecom::api::SendResults, e: &str| r.send_list.iter().find(|x| x.external_userid == e).unwrap().status;
    assert_eq!((status(&r, &a), status(&r, &b), status(&r, &stranger)), (1, 1, 2));
    // A second send the same day hits the receive limit (status 3).
    let second = c.add_msg_template(&send(vec![a.clone()])).await.unwrap();
    w.sb.confirm_mass_send(&second.msgid).unwrap();
    assert_eq!(status(&c.groupmsg_send_result(&second.msgid, "wangfang", "").await.unwrap(), &a), 3);
    let now = w.clock.now().unix_secs();
    let listed = c.groupmsg_list("single", now - 60, now + 60, "").await.unwrap();
    assert_eq!(listed.group_msg_list.len(), 2);
}

#[tokio::test]
async fn join_ways_roll_over_to_a_new_group_at_exactly_200() {
    let w = world().await;
    let c = client(&w);
    let first = w.sb.add_group_chat("wangfang", "福利群1");
    let jw = c
        .add_join_way(&JoinWay {
            scene: 2,
            auto_create_room: 1,
            room_base_name: Some("福利群".into()),
            room_base_id: Some(1),
            chat_id_list: vec![first.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    // The owner plus 199 customers fill the first group to 200.
    for i in 0..199 {
        let e = w.sb.add_external_user(&format!("顾客{i}"), None);
        assert_eq!(w.sb.join_via_join_way(&jw, &e).await.unwrap(), first);
    }
    assert_eq!(w.sb.group_member_count(&first), 200);
    let before = w.received.lock().unwrap().len();
    let e = w.sb.add_external_user("第201位", None);
    let second = w.sb.join_via_join_way(&jw, &e).await.unwrap();
    assert_ne!(second, first, "the 201st joiner lands in a new group");
    assert_eq!(w.sb.group_member_count(&second), 2);
    assert!(w.sb.join_way(&jw).unwrap().chat_id_list.contains(&second));
    // WeCom announced the new group, then the join.
    let events: Vec<Callback> =
        w.received.lock().unwrap()[before..].iter().map(|m| Callback::parse(m).unwrap()).collect();
    match (&events[0].event, &events[1].event) {
        (
            Event::ExternalChat { change: siyu_wecom::events::ChatChange::Create, chat_id, .. },
            Event::ExternalChat { mem_change_list, join_scene, .. },
        ) => {
            assert_eq!(chat_id, &second);
            assert_eq!((mem_change_list.clone(), *join_scene), (vec![e.clone()], Some(3)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.group_chat(&second).await.unwrap().name, "福利群2");
    w.sb.leave_group(&second, &e).await.unwrap();
    assert_eq!(w.sb.group_member_count(&second), 1);
    // Without auto-create, a full pool refuses the join.
    let full = c
        .add_join_way(&JoinWay {
            scene: 2,
            auto_create_room: 0,
            chat_id_list: vec![first.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let late = w.sb.add_external_user("迟到", None);
    assert!(w.sb.join_via_join_way(&full, &late).await.is_err());
}

#[tokio::test]
async fn the_control_api_drives_the_corp_over_http() {
    let w = world().await;
    let c = client(&w);
    let way = c
        .add_contact_way(&ContactWay { kind: 1, scene: 2, user: vec!["wangfang".into()], ..Default::default() })
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let ext: serde_json::Value = http
        .post(format!("{}/sandbox/external-users", w.base))
        .json(&serde_json::json!({"name": "远程"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ext = ext["external_userid"].as_str().unwrap().to_string();
    let scan: serde_json::Value = http
        .post(format!("{}/sandbox/scan", w.base))
        .json(&serde_json::json!({"config_id": way.config_id, "external_userid": ext}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    c.send_welcome_msg(scan["welcome_code"].as_str().unwrap(), Some("你好"), &[]).await.unwrap();
    let welcomes: serde_json::Value =
        http.get(format!("{}/sandbox/welcomes", w.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(welcomes["welcomes"][0]["text"], "你好");
    http.post(format!("{}/sandbox/faults", w.base))
        .json(&serde_json::json!({"next_call": 45033}))
        .send()
        .await
        .unwrap();
    assert_eq!(c.departments().await.unwrap_err().code(), Some(45033));
    let r = http
        .post(format!("{}/sandbox/scan", w.base))
        .json(&serde_json::json!({"config_id": "nope", "external_userid": ext}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn the_contact_way_quota_is_enforced() {
    let clock = ManualClock::at(Timestamp::from_unix_secs(1_800_000_000));
    let mut cfg = SandboxConfig::new(CORP, SECRET, TOKEN, KEY);
    cfg.way_quota = 2;
    let sb = Sandbox::new(cfg, Arc::new(clock.clone()));
    sb.add_member("wangfang", "王芳", 1);
    let base = serve(sb.router()).await;
    let c = Client::new(ClientConfig::new(&base, CORP, SECRET), Arc::new(clock));
    let way = ContactWay { kind: 1, scene: 2, user: vec!["wangfang".into()], ..Default::default() };
    c.add_contact_way(&way).await.unwrap();
    c.add_contact_way(&way).await.unwrap();
    assert_eq!(c.add_contact_way(&way).await.unwrap_err().code(), Some(41100));
}

#[tokio::test]
async fn resigned_transfers_and_in_service_group_transfers() {
    let w = world().await;
    let c = client(&w);
    let way = c
        .add_contact_way(&ContactWay { kind: 1, scene: 2, user: vec!["wangfang".into()], ..Default::default() })
        .await
        .unwrap();
    let ext = w.sb.add_external_user("离职客户", None);
    w.sb.scan_contact_way(&way.config_id, &ext).await.unwrap();
    w.sb.resign_member("wangfang");
    let r = c.transfer_customer(true, "wangfang", "zhangwei", std::slice::from_ref(&ext), None).await.unwrap();
    assert_eq!(r[0].errcode, 0);
    assert_eq!(c.transfer_result(true, "wangfang", "zhangwei", "").await.unwrap().customer[0].status, 2);
    // A refusal is final and reported as status 3.
    w.sb.refuse_transfer(&ext);
    w.clock.advance(Duration::from_secs(86_401));
    assert_eq!(c.transfer_result(true, "wangfang", "zhangwei", "").await.unwrap().customer[0].status, 3);
    // Not a relationship of the handover member: per-item errcode 84061.
    let stranger = w.sb.add_external_user("陌生人", None);
    let r = c.transfer_customer(false, "zhangwei", "wangfang", &[stranger], None).await.unwrap();
    assert_eq!(r[0].errcode, 84061);
    // In-service group transfer moves the owner at once.
    let chat = w.sb.add_group_chat("zhangwei", "在职群");
    assert!(c.transfer_group_chats(false, std::slice::from_ref(&chat), "wangfang").await.unwrap().is_empty());
    assert_eq!(w.sb.group_chat_owner(&chat).as_deref(), Some("wangfang"));
    let failed = c.transfer_group_chats(false, &["wrNOPE".into()], "wangfang").await.unwrap();
    assert_eq!(failed[0].errcode, 90501);
}

#[tokio::test]
async fn remaining_errcode_paths() {
    let w = world().await;
    let c = client(&w);
    // 40003: an unknown member.
    let way = ContactWay { kind: 1, scene: 2, user: vec!["nobody".into()], ..Default::default() };
    assert_eq!(c.add_contact_way(&way).await.unwrap_err().code(), Some(40003));
    // 41096 (another app is sending the welcome) is retried; the next attempt succeeds.
    let way = c
        .add_contact_way(&ContactWay { kind: 1, scene: 2, user: vec!["wangfang".into()], ..Default::default() })
        .await
        .unwrap();
    let ext = w.sb.add_external_user("欢迎", None);
    let (_, code) = w.sb.scan_contact_way(&way.config_id, &ext).await.unwrap();
    w.sb.fail_next_call(41096);
    c.send_welcome_msg(&code, Some("你好"), &[]).await.unwrap();
    assert_eq!(w.sb.welcomes().len(), 1);
    // Permission problems are configuration errors with the fix in words.
    for (code, needle) in [(48002, "可调用应用"), (84074, "客户联系"), (60011, "可见范围"), (60020, "企业可信IP")]
    {
        w.sb.fail_next_call(code);
        match c.departments().await.unwrap_err() {
            WecomError::Api { code: got, action: Action::Configuration, meaning, .. } => {
                assert_eq!(got, code);
                assert!(meaning.contains(needle), "{code}: {meaning}");
            }
            other => panic!("{code}: {other:?}"),
        }
    }
    // 41001: a call without a token never comes from the client, but the sandbox refuses it.
    let r: serde_json::Value =
        reqwest::get(format!("{}/cgi-bin/department/list", w.base)).await.unwrap().json().await.unwrap();
    assert_eq!(r["errcode"], 41001);
}
