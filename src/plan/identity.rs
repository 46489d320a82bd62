//! Which live endpoints are ours, under which key, and which of several duplicates is kept.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{self, Live, LiveEndpoint, Project};

/// The key an endpoint is managed as: its first identity label, in label order.
pub(crate) fn key_of<'a>(project: &Project, endpoint: &'a LiveEndpoint) -> Option<&'a str> {
    endpoint
        .labels
        .iter()
        .find_map(|label| project.key_of_label(label))
}

/// What an endpoint's labels record about its signing secret.
pub fn secret_state(project: &Project, endpoint: &LiveEndpoint) -> model::SecretState {
    model::SecretState::of_labels(&project.label_prefix, &endpoint.labels)
}

/// The rotation number last applied to an endpoint's signing secret, 0 when none was.
pub fn applied_rotation(project: &Project, endpoint: &LiveEndpoint) -> u64 {
    secret_state(project, endpoint).rotation()
}

/// Live endpoints, each id once (the first listing wins), in listing order.
///
/// The client already de-duplicates a repeated page; doing it again here means a repeated page
/// can never look like a duplicate endpoint, which would be deleted.
pub(crate) fn unique(live: &Live) -> Vec<&LiveEndpoint> {
    let mut seen = BTreeSet::new();
    live.endpoints
        .iter()
        .filter(|endpoint| seen.insert(endpoint.id.as_str()))
        .collect()
}

/// Our live endpoints by key, oldest first (by `created_at`, then id): the first of each list is
/// the one kept, the others are duplicates.
pub fn managed<'a>(project: &Project, live: &'a Live) -> BTreeMap<String, Vec<&'a LiveEndpoint>> {
    let mut by_key: BTreeMap<String, Vec<&LiveEndpoint>> = BTreeMap::new();
    for endpoint in unique(live) {
        if let Some(key) = key_of(project, endpoint) {
            by_key.entry(key.to_owned()).or_default().push(endpoint);
        }
    }
    for endpoints in by_key.values_mut() {
        endpoints.sort_by(|a, b| oldest_first(a, b));
    }
    by_key
}

/// Ids of live endpoints that carry no identity label, in listing order.
pub(crate) fn unmanaged(project: &Project, live: &Live) -> Vec<String> {
    unique(live)
        .into_iter()
        .filter(|endpoint| key_of(project, endpoint).is_none())
        .map(|endpoint| endpoint.id.clone())
        .collect()
}

/// Orders by creation time, parsed when it parses (so offsets compare correctly), else as text;
/// the id breaks ties so the choice never depends on listing order.
fn oldest_first(a: &LiveEndpoint, b: &LiveEndpoint) -> std::cmp::Ordering {
    let parsed = |endpoint: &LiveEndpoint| endpoint.created_at.parse::<jiff::Timestamp>().ok();
    let by_time = match (parsed(a), parsed(b)) {
        (Some(ta), Some(tb)) => ta.cmp(&tb),
        _ => a.created_at.cmp(&b.created_at),
    };
    by_time.then_with(|| a.id.cmp(&b.id))
}
