//! Money is integer fen (分). Never a float, anywhere.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount of money in fen (1/100 yuan).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fen(pub i64);

impl Fen {
    pub const ZERO: Fen = Fen(0);

    pub fn checked_add(self, o: Fen) -> Option<Fen> {
        self.0.checked_add(o.0).map(Fen)
    }
    pub fn checked_sub(self, o: Fen) -> Option<Fen> {
        self.0.checked_sub(o.0).map(Fen)
    }

    /// Reads an amount typed in yuan (`12`, `12.3`, `12.30`, `¥1,299.00`) exactly, without a
    /// float in between; more than two decimals or anything else is `None`.
    pub fn parse_yuan(s: &str) -> Option<Fen> {
        let t: String = s.trim().trim_start_matches(['¥', '￥']).chars().filter(|c| *c != ',').collect();
        let (neg, t) = match t.strip_prefix('-') {
            Some(r) => (true, r.to_string()),
            None => (false, t),
        };
        let (int, frac) = t.split_once('.').unwrap_or((&t, ""));
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || int.len() > 15 {
            return None;
        }
        if frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) || (t.contains('.') && frac.is_empty()) {
            return None;
        }
        let cents = format!("{frac:0<2}").parse::<i64>().ok()?;
        let v = int.parse::<i64>().ok()?.checked_mul(100)?.checked_add(cents)?;
        Some(Fen(if neg { -v } else { v }))
    }

    /// The amount in yuan without the currency sign, as a form field shows it: `12.05`.
    pub fn yuan(self) -> String {
        let s = self.to_string();
        s.replacen('¥', "", 1)
    }
}

/// Renders as yuan with exactly two decimals, e.g. `¥12.05`, `-¥0.50`.
impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}¥{}.{:02}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_exact() {
        assert_eq!(Fen(1205).to_string(), "¥12.05");
        assert_eq!(Fen(-50).to_string(), "-¥0.50");
        assert_eq!(Fen(0).to_string(), "¥0.00");
        assert_eq!(Fen(i64::MIN).to_string(), "-¥92233720368547758.08");
    }

    #[test]
    fn yuan_is_read_exactly() {
        for (s, fen) in
            [("12", 1200), ("12.3", 1230), ("12.30", 1230), ("0.01", 1), ("¥1,299.00", 129900), ("-0.5", -50)]
        {
            assert_eq!(Fen::parse_yuan(s), Some(Fen(fen)), "{s}");
            assert_eq!(Fen::parse_yuan(&Fen(fen).yuan()), Some(Fen(fen)));
        }
        for s in ["", "1.234", "abc", "1.", ".5", "1e3", "12.3.4", "9999999999999999"] {
            assert_eq!(Fen::parse_yuan(s), None, "{s}");
        }
        assert_eq!(Fen(1205).yuan(), "12.05");
        assert_eq!(Fen(-50).yuan(), "-0.50");
    }

    #[test]
    fn checked_arithmetic_never_wraps() {
        assert_eq!(Fen(i64::MAX).checked_add(Fen(1)), None);
        assert_eq!(Fen(5).checked_sub(Fen(7)), Some(Fen(-2)));
    }
}
