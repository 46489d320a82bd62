//! The encryption-key steps that make an endpoint's keys match its manifest.
//!
//! The steps model the real server: registering a key makes it the active one and deactivates
//! the key that was active, and reactivating a key deactivates the others. So a register or a
//! reactivate never needs a deactivate after it, and only one key is ever active once the steps
//! have run. Keys are never deleted: an old key stays registered, inactive, so its private key
//! can still decrypt history.

use super::{KeyRepair, KeyStep};
use crate::model::{DesiredEndpoint, KeyMaterial, LiveKey, PrivateKeyHalf, RsaPublicJwk};

/// Keys of `desired` registered under their `key_id` with other key material: a `key_id`
/// names one key for good (history was encrypted to it), so a changed file under the same id
/// is reported, never registered over it.
pub(crate) fn changed_material(desired: &DesiredEndpoint, live: &[LiveKey]) -> Vec<String> {
    desired
        .encryption_keys
        .iter()
        .filter_map(|key| {
            let KeyMaterial::Public(wanted) = &key.material else {
                return None;
            };
            let registered = registered(live, &key.key_id)?;
            (matches_jwk(registered, wanted) == Some(false)).then(|| key.key_id.clone())
        })
        .collect()
}

/// Whether a registered key's public JWK is `wanted`; `None` when the listing has no JWK.
fn matches_jwk(registered: &LiveKey, wanted: &RsaPublicJwk) -> Option<bool> {
    let jwk = registered.jwk.as_ref()?;
    Some(
        jwk.get("n").and_then(|n| n.as_str()) == Some(wanted.n.as_str())
            && jwk.get("e").and_then(|e| e.as_str()) == Some(wanted.e.as_str()),
    )
}

/// Why the registered active key must be registered again, if it must: it is generated, and
/// the private key its sink holds is another one, or none. A sink that could not be read
/// (`half` is `None`) or holds something unusable repairs nothing.
pub(crate) fn repair(
    desired: &DesiredEndpoint,
    live: &[LiveKey],
    half: Option<&PrivateKeyHalf>,
) -> Option<KeyRepair> {
    let active = desired.active_key()?;
    if !matches!(active.material, KeyMaterial::Generate { .. }) {
        return None;
    }
    let registered = registered(live, &active.key_id)?;
    match half? {
        PrivateKeyHalf::Missing => Some(KeyRepair::MissingFromSink),
        PrivateKeyHalf::Holds(public) => {
            (matches_jwk(registered, public) == Some(false)).then_some(KeyRepair::DiffersFromSink)
        }
        PrivateKeyHalf::Unusable => None,
    }
}

/// The steps for one endpoint, in the order they must run. `live` is the endpoint's keys as
/// listed (newest first), empty when none are registered or the endpoint is new.
///
/// A manifest that declares no key leaves the endpoint's keys alone.
///
/// `half` is what the sink holds for a generated active key (see [`PrivateKeyHalf`]): when it
/// is not the registered key, the active key is registered again, last, from the sink's key.
pub(crate) fn key_steps(
    desired: &DesiredEndpoint,
    live: &[LiveKey],
    half: Option<&PrivateKeyHalf>,
) -> Vec<KeyStep> {
    let Some(active) = desired.active_key() else {
        return Vec::new();
    };
    let mut steps: Vec<KeyStep> = desired
        .encryption_keys
        .iter()
        .filter(|key| registered(live, &key.key_id).is_none())
        .map(|key| KeyStep::Register {
            key_id: key.key_id.clone(),
            generate: matches!(key.material, KeyMaterial::Generate { .. }),
            repair: None,
        })
        .collect();

    if let Some(repair) = repair(desired, live, half) {
        // Registering makes it the active key, so nothing needs switching after it.
        steps.push(KeyStep::Register {
            key_id: active.key_id.clone(),
            generate: true,
            repair: Some(repair),
        });
        return steps;
    }

    match registered(live, &active.key_id) {
        // Not registered: it is registered last above, which leaves it the only active key.
        None => {}
        // A register above made another key active, or it is inactive: switch back to it.
        Some(key) if !steps.is_empty() || !key.is_active => steps.push(KeyStep::Reactivate {
            key_id: key.key_id.clone(),
            id: key.id.clone(),
        }),
        // Already active: any other active key (a server that let two be active, or a key no
        // entry names) is switched off.
        Some(key) => steps.extend(
            live.iter()
                .filter(|other| other.is_active && other.id != key.id)
                .map(|other| KeyStep::Deactivate {
                    key_id: other.key_id.clone(),
                    id: other.id.clone(),
                }),
        ),
    }
    steps
}

/// The registered key with this `key_id`: the newest (key ids are not unique on the server; a
/// retried create can leave two). Ties keep listing order, which is newest first.
fn registered<'a>(live: &'a [LiveKey], key_id: &str) -> Option<&'a LiveKey> {
    live.iter()
        .filter(|key| key.key_id == key_id)
        .fold(None, |newest: Option<&LiveKey>, key| match newest {
            Some(newest) if newest_time(newest) >= newest_time(key) => Some(newest),
            _ => Some(key),
        })
}

fn newest_time(key: &LiveKey) -> (Option<jiff::Timestamp>, &str) {
    (key.created_at.parse().ok(), key.created_at.as_str())
}
