//! The order and stock-reservation state machines (commerce-rules §1.1, §1.2, PAY-3, PAY-5,
//! INV-6). Each is an enum with one exhaustive transition function; storage persists a
//! transition as `UPDATE … SET status = :to WHERE id = :id AND status = :from`, so of two
//! concurrent actors exactly one wins (ORD-1) and the other re-reads and asks again.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingPayment,
    /// A presale order whose deposit is paid, waiting for its balance (PS-1).
    AwaitingBalance,
    Paid,
    /// A group-buy order paid while its group is still filling (GB-10: it does not ship yet).
    AwaitingGroup,
    ToShip,
    Shipped,
    Received,
    Completed,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 9] = [
        OrderStatus::PendingPayment,
        OrderStatus::AwaitingBalance,
        OrderStatus::Paid,
        OrderStatus::AwaitingGroup,
        OrderStatus::ToShip,
        OrderStatus::Shipped,
        OrderStatus::Received,
        OrderStatus::Completed,
        OrderStatus::Cancelled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::AwaitingBalance => "awaiting_balance",
            OrderStatus::Paid => "paid",
            OrderStatus::AwaitingGroup => "awaiting_group",
            OrderStatus::ToShip => "to_ship",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Received => "received",
            OrderStatus::Completed => "completed",
            OrderStatus::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
    /// Money has been taken for it.
    pub fn is_paid(self) -> bool {
        !matches!(self, OrderStatus::PendingPayment | OrderStatus::Cancelled)
    }
}

/// What happens to an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderEvent {
    /// A verified payment for the order's amount (PAY-2 checked by the caller).
    PaymentSucceeded {
        group_buy: bool,
    },
    /// A verified payment of a presale order's deposit (PS-1).
    DepositPaid,
    /// The group this order joined filled (GB-5).
    GroupSucceeded,
    /// The buyer cancelled, or the unpaid order timed out (INV-5).
    Cancel,
    Ship,
    /// 确认收货, or automatically N days after shipment.
    Receive,
    /// The after-sale window closed.
    Complete,
}

/// The result of applying an event: the new status, or what the caller must do instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Move to this status (a conditional update from the current one).
    To(OrderStatus),
    /// Nothing changes and nothing is wrong: the event was already applied (PAY-4).
    Already,
    /// A payment for an order cancelled meanwhile (INV-6): refund it in full automatically
    /// (the default policy); the order stays cancelled and both movements are recorded.
    RefundLatePayment,
    /// A second, distinct payment for a paid order (PAY-5): refund it in full.
    RefundDoublePayment,
}

/// Why an event cannot apply to an order in this status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an order that is {from} cannot be {event}")]
pub struct TransitionError {
    pub from: &'static str,
    pub event: &'static str,
}

fn event_name(e: OrderEvent) -> &'static str {
    match e {
        OrderEvent::PaymentSucceeded { .. } => "paid",
        OrderEvent::DepositPaid => "paid a deposit",
        OrderEvent::GroupSucceeded => "released by its group",
        OrderEvent::Cancel => "cancelled",
        OrderEvent::Ship => "shipped",
        OrderEvent::Receive => "received",
        OrderEvent::Complete => "completed",
    }
}

/// The transition function. `same_transaction` says whether a payment event carries the
/// transaction already recorded for this order (a redelivery) rather than a new one.
pub fn apply(from: OrderStatus, event: OrderEvent, same_transaction: bool) -> Result<Outcome, TransitionError> {
    use OrderEvent as E;
    use OrderStatus as S;
    let out = match (from, event) {
        (S::PendingPayment, E::PaymentSucceeded { group_buy: true }) => Outcome::To(S::AwaitingGroup),
        (S::PendingPayment, E::PaymentSucceeded { group_buy: false }) => Outcome::To(S::Paid),
        (S::PendingPayment, E::DepositPaid) => Outcome::To(S::AwaitingBalance),
        // The balance completes a presale order.
        (S::AwaitingBalance, E::PaymentSucceeded { .. }) if !same_transaction => Outcome::To(S::Paid),
        (S::Cancelled, E::PaymentSucceeded { .. } | E::DepositPaid) if same_transaction => Outcome::Already,
        (S::Cancelled, E::PaymentSucceeded { .. } | E::DepositPaid) => Outcome::RefundLatePayment,
        (s, E::PaymentSucceeded { .. } | E::DepositPaid) if s.is_paid() => {
            if same_transaction {
                Outcome::Already
            } else {
                Outcome::RefundDoublePayment
            }
        }
        (S::AwaitingGroup, E::GroupSucceeded) => Outcome::To(S::ToShip),
        (S::ToShip | S::Shipped | S::Received | S::Completed, E::GroupSucceeded) => Outcome::Already,
        (S::PendingPayment, E::Cancel) => Outcome::To(S::Cancelled),
        // A presale order closes when its balance lapses, the buyer gives up, or the merchant
        // cancels the presale; the caller settles the deposit (PS-2).
        (S::AwaitingBalance, E::Cancel) => Outcome::To(S::Cancelled),
        (S::Cancelled, E::Cancel) => Outcome::Already,
        // A paid order ships from ToShip; Paid is the same stage for an ordinary order.
        (S::Paid | S::ToShip, E::Ship) => Outcome::To(S::Shipped),
        (S::Shipped, E::Ship) => Outcome::Already,
        (S::Shipped, E::Receive) => Outcome::To(S::Received),
        (S::Received, E::Receive) => Outcome::Already,
        (S::Received, E::Complete) => Outcome::To(S::Completed),
        (S::Completed, E::Complete) => Outcome::Already,
        (from, event) => return Err(TransitionError { from: from.as_str(), event: event_name(event) }),
    };
    Ok(out)
}

/// A stock reservation (INV-3): one per (order, SKU, pool).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reservation {
    Reserved,
    Committed,
    Released,
}

/// What a reservation movement does to the SKU's counters: (Δ on_hand, Δ reserved), or
/// `None` when the movement was already made (or cannot be), which changes nothing.
pub fn movement(from: Reservation, to: Reservation, qty: i64) -> Option<(i64, i64)> {
    match (from, to) {
        // Commit at payment: the units leave the shelf and the hold.
        (Reservation::Reserved, Reservation::Committed) => Some((-qty, -qty)),
        // Release on cancel or timeout: the hold ends, the shelf keeps them.
        (Reservation::Reserved, Reservation::Released) => Some((0, -qty)),
        _ => None,
    }
}

/// Where an order ships to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub name: String,
    pub phone: String,
    /// Province, city and district, as the buyer picked them.
    pub region: String,
    pub detail: String,
}

impl Address {
    pub fn validate(&self) -> Result<Address, Vec<crate::validate::Violation>> {
        let mut v = crate::validate::Violations::new();
        let name = v.text("address.name", &self.name, 32);
        let phone = v.opt_mobile("address.phone", Some(&self.phone));
        if phone.is_none() {
            v.push("address.phone", "required", "address.phone is required");
        }
        let region = v.text("address.region", &self.region, 64);
        let detail = v.text("address.detail", &self.detail, 200);
        v.into_result()?;
        Ok(Address { name, phone: phone.unwrap_or_default(), region, detail })
    }
}

/// What refunding `k` more units of a line returns (REF-1): the stored paid amounts of the
/// next `k` units not yet refunded, so successive partial refunds add up to the line exactly.
/// `None` when fewer than `k` units are left.
pub fn refund_of_units(units: &[i64], refunded_qty: usize, k: usize) -> Option<i64> {
    let end = refunded_qty.checked_add(k)?;
    if k == 0 || end > units.len() {
        return None;
    }
    Some(units[refunded_qty..end].iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PAY: OrderEvent = OrderEvent::PaymentSucceeded { group_buy: false };

    #[test]
    fn refunds_follow_the_stored_units() {
        let units = [286, 286, 285];
        assert_eq!(refund_of_units(&units, 0, 1), Some(286));
        assert_eq!(refund_of_units(&units, 1, 2), Some(571));
        assert_eq!(refund_of_units(&units, 0, 3), Some(857));
        assert_eq!(refund_of_units(&units, 2, 2), None);
        assert_eq!(refund_of_units(&units, 0, 0), None);
        assert_eq!(refund_of_units(&units, usize::MAX, 1), None);
    }

    proptest! {
        #[test]
        fn partial_refunds_sum_to_the_line(units in proptest::collection::vec(0i64..100_000, 1..20), cuts in proptest::collection::vec(1usize..5, 1..10)) {
            let (mut done, mut total) = (0usize, 0i64);
            for k in cuts {
                if let Some(a) = refund_of_units(&units, done, k) {
                    done += k;
                    total += a;
                }
            }
            let rest = if done < units.len() { refund_of_units(&units, done, units.len() - done).unwrap() } else { 0 };
            prop_assert_eq!(total + rest, units.iter().sum::<i64>());
        }
    }

    #[test]
    fn addresses_name_their_fields() {
        let a = Address {
            name: " 张三 ".into(),
            phone: "+86 138 0013 8000".into(),
            region: "上海市 浦东新区".into(),
            detail: "世纪大道 1 号".into(),
        };
        let ok = a.validate().unwrap();
        assert_eq!((ok.name.as_str(), ok.phone.as_str()), ("张三", "+8613800138000"));
        let bad = Address { name: "".into(), phone: "123".into(), region: "".into(), detail: "x".into() };
        let f: Vec<_> = bad.validate().unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(f, vec!["address.name", "address.phone", "address.region"]);
    }

    #[test]
    fn the_happy_paths() {
        let mut s = OrderStatus::PendingPayment;
        for e in [PAY, OrderEvent::Ship, OrderEvent::Receive, OrderEvent::Complete] {
            s = match apply(s, e, false).unwrap() {
                Outcome::To(t) => t,
                o => panic!("{o:?}"),
            };
        }
        assert_eq!(s, OrderStatus::Completed);
        let g = apply(OrderStatus::PendingPayment, OrderEvent::PaymentSucceeded { group_buy: true }, false);
        assert_eq!(g, Ok(Outcome::To(OrderStatus::AwaitingGroup)));
        assert!(
            apply(OrderStatus::AwaitingGroup, OrderEvent::Ship, false).is_err(),
            "GB-10: no shipping before success"
        );
        assert_eq!(
            apply(OrderStatus::AwaitingGroup, OrderEvent::GroupSucceeded, false),
            Ok(Outcome::To(OrderStatus::ToShip))
        );
    }

    #[test]
    fn a_presale_order_pays_twice_then_ships() {
        use OrderStatus as S;
        let dep = apply(S::PendingPayment, OrderEvent::DepositPaid, false);
        assert_eq!(dep, Ok(Outcome::To(S::AwaitingBalance)));
        assert!(S::AwaitingBalance.is_paid(), "money was taken");
        assert!(apply(S::AwaitingBalance, OrderEvent::Ship, false).is_err(), "no shipping before the balance");
        // The deposit's notification again changes nothing; a second deposit is refunded.
        assert_eq!(apply(S::AwaitingBalance, OrderEvent::DepositPaid, true), Ok(Outcome::Already));
        assert_eq!(apply(S::AwaitingBalance, OrderEvent::DepositPaid, false), Ok(Outcome::RefundDoublePayment));
        assert_eq!(apply(S::AwaitingBalance, PAY, false), Ok(Outcome::To(S::Paid)));
        assert_eq!(apply(S::Paid, PAY, false), Ok(Outcome::RefundDoublePayment));
        // The balance lapsed: the order closes, and a balance paid after that is refunded.
        assert_eq!(apply(S::AwaitingBalance, OrderEvent::Cancel, false), Ok(Outcome::To(S::Cancelled)));
        assert_eq!(apply(S::Cancelled, PAY, false), Ok(Outcome::RefundLatePayment));
        assert_eq!(apply(S::Cancelled, OrderEvent::DepositPaid, false), Ok(Outcome::RefundLatePayment));
    }

    #[test]
    fn payments_and_cancels_race_to_one_outcome() {
        // Cancel won: the payment is refunded, never lost (INV-6); the same notification again
        // changes nothing.
        assert_eq!(apply(OrderStatus::Cancelled, PAY, false), Ok(Outcome::RefundLatePayment));
        assert_eq!(apply(OrderStatus::Cancelled, PAY, true), Ok(Outcome::Already));
        // Payment won: the cancel is refused.
        assert!(apply(OrderStatus::Paid, OrderEvent::Cancel, false).is_err());
        // Redelivery vs a second, distinct payment (PAY-4, PAY-5).
        assert_eq!(apply(OrderStatus::Paid, PAY, true), Ok(Outcome::Already));
        assert_eq!(apply(OrderStatus::Shipped, PAY, false), Ok(Outcome::RefundDoublePayment));
        let e = apply(OrderStatus::PendingPayment, OrderEvent::Ship, false).unwrap_err();
        assert_eq!(e.to_string(), "an order that is pending_payment cannot be shipped");
    }

    #[test]
    fn reservations_move_stock_once() {
        assert_eq!(movement(Reservation::Reserved, Reservation::Committed, 3), Some((-3, -3)));
        assert_eq!(movement(Reservation::Reserved, Reservation::Released, 3), Some((0, -3)));
        for from in [Reservation::Committed, Reservation::Released] {
            for to in [Reservation::Reserved, Reservation::Committed, Reservation::Released] {
                assert_eq!(movement(from, to, 3), None, "{from:?} → {to:?}");
            }
        }
    }

    fn any_event() -> impl Strategy<Value = (OrderEvent, bool)> {
        (0u8..8, any::<bool>()).prop_map(|(k, same)| {
            let e = match k {
                0 => PAY,
                1 => OrderEvent::PaymentSucceeded { group_buy: true },
                2 => OrderEvent::GroupSucceeded,
                3 => OrderEvent::Cancel,
                4 => OrderEvent::Ship,
                5 => OrderEvent::Receive,
                6 => OrderEvent::DepositPaid,
                _ => OrderEvent::Complete,
            };
            (e, same)
        })
    }

    proptest! {
        /// Whatever events arrive, in any order and repeated: a paid order is never cancelled, a
        /// cancelled one never becomes paid, every applied event is idempotent, and money taken
        /// for an order that cannot keep it is always refunded.
        #[test]
        fn no_sequence_breaks_the_rules(events in proptest::collection::vec(any_event(), 0..30)) {
            let mut s = OrderStatus::PendingPayment;
            for (e, same) in events {
                let was = s;
                match apply(s, e, same) {
                    Ok(Outcome::To(t)) => {
                        // Only a presale order waiting for its balance closes with money taken (PS-2).
                        prop_assert!(!(was.is_paid() && was != OrderStatus::AwaitingBalance && t == OrderStatus::Cancelled));
                        prop_assert!(!(was == OrderStatus::Cancelled && t.is_paid()));
                        // Applying the same event to the new state changes nothing more.
                        prop_assert!(!matches!(apply(t, e, true), Ok(Outcome::To(_))), "{:?} twice from {:?}", e, was);
                        s = t;
                    }
                    Ok(Outcome::RefundLatePayment) => prop_assert_eq!(was, OrderStatus::Cancelled),
                    Ok(Outcome::RefundDoublePayment) => prop_assert!(was.is_paid()),
                    Ok(Outcome::Already) | Err(_) => {}
                }
            }
        }
    }
}
