//! The encryption-key steps that make an endpoint's keys match its manifest.
//!
//! The steps model the real server: registering a key makes it the active one and deactivates
//! the key that was active, and reactivating a key deactivates the others. So a register or a
//! reactivate never needs a deactivate after it, and only one key is ever active once the steps
//! have run. Keys are never deleted: an old key stays registered, inactive, so its private key
//! can still decrypt history.

use super::KeyStep;
use crate::model::{DesiredEndpoint, KeyMaterial, LiveKey};

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
            let jwk = registered(live, &key.key_id)?.jwk.as_ref()?;
            let same = jwk.get("n").and_then(|n| n.as_str()) == Some(wanted.n.as_str())
                && jwk.get("e").and_then(|e| e.as_str()) == Some(wanted.e.as_str());
            (!same).then(|| key.key_id.clone())
        })
        .collect()
}

/// The steps for one endpoint, in the order they must run. `live` is the endpoint's keys as
/// listed (newest first), empty when none are registered or the endpoint is new.
///
/// A manifest that declares no key leaves the endpoint's keys alone.
pub(crate) fn key_steps(desired: &DesiredEndpoint, live: &[LiveKey]) -> Vec<KeyStep> {
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
        })
        .collect();

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
