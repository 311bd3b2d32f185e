//! Typed callback events, parsed from the decrypted inner XML (protocols.md §6).
//!
//! Parsing is lenient where WeCom is inconsistent — CDATA or not, numbers in CDATA, optional
//! `State`/`WelcomeCode`, two shapes of `MemChangeList` — and keeps unknown change types as
//! `Other` rather than failing, so a new WeCom event never blocks the inbox.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactChange {
    Add,
    AddHalf,
    Edit,
    /// The staff member deleted the customer.
    Del,
    /// The customer deleted the staff member.
    DelFollowUser,
    TransferFail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatChange {
    Create,
    Update,
    Dismiss,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    ExternalContact {
        change: ContactChange,
        user_id: String,
        external_user_id: String,
        state: Option<String>,
        welcome_code: Option<String>,
        /// `DELETE_BY_TRANSFER` on deletions caused by 在职继承.
        source: Option<String>,
        /// `customer_refused` / `customer_limit_exceed` on `transfer_fail`.
        fail_reason: Option<String>,
    },
    ExternalChat {
        change: ChatChange,
        chat_id: String,
        update_detail: Option<String>,
        join_scene: Option<i64>,
        quit_scene: Option<i64>,
        mem_change_cnt: Option<i64>,
        mem_change_list: Vec<String>,
        last_mem_ver: Option<String>,
        cur_mem_ver: Option<String>,
    },
    ExternalTag {
        /// `create`, `update`, `delete` or `shuffle`.
        change: String,
        id: String,
        /// `tag` or `tag_group`.
        tag_type: Option<String>,
        strategy_id: Option<String>,
    },
    /// Org-directory changes (`change_contact`): staff joined, changed or left.
    Contact { change: String, user_id: Option<String> },
    /// An event siyu does not act on (yet); kept for the inbox.
    Other { event: String, change: String },
}

/// A decrypted callback with its common header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Callback {
    pub corp_id: String,
    pub create_time: i64,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the message is not XML: {0}")]
    Xml(String),
    #[error("the event has no {0}")]
    Missing(&'static str),
}

impl Callback {
    pub fn parse(xml: &str) -> Result<Callback, EventError> {
        let fields = crate::xml::flat_fields(xml).map_err(EventError::Xml)?;
        let get =
            |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).filter(|v| !v.is_empty());
        let need = |k: &'static str| get(k).ok_or(EventError::Missing(k));
        let num = |k: &str| get(k).and_then(|v| v.parse::<i64>().ok());
        // Third-party suites rename the header fields.
        let corp_id = get("ToUserName").or_else(|| get("AuthCorpId")).unwrap_or_default();
        let create_time = num("CreateTime").or_else(|| num("TimeStamp")).unwrap_or(0);
        let event_name = get("Event").or_else(|| get("InfoType")).ok_or(EventError::Missing("Event"))?;
        let change = get("ChangeType").unwrap_or_default();
        let event = match event_name.as_str() {
            "change_external_contact" => {
                let c = match change.as_str() {
                    "add_external_contact" => Some(ContactChange::Add),
                    "add_half_external_contact" => Some(ContactChange::AddHalf),
                    "edit_external_contact" => Some(ContactChange::Edit),
                    "del_external_contact" => Some(ContactChange::Del),
                    "del_follow_user" => Some(ContactChange::DelFollowUser),
                    "transfer_fail" => Some(ContactChange::TransferFail),
                    _ => None,
                };
                match c {
                    Some(change) => Event::ExternalContact {
                        change,
                        user_id: need("UserID")?,
                        external_user_id: need("ExternalUserID")?,
                        state: get("State"),
                        welcome_code: get("WelcomeCode"),
                        source: get("Source"),
                        fail_reason: get("FailReason"),
                    },
                    None => Event::Other { event: event_name, change },
                }
            }
            "change_external_chat" => {
                let c = match change.as_str() {
                    "create" => Some(ChatChange::Create),
                    "update" => Some(ChatChange::Update),
                    "dismiss" => Some(ChatChange::Dismiss),
                    _ => None,
                };
                match c {
                    Some(change) => Event::ExternalChat {
                        change,
                        chat_id: need("ChatId")?,
                        update_detail: get("UpdateDetail"),
                        join_scene: num("JoinScene"),
                        quit_scene: num("QuitScene"),
                        mem_change_cnt: num("MemChangeCnt"),
                        mem_change_list: get("MemChangeList")
                            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
                            .unwrap_or_default(),
                        last_mem_ver: get("LastMemVer"),
                        cur_mem_ver: get("CurMemVer"),
                    },
                    None => Event::Other { event: event_name, change },
                }
            }
            "change_external_tag" => {
                Event::ExternalTag { change, id: need("Id")?, tag_type: get("TagType"), strategy_id: get("StrategyId") }
            }
            "change_contact" => Event::Contact { change, user_id: get("UserID") },
            _ => Event::Other { event: event_name, change },
        };
        Ok(Callback { corp_id, create_time, event })
    }

    /// The inbox dedupe key: `(Event, ChangeType, UserID, ExternalUserID|ChatId|Id,
    /// CreateTime)` from the decrypted event — never from the envelope, whose nonce and
    /// signature may or may not repeat on retries.
    pub fn dedupe_key(&self) -> String {
        let (ev, change, user, subject) = match &self.event {
            Event::ExternalContact { change, user_id, external_user_id, .. } => {
                ("change_external_contact", format!("{change:?}"), user_id.as_str(), external_user_id.as_str())
            }
            Event::ExternalChat { change, chat_id, .. } => {
                ("change_external_chat", format!("{change:?}"), "", chat_id.as_str())
            }
            Event::ExternalTag { change, id, .. } => ("change_external_tag", change.clone(), "", id.as_str()),
            Event::Contact { change, user_id } => {
                ("change_contact", change.clone(), user_id.as_deref().unwrap_or(""), "")
            }
            Event::Other { event, change } => (event.as_str(), change.clone(), "", ""),
        };
        format!("{ev}|{change}|{user}|{subject}|{}|{}", self.create_time, self.corp_id)
    }

    /// The entity whose events must be processed in order (S-5): the customer or the chat.
    pub fn entity(&self) -> String {
        match &self.event {
            Event::ExternalContact { external_user_id, .. } => format!("contact:{external_user_id}"),
            Event::ExternalChat { chat_id, .. } => format!("chat:{chat_id}"),
            Event::ExternalTag { id, .. } => format!("tag:{id}"),
            Event::Contact { user_id, .. } => format!("staff:{}", user_id.as_deref().unwrap_or("")),
            Event::Other { event, .. } => format!("other:{event}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_event_from_the_brief() {
        let x = "<xml><ToUserName><![CDATA[CORP_ID]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[add_external_contact]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID><ExternalUserID><![CDATA[wmEXAMPLEexternal]]></ExternalUserID><State><![CDATA[c:1f]]></State><WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode></xml>";
        let c = Callback::parse(x).unwrap();
        assert_eq!(c.corp_id, "CORP_ID");
        assert_eq!(c.create_time, 1_700_000_000);
        assert_eq!(
            c.event,
            Event::ExternalContact {
                change: ContactChange::Add,
                user_id: "zhangsan".into(),
                external_user_id: "wmEXAMPLEexternal".into(),
                state: Some("c:1f".into()),
                welcome_code: Some("WELCOMECODE".into()),
                source: None,
                fail_reason: None,
            }
        );
        assert_eq!(c.entity(), "contact:wmEXAMPLEexternal");
    }

    #[test]
    fn state_and_welcome_code_may_be_absent_and_numbers_may_be_cdata() {
        let x = "<xml><ToUserName>C</ToUserName><CreateTime><![CDATA[17]]></CreateTime><Event>change_external_contact</Event><ChangeType>del_external_contact</ChangeType><UserID>u</UserID><ExternalUserID>e</ExternalUserID><Source>DELETE_BY_TRANSFER</Source></xml>";
        let c = Callback::parse(x).unwrap();
        assert_eq!(c.create_time, 17);
        match c.event {
            Event::ExternalContact { change, state, welcome_code, source, .. } => {
                assert_eq!(
                    (change, state, welcome_code, source.as_deref()),
                    (ContactChange::Del, None, None, Some("DELETE_BY_TRANSFER"))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chat_member_lists_in_both_shapes() {
        for list in [
            "<MemChangeList><Item>wmA</Item><Item>wmB</Item></MemChangeList>",
            "<MemChangeList><![CDATA[wmA,wmB]]></MemChangeList>",
        ] {
            let x = format!("<xml><ToUserName>C</ToUserName><CreateTime>5</CreateTime><Event>change_external_chat</Event><ChangeType>update</ChangeType><ChatId>wr1</ChatId><UpdateDetail>add_member</UpdateDetail><JoinScene>3</JoinScene><MemChangeCnt>2</MemChangeCnt>{list}<LastMemVer>v1</LastMemVer><CurMemVer>v2</CurMemVer></xml>");
            match Callback::parse(&x).unwrap().event {
                Event::ExternalChat { change, mem_change_list, join_scene, cur_mem_ver, .. } => {
                    assert_eq!(change, ChatChange::Update);
                    assert_eq!(mem_change_list, vec!["wmA", "wmB"]);
                    assert_eq!((join_scene, cur_mem_ver.as_deref()), (Some(3), Some("v2")));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn unknown_changes_are_kept_not_rejected_and_missing_ids_are_errors() {
        let x = "<xml><ToUserName>C</ToUserName><CreateTime>1</CreateTime><Event>change_external_contact</Event><ChangeType>brand_new_thing</ChangeType></xml>";
        assert_eq!(
            Callback::parse(x).unwrap().event,
            Event::Other { event: "change_external_contact".into(), change: "brand_new_thing".into() }
        );
        let x = "<xml><ToUserName>C</ToUserName><CreateTime>1</CreateTime><Event>change_external_contact</Event><ChangeType>add_external_contact</ChangeType><UserID>u</UserID></xml>";
        assert_eq!(Callback::parse(x).unwrap_err(), EventError::Missing("ExternalUserID"));
        assert!(Callback::parse("no xml").is_err());
    }

    #[test]
    fn dedupe_key_ignores_everything_but_identity() {
        let a = "<xml><ToUserName>C</ToUserName><CreateTime>9</CreateTime><Event>change_external_contact</Event><ChangeType>add_external_contact</ChangeType><UserID>u</UserID><ExternalUserID>e</ExternalUserID><WelcomeCode>W1</WelcomeCode></xml>";
        let b = a.replace("W1", "W2");
        assert_eq!(Callback::parse(a).unwrap().dedupe_key(), Callback::parse(&b).unwrap().dedupe_key());
        let c = a.replace("<CreateTime>9", "<CreateTime>10");
        assert_ne!(Callback::parse(a).unwrap().dedupe_key(), Callback::parse(&c).unwrap().dedupe_key());
    }
}
