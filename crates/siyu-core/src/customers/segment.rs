//! Segments (人群): boolean expressions over what siyu knows about a customer.
//!
//! An [`Expr`] is data — it is stored as JSON, compiled to roaring bitmaps by
//! [`super::bitmap::SegmentIndex`] and to SQL by the store — and [`matches`] is its meaning,
//! written as plainly as possible so the two compiled forms can be property-tested against it.
//! Every predicate is false for a customer who lacks the fact (no RFM score, never purchased,
//! no owner), so `NOT p` holds for them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::rfm;
use crate::ids::{SegmentId, StaffId, StoreId, TagId};

/// Limits keep one expression cheap to evaluate and to show in the builder.
pub const MAX_DEPTH: usize = 8;
pub const MAX_NODES: usize = 200;
pub const MAX_TEXT: usize = 64;

/// A segment expression. JSON is externally tagged: `{"and": [{"tag": "…"}, {"not": {…}}]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    /// Every customer.
    All,
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// Has the tag: an internal tag on the person, or a corp tag on any active relationship.
    Tag(TagId),
    /// In the lifecycle stage with this key.
    Lifecycle(String),
    /// Added through a channel code whose `state` is this, on any relationship.
    Channel(String),
    /// Owned by this staff member (the owner relationship, scrm-rules C-2).
    Staff(StaffId),
    /// Belongs to this store.
    Store(StoreId),
    /// In this RFM segment of the latest scoring.
    RfmSegment(rfm::Segment),
    /// An RFM score within `[min, max]`, both 1–5.
    RfmScore {
        dim: RfmDim,
        min: u8,
        max: u8,
    },
    /// A custom profile field equal to a value.
    Field {
        key: String,
        value: String,
    },
    /// A numeric fact within the inclusive bounds; at least one bound is given.
    Range {
        metric: Metric,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
    },
    /// Members of another saved segment.
    Segment(SegmentId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RfmDim {
    R,
    F,
    M,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Effective orders, lifetime.
    Orders,
    /// Net paid, lifetime, in fen.
    SpendFen,
    /// Whole local days from the last effective order to today; absent for non-buyers.
    DaysSincePurchase,
}

/// What is known about one customer, as segments see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub tags: BTreeSet<TagId>,
    pub lifecycle: String,
    pub channels: BTreeSet<String>,
    pub staff: Option<StaffId>,
    pub store: Option<StoreId>,
    pub rfm: Option<rfm::Scored>,
    pub fields: BTreeMap<String, String>,
    pub orders: i64,
    pub spend_fen: i64,
    /// Local day number (days since 1970-01-01 in the tenant's zone) of the last purchase.
    pub last_purchase_day: Option<i64>,
}

/// The meaning of an expression for one customer. `today` is the local day number; segment
/// references must have been resolved first ([`resolve`]); an unresolved one matches nothing.
pub fn matches(e: &Expr, f: &Facts, today: i64) -> bool {
    match e {
        Expr::All => true,
        Expr::And(xs) => xs.iter().all(|x| matches(x, f, today)),
        Expr::Or(xs) => xs.iter().any(|x| matches(x, f, today)),
        Expr::Not(x) => !matches(x, f, today),
        Expr::Tag(t) => f.tags.contains(t),
        Expr::Lifecycle(s) => &f.lifecycle == s,
        Expr::Channel(c) => f.channels.contains(c),
        Expr::Staff(s) => f.staff == Some(*s),
        Expr::Store(s) => f.store == Some(*s),
        Expr::RfmSegment(s) => f.rfm.as_ref().is_some_and(|r| r.segment == *s),
        Expr::RfmScore { dim, min, max } => f.rfm.as_ref().is_some_and(|r| {
            let v = match dim {
                RfmDim::R => r.scores.r,
                RfmDim::F => r.scores.f,
                RfmDim::M => r.scores.m,
            };
            (*min..=*max).contains(&v)
        }),
        Expr::Field { key, value } => f.fields.get(key) == Some(value),
        Expr::Range { metric, min, max } => {
            let v = match metric {
                Metric::Orders => Some(f.orders),
                Metric::SpendFen => Some(f.spend_fen),
                Metric::DaysSincePurchase => f.last_purchase_day.map(|d| today - d),
            };
            v.is_some_and(|v| min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m))
        }
        Expr::Segment(_) => false,
    }
}

/// Why an expression was refused; `path` names the node, e.g. `and[2].range.min`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ExprError {
    pub path: String,
    pub code: &'static str,
    pub message: String,
}

fn err(path: &str, code: &'static str, message: impl Into<String>) -> ExprError {
    ExprError { path: path.to_string(), code, message: message.into() }
}

/// Checks shape and bounds. Tag, staff, store and segment ids are checked against the tenant
/// by the caller, which knows them.
pub fn validate(e: &Expr) -> Result<(), ExprError> {
    let mut nodes = 0;
    check(e, "expr", 1, &mut nodes)
}

fn check(e: &Expr, path: &str, depth: usize, nodes: &mut usize) -> Result<(), ExprError> {
    *nodes += 1;
    if *nodes > MAX_NODES {
        return Err(err(path, "too_large", format!("an expression may have at most {MAX_NODES} conditions")));
    }
    if depth > MAX_DEPTH {
        return Err(err(path, "too_deep", format!("conditions may nest at most {MAX_DEPTH} levels")));
    }
    let text = |s: &str, p: &str| -> Result<(), ExprError> {
        if s.trim().is_empty() {
            Err(err(p, "required", "must not be empty"))
        } else if s.chars().count() > MAX_TEXT {
            Err(err(p, "too_long", format!("at most {MAX_TEXT} characters")))
        } else {
            Ok(())
        }
    };
    match e {
        Expr::And(xs) | Expr::Or(xs) => {
            let op = if matches!(e, Expr::And(_)) { "and" } else { "or" };
            if xs.is_empty() {
                return Err(err(&format!("{path}.{op}"), "empty", "needs at least one condition"));
            }
            for (i, x) in xs.iter().enumerate() {
                check(x, &format!("{path}.{op}[{i}]"), depth + 1, nodes)?;
            }
            Ok(())
        }
        Expr::Not(x) => check(x, &format!("{path}.not"), depth + 1, nodes),
        Expr::Lifecycle(s) => text(s, &format!("{path}.lifecycle")),
        Expr::Channel(s) => text(s, &format!("{path}.channel")),
        Expr::Field { key, value } => {
            text(key, &format!("{path}.field.key"))?;
            if value.chars().count() > MAX_TEXT {
                return Err(err(&format!("{path}.field.value"), "too_long", format!("at most {MAX_TEXT} characters")));
            }
            Ok(())
        }
        Expr::RfmScore { min, max, .. } => {
            let p = format!("{path}.rfm_score");
            if !(1..=5).contains(min) || !(1..=5).contains(max) {
                return Err(err(&p, "out_of_range", "scores run from 1 to 5"));
            }
            if min > max {
                return Err(err(&p, "empty_range", "min must not exceed max"));
            }
            Ok(())
        }
        Expr::Range { min, max, .. } => {
            let p = format!("{path}.range");
            if min.is_none() && max.is_none() {
                return Err(err(&p, "required", "give min, max or both"));
            }
            for (name, v) in [("min", min), ("max", max)] {
                if v.is_some_and(|v| !(0..=i64::from(u32::MAX) * 1000).contains(&v)) {
                    return Err(err(&format!("{p}.{name}"), "out_of_range", "must be between 0 and 4294967295000"));
                }
            }
            if let (Some(a), Some(b)) = (min, max) {
                if a > b {
                    return Err(err(&p, "empty_range", "min must not exceed max"));
                }
            }
            Ok(())
        }
        Expr::All | Expr::Tag(_) | Expr::Staff(_) | Expr::Store(_) | Expr::RfmSegment(_) | Expr::Segment(_) => Ok(()),
    }
}

/// Replaces segment references by the referenced expressions, refusing unknown ids and
/// cycles (a segment that contains itself, directly or not).
pub fn resolve(e: &Expr, lookup: &dyn Fn(SegmentId) -> Option<Expr>) -> Result<Expr, ExprError> {
    let mut stack = Vec::new();
    resolve_in(e, lookup, &mut stack, "expr")
}

fn resolve_in(
    e: &Expr,
    lookup: &dyn Fn(SegmentId) -> Option<Expr>,
    stack: &mut Vec<SegmentId>,
    path: &str,
) -> Result<Expr, ExprError> {
    Ok(match e {
        Expr::And(xs) => Expr::And(
            xs.iter()
                .enumerate()
                .map(|(i, x)| resolve_in(x, lookup, stack, &format!("{path}.and[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(xs) => Expr::Or(
            xs.iter()
                .enumerate()
                .map(|(i, x)| resolve_in(x, lookup, stack, &format!("{path}.or[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(x) => Expr::Not(Box::new(resolve_in(x, lookup, stack, &format!("{path}.not"))?)),
        Expr::Segment(id) => {
            let p = format!("{path}.segment");
            if stack.contains(id) {
                return Err(err(&p, "cycle", "a segment cannot include itself"));
            }
            if stack.len() >= MAX_DEPTH {
                return Err(err(&p, "too_deep", format!("segments may nest at most {MAX_DEPTH} levels")));
            }
            let inner = lookup(*id).ok_or_else(|| err(&p, "unknown_segment", "no such segment"))?;
            stack.push(*id);
            let r = resolve_in(&inner, lookup, stack, &p);
            stack.pop();
            r?
        }
        other => other.clone(),
    })
}

/// Segment ids an expression refers to directly.
pub fn references(e: &Expr, out: &mut Vec<SegmentId>) {
    match e {
        Expr::And(xs) | Expr::Or(xs) => xs.iter().for_each(|x| references(x, out)),
        Expr::Not(x) => references(x, out),
        Expr::Segment(id) => out.push(*id),
        _ => {}
    }
}

/// Tag ids an expression tests (after segment references are resolved, all of them).
pub fn tags(e: &Expr, out: &mut Vec<TagId>) {
    match e {
        Expr::And(xs) | Expr::Or(xs) => xs.iter().for_each(|x| tags(x, out)),
        Expr::Not(x) => tags(x, out),
        Expr::Tag(id) => out.push(*id),
        _ => {}
    }
}

/// Predicates (leaves) in an expression, for display and for benchmark descriptions.
pub fn leaf_count(e: &Expr) -> usize {
    match e {
        Expr::And(xs) | Expr::Or(xs) => xs.iter().map(leaf_count).sum(),
        Expr::Not(x) => leaf_count(x),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn tag(n: u128) -> TagId {
        TagId(Uuid::from_u128(n))
    }

    #[test]
    fn json_shape_is_externally_tagged() {
        let e = Expr::And(vec![
            Expr::Tag(tag(1)),
            Expr::Not(Box::new(Expr::Lifecycle("lost".into()))),
            Expr::Range { metric: Metric::SpendFen, min: Some(10_000), max: None },
            Expr::RfmSegment(rfm::Segment::ImportantValue),
            Expr::All,
        ]);
        let j = serde_json::to_value(&e).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"and": [
                {"tag": "00000000-0000-0000-0000-000000000001"},
                {"not": {"lifecycle": "lost"}},
                {"range": {"metric": "spend_fen", "min": 10000}},
                {"rfm_segment": "important_value"},
                "all"
            ]})
        );
        assert_eq!(serde_json::from_value::<Expr>(j).unwrap(), e);
    }

    #[test]
    fn missing_facts_make_predicates_false_and_negations_true() {
        let f = Facts { lifecycle: "new".into(), ..Facts::default() };
        let days = Expr::Range { metric: Metric::DaysSincePurchase, min: None, max: Some(30) };
        assert!(!matches(&days, &f, 100));
        assert!(matches(&Expr::Not(Box::new(days)), &f, 100));
        assert!(!matches(&Expr::RfmSegment(rfm::Segment::GeneralRetain), &f, 100));
        assert!(!matches(&Expr::Staff(StaffId(Uuid::nil())), &f, 100));
    }

    #[test]
    fn ranges_are_inclusive_and_days_count_from_today() {
        let f = Facts { orders: 3, last_purchase_day: Some(90), ..Facts::default() };
        let r = |metric, min, max| Expr::Range { metric, min, max };
        assert!(matches(&r(Metric::Orders, Some(3), Some(3)), &f, 100));
        assert!(!matches(&r(Metric::Orders, Some(4), None), &f, 100));
        assert!(matches(&r(Metric::DaysSincePurchase, Some(10), Some(10)), &f, 100));
        assert!(!matches(&r(Metric::DaysSincePurchase, Some(11), None), &f, 100));
    }

    #[test]
    fn validation_names_the_offending_node() {
        let bad = Expr::And(vec![Expr::All, Expr::Range { metric: Metric::Orders, min: Some(5), max: Some(2) }]);
        assert_eq!(validate(&bad).unwrap_err().path, "expr.and[1].range");
        assert_eq!(validate(&Expr::Or(vec![])).unwrap_err().code, "empty");
        let score = Expr::RfmScore { dim: RfmDim::R, min: 0, max: 5 };
        assert_eq!(validate(&score).unwrap_err().code, "out_of_range");
        let mut deep = Expr::All;
        for _ in 0..MAX_DEPTH {
            deep = Expr::Not(Box::new(deep));
        }
        assert_eq!(validate(&deep).unwrap_err().code, "too_deep");
        let wide = Expr::Or((0..MAX_NODES).map(|_| Expr::All).collect());
        assert_eq!(validate(&wide).unwrap_err().code, "too_large");
        assert!(validate(&Expr::Field { key: "city".into(), value: String::new() }).is_ok());
    }

    #[test]
    fn resolution_inlines_references_and_refuses_cycles() {
        let a = SegmentId(Uuid::from_u128(10));
        let b = SegmentId(Uuid::from_u128(11));
        let defs = |id: SegmentId| -> Option<Expr> {
            if id == a {
                Some(Expr::Tag(tag(1)))
            } else if id == b {
                Some(Expr::Or(vec![Expr::Segment(a), Expr::Segment(b)]))
            } else {
                None
            }
        };
        let e = Expr::Not(Box::new(Expr::Segment(a)));
        assert_eq!(resolve(&e, &defs).unwrap(), Expr::Not(Box::new(Expr::Tag(tag(1)))));
        let cyc = resolve(&Expr::Segment(b), &defs).unwrap_err();
        assert_eq!(cyc.code, "cycle");
        assert_eq!(cyc.path, "expr.segment.or[1].segment");
        let unknown = resolve(&Expr::Segment(SegmentId(Uuid::from_u128(99))), &defs).unwrap_err();
        assert_eq!(unknown.code, "unknown_segment");
    }
}
