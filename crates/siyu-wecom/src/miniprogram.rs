//! Mini-program login (protocols.md §8): `jscode2session` exchanges the single-use code from
//! `wx.login` for the user's openid (and unionid when the app is bound to an Open Platform
//! account). The `session_key` never leaves the server.

use serde::Deserialize;

use crate::client::{Secret, WecomError};
use crate::errcode::lookup;

pub const MINIPROGRAM_BASE_URL: &str = "https://api.weixin.qq.com";

#[derive(Clone, Debug)]
pub struct MiniProgram {
    pub base_url: String,
    pub appid: String,
    pub secret: Secret,
    http: reqwest::Client,
}

#[derive(Clone, Deserialize, PartialEq, Eq)]
pub struct Session {
    pub openid: String,
    pub unionid: Option<String>,
    /// Secret to the server; `Debug` hides it.
    pub session_key: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("openid", &self.openid).field("unionid", &self.unionid).finish_non_exhaustive()
    }
}

/// What the login errcodes mean (code2Session's own codes, plus -1 and 45011).
fn meaning(code: i64) -> &'static str {
    match code {
        40029 => "the login code is invalid, expired or already used; call wx.login again",
        45011 => "too many logins for this user (100 per minute); try again shortly",
        40226 => "WeChat flagged this user as high-risk; login refused",
        40013 => "the mini-program AppID is wrong",
        40125 => "the mini-program AppSecret is wrong",
        _ => lookup(code).meaning,
    }
}

impl MiniProgram {
    pub fn new(base_url: &str, appid: &str, secret: &str) -> MiniProgram {
        MiniProgram {
            base_url: base_url.trim_end_matches('/').into(),
            appid: appid.into(),
            secret: Secret(secret.into()),
            http: reqwest::Client::new(),
        }
    }

    pub async fn code2session(&self, js_code: &str) -> Result<Session, WecomError> {
        let url = format!("{}/sns/jscode2session", self.base_url);
        let q = [
            ("appid", self.appid.as_str()),
            ("secret", self.secret.0.as_str()),
            ("js_code", js_code),
            ("grant_type", "authorization_code"),
        ];
        let res = self
            .http
            .get(url)
            .query(&q)
            .send()
            .await
            .map_err(|e| WecomError::Transport(e.without_url().to_string()))?;
        let v: serde_json::Value = res.json().await.map_err(|e| WecomError::Decode(e.to_string()))?;
        let code = v["errcode"].as_i64().unwrap_or(0);
        if code != 0 {
            let e = lookup(code);
            return Err(WecomError::Api {
                code,
                errmsg: v["errmsg"].as_str().unwrap_or("").into(),
                meaning: meaning(code),
                action: e.action,
            });
        }
        serde_json::from_value(v).map_err(|e| WecomError::Decode(e.to_string()))
    }
}
