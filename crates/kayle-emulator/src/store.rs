//! The emulator's in-memory data: endpoints, keys, ids, timestamps, ordering and pagination.

use std::collections::HashMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

pub(crate) use crate::page::{Listed, Page};
use crate::page::{page, paginate};

/// The four event types an endpoint can subscribe to, in the server's order.
pub(crate) const EVENT_TYPES: [&str; 4] = [
    "verification.session.succeeded",
    "verification.session.failed",
    "verification.session.expired",
    "verification.session.cancelled",
];

/// One webhook endpoint as the server stores it (the subscription is kept as sent).
/// No `Debug`: it holds the signing secret.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct EndpointRecord {
    pub id: String,
    pub organization_id: String,
    pub name: Option<String>,
    pub labels: Vec<String>,
    pub url: String,
    pub enabled: bool,
    pub subscribed_event_types: Vec<String>,
    pub undelivered_payload_retention_hours: u32,
    pub created_ms: i64,
    pub created_at: String,
    pub updated_at: String,
    pub disabled_at: Option<String>,
    pub signing_secret: String,
}

/// One encryption key registered on an endpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct KeyRecord {
    pub id: String,
    pub webhook_endpoint_id: String,
    pub organization_id: String,
    pub key_id: String,
    pub algorithm: String,
    pub key_type: String,
    pub jwk: serde_json::Value,
    pub is_active: bool,
    pub created_ms: i64,
    pub created_at: String,
    pub updated_at: String,
    pub disabled_at: Option<String>,
}

/// An endpoint as the API returns it: an empty subscription reads back as all four types.
#[derive(Serialize)]
pub(crate) struct EndpointView<'a> {
    id: &'a str,
    organization_id: &'a str,
    name: &'a Option<String>,
    labels: &'a [String],
    url: &'a str,
    enabled: bool,
    subscribed_event_types: Vec<&'a str>,
    undelivered_payload_retention_hours: u32,
    created_at: &'a str,
    updated_at: &'a str,
    disabled_at: &'a Option<String>,
}

impl EndpointRecord {
    pub fn view(&self) -> EndpointView<'_> {
        let subscribed_event_types = if self.subscribed_event_types.is_empty() {
            EVENT_TYPES.to_vec()
        } else {
            self.subscribed_event_types
                .iter()
                .map(String::as_str)
                .collect()
        };
        EndpointView {
            id: &self.id,
            organization_id: &self.organization_id,
            name: &self.name,
            labels: &self.labels,
            url: &self.url,
            enabled: self.enabled,
            subscribed_event_types,
            undelivered_payload_retention_hours: self.undelivered_payload_retention_hours,
            created_at: &self.created_at,
            updated_at: &self.updated_at,
            disabled_at: &self.disabled_at,
        }
    }
}

/// A key as the API returns it.
#[derive(Serialize)]
pub(crate) struct KeyView<'a> {
    id: &'a str,
    webhook_endpoint_id: &'a str,
    key_id: &'a str,
    algorithm: &'a str,
    key_type: &'a str,
    jwk: &'a serde_json::Value,
    is_active: bool,
    created_at: &'a str,
    updated_at: &'a str,
    disabled_at: &'a Option<String>,
}

impl KeyRecord {
    pub fn view(&self) -> KeyView<'_> {
        KeyView {
            id: &self.id,
            webhook_endpoint_id: &self.webhook_endpoint_id,
            key_id: &self.key_id,
            algorithm: &self.algorithm,
            key_type: &self.key_type,
            jwk: &self.jwk,
            is_active: self.is_active,
            created_at: &self.created_at,
            updated_at: &self.updated_at,
            disabled_at: &self.disabled_at,
        }
    }
}

/// Everything the emulator keeps; this is also the persisted form.
///
/// Endpoints are kept oldest first (by creation time, then id), so that a listing page is read
/// backwards from its cursor and costs the page, whatever the organization's size.
#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Store {
    /// Oldest first: see [`Store::restored`].
    pub endpoints: Vec<EndpointRecord>,
    pub keys: Vec<KeyRecord>,
    /// The last timestamp handed out, in Unix milliseconds; each new one is strictly later.
    pub last_ms: i64,
    /// Events fired, oldest first (absent from state files written before deliveries).
    #[serde(default)]
    pub events: Vec<crate::deliveries::EventRecord>,
    /// One delivery per event and subscribed endpoint, oldest first.
    #[serde(default)]
    pub deliveries: Vec<crate::deliveries::DeliveryRecord>,
    /// Each endpoint's creation time by id: where to look for it in `endpoints`.
    #[serde(skip)]
    created: HashMap<String, i64>,
}

/// The fields a create sets, already validated and normalized.
pub(crate) struct NewEndpoint {
    pub name: Option<String>,
    pub labels: Vec<String>,
    pub url: String,
    pub enabled: bool,
    pub subscribed_event_types: Vec<String>,
    pub undelivered_payload_retention_hours: u32,
}

/// The fields a PATCH changes; `None` leaves a field alone, `Some(None)` clears the name.
#[derive(Default)]
pub(crate) struct EndpointPatch {
    pub name: Option<Option<String>>,
    pub labels: Option<Vec<String>>,
    pub url: Option<String>,
    pub enabled: Option<bool>,
    pub subscribed_event_types: Option<Vec<String>>,
    pub undelivered_payload_retention_hours: Option<u32>,
}

/// The fields a key create sets, already validated.
pub(crate) struct NewKey {
    pub key_id: String,
    pub algorithm: String,
    pub key_type: String,
    pub jwk: serde_json::Value,
}

/// `prefix` followed by 32 characters of `[a-z0-9]`.
pub(crate) fn random_id(prefix: &str) -> String {
    random_id_of(prefix, 32)
}

/// `prefix` followed by `length` characters of `[a-z0-9]`.
pub(crate) fn random_id_of(prefix: &str, length: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..length)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

/// ISO 8601 with milliseconds and `Z`, as the server writes timestamps.
pub(crate) fn format_ms(ms: i64) -> String {
    let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!(
        "{}.{:03}Z",
        ts.strftime("%Y-%m-%dT%H:%M:%S"),
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
thread_local! {
    /// How often an endpoint's place in the listing order was read on this thread: what a
    /// listing costs, counted.
    pub(crate) static ORDER_READS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Listed for EndpointRecord {
    fn order(&self) -> (i64, &str) {
        #[cfg(test)]
        ORDER_READS.with(|reads| reads.set(reads.get() + 1));
        (self.created_ms, &self.id)
    }
}

impl Listed for KeyRecord {
    fn order(&self) -> (i64, &str) {
        (self.created_ms, &self.id)
    }
}

impl Store {
    /// A fresh timestamp, strictly later than every one handed out before.
    pub fn tick(&mut self) -> (i64, String) {
        let now = jiff::Timestamp::now().as_millisecond();
        let ms = now.max(self.last_ms + 1);
        self.last_ms = ms;
        (ms, format_ms(ms))
    }

    /// A store read from a state file: endpoints put oldest first, and found by id.
    pub fn restored(mut self) -> Store {
        self.endpoints.sort_by(|a, b| a.order().cmp(&b.order()));
        self.created = self
            .endpoints
            .iter()
            .map(|e| (e.id.clone(), e.created_ms))
            .collect();
        self
    }

    /// Where the endpoint `id` is in `endpoints`, of any organization.
    fn position(&self, id: &str) -> Option<usize> {
        let created = *self.created.get(id)?;
        self.endpoints
            .binary_search_by(|e| e.order().cmp(&(created, id)))
            .ok()
    }

    /// Where the endpoint `id` of `org` is in `endpoints`.
    fn position_in(&self, org: &str, id: &str) -> Option<usize> {
        self.position(id)
            .filter(|&at| self.endpoints[at].organization_id == org)
    }

    pub fn endpoint(&self, org: &str, id: &str) -> Option<&EndpointRecord> {
        self.position_in(org, id).map(|at| &self.endpoints[at])
    }

    fn endpoint_mut(&mut self, org: &str, id: &str) -> Option<&mut EndpointRecord> {
        self.position_in(org, id).map(|at| &mut self.endpoints[at])
    }

    pub fn list_endpoints(
        &self,
        org: &str,
        enabled: Option<bool>,
        limit: usize,
        starting_after: Option<&str>,
    ) -> Page<EndpointRecord> {
        // An unknown cursor (or another organization's endpoint) serves page 1 again.
        let end = starting_after
            .and_then(|cursor| self.position_in(org, cursor))
            .unwrap_or(self.endpoints.len());
        let newest_first = self.endpoints[..end]
            .iter()
            .rev()
            .filter(|e| e.organization_id == org);
        let keep = |e: &EndpointRecord| enabled.is_none_or(|want| e.enabled == want);
        page(newest_first, keep, limit)
    }

    pub fn create_endpoint(&mut self, org: &str, new: NewEndpoint) -> EndpointRecord {
        let (ms, at) = self.tick();
        let record = EndpointRecord {
            id: random_id("whe_"),
            organization_id: org.to_string(),
            name: new.name,
            labels: new.labels,
            url: new.url,
            enabled: new.enabled,
            subscribed_event_types: new.subscribed_event_types,
            undelivered_payload_retention_hours: new.undelivered_payload_retention_hours,
            created_ms: ms,
            created_at: at.clone(),
            updated_at: at.clone(),
            disabled_at: (!new.enabled).then(|| at.clone()),
            signing_secret: random_id("whsec_"),
        };
        // After every other: each tick is later than the last.
        let at = self
            .endpoints
            .partition_point(|e| e.order() < record.order());
        self.endpoints.insert(at, record.clone());
        self.created.insert(record.id.clone(), record.created_ms);
        record
    }

    pub fn update_endpoint(
        &mut self,
        org: &str,
        id: &str,
        patch: EndpointPatch,
    ) -> Option<EndpointRecord> {
        let (_, at) = self.tick();
        let e = self.endpoint_mut(org, id)?;
        if let Some(name) = patch.name {
            e.name = name;
        }
        if let Some(labels) = patch.labels {
            e.labels = labels;
        }
        if let Some(url) = patch.url {
            e.url = url;
        }
        if let Some(types) = patch.subscribed_event_types {
            e.subscribed_event_types = types;
        }
        if let Some(hours) = patch.undelivered_payload_retention_hours {
            e.undelivered_payload_retention_hours = hours;
        }
        if let Some(enabled) = patch.enabled {
            if enabled {
                e.disabled_at = None;
            } else if e.enabled {
                e.disabled_at = Some(at.clone());
            }
            e.enabled = enabled;
        }
        e.updated_at = at;
        Some(e.clone())
    }

    /// Deletes an endpoint and, as the server does, its keys and deliveries.
    pub fn delete_endpoint(&mut self, org: &str, id: &str) -> bool {
        let Some(at) = self.position_in(org, id) else {
            return false;
        };
        self.endpoints.remove(at);
        self.created.remove(id);
        self.keys.retain(|k| k.webhook_endpoint_id != id);
        self.deliveries.retain(|d| d.webhook_endpoint_id != id);
        true
    }

    pub fn rotate_secret(&mut self, org: &str, id: &str) -> Option<String> {
        let e = self.endpoint_mut(org, id)?;
        e.signing_secret = random_id("whsec_");
        Some(e.signing_secret.clone())
    }

    /// Registers a key, makes it the active one and deactivates the one that was active.
    pub fn create_key(&mut self, org: &str, endpoint_id: &str, new: NewKey) -> Option<KeyRecord> {
        self.endpoint(org, endpoint_id)?;
        let (ms, at) = self.tick();
        self.deactivate_others(endpoint_id, "", &at);
        let record = KeyRecord {
            id: random_id("whk_"),
            webhook_endpoint_id: endpoint_id.to_string(),
            organization_id: org.to_string(),
            key_id: new.key_id,
            algorithm: new.algorithm,
            key_type: new.key_type,
            jwk: new.jwk,
            is_active: true,
            created_ms: ms,
            created_at: at.clone(),
            updated_at: at,
            disabled_at: None,
        };
        self.keys.push(record.clone());
        Some(record)
    }

    fn deactivate_others(&mut self, endpoint_id: &str, keep: &str, at: &str) {
        for k in self
            .keys
            .iter_mut()
            .filter(|k| k.webhook_endpoint_id == endpoint_id && k.id != keep && k.is_active)
        {
            k.is_active = false;
            k.disabled_at = Some(at.to_string());
            k.updated_at = at.to_string();
        }
    }

    pub fn list_keys(
        &self,
        org: &str,
        endpoint_id: &str,
        is_active: Option<bool>,
        limit: usize,
        starting_after: Option<&str>,
    ) -> Option<Page<KeyRecord>> {
        self.endpoint(org, endpoint_id)?;
        let own = self
            .keys
            .iter()
            .filter(|k| k.webhook_endpoint_id == endpoint_id)
            .collect();
        let keep = |k: &KeyRecord| is_active.is_none_or(|want| k.is_active == want);
        Some(paginate(own, keep, limit, starting_after))
    }

    /// Switches a key on or off; switching one on switches the endpoint's others off.
    pub fn set_key_active(&mut self, org: &str, key_id: &str, active: bool) -> Option<KeyRecord> {
        let (_, at) = self.tick();
        let endpoint_id = self
            .keys
            .iter()
            .find(|k| k.id == key_id && k.organization_id == org)?
            .webhook_endpoint_id
            .clone();
        if active {
            self.deactivate_others(&endpoint_id, key_id, &at);
        }
        let k = self.keys.iter_mut().find(|k| k.id == key_id)?;
        if active {
            k.disabled_at = None;
        } else if k.is_active {
            k.disabled_at = Some(at.clone());
        }
        k.is_active = active;
        k.updated_at = at;
        Some(k.clone())
    }

    /// True when the endpoint is enabled but has no active key (its events would be lost).
    pub fn is_enabled_without_key(&self, endpoint_id: &str) -> bool {
        self.position(endpoint_id)
            .is_some_and(|at| self.endpoints[at].enabled)
            && !self
                .keys
                .iter()
                .any(|k| k.webhook_endpoint_id == endpoint_id && k.is_active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_millis_and_z() {
        assert_eq!(format_ms(1_795_733_851_344), "2026-11-26T22:57:31.344Z");
    }

    #[test]
    fn ticks_strictly_increase() {
        let mut store = Store::default();
        let a = store.tick().0;
        let b = store.tick().0;
        assert!(b > a);
    }

    #[test]
    fn ids_have_prefix_and_32_lowercase_alphanumerics() {
        let id = random_id("whe_");
        let tail = id.strip_prefix("whe_").unwrap();
        assert_eq!(tail.len(), 32);
        assert!(
            tail.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }
}
