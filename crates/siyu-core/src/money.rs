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
    fn checked_arithmetic_never_wraps() {
        assert_eq!(Fen(i64::MAX).checked_add(Fen(1)), None);
        assert_eq!(Fen(5).checked_sub(Fen(7)), Some(Fen(-2)));
    }
}
