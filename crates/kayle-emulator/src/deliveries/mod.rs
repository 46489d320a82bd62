//! Events and their deliveries as the server keeps them: the records, what firing an event,
//! an attempt, a terminal failure and a requeue do to them, and the emulator's calls to fire
//! events and read deliveries.

pub(crate) mod routes;
mod worker;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Emulator;
use crate::page::{Listed, Page, paginate};
use crate::store::{Store, format_ms, random_id_of};
use crate::validation::DeliveryQuery;
use crate::wire;
pub(crate) use worker::Workers;
pub use worker::{RETRY_SCHEDULE, TIMEOUT};

/// How long the retry schedule keeps a payload before the endpoint's retention starts.
const AUTOMATIC_RETRY_WINDOW_MS: i64 = 5_000
    + 5 * 60_000
    + 30 * 60_000
    + 2 * 3_600_000
    + 5 * 3_600_000
    + 10 * 3_600_000
    + 10 * 3_600_000;

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    Pending,
    Delivering,
    Succeeded,
    Failed,
}

/// One event, as fired.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct EventRecord {
    pub id: String,
    pub organization_id: String,
    pub event_type: String,
    /// The verification session it is about.
    pub trigger_id: String,
    pub created_ms: i64,
    pub created_at: String,
}

/// One delivery of an event to one endpoint. `payload` is the sealed JWE, kept until the
/// delivery succeeds or its retention ends. No `Debug`: it holds the payload.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct DeliveryRecord {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub organization_id: String,
    pub webhook_endpoint_id: String,
    pub webhook_encryption_key_id: Option<String>,
    pub status: Status,
    pub attempt_count: u32,
    pub payload: Option<String>,
    pub payload_expires_ms: Option<i64>,
    pub payload_scrubbed_at: Option<String>,
    pub payload_retention_reason: Option<String>,
    pub last_status_code: Option<u16>,
    pub last_attempt_at: Option<String>,
    pub created_ms: i64,
    pub created_at: String,
    pub updated_at: String,
    /// Bumped by each requeue: the attempts of an earlier schedule then stop.
    pub generation: u64,
}

impl Listed for DeliveryRecord {
    fn order(&self) -> (i64, &str) {
        (self.created_ms, &self.id)
    }
}

impl DeliveryRecord {
    /// The delivery as the API returns it. `next_attempt_at` is null, as on the real server,
    /// whose wait between attempts lives in its workflow rather than in the row.
    pub fn view(&self) -> Value {
        json!({
            "id": self.id,
            "event_id": self.event_id,
            "webhook_endpoint_id": self.webhook_endpoint_id,
            "webhook_encryption_key_id": self.webhook_encryption_key_id,
            "status": self.status,
            "attempt_count": self.attempt_count,
            "next_attempt_at": null,
            "payload_expires_at": self.payload_expires_ms.map(format_ms),
            "payload_scrubbed_at": self.payload_scrubbed_at,
            "payload_retention_reason": self.payload_retention_reason,
            "last_status_code": self.last_status_code,
            "last_attempt_at": self.last_attempt_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }

    /// Why it cannot be requeued now, if it cannot.
    fn blocked(&self, now_ms: i64) -> Option<Blocked> {
        if self.status == Status::Delivering {
            Some(Blocked::Delivering)
        } else if self.payload.is_none() || self.payload_expires_ms.is_none_or(|at| at <= now_ms) {
            Some(Blocked::PayloadGone)
        } else {
            None
        }
    }
}

/// Why a delivery cannot be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// An attempt is in flight.
    Delivering,
    /// The payload was scrubbed (delivered, or no key) or its retention ended.
    PayloadGone,
}

/// What an attempt needs, read when it claims the delivery.
pub(crate) struct Claim {
    pub url: String,
    pub enabled: bool,
    pub secret: String,
    pub event_type: String,
    pub payload: String,
}

/// The event data a type carries when the caller gives none: the shape of a real one.
fn default_data(event_type: &str) -> Value {
    match event_type {
        "verification.session.succeeded" => json!({"claims": {}, "selected_field_keys": []}),
        "verification.session.failed" => json!({
            "failure_code": "liveness_failed", "nfc_tries_used": 1, "liveness_tries_used": 1,
        }),
        "verification.session.cancelled" => json!({
            "outcome": "not_verified", "reason": "cancelled",
            "nfc_tries_used": 0, "liveness_tries_used": 0,
        }),
        _ => json!({}),
    }
}

impl Store {
    /// Fires an event for `org`: one delivery per enabled endpoint subscribed to its type (a
    /// subscription stored empty receives nothing, as on the server), sealed now to the key
    /// active now. Without an active key the delivery is failed at once, with no payload.
    pub fn fire(&mut self, org: &str, event_type: &str, data: &Value) -> (String, Vec<String>) {
        let (ms, at) = self.tick();
        let event = EventRecord {
            id: random_id_of("evt_", 64),
            organization_id: org.to_owned(),
            event_type: event_type.to_owned(),
            trigger_id: random_id_of("vs_", 64),
            created_ms: ms,
            created_at: at,
        };
        let payload = wire::event_json(
            event_type,
            data,
            &wire::Metadata {
                event_id: event.id.clone(),
                verification_session_id: event.trigger_id.clone(),
                contract_version: wire::CONTRACT_VERSION,
                probe: false,
            },
        );
        let targets: Vec<(String, u32)> = self
            .endpoints
            .iter()
            .filter(|e| e.organization_id == org && e.enabled)
            .filter(|e| e.subscribed_event_types.iter().any(|t| t == event_type))
            .map(|e| (e.id.clone(), e.undelivered_payload_retention_hours))
            .collect();
        let mut ids = Vec::new();
        for (endpoint_id, retention_hours) in targets {
            let key = self
                .keys
                .iter()
                .find(|k| k.webhook_endpoint_id == endpoint_id && k.is_active);
            let sealed = key.map(|k| (k.id.clone(), wire::seal(&payload, &k.jwk, &k.key_id)));
            let (ms, at) = self.tick();
            let mut delivery = DeliveryRecord {
                id: random_id_of("whd_", 64),
                event_id: event.id.clone(),
                event_type: event_type.to_owned(),
                organization_id: org.to_owned(),
                webhook_endpoint_id: endpoint_id,
                webhook_encryption_key_id: sealed.as_ref().map(|(id, _)| id.clone()),
                status: Status::Pending,
                attempt_count: 0,
                payload: None,
                payload_expires_ms: None,
                payload_scrubbed_at: None,
                payload_retention_reason: Some("pending_delivery".into()),
                last_status_code: None,
                last_attempt_at: None,
                created_ms: ms,
                created_at: at.clone(),
                updated_at: at.clone(),
                generation: 0,
            };
            let failed = match sealed {
                Some((_, Ok(jwe))) => {
                    delivery.payload = Some(jwe);
                    delivery.payload_expires_ms = Some(
                        ms + AUTOMATIC_RETRY_WINDOW_MS + i64::from(retention_hours) * 3_600_000,
                    );
                    None
                }
                Some((_, Err(_))) => Some("jwe_creation_failed"),
                None => Some("no_active_key"),
            };
            if let Some(reason) = failed {
                delivery.status = Status::Failed;
                delivery.attempt_count = 1;
                delivery.last_attempt_at = Some(at.clone());
                delivery.payload_scrubbed_at = Some(at);
                delivery.payload_retention_reason = Some(reason.into());
            }
            ids.push(delivery.id.clone());
            self.deliveries.push(delivery);
        }
        let event_id = event.id.clone();
        self.events.push(event);
        (event_id, ids)
    }

    fn delivery_mut(&mut self, id: &str, generation: u64) -> Option<&mut DeliveryRecord> {
        self.deliveries
            .iter_mut()
            .find(|d| d.id == id && d.generation == generation)
    }

    /// Marks a pending delivery of this generation `delivering` and returns what its attempt
    /// needs; `None` when there is nothing (more) to attempt.
    pub fn claim(&mut self, id: &str, generation: u64) -> Option<Claim> {
        let (_, at) = self.tick();
        let delivery = self
            .deliveries
            .iter()
            .find(|d| d.id == id && d.generation == generation)
            .filter(|d| d.status == Status::Pending)?;
        let payload = delivery.payload.clone()?;
        let endpoint = self
            .endpoints
            .iter()
            .find(|e| e.id == delivery.webhook_endpoint_id)?;
        let claim = Claim {
            url: endpoint.url.clone(),
            enabled: endpoint.enabled,
            secret: endpoint.signing_secret.clone(),
            event_type: delivery.event_type.clone(),
            payload,
        };
        let delivery = self.delivery_mut(id, generation)?;
        delivery.status = Status::Delivering;
        delivery.updated_at = at;
        Some(claim)
    }

    /// Records an attempt's outcome (`None`: no answer, or not sent): a 2xx makes the delivery
    /// `succeeded` and scrubs its payload; anything else leaves it `pending`. Returns whether
    /// it succeeded.
    pub fn record_attempt(&mut self, id: &str, generation: u64, status: Option<u16>) -> bool {
        let (_, at) = self.tick();
        let Some(delivery) = self
            .delivery_mut(id, generation)
            .filter(|d| d.status == Status::Delivering)
        else {
            return false;
        };
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        delivery.attempt_count += 1;
        delivery.last_attempt_at = Some(at.clone());
        delivery.last_status_code = status;
        delivery.updated_at = at.clone();
        if ok {
            delivery.status = Status::Succeeded;
            delivery.payload = None;
            delivery.payload_expires_ms = None;
            delivery.payload_scrubbed_at = Some(at);
            delivery.payload_retention_reason = Some("delivered".into());
        } else {
            delivery.status = Status::Pending;
        }
        ok
    }

    /// After the last attempt failed: `failed`, the payload kept for the endpoint's retention
    /// (scrubbed at once when that is 0 hours).
    pub fn finalize(&mut self, id: &str, generation: u64) {
        let (ms, at) = self.tick();
        let Some(endpoint_id) = self
            .deliveries
            .iter()
            .find(|d| d.id == id && d.generation == generation)
            .map(|d| d.webhook_endpoint_id.clone())
        else {
            return;
        };
        let hours = self
            .endpoints
            .iter()
            .find(|e| e.id == endpoint_id)
            .map_or(168, |e| e.undelivered_payload_retention_hours);
        let Some(delivery) = self.delivery_mut(id, generation) else {
            return;
        };
        if matches!(delivery.status, Status::Succeeded | Status::Failed) {
            return;
        }
        delivery.status = Status::Failed;
        delivery.updated_at = at.clone();
        if delivery.payload.is_none() || hours == 0 {
            delivery.payload = None;
            delivery.payload_expires_ms = None;
            delivery.payload_scrubbed_at = Some(at);
            delivery.payload_retention_reason = Some("expired".into());
        } else {
            delivery.payload_expires_ms = Some(ms + i64::from(hours) * 3_600_000);
            delivery.payload_retention_reason = Some("terminal_failure_retention".into());
        }
    }

    /// Requeues a delivery: attempt count back to 0, `pending`, a new generation to attempt.
    pub fn requeue(&mut self, id: &str) -> Result<u64, Blocked> {
        let (ms, at) = self.tick();
        let now = jiff::Timestamp::now().as_millisecond();
        let delivery = self
            .deliveries
            .iter_mut()
            .find(|d| d.id == id)
            .ok_or(Blocked::PayloadGone)?;
        if let Some(blocked) = delivery.blocked(now.max(ms)) {
            return Err(blocked);
        }
        delivery.attempt_count = 0;
        delivery.last_attempt_at = None;
        delivery.last_status_code = None;
        delivery.status = Status::Pending;
        delivery.updated_at = at;
        delivery.generation += 1;
        Ok(delivery.generation)
    }

    pub fn delivery(&self, org: &str, id: &str) -> Option<&DeliveryRecord> {
        self.deliveries
            .iter()
            .find(|d| d.id == id && d.organization_id == org)
    }

    pub fn event(&self, org: &str, id: &str) -> Option<&EventRecord> {
        self.events
            .iter()
            .find(|e| e.id == id && e.organization_id == org)
    }

    /// The deliveries of an event, oldest first.
    pub fn deliveries_of(&self, event_id: &str) -> Vec<&DeliveryRecord> {
        self.deliveries
            .iter()
            .filter(|d| d.event_id == event_id)
            .collect()
    }

    pub fn list_deliveries(&self, org: &str, q: &DeliveryQuery) -> Page<DeliveryRecord> {
        let own = self
            .deliveries
            .iter()
            .filter(|d| d.organization_id == org)
            .collect();
        let keep = |d: &DeliveryRecord| {
            q.status.is_none_or(|s| status_name(d.status) == s)
                && q.endpoint_id
                    .as_deref()
                    .is_none_or(|id| d.webhook_endpoint_id == id)
                && q.event_id.as_deref().is_none_or(|id| d.event_id == id)
        };
        paginate(own, keep, q.limit, q.starting_after.as_deref())
    }

    /// An event as the API returns it, with a summary of each of its deliveries.
    pub fn event_view(&self, event: &EventRecord) -> Value {
        let deliveries: Vec<Value> = self
            .deliveries_of(&event.id)
            .into_iter()
            .map(|d| {
                json!({
                    "id": d.id,
                    "webhook_endpoint_id": d.webhook_endpoint_id,
                    "status": d.status,
                    "last_status_code": d.last_status_code,
                    "attempt_count": d.attempt_count,
                    "last_attempt_at": d.last_attempt_at,
                    "payload_expires_at": d.payload_expires_ms.map(format_ms),
                    "payload_scrubbed_at": d.payload_scrubbed_at,
                    "payload_retention_reason": d.payload_retention_reason,
                })
            })
            .collect();
        json!({
            "id": event.id,
            "type": event.event_type,
            "trigger_type": "verification_session",
            "trigger_id": event.trigger_id,
            "created_at": event.created_at,
            "deliveries": deliveries,
        })
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Pending => "pending",
        Status::Delivering => "delivering",
        Status::Succeeded => "succeeded",
        Status::Failed => "failed",
    }
}

/// An event the emulator fired, and the deliveries it made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FiredEvent {
    /// The event's id (`evt_…`).
    pub event_id: String,
    /// One delivery per enabled endpoint subscribed to the type (`whd_…`), oldest first.
    pub delivery_ids: Vec<String>,
}

/// An event type the server does not have.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "unknown event type {0:?}: expected one of verification.session.succeeded, failed, expired or cancelled"
)]
pub struct UnknownEventType(pub String);

impl Emulator {
    /// Fires an event of `event_type` for `organization_id`, as a verification session ending
    /// would: each enabled endpoint subscribed to the type gets a delivery, attempted at once
    /// and then on Kayle's retry schedule (see [`Emulator::set_delivery_time_scale`]) on the
    /// runtime the emulator serves on. `data` defaults to a plausible body for the type.
    pub fn fire_event(
        &self,
        organization_id: &str,
        event_type: &str,
        data: Option<Value>,
    ) -> Result<FiredEvent, UnknownEventType> {
        if !crate::store::EVENT_TYPES.contains(&event_type) {
            return Err(UnknownEventType(event_type.to_owned()));
        }
        let data = data.unwrap_or_else(|| default_data(event_type));
        let (event_id, delivery_ids) = {
            let mut store = self.shared.lock_store();
            let fired = store.fire(organization_id, event_type, &data);
            self.shared.persist(&store);
            fired
        };
        for id in &delivery_ids {
            worker::start(&self.shared, id.clone(), 0);
        }
        Ok(FiredEvent {
            event_id,
            delivery_ids,
        })
    }

    /// Every organization's deliveries as the API returns them, newest first.
    pub fn deliveries(&self) -> Vec<Value> {
        let store = self.shared.lock_store();
        let mut all: Vec<&DeliveryRecord> = store.deliveries.iter().collect();
        all.sort_by(|a, b| (b.created_ms, &b.id).cmp(&(a.created_ms, &a.id)));
        all.iter().map(|d| d.view()).collect()
    }

    /// Divides every wait of the retry schedule, and the 15 s attempt timeout (to no less
    /// than a second), by `divisor`: with 6000, the 5-minute step takes 50 ms. 0 counts as 1.
    pub fn set_delivery_time_scale(&self, divisor: u32) {
        self.shared.workers.set_time_scale(divisor);
    }

    /// Stops every delivery schedule, now and for good; [`crate::Server::shutdown`] does this.
    pub fn stop_deliveries(&self) {
        self.shared.workers.stop();
    }
}
