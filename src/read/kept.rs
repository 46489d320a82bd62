//! Replaced generated keys whose private halves sinks keep: which ones a plan finds, and when
//! one may go.
//!
//! A delivery is encrypted once, when it is created, to the key active then, and every retry
//! sends the same ciphertext. So a replaced key's private half stays while Kayle may still send
//! a delivery encrypted to it: it may go once its retention has passed since the key was
//! replaced (the listing's `created_at` of the key registered after it) and no delivery
//! encrypted to it still holds its payload (a delivery retried by hand starts the schedule
//! again).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::ReadApi;
use super::live::Managed;
use crate::api::{ApiError, DeliveryFilter, LiveDelivery, sendable_for};
use crate::model::{Desired, KeptKey, KeyMaterial, LiveKey, kept_key_name};

/// The environment variable that replaces [`Retention::Kayle`] with a fixed span (`0s`,
/// `10m`): for tests, which cannot wait days.
pub const KEPT_KEY_RETENTION_ENV: &str = "KAYLE_SYNC_KEPT_KEY_RETENTION";

/// How long a replaced key's private half is kept at least, from when it was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// As long as Kayle may send or be asked to retry a delivery made just before the key was
    /// replaced: [`RETRY_SCHEDULE`], then the endpoint's `undelivered_payload_retention_hours`
    /// (a failed delivery's payload is kept that long, and can be retried meanwhile).
    Kayle,
    /// A fixed span, from [`KEPT_KEY_RETENTION_ENV`].
    Fixed(Duration),
}

impl Retention {
    /// [`Retention::Kayle`], unless [`KEPT_KEY_RETENTION_ENV`] sets a span; the error names the
    /// variable and its value.
    pub fn from_env() -> Result<Retention, String> {
        match std::env::var(KEPT_KEY_RETENTION_ENV) {
            Err(_) => Ok(Retention::Kayle),
            Ok(text) => humantime::parse_duration(&text)
                .map(Retention::Fixed)
                .map_err(|_| {
                    format!("{KEPT_KEY_RETENTION_ENV}={text}: give a duration such as 0s or 10m")
                }),
        }
    }

    fn span(self, payload_retention_hours: u32) -> Duration {
        match self {
            Retention::Kayle => sendable_for(payload_retention_hours),
            Retention::Fixed(span) => span,
        }
    }
}

/// A name a plan asks a sink about: a replaced key's private half may be kept there.
pub(super) struct Candidate<'a> {
    /// The sink the endpoint's secrets go to.
    pub(super) sink: &'a str,
    /// The kept name: [`kept_key_name`] of the active key's private key name and `key_id`.
    pub(super) name: String,
    key: &'a str,
    endpoint: &'a Managed,
    key_id: &'a str,
}

/// The names a plan asks sinks about, for each managed endpoint whose active key is
/// generated: the kept name of every other `key_id` registered on it (`keys`, by endpoint id)
/// that no manifest declares as a name. Asked in the same round trip as the signing secrets.
pub(super) fn candidates<'a>(
    desired: &'a Desired,
    keys: &'a BTreeMap<String, Vec<LiveKey>>,
    managed: &'a BTreeMap<String, Managed>,
) -> Vec<Candidate<'a>> {
    let declared = declared_names(desired);
    let mut candidates = Vec::new();
    for (key, wanted) in &desired.endpoints {
        let (Some(endpoint), Some(active)) = (managed.get(key), wanted.active_key()) else {
            continue;
        };
        let KeyMaterial::Generate { private_key_name } = &active.material else {
            continue;
        };
        let sink = wanted.signing_secret.sink.as_str();
        let registered = keys
            .get(&endpoint.id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        // The manifest's own key is asked about only while it is not the active one: a key
        // id given back to a replaced key finds that key kept (see `plan::keys`).
        let active_now = registered
            .iter()
            .any(|k| k.key_id == active.key_id && k.is_active);
        let key_ids: BTreeSet<&str> = registered
            .iter()
            .map(|k| k.key_id.as_str())
            .filter(|key_id| *key_id != active.key_id || !active_now)
            .collect();
        for key_id in key_ids {
            let name = kept_key_name(private_key_name, key_id);
            if !declared.contains(&(sink, name.as_str())) {
                candidates.push(Candidate {
                    sink,
                    name,
                    key,
                    endpoint,
                    key_id,
                });
            }
        }
    }
    candidates
}

/// The replaced keys' private halves the sinks hold (`held`, the candidates a sink said it
/// holds), by endpoint key, each said done or not. Whether a done one goes is the plan's to
/// say: it never removes the manifest's active key (`plan::keys`).
///
/// Deliveries are listed once per endpoint with a kept key whose retention has passed, back
/// to the first registration of the oldest such key: a delivery made before a key was
/// registered cannot be encrypted to it.
pub(super) async fn judge(
    client: &impl ReadApi,
    held: &[&Candidate<'_>],
    keys: &BTreeMap<String, Vec<LiveKey>>,
    retention: Retention,
) -> Result<BTreeMap<String, Vec<KeptKey>>, ApiError> {
    let now = jiff::Timestamp::now();
    // For each held candidate, when its key was first registered, once its retention passed.
    let passed: Vec<Option<jiff::Timestamp>> = held
        .iter()
        .map(|candidate| {
            let registered = keys
                .get(&candidate.endpoint.id)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let (first, replaced) = active_span(registered, candidate.key_id)?;
            let span = retention.span(candidate.endpoint.payload_retention_hours);
            let until = jiff::SignedDuration::try_from(span)
                .ok()
                .and_then(|span| replaced.checked_add(span).ok())?;
            (until <= now).then_some(first)
        })
        .collect();
    let mut since: BTreeMap<&str, jiff::Timestamp> = BTreeMap::new();
    for (candidate, first) in held.iter().zip(&passed) {
        if let Some(first) = *first {
            since
                .entry(candidate.endpoint.id.as_str())
                .and_modify(|at| *at = (*at).min(first))
                .or_insert(first);
        }
    }
    let mut sendable: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (endpoint_id, since) in since {
        sendable.insert(
            endpoint_id,
            sendable_keys(client, endpoint_id, since, now).await?,
        );
    }
    let mut kept: BTreeMap<String, Vec<KeptKey>> = BTreeMap::new();
    for (candidate, first) in held.iter().zip(passed) {
        let registered = keys
            .get(&candidate.endpoint.id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let done = first.is_some()
            && sendable
                .get(candidate.endpoint.id.as_str())
                .is_some_and(|sendable| {
                    !registered
                        .iter()
                        .any(|k| k.key_id == candidate.key_id && sendable.contains(&k.id))
                });
        kept.entry(candidate.key.to_owned())
            .or_default()
            .push(KeptKey {
                key_id: candidate.key_id.to_owned(),
                name: candidate.name.clone(),
                done,
            });
    }
    Ok(kept)
}

/// Every name a manifest stores a secret under, by sink: a kept name that one declares is that
/// secret's, never a kept key's.
fn declared_names(desired: &Desired) -> BTreeSet<(&str, &str)> {
    let mut names = BTreeSet::new();
    for wanted in desired.endpoints.values() {
        let sink = wanted.signing_secret.sink.as_str();
        names.insert((sink, wanted.signing_secret.name.as_str()));
        for key in &wanted.encryption_keys {
            if let KeyMaterial::Generate { private_key_name } = &key.material {
                names.insert((sink, private_key_name.as_str()));
            }
        }
    }
    names
}

/// When the key `key_id` was first registered, and when it stopped being the one Kayle
/// encrypts to: the `created_at` of the first key registered after its newest registration
/// (registering a key makes it the active one). `None` while one of its registrations is
/// active, or when nothing was registered after it (it was switched off another way, at a
/// time the listing does not tell): then it is kept.
fn active_span(registered: &[LiveKey], key_id: &str) -> Option<(jiff::Timestamp, jiff::Timestamp)> {
    let created = |key: &LiveKey| key.created_at.parse::<jiff::Timestamp>().ok();
    let own: Vec<&LiveKey> = registered.iter().filter(|k| k.key_id == key_id).collect();
    if own.iter().any(|k| k.is_active) {
        return None;
    }
    let times = own.iter().map(|k| created(k)).collect::<Option<Vec<_>>>()?;
    let (first, newest) = (*times.iter().min()?, *times.iter().max()?);
    let replaced = registered
        .iter()
        .filter_map(created)
        .filter(|at| *at > newest)
        .min()?;
    Some((first, replaced))
}

/// The registrations (`whk_` ids) of the endpoint's keys that a delivery created at or after
/// `since` is encrypted to and still holds the payload of, so that Kayle may still send it
/// (pending or in flight), or be asked to retry it (failed, its payload not expired).
async fn sendable_keys(
    client: &impl ReadApi,
    endpoint_id: &str,
    since: jiff::Timestamp,
    now: jiff::Timestamp,
) -> Result<BTreeSet<String>, ApiError> {
    let mut sendable = BTreeSet::new();
    for status in ["pending", "delivering", "failed"] {
        let filter = DeliveryFilter {
            status: Some(status.to_owned()),
            endpoint_id: Some(endpoint_id.to_owned()),
            event_id: None,
        };
        let deliveries = client.list_deliveries_since(&filter, since).await?;
        sendable.extend(
            deliveries
                .into_iter()
                .filter(|d| holds_payload(d, now))
                .filter_map(|d| d.webhook_encryption_key_id),
        );
    }
    Ok(sendable)
}

/// Whether a delivery still holds its payload: not scrubbed, and not expired (an expiry that
/// does not parse counts as not expired).
fn holds_payload(delivery: &LiveDelivery, now: jiff::Timestamp) -> bool {
    delivery.payload_scrubbed_at.is_none()
        && delivery.payload_expires_at.as_deref().is_none_or(|at| {
            at.parse::<jiff::Timestamp>()
                .map_or(true, |expires| expires > now)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RETRY_SCHEDULE;

    fn key(id: &str, key_id: &str, active: bool, at: &str) -> LiveKey {
        LiveKey {
            id: id.into(),
            key_id: key_id.into(),
            is_active: active,
            created_at: at.into(),
            jwk: None,
        }
    }

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_key_is_replaced_when_the_next_key_is_registered() {
        let keys = [
            key("whk_3", "c", true, "2026-03-03T00:00:00Z"),
            key("whk_2", "b", false, "2026-03-02T00:00:00Z"),
            key("whk_1", "a", false, "2026-03-01T00:00:00Z"),
        ];
        assert_eq!(
            active_span(&keys, "a"),
            Some((at("2026-03-01T00:00:00Z"), at("2026-03-02T00:00:00Z")))
        );
        assert_eq!(
            active_span(&keys, "b"),
            Some((at("2026-03-02T00:00:00Z"), at("2026-03-03T00:00:00Z")))
        );
        assert_eq!(active_span(&keys, "c"), None, "active");
        let switched_off = [key("whk_1", "a", false, "2026-03-01T00:00:00Z")];
        assert_eq!(active_span(&switched_off, "a"), None, "when is unknown");
    }

    #[test]
    fn a_registered_again_key_spans_from_its_first_to_after_its_newest_registration() {
        let keys = [
            key("whk_3", "b", true, "2026-03-05T00:00:00Z"),
            key("whk_2", "a", false, "2026-03-04T00:00:00Z"),
            key("whk_1", "a", false, "2026-03-01T00:00:00Z"),
        ];
        assert_eq!(
            active_span(&keys, "a"),
            Some((at("2026-03-01T00:00:00Z"), at("2026-03-05T00:00:00Z")))
        );
    }

    #[test]
    fn kayles_retention_adds_the_payload_retention_to_the_schedule() {
        assert_eq!(Retention::Kayle.span(0), RETRY_SCHEDULE);
        assert_eq!(
            Retention::Kayle.span(168),
            RETRY_SCHEDULE + Duration::from_secs(168 * 3600)
        );
        let fixed = Retention::Fixed(Duration::from_secs(5));
        assert_eq!(fixed.span(168), Duration::from_secs(5));
    }

    #[test]
    fn a_payload_is_held_until_scrubbed_or_expired() {
        let now: jiff::Timestamp = "2026-03-02T00:00:00Z".parse().unwrap();
        let delivery = |expires: Option<&str>, scrubbed: Option<&str>| LiveDelivery {
            id: "whd_1".into(),
            event_id: "evt_1".into(),
            webhook_endpoint_id: "whe_1".into(),
            webhook_encryption_key_id: Some("whk_1".into()),
            status: "failed".into(),
            attempt_count: 8,
            next_attempt_at: None,
            payload_expires_at: expires.map(str::to_owned),
            payload_scrubbed_at: scrubbed.map(str::to_owned),
            payload_retention_reason: None,
            last_status_code: None,
            last_attempt_at: None,
            created_at: "2026-03-01T00:00:00Z".into(),
            updated_at: "2026-03-01T00:00:00Z".into(),
        };
        assert!(holds_payload(
            &delivery(Some("2026-03-03T00:00:00Z"), None),
            now
        ));
        assert!(holds_payload(&delivery(None, None), now));
        assert!(!holds_payload(
            &delivery(Some("2026-03-01T12:00:00Z"), None),
            now
        ));
        assert!(!holds_payload(
            &delivery(None, Some("2026-03-01T12:00:00Z")),
            now
        ));
    }
}
