//! Reads the live state a plan needs: one paginated listing, the keys of endpoints whose
//! manifests declare keys, and whether readable sinks hold each managed secret.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};

use super::SinkMap;
use crate::api::{ApiError, Client};
use crate::model::{Desired, Live, LiveEndpoint, SinkError};

/// Why the live state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The API refused or failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A sink could not say whether it holds a secret.
    #[error("checking sink {sink}: {source}")]
    Sink {
        sink: String,
        #[source]
        source: SinkError,
    },
}

/// The oldest live endpoint carrying each key's identity label, by key.
pub fn managed_by_key<'a>(
    desired: &Desired,
    live: &'a [LiveEndpoint],
) -> BTreeMap<String, &'a LiveEndpoint> {
    let mut found: BTreeMap<String, &LiveEndpoint> = BTreeMap::new();
    for endpoint in live {
        let Some(key) = endpoint
            .labels
            .iter()
            .find_map(|label| desired.project.key_of_label(label))
        else {
            continue;
        };
        let entry = found.entry(key.to_owned()).or_insert(endpoint);
        if (endpoint.created_at.as_str(), endpoint.id.as_str())
            < (entry.created_at.as_str(), entry.id.as_str())
        {
            *entry = endpoint;
        }
    }
    found
}

/// Reads the live state for `desired`.
pub async fn read_live(
    client: &Client,
    desired: &Desired,
    sinks: &SinkMap,
    concurrency: usize,
) -> Result<Live, ReadError> {
    let endpoints = client.list_endpoints().await?;
    let managed = managed_by_key(desired, &endpoints);

    let with_keys: Vec<&str> = desired
        .endpoints
        .iter()
        .filter(|(_, wanted)| !wanted.encryption_keys.is_empty())
        .filter_map(|(key, _)| managed.get(key).map(|live| live.id.as_str()))
        .collect();
    let keys: BTreeMap<String, _> = futures::stream::iter(with_keys)
        .map(|id| async move { client.list_keys(id).await.map(|keys| (id.to_owned(), keys)) })
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;

    let mut names_by_sink: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for (key, wanted) in &desired.endpoints {
        if managed.contains_key(key) {
            names_by_sink
                .entry(wanted.signing_secret.sink.as_str())
                .or_default()
                .push((key.clone(), wanted.signing_secret.name.clone()));
        }
    }
    let mut secret_present = BTreeMap::new();
    for (sink_name, entries) in names_by_sink {
        let Some(sink) = sinks.get(sink_name) else {
            continue;
        };
        let names: Vec<String> = entries.iter().map(|(_, name)| name.clone()).collect();
        let found = sink
            .contains_all(&names)
            .await
            .map_err(|source| ReadError::Sink {
                sink: sink_name.to_owned(),
                source,
            })?;
        for ((key, _), present) in entries.into_iter().zip(found) {
            if let Some(present) = present {
                secret_present.insert(key, present);
            }
        }
    }
    Ok(Live {
        endpoints,
        keys,
        secret_present,
    })
}
