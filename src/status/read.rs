//! Reads what a status report needs, at the listings' minimum: the live state a plan reads,
//! the keys of managed endpoints whose manifests declare none, and the organization's
//! deliveries in two listings (the window, and every pending one), grouped here rather than
//! listed endpoint by endpoint.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use super::{
    Deliveries, EndpointStatus, KeyCheck, PrivateKeyCheck, Report, SecretCheck, Window, summarize,
};
use crate::api::{ApiError, Client, DeliveryFilter, LiveDelivery};
use crate::model::{Desired, KeyMaterial, Live, LiveEndpoint, LiveKey, PrivateKeyHalf};
use crate::read::{ReadError, ReadOptions, read_live};
use crate::sink::Sinks;

/// What to report on, and what it may cost.
#[derive(Debug, Clone)]
pub struct Options {
    /// How far back deliveries are counted.
    pub window: Duration,
    /// Only these endpoint keys; all when empty.
    pub targets: Vec<String>,
    /// Reveal each secret and compare it with its readable sink (one request per endpoint).
    pub verify_secrets: bool,
    /// How many requests to send at once.
    pub concurrency: usize,
}

/// Why no report could be made.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Reading the live state failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A key or delivery listing failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The window reaches back before any time a timestamp can hold.
    #[error("a window of {0} reaches back too far")]
    Window(String),
}

/// Reads the state of `desired`'s endpoints (and of managed ones no manifest declares) and
/// their deliveries over `options.window`.
pub async fn read(
    client: &Client,
    desired: &Desired,
    sinks: &Sinks,
    options: &Options,
) -> Result<Report, StatusError> {
    let requests_before = client.requests_made();
    let until = jiff::Timestamp::now();
    let window = || humantime::format_duration(options.window).to_string();
    let since = jiff::SignedDuration::try_from(options.window)
        .ok()
        .and_then(|span| until.checked_sub(span).ok())
        .ok_or_else(|| StatusError::Window(window()))?;
    let chosen = |key: &str| options.targets.is_empty() || options.targets.iter().any(|t| t == key);
    // Every declaration as it is without --target (and always under watch, which refreshes
    // on an interval); with one, a copy of the chosen endpoints only.
    let scoped: Cow<'_, Desired> = if options.targets.is_empty() {
        Cow::Borrowed(desired)
    } else {
        Cow::Owned(Desired {
            project: desired.project.clone(),
            endpoints: desired
                .endpoints
                .iter()
                .filter(|(key, _)| chosen(key))
                .map(|(key, endpoint)| (key.clone(), endpoint.clone()))
                .collect(),
        })
    };
    let read = ReadOptions {
        concurrency: options.concurrency.max(1),
        verify_secrets: options.verify_secrets,
        // Status plans nothing: which kept keys may go is not its question.
        kept_keys: None,
    };
    let live = read_live(client, &scoped, sinks, read).await?;
    let managed: BTreeMap<String, Vec<&LiveEndpoint>> =
        crate::plan::managed(&desired.project, &live)
            .into_iter()
            .filter(|(key, _)| chosen(key))
            .collect();
    let keys = keys_of_all(client, &live, &managed, read.concurrency).await?;
    let deliveries = deliveries(client, &managed, !options.targets.is_empty(), since).await?;

    let by_key = group(&managed, &deliveries);
    let gathered = Gathered {
        scoped: &scoped,
        live: &live,
        managed: &managed,
        keys: &keys,
        verified: options.verify_secrets,
    };
    let mut all_keys: Vec<&String> = scoped.endpoints.keys().chain(managed.keys()).collect();
    all_keys.sort();
    all_keys.dedup();
    let endpoints: Vec<EndpointStatus> = all_keys
        .into_iter()
        .map(|key| {
            let delivered = by_key.get(key.as_str()).map_or(&[][..], Vec::as_slice);
            gathered.endpoint(key, summarize(delivered, until))
        })
        .collect();
    Ok(Report {
        format_version: super::FORMAT_VERSION,
        healthy: endpoints.iter().all(|e| e.problems.is_empty()),
        window: Window {
            since,
            until,
            seconds: options.window.as_secs(),
        },
        secrets_verified: options.verify_secrets,
        endpoints,
        requests: client.requests_made() - requests_before,
    })
}

/// Each managed endpoint's deliveries, by key; those of other endpoints are left out.
fn group<'a>(
    managed: &BTreeMap<String, Vec<&LiveEndpoint>>,
    deliveries: &'a BTreeMap<String, LiveDelivery>,
) -> BTreeMap<String, Vec<&'a LiveDelivery>> {
    let owner: BTreeMap<&str, &str> = managed
        .iter()
        .flat_map(|(key, endpoints)| endpoints.iter().map(|e| (e.id.as_str(), key.as_str())))
        .collect();
    let mut by_key: BTreeMap<String, Vec<&LiveDelivery>> = BTreeMap::new();
    for delivery in deliveries.values() {
        if let Some(key) = owner.get(delivery.webhook_endpoint_id.as_str()) {
            by_key.entry((*key).to_owned()).or_default().push(delivery);
        }
    }
    by_key
}

/// What was read, to judge each endpoint by.
struct Gathered<'a> {
    scoped: &'a Desired,
    live: &'a Live,
    managed: &'a BTreeMap<String, Vec<&'a LiveEndpoint>>,
    keys: &'a BTreeMap<String, Vec<LiveKey>>,
    /// Whether the secrets were compared with the API's.
    verified: bool,
}

impl Gathered<'_> {
    /// The status of the endpoint `key`, whose deliveries sum up to `deliveries`.
    fn endpoint(&self, key: &str, deliveries: Deliveries) -> EndpointStatus {
        let live_endpoint = self.managed.get(key).map(|e| e[0]);
        let registered = live_endpoint
            .and_then(|e| self.keys.get(&e.id))
            .map_or(&[][..], Vec::as_slice);
        let mut status = EndpointStatus {
            key: key.to_owned(),
            endpoint_id: live_endpoint.map(|e| e.id.clone()),
            declared: self.scoped.endpoints.contains_key(key),
            enabled: live_endpoint.map(|e| e.enabled),
            encryption_key: key_check(self.scoped, self.live, key, registered),
            secret: match live_endpoint {
                Some(_) => secret_check(self.scoped, self.live, key, self.verified),
                None => SecretCheck::NotChecked,
            },
            deliveries,
            problems: Vec::new(),
        };
        status.problems = status
            .find_problems()
            .into_iter()
            .map(super::Found::from)
            .collect();
        status
    }
}

/// Every kept managed endpoint's keys: those the live state read, and one listing for each
/// endpoint whose manifest declares no keys (or that no manifest declares).
async fn keys_of_all(
    client: &Client,
    live: &Live,
    managed: &BTreeMap<String, Vec<&LiveEndpoint>>,
    concurrency: usize,
) -> Result<BTreeMap<String, Vec<LiveKey>>, ApiError> {
    let unread: Vec<String> = managed
        .values()
        .map(|endpoints| endpoints[0].id.clone())
        .filter(|id| !live.keys.contains_key(id))
        .collect();
    let mut keys = live.keys.clone();
    let more: Vec<(String, Vec<LiveKey>)> = futures::stream::iter(unread)
        .map(|id| async move { client.list_keys(&id).await.map(|keys| (id, keys)) })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    keys.extend(more);
    Ok(keys)
}

/// The deliveries created since `since` and every pending one, each id once. One pair of
/// listings for the organization; with `--target`, one pair per chosen endpoint (cheaper
/// than reading every endpoint's deliveries to keep a few).
async fn deliveries(
    client: &Client,
    managed: &BTreeMap<String, Vec<&LiveEndpoint>>,
    targeted: bool,
    since: jiff::Timestamp,
) -> Result<BTreeMap<String, LiveDelivery>, ApiError> {
    let filters: Vec<DeliveryFilter> = if targeted {
        managed
            .values()
            .flatten()
            .map(|endpoint| DeliveryFilter {
                endpoint_id: Some(endpoint.id.clone()),
                ..DeliveryFilter::default()
            })
            .collect()
    } else {
        vec![DeliveryFilter::default()]
    };
    let mut found = BTreeMap::new();
    for filter in filters {
        let pending = DeliveryFilter {
            status: Some("pending".to_owned()),
            ..filter.clone()
        };
        let (recent, waiting) = futures::try_join!(
            client.list_deliveries_since(&filter, since),
            client.list_deliveries(&pending)
        )?;
        // A pending delivery of the window is in both listings: the same row, read twice.
        for delivery in recent.into_iter().chain(waiting) {
            found.insert(delivery.id.clone(), delivery);
        }
    }
    Ok(found)
}

/// The active key, and whether the sink holds a generated one's private half.
fn key_check(desired: &Desired, live: &Live, key: &str, registered: &[LiveKey]) -> KeyCheck {
    let wanted = desired.endpoints.get(key);
    let declared = wanted.and_then(|w| w.active_key());
    let private_key = match (wanted, declared) {
        (Some(wanted), Some(active)) if matches!(active.material, KeyMaterial::Generate { .. }) => {
            let half = live.private_keys.get(key);
            let comparable = registered
                .iter()
                .any(|k| k.key_id == active.key_id && k.jwk.is_some());
            match (half, crate::plan::key_repair(wanted, registered, half)) {
                (Some(PrivateKeyHalf::Unusable), _) => PrivateKeyCheck::Unusable,
                (_, Some(crate::plan::KeyRepair::MissingFromSink)) => PrivateKeyCheck::Missing,
                (_, Some(crate::plan::KeyRepair::DiffersFromSink)) => PrivateKeyCheck::Differs,
                (Some(PrivateKeyHalf::Holds(_)), None) if comparable => PrivateKeyCheck::Matches,
                _ => PrivateKeyCheck::NotChecked,
            }
        }
        _ => PrivateKeyCheck::NotGenerated,
    };
    KeyCheck {
        key_id: registered
            .iter()
            .find(|k| k.is_active)
            .map(|k| k.key_id.clone()),
        declared_key_id: declared.map(|k| k.key_id.clone()),
        private_key,
    }
}

/// What the declared sink holds for the endpoint's secret.
fn secret_check(desired: &Desired, live: &Live, key: &str, verified: bool) -> SecretCheck {
    let Some(wanted) = desired.endpoints.get(key) else {
        return SecretCheck::NotChecked;
    };
    let sink = wanted.signing_secret.sink.clone();
    match live.secret_present.get(key) {
        Some(false) => SecretCheck::Missing { sink },
        Some(true) if live.secret_differs.contains(key) => SecretCheck::Differs { sink },
        Some(true) if verified && live.secret_compared.contains(key) => {
            SecretCheck::Current { sink }
        }
        Some(true) => SecretCheck::Present { sink },
        None => match live.unreadable_sinks.get(&sink) {
            Some(reason) => SecretCheck::Unreadable {
                sink,
                reason: reason.clone(),
            },
            None => SecretCheck::WriteOnly { sink },
        },
    }
}
