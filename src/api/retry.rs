//! When and how long to wait before repeating a call that may safely be repeated.

use std::time::Duration;

use rand::Rng;

/// Bounds for retrying repeatable calls: exponential backoff with full jitter, a cap on
/// attempts and on the total time spent waiting. A 429's `Retry-After` is honoured as given.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The first backoff; each later one doubles, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The most time spent waiting between attempts, over one call.
    pub max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_total_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempt counts from 1), or `None` to give up.
    /// `retry_after` is the server's own wait, which replaces the backoff.
    pub(super) fn next_wait(
        &self,
        attempt: u32,
        waited: Duration,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let wait = match retry_after {
            Some(wait) => wait,
            None => {
                let ceiling = self
                    .base_delay
                    .saturating_mul(1u32 << (attempt - 1).min(16))
                    .min(self.max_delay);
                let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
                Duration::from_millis(rand::rng().random_range(millis / 2..=millis.max(1)))
            }
        };
        (waited + wait <= self.max_total_wait).then_some(wait)
    }
}

/// Parses a `Retry-After` header given in seconds (the HTTP-date form is not used by the API).
pub(super) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_bounded() {
        let policy = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            max_total_wait: Duration::from_secs(10),
        };
        let first = policy.next_wait(1, Duration::ZERO, None).unwrap();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let third = policy.next_wait(3, Duration::ZERO, None).unwrap();
        assert!(third <= Duration::from_millis(300), "{third:?}");
        assert_eq!(
            policy.next_wait(4, Duration::ZERO, None),
            None,
            "attempts are capped"
        );
    }

    #[test]
    fn retry_after_is_honoured_within_the_total_budget() {
        let policy = RetryPolicy {
            max_total_wait: Duration::from_secs(5),
            ..RetryPolicy::default()
        };
        let wait = Some(Duration::from_secs(2));
        assert_eq!(policy.next_wait(1, Duration::ZERO, wait), wait);
        assert_eq!(policy.next_wait(1, Duration::from_secs(4), wait), None);
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
