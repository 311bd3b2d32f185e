//! Admission control in front of flash sales (FS-8.4): each buyer gets a few attempts per sale
//! per second in this process, so one client hammering the button cannot crowd out the others
//! or the database. The sold-out answer before any write is the other half (Redis's script, or
//! the database path's read of the buckets).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use uuid::Uuid;

/// Entries kept before the stale ones (of earlier seconds) are dropped.
const PRUNE_AT: usize = 100_000;

pub struct FlashThrottle {
    /// Attempts per buyer, sale and second; 0 admits everyone.
    limit: u32,
    started: Instant,
    slots: Mutex<HashMap<(Uuid, Uuid), (u64, u32)>>,
}

impl FlashThrottle {
    pub fn new(limit: u32) -> FlashThrottle {
        FlashThrottle { limit, started: Instant::now(), slots: Mutex::default() }
    }

    /// Counts an attempt and says whether it may go on.
    pub fn admit(&self, sale: Uuid, buyer: Uuid) -> bool {
        self.admit_at(sale, buyer, self.started.elapsed().as_secs())
    }

    fn admit_at(&self, sale: Uuid, buyer: Uuid, second: u64) -> bool {
        if self.limit == 0 {
            return true;
        }
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() >= PRUNE_AT {
            slots.retain(|_, (s, _)| *s == second);
        }
        let slot = slots.entry((sale, buyer)).or_insert((second, 0));
        if slot.0 != second {
            *slot = (second, 0);
        }
        slot.1 = slot.1.saturating_add(1);
        slot.1 <= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_buyer_gets_the_limit_per_sale_per_second() {
        let t = FlashThrottle::new(3);
        let (sale, other_sale, a, b) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        assert!((0..3).all(|_| t.admit_at(sale, a, 7)));
        assert!(!t.admit_at(sale, a, 7), "the fourth in one second is refused");
        assert!(t.admit_at(sale, b, 7), "another buyer is not affected");
        assert!(t.admit_at(other_sale, a, 7), "nor another sale");
        assert!(t.admit_at(sale, a, 8), "the next second starts afresh");
    }

    #[test]
    fn zero_admits_everyone_and_the_map_stays_bounded() {
        let open = FlashThrottle::new(0);
        assert!((0..100).all(|_| open.admit_at(Uuid::nil(), Uuid::nil(), 0)));
        let t = FlashThrottle::new(1);
        let sale = Uuid::now_v7();
        for _ in 0..PRUNE_AT {
            t.admit_at(sale, Uuid::now_v7(), 1);
        }
        t.admit_at(sale, Uuid::now_v7(), 2);
        assert_eq!(t.slots.lock().unwrap().len(), 1, "earlier seconds were dropped");
    }
}
