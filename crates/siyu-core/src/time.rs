//! Instants and the injectable clock.
//!
//! Instants are stored as UTC microseconds since the Unix epoch in a plain 64-bit integer on
//! both backends: exact, comparable in SQL without dialect differences, and cheap to index.
//! Business days use the tenant's zone (default Asia/Shanghai, a fixed +08:00 offset).

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// UTC microseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn from_unix_secs(s: i64) -> Self {
        Self(s * 1_000_000)
    }
    pub fn unix_secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }
    pub fn plus(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d.as_micros().min(i64::MAX as u128) as i64))
    }
    pub fn minus(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(d.as_micros().min(i64::MAX as u128) as i64))
    }
    /// RFC 3339 in the given offset (hours east of UTC), e.g. `2026-11-22T18:00:00+08:00`.
    pub fn to_rfc3339(self, offset_hours: i8) -> String {
        let off = ::time::UtcOffset::from_hms(offset_hours, 0, 0).unwrap_or(::time::UtcOffset::UTC);
        ::time::OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1000)
            .map(|t| t.to_offset(off))
            .ok()
            .and_then(|t| t.format(&::time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_default()
    }
    /// Parses RFC 3339 (any offset).
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let t = ::time::OffsetDateTime::parse(s.trim(), &::time::format_description::well_known::Rfc3339).ok()?;
        Some(Timestamp((t.unix_timestamp_nanos() / 1000) as i64))
    }

    /// The local day number (days since 1970-01-01) at the given offset.
    pub fn local_day(self, offset_hours: i8) -> i64 {
        (self.0 + offset_hours as i64 * 3_600_000_000).div_euclid(86_400_000_000)
    }
    /// `YYYY-MM-DD HH:MM:SS` in the given offset, for people.
    pub fn display_local(self, offset_hours: i8) -> String {
        let off = ::time::UtcOffset::from_hms(offset_hours, 0, 0).unwrap_or(::time::UtcOffset::UTC);
        let fmt = ::time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        ::time::OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1000)
            .map(|t| t.to_offset(off))
            .ok()
            .and_then(|t| t.format(&fmt).ok())
            .unwrap_or_default()
    }
}

/// `YYYY-MM-DD` → day number (days since 1970-01-01).
pub fn parse_day(s: &str) -> Option<i64> {
    let d = ::time::Date::parse(s.trim(), ::time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    Some((d - ::time::Date::from_calendar_date(1970, ::time::Month::January, 1).ok()?).whole_days())
}

/// Day number → `YYYY-MM-DD`.
pub fn format_day(day: i64) -> String {
    let epoch = ::time::Date::from_calendar_date(1970, ::time::Month::January, 1).expect("valid date");
    epoch
        .checked_add(::time::Duration::days(day))
        .and_then(|d| d.format(::time::macros::format_description!("[year]-[month]-[day]")).ok())
        .unwrap_or_default()
}

/// Time zones a tenant may choose, with their UTC offsets in hours. All of them are free of
/// daylight saving, so a fixed offset is exact; supporting a zone with DST means adding a
/// tz database first.
pub const SUPPORTED_ZONES: &[(&str, i8)] = &[
    ("Asia/Shanghai", 8),
    ("Asia/Hong_Kong", 8),
    ("Asia/Macau", 8),
    ("Asia/Taipei", 8),
    ("Asia/Singapore", 8),
    ("Asia/Kuala_Lumpur", 8),
    ("Asia/Tokyo", 9),
    ("Asia/Seoul", 9),
    ("UTC", 0),
];

/// The UTC offset of a supported zone.
pub fn zone_offset_hours(zone: &str) -> Option<i8> {
    SUPPORTED_ZONES.iter().find(|(z, _)| *z == zone).map(|(_, o)| *o)
}

/// The only source of "now" in siyu. Production uses [`SystemClock`]; tests use [`ManualClock`].
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp(d.as_micros() as i64)
    }
}

/// A clock that moves only when told to.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn at(t: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(t.0)))
    }
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_micros() as i64, Ordering::SeqCst);
    }
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_dates_round_trip() {
        assert_eq!(parse_day("1970-01-02"), Some(1));
        assert_eq!(format_day(parse_day("2011-12-10").unwrap()), "2011-12-10");
        assert_eq!(parse_day("2011-13-01"), None);
        // 2026-11-22T00:30 at +08:00 is still 2026-11-21 in UTC but the 22nd locally.
        let t = Timestamp::parse_rfc3339("2026-11-22T00:30:00+08:00").unwrap();
        assert_eq!(format_day(t.local_day(8)), "2026-11-22");
        assert_eq!(format_day(t.local_day(0)), "2026-11-21");
    }

    #[test]
    fn formats_in_shanghai_time() {
        let t = Timestamp::from_unix_secs(1_700_000_000);
        assert_eq!(t.to_rfc3339(8), "2023-11-15T06:13:20+08:00");
        assert_eq!(t.display_local(8), "2023-11-15 06:13:20");
        assert_eq!(t.unix_secs(), 1_700_000_000);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::at(Timestamp(10));
        assert_eq!(c.now(), Timestamp(10));
        c.advance(Duration::from_micros(5));
        assert_eq!(c.now(), Timestamp(15));
    }
}
