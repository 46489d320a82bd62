//! Reads the live state a plan needs: one paginated listing, the keys of endpoints whose
//! manifests declare keys, whether readable sinks hold each managed secret (and, in the same
//! question, replaced keys' private halves), which private key they hold for generated keys,
//! and, when asked, whether the secrets they hold are the API's.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, TryStreamExt};
use secrecy::{ExposeSecret, SecretString};

use super::kept;
use super::{ReadApi, ReadError, ReadOptions};
use crate::api::ApiError;
use crate::apply::keys::public_half;
use crate::model::{Desired, KeyMaterial, Live, LiveEndpoint, LiveKey, PrivateKeyHalf};
use crate::sink::Sinks;

/// Reads the live state for `desired`.
pub async fn read_live(
    client: &impl ReadApi,
    desired: &Desired,
    sinks: &Sinks,
    options: ReadOptions,
) -> Result<Live, ReadError> {
    let concurrency = options.concurrency.max(1);
    let mut live = Live {
        endpoints: client.list_endpoints().await?,
        ..Live::default()
    };
    let managed: BTreeMap<String, Managed> = crate::plan::managed(&desired.project, &live)
        .into_iter()
        .map(|(key, endpoints)| (key, Managed::of(endpoints[0])))
        .collect();

    // Keys are read for endpoints whose manifests declare keys: the managed endpoint, or the
    // one the manifest adopts while none is managed yet. And for a disabled endpoint the
    // manifest wants enabled without declaring a key: it is enabled only if one is active.
    let with_keys: Vec<String> = desired
        .endpoints
        .iter()
        .filter_map(|(key, wanted)| {
            let (id, enabled) = managed
                .get(key)
                .map(|m| (m.id.clone(), m.enabled))
                .or_else(|| {
                    let id = wanted.adopt.as_deref()?;
                    let adopted = live.endpoints.iter().find(|e| e.id == id)?;
                    Some((adopted.id.clone(), adopted.enabled))
                })?;
            let enabling_blind = wanted.encryption_keys.is_empty() && wanted.enabled && !enabled;
            (!wanted.encryption_keys.is_empty() || enabling_blind).then_some(id)
        })
        .collect();
    let keys: BTreeMap<String, Vec<LiveKey>> = futures::stream::iter(with_keys)
        .map(|id| async move { client.list_keys(&id).await.map(|keys| (id, keys)) })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;

    let mut presence = Vec::new();
    let mut private_keys = Vec::new();
    for (key, wanted) in &desired.endpoints {
        if !managed.contains_key(key) {
            continue;
        }
        let sink = wanted.signing_secret.sink.as_str();
        presence.push((sink, key.as_str(), wanted.signing_secret.name.as_str()));
        if let Some(KeyMaterial::Generate { private_key_name }) =
            wanted.active_key().map(|active| &active.material)
        {
            private_keys.push((sink, key.as_str(), private_key_name.as_str()));
        }
    }
    let kept = match options.kept_keys {
        Some(_) => kept::candidates(desired, &keys, &managed),
        None => Vec::new(),
    };
    // The kept names go in the signing secrets' batch: one question to each sink.
    let asked: Vec<(&str, Asked, &str)> = presence
        .iter()
        .map(|&(sink, key, name)| (sink, Asked::Secret(key), name))
        .chain(
            kept.iter()
                .enumerate()
                .map(|(i, candidate)| (candidate.sink, Asked::Kept(i), candidate.name.as_str())),
        )
        .collect();
    let unreadable = &mut live.unreadable_sinks;
    let mut held_kept = Vec::new();
    for (asked, held) in read_sinks(sinks, &asked, Ask::Presence, unreadable).await {
        let Some(held) = held else {
            continue;
        };
        let present = match held {
            Held::Present(present) => present,
            Held::Value(value) => value.is_some(),
        };
        match asked {
            Asked::Secret(key) => {
                live.secret_present.insert(key.to_owned(), present);
            }
            Asked::Kept(i) if present => held_kept.push(&kept[i]),
            Asked::Kept(_) => {}
        }
    }
    live.private_keys = read_sinks(sinks, &private_keys, Ask::Values, unreadable)
        .await
        .into_iter()
        .filter_map(|(key, held)| {
            let Held::Value(value) = held? else {
                return None;
            };
            let half = match value {
                None => PrivateKeyHalf::Missing,
                Some(pem) => {
                    public_half(&pem).map_or(PrivateKeyHalf::Unusable, PrivateKeyHalf::Holds)
                }
            };
            Some((key.to_owned(), half))
        })
        .collect();
    if let Some(retention) = options.kept_keys {
        live.kept_keys = kept::judge(client, &held_kept, &keys, retention).await?;
    }
    live.keys = keys;

    if options.verify_secrets {
        (live.secret_differs, live.secret_compared) =
            differing_secrets(client, &presence, &managed, sinks, concurrency).await?;
    }
    Ok(live)
}

/// What the read needs of a key's managed endpoint (the one of its endpoints it keeps).
pub(super) struct Managed {
    pub(super) id: String,
    pub(super) enabled: bool,
    /// How long Kayle keeps a failed delivery's payload, and so may be asked to retry it.
    pub(super) payload_retention_hours: u32,
}

impl Managed {
    fn of(endpoint: &LiveEndpoint) -> Managed {
        Managed {
            id: endpoint.id.clone(),
            enabled: endpoint.enabled,
            payload_retention_hours: endpoint.undelivered_payload_retention_hours,
        }
    }
}

/// What one name in the presence batch is asked for.
#[derive(Debug, Clone, Copy)]
enum Asked<'a> {
    /// The signing secret of this endpoint key.
    Secret(&'a str),
    /// The kept name of this candidate (see [`kept::candidates`]).
    Kept(usize),
}

/// How a plan asks one sink about many names: `None` for each name it cannot tell about.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ask {
    /// Whether a value is held ([`SecretSink::contains_all`]): a store may let a pull-request
    /// job see that without letting it read values.
    Presence,
    /// The values held ([`SecretSink::read_all`]).
    Values,
}

/// What a sink answered about one name.
pub(super) enum Held {
    Present(bool),
    Value(Option<SecretString>),
}

/// What readable sinks say about each `(sink, key, name)`, by key: `None` for a write-only or
/// unreadable sink (the reason goes to `unreadable`).
///
/// A sink that cannot be read makes its values unknown, not the plan impossible: a
/// pull-request job may hold no credentials for the store.
pub(super) async fn read_sinks<K: Copy>(
    sinks: &Sinks,
    wanted: &[(&str, K, &str)],
    ask: Ask,
    unreadable: &mut BTreeMap<String, String>,
) -> Vec<(K, Option<Held>)> {
    // Borrowed, not copied: at 10,000 endpoints each copy of the names is a megabyte.
    let mut by_sink: BTreeMap<&str, Vec<(K, &str)>> = BTreeMap::new();
    for &(sink, key, name) in wanted {
        by_sink.entry(sink).or_default().push((key, name));
    }
    let mut found = Vec::new();
    for (sink_name, entries) in by_sink {
        let Some(sink) = sinks.get(sink_name) else {
            continue;
        };
        let names: Vec<String> = entries.iter().map(|(_, name)| (*name).to_owned()).collect();
        let answers: Result<Vec<Option<Held>>, _> = match ask {
            Ask::Presence => sink.contains_all(&names).await.map(|found| {
                found
                    .into_iter()
                    .map(|present| present.map(Held::Present))
                    .collect()
            }),
            Ask::Values => sink.read_all(&names).await.map(|values| match values {
                Some(values) => values.into_iter().map(|v| Some(Held::Value(v))).collect(),
                None => names.iter().map(|_| None).collect(),
            }),
        };
        let answers = answers.unwrap_or_else(|error| {
            unreadable.insert(sink_name.to_owned(), error.to_string());
            names.iter().map(|_| None).collect()
        });
        found.extend(entries.into_iter().map(|(key, _)| key).zip(answers));
    }
    found
}

/// Keys whose readable sink holds a secret other than the one the API reveals (one reveal
/// per endpoint whose sink could be read), and every key compared. A missing secret is
/// reported by presence already.
async fn differing_secrets(
    client: &impl ReadApi,
    wanted: &[(&str, &str, &str)],
    managed: &BTreeMap<String, Managed>,
    sinks: &Sinks,
    concurrency: usize,
) -> Result<(BTreeSet<String>, BTreeSet<String>), ReadError> {
    let mut unreadable = BTreeMap::new();
    let held: Vec<(String, SecretString)> = read_sinks(sinks, wanted, Ask::Values, &mut unreadable)
        .await
        .into_iter()
        .filter_map(|(key, held)| match held? {
            Held::Value(value) => Some((key.to_owned(), value?)),
            Held::Present(_) => None,
        })
        .collect();
    let compared = held.iter().map(|(key, _)| key.clone()).collect();
    let differing: Vec<Option<String>> = futures::stream::iter(held)
        .map(|(key, held)| async move {
            let current = client.reveal_secret(&managed[&key].id).await?;
            let same = current.expose_secret() == held.expose_secret();
            Ok::<_, ApiError>((!same).then_some(key))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    Ok((differing.into_iter().flatten().collect(), compared))
}
