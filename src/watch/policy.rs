//! The one place that decides what happens after a failed reconcile, and the jitter on waits.

use std::time::Duration;

use rand::Rng;

use super::reconcile::ReconcileError;

/// The first wait after a failure that is worth retrying; each later one doubles.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// What the loop does after a failed reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Reconcile again after this wait (the API or a sink may recover on its own).
    Retry(Duration),
    /// Retrying cannot help: wait for the files to change (or the next interval tick).
    AwaitChange,
}

/// Decides what follows the `failures`-th failure in a row (counting from 1).
///
/// An invalid configuration or a plan the deletion guard refuses needs a person: nothing is
/// retried until the files change, and the interval tick still re-checks. API and sink
/// failures are retried with exponential backoff from [`FIRST_BACKOFF`], capped at the
/// interval, so a long outage costs one attempt per interval.
pub fn error_policy(error: &ReconcileError, failures: u32, interval: Duration) -> Next {
    match error {
        ReconcileError::Invalid { .. } | ReconcileError::Refused(_) => Next::AwaitChange,
        ReconcileError::Sinks(_) | ReconcileError::Read(_) | ReconcileError::Apply { .. } => {
            let doubled = FIRST_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
            Next::Retry(doubled.min(interval))
        }
    }
}

/// `wait` moved at random by up to ±10%, so many watchers started together spread out.
pub fn jitter(wait: Duration) -> Duration {
    let factor = rand::rng().random_range(0.9..=1.1);
    wait.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::GuardError;

    fn api_failure() -> ReconcileError {
        ReconcileError::Apply {
            failed: 1,
            of: 1,
            errors: vec!["orders: 503".into()],
        }
    }

    #[test]
    fn backoff_doubles_from_one_second_and_stops_at_the_interval() {
        let interval = Duration::from_secs(10);
        let waits: Vec<_> = (1..=6)
            .map(|n| error_policy(&api_failure(), n, interval))
            .collect();
        let secs = |s| Next::Retry(Duration::from_secs(s));
        assert_eq!(
            waits,
            [secs(1), secs(2), secs(4), secs(8), secs(10), secs(10)]
        );
        assert_eq!(
            error_policy(&api_failure(), 1000, interval),
            secs(10),
            "a huge count must not overflow"
        );
    }

    #[test]
    fn problems_that_need_a_person_are_not_retried() {
        let refused = ReconcileError::Refused(GuardError::TooManyDeletes {
            deletes: 5,
            managed: 10,
        });
        assert_eq!(
            error_policy(&refused, 1, Duration::from_secs(60)),
            Next::AwaitChange
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..200 {
            let wait = jitter(Duration::from_secs(100)).as_secs_f64();
            assert!((90.0..=110.0).contains(&wait), "{wait}");
        }
    }
}
