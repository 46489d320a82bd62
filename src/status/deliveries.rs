//! One endpoint's deliveries summed up: counts by status, the last refused attempt, the oldest
//! delivery still pending.

use serde::Serialize;

use crate::api::LiveDelivery;

/// What an endpoint's deliveries show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Deliveries {
    pub succeeded: u64,
    pub failed: u64,
    pub pending: u64,
    pub delivering: u64,
    /// Of the pending ones, those whose last attempt was refused (or got no answer).
    pub retrying: u64,
    pub last_failure: Option<LastFailure>,
    pub oldest_pending: Option<OldestPending>,
}

/// The most recent refused attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastFailure {
    pub delivery_id: String,
    /// The receiver's answer; `None` when there was none (a timeout, a refused connection, or
    /// no active key to encrypt to).
    pub status_code: Option<u16>,
    pub at: jiff::Timestamp,
}

/// The oldest delivery still waiting to be delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OldestPending {
    pub delivery_id: String,
    pub created_at: jiff::Timestamp,
    pub age_seconds: u64,
}

/// Sums up `deliveries` (one endpoint's, each id once) as of `now`. A delivery whose times do
/// not parse is counted but gives no last failure or oldest pending.
pub fn summarize(deliveries: &[&LiveDelivery], now: jiff::Timestamp) -> Deliveries {
    let mut summary = Deliveries::default();
    for delivery in deliveries {
        let attempted = delivery.attempt_count > 0;
        match delivery.status.as_str() {
            "succeeded" => summary.succeeded += 1,
            "failed" => summary.failed += 1,
            "delivering" => summary.delivering += 1,
            "pending" => {
                summary.pending += 1;
                if attempted {
                    summary.retrying += 1;
                }
                if let Some(created) = delivery.created()
                    && summary
                        .oldest_pending
                        .as_ref()
                        .is_none_or(|oldest| created < oldest.created_at)
                {
                    summary.oldest_pending = Some(OldestPending {
                        delivery_id: delivery.id.clone(),
                        created_at: created,
                        age_seconds: seconds_between(created, now),
                    });
                }
            }
            // A status the API does not document: neither counted nor a failure.
            _ => continue,
        }
        let refused = match delivery.status.as_str() {
            "failed" => true,
            "pending" => attempted,
            _ => false,
        };
        let at = delivery
            .last_attempt_at
            .as_deref()
            .and_then(|at| at.parse::<jiff::Timestamp>().ok());
        if refused
            && let Some(at) = at
            && summary
                .last_failure
                .as_ref()
                .is_none_or(|last| at > last.at)
        {
            summary.last_failure = Some(LastFailure {
                delivery_id: delivery.id.clone(),
                status_code: delivery.last_status_code,
                at,
            });
        }
    }
    summary
}

/// Whole seconds from `earlier` to `later`, 0 when `earlier` is later.
pub fn seconds_between(earlier: jiff::Timestamp, later: jiff::Timestamp) -> u64 {
    u64::try_from(later.duration_since(earlier).as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::test_delivery as delivery;

    #[test]
    fn counts_the_last_refusal_and_the_oldest_pending() {
        let now: jiff::Timestamp = "2026-12-02T12:00:00Z".parse().unwrap();
        let all = [
            delivery("d1", "succeeded", 1, Some(200), "2026-12-02T11:59:00Z"),
            delivery("d2", "failed", 8, Some(500), "2026-12-02T10:00:00Z"),
            delivery("d3", "pending", 2, Some(400), "2026-12-02T11:00:00Z"),
            delivery("d4", "pending", 0, None, "2026-12-02T11:58:00Z"),
            delivery("d5", "pending", 1, None, "2026-12-02T09:00:00.500Z"),
            delivery("d6", "delivering", 0, None, "2026-12-02T11:59:59Z"),
            delivery("d7", "archived", 1, Some(500), "2026-12-02T11:59:59Z"),
            delivery("d8", "failed", 1, None, "not a time"),
        ];
        let refs: Vec<&LiveDelivery> = all.iter().collect();
        let summary = summarize(&refs, now);
        assert_eq!(
            (
                summary.succeeded,
                summary.failed,
                summary.pending,
                summary.delivering,
                summary.retrying
            ),
            (1, 2, 3, 1, 2)
        );
        let last = summary.last_failure.unwrap();
        assert_eq!(
            (last.delivery_id.as_str(), last.status_code),
            ("d3", Some(400))
        );
        let oldest = summary.oldest_pending.unwrap();
        assert_eq!(oldest.delivery_id, "d5");
        assert_eq!(oldest.age_seconds, 3 * 3600 - 1);
    }

    #[test]
    fn nothing_to_sum_is_all_zero() {
        let summary = summarize(&[], jiff::Timestamp::now());
        assert_eq!(summary, Deliveries::default());
    }
}
