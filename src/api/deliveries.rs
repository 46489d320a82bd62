//! The delivery calls of the client: the listing (filtered, every page), a delivery's retry
//! and an event's replay.

use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::{ApiError, Client, Identified, Repeat};

/// How long Kayle's own schedule may go on sending a delivery after creating it: attempts at
/// once and after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, each allowed 15 s (Kayle's
/// docs put the whole at about 32.5 h), rounded up.
pub const RETRY_SCHEDULE: Duration = Duration::from_secs(33 * 3600);

/// How long after its creation Kayle may still send a delivery to an endpoint that keeps a
/// failed delivery's payload `payload_retention_hours`: its [`RETRY_SCHEDULE`], then that
/// retention, during which it may be retried by hand.
pub fn sendable_for(payload_retention_hours: u32) -> Duration {
    RETRY_SCHEDULE + Duration::from_secs(u64::from(payload_retention_hours) * 3600)
}

/// The most pages one delivery listing reads: 100,000 deliveries.
const MAX_DELIVERY_PAGES: u32 = 1_000;

/// One delivery as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveDelivery {
    pub id: String,
    pub event_id: String,
    pub webhook_endpoint_id: String,
    pub webhook_encryption_key_id: Option<String>,
    /// `pending`, `delivering`, `succeeded` or `failed`.
    pub status: String,
    pub attempt_count: u32,
    pub next_attempt_at: Option<String>,
    pub payload_expires_at: Option<String>,
    pub payload_scrubbed_at: Option<String>,
    pub payload_retention_reason: Option<String>,
    pub last_status_code: Option<u16>,
    pub last_attempt_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl LiveDelivery {
    /// When it was created, when `created_at` parses.
    pub fn created(&self) -> Option<jiff::Timestamp> {
        self.created_at.parse().ok()
    }
}

impl Identified for LiveDelivery {
    fn id(&self) -> &str {
        &self.id
    }
}

/// Which deliveries a listing asks for; `None` leaves a filter out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub status: Option<String>,
    pub endpoint_id: Option<String>,
    pub event_id: Option<String>,
}

impl DeliveryFilter {
    fn query(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("status", &self.status),
            ("endpoint_id", &self.endpoint_id),
            ("event_id", &self.event_id),
        ] {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
        query.finish()
    }
}

impl Client {
    /// Every delivery the filter selects, newest first, each id once.
    pub async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<LiveDelivery>, ApiError> {
        self.list_all(
            &listing_path(filter),
            MAX_DELIVERY_PAGES,
            "listing deliveries",
        )
        .await
    }

    /// The deliveries the filter selects that were created at or after `since`, newest first.
    /// The listing is ordered newest first (by `created_at`, then id, on the server as in the
    /// emulator), so it stops at the first page that reaches back before `since` instead of
    /// reading the whole history. A delivery whose `created_at` does not parse is kept.
    pub async fn list_deliveries_since(
        &self,
        filter: &DeliveryFilter,
        since: jiff::Timestamp,
    ) -> Result<Vec<LiveDelivery>, ApiError> {
        let before = |d: &LiveDelivery| d.created().is_some_and(|at| at < since);
        let mut found = self
            .list_until(
                &listing_path(filter),
                MAX_DELIVERY_PAGES,
                "listing deliveries",
                before,
            )
            .await?;
        found.retain(|d| !before(d));
        Ok(found)
    }

    /// Requeues a `pending` or `failed` delivery whose payload is still kept: attempted again
    /// at once, its attempt count back to 0. A 409 says why it cannot be (in flight, or its
    /// payload is gone: `WEBHOOK_PAYLOAD_EXPIRED`).
    pub async fn retry_delivery(&self, id: &str) -> Result<LiveDelivery, ApiError> {
        let path = format!("/v1/webhooks/deliveries/{id}/retry");
        let doing = format!("retrying delivery {id}");
        // Requeuing twice is harmless: the second finds it pending, or in flight (a 409).
        self.call(Method::POST, &path, None, Repeat::Safe, &doing)
            .await
    }

    /// Requeues every delivery of an event that can be; the event as the API returns it.
    pub async fn replay_event(&self, id: &str) -> Result<serde_json::Value, ApiError> {
        let path = format!("/v1/webhooks/events/{id}/replay");
        let doing = format!("replaying event {id}");
        self.call(Method::POST, &path, None, Repeat::Safe, &doing)
            .await
    }
}

/// A delivery for tests: `attempts` made, the last (answered `code`) and its creation at `at`.
#[cfg(test)]
pub(crate) fn test_delivery(
    id: &str,
    status: &str,
    attempts: u32,
    code: Option<u16>,
    at: &str,
) -> LiveDelivery {
    LiveDelivery {
        id: id.into(),
        event_id: "evt_1".into(),
        webhook_endpoint_id: "whe_1".into(),
        webhook_encryption_key_id: None,
        status: status.into(),
        attempt_count: attempts,
        next_attempt_at: None,
        payload_expires_at: None,
        payload_scrubbed_at: None,
        payload_retention_reason: None,
        last_status_code: code,
        last_attempt_at: (attempts > 0).then(|| at.to_owned()),
        created_at: at.into(),
        updated_at: at.into(),
    }
}

/// The listing's path with the filter's query.
fn listing_path(filter: &DeliveryFilter) -> String {
    let query = filter.query();
    if query.is_empty() {
        "/v1/webhooks/deliveries".to_owned()
    } else {
        format!("/v1/webhooks/deliveries?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_encoded_and_empty_ones_left_out() {
        assert_eq!(DeliveryFilter::default().query(), "");
        let filter = DeliveryFilter {
            status: Some("failed".into()),
            endpoint_id: Some("whe_a&b".into()),
            event_id: None,
        };
        assert_eq!(filter.query(), "status=failed&endpoint_id=whe_a%26b");
    }
}
