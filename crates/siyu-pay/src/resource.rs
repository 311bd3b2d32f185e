//! The resources WeChat Pay returns and notifies (protocols.md §7.4–7.5), typed once for both
//! paths: a queried order and a decrypted `TRANSACTION.SUCCESS` resource deserialize into the
//! same [`Transaction`], a refund and a `REFUND.*` resource into the same [`RefundInfo`].
//!
//! States are enums with an `Other` fallback: WeChat Pay adds values (such as `ACCEPT`) without
//! notice, and a payment integration that refuses an unknown state refuses real money.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::notify::Notification;

macro_rules! open_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $wire:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($variant,)*
            /// A value this version does not know; kept verbatim.
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)*
                    $name::Other(s) => s,
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $($wire => $name::$variant,)*
                    _ => $name::Other(s),
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name::from(s.to_string())
            }
        }

        impl From<$name> for String {
            fn from(s: $name) -> String {
                s.as_str().to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

open_enum!(
    /// `trade_state` of a transaction.
    TradeState {
        Success = "SUCCESS",
        Refund = "REFUND",
        NotPay = "NOTPAY",
        Closed = "CLOSED",
        Revoked = "REVOKED",
        UserPaying = "USERPAYING",
        PayError = "PAYERROR",
    }
);

open_enum!(
    /// `status` (in queries) or `refund_status` (in notifications) of a refund.
    RefundStatus {
        Success = "SUCCESS",
        Closed = "CLOSED",
        Processing = "PROCESSING",
        Abnormal = "ABNORMAL",
    }
);

/// A transaction (§7.4): the answer to an order query and the `transaction` resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    #[serde(default)]
    pub appid: String,
    #[serde(default)]
    pub mchid: String,
    pub out_trade_no: String,
    /// Assigned when the payer pays; absent while `NOTPAY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// JSAPI, NATIVE, APP, MICROPAY, MWEB or FACEPAY; absent before payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trade_type: Option<String>,
    pub trade_state: TradeState,
    #[serde(default)]
    pub trade_state_desc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<String>,
    /// RFC 3339, e.g. `2025-05-20T13:29:35+08:00`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<Payer>,
    #[serde(default)]
    pub amount: TransactionAmount,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scene_info: Option<SceneInfo>,
    /// Coupons and discounts, kept as sent: siyu reconciles on `amount`, not on these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promotion_detail: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payer {
    #[serde(default)]
    pub openid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SceneInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
}

/// Amounts in fen. `payer_total` is what the payer actually paid (after coupons) and exists
/// only once paid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionAmount {
    #[serde(default)]
    pub total: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_total: Option<i64>,
    #[serde(default)]
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_currency: Option<String>,
}

/// A refund (§7.5): the answer to a refund request or query and the `refund` resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundInfo {
    #[serde(default)]
    pub refund_id: String,
    pub out_refund_no: String,
    #[serde(default)]
    pub transaction_id: String,
    #[serde(default)]
    pub out_trade_no: String,
    /// Present in notifications only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mchid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_received_account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    /// Queries call it `status`, notifications `refund_status`.
    #[serde(alias = "refund_status")]
    pub status: RefundStatus,
    pub amount: RefundAmount,
}

/// Refund amounts in fen: `total` is the original order's, `refund` this refund's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundAmount {
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub refund: i64,
    #[serde(default)]
    pub payer_total: i64,
    #[serde(default)]
    pub payer_refund: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// A decrypted notification resource, by `original_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Transaction(Transaction),
    Refund(RefundInfo),
}

/// Reads the plaintext of a notification's resource (from [`crate::notify::open`]) as the
/// type its `original_type` names, falling back to the event type's prefix when the
/// resource does not say.
pub fn parse_notice(notification: &Notification, plaintext: &[u8]) -> Result<Notice, String> {
    let kind = match notification.resource.original_type.as_str() {
        "" if notification.event_type.starts_with("REFUND.") => "refund",
        "" if notification.event_type.starts_with("TRANSACTION.") => "transaction",
        other => other,
    };
    match kind {
        "transaction" => serde_json::from_slice(plaintext)
            .map(Notice::Transaction)
            .map_err(|e| format!("the transaction resource does not parse: {e}")),
        "refund" => serde_json::from_slice(plaintext)
            .map(Notice::Refund)
            .map_err(|e| format!("the refund resource does not parse: {e}")),
        other => Err(format!("unknown resource type {other:?} in a {} notification", notification.event_type)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_states_survive_a_round_trip() {
        let t: Transaction =
            serde_json::from_str(r#"{"out_trade_no":"A1","trade_state":"ACCEPT","amount":{"total":5}}"#).unwrap();
        assert_eq!(t.trade_state, TradeState::Other("ACCEPT".into()));
        assert_eq!(serde_json::to_value(&t).unwrap()["trade_state"], "ACCEPT");
        assert_eq!(TradeState::from("NOTPAY"), TradeState::NotPay);
        assert_eq!(RefundStatus::from("ABNORMAL").to_string(), "ABNORMAL");
    }

    #[test]
    fn a_refund_reads_from_a_query_and_from_a_notification() {
        let query =
            r#"{"refund_id":"50","out_refund_no":"R1","status":"PROCESSING","amount":{"total":100,"refund":30}}"#;
        let notice = r#"{"mchid":"1","refund_id":"50","out_refund_no":"R1","refund_status":"SUCCESS",
                         "amount":{"total":100,"refund":30,"payer_total":100,"payer_refund":30}}"#;
        let q: RefundInfo = serde_json::from_str(query).unwrap();
        let n: RefundInfo = serde_json::from_str(notice).unwrap();
        assert_eq!((q.status, q.amount.refund), (RefundStatus::Processing, 30));
        assert_eq!((n.status, n.amount.payer_refund), (RefundStatus::Success, 30));
    }
}
