//! Reads the live state a plan needs: one paginated listing, the keys of endpoints whose
//! manifests declare keys, and whether readable sinks hold each managed secret.

use std::collections::BTreeMap;

use futures::{StreamExt, TryStreamExt};

use crate::api::{ApiError, Client};
use crate::model::{Desired, Live};
use crate::sink::Sinks;

/// Why the live state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The API refused or failed.
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Reads the live state for `desired`.
pub async fn read_live(
    client: &Client,
    desired: &Desired,
    sinks: &Sinks,
    concurrency: usize,
) -> Result<Live, ReadError> {
    let mut live = Live {
        endpoints: client.list_endpoints().await?,
        ..Live::default()
    };
    let managed: BTreeMap<String, String> = crate::plan::managed(&desired.project, &live)
        .into_iter()
        .map(|(key, endpoints)| (key, endpoints[0].id.clone()))
        .collect();

    // Keys are read for endpoints whose manifests declare keys: the managed endpoint, or the
    // one the manifest adopts while none is managed yet.
    let with_keys: Vec<&str> = desired
        .endpoints
        .iter()
        .filter(|(_, wanted)| !wanted.encryption_keys.is_empty())
        .filter_map(|(key, wanted)| match managed.get(key) {
            Some(id) => Some(id.as_str()),
            None => wanted
                .adopt
                .as_deref()
                .filter(|id| live.endpoints.iter().any(|e| e.id == *id)),
        })
        .collect();
    live.keys = futures::stream::iter(with_keys)
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
    for (sink_name, entries) in names_by_sink {
        let Some(sink) = sinks.get(sink_name) else {
            continue;
        };
        let names: Vec<String> = entries.iter().map(|(_, name)| name.clone()).collect();
        // A sink that cannot be read makes its secrets' presence unknown, not the plan
        // impossible: a pull-request job may hold no credentials for the store.
        let found = match sink.contains_all(&names).await {
            Ok(found) => found,
            Err(error) => {
                live.unreadable_sinks
                    .insert(sink_name.to_owned(), error.to_string());
                continue;
            }
        };
        for ((key, _), present) in entries.into_iter().zip(found) {
            if let Some(present) = present {
                live.secret_present.insert(key, present);
            }
        }
    }
    Ok(live)
}
