//! Campaign tags (活动标签): a tag that marks the customers who took part in one campaign — an
//! offline event, a livestream, a holiday sale. It is applied only while the campaign runs
//! (its first to last local day, inclusive), by hand, in bulk, by import or by the capability
//! that runs the campaign; and, when the tenant chooses, it lets go of everyone a number of
//! days after the campaign ends, so stale campaign tags never pile up on profiles.
//!
//! Days are the tenant's local day numbers (days since 1970-01-01), as everywhere else.

use serde::{Deserialize, Serialize};

use crate::time::{format_day, parse_day};
use crate::validate::{Violation, Violations};

/// The longest campaign, in days.
pub const MAX_DAYS: i64 = 366;
/// The longest a tag may be kept after its campaign, in days.
pub const KEEP_MAX: i64 = 3_650;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub first_day: i64,
    pub last_day: i64,
    /// Holders lose the tag this many days after the last day; `None` keeps it.
    pub keep_days: Option<i64>,
}

/// Where a campaign stands on a given day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Upcoming,
    Running,
    /// Over; holders keep the tag (until it expires, if it does).
    Ended,
    /// Past its keep period: nobody holds the tag any more.
    Expired,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Upcoming => "upcoming",
            Phase::Running => "running",
            Phase::Ended => "ended",
            Phase::Expired => "expired",
        }
    }
}

impl Campaign {
    /// Checks a campaign as people enter it: `YYYY-MM-DD` days, the last not before the first
    /// nor more than [`MAX_DAYS`] after it, and a keep period of 0..=[`KEEP_MAX`] days.
    pub fn parse(first: &str, last: &str, keep_days: Option<i64>) -> Result<Campaign, Vec<Violation>> {
        let mut v = Violations::new();
        let first_day = parse_day(first);
        if first_day.is_none() {
            v.push("first_day", "invalid_format", "first_day must be a date (YYYY-MM-DD)");
        }
        let last_day = parse_day(last);
        if last_day.is_none() {
            v.push("last_day", "invalid_format", "last_day must be a date (YYYY-MM-DD)");
        }
        if let (Some(f), Some(l)) = (first_day, last_day) {
            if l < f {
                v.push("last_day", "out_of_range", "the campaign cannot end before it starts");
            } else if l - f + 1 > MAX_DAYS {
                v.push("last_day", "out_of_range", format!("a campaign lasts at most {MAX_DAYS} days"));
            }
        }
        if keep_days.is_some_and(|k| !(0..=KEEP_MAX).contains(&k)) {
            v.push("keep_days", "out_of_range", format!("keep_days must be between 0 and {KEEP_MAX}"));
        }
        v.into_result()?;
        Ok(Campaign { first_day: first_day.unwrap_or(0), last_day: last_day.unwrap_or(0), keep_days })
    }

    /// The first day nobody holds the tag any more, if it expires.
    pub fn expires_on(&self) -> Option<i64> {
        self.keep_days.map(|k| self.last_day + 1 + k)
    }

    pub fn phase(&self, today: i64) -> Phase {
        if today < self.first_day {
            Phase::Upcoming
        } else if today <= self.last_day {
            Phase::Running
        } else if self.expires_on().is_some_and(|e| today >= e) {
            Phase::Expired
        } else {
            Phase::Ended
        }
    }

    /// May the tag be given to someone today? Only while the campaign runs; the refusal says
    /// when it does.
    pub fn accepts(&self, today: i64) -> Result<(), String> {
        match self.phase(today) {
            Phase::Running => Ok(()),
            Phase::Upcoming => Err(format!("the campaign starts on {}", format_day(self.first_day))),
            Phase::Ended | Phase::Expired => Err(format!("the campaign ended on {}", format_day(self.last_day))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(s: &str) -> i64 {
        parse_day(s).unwrap()
    }

    #[test]
    fn parse_names_each_bad_field() {
        let c = Campaign::parse("2026-11-01", "2026-11-11", Some(30)).unwrap();
        assert_eq!((c.first_day, c.last_day, c.keep_days), (day("2026-11-01"), day("2026-11-11"), Some(30)));
        let field = |f: &str, l: &str, k| Campaign::parse(f, l, k).unwrap_err()[0].field.clone();
        assert_eq!(field("11/01", "2026-11-11", None), "first_day");
        assert_eq!(field("2026-11-01", "", None), "last_day");
        assert_eq!(field("2026-11-11", "2026-11-01", None), "last_day");
        assert_eq!(field("2026-01-01", "2027-01-02", None), "last_day");
        assert_eq!(field("2026-11-01", "2026-11-01", Some(-1)), "keep_days");
        assert!(Campaign::parse("2026-11-01", "2026-11-01", Some(0)).is_ok(), "a one-day campaign");
    }

    #[test]
    fn phases_at_their_boundaries() {
        let c = Campaign::parse("2026-11-01", "2026-11-11", Some(7)).unwrap();
        assert_eq!(c.phase(day("2026-10-31")), Phase::Upcoming);
        assert_eq!(c.phase(day("2026-11-01")), Phase::Running);
        assert_eq!(c.phase(day("2026-11-11")), Phase::Running);
        assert_eq!(c.phase(day("2026-11-12")), Phase::Ended);
        assert_eq!(c.phase(day("2026-11-18")), Phase::Ended);
        assert_eq!(c.phase(day("2026-11-19")), Phase::Expired);
        assert_eq!(c.expires_on(), Some(day("2026-11-19")));
        assert!(c.accepts(day("2026-10-31")).unwrap_err().contains("2026-11-01"));
        assert!(c.accepts(day("2026-11-12")).unwrap_err().contains("2026-11-11"));
        let kept = Campaign { keep_days: None, ..c };
        assert_eq!(kept.phase(day("2030-01-01")), Phase::Ended, "kept forever");
        let zero = Campaign { keep_days: Some(0), ..c };
        assert_eq!(zero.phase(day("2026-11-12")), Phase::Expired, "let go the day after");
    }

    proptest! {
        #[test]
        fn accepts_exactly_while_running(first in 0i64..30_000, len in 1i64..=MAX_DAYS, keep in proptest::option::of(0i64..400), today in 0i64..31_000) {
            let c = Campaign { first_day: first, last_day: first + len - 1, keep_days: keep };
            prop_assert_eq!(c.accepts(today).is_ok(), first <= today && today < first + len);
            if c.phase(today) == Phase::Expired {
                prop_assert!(today > c.last_day);
            }
        }
    }
}
