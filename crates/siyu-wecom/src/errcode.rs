//! WeCom errcodes siyu acts on (protocols.md §3), each with what siyu does about it and an
//! explanation in words an operator can act on. Branch on the code, never on `errmsg`.

use std::time::Duration;

/// What the client does when it meets an errcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Retry a few times with jitter (system busy).
    RetryBusy,
    /// Drop the cached token, fetch a new one, retry once.
    RefreshToken,
    /// Stop calling this API for the block period.
    Pause(Duration),
    /// A configuration problem the setup checklist explains; never retried.
    Configuration,
    /// Final for this request; no retry.
    Fail,
}

/// A WeCom errcode with its meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errcode {
    pub code: i64,
    pub action: Action,
    pub meaning: &'static str,
}

const MINUTE: Duration = Duration::from_secs(60);

const TABLE: &[Errcode] = &[
    Errcode { code: -1, action: Action::RetryBusy, meaning: "WeCom is busy; retrying shortly" },
    Errcode {
        code: 40001,
        action: Action::Configuration,
        meaning: "the app Secret is wrong: copy it again from the app's page in WeCom's admin console",
    },
    Errcode {
        code: 40013,
        action: Action::Configuration,
        meaning: "the CorpID is wrong: copy it from 我的企业 → 企业信息",
    },
    Errcode {
        code: 40003,
        action: Action::Fail,
        meaning: "no such WeCom member (userid); the staff list will be re-synced",
    },
    Errcode {
        code: 40014,
        action: Action::RefreshToken,
        meaning: "the access_token is invalid; siyu fetches a new one",
    },
    Errcode { code: 42001, action: Action::RefreshToken, meaning: "the access_token expired; siyu fetches a new one" },
    Errcode {
        code: 40058,
        action: Action::Fail,
        meaning: "WeCom rejected a parameter; this is a siyu bug or bad data, and is not retried",
    },
    Errcode { code: 40068, action: Action::Fail, meaning: "no such corp tag; the tag list will be refreshed" },
    Errcode {
        code: 40096,
        action: Action::Fail,
        meaning: "no such external contact; the relationship is stale and will be reconciled",
    },
    Errcode {
        code: 40097,
        action: Action::Fail,
        meaning: "WeCom refused this customer's transfer: it was already transferred twice in 90 days, or a member is not eligible",
    },
    Errcode { code: 41001, action: Action::Fail, meaning: "the request carried no access_token (a siyu bug)" },
    Errcode {
        code: 41051,
        action: Action::Fail,
        meaning: "the welcome message was already delivered or the chat has started; not retried",
    },
    Errcode {
        code: 41096,
        action: Action::RetryBusy,
        meaning: "another app is sending the welcome message; retrying until the 20-second deadline",
    },
    Errcode {
        code: 45009,
        action: Action::Pause(MINUTE),
        meaning: "WeCom's call frequency limit was hit; this API pauses for the block period",
    },
    Errcode {
        code: 45033,
        action: Action::Pause(Duration::from_secs(5)),
        meaning: "too many concurrent calls; siyu lowers parallelism and retries later",
    },
    Errcode {
        code: 48002,
        action: Action::Configuration,
        meaning: "this app may not call customer contact: add it under 客户联系 → 可调用应用",
    },
    Errcode {
        code: 60011,
        action: Action::Configuration,
        meaning: "the member, department or tag is outside the app's visibility range: widen 可见范围",
    },
    Errcode {
        code: 60020,
        action: Action::Configuration,
        meaning: "siyu's server address is not in the app's trusted IP list (企业可信IP)",
    },
    Errcode {
        code: 81017,
        action: Action::Fail,
        meaning: "the visible range exceeds 1,000 people: group chats are listed by owner batches",
    },
    Errcode {
        code: 84061,
        action: Action::Fail,
        meaning: "there is no external-contact relationship between this member and customer",
    },
    Errcode {
        code: 84074,
        action: Action::Configuration,
        meaning: "the app lacks external-contact permission: enable 客户联系 for it",
    },
    Errcode {
        code: 90500,
        action: Action::Fail,
        meaning: "the group owner has not resigned, so the group cannot be inherited",
    },
    Errcode { code: 90501, action: Action::Fail, meaning: "not an external group chat" },
    Errcode {
        code: 90502,
        action: Action::Fail,
        meaning: "the group owner has resigned: move the group with 离职继承 instead",
    },
    Errcode { code: 90507, action: Action::Fail, meaning: "this departed member's group is already being inherited" },
    Errcode { code: 90508, action: Action::Fail, meaning: "this departed member's group has already been inherited" },
];

/// The errcode's meaning and action; unknown codes fail without retry and say so.
pub fn lookup(code: i64) -> Errcode {
    TABLE.iter().copied().find(|e| e.code == code).unwrap_or(Errcode {
        code,
        action: Action::Fail,
        meaning: "an errcode siyu does not know",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_mapped() {
        let mut seen = std::collections::HashSet::new();
        for e in TABLE {
            assert!(seen.insert(e.code), "{} twice", e.code);
        }
        assert_eq!(lookup(42001).action, Action::RefreshToken);
        assert_eq!(lookup(40001).action, Action::Configuration);
        assert_eq!(lookup(45009).action, Action::Pause(MINUTE));
        assert_eq!(lookup(41051).action, Action::Fail);
        assert_eq!(lookup(12345).action, Action::Fail);
    }
}
