//! Customer transfers (在职转接 and 离职继承, scrm-rules C-50..C-62): the planner that spreads
//! a handover member's customers across receivers, the preflight that keeps WeCom's limits,
//! and the meaning of every state WeCom reports back.
//!
//! WeCom's answer to `transfer_customer` only *starts* a takeover (C-51): an item sent with
//! errcode 0 waits until `transfer_result` reports it final. So an item's status is a small
//! state machine — planned → sending → waiting → done | refused | limit | failed — and every
//! non-done end carries a reason an operator can act on (retry, re-route, or nothing).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The most customers one `transfer_customer` call may carry.
pub const CALL_MAX: usize = 100;
/// The longest message shown to the customer (`transfer_success_msg`), in characters.
pub const MESSAGE_MAX_CHARS: usize = 200;
/// WeCom lets a customer be transferred at most this many times …
pub const WINDOW_MAX: u32 = 2;
/// … in this many trailing days.
pub const WINDOW_DAYS: i64 = 90;
/// An in-service takeover completes this long after the call unless the customer refuses.
pub const TAKEOVER_SECS: i64 = 24 * 3600;

/// 在职转接 (the handover member is still employed) or 离职继承 (they have left).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Onjob,
    Resigned,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Onjob => "onjob",
            Kind::Resigned => "resigned",
        }
    }
    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Onjob, Kind::Resigned].into_iter().find(|k| k.as_str() == s)
    }
}

/// What a batch moves: a member's customers, or the customer groups they own
/// (`group_transfer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    #[default]
    Customers,
    Groups,
}

impl Subject {
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::Customers => "customers",
            Subject::Groups => "groups",
        }
    }
    pub fn parse(s: &str) -> Option<Subject> {
        [Subject::Customers, Subject::Groups].into_iter().find(|k| k.as_str() == s)
    }
}

/// Where one customer's transfer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Assigned to a receiver, not yet sent.
    Planned,
    /// Left out by the preflight (the reason says why); never sent.
    Excluded,
    /// Handed to WeCom; the answer is not recorded yet (a crash here is repaired by polling).
    Sending,
    /// WeCom accepted the request; the takeover completes at `expected_at` unless refused.
    Waiting,
    /// The receiver owns the customer now.
    Done,
    /// The customer refused; it stays with the handover member and is not retried.
    Refused,
    /// The receiver is at WeCom's customer limit; offered for re-routing.
    Limit,
    /// WeCom refused the call for this customer (the errcode says why).
    Failed,
    /// Replaced by a new item to another receiver.
    Rerouted,
    /// Withdrawn by an operator before it was sent.
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Planned,
        Status::Excluded,
        Status::Sending,
        Status::Waiting,
        Status::Done,
        Status::Refused,
        Status::Limit,
        Status::Failed,
        Status::Rerouted,
        Status::Cancelled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Planned => "planned",
            Status::Excluded => "excluded",
            Status::Sending => "sending",
            Status::Waiting => "waiting",
            Status::Done => "done",
            Status::Refused => "refused",
            Status::Limit => "limit",
            Status::Failed => "failed",
            Status::Rerouted => "rerouted",
            Status::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
    /// Still moving: WeCom or siyu has something left to do.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Planned | Status::Sending | Status::Waiting)
    }
    /// May be sent again to the same receiver (a failed call, not a customer's decision).
    pub fn retryable(self) -> bool {
        matches!(self, Status::Failed)
    }
    /// May be sent to a different receiver instead (C-52: at limit, or a failed call).
    pub fn reroutable(self) -> bool {
        matches!(self, Status::Limit | Status::Failed | Status::Excluded)
    }
}

/// Why an item ended where it did: stable keys the console explains.
pub mod reason {
    /// Transferred twice already in the trailing 90 days (C-50, counted from siyu's log).
    pub const WINDOW: &str = "window";
    /// No receiver could take the customer (none given, or all excluded).
    pub const NO_RECEIVER: &str = "no_receiver";
    /// The receiver is the handover member.
    pub const SAME_MEMBER: &str = "same_member";
    /// The customer declined the takeover (result status 3 or `transfer_fail`).
    pub const REFUSED: &str = "refused";
    /// The receiver reached WeCom's customer limit (status 4 or `transfer_fail`).
    pub const LIMIT: &str = "limit";
    /// WeCom has no record of the transfer (status 5); the relationship is re-read.
    pub const NO_RECORD: &str = "no_record";
    /// WeCom answered the call with a per-customer errcode (see the item's errcode).
    pub const ERRCODE: &str = "errcode";
    /// The whole call failed (busy, rate limit, network); the item can be retried.
    pub const CALL_FAILED: &str = "call_failed";
    /// The handover member no longer has this customer.
    pub const NOT_FRIEND: &str = "not_friend";
}

/// A customer to move, with the facts the preflight needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub external_userid: String,
    pub handover: String,
    /// The handover member's store (or department): receivers sharing it are preferred (C-60).
    pub handover_group: Option<String>,
    /// Transfers of this customer siyu has sent in the trailing 90 days.
    pub recent_transfers: u32,
    /// Receivers this customer must not go to (e.g. one already at its limit for it).
    pub avoid: Vec<String>,
}

/// A member who may receive customers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receiver {
    pub userid: String,
    pub group: Option<String>,
    /// Active relationships the member already has; the planner fills the least loaded first.
    pub load: u64,
}

/// The planner's decision for one candidate: a receiver, or the reason there is none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub external_userid: String,
    pub handover: String,
    pub takeover: Result<String, &'static str>,
}

/// Spreads candidates over receivers: a customer already moved twice in 90 days is excluded;
/// otherwise it goes to the least-loaded receiver sharing the handover member's group, else
/// the least-loaded receiver at all (ties: the order receivers were given), never to the
/// handover member itself or a receiver it must avoid. Loads grow as customers are assigned,
/// so a plan over equally loaded receivers differs by at most one customer between them.
pub fn plan(candidates: &[Candidate], receivers: &[Receiver]) -> Vec<Assignment> {
    let mut load: Vec<u64> = receivers.iter().map(|r| r.load).collect();
    candidates
        .iter()
        .map(|c| {
            let takeover = if c.recent_transfers >= WINDOW_MAX {
                Err(reason::WINDOW)
            } else {
                let eligible = |i: &usize| {
                    let r = &receivers[*i];
                    r.userid != c.handover && !c.avoid.contains(&r.userid)
                };
                let least = |same_group: bool| {
                    (0..receivers.len())
                        .filter(eligible)
                        .filter(|i| {
                            !same_group || (c.handover_group.is_some() && receivers[*i].group == c.handover_group)
                        })
                        .min_by_key(|i| (load[*i], *i))
                };
                match least(true).or_else(|| least(false)) {
                    Some(i) => {
                        load[i] += 1;
                        Ok(receivers[i].userid.clone())
                    }
                    None if receivers.iter().any(|r| r.userid == c.handover) && receivers.len() == 1 => {
                        Err(reason::SAME_MEMBER)
                    }
                    None => Err(reason::NO_RECEIVER),
                }
            };
            Assignment { external_userid: c.external_userid.clone(), handover: c.handover.clone(), takeover }
        })
        .collect()
}

/// One `transfer_customer` call: a handover → takeover pair and at most [`CALL_MAX`] customers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub handover: String,
    pub takeover: String,
    pub externals: Vec<String>,
}

/// Groups (handover, takeover, external) triples into calls of at most [`CALL_MAX`]
/// customers per pair, each customer once, pairs in first-seen order.
pub fn calls<'a>(items: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>) -> Vec<Call> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut by_pair: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (h, t, e) in items {
        let key = (h.to_string(), t.to_string());
        let list = by_pair.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            Vec::new()
        });
        if !list.iter().any(|x| x == e) {
            list.push(e.to_string());
        }
    }
    let mut out = Vec::new();
    for key in order {
        let list = &by_pair[&key];
        for chunk in list.chunks(CALL_MAX) {
            out.push(Call { handover: key.0.clone(), takeover: key.1.clone(), externals: chunk.to_vec() });
        }
    }
    out
}

/// What a per-customer errcode in `transfer_customer`'s answer means for the item.
pub fn after_send(errcode: i64) -> (Status, Option<&'static str>) {
    match errcode {
        0 => (Status::Waiting, None),
        84061 => (Status::Failed, Some(reason::NOT_FRIEND)),
        _ => (Status::Failed, Some(reason::ERRCODE)),
    }
}

/// What a `transfer_result` status means for the item (C-52). Unknown statuses leave it
/// waiting, so a new WeCom status never loses a transfer.
pub fn after_poll(status: i64) -> (Status, Option<&'static str>) {
    match status {
        1 => (Status::Done, None),
        3 => (Status::Refused, Some(reason::REFUSED)),
        4 => (Status::Limit, Some(reason::LIMIT)),
        5 => (Status::Failed, Some(reason::NO_RECORD)),
        _ => (Status::Waiting, None),
    }
}

/// What a `transfer_fail` callback's `FailReason` means.
pub fn after_fail_event(fail_reason: &str) -> Option<(Status, &'static str)> {
    match fail_reason {
        "customer_refused" => Some((Status::Refused, reason::REFUSED)),
        "customer_limit_exceed" => Some((Status::Limit, reason::LIMIT)),
        _ => None,
    }
}

/// Checks the message shown to the customer: at most 200 characters, blank means none.
pub fn message(raw: &str) -> Result<Option<String>, &'static str> {
    let m = raw.trim();
    if m.is_empty() {
        Ok(None)
    } else if m.chars().count() > MESSAGE_MAX_CHARS {
        Err("too_long")
    } else {
        Ok(Some(m.to_string()))
    }
}

/// What siyu does when a member leaves (C-60): nothing, plan for approval, or plan and send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AutoMode {
    Off,
    #[default]
    Plan,
    Execute,
}

impl AutoMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AutoMode::Off => "off",
            AutoMode::Plan => "plan",
            AutoMode::Execute => "execute",
        }
    }
    pub fn parse(s: &str) -> Option<AutoMode> {
        [AutoMode::Off, AutoMode::Plan, AutoMode::Execute].into_iter().find(|m| m.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cand(e: &str, h: &str, g: Option<&str>, recent: u32) -> Candidate {
        Candidate {
            external_userid: e.into(),
            handover: h.into(),
            handover_group: g.map(str::to_string),
            recent_transfers: recent,
            avoid: vec![],
        }
    }
    fn recv(u: &str, g: Option<&str>, load: u64) -> Receiver {
        Receiver { userid: u.into(), group: g.map(str::to_string), load }
    }

    #[test]
    fn same_store_first_then_least_loaded() {
        let rs = [recv("a", Some("s1"), 10), recv("b", Some("s2"), 0), recv("c", Some("s1"), 12)];
        let p = plan(&[cand("e1", "h", Some("s1"), 0), cand("e2", "h", Some("s1"), 0), cand("e3", "h", None, 0)], &rs);
        assert_eq!(p[0].takeover, Ok("a".into()), "same store beats a lighter receiver elsewhere");
        assert_eq!(p[1].takeover, Ok("a".into()), "a has 11, c has 12");
        assert_eq!(p[2].takeover, Ok("b".into()), "no group: the least loaded of all");
    }

    #[test]
    fn the_window_rule_and_the_handover_itself_are_excluded() {
        let rs = [recv("h", None, 0), recv("b", None, 5)];
        let p = plan(&[cand("e1", "h", None, 2), cand("e2", "h", None, 1)], &rs);
        assert_eq!(p[0].takeover, Err(reason::WINDOW));
        assert_eq!(p[1].takeover, Ok("b".into()), "never back to the handover member");
        let p = plan(&[cand("e1", "h", None, 0)], &[recv("h", None, 0)]);
        assert_eq!(p[0].takeover, Err(reason::SAME_MEMBER));
        let p = plan(&[cand("e1", "h", None, 0)], &[]);
        assert_eq!(p[0].takeover, Err(reason::NO_RECEIVER));
        let mut c = cand("e1", "h", None, 0);
        c.avoid = vec!["b".into()];
        assert_eq!(plan(&[c], &[recv("b", None, 0)])[0].takeover, Err(reason::NO_RECEIVER));
    }

    #[test]
    fn calls_hold_at_most_100_per_pair_each_customer_once() {
        let ext: Vec<String> = (0..250).map(|i| format!("e{i}")).collect();
        let mut items: Vec<(&str, &str, &str)> = ext.iter().map(|e| ("h", "t", e.as_str())).collect();
        items.push(("h", "t", "e0"));
        items.push(("h", "u", "e0"));
        let cs = calls(items);
        assert_eq!(cs.iter().map(|c| c.externals.len()).collect::<Vec<_>>(), vec![100, 100, 50, 1]);
        assert_eq!(cs[3].takeover, "u");
    }

    #[test]
    fn wecom_answers_map_to_statuses() {
        assert_eq!(after_send(0), (Status::Waiting, None));
        assert_eq!(after_send(84061).1, Some(reason::NOT_FRIEND));
        assert_eq!(after_send(40097).0, Status::Failed);
        assert_eq!(after_poll(1).0, Status::Done);
        assert_eq!(after_poll(2).0, Status::Waiting);
        assert_eq!(after_poll(3), (Status::Refused, Some(reason::REFUSED)));
        assert_eq!(after_poll(4), (Status::Limit, Some(reason::LIMIT)));
        assert_eq!(after_poll(5).1, Some(reason::NO_RECORD));
        assert_eq!(after_poll(99).0, Status::Waiting, "an unknown status never ends a transfer");
        assert_eq!(after_fail_event("customer_limit_exceed"), Some((Status::Limit, reason::LIMIT)));
        assert_eq!(after_fail_event("other"), None);
        assert!(!Status::Refused.reroutable() && !Status::Refused.retryable(), "a refusal is final (C-52)");
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn messages_are_trimmed_and_bounded() {
        assert_eq!(message("  "), Ok(None));
        assert_eq!(message(" 您好 "), Ok(Some("您好".into())));
        assert!(message(&"字".repeat(200)).is_ok());
        assert_eq!(message(&"字".repeat(201)), Err("too_long"));
    }

    proptest! {
        #[test]
        fn plans_are_balanced_and_valid(
            n in 0usize..300,
            loads in proptest::collection::vec(0u64..5, 1..8),
            groups in proptest::collection::vec(proptest::option::of(0u8..3), 8),
            recent in proptest::collection::vec(0u32..4, 300),
            hgroup in proptest::option::of(0u8..3),
        ) {
            let rs: Vec<Receiver> = loads.iter().enumerate()
                .map(|(i, l)| recv(&format!("r{i}"), groups[i].map(|g| format!("g{g}")).as_deref(), *l))
                .collect();
            let hg = hgroup.map(|g| format!("g{g}"));
            let cs: Vec<Candidate> = (0..n).map(|i| cand(&format!("e{i}"), "r0", hg.as_deref(), recent[i])).collect();
            let p = plan(&cs, &rs);
            prop_assert_eq!(p.len(), n);
            let mut got = vec![0u64; rs.len()];
            for (a, c) in p.iter().zip(&cs) {
                match &a.takeover {
                    Ok(t) => {
                        prop_assert!(c.recent_transfers < WINDOW_MAX);
                        prop_assert_ne!(t, &c.handover);
                        let i = rs.iter().position(|r| &r.userid == t).unwrap();
                        // A receiver outside the handover's group is used only when none inside is eligible.
                        let inside = rs.iter().any(|r| r.userid != "r0" && hg.is_some() && r.group == hg);
                        prop_assert!(!inside || rs[i].group == hg);
                        got[i] += 1;
                    }
                    Err(r) => prop_assert!(c.recent_transfers >= WINDOW_MAX || *r != reason::WINDOW),
                }
            }
            // Among the receivers actually used in one pool, final loads differ by at most one
            // from the lightest receiver of that pool that could still have taken more.
            let pool: Vec<usize> = (0..rs.len()).filter(|i| got[*i] > 0).collect();
            for &i in &pool {
                for j in 0..rs.len() {
                    if j == 0 || rs[j].group != rs[i].group { continue; }
                    prop_assert!(rs[i].load + got[i] <= rs[j].load + got[j] + 1,
                        "r{} ended at {} while r{} ended at {}", i, rs[i].load + got[i], j, rs[j].load + got[j]);
                }
            }
        }
    }
}
