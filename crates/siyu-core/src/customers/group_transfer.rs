//! Customer-group transfers (scrm-rules C-54, C-62): a handover member's groups move to new
//! owners with `groupchat/onjob_transfer` (member still employed) or `groupchat/transfer`
//! (member departed).
//!
//! Unlike a customer's transfer, a group's move is final in the call's answer: a chat missing
//! from `failed_chat_list` has its new owner. So an item goes planned → sending → done |
//! failed, and the planner and the transfer statuses of [`super::transfer`] serve both. What
//! differs are WeCom's limits, which are the rules here: at most 100 chats per call, at most
//! 300 per day for one handover → takeover pair, and at most two moves per group in 90 days.

use std::collections::BTreeMap;

use super::transfer::{reason, Status};

/// The most chats one `onjob_transfer` or `transfer` call may carry.
pub const CALL_MAX: usize = 100;
/// The most chats one handover → takeover pair may move per day. siyu counts a rolling 24
/// hours, which never lets a calendar day exceed it either.
pub const DAILY_PAIR_MAX: usize = 300;
/// A group may move at most this many times …
pub const WINDOW_MAX: u32 = 2;
/// … in this many trailing days.
pub const WINDOW_DAYS: i64 = 90;

/// Why a planned chat was held back for now: the pair reached its daily limit; the item
/// stays planned and goes out once the 24 hours have passed.
pub const DAILY_LIMIT: &str = "daily_limit";

/// Which planned items of each pair may be sent now: `planned` lists (handover, takeover)
/// per item in plan order, `sent_today` how many the pair moved in the last 24 hours. Returns
/// one flag per item; items of a pair beyond its remaining allowance are held back.
pub fn within_daily_limit(planned: &[(&str, &str)], sent_today: &BTreeMap<(String, String), usize>) -> Vec<bool> {
    let mut used: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    planned
        .iter()
        .map(|&(h, t)| {
            let base = sent_today.get(&(h.to_string(), t.to_string())).copied().unwrap_or(0);
            let n = used.entry((h, t)).or_insert(base);
            if *n < DAILY_PAIR_MAX {
                *n += 1;
                true
            } else {
                false
            }
        })
        .collect()
}

/// What a chat's entry in `failed_chat_list` means — or, for a chat WeCom did not list,
/// `None`, which means it moved.
pub fn after_send(failed_errcode: Option<i64>) -> (Status, Option<&'static str>) {
    match failed_errcode {
        None | Some(0) => (Status::Done, None),
        // The chat is dismissed or was never a customer group: nothing left to move.
        Some(90501) => (Status::Failed, Some(NOT_A_GROUP)),
        // The owner's employment changed since planning: the other kind of transfer applies.
        Some(90500) | Some(90502) => (Status::Failed, Some(WRONG_KIND)),
        Some(_) => (Status::Failed, Some(reason::ERRCODE)),
    }
}

/// The chat is not (or no longer) a customer group (errcode 90501).
pub const NOT_A_GROUP: &str = "not_a_group";
/// The owner left, or has not left, contrary to the batch's kind (errcode 90500 or 90502):
/// plan the group again with the other kind.
pub const WRONG_KIND: &str = "wrong_kind";

/// May a failed group item be sent again as it is? Not when the chat is gone or the batch's
/// kind no longer fits the owner: sending it again would fail the same way.
pub fn retryable(status: Status, why: Option<&str>) -> bool {
    status.retryable() && !matches!(why, Some(NOT_A_GROUP) | Some(WRONG_KIND))
}

/// May a group item go to another receiver instead? A failed or unplaced one, unless the
/// chat is gone or already moved twice in 90 days.
pub fn reroutable(status: Status, why: Option<&str>) -> bool {
    matches!(status, Status::Failed | Status::Excluded) && !matches!(why, Some(NOT_A_GROUP) | Some(reason::WINDOW))
}

/// Splits chat ids into calls of at most [`CALL_MAX`], each chat once, in order.
pub fn calls(chat_ids: &[String]) -> Vec<Vec<String>> {
    let mut seen = std::collections::BTreeSet::new();
    let unique: Vec<String> = chat_ids.iter().filter(|c| seen.insert(c.as_str())).cloned().collect();
    unique.chunks(CALL_MAX).map(<[String]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn answers_mean_what_wecom_says() {
        assert_eq!(after_send(None), (Status::Done, None));
        assert_eq!(after_send(Some(90501)), (Status::Failed, Some(NOT_A_GROUP)));
        assert_eq!(after_send(Some(90500)), (Status::Failed, Some(WRONG_KIND)));
        assert_eq!(after_send(Some(90502)), (Status::Failed, Some(WRONG_KIND)));
        assert_eq!(after_send(Some(45009)), (Status::Failed, Some(reason::ERRCODE)));
        assert!(retryable(Status::Failed, Some(reason::ERRCODE)));
        assert!(retryable(Status::Failed, Some(reason::CALL_FAILED)));
        assert!(!retryable(Status::Failed, Some(NOT_A_GROUP)));
        assert!(!retryable(Status::Done, None));
        assert!(reroutable(Status::Failed, Some(WRONG_KIND)));
        assert!(reroutable(Status::Excluded, Some(reason::NO_RECEIVER)));
        assert!(!reroutable(Status::Excluded, Some(reason::WINDOW)));
        assert!(!reroutable(Status::Failed, Some(NOT_A_GROUP)));
        assert!(!reroutable(Status::Done, None));
    }

    #[test]
    fn calls_hold_at_most_a_hundred_chats_once_each() {
        let ids: Vec<String> = (0..250).map(|i| format!("wr{}", i % 230)).collect();
        let c = calls(&ids);
        assert_eq!(c.iter().map(Vec::len).collect::<Vec<_>>(), vec![100, 100, 30]);
        assert_eq!(c[0][0], "wr0");
    }

    #[test]
    fn the_daily_limit_counts_what_the_pair_already_moved() {
        let mut sent = BTreeMap::new();
        sent.insert(("h".to_string(), "a".to_string()), DAILY_PAIR_MAX - 2);
        let planned = [("h", "a"), ("h", "b"), ("h", "a"), ("h", "a"), ("x", "a")];
        assert_eq!(within_daily_limit(&planned, &sent), vec![true, true, true, false, true]);
    }

    proptest! {
        #[test]
        fn no_pair_ever_exceeds_its_daily_limit(
            items in proptest::collection::vec((0u8..3, 0u8..3), 0..1200),
            already in proptest::collection::vec(0usize..=DAILY_PAIR_MAX, 9),
        ) {
            let names = ["h0", "h1", "h2"];
            let planned: Vec<(&str, &str)> = items.iter().map(|(h, t)| (names[*h as usize], names[*t as usize])).collect();
            let mut sent = BTreeMap::new();
            for (i, n) in already.iter().enumerate() {
                sent.insert((names[i / 3].to_string(), names[i % 3].to_string()), *n);
            }
            let ok = within_daily_limit(&planned, &sent);
            for (i, h) in names.iter().enumerate() {
                for (j, t) in names.iter().enumerate() {
                    let wanted = planned.iter().filter(|p| p.0 == *h && p.1 == *t).count();
                    let allowed = planned.iter().zip(&ok).filter(|(p, k)| p.0 == *h && p.1 == *t && **k).count();
                    let room = DAILY_PAIR_MAX - already[i * 3 + j];
                    // Exactly as many as fit: never more, and none held back while room is left.
                    prop_assert_eq!(allowed, wanted.min(room));
                }
            }
        }
    }
}
