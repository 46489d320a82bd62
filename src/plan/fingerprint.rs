//! A fingerprint of the live state a plan was computed from, so a saved plan is refused once
//! the organization has changed under it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::identity::unique;
use crate::model::{EventType, Live};

#[derive(Serialize)]
struct Canonical<'a> {
    version: u32,
    endpoints: BTreeMap<&'a str, CanonicalEndpoint<'a>>,
    keys: BTreeMap<&'a str, BTreeMap<&'a str, CanonicalKey<'a>>>,
    secret_present: &'a BTreeMap<String, bool>,
}

#[derive(Serialize)]
struct CanonicalEndpoint<'a> {
    name: Option<&'a str>,
    labels: BTreeSet<&'a str>,
    url: &'a str,
    enabled: bool,
    subscribed_event_types: BTreeSet<&'a str>,
    retention: u32,
    created_at: &'a str,
}

#[derive(Serialize)]
struct CanonicalKey<'a> {
    key_id: &'a str,
    is_active: bool,
    created_at: &'a str,
}

/// The SHA-256, in lowercase hex, of a canonical form of everything in `live` a plan depends
/// on: each endpoint's id, diffed fields (labels and event types as sets), `created_at` (it
/// picks the kept duplicate), its keys and whether each secret is present.
///
/// `updated_at` and `disabled_at` are left out: the first changes on every PATCH, even one that
/// changes nothing, and neither is diffed. Listing order is left out too.
pub fn fingerprint(live: &Live) -> String {
    let endpoints = unique(live)
        .into_iter()
        .map(|e| {
            let endpoint = CanonicalEndpoint {
                name: e.name.as_deref(),
                labels: e.labels.iter().map(String::as_str).collect(),
                url: &e.url,
                enabled: e.enabled,
                subscribed_event_types: e
                    .subscribed_event_types
                    .iter()
                    .map(EventType::name)
                    .collect(),
                retention: e.undelivered_payload_retention_hours,
                created_at: &e.created_at,
            };
            (e.id.as_str(), endpoint)
        })
        .collect();
    let keys = live
        .keys
        .iter()
        .map(|(endpoint_id, keys)| {
            let keys = keys
                .iter()
                .map(|k| {
                    let key = CanonicalKey {
                        key_id: &k.key_id,
                        is_active: k.is_active,
                        created_at: &k.created_at,
                    };
                    (k.id.as_str(), key)
                })
                .collect();
            (endpoint_id.as_str(), keys)
        })
        .collect();
    let canonical = Canonical {
        version: 1,
        endpoints,
        keys,
        secret_present: &live.secret_present,
    };
    let bytes = serde_json::to_vec(&canonical).expect("plain data serializes");
    format!("{:x}", Sha256::digest(bytes))
}
