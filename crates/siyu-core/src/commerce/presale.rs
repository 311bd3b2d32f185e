//! Presale with a deposit (预售 / 定金膨胀; commerce-rules PS-1, PS-2, STK-1, STK-2).
//!
//! A presale sells some SKUs of one product ahead of stock. The buyer pays a deposit inside
//! `[deposit_start, deposit_end)`, which reserves and then commits the stock; the deposit is
//! worth `deposit_value ≥ deposit` against the price (膨胀). The balance, `price −
//! deposit_value ≥ 1 fen` per unit, is payable only inside `[final_start, final_end)`. An order
//! whose balance is not paid by `final_end` closes and its stock returns; the deposit is kept
//! only when "定金不退" was shown before it was paid. A presale the merchant cancels refunds
//! everything. Presale lines take no member price, 满减 or coupons (STK-2: the balance may opt
//! in; siyu's presales do not).

use serde::{Deserialize, Serialize};

use super::pricing::MAX_UNIT_FEN;
use crate::time::Timestamp;
use crate::validate::{Violation, Violations};

/// A presale covers at most this many SKUs (one product's specifications).
pub const MAX_SKUS: usize = 200;

/// One SKU's terms in a presale, in fen per unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    /// The presale price of one unit.
    pub price_fen: i64,
    /// What the buyer pays up front for one unit.
    pub deposit_fen: i64,
    /// What that deposit is worth against the price (≥ the deposit: 定金膨胀).
    pub deposit_value_fen: i64,
}

impl Terms {
    /// The balance of one unit: `price − deposit_value` (≥ 1 fen once validated).
    pub fn balance_fen(&self) -> i64 {
        self.price_fen - self.deposit_value_fen
    }
    /// What one unit costs the buyer in all: deposit plus balance.
    pub fn total_fen(&self) -> i64 {
        self.deposit_fen + self.balance_fen()
    }
    /// The deposit's bonus per unit (膨胀): value beyond what was paid.
    pub fn bonus_fen(&self) -> i64 {
        self.deposit_value_fen - self.deposit_fen
    }
    fn check(&self) -> Option<&'static str> {
        let money = |x: i64| (1..=MAX_UNIT_FEN).contains(&x);
        if !money(self.price_fen) {
            Some("the presale price is 0.01 to 10,000,000 yuan")
        } else if !money(self.deposit_fen) {
            Some("the deposit is at least 0.01 yuan")
        } else if self.deposit_value_fen < self.deposit_fen {
            Some("the deposit is worth at least what is paid for it")
        } else if self.balance_fen() < 1 {
            Some("the deposit's value must leave a balance of at least 0.01 yuan")
        } else {
            None
        }
    }
}

/// Where a presale stands at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before `deposit_start`.
    Upcoming,
    /// Deposits are taken.
    Deposit,
    /// Deposits closed, the balance not yet payable.
    Waiting,
    /// The balance is payable.
    Balance,
    /// After `final_end`.
    Over,
}

/// A presale's windows, all half-open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Windows {
    pub deposit_start: Timestamp,
    pub deposit_end: Timestamp,
    pub final_start: Timestamp,
    pub final_end: Timestamp,
}

impl Windows {
    pub fn phase(&self, now: Timestamp) -> Phase {
        if now < self.deposit_start {
            Phase::Upcoming
        } else if now < self.deposit_end {
            Phase::Deposit
        } else if now < self.final_start {
            Phase::Waiting
        } else if now < self.final_end {
            Phase::Balance
        } else {
            Phase::Over
        }
    }
    /// The span during which the presale holds its SKUs (STK-1): from the first deposit to
    /// the last balance.
    pub fn span(&self) -> (Timestamp, Timestamp) {
        (self.deposit_start, self.final_end)
    }
}

/// What becomes of a paid deposit when its order closes without the balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DepositFate {
    Kept,
    Refunded,
}

/// PS-2: the deposit is kept only when the buyer let the balance lapse (or gave up) and
/// "定金不退" was shown before the deposit was paid; a merchant's cancellation refunds it.
pub fn deposit_fate(forfeit_shown: bool, merchant_cancelled: bool) -> DepositFate {
    if forfeit_shown && !merchant_cancelled {
        DepositFate::Kept
    } else {
        DepositFate::Refunded
    }
}

/// How a refund of `amount` fen of a presale order splits over its two payments: the balance
/// payment first (what it still holds), then the deposit. `None` when the two cannot cover it.
pub fn split_refund(amount: i64, balance_left: i64, deposit_left: i64) -> Option<(i64, i64)> {
    if amount < 0 || balance_left < 0 || deposit_left < 0 || amount > balance_left + deposit_left {
        return None;
    }
    let from_balance = amount.min(balance_left);
    Some((from_balance, amount - from_balance))
}

/// A checked presale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PresaleInput {
    pub name: String,
    pub windows: Windows,
    /// The earliest the goods ship (PS-2: never earlier than promised).
    pub ship_from: Timestamp,
    /// "定金不退" is shown to buyers before they pay the deposit.
    pub deposit_forfeit: bool,
    pub skus: Vec<PresaleSkuInput>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresaleSkuInput {
    pub sku_id: String,
    #[serde(flatten)]
    pub terms: Terms,
    /// How many units this presale may sell of the SKU.
    pub quota: i64,
}

/// What the API and console send.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PresaleDraft {
    pub name: String,
    pub deposit_start: Option<Timestamp>,
    pub deposit_end: Option<Timestamp>,
    pub final_start: Option<Timestamp>,
    pub final_end: Option<Timestamp>,
    pub ship_from: Option<Timestamp>,
    #[serde(default)]
    pub deposit_forfeit: bool,
    #[serde(default)]
    pub skus: Vec<PresaleSkuInput>,
}

/// The most units one presale line may promise.
pub const MAX_QUOTA: i64 = 1_000_000;

impl PresaleDraft {
    pub fn validate(&self) -> Result<PresaleInput, Vec<Violation>> {
        let mut v = Violations::new();
        let name = v.text("name", &self.name, 32);
        let at = |t: Option<Timestamp>| t.unwrap_or(Timestamp(0));
        let w = Windows {
            deposit_start: at(self.deposit_start),
            deposit_end: at(self.deposit_end),
            final_start: at(self.final_start),
            final_end: at(self.final_end),
        };
        let missing = [
            ("deposit_start", self.deposit_start),
            ("deposit_end", self.deposit_end),
            ("final_start", self.final_start),
            ("final_end", self.final_end),
        ]
        .into_iter()
        .find(|(_, t)| t.is_none());
        if let Some((field, _)) = missing {
            v.push(field, "required", "give the deposit and balance windows");
        } else if w.deposit_end <= w.deposit_start {
            v.push("deposit_end", "out_of_range", "deposits must close after they open");
        } else if w.final_start < w.deposit_end {
            v.push("final_start", "out_of_range", "the balance opens no earlier than deposits close");
        } else if w.final_end <= w.final_start {
            v.push("final_end", "out_of_range", "the balance window must close after it opens");
        }
        let ship_from = self.ship_from.unwrap_or(w.final_start);
        if ship_from < w.final_start {
            v.push("ship_from", "out_of_range", "goods ship no earlier than the balance opens");
        }
        if self.skus.is_empty() || self.skus.len() > MAX_SKUS {
            v.push("skus", "out_of_range", format!("a presale sells 1 to {MAX_SKUS} SKUs"));
        }
        for (i, s) in self.skus.iter().enumerate() {
            if let Some(why) = s.terms.check() {
                v.push(&format!("skus.{i}.price_fen"), "out_of_range", why);
            }
            if !(1..=MAX_QUOTA).contains(&s.quota) {
                v.push(&format!("skus.{i}.quota"), "out_of_range", format!("a quota is 1 to {MAX_QUOTA} units"));
            }
            if self.skus[..i].iter().any(|x| x.sku_id == s.sku_id) {
                v.push(&format!("skus.{i}.sku_id"), "duplicate", "each SKU appears once");
            }
        }
        v.into_result()?;
        Ok(PresaleInput { name, windows: w, ship_from, deposit_forfeit: self.deposit_forfeit, skus: self.skus.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000;

    fn draft() -> PresaleDraft {
        PresaleDraft {
            name: "双11 预售".into(),
            deposit_start: Some(Timestamp(0)),
            deposit_end: Some(Timestamp(10 * H)),
            final_start: Some(Timestamp(10 * H)),
            final_end: Some(Timestamp(20 * H)),
            ship_from: None,
            deposit_forfeit: true,
            skus: vec![PresaleSkuInput {
                sku_id: "a".into(),
                terms: Terms { price_fen: 10_000, deposit_fen: 1_000, deposit_value_fen: 3_000 },
                quota: 50,
            }],
        }
    }

    fn fields(d: &PresaleDraft) -> Vec<String> {
        d.validate().err().unwrap_or_default().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn terms_expand_the_deposit() {
        let t = Terms { price_fen: 10_000, deposit_fen: 1_000, deposit_value_fen: 3_000 };
        assert_eq!(t.balance_fen(), 7_000);
        assert_eq!(t.total_fen(), 8_000);
        assert_eq!(t.bonus_fen(), 2_000);
        assert_eq!(t.check(), None);
    }

    #[test]
    fn terms_keep_a_balance_of_one_fen_and_a_deposit_worth_what_it_costs() {
        let ok = Terms { price_fen: 100, deposit_fen: 10, deposit_value_fen: 99 };
        assert_eq!(ok.check(), None);
        assert_eq!(ok.balance_fen(), 1);
        assert!(Terms { deposit_value_fen: 100, ..ok }.check().is_some(), "balance 0");
        assert!(Terms { deposit_value_fen: 9, ..ok }.check().is_some(), "worth less than paid");
        assert!(Terms { deposit_fen: 0, deposit_value_fen: 0, ..ok }.check().is_some());
        assert!(Terms { price_fen: MAX_UNIT_FEN + 1, ..ok }.check().is_some());
        // Equal value is a plain deposit (no 膨胀).
        assert_eq!(Terms { deposit_value_fen: 10, ..ok }.check(), None);
    }

    #[test]
    fn phases_are_half_open() {
        let w = draft().validate().unwrap().windows;
        assert_eq!(w.phase(Timestamp(-1)), Phase::Upcoming);
        assert_eq!(w.phase(Timestamp(0)), Phase::Deposit);
        assert_eq!(w.phase(Timestamp(10 * H - 1)), Phase::Deposit);
        assert_eq!(w.phase(Timestamp(10 * H)), Phase::Balance, "an empty waiting window is skipped");
        assert_eq!(w.phase(Timestamp(20 * H - 1)), Phase::Balance);
        assert_eq!(w.phase(Timestamp(20 * H)), Phase::Over);
        let gap = Windows { final_start: Timestamp(12 * H), ..w };
        assert_eq!(gap.phase(Timestamp(11 * H)), Phase::Waiting);
    }

    #[test]
    fn drafts_are_checked_field_by_field() {
        assert!(draft().validate().is_ok());
        assert_eq!(draft().validate().unwrap().ship_from, Timestamp(10 * H), "ships from the balance by default");
        let mut d = draft();
        d.final_start = Some(Timestamp(9 * H));
        assert_eq!(fields(&d), ["final_start"]);
        let mut d = draft();
        d.deposit_end = Some(Timestamp(0));
        assert_eq!(fields(&d), ["deposit_end"]);
        let mut d = draft();
        d.final_end = None;
        assert_eq!(fields(&d), ["final_end"]);
        let mut d = draft();
        d.ship_from = Some(Timestamp(5 * H));
        assert_eq!(fields(&d), ["ship_from"]);
        let mut d = draft();
        d.skus[0].terms.deposit_value_fen = 10_000;
        d.skus[0].quota = 0;
        d.skus.push(d.skus[0].clone());
        assert_eq!(
            fields(&d),
            ["skus.0.price_fen", "skus.0.quota", "skus.1.price_fen", "skus.1.quota", "skus.1.sku_id"]
        );
        let mut d = draft();
        d.skus.clear();
        d.name = String::new();
        assert_eq!(fields(&d), ["name", "skus"]);
    }

    #[test]
    fn the_deposit_is_kept_only_when_forfeit_was_shown_and_the_buyer_lapsed() {
        assert_eq!(deposit_fate(true, false), DepositFate::Kept);
        assert_eq!(deposit_fate(false, false), DepositFate::Refunded);
        assert_eq!(deposit_fate(true, true), DepositFate::Refunded);
        assert_eq!(deposit_fate(false, true), DepositFate::Refunded);
    }

    #[test]
    fn refunds_take_the_balance_first_and_never_more_than_both() {
        assert_eq!(split_refund(7_000, 7_000, 1_000), Some((7_000, 0)));
        assert_eq!(split_refund(8_000, 7_000, 1_000), Some((7_000, 1_000)));
        assert_eq!(split_refund(500, 0, 1_000), Some((0, 500)));
        assert_eq!(split_refund(8_001, 7_000, 1_000), None);
        assert_eq!(split_refund(-1, 7_000, 1_000), None);
        for amount in 0..=80 {
            for b in 0..=50 {
                for d in 0..=30 {
                    if let Some((x, y)) = split_refund(amount, b, d) {
                        assert_eq!(x + y, amount);
                        assert!(x <= b && y <= d && x >= 0 && y >= 0);
                        assert!(y == 0 || x == b, "the deposit is touched only once the balance is spent");
                    } else {
                        assert!(amount > b + d);
                    }
                }
            }
        }
    }
}
