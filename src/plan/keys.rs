//! The encryption-key steps that make an endpoint's keys match its manifest.
//!
//! The steps model the real server: registering a key makes it the active one and deactivates
//! the key that was active, and reactivating a key deactivates the others. So a register or a
//! reactivate never needs a deactivate after it, and only one key is ever active once the steps
//! have run. Keys are never deleted: an old key stays registered, inactive, so its private key
//! can still decrypt history.
//!
//! A generated key replaced by another (its `key_id` changed) leaves its private half in the
//! sink under its own name until no delivery encrypted to it can be sent, then it is removed.

use super::{KeyRepair, KeyStep};
use crate::model::{
    DesiredEndpoint, KeptKey, KeyMaterial, LiveKey, PrivateKeyHalf, RsaPublicJwk, kept_key_name,
};

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
///
/// `kept` is what the sink keeps of replaced keys: those no delivery can need any more are
/// removed, last.
pub(crate) fn key_steps(
    desired: &DesiredEndpoint,
    live: &[LiveKey],
    half: Option<&PrivateKeyHalf>,
    kept: &[KeptKey],
) -> Vec<KeyStep> {
    let Some(active) = desired.active_key() else {
        return Vec::new();
    };
    if given_back(desired, kept).is_some() {
        return Vec::new();
    }
    let mut steps = keep_steps(desired, live, half);
    let replaces = steps.iter().find_map(|step| match step {
        KeyStep::Keep { key_id, .. } => Some(key_id.clone()),
        _ => None,
    });
    steps.extend(
        desired
            .encryption_keys
            .iter()
            .filter(|key| registered(live, &key.key_id).is_none())
            .map(|key| KeyStep::Register {
                key_id: key.key_id.clone(),
                generate: matches!(key.material, KeyMaterial::Generate { .. }),
                repair: None,
                replaces: replaces.clone().filter(|_| key.key_id == active.key_id),
                reload: false,
            }),
    );
    let removals = kept
        .iter()
        .filter(|kept| kept.done && kept.key_id != active.key_id)
        .map(|kept| KeyStep::RemoveKept {
            key_id: kept.key_id.clone(),
            name: kept.name.clone(),
        });

    if let Some(repair) = repair(desired, live, half) {
        // Registering makes it the active key, so nothing needs switching after it.
        steps.push(KeyStep::Register {
            key_id: active.key_id.clone(),
            generate: true,
            repair: Some(repair),
            replaces: None,
            reload: false,
        });
        steps.extend(removals);
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
    steps.extend(removals);
    steps
}

/// The name under which the sink keeps the active key's private half as a replaced key's:
/// its `key_id` was given back to a replaced key. Its deliveries (old and new) would share
/// one `kid` with two private keys, so nothing is done, and the plan warns.
pub(crate) fn given_back<'a>(desired: &DesiredEndpoint, kept: &'a [KeptKey]) -> Option<&'a str> {
    let active = desired.active_key()?;
    kept.iter()
        .find(|kept| kept.key_id == active.key_id)
        .map(|kept| kept.name.as_str())
}

/// The steps that keep the private half the sink holds for a generated key being replaced:
/// the active key is generated and not registered yet, and the sink holds, under its private
/// key name, the private half of registered keys with other ids (one, unless the same key was
/// registered under several ids). A listing without JWKs cannot tell, and keeps nothing: the
/// held key is then registered under the new id too, so nothing is lost either.
fn keep_steps(
    desired: &DesiredEndpoint,
    live: &[LiveKey],
    half: Option<&PrivateKeyHalf>,
) -> Vec<KeyStep> {
    let Some(active) = desired.active_key() else {
        return Vec::new();
    };
    let (KeyMaterial::Generate { private_key_name }, Some(PrivateKeyHalf::Holds(public))) =
        (&active.material, half)
    else {
        return Vec::new();
    };
    if registered(live, &active.key_id).is_some() {
        return Vec::new();
    }
    let mut key_ids: Vec<&str> = live
        .iter()
        .filter(|key| key.key_id != active.key_id && matches_jwk(key, public) == Some(true))
        .map(|key| key.key_id.as_str())
        .collect();
    key_ids.sort_unstable();
    key_ids.dedup();
    key_ids
        .into_iter()
        .map(|key_id| KeyStep::Keep {
            key_id: key_id.to_owned(),
            name: kept_key_name(private_key_name, key_id),
        })
        .collect()
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
