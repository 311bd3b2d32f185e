//! Typed WeCom endpoints, with WeCom's field names. Responses default every field, because
//! WeCom omits what is empty and adds fields over time; unknown fields are ignored.

use serde::{Deserialize, Serialize};

use crate::client::{Client, Result};

const EC: &str = "/cgi-bin/externalcontact";

// ---- organisation ----------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Department {
    pub id: i64,
    pub name: String,
    pub parentid: i64,
    pub order: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct DepartmentList {
    department: Vec<Department>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Member {
    pub userid: String,
    pub name: String,
    pub department: Vec<i64>,
    pub position: String,
    pub mobile: String,
    /// 1 active, 2 disabled, 4 not yet activated, 5 resigned.
    pub status: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct MemberList {
    userlist: Vec<Member>,
}

// ---- external contacts ------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ExternalContact {
    pub external_userid: String,
    pub name: String,
    pub avatar: String,
    /// 1 WeChat user, 2 WeCom user.
    #[serde(rename = "type")]
    pub kind: i64,
    pub gender: i64,
    pub unionid: Option<String>,
    pub corp_name: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FollowTag {
    pub group_name: String,
    pub tag_name: String,
    pub tag_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FollowUser {
    pub userid: String,
    pub remark: String,
    pub description: String,
    pub createtime: i64,
    pub tags: Vec<FollowTag>,
    pub remark_mobiles: Vec<String>,
    pub oper_userid: String,
    /// An open enum: unknown values are kept as they come.
    pub add_way: i64,
    pub state: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ContactDetail {
    pub external_contact: ExternalContact,
    pub follow_user: Vec<FollowUser>,
    pub next_cursor: Option<String>,
}

/// One relationship as `batch/get_by_user` reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FollowInfo {
    pub userid: String,
    pub remark: String,
    pub description: String,
    pub createtime: i64,
    pub tag_id: Vec<String>,
    pub remark_mobiles: Vec<String>,
    pub add_way: i64,
    pub oper_userid: String,
    pub state: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ContactWithFollow {
    pub external_contact: ExternalContact,
    pub follow_info: FollowInfo,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct BatchContacts {
    pub external_contact_list: Vec<ContactWithFollow>,
    pub next_cursor: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct ExternalIds {
    external_userid: Vec<String>,
}

// ---- corp tags --------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CorpTag {
    pub id: String,
    pub name: String,
    pub create_time: i64,
    pub order: i64,
    pub deleted: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TagGroup {
    pub group_id: String,
    pub group_name: String,
    pub create_time: i64,
    pub order: i64,
    pub deleted: bool,
    pub tag: Vec<CorpTag>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct TagGroups {
    tag_group: Vec<TagGroup>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct OneTagGroup {
    tag_group: TagGroup,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct NewTag {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AddCorpTag {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<i64>,
    pub tag: Vec<NewTag>,
}

impl AddCorpTag {
    /// One tag into an existing group.
    pub fn to_group(group_id: &str, name: &str) -> AddCorpTag {
        AddCorpTag {
            group_id: Some(group_id.into()),
            group_name: None,
            order: None,
            tag: vec![NewTag { name: name.into(), order: None }],
        }
    }
}

// ---- contact_way / join_way ---------------------------------------------------------------

/// A 「联系我」 configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ContactWay {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub config_id: String,
    /// 1 single member, 2 multiple.
    #[serde(rename = "type")]
    pub kind: i64,
    /// 1 mini-program, 2 QR code.
    pub scene: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    pub skip_verify: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub party: Vec<i64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub qr_code: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct AddedWay {
    pub config_id: String,
    pub qr_code: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct ContactWayOut {
    contact_way: ContactWay,
}

/// A 「加入群聊」 configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct JoinWay {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub config_id: String,
    pub scene: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    pub auto_create_room: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_base_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_base_id: Option<i64>,
    pub chat_id_list: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub qr_code: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct JoinWayOut {
    join_way: JoinWay,
}

// ---- group chats ----------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ChatRef {
    pub chat_id: String,
    pub status: i64,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct ChatList {
    pub group_chat_list: Vec<ChatRef>,
    pub next_cursor: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ChatMember {
    pub userid: String,
    /// 1 member, 2 external contact.
    #[serde(rename = "type")]
    pub kind: i64,
    pub unionid: Option<String>,
    pub join_time: i64,
    /// API numbering: 1 direct invite, 2 invite link, 3 scanned group QR.
    pub join_scene: i64,
    pub group_nickname: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct GroupChat {
    pub chat_id: String,
    pub name: String,
    pub owner: String,
    pub create_time: i64,
    pub notice: String,
    pub member_list: Vec<ChatMember>,
    pub member_version: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct GroupChatOut {
    group_chat: GroupChat,
}

// ---- messages --------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Text {
    pub content: String,
}

/// `{msgtype, <type>{…}}`, kept as JSON: siyu builds these from templates.
pub type Attachment = serde_json::Value;

#[derive(Debug, Clone, Default, Serialize)]
pub struct MsgTemplate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_type: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_userid: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chat_id_list: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<Text>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct MsgTemplateOut {
    pub fail_list: Vec<String>,
    pub msgid: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct GroupMsg {
    pub msgid: String,
    pub creator: String,
    pub create_type: i64,
    pub create_time: i64,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct GroupMsgList {
    pub group_msg_list: Vec<GroupMsg>,
    pub next_cursor: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct GroupMsgTask {
    pub userid: String,
    /// 0 not sent, 2 sent.
    pub status: i64,
    pub send_time: i64,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct GroupMsgTasks {
    pub task_list: Vec<GroupMsgTask>,
    pub next_cursor: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SendResult {
    pub external_userid: String,
    pub chat_id: String,
    pub userid: String,
    /// 0 not sent, 1 sent, 2 not a friend, 3 receive limit.
    pub status: i64,
    pub send_time: i64,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct SendResults {
    pub send_list: Vec<SendResult>,
    pub next_cursor: String,
}

// ---- transfers ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TransferItem {
    pub external_userid: String,
    pub errcode: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct TransferOut {
    customer: Vec<TransferItem>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TransferStatus {
    pub external_userid: String,
    /// 1 done, 2 waiting, 3 refused, 4 takeover at limit, 5 no record.
    pub status: i64,
    pub takeover_time: i64,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct TransferResult {
    pub customer: Vec<TransferStatus>,
    pub next_cursor: String,
}

/// A customer of a resigned member not yet handed to anyone.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Unassigned {
    pub handover_userid: String,
    pub external_userid: String,
    pub dimission_time: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct UnassignedOut {
    info: Vec<Unassigned>,
    is_last: bool,
    next_cursor: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FailedChat {
    pub chat_id: String,
    pub errcode: i64,
    pub errmsg: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct ChatTransferOut {
    failed_chat_list: Vec<FailedChat>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Empty {}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct SendOut {
    invaliduser: String,
}

impl Client {
    // organisation
    pub async fn departments(&self) -> Result<Vec<Department>> {
        Ok(self.get::<DepartmentList>("/cgi-bin/department/list", &[]).await?.department)
    }
    pub async fn members(&self, department_id: i64) -> Result<Vec<Member>> {
        let d = department_id.to_string();
        Ok(self.get::<MemberList>("/cgi-bin/user/list", &[("department_id", &d)]).await?.userlist)
    }

    // external contacts
    pub async fn contact(&self, external_userid: &str) -> Result<ContactDetail> {
        self.get(&format!("{EC}/get"), &[("external_userid", external_userid)]).await
    }
    pub async fn contacts_of(&self, userid: &str) -> Result<Vec<String>> {
        Ok(self.get::<ExternalIds>(&format!("{EC}/list"), &[("userid", userid)]).await?.external_userid)
    }
    pub async fn contacts_by_users(&self, userids: &[String], cursor: &str, limit: u32) -> Result<BatchContacts> {
        self.post(
            &format!("{EC}/batch/get_by_user"),
            &serde_json::json!({"userid_list": userids, "cursor": cursor, "limit": limit}),
        )
        .await
    }

    // corp tags
    pub async fn corp_tags(&self, tag_ids: &[String], group_ids: &[String]) -> Result<Vec<TagGroup>> {
        Ok(self
            .post::<_, TagGroups>(
                &format!("{EC}/get_corp_tag_list"),
                &serde_json::json!({"tag_id": tag_ids, "group_id": group_ids}),
            )
            .await?
            .tag_group)
    }
    pub async fn add_corp_tag(&self, req: &AddCorpTag) -> Result<TagGroup> {
        Ok(self.post::<_, OneTagGroup>(&format!("{EC}/add_corp_tag"), req).await?.tag_group)
    }
    pub async fn edit_corp_tag(&self, id: &str, name: Option<&str>, order: Option<i64>) -> Result<()> {
        self.post::<_, Empty>(
            &format!("{EC}/edit_corp_tag"),
            &serde_json::json!({"id": id, "name": name, "order": order}),
        )
        .await
        .map(|_| ())
    }
    pub async fn del_corp_tag(&self, tag_ids: &[String], group_ids: &[String]) -> Result<()> {
        self.post::<_, Empty>(
            &format!("{EC}/del_corp_tag"),
            &serde_json::json!({"tag_id": tag_ids, "group_id": group_ids}),
        )
        .await
        .map(|_| ())
    }
    pub async fn mark_tag(&self, userid: &str, external_userid: &str, add: &[String], remove: &[String]) -> Result<()> {
        let body = serde_json::json!({"userid": userid, "external_userid": external_userid, "add_tag": add, "remove_tag": remove});
        self.post::<_, Empty>(&format!("{EC}/mark_tag"), &body).await.map(|_| ())
    }

    // contact_way
    pub async fn add_contact_way(&self, way: &ContactWay) -> Result<AddedWay> {
        self.post(&format!("{EC}/add_contact_way"), way).await
    }
    pub async fn get_contact_way(&self, config_id: &str) -> Result<ContactWay> {
        Ok(self
            .post::<_, ContactWayOut>(&format!("{EC}/get_contact_way"), &serde_json::json!({"config_id": config_id}))
            .await?
            .contact_way)
    }
    /// `way.config_id` names the configuration; `type` and `scene` cannot change.
    pub async fn update_contact_way(&self, way: &ContactWay) -> Result<()> {
        let mut body = serde_json::to_value(way).map_err(|e| crate::client::WecomError::Decode(e.to_string()))?;
        if let Some(o) = body.as_object_mut() {
            o.remove("type");
            o.remove("scene");
            o.remove("qr_code");
        }
        self.post::<_, Empty>(&format!("{EC}/update_contact_way"), &body).await.map(|_| ())
    }
    pub async fn del_contact_way(&self, config_id: &str) -> Result<()> {
        self.post::<_, Empty>(&format!("{EC}/del_contact_way"), &serde_json::json!({"config_id": config_id}))
            .await
            .map(|_| ())
    }

    // join_way
    pub async fn add_join_way(&self, way: &JoinWay) -> Result<String> {
        Ok(self.post::<_, AddedWay>(&format!("{EC}/groupchat/add_join_way"), way).await?.config_id)
    }
    pub async fn get_join_way(&self, config_id: &str) -> Result<JoinWay> {
        Ok(self
            .post::<_, JoinWayOut>(
                &format!("{EC}/groupchat/get_join_way"),
                &serde_json::json!({"config_id": config_id}),
            )
            .await?
            .join_way)
    }
    pub async fn update_join_way(&self, way: &JoinWay) -> Result<()> {
        self.post::<_, Empty>(&format!("{EC}/groupchat/update_join_way"), way).await.map(|_| ())
    }
    pub async fn del_join_way(&self, config_id: &str) -> Result<()> {
        self.post::<_, Empty>(&format!("{EC}/groupchat/del_join_way"), &serde_json::json!({"config_id": config_id}))
            .await
            .map(|_| ())
    }

    // group chats
    pub async fn group_chats(&self, owners: &[String], cursor: &str, limit: u32) -> Result<ChatList> {
        let mut body = serde_json::json!({"status_filter": 0, "cursor": cursor, "limit": limit});
        if !owners.is_empty() {
            body["owner_filter"] = serde_json::json!({"userid_list": owners});
        }
        self.post(&format!("{EC}/groupchat/list"), &body).await
    }
    pub async fn group_chat(&self, chat_id: &str) -> Result<GroupChat> {
        Ok(self
            .post::<_, GroupChatOut>(
                &format!("{EC}/groupchat/get"),
                &serde_json::json!({"chat_id": chat_id, "need_name": 1}),
            )
            .await?
            .group_chat)
    }

    // messages
    pub async fn add_msg_template(&self, t: &MsgTemplate) -> Result<MsgTemplateOut> {
        self.post(&format!("{EC}/add_msg_template"), t).await
    }
    pub async fn groupmsg_list(
        &self,
        chat_type: &str,
        start_time: i64,
        end_time: i64,
        cursor: &str,
    ) -> Result<GroupMsgList> {
        let body = serde_json::json!({"chat_type": chat_type, "start_time": start_time, "end_time": end_time, "filter_type": 2, "limit": 100, "cursor": cursor});
        self.post(&format!("{EC}/get_groupmsg_list_v2"), &body).await
    }
    pub async fn groupmsg_task(&self, msgid: &str, cursor: &str) -> Result<GroupMsgTasks> {
        self.post(
            &format!("{EC}/get_groupmsg_task"),
            &serde_json::json!({"msgid": msgid, "limit": 1000, "cursor": cursor}),
        )
        .await
    }
    pub async fn groupmsg_send_result(&self, msgid: &str, userid: &str, cursor: &str) -> Result<SendResults> {
        let body = serde_json::json!({"msgid": msgid, "userid": userid, "limit": 1000, "cursor": cursor});
        self.post(&format!("{EC}/get_groupmsg_send_result"), &body).await
    }
    pub async fn send_welcome_msg(
        &self,
        welcome_code: &str,
        text: Option<&str>,
        attachments: &[Attachment],
    ) -> Result<()> {
        let mut body = serde_json::json!({"welcome_code": welcome_code, "attachments": attachments});
        if let Some(t) = text {
            body["text"] = serde_json::json!({"content": t});
        }
        self.post::<_, Empty>(&format!("{EC}/send_welcome_msg"), &body).await.map(|_| ())
    }

    /// Sends an app message (应用消息) of plain text to members, as the app `agentid`.
    /// Returns the members WeCom could not reach (`invaliduser`, `|`-separated by WeCom).
    pub async fn send_text(&self, agentid: &str, to: &[String], content: &str) -> Result<Vec<String>> {
        let body = serde_json::json!({
            "touser": to.join("|"), "msgtype": "text", "agentid": agentid.parse::<i64>().unwrap_or(0),
            "text": {"content": content}
        });
        let out: SendOut = self.post("/cgi-bin/message/send", &body).await?;
        Ok(out.invaliduser.split('|').filter(|u| !u.is_empty()).map(str::to_string).collect())
    }

    // transfers
    /// 在职继承 (`resigned = false`) or 离职继承 (`resigned = true`) of up to 100 customers.
    pub async fn transfer_customer(
        &self,
        resigned: bool,
        handover: &str,
        takeover: &str,
        externals: &[String],
        msg: Option<&str>,
    ) -> Result<Vec<TransferItem>> {
        let path =
            if resigned { format!("{EC}/resigned/transfer_customer") } else { format!("{EC}/transfer_customer") };
        let mut body =
            serde_json::json!({"handover_userid": handover, "takeover_userid": takeover, "external_userid": externals});
        if let (false, Some(m)) = (resigned, msg) {
            body["transfer_success_msg"] = serde_json::json!(m);
        }
        Ok(self.post::<_, TransferOut>(&path, &body).await?.customer)
    }
    pub async fn transfer_result(
        &self,
        resigned: bool,
        handover: &str,
        takeover: &str,
        cursor: &str,
    ) -> Result<TransferResult> {
        let path = if resigned { format!("{EC}/resigned/transfer_result") } else { format!("{EC}/transfer_result") };
        self.post(
            &path,
            &serde_json::json!({"handover_userid": handover, "takeover_userid": takeover, "cursor": cursor}),
        )
        .await
    }
    /// Every customer of resigned members waiting for a new owner (all pages).
    pub async fn unassigned(&self) -> Result<Vec<Unassigned>> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        loop {
            let page: UnassignedOut = self
                .post(&format!("{EC}/get_unassigned_list"), &serde_json::json!({"page_size": 1000, "cursor": cursor}))
                .await?;
            out.extend(page.info);
            if page.is_last || page.next_cursor.is_empty() {
                return Ok(out);
            }
            cursor = page.next_cursor;
        }
    }
    /// Moves group chats to `new_owner`: `groupchat/transfer` for departed owners,
    /// `groupchat/onjob_transfer` for active ones.
    pub async fn transfer_group_chats(
        &self,
        resigned: bool,
        chat_ids: &[String],
        new_owner: &str,
    ) -> Result<Vec<FailedChat>> {
        let path = if resigned { format!("{EC}/groupchat/transfer") } else { format!("{EC}/groupchat/onjob_transfer") };
        Ok(self
            .post::<_, ChatTransferOut>(&path, &serde_json::json!({"chat_id_list": chat_ids, "new_owner": new_owner}))
            .await?
            .failed_chat_list)
    }
}
