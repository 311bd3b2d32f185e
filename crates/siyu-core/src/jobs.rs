//! Rules of the durable jobs facility: states and retry backoff. The queue itself lives in
//! the store; this module decides *when* a failed job runs again and when it gives up.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for its `run_at`.
    Queued,
    /// Leased by a worker; the lease expires if the worker dies.
    Running,
    /// Finished successfully. Terminal.
    Done,
    /// Gave up after `max_attempts`; visible in the dead-letter list and replayable. Terminal.
    Dead,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Dead => "dead",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [JobStatus::Queued, JobStatus::Running, JobStatus::Done, JobStatus::Dead].into_iter().find(|x| x.as_str() == s)
    }
}

/// Exponential backoff with a cap and full jitter in the upper half, so a burst of failures
/// does not retry in lockstep. `jitter` is a caller-supplied number in `[0, 1)`.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_secs(1), cap: Duration::from_secs(3600), max_attempts: 10 }
    }
}

impl Backoff {
    /// Delay before attempt `attempt + 1` after `attempt` (1-based) failed, or `None` when the
    /// job has used all its attempts and must go to the dead-letter list.
    pub fn next_delay(&self, attempt: u32, jitter: f64) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let exp = self.base.saturating_mul(1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX));
        let full = exp.min(self.cap);
        let j = jitter.clamp(0.0, 0.999_999);
        Some(full.mul_f64(0.5 + 0.5 * j))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn doubles_until_cap_then_gives_up() {
        let b = Backoff::default();
        assert_eq!(b.next_delay(1, 0.999_999_9).unwrap().as_secs(), 0); // ~1 s, rounds down
        assert_eq!(b.next_delay(3, 0.0), Some(Duration::from_secs(2)));
        assert_eq!(b.next_delay(9, 0.0), Some(Duration::from_secs(128)));
        assert_eq!(b.next_delay(10, 0.0), None);
        let capped = Backoff { max_attempts: 100, ..b };
        assert_eq!(capped.next_delay(40, 0.0), Some(Duration::from_secs(1800)));
    }

    proptest! {
        #[test]
        fn delay_is_bounded(attempt in 1u32..200, jitter in 0.0f64..1.0) {
            let b = Backoff { max_attempts: 1000, ..Backoff::default() };
            let d = b.next_delay(attempt, jitter).unwrap();
            prop_assert!(d <= b.cap);
            prop_assert!(d >= b.base / 2);
        }
    }

    #[test]
    fn status_round_trips() {
        for s in [JobStatus::Queued, JobStatus::Running, JobStatus::Done, JobStatus::Dead] {
            assert_eq!(JobStatus::parse(s.as_str()), Some(s));
        }
    }
}
