//! The WeCom sandbox: a simulated corp that speaks the API subset siyu uses and sends signed,
//! encrypted callbacks exactly as WeCom does, so the demo, the tests and an evaluating brand
//! can run the whole flow without a WeCom corp (protocols.md §9).
//!
//! It keeps real state (members, external contacts, relationships, corp tags, contact ways,
//! join ways, group chats, welcome codes, transfers), runs on an injectable clock, and enforces
//! WeCom's limits and errcodes: expiring and invalidated tokens, per-API rate buckets (45009),
//! single-use welcome codes valid 20 s (41051 after use or expiry), the 24-hour transfer rule
//! and the 2-in-90-days limit. Tests and the demo drive it through [`Sandbox`]'s methods; the
//! same actions are exposed over HTTP under `/sandbox/…`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::distributions::{Alphanumeric, DistString};
use rand::Rng;
use serde_json::{json, Value};

use siyu_core::time::Clock;
use siyu_core::Timestamp;

use crate::api::{ContactWay, Department, ExternalContact, FollowUser, GroupChat, JoinWay, Member, TagGroup};
use crate::crypto::{Format, MsgCrypt};

/// Settings of the simulated corp.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub corp_id: String,
    /// The app secret `gettoken` accepts.
    pub secret: String,
    /// Callback Token and EncodingAESKey, as configured in WeCom's admin console.
    pub callback_token: String,
    pub encoding_aes_key: String,
    /// Where callbacks go; `None` sends none.
    pub callback_url: Option<String>,
    pub token_ttl: Duration,
    /// Calls per API per minute before 45009.
    pub per_minute: u32,
    pub welcome_code_ttl: Duration,
    /// Joins by scanning stop at this many members (default 200).
    pub scan_join_limit: usize,
    /// API-created contact ways and join ways a corp may hold (WeCom: 500,000).
    pub way_quota: usize,
    /// Mass sends one customer may receive per day before WeCom reports status 3.
    pub receive_limit_per_day: u32,
    /// The mini-program `jscode2session` accepts.
    pub miniprogram_appid: String,
    pub miniprogram_secret: String,
}

impl SandboxConfig {
    pub fn new(corp_id: &str, secret: &str, callback_token: &str, encoding_aes_key: &str) -> Self {
        SandboxConfig {
            corp_id: corp_id.into(),
            secret: secret.into(),
            callback_token: callback_token.into(),
            encoding_aes_key: encoding_aes_key.into(),
            callback_url: None,
            token_ttl: Duration::from_secs(7200),
            per_minute: 10_000,
            welcome_code_ttl: Duration::from_secs(20),
            scan_join_limit: 200,
            way_quota: 500_000,
            receive_limit_per_day: 1,
            miniprogram_appid: "wxSANDBOXMINIAPP".into(),
            miniprogram_secret: "sandbox-miniprogram-secret".into(),
        }
    }
}

/// A welcome message the sandbox delivered.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveredWelcome {
    pub userid: String,
    pub external_userid: String,
    pub text: Option<String>,
    pub attachments: Vec<Value>,
    pub at: Timestamp,
}

struct WelcomeCode {
    userid: String,
    external_userid: String,
    issued: Timestamp,
    used: bool,
}

struct MassSend {
    creator: String,
    created: Timestamp,
    recipients: Vec<(String, i64)>,
    sent_at: Option<Timestamp>,
}

struct Transfer {
    handover: String,
    takeover: String,
    external: String,
    at: Timestamp,
    status: i64,
}

#[derive(Default)]
struct Corp {
    departments: Vec<Department>,
    members: BTreeMap<String, Member>,
    externals: BTreeMap<String, ExternalContact>,
    /// (external_userid, userid) → relationship.
    follows: BTreeMap<(String, String), FollowUser>,
    /// Corp tag ids on each relationship.
    rel_tags: BTreeMap<(String, String), Vec<String>>,
    tag_groups: Vec<TagGroup>,
    contact_ways: BTreeMap<String, ContactWay>,
    rr: HashMap<String, usize>,
    join_ways: BTreeMap<String, JoinWay>,
    chats: BTreeMap<String, GroupChat>,
    tokens: HashMap<String, Timestamp>,
    welcome_codes: HashMap<String, WelcomeCode>,
    welcomes: Vec<DeliveredWelcome>,
    /// App messages sent: (touser, content, at).
    app_messages: Vec<(String, String, Timestamp)>,
    transfers: Vec<Transfer>,
    /// When each resigned member left (for `get_unassigned_list`).
    resigned_at: BTreeMap<String, Timestamp>,
    msg_templates: Vec<(String, Value)>,
    /// msgid → (sender, recipients with their status: 0 unsent, 1 sent, 2 not a friend, 3 limit), confirmed at.
    mass: BTreeMap<String, MassSend>,
    /// (external, day) → mass sends received that day.
    received: HashMap<(String, i64), u32>,
    /// Login codes from `wx.login`: code → (openid, unionid, issued, used).
    login_codes: HashMap<String, (String, Option<String>, Timestamp, bool)>,
    risky_openids: Vec<String>,
    calls: HashMap<String, (i64, u32)>,
    /// Injected faults.
    gettoken_error: Option<i64>,
    next_call_error: Option<i64>,
    seq: u64,
}

impl Corp {
    fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}{:08}", self.seq)
    }
}

pub struct Sandbox {
    cfg: Mutex<SandboxConfig>,
    corp: Mutex<Corp>,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
}

/// An API answer: `errcode` 0 plus fields, or an error.
fn ok(mut v: Value) -> Json<Value> {
    if let Some(o) = v.as_object_mut() {
        o.insert("errcode".into(), json!(0));
        o.insert("errmsg".into(), json!("ok"));
    }
    Json(v)
}

/// A JSON array of strings; anything else reads as empty.
fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default()
}

fn err(code: i64, msg: &str) -> Json<Value> {
    Json(json!({"errcode": code, "errmsg": msg}))
}

type Q = Query<HashMap<String, String>>;

impl Sandbox {
    pub fn new(cfg: SandboxConfig, clock: Arc<dyn Clock>) -> Arc<Sandbox> {
        let corp = Corp {
            departments: vec![Department { id: 1, name: "总部".into(), parentid: 0, order: 0 }],
            ..Default::default()
        };
        Arc::new(Sandbox { cfg: Mutex::new(cfg), corp: Mutex::new(corp), clock, http: reqwest::Client::new() })
    }

    fn corp(&self) -> std::sync::MutexGuard<'_, Corp> {
        self.corp.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config(&self) -> SandboxConfig {
        self.cfg.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_callback_url(&self, url: Option<String>) {
        self.cfg.lock().unwrap_or_else(|e| e.into_inner()).callback_url = url;
    }

    pub fn set_per_minute(&self, n: u32) {
        self.cfg.lock().unwrap_or_else(|e| e.into_inner()).per_minute = n;
    }

    // ---- world building and faults (the control API) -------------------------------------

    pub fn add_member(&self, userid: &str, name: &str, department: i64) {
        let m = Member {
            userid: userid.into(),
            name: name.into(),
            department: vec![department],
            status: 1,
            ..Default::default()
        };
        self.corp().members.insert(userid.into(), m);
    }

    pub fn add_department(&self, id: i64, name: &str, parentid: i64) {
        self.corp().departments.push(Department { id, name: name.into(), parentid, order: 0 });
    }

    /// A WeChat user who exists but knows nobody yet; returns their external_userid.
    pub fn add_external_user(&self, name: &str, unionid: Option<&str>) -> String {
        let mut c = self.corp();
        let id = format!("wm{}", c.next_id("EXT"));
        c.externals.insert(
            id.clone(),
            ExternalContact {
                external_userid: id.clone(),
                name: name.into(),
                kind: 1,
                unionid: unionid.map(String::from),
                ..Default::default()
            },
        );
        id
    }

    /// Makes every issued token invalid (the next call gets 40014).
    pub fn invalidate_tokens(&self) {
        self.corp().tokens.clear();
    }

    /// The next `gettoken` fails with `code` (40001, 40013, 60020, …).
    pub fn fail_next_gettoken(&self, code: i64) {
        self.corp().gettoken_error = Some(code);
    }

    /// The next API call (not `gettoken`) fails with `code` (e.g. -1, 45009, 41096).
    pub fn fail_next_call(&self, code: i64) {
        self.corp().next_call_error = Some(code);
    }

    pub fn welcomes(&self) -> Vec<DeliveredWelcome> {
        self.corp().welcomes.clone()
    }

    pub fn contact_way(&self, config_id: &str) -> Option<ContactWay> {
        self.corp().contact_ways.get(config_id).cloned()
    }

    /// A member notes phone numbers on a customer in WeCom (`remark_mobiles`), as the
    /// 企业微信 app lets them; no callback fires for it, as in WeCom.
    pub fn set_remark_mobiles(&self, external: &str, userid: &str, mobiles: &[&str]) -> Result<(), String> {
        let mut c = self.corp();
        let f = c.follows.get_mut(&(external.to_string(), userid.to_string())).ok_or("no such relationship")?;
        f.remark_mobiles = mobiles.iter().map(|m| m.to_string()).collect();
        Ok(())
    }

    pub fn relationship_tags(&self, external: &str, userid: &str) -> Vec<String> {
        self.corp().rel_tags.get(&(external.to_string(), userid.to_string())).cloned().unwrap_or_default()
    }

    /// A customer scans a contact way: WeCom picks a member (round-robin over the code's
    /// members), the customer becomes their external contact with the code's `state`, and an
    /// `add_external_contact` callback with a fresh welcome code is sent. Returns
    /// `(userid, welcome_code)`.
    pub async fn scan_contact_way(&self, config_id: &str, external_userid: &str) -> Result<(String, String), String> {
        let now = self.clock.now();
        let (userid, state, code, xml) = {
            let mut c = self.corp();
            let way = c.contact_ways.get(config_id).cloned().ok_or("no such contact way")?;
            if !c.externals.contains_key(external_userid) {
                return Err("no such external user".into());
            }
            let mut users: Vec<String> = way.user.clone();
            for p in &way.party {
                users.extend(c.members.values().filter(|m| m.department.contains(p)).map(|m| m.userid.clone()));
            }
            users.dedup();
            if users.is_empty() {
                return Err("the contact way has no members".into());
            }
            let n = c.rr.entry(config_id.to_string()).or_insert(0);
            let userid = users[*n % users.len()].clone();
            *n += 1;
            let key = (external_userid.to_string(), userid.clone());
            c.follows.insert(
                key,
                FollowUser {
                    userid: userid.clone(),
                    createtime: now.unix_secs(),
                    add_way: 1,
                    state: way.state.clone(),
                    ..Default::default()
                },
            );
            let code = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
            c.welcome_codes.insert(
                code.clone(),
                WelcomeCode {
                    userid: userid.clone(),
                    external_userid: external_userid.into(),
                    issued: now,
                    used: false,
                },
            );
            let corp_id = self.config().corp_id;
            let state_xml = way.state.as_deref().map(|s| format!("<State><![CDATA[{s}]]></State>")).unwrap_or_default();
            let xml = format!(
                "<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType><UserID><![CDATA[{userid}]]></UserID><ExternalUserID><![CDATA[{external_userid}]]></ExternalUserID>{state_xml}<WelcomeCode><![CDATA[{code}]]></WelcomeCode></xml>",
                now.unix_secs()
            );
            (userid, way.state, code, xml)
        };
        let _ = state;
        self.send_callback(&xml).await?;
        Ok((userid, code))
    }

    /// Verifies the callback URL as WeCom does when an admin saves it: a GET with an encrypted
    /// echostr that must come back decrypted, byte for byte.
    pub async fn verify_callback_url(&self) -> Result<(), String> {
        let cfg = self.config();
        let url = cfg.callback_url.clone().ok_or("no callback URL configured")?;
        let crypt =
            MsgCrypt::new(&cfg.callback_token, &cfg.encoding_aes_key, &cfg.corp_id).map_err(|e| e.to_string())?;
        let echo = rand::thread_rng().gen_range(1_000_000_000_000u64..9_999_999_999_999).to_string();
        let random: [u8; 16] =
            Alphanumeric.sample_string(&mut rand::thread_rng(), 16).as_bytes().try_into().expect("16 ASCII chars");
        let echostr = crypt.encrypt(&echo, &random);
        let ts = self.clock.now().unix_secs().to_string();
        let nonce = rand::thread_rng().gen_range(100_000_000u64..999_999_999).to_string();
        let sig = crypt.sign(&ts, &nonce, &echostr);
        let res = self
            .http
            .get(&url)
            .query(&[
                ("msg_signature", sig.as_str()),
                ("timestamp", ts.as_str()),
                ("nonce", nonce.as_str()),
                ("echostr", echostr.as_str()),
            ])
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .map_err(|e| format!("callback URL unreachable: {}", e.without_url()))?;
        let status = res.status();
        let body = res.text().await.unwrap_or_default();
        if status == 200 && body == echo {
            Ok(())
        } else {
            Err(format!("callback URL answered {status} with {body:?}, expected the decrypted echostr"))
        }
    }

    /// The customer deletes the member (`del_follow_user`).
    pub async fn customer_deletes(&self, external: &str, userid: &str) -> Result<(), String> {
        self.corp().follows.remove(&(external.to_string(), userid.to_string())).ok_or("no such relationship")?;
        self.send_contact_event("del_follow_user", external, userid).await
    }

    /// The member deletes the customer (`del_external_contact`).
    pub async fn member_deletes(&self, external: &str, userid: &str) -> Result<(), String> {
        self.corp().follows.remove(&(external.to_string(), userid.to_string())).ok_or("no such relationship")?;
        self.send_contact_event("del_external_contact", external, userid).await
    }

    async fn send_contact_event(&self, change: &str, external: &str, userid: &str) -> Result<(), String> {
        let cfg = self.config();
        let xml = format!(
            "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[{change}]]></ChangeType><UserID><![CDATA[{userid}]]></UserID><ExternalUserID><![CDATA[{external}]]></ExternalUserID></xml>",
            cfg.corp_id,
            self.clock.now().unix_secs()
        );
        self.send_callback(&xml).await
    }

    /// Encrypts, signs and POSTs `xml` to the callback URL as WeCom does, retrying up to 3
    /// times when the receiver does not answer 200 within 5 s.
    pub async fn send_callback(&self, xml: &str) -> Result<(), String> {
        let cfg = self.config();
        let Some(url) = cfg.callback_url.clone() else { return Ok(()) };
        let crypt =
            MsgCrypt::new(&cfg.callback_token, &cfg.encoding_aes_key, &cfg.corp_id).map_err(|e| e.to_string())?;
        let ts = self.clock.now().unix_secs().to_string();
        let nonce = rand::thread_rng().gen_range(100_000_000u64..999_999_999).to_string();
        let random: [u8; 16] =
            Alphanumeric.sample_string(&mut rand::thread_rng(), 16).as_bytes().try_into().expect("16 ASCII chars");
        let body = crypt.seal(xml, &ts, &nonce, &random, Format::Xml);
        let env = crate::crypto::parse_envelope(&body).map_err(|e| e.to_string())?;
        let sig = crypt.sign(&ts, &nonce, &env.encrypt);
        // WeCom posts only the envelope, not the reply-shaped body: To, Encrypt, AgentID.
        let post = format!("<xml><ToUserName><![CDATA[{}]]></ToUserName><Encrypt><![CDATA[{}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>", cfg.corp_id, env.encrypt);
        let mut last = String::new();
        for _ in 0..4 {
            let r = self
                .http
                .post(&url)
                // reqwest percent-encodes query values, so `+` in signatures travels as %2B.
                .query(&[("msg_signature", sig.as_str()), ("timestamp", ts.as_str()), ("nonce", nonce.as_str())])
                .timeout(Duration::from_secs(5))
                .body(post.clone())
                .send()
                .await;
            match r {
                Ok(res) if res.status() == 200 => return Ok(()),
                Ok(res) => last = format!("callback answered {}", res.status()),
                Err(e) => last = format!("callback failed: {}", e.without_url()),
            }
        }
        Err(last)
    }

    // ---- the API -------------------------------------------------------------------------------

    /// Checks the access_token and the rate bucket; `Err` is the WeCom error to answer.
    fn guard(&self, api: &str, q: &HashMap<String, String>) -> Result<(), Json<Value>> {
        let now = self.clock.now();
        let per_minute = self.config().per_minute;
        let mut c = self.corp();
        if let Some(code) = c.next_call_error.take() {
            return Err(err(code, "injected by the sandbox"));
        }
        let Some(tok) = q.get("access_token").filter(|t| !t.is_empty()) else {
            return Err(err(41001, "access_token missing"));
        };
        match c.tokens.get(tok) {
            None => return Err(err(40014, "invalid access_token")),
            Some(exp) if now >= *exp => return Err(err(42001, "access_token expired")),
            _ => {}
        }
        let minute = now.unix_secs() / 60;
        let e = c.calls.entry(api.to_string()).or_insert((minute, 0));
        if e.0 != minute {
            *e = (minute, 0);
        }
        e.1 += 1;
        if e.1 > per_minute {
            return Err(err(45009, "api freq out of limit"));
        }
        Ok(())
    }

    /// WeCom's API and the control API, as one router.
    pub fn router(self: &Arc<Self>) -> Router {
        self.api_router().merge(self.control_router())
    }

    /// WeCom's API only.
    pub fn api_router(self: &Arc<Self>) -> Router {
        let ec = "/cgi-bin/externalcontact";
        Router::new()
            .route("/cgi-bin/gettoken", get(gettoken))
            .route("/sns/jscode2session", get(jscode2session))
            .route("/cgi-bin/department/list", get(department_list))
            .route("/cgi-bin/user/list", get(user_list))
            .route(&format!("{ec}/get"), get(contact_get))
            .route(&format!("{ec}/list"), get(contact_list))
            .route(&format!("{ec}/batch/get_by_user"), post(batch_get_by_user))
            .route(&format!("{ec}/get_corp_tag_list"), post(corp_tag_list))
            .route(&format!("{ec}/add_corp_tag"), post(add_corp_tag))
            .route(&format!("{ec}/edit_corp_tag"), post(edit_corp_tag))
            .route(&format!("{ec}/del_corp_tag"), post(del_corp_tag))
            .route(&format!("{ec}/mark_tag"), post(mark_tag))
            .route(&format!("{ec}/add_contact_way"), post(add_contact_way))
            .route(&format!("{ec}/get_contact_way"), post(get_contact_way))
            .route(&format!("{ec}/update_contact_way"), post(update_contact_way))
            .route(&format!("{ec}/del_contact_way"), post(del_contact_way))
            .route(&format!("{ec}/groupchat/add_join_way"), post(add_join_way))
            .route(&format!("{ec}/groupchat/get_join_way"), post(get_join_way))
            .route(&format!("{ec}/groupchat/update_join_way"), post(update_join_way))
            .route(&format!("{ec}/groupchat/del_join_way"), post(del_join_way))
            .route(&format!("{ec}/groupchat/list"), post(groupchat_list))
            .route(&format!("{ec}/groupchat/get"), post(groupchat_get))
            .route(&format!("{ec}/send_welcome_msg"), post(send_welcome_msg))
            .route(&format!("{ec}/add_msg_template"), post(add_msg_template))
            .route(&format!("{ec}/get_groupmsg_list_v2"), post(groupmsg_list))
            .route(&format!("{ec}/get_groupmsg_task"), post(groupmsg_task))
            .route(&format!("{ec}/get_groupmsg_send_result"), post(groupmsg_send_result))
            .route(&format!("{ec}/groupchat/transfer"), post(chat_transfer_resigned))
            .route(&format!("{ec}/groupchat/onjob_transfer"), post(chat_transfer_onjob))
            .route(&format!("{ec}/transfer_customer"), post(transfer_onjob))
            .route(&format!("{ec}/resigned/transfer_customer"), post(transfer_resigned))
            .route(&format!("{ec}/transfer_result"), post(transfer_result))
            .route(&format!("{ec}/resigned/transfer_result"), post(transfer_result))
            .route(&format!("{ec}/get_unassigned_list"), post(unassigned_list))
            .route("/cgi-bin/message/send", post(message_send))
            .with_state(self.clone())
    }
}

type S = State<Arc<Sandbox>>;

async fn gettoken(State(sb): S, Query(q): Q) -> Json<Value> {
    let cfg = sb.config();
    let mut c = sb.corp();
    if let Some(code) = c.gettoken_error.take() {
        return err(code, "injected by the sandbox");
    }
    if q.get("corpid").map(String::as_str) != Some(cfg.corp_id.as_str()) {
        return err(40013, "invalid corpid");
    }
    if q.get("corpsecret").map(String::as_str) != Some(cfg.secret.as_str()) {
        return err(40001, "invalid credential");
    }
    // Real tokens are long; so are these (clients must allow ≥512 bytes).
    let tok = Alphanumeric.sample_string(&mut rand::thread_rng(), 96);
    c.tokens.insert(tok.clone(), sb.clock.now().plus(cfg.token_ttl));
    ok(json!({"access_token": tok, "expires_in": cfg.token_ttl.as_secs()}))
}

macro_rules! guarded {
    ($sb:expr, $api:expr, $q:expr) => {
        if let Err(e) = $sb.guard($api, &$q) {
            return e;
        }
    };
}

async fn department_list(State(sb): S, Query(q): Q) -> Json<Value> {
    guarded!(sb, "department/list", q);
    ok(json!({"department": sb.corp().departments}))
}

async fn user_list(State(sb): S, Query(q): Q) -> Json<Value> {
    guarded!(sb, "user/list", q);
    let d: i64 = q.get("department_id").and_then(|d| d.parse().ok()).unwrap_or(1);
    let c = sb.corp();
    let list: Vec<&Member> = c.members.values().filter(|m| m.department.contains(&d)).collect();
    ok(json!({"userlist": list}))
}

fn follow_with_tags(c: &Corp, external: &str, f: &FollowUser) -> FollowUser {
    let mut f = f.clone();
    let ids = c.rel_tags.get(&(external.to_string(), f.userid.clone())).cloned().unwrap_or_default();
    f.tags = ids
        .iter()
        .filter_map(|id| {
            c.tag_groups.iter().find_map(|g| {
                g.tag.iter().find(|t| &t.id == id).map(|t| crate::api::FollowTag {
                    group_name: g.group_name.clone(),
                    tag_name: t.name.clone(),
                    tag_id: Some(t.id.clone()),
                    kind: 1,
                })
            })
        })
        .collect();
    f
}

async fn contact_get(State(sb): S, Query(q): Q) -> Json<Value> {
    guarded!(sb, "externalcontact/get", q);
    let id = q.get("external_userid").cloned().unwrap_or_default();
    let c = sb.corp();
    let Some(ext) = c.externals.get(&id) else { return err(40096, "invalid external userid") };
    let follows: Vec<FollowUser> =
        c.follows.iter().filter(|((e, _), _)| e == &id).map(|(_, f)| follow_with_tags(&c, &id, f)).collect();
    if follows.is_empty() {
        return err(84061, "not external contact");
    }
    ok(json!({"external_contact": ext, "follow_user": follows}))
}

async fn contact_list(State(sb): S, Query(q): Q) -> Json<Value> {
    guarded!(sb, "externalcontact/list", q);
    let u = q.get("userid").cloned().unwrap_or_default();
    let c = sb.corp();
    if !c.members.contains_key(&u) {
        return err(40003, "invalid userid");
    }
    let ids: Vec<&String> = c.follows.keys().filter(|(_, uid)| uid == &u).map(|(e, _)| e).collect();
    ok(json!({"external_userid": ids}))
}

async fn batch_get_by_user(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/batch/get_by_user", q);
    let users: Vec<String> = strings(&b["userid_list"]);
    if users.is_empty() || users.len() > 100 {
        return err(40058, "userid_list must hold 1-100 userids");
    }
    let limit = b["limit"].as_u64().unwrap_or(50).clamp(1, 100) as usize;
    let start: usize = b["cursor"].as_str().and_then(|c| c.parse().ok()).unwrap_or(0);
    let c = sb.corp();
    let all: Vec<Value> = c
        .follows
        .iter()
        .filter(|((_, u), _)| users.contains(u))
        .filter_map(|((e, u), f)| {
            let ext = c.externals.get(e)?;
            let tags = c.rel_tags.get(&(e.clone(), u.clone())).cloned().unwrap_or_default();
            Some(json!({"external_contact": ext, "follow_info": {
                "userid": f.userid, "remark": f.remark, "description": f.description, "createtime": f.createtime,
                "tag_id": tags, "remark_mobiles": f.remark_mobiles, "add_way": f.add_way, "oper_userid": f.oper_userid, "state": f.state}}))
        })
        .collect();
    let page: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
    let next = if start + limit < all.len() { (start + limit).to_string() } else { String::new() };
    ok(json!({"external_contact_list": page, "next_cursor": next}))
}

async fn corp_tag_list(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/get_corp_tag_list", q);
    let c = sb.corp();
    let tag_ids: Vec<&str> =
        b["tag_id"].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default();
    let group_ids: Vec<&str> =
        b["group_id"].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect()).unwrap_or_default();
    let groups: Vec<TagGroup> = c
        .tag_groups
        .iter()
        .filter(|g| group_ids.is_empty() || group_ids.contains(&g.group_id.as_str()))
        .map(|g| {
            let mut g = g.clone();
            if !tag_ids.is_empty() {
                g.tag.retain(|t| tag_ids.contains(&t.id.as_str()));
            }
            g
        })
        .filter(|g| tag_ids.is_empty() || !g.tag.is_empty())
        .collect();
    ok(json!({"tag_group": groups}))
}

async fn add_corp_tag(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/add_corp_tag", q);
    let now = sb.clock.now().unix_secs();
    let mut c = sb.corp();
    let total: usize = c.tag_groups.iter().map(|g| g.tag.len()).sum();
    let new_tags: Vec<String> = b["tag"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t["name"].as_str().map(String::from)).collect())
        .unwrap_or_default();
    if new_tags.is_empty() || new_tags.iter().any(|n| n.chars().count() > 30) || total + new_tags.len() > 3000 {
        return err(40058, "invalid tag list");
    }
    let gid = b["group_id"].as_str().map(String::from);
    let gname = b["group_name"].as_str().map(String::from);
    let idx = match (&gid, &gname) {
        (Some(id), _) => match c.tag_groups.iter().position(|g| &g.group_id == id) {
            Some(i) => i,
            None => return err(40068, "invalid tag group id"),
        },
        (None, Some(name)) => match c.tag_groups.iter().position(|g| &g.group_name == name) {
            Some(i) => i,
            None => {
                let id = format!("et{}", c.next_id("G"));
                c.tag_groups.push(TagGroup {
                    group_id: id,
                    group_name: name.clone(),
                    create_time: now,
                    ..Default::default()
                });
                c.tag_groups.len() - 1
            }
        },
        (None, None) => return err(40058, "group_id or group_name is required"),
    };
    for name in new_tags {
        let id = format!("et{}", c.next_id("T"));
        c.tag_groups[idx].tag.push(crate::api::CorpTag { id, name, create_time: now, ..Default::default() });
    }
    let g = c.tag_groups[idx].clone();
    ok(json!({"tag_group": g}))
}

async fn edit_corp_tag(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/edit_corp_tag", q);
    let id = b["id"].as_str().unwrap_or_default().to_string();
    let name = b["name"].as_str().map(String::from);
    let mut c = sb.corp();
    for g in c.tag_groups.iter_mut() {
        if g.group_id == id {
            if let Some(n) = name {
                g.group_name = n;
            }
            return ok(json!({}));
        }
        if let Some(t) = g.tag.iter_mut().find(|t| t.id == id) {
            if let Some(n) = name {
                t.name = n;
            }
            return ok(json!({}));
        }
    }
    err(40068, "invalid tagid")
}

async fn del_corp_tag(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/del_corp_tag", q);
    let tags: Vec<String> = strings(&b["tag_id"]);
    let groups: Vec<String> = strings(&b["group_id"]);
    let mut c = sb.corp();
    c.tag_groups.retain(|g| !groups.contains(&g.group_id));
    for g in c.tag_groups.iter_mut() {
        g.tag.retain(|t| !tags.contains(&t.id));
    }
    for v in c.rel_tags.values_mut() {
        v.retain(|t| !tags.contains(t));
    }
    ok(json!({}))
}

async fn mark_tag(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/mark_tag", q);
    let key = (
        b["external_userid"].as_str().unwrap_or_default().to_string(),
        b["userid"].as_str().unwrap_or_default().to_string(),
    );
    let ids = |k: &str| -> Vec<String> { strings(&b[k]) };
    let (add, remove) = (ids("add_tag"), ids("remove_tag"));
    let mut c = sb.corp();
    if !c.follows.contains_key(&key) {
        return err(84061, "not external contact");
    }
    let known = |c: &Corp, id: &String| c.tag_groups.iter().any(|g| g.tag.iter().any(|t| &t.id == id));
    if add.iter().chain(remove.iter()).any(|id| !known(&c, id)) {
        return err(40068, "invalid tagid");
    }
    let tags = c.rel_tags.entry(key).or_default();
    for a in add {
        if !tags.contains(&a) {
            tags.push(a);
        }
    }
    tags.retain(|t| !remove.contains(t));
    ok(json!({}))
}

async fn add_contact_way(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/add_contact_way", q);
    let Ok(mut way) = serde_json::from_value::<ContactWay>(b) else { return err(40058, "invalid contact way") };
    if !(way.kind == 1 || way.kind == 2) || !(way.scene == 1 || way.scene == 2) {
        return err(40058, "type must be 1 or 2 and scene 1 or 2");
    }
    if way.state.as_ref().is_some_and(|s| s.chars().count() > 30) {
        return err(40058, "state is longer than 30 characters");
    }
    let mut c = sb.corp();
    if way.user.iter().any(|u| !c.members.contains_key(u)) {
        return err(40003, "invalid userid");
    }
    if way.user.is_empty() && way.party.is_empty() || (way.kind == 1 && way.user.len() != 1) {
        return err(40058, "a single-member code needs exactly one user");
    }
    if c.contact_ways.len() + c.join_ways.len() >= sb.config().way_quota {
        return err(41100, "contact way quota exceeded");
    }
    way.config_id = format!("{:032x}", rand::thread_rng().gen::<u128>());
    way.qr_code = format!("https://sandbox.siyu.local/qr/{}", way.config_id);
    let out = json!({"config_id": way.config_id, "qr_code": way.qr_code});
    c.contact_ways.insert(way.config_id.clone(), way);
    ok(out)
}

async fn get_contact_way(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/get_contact_way", q);
    match sb.corp().contact_ways.get(b["config_id"].as_str().unwrap_or_default()) {
        Some(w) => ok(json!({"contact_way": w})),
        None => err(40058, "invalid config_id"),
    }
}

async fn update_contact_way(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/update_contact_way", q);
    let id = b["config_id"].as_str().unwrap_or_default().to_string();
    let mut c = sb.corp();
    let members_ok =
        b["user"].as_array().is_none_or(|a| a.iter().all(|u| u.as_str().is_some_and(|u| c.members.contains_key(u))));
    let Some(w) = c.contact_ways.get_mut(&id) else { return err(40058, "invalid config_id") };
    if !members_ok {
        return err(40003, "invalid userid");
    }
    if let Some(u) = b["user"].as_array() {
        w.user = u.iter().filter_map(|v| v.as_str().map(String::from)).collect();
    }
    if let Some(v) = b["skip_verify"].as_bool() {
        w.skip_verify = v;
    }
    if let Some(s) = b["state"].as_str() {
        w.state = Some(s.to_string());
    }
    if let Some(r) = b["remark"].as_str() {
        w.remark = Some(r.to_string());
    }
    ok(json!({}))
}

async fn del_contact_way(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/del_contact_way", q);
    match sb.corp().contact_ways.remove(b["config_id"].as_str().unwrap_or_default()) {
        Some(_) => ok(json!({})),
        None => err(40058, "invalid config_id"),
    }
}

async fn add_join_way(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/groupchat/add_join_way", q);
    let Ok(mut way) = serde_json::from_value::<JoinWay>(b) else { return err(40058, "invalid join way") };
    if way.chat_id_list.is_empty() || way.chat_id_list.len() > 5 {
        return err(40058, "chat_id_list must hold 1-5 group chats");
    }
    let mut c = sb.corp();
    if way.chat_id_list.iter().any(|id| !c.chats.contains_key(id)) {
        return err(40058, "invalid chat_id");
    }
    if c.contact_ways.len() + c.join_ways.len() >= sb.config().way_quota {
        return err(41100, "join way quota exceeded");
    }
    way.config_id = format!("{:032x}", rand::thread_rng().gen::<u128>());
    way.qr_code = format!("https://sandbox.siyu.local/join/{}", way.config_id);
    let id = way.config_id.clone();
    c.join_ways.insert(id.clone(), way);
    ok(json!({"config_id": id}))
}

async fn get_join_way(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/groupchat/get_join_way", q);
    match sb.corp().join_ways.get(b["config_id"].as_str().unwrap_or_default()) {
        Some(w) => ok(json!({"join_way": w})),
        None => err(40058, "invalid config_id"),
    }
}

async fn update_join_way(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/groupchat/update_join_way", q);
    let Ok(new) = serde_json::from_value::<JoinWay>(b) else { return err(40058, "invalid join way") };
    if new.chat_id_list.is_empty() || new.chat_id_list.len() > 5 {
        return err(40058, "chat_id_list must hold 1-5 group chats");
    }
    let mut c = sb.corp();
    let Some(w) = c.join_ways.get_mut(&new.config_id) else { return err(40058, "invalid config_id") };
    let qr = w.qr_code.clone();
    *w = JoinWay { qr_code: qr, ..new };
    ok(json!({}))
}

async fn del_join_way(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/groupchat/del_join_way", q);
    match sb.corp().join_ways.remove(b["config_id"].as_str().unwrap_or_default()) {
        Some(_) => ok(json!({})),
        None => err(40058, "invalid config_id"),
    }
}

impl Sandbox {
    /// Creates a customer group owned by `owner`; returns its chat_id.
    pub fn add_group_chat(&self, owner: &str, name: &str) -> String {
        let now = self.clock.now().unix_secs();
        let mut c = self.corp();
        let id = format!("wr{}", c.next_id("CHAT"));
        let owner_member = crate::api::ChatMember {
            userid: owner.into(),
            kind: 1,
            join_time: now,
            join_scene: 1,
            ..Default::default()
        };
        c.chats.insert(
            id.clone(),
            GroupChat {
                chat_id: id.clone(),
                name: name.into(),
                owner: owner.into(),
                create_time: now,
                member_list: vec![owner_member],
                member_version: "1".into(),
                ..Default::default()
            },
        );
        id
    }
}

async fn groupchat_list(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/groupchat/list", q);
    let owners: Vec<String> = strings(&b["owner_filter"]["userid_list"]);
    let limit = b["limit"].as_u64().unwrap_or(100).clamp(1, 1000) as usize;
    let start: usize = b["cursor"].as_str().and_then(|c| c.parse().ok()).unwrap_or(0);
    let c = sb.corp();
    let all: Vec<Value> = c
        .chats
        .values()
        .filter(|g| owners.is_empty() || owners.contains(&g.owner))
        .map(|g| json!({"chat_id": g.chat_id, "status": 0}))
        .collect();
    let page: Vec<Value> = all.iter().skip(start).take(limit).cloned().collect();
    let next = if start + limit < all.len() { (start + limit).to_string() } else { String::new() };
    ok(json!({"group_chat_list": page, "next_cursor": next}))
}

async fn groupchat_get(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/groupchat/get", q);
    match sb.corp().chats.get(b["chat_id"].as_str().unwrap_or_default()) {
        Some(g) => ok(json!({"group_chat": g})),
        None => err(90501, "not external group chat"),
    }
}

async fn send_welcome_msg(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/send_welcome_msg", q);
    let now = sb.clock.now();
    let ttl = sb.config().welcome_code_ttl;
    let mut c = sb.corp();
    let code = b["welcome_code"].as_str().unwrap_or_default();
    let Some(w) = c.welcome_codes.get_mut(code) else { return err(40058, "invalid welcome_code") };
    if w.used || now >= w.issued.plus(ttl) {
        return err(41051, "welcome code expired or already used");
    }
    w.used = true;
    let rec = DeliveredWelcome {
        userid: w.userid.clone(),
        external_userid: w.external_userid.clone(),
        text: b["text"]["content"].as_str().map(String::from),
        attachments: b["attachments"].as_array().cloned().unwrap_or_default(),
        at: now,
    };
    c.welcomes.push(rec);
    ok(json!({}))
}

async fn add_msg_template(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/add_msg_template", q);
    let sender = b["sender"].as_str().unwrap_or_default().to_string();
    let externals: Vec<String> = strings(&b["external_userid"]);
    if externals.len() > 10_000 {
        return err(40058, "at most 10,000 recipients");
    }
    if b["text"]["content"].as_str().is_none_or(|t| t.is_empty())
        && b["attachments"].as_array().is_none_or(|a| a.is_empty())
    {
        return err(40058, "text or attachments required");
    }
    let now = sb.clock.now();
    let mut c = sb.corp();
    if !c.members.contains_key(&sender) {
        return err(40003, "invalid sender");
    }
    let id = format!("msg{}", c.next_id("M"));
    // Customers who are not the sender's friends fail at once; the rest wait for the sender
    // to confirm in the WeCom client.
    let mut fail = Vec::new();
    let mut recipients = Vec::new();
    for e in externals {
        if c.follows.contains_key(&(e.clone(), sender.clone())) {
            recipients.push((e, 0));
        } else {
            fail.push(e.clone());
            recipients.push((e, 2));
        }
    }
    c.mass.insert(id.clone(), MassSend { creator: sender, created: now, recipients, sent_at: None });
    c.msg_templates.push((id.clone(), b));
    ok(json!({"fail_list": fail, "msgid": id}))
}

impl Sandbox {
    /// The sender confirms a mass send in the WeCom client: each friend receives it, unless
    /// they reached today's receive limit (status 3).
    pub fn confirm_mass_send(&self, msgid: &str) -> Result<(), String> {
        let now = self.clock.now();
        let limit = self.config().receive_limit_per_day;
        let mut c = self.corp();
        let day = now.unix_secs().div_euclid(86_400);
        let mut m = c.mass.remove(msgid).ok_or("no such mass send")?;
        if m.sent_at.is_none() {
            for (e, st) in m.recipients.iter_mut().filter(|(_, st)| *st == 0) {
                let n = c.received.entry((e.clone(), day)).or_insert(0);
                if *n >= limit {
                    *st = 3;
                } else {
                    *n += 1;
                    *st = 1;
                }
            }
            m.sent_at = Some(now);
        }
        c.mass.insert(msgid.to_string(), m);
        Ok(())
    }
}

async fn groupmsg_list(State(sb): S, Query(q): Query<HashMap<String, String>>, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/get_groupmsg_list_v2", q);
    let (start, end) = (b["start_time"].as_i64().unwrap_or(0), b["end_time"].as_i64().unwrap_or(i64::MAX));
    if end < start {
        return err(40058, "end_time before start_time");
    }
    let c = sb.corp();
    let list: Vec<Value> = c
        .mass
        .iter()
        .filter(|(_, m)| (start..=end).contains(&m.created.unix_secs()))
        .map(|(id, m)| json!({"msgid": id, "creator": m.creator, "create_type": 0, "create_time": m.created.unix_secs()}))
        .collect();
    ok(json!({"group_msg_list": list, "next_cursor": ""}))
}

async fn groupmsg_task(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/get_groupmsg_task", q);
    let c = sb.corp();
    let Some(m) = c.mass.get(b["msgid"].as_str().unwrap_or_default()) else { return err(40058, "invalid msgid") };
    let task = json!({"userid": m.creator, "status": if m.sent_at.is_some() { 2 } else { 0 }, "send_time": m.sent_at.map(|t| t.unix_secs()).unwrap_or(0)});
    ok(json!({"task_list": [task], "next_cursor": ""}))
}

async fn groupmsg_send_result(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/get_groupmsg_send_result", q);
    let c = sb.corp();
    let Some(m) = c.mass.get(b["msgid"].as_str().unwrap_or_default()) else { return err(40058, "invalid msgid") };
    if b["userid"].as_str() != Some(m.creator.as_str()) {
        return ok(json!({"send_list": [], "next_cursor": ""}));
    }
    let list: Vec<Value> = m
        .recipients
        .iter()
        .map(|(e, st)| json!({"external_userid": e, "chat_id": "", "userid": m.creator, "status": st, "send_time": if *st == 1 { m.sent_at.map(|t| t.unix_secs()).unwrap_or(0) } else { 0 }}))
        .collect();
    ok(json!({"send_list": list, "next_cursor": ""}))
}

async fn transfer(sb: Arc<Sandbox>, q: HashMap<String, String>, b: Value, api: &str) -> Json<Value> {
    guarded!(sb, api, q);
    let now = sb.clock.now();
    let handover = b["handover_userid"].as_str().unwrap_or_default().to_string();
    let takeover = b["takeover_userid"].as_str().unwrap_or_default().to_string();
    let externals: Vec<String> = strings(&b["external_userid"]);
    if externals.is_empty() || externals.len() > 100 {
        return err(40058, "external_userid must hold 1-100 ids");
    }
    let mut c = sb.corp();
    if !c.members.contains_key(&takeover) {
        return err(40003, "invalid userid");
    }
    let window = now.minus(Duration::from_secs(90 * 86_400));
    let mut out = Vec::new();
    for e in externals {
        let code = if !c.follows.contains_key(&(e.clone(), handover.clone())) {
            84061
        } else if c.transfers.iter().filter(|t| t.external == e && t.at > window).count() >= 2 {
            // A customer moves at most twice in 90 days.
            40097
        } else {
            c.transfers.push(Transfer {
                handover: handover.clone(),
                takeover: takeover.clone(),
                external: e.clone(),
                at: now,
                status: 2,
            });
            0
        };
        out.push(json!({"external_userid": e, "errcode": code}));
    }
    ok(json!({"customer": out}))
}

async fn transfer_onjob(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    transfer(sb, q, b, "externalcontact/transfer_customer").await
}

async fn transfer_resigned(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    transfer(sb, q, b, "externalcontact/resigned/transfer_customer").await
}

impl Sandbox {
    /// The customer refuses a waiting transfer (status 3).
    pub fn refuse_transfer(&self, external: &str) {
        if let Some(t) = self.corp().transfers.iter_mut().rev().find(|t| t.external == external && t.status == 2) {
            t.status = 3;
        }
    }

    /// Ends a waiting transfer as WeCom does when the customer refuses (`customer_refused`,
    /// status 3) or the receiver is at its customer limit (`customer_limit_exceed`, status
    /// 4), and sends the `transfer_fail` callback naming the takeover member.
    pub async fn fail_transfer(&self, external: &str, fail_reason: &str) -> Result<(), String> {
        let status = match fail_reason {
            "customer_refused" => 3,
            "customer_limit_exceed" => 4,
            other => return Err(format!("unknown FailReason {other}")),
        };
        let takeover = {
            let mut c = self.corp();
            let t = c
                .transfers
                .iter_mut()
                .rev()
                .find(|t| t.external == external && t.status == 2)
                .ok_or("no waiting transfer for this customer")?;
            t.status = status;
            t.takeover.clone()
        };
        let cfg = self.config();
        let xml = format!(
            "<xml><ToUserName><![CDATA[{}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[transfer_fail]]></ChangeType><FailReason><![CDATA[{fail_reason}]]></FailReason><UserID><![CDATA[{takeover}]]></UserID><ExternalUserID><![CDATA[{external}]]></ExternalUserID></xml>",
            cfg.corp_id,
            self.clock.now().unix_secs()
        );
        self.send_callback(&xml).await
    }
}

/// An app message: delivered to each known member; unknown ones come back in `invaliduser`.
async fn message_send(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "message/send", q);
    let now = sb.clock.now();
    let to = b["touser"].as_str().unwrap_or_default().to_string();
    let content = b["text"]["content"].as_str().unwrap_or_default().to_string();
    if to.is_empty() || content.is_empty() || b["msgtype"] != "text" {
        return err(40058, "touser, msgtype text and content are required");
    }
    let mut c = sb.corp();
    let mut invalid = Vec::new();
    for u in to.split('|') {
        if c.members.get(u).is_some_and(|m| m.status != 5) {
            c.app_messages.push((u.to_string(), content.clone(), now));
        } else {
            invalid.push(u.to_string());
        }
    }
    ok(json!({"invaliduser": invalid.join("|"), "msgid": format!("msg{}", c.app_messages.len())}))
}

impl Sandbox {
    /// App messages delivered so far: (userid, content).
    pub fn app_messages(&self) -> Vec<(String, String)> {
        self.corp().app_messages.iter().map(|(u, c, _)| (u.clone(), c.clone())).collect()
    }
}

/// Customers of resigned members not yet handed to anyone, paged by an offset cursor.
async fn unassigned_list(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/get_unassigned_list", q);
    let size = b["page_size"].as_u64().unwrap_or(1000).clamp(1, 1000) as usize;
    let from: usize = b["cursor"].as_str().and_then(|c| c.parse().ok()).unwrap_or(0);
    let c = sb.corp();
    let all: Vec<Value> = c
        .follows
        .keys()
        .filter_map(|(e, u)| {
            let left = c.resigned_at.get(u)?;
            // Customers with a transfer under way are no longer unassigned.
            let moving = c.transfers.iter().any(|t| &t.external == e && &t.handover == u && matches!(t.status, 1 | 2));
            (!moving).then(|| json!({"handover_userid": u, "external_userid": e, "dimission_time": left.unix_secs()}))
        })
        .collect();
    let page: Vec<Value> = all.iter().skip(from).take(size).cloned().collect();
    let last = from + page.len() >= all.len();
    let next = if last { String::new() } else { (from + page.len()).to_string() };
    ok(json!({"info": page, "is_last": last, "next_cursor": next}))
}

async fn transfer_result(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    guarded!(sb, "externalcontact/transfer_result", q);
    let now = sb.clock.now();
    let handover = b["handover_userid"].as_str().unwrap_or_default().to_string();
    let takeover = b["takeover_userid"].as_str().unwrap_or_default().to_string();
    let mut c = sb.corp();
    // Waiting transfers complete 24 h after the call unless refused.
    let mut done = Vec::new();
    for t in c.transfers.iter_mut().filter(|t| t.handover == handover && t.takeover == takeover) {
        if t.status == 2 && now >= t.at.plus(Duration::from_secs(86_400)) {
            t.status = 1;
            done.push((t.external.clone(), t.handover.clone(), t.takeover.clone(), t.at));
        }
    }
    for (e, h, to, _) in &done {
        if let Some(mut f) = c.follows.remove(&(e.clone(), h.clone())) {
            f.userid = to.clone();
            f.add_way = 202;
            c.follows.insert((e.clone(), to.clone()), f);
        }
    }
    let list: Vec<Value> = c
        .transfers
        .iter()
        .filter(|t| t.handover == handover && t.takeover == takeover)
        .map(|t| json!({"external_userid": t.external, "status": t.status, "takeover_time": t.at.unix_secs() + 86_400}))
        .collect();
    ok(json!({"customer": list, "next_cursor": ""}))
}

impl Sandbox {
    /// Marks a member as resigned (status 5), as WeCom's directory does when they leave.
    pub fn resign_member(&self, userid: &str) {
        let now = self.clock.now();
        let mut c = self.corp();
        if let Some(m) = c.members.get_mut(userid) {
            m.status = 5;
            c.resigned_at.insert(userid.to_string(), now);
        }
    }

    /// Makes every issued token expire now (the next call gets 42001), as WeCom sometimes does
    /// before `expires_in` has passed.
    pub fn expire_tokens_now(&self) {
        let now = self.clock.now();
        for exp in self.corp().tokens.values_mut() {
            *exp = now;
        }
    }

    /// Dismisses a group (解散): WeCom no longer knows it (90501).
    pub fn dismiss_group_chat(&self, chat_id: &str) {
        self.corp().chats.remove(chat_id);
    }

    pub fn group_chat_owner(&self, chat_id: &str) -> Option<String> {
        self.corp().chats.get(chat_id).map(|g| g.owner.clone())
    }
}

async fn chat_transfer(sb: Arc<Sandbox>, q: HashMap<String, String>, b: Value, resigned: bool) -> Json<Value> {
    guarded!(
        sb,
        if resigned { "externalcontact/groupchat/transfer" } else { "externalcontact/groupchat/onjob_transfer" },
        q
    );
    let owner = b["new_owner"].as_str().unwrap_or_default().to_string();
    let ids: Vec<String> = strings(&b["chat_id_list"]);
    if ids.is_empty() || ids.len() > 100 {
        return err(40058, "chat_id_list must hold 1-100 chats");
    }
    let mut c = sb.corp();
    if !c.members.contains_key(&owner) {
        return err(40003, "invalid userid");
    }
    let mut failed = Vec::new();
    for id in ids {
        let old_owner_active = c.chats.get(&id).and_then(|g| c.members.get(&g.owner)).is_some_and(|m| m.status != 5);
        match c.chats.get_mut(&id) {
            None => failed.push(json!({"chat_id": id, "errcode": 90501, "errmsg": "not external group chat"})),
            Some(_) if resigned && old_owner_active => {
                failed.push(json!({"chat_id": id, "errcode": 90500, "errmsg": "the group owner has not resigned"}))
            }
            Some(_) if !resigned && !old_owner_active => {
                failed.push(json!({"chat_id": id, "errcode": 90502, "errmsg": "the group owner has resigned"}))
            }
            Some(g) => g.owner = owner.clone(),
        }
    }
    ok(json!({"failed_chat_list": failed}))
}

async fn chat_transfer_resigned(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    chat_transfer(sb, q, b, true).await
}

async fn chat_transfer_onjob(State(sb): S, Query(q): Q, Json(b): Json<Value>) -> Json<Value> {
    chat_transfer(sb, q, b, false).await
}

impl Sandbox {
    /// What `wx.login` gives a mini-program user: a single-use code valid 5 minutes.
    pub fn issue_login_code(&self, openid: &str, unionid: Option<&str>) -> String {
        let code = Alphanumeric.sample_string(&mut rand::thread_rng(), 32);
        let now = self.clock.now();
        self.corp().login_codes.insert(code.clone(), (openid.into(), unionid.map(String::from), now, false));
        code
    }

    /// Logins of this openid are refused as high-risk (40226).
    pub fn flag_risky(&self, openid: &str) {
        self.corp().risky_openids.push(openid.into());
    }
}

async fn jscode2session(State(sb): S, Query(q): Q) -> Json<Value> {
    let cfg = sb.config();
    if q.get("appid") != Some(&cfg.miniprogram_appid) {
        return err(40013, "invalid appid");
    }
    if q.get("secret") != Some(&cfg.miniprogram_secret) {
        return err(40125, "invalid appsecret");
    }
    if q.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return err(40002, "invalid grant_type");
    }
    let now = sb.clock.now();
    let mut c = sb.corp();
    let code = q.get("js_code").cloned().unwrap_or_default();
    let Some(entry) = c.login_codes.get_mut(&code) else { return err(40029, "invalid code") };
    if entry.3 || now >= entry.2.plus(Duration::from_secs(300)) {
        return err(40029, "code been used or expired");
    }
    entry.3 = true;
    let (openid, unionid) = (entry.0.clone(), entry.1.clone());
    if c.risky_openids.contains(&openid) {
        return err(40226, "high risk user");
    }
    let session_key = Alphanumeric.sample_string(&mut rand::thread_rng(), 24);
    let mut out = json!({"openid": openid, "session_key": session_key});
    if let Some(u) = unionid {
        out["unionid"] = json!(u);
    }
    ok(out)
}

impl Sandbox {
    /// A customer scans a join way's QR: WeCom puts them in the first listed group that is
    /// below the scan-join limit; when all are full and `auto_create_room` is 1 it creates the
    /// next group (base name + number) and sends its `create` event. Each join sends an
    /// `update`/`add_member` event with member versions. Returns the chat_id joined.
    pub async fn join_via_join_way(&self, config_id: &str, external_userid: &str) -> Result<String, String> {
        let now = self.clock.now();
        let limit = self.config().scan_join_limit;
        let (chat_id, created, last_ver, cur_ver) = {
            let mut c = self.corp();
            let way = c.join_ways.get(config_id).cloned().ok_or("no such join way")?;
            if !c.externals.contains_key(external_userid) {
                return Err("no such external user".into());
            }
            let open = way
                .chat_id_list
                .iter()
                .find(|id| c.chats.get(*id).is_some_and(|g| g.member_list.len() < limit))
                .cloned();
            let (chat_id, created) = match open {
                Some(id) => (id, false),
                None if way.auto_create_room == 1 => {
                    let owner = way
                        .chat_id_list
                        .first()
                        .and_then(|id| c.chats.get(id))
                        .map(|g| g.owner.clone())
                        .ok_or("the join way lists no group")?;
                    let base = way.room_base_name.clone().unwrap_or_else(|| "群聊".into());
                    let n = way.room_base_id.unwrap_or(1)
                        + c.chats.values().filter(|g| g.name.starts_with(&base)).count() as i64;
                    let id = format!("wr{}", c.next_id("CHAT"));
                    let owner_member = crate::api::ChatMember {
                        userid: owner.clone(),
                        kind: 1,
                        join_time: now.unix_secs(),
                        join_scene: 1,
                        ..Default::default()
                    };
                    c.chats.insert(
                        id.clone(),
                        GroupChat {
                            chat_id: id.clone(),
                            name: format!("{base}{n}"),
                            owner,
                            create_time: now.unix_secs(),
                            member_list: vec![owner_member],
                            member_version: "1".into(),
                            ..Default::default()
                        },
                    );
                    // WeCom keeps listing the new group on the join way.
                    if let Some(w) = c.join_ways.get_mut(config_id) {
                        w.chat_id_list.push(id.clone());
                        if w.chat_id_list.len() > 5 {
                            w.chat_id_list.remove(0);
                        }
                    }
                    (id, true)
                }
                None => return Err("every group of the join way is full".into()),
            };
            let ext = c.externals.get(external_userid).cloned().unwrap_or_default();
            let g = c.chats.get_mut(&chat_id).expect("chosen above");
            if g.member_list.iter().any(|m| m.userid == external_userid) {
                return Ok(chat_id);
            }
            let last = g.member_version.clone();
            g.member_list.push(crate::api::ChatMember {
                userid: external_userid.into(),
                kind: 2,
                unionid: ext.unionid.clone(),
                join_time: now.unix_secs(),
                join_scene: 3,
                name: ext.name.clone(),
                ..Default::default()
            });
            g.member_version = (last.parse::<u64>().unwrap_or(0) + 1).to_string();
            (chat_id, created, last, g.member_version.clone())
        };
        let corp = self.config().corp_id;
        if created {
            self.send_callback(&chat_event(&corp, now, &chat_id, "create", "")).await?;
        }
        let detail = format!(
            "<UpdateDetail><![CDATA[add_member]]></UpdateDetail><JoinScene>3</JoinScene><MemChangeCnt>1</MemChangeCnt><MemChangeList><Item><![CDATA[{external_userid}]]></Item></MemChangeList><LastMemVer><![CDATA[{last_ver}]]></LastMemVer><CurMemVer><![CDATA[{cur_ver}]]></CurMemVer>"
        );
        self.send_callback(&chat_event(&corp, now, &chat_id, "update", &detail)).await?;
        Ok(chat_id)
    }

    /// A member leaves a group (QuitScene 0).
    pub async fn leave_group(&self, chat_id: &str, external_userid: &str) -> Result<(), String> {
        let now = self.clock.now();
        let (last, cur) = {
            let mut c = self.corp();
            let g = c.chats.get_mut(chat_id).ok_or("no such group")?;
            let before = g.member_list.len();
            g.member_list.retain(|m| m.userid != external_userid);
            if g.member_list.len() == before {
                return Err("not a member".into());
            }
            let last = g.member_version.clone();
            g.member_version = (last.parse::<u64>().unwrap_or(0) + 1).to_string();
            (last, g.member_version.clone())
        };
        let detail = format!(
            "<UpdateDetail><![CDATA[del_member]]></UpdateDetail><QuitScene>0</QuitScene><MemChangeCnt>1</MemChangeCnt><MemChangeList><Item><![CDATA[{external_userid}]]></Item></MemChangeList><LastMemVer><![CDATA[{last}]]></LastMemVer><CurMemVer><![CDATA[{cur}]]></CurMemVer>"
        );
        self.send_callback(&chat_event(&self.config().corp_id, now, chat_id, "update", &detail)).await
    }

    pub fn group_member_count(&self, chat_id: &str) -> usize {
        self.corp().chats.get(chat_id).map(|g| g.member_list.len()).unwrap_or(0)
    }

    pub fn join_way(&self, config_id: &str) -> Option<JoinWay> {
        self.corp().join_ways.get(config_id).cloned()
    }

    /// The control API: what tests, the demo and an evaluator use to make things happen in
    /// the simulated corp, as JSON over HTTP under `/sandbox/`.
    pub fn control_router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/sandbox/members", post(ctl_member))
            .route("/sandbox/external-users", post(ctl_external))
            .route("/sandbox/groups", post(ctl_group))
            .route("/sandbox/scan", post(ctl_scan))
            .route("/sandbox/join", post(ctl_join))
            .route("/sandbox/leave", post(ctl_leave))
            .route("/sandbox/customer-deletes", post(ctl_customer_deletes))
            .route("/sandbox/member-deletes", post(ctl_member_deletes))
            .route("/sandbox/mass-sends/confirm", post(ctl_confirm))
            .route("/sandbox/transfers/refuse", post(ctl_refuse))
            .route("/sandbox/login-codes", post(ctl_login_code))
            .route("/sandbox/faults", post(ctl_faults))
            .route("/sandbox/welcomes", get(ctl_welcomes))
            .with_state(self.clone())
    }
}

fn chat_event(corp: &str, now: Timestamp, chat_id: &str, change: &str, detail: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[{chat_id}]]></ChatId><ChangeType><![CDATA[{change}]]></ChangeType>{detail}</xml>",
        now.unix_secs()
    )
}

type Ctl = axum::response::Result<Json<Value>, (axum::http::StatusCode, String)>;

fn bad(e: impl Into<String>) -> (axum::http::StatusCode, String) {
    (axum::http::StatusCode::UNPROCESSABLE_ENTITY, e.into())
}

fn s(b: &Value, k: &str) -> String {
    b[k].as_str().unwrap_or_default().to_string()
}

async fn ctl_member(State(sb): S, Json(b): Json<Value>) -> Ctl {
    sb.add_member(&s(&b, "userid"), &s(&b, "name"), b["department"].as_i64().unwrap_or(1));
    Ok(Json(json!({})))
}
async fn ctl_external(State(sb): S, Json(b): Json<Value>) -> Ctl {
    Ok(Json(json!({"external_userid": sb.add_external_user(&s(&b, "name"), b["unionid"].as_str())})))
}
async fn ctl_group(State(sb): S, Json(b): Json<Value>) -> Ctl {
    Ok(Json(json!({"chat_id": sb.add_group_chat(&s(&b, "owner"), &s(&b, "name"))})))
}
async fn ctl_scan(State(sb): S, Json(b): Json<Value>) -> Ctl {
    let (userid, code) = sb.scan_contact_way(&s(&b, "config_id"), &s(&b, "external_userid")).await.map_err(bad)?;
    Ok(Json(json!({"userid": userid, "welcome_code": code})))
}
async fn ctl_join(State(sb): S, Json(b): Json<Value>) -> Ctl {
    Ok(Json(
        json!({"chat_id": sb.join_via_join_way(&s(&b, "config_id"), &s(&b, "external_userid")).await.map_err(bad)?}),
    ))
}
async fn ctl_leave(State(sb): S, Json(b): Json<Value>) -> Ctl {
    sb.leave_group(&s(&b, "chat_id"), &s(&b, "external_userid")).await.map_err(bad)?;
    Ok(Json(json!({})))
}
async fn ctl_customer_deletes(State(sb): S, Json(b): Json<Value>) -> Ctl {
    sb.customer_deletes(&s(&b, "external_userid"), &s(&b, "userid")).await.map_err(bad)?;
    Ok(Json(json!({})))
}
async fn ctl_member_deletes(State(sb): S, Json(b): Json<Value>) -> Ctl {
    sb.member_deletes(&s(&b, "external_userid"), &s(&b, "userid")).await.map_err(bad)?;
    Ok(Json(json!({})))
}
async fn ctl_confirm(State(sb): S, Json(b): Json<Value>) -> Ctl {
    sb.confirm_mass_send(&s(&b, "msgid")).map_err(bad)?;
    Ok(Json(json!({})))
}
async fn ctl_refuse(State(sb): S, Json(b): Json<Value>) -> Ctl {
    let reason = b["fail_reason"].as_str().unwrap_or("customer_refused");
    sb.fail_transfer(&s(&b, "external_userid"), reason).await.map_err(bad)?;
    Ok(Json(json!({})))
}
async fn ctl_login_code(State(sb): S, Json(b): Json<Value>) -> Ctl {
    Ok(Json(json!({"code": sb.issue_login_code(&s(&b, "openid"), b["unionid"].as_str())})))
}
async fn ctl_faults(State(sb): S, Json(b): Json<Value>) -> Ctl {
    if let Some(c) = b["gettoken"].as_i64() {
        sb.fail_next_gettoken(c);
    }
    if let Some(c) = b["next_call"].as_i64() {
        sb.fail_next_call(c);
    }
    if b["invalidate_tokens"].as_bool() == Some(true) {
        sb.invalidate_tokens();
    }
    if b["expire_tokens"].as_bool() == Some(true) {
        sb.expire_tokens_now();
    }
    if let Some(n) = b["per_minute"].as_u64() {
        sb.set_per_minute(n as u32);
    }
    Ok(Json(json!({})))
}
async fn ctl_welcomes(State(sb): S) -> Ctl {
    let list: Vec<Value> = sb.welcomes().iter().map(|w| json!({"userid": w.userid, "external_userid": w.external_userid, "text": w.text, "at": w.at.unix_secs()})).collect();
    Ok(Json(json!({"welcomes": list})))
}

impl Sandbox {
    /// Contact way ids, oldest first (for the demo console's actions).
    pub fn contact_way_ids(&self) -> Vec<String> {
        self.corp().contact_ways.keys().cloned().collect()
    }

    /// Live (external_userid, userid) relationships.
    pub fn relationships(&self) -> Vec<(String, String)> {
        self.corp().follows.keys().cloned().collect()
    }

    pub fn external_name(&self, external: &str) -> Option<String> {
        self.corp().externals.get(external).map(|e| e.name.clone())
    }
}
