//! Channel live codes (渠道活码; scrm-rules A-1..A-18), served in exact mode: siyu, not
//! WeCom, decides which staff member each scan is given, so daily caps hold exactly. Every
//! member of a code gets a single-member WeCom contact way carrying the code's `state`; the
//! landing page reserves one unit of a member's capacity and shows that member's QR.
//!
//! Here: what a code may be, its `state`, who is on duty at an instant (R-4: the
//! tenant's wall clock), and the order in which members are tried for one scan.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;
use crate::validate::{Violation, Violations};

/// WeCom's limit on a contact way's `state`.
pub const MAX_STATE_LEN: usize = 30;
pub const DEFAULT_DAILY_CAP: i64 = 100;
pub const MAX_DAILY_CAP: i64 = 10_000;
/// Members in one pool; WeCom allows 100 users on a contact way.
pub const MAX_POOL: usize = 100;
/// Welcome text, in bytes.
pub const MAX_WELCOME_BYTES: usize = 4000;
pub const MAX_TAGS: usize = 20;
/// A reservation made on render lapses if no add arrives within this.
pub const RESERVATION_SECS: i64 = 10 * 60;

/// The `state` of the code with this serial: `lc:<base36>`, unique and never reused
/// because serials are never reused.
pub fn state_for(serial: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = serial;
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    format!("lc:{}", String::from_utf8(out).expect("ascii digits"))
}

/// A weekly time window and the primary members on duty in it (empty: all of them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// 1 = Monday … 7 = Sunday.
    pub weekdays: Vec<u8>,
    /// Minutes after local midnight; `from` is in the window, `to` is not.
    pub from_minute: u16,
    pub to_minute: u16,
    #[serde(default)]
    pub staff: Vec<String>,
}

/// What the API and console send for a slot: times as `HH:MM`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SlotDraft {
    #[serde(default)]
    pub weekdays: Vec<u8>,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub staff: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveCodeInput {
    pub name: String,
    /// Primary pool (WeCom userids).
    pub staff: Vec<String>,
    /// Tried when every primary member on duty is full (A-2 step 2).
    pub backup: Vec<String>,
    /// Takes every scan when both pools are full, raising the overflow flag (A-2 step 3).
    pub fallback: String,
    /// Customers a member may be given per day by this code.
    pub daily_cap: i64,
    /// Customers the whole code may take per day; beyond it the code is exhausted for the day.
    pub code_cap: Option<i64>,
    /// Empty: the primary pool is always on duty.
    pub schedule: Vec<Slot>,
    /// Corp tag ids applied to the relationship on every add.
    pub tag_ids: Vec<String>,
    /// Text sent with `send_welcome_msg`; `{customer_name}` and `{staff_name}` expand.
    pub welcome: Option<String>,
    /// Customers are added without the member accepting (the contact way's `skip_verify`).
    pub skip_verify: bool,
    pub expires_at: Option<Timestamp>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct LiveCodeDraft {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub staff: Vec<String>,
    #[serde(default)]
    pub backup: Vec<String>,
    pub fallback: Option<String>,
    pub daily_cap: Option<i64>,
    pub code_cap: Option<i64>,
    #[serde(default)]
    pub schedule: Vec<SlotDraft>,
    #[serde(default)]
    pub tag_ids: Vec<String>,
    pub welcome: Option<String>,
    pub skip_verify: Option<bool>,
    pub expires_at: Option<Timestamp>,
}

/// `HH:MM` (00:00–24:00) as minutes after midnight.
pub fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let total = h.checked_mul(60)?.checked_add(m)?;
    (m < 60 && total <= 24 * 60).then_some(total)
}

fn userids(v: &mut Violations, field: &str, list: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for u in list.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
        if u.len() > 64 {
            v.push(field, "too_long", "a WeCom userid is at most 64 characters");
        } else if seen.insert(u.to_string()) {
            out.push(u.to_string());
        }
    }
    if out.len() > MAX_POOL {
        v.push(field, "too_many", format!("a pool holds at most {MAX_POOL} members"));
    }
    out
}

impl LiveCodeDraft {
    pub fn validate(&self, now: Timestamp) -> Result<LiveCodeInput, Vec<Violation>> {
        let mut v = Violations::new();
        let name = v.text("name", &self.name, 32);
        let staff = userids(&mut v, "staff", &self.staff);
        if staff.is_empty() {
            v.push("staff", "required", "choose at least one staff member");
        }
        let backup = userids(&mut v, "backup", &self.backup);
        if backup.iter().any(|b| staff.contains(b)) {
            v.push("backup", "overlaps", "a member is either in the primary pool or in the backup pool");
        }
        let fallback = self.fallback.as_deref().map(str::trim).unwrap_or_default().to_string();
        if fallback.is_empty() {
            v.push("fallback", "required", "choose the member who takes scans when everyone is full");
        }
        let daily_cap = self.daily_cap.unwrap_or(DEFAULT_DAILY_CAP);
        if !(1..=MAX_DAILY_CAP).contains(&daily_cap) {
            v.push("daily_cap", "out_of_range", format!("a member's daily cap is 1 to {MAX_DAILY_CAP}"));
        }
        if let Some(c) = self.code_cap {
            if !(1..=1_000_000).contains(&c) {
                v.push("code_cap", "out_of_range", "the code's daily cap is 1 to 1,000,000");
            }
        }
        let mut schedule = Vec::new();
        for (i, s) in self.schedule.iter().enumerate() {
            let field = format!("schedule.{i}");
            let mut days: Vec<u8> = s.weekdays.clone();
            days.sort_unstable();
            days.dedup();
            if days.is_empty() || days.iter().any(|d| !(1..=7).contains(d)) {
                v.push(&format!("{field}.weekdays"), "out_of_range", "choose weekdays from 1 (Monday) to 7 (Sunday)");
            }
            let (from, to) = (parse_hhmm(&s.from), parse_hhmm(&s.to));
            let (from, to) = match (from, to) {
                (Some(f), Some(t)) if f < t => (f, t),
                (Some(_), Some(_)) => {
                    v.push(&format!("{field}.to"), "out_of_range", "a window ends after it starts, within one day");
                    (0, 0)
                }
                _ => {
                    v.push(&format!("{field}.from"), "invalid_format", "give times as HH:MM");
                    (0, 0)
                }
            };
            let on = userids(&mut v, &format!("{field}.staff"), &s.staff);
            if on.iter().any(|u| !staff.contains(u)) {
                v.push(&format!("{field}.staff"), "not_in_pool", "a window's members come from the primary pool");
            }
            schedule.push(Slot { weekdays: days, from_minute: from, to_minute: to, staff: on });
        }
        let mut tag_ids: Vec<String> =
            self.tag_ids.iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
        tag_ids.dedup();
        if tag_ids.len() > MAX_TAGS {
            v.push("tag_ids", "too_many", format!("at most {MAX_TAGS} tags"));
        }
        let welcome = self.welcome.as_deref().map(str::trim).filter(|w| !w.is_empty()).map(str::to_string);
        if welcome.as_ref().is_some_and(|w| w.len() > MAX_WELCOME_BYTES) {
            v.push("welcome", "too_long", format!("a welcome is at most {MAX_WELCOME_BYTES} bytes"));
        }
        if self.expires_at.is_some_and(|e| e <= now) {
            v.push("expires_at", "out_of_range", "the expiry must be in the future");
        }
        v.into_result()?;
        Ok(LiveCodeInput {
            name,
            staff,
            backup,
            fallback,
            daily_cap,
            code_cap: self.code_cap,
            schedule,
            tag_ids,
            welcome,
            skip_verify: self.skip_verify.unwrap_or(true),
            expires_at: self.expires_at,
        })
    }
}

/// The local weekday (1 = Monday … 7 = Sunday) and minute of the day at `at`.
pub fn local_weekday_minute(at: Timestamp, offset_hours: i8) -> (u8, u16) {
    const DAY: i64 = 86_400_000_000;
    let local = at.0 + i64::from(offset_hours) * 3_600_000_000;
    let day = local.div_euclid(DAY);
    // 1970-01-01 was a Thursday.
    let weekday = (day + 3).rem_euclid(7) as u8 + 1;
    let minute = (local.rem_euclid(DAY) / 60_000_000) as u16;
    (weekday, minute)
}

impl LiveCodeInput {
    /// Every member who may ever be given a scan: primary, backup and the fallback, once each.
    pub fn members(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for u in self.staff.iter().chain(&self.backup).chain([&self.fallback]) {
            if !out.contains(u) {
                out.push(u.clone());
            }
        }
        out
    }

    /// Primary members on duty at `(weekday, minute)`: all of them without a schedule; with
    /// one, those of every window that covers the instant (none between windows).
    pub fn on_duty(&self, weekday: u8, minute: u16) -> Vec<&str> {
        if self.schedule.is_empty() {
            return self.staff.iter().map(String::as_str).collect();
        }
        let mut out: Vec<&str> = Vec::new();
        for s in &self.schedule {
            if s.weekdays.contains(&weekday) && s.from_minute <= minute && minute < s.to_minute {
                let on = if s.staff.is_empty() { &self.staff } else { &s.staff };
                for u in on {
                    if !out.contains(&u.as_str()) {
                        out.push(u);
                    }
                }
            }
        }
        out
    }
}

/// Which pool a member was given a scan from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Primary,
    Backup,
    /// Everyone else was full: the code overflows (A-2 step 3).
    Fallback,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Primary => "primary",
            Tier::Backup => "backup",
            Tier::Fallback => "fallback",
        }
    }
}

/// The order in which members are tried for one scan: primary members on duty who
/// are active and under the cap, least loaded first; then the backup pool the same way; then
/// the fallback, who takes the scan whatever their count. `used` is each member's adds plus
/// live reservations today; `rotation` breaks ties so concurrent scans spread out. The store
/// takes the first member whose conditional reservation succeeds, so a count read here that
/// is already stale can cost a retry, never a cap.
pub fn exact_order(
    on_duty: &[&str],
    backup: &[String],
    fallback: &str,
    active: &dyn Fn(&str) -> bool,
    used: &HashMap<String, i64>,
    cap: i64,
    rotation: u64,
) -> Vec<(String, Tier)> {
    let tier = |pool: Vec<&str>, t: Tier| {
        let mut open: Vec<(i64, usize, &str)> = pool
            .iter()
            .enumerate()
            .filter(|(_, u)| active(u))
            .map(|(i, u)| (used.get(*u).copied().unwrap_or(0), i, *u))
            .filter(|(n, _, _)| *n < cap)
            .collect();
        let len = open.len().max(1);
        open.sort_by_key(|(n, i, _)| (*n, (*i + len - (rotation as usize % len)) % len));
        open.into_iter().map(|(_, _, u)| (u.to_string(), t)).collect::<Vec<_>>()
    };
    let mut out = tier(on_duty.to_vec(), Tier::Primary);
    out.extend(tier(backup.iter().map(String::as_str).collect(), Tier::Backup));
    out.push((fallback.to_string(), Tier::Fallback));
    out
}

/// A-11 variables in a welcome text.
pub fn render_welcome(text: &str, customer_name: Option<&str>, staff_name: &str) -> String {
    let out = text.replace("{staff_name}", staff_name);
    match customer_name {
        Some(n) => out.replace("{customer_name}", n),
        // The name could not be read in time: the variant without it.
        None => out.replace("{customer_name}", ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> LiveCodeDraft {
        LiveCodeDraft {
            name: "门店海报".into(),
            staff: vec!["zhangsan".into(), "lisi".into()],
            backup: vec!["wangwu".into()],
            fallback: Some("boss".into()),
            daily_cap: Some(2),
            ..Default::default()
        }
    }

    #[test]
    fn states_are_short_unique_and_base36() {
        assert_eq!(state_for(0), "lc:0");
        assert_eq!(state_for(35), "lc:z");
        assert_eq!(state_for(36), "lc:10");
        assert!(state_for(u64::MAX).len() <= MAX_STATE_LEN);
        let all: HashSet<String> = (0..10_000).map(state_for).collect();
        assert_eq!(all.len(), 10_000);
    }

    #[test]
    fn a_good_draft_validates_with_defaults() {
        let c = draft().validate(Timestamp(0)).unwrap();
        assert_eq!(c.daily_cap, 2);
        assert!(c.skip_verify);
        assert_eq!(c.members(), vec!["zhangsan", "lisi", "wangwu", "boss"]);
    }

    #[test]
    fn bad_drafts_name_each_field() {
        let bad = LiveCodeDraft {
            name: String::new(),
            staff: vec![],
            backup: vec!["x".into()],
            fallback: None,
            daily_cap: Some(0),
            code_cap: Some(0),
            schedule: vec![
                SlotDraft { weekdays: vec![8], from: "9:00".into(), to: "8:00".into(), staff: vec![] },
                SlotDraft { weekdays: vec![1], from: "nine".into(), to: "18:00".into(), staff: vec!["ghost".into()] },
            ],
            welcome: Some("好".repeat(1400)),
            expires_at: Some(Timestamp(5)),
            ..Default::default()
        };
        let errs = bad.validate(Timestamp(10)).unwrap_err();
        let fields: HashSet<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "name",
            "staff",
            "fallback",
            "daily_cap",
            "code_cap",
            "schedule.0.weekdays",
            "schedule.0.to",
            "schedule.1.from",
            "schedule.1.staff",
            "welcome",
            "expires_at",
        ] {
            assert!(fields.contains(f), "{f} missing from {fields:?}");
        }
        let overlap = LiveCodeDraft { backup: vec!["lisi".into()], ..draft() };
        assert_eq!(overlap.validate(Timestamp(0)).unwrap_err()[0].field, "backup");
    }

    #[test]
    fn hhmm_parses_the_whole_day_and_nothing_else() {
        assert_eq!(parse_hhmm("00:00"), Some(0));
        assert_eq!(parse_hhmm("09:30"), Some(570));
        assert_eq!(parse_hhmm("24:00"), Some(1440));
        for bad in ["24:01", "9", "09:60", "-1:00", "ab:cd", ""] {
            assert_eq!(parse_hhmm(bad), None, "{bad}");
        }
    }

    #[test]
    fn wall_clock_is_the_tenants() {
        // 2026-11-23 (a Monday) 00:30 in Shanghai is Sunday 16:30 UTC.
        let t = Timestamp::parse_rfc3339("2026-11-22T16:30:00Z").unwrap();
        assert_eq!(local_weekday_minute(t, 8), (1, 30));
        assert_eq!(local_weekday_minute(t, 0), (7, 16 * 60 + 30));
        // Every minute of a week maps to one weekday and minute, in order.
        let start = Timestamp::parse_rfc3339("2026-11-22T16:00:00Z").unwrap();
        for m in 0..7 * 1440 {
            let (d, min) = local_weekday_minute(Timestamp(start.0 + m * 60_000_000), 8);
            assert_eq!((d as i64, min as i64), (m / 1440 + 1, m % 1440));
        }
    }

    #[test]
    fn the_schedule_decides_who_is_on_duty() {
        let mut d = draft();
        d.schedule = vec![
            SlotDraft { weekdays: vec![1, 2, 3, 4, 5], from: "09:00".into(), to: "18:00".into(), staff: vec![] },
            SlotDraft { weekdays: vec![6, 7], from: "10:00".into(), to: "16:00".into(), staff: vec!["lisi".into()] },
        ];
        let c = d.validate(Timestamp(0)).unwrap();
        assert_eq!(c.on_duty(1, 9 * 60), vec!["zhangsan", "lisi"]);
        assert!(c.on_duty(1, 18 * 60).is_empty(), "the end is outside the window");
        assert_eq!(c.on_duty(6, 10 * 60), vec!["lisi"]);
        assert!(c.on_duty(6, 9 * 60).is_empty());
        let always = draft().validate(Timestamp(0)).unwrap();
        assert_eq!(always.on_duty(3, 3), vec!["zhangsan", "lisi"]);
    }

    #[test]
    fn scans_go_to_the_least_loaded_then_backups_then_the_fallback() {
        let everyone = |_: &str| true;
        let used: HashMap<String, i64> = [("zhangsan".to_string(), 1), ("lisi".to_string(), 0)].into();
        let order = exact_order(&["zhangsan", "lisi"], &["wangwu".into()], "boss", &everyone, &used, 2, 0);
        let names: Vec<(&str, Tier)> = order.iter().map(|(u, t)| (u.as_str(), *t)).collect();
        assert_eq!(
            names,
            vec![
                ("lisi", Tier::Primary),
                ("zhangsan", Tier::Primary),
                ("wangwu", Tier::Backup),
                ("boss", Tier::Fallback)
            ]
        );
        // Full members and inactive ones are skipped; the fallback is always last.
        let full: HashMap<String, i64> = [("zhangsan".to_string(), 2), ("lisi".to_string(), 5)].into();
        let gone = |u: &str| u != "wangwu";
        let order = exact_order(&["zhangsan", "lisi"], &["wangwu".into()], "boss", &gone, &full, 2, 7);
        assert_eq!(order, vec![("boss".to_string(), Tier::Fallback)]);
        // Ties rotate, so concurrent scans start at different members.
        let even = HashMap::new();
        let firsts: HashSet<String> =
            (0..4).map(|r| exact_order(&["a", "b", "c"], &[], "f", &everyone, &even, 9, r)[0].0.clone()).collect();
        assert_eq!(firsts.len(), 3);
    }

    #[test]
    fn welcome_variables_expand_or_drop_the_name() {
        assert_eq!(render_welcome("{customer_name}你好，我是{staff_name}", Some("小美"), "张三"), "小美你好，我是张三");
        assert_eq!(render_welcome("{customer_name}你好，我是{staff_name}", None, "张三"), "你好，我是张三");
    }
}
