//! Building the plan: per key, compare the desired endpoint with the live ones carrying its
//! identity label.

use std::collections::BTreeSet;

use super::fields::{changed_fields, create_fields, desired_labels};
use super::identity::{applied_rotation, key_of, managed, secret_state, unique, unmanaged};
use super::keys::key_steps;
use super::undeclared::{self, Undeclared};
use super::{Action, Change, ChangeReason, KeyStep, Plan, RecoverReason, SecretStep};
use crate::model::{
    self, Desired, DesiredEndpoint, Field, FieldChange, Live, LiveEndpoint, Project, SecretState,
};

/// What the command line asks of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Delete managed endpoints that no manifest declares any more.
    pub prune: bool,
    /// Only these keys; empty means every key.
    pub targets: Vec<String>,
    /// The live state compared every readable sink's secret with the API's (the planner only
    /// reads the outcome from `Live`; a saved plan records it so it is re-planned alike).
    pub verify_secrets: bool,
}

impl PlanOptions {
    fn includes(&self, key: &str) -> bool {
        self.targets.is_empty() || self.targets.iter().any(|target| target == key)
    }
}

/// What must change for `live` to match `desired`.
///
/// Per key: a create when nothing live carries its identity label; an update with only the
/// fields that differ (and the secret and key steps) when something does; a delete, with
/// `prune`, of a managed endpoint no manifest declares; and, always, a delete of every
/// duplicate (the oldest endpoint of a key is kept). A key that needs nothing is left out.
pub fn plan(desired: &Desired, live: &Live, options: &PlanOptions) -> Plan {
    let project = &desired.project;
    let managed = managed(project, live);
    let keys: BTreeSet<&str> = desired
        .endpoints
        .keys()
        .chain(managed.keys())
        .map(String::as_str)
        .filter(|key| options.includes(key))
        .collect();

    let mut changes = Vec::new();
    let mut undeclared = Vec::new();
    let mut notes = Vec::new();
    for key in &keys {
        let endpoints = managed.get(*key).map(Vec::as_slice).unwrap_or_default();
        let (kept, duplicates) = match endpoints.split_first() {
            Some((kept, duplicates)) => (Some(*kept), duplicates),
            None => (None, &[][..]),
        };
        let change = match (desired.endpoints.get(*key), kept) {
            // An `adopt` that finds nothing creates nothing: a typo must not give the
            // receiver a second endpoint with a new secret.
            (Some(wanted), None) => match (adoptee(project, wanted, live), &wanted.adopt) {
                (Some(found), _) => adopt(project, wanted, found, live),
                (None, Some(_)) => None,
                (None, None) => Some(create(project, wanted)),
            },
            (Some(wanted), Some(kept)) => update(
                project,
                wanted,
                kept,
                live,
                (!duplicates.is_empty()).then_some(RecoverReason::DuplicatesRemoved),
            ),
            (None, Some(kept)) if options.prune => {
                let mut change = delete(key, kept, ChangeReason::Undeclared);
                match undeclared::removal(project, key) {
                    Ok(step) => change.secret = Some(step),
                    Err(why) => notes.push(why),
                }
                Some(change)
            }
            (None, Some(kept)) => {
                undeclared.push(Undeclared {
                    key: (*key).to_owned(),
                    endpoint_id: kept.id.clone(),
                });
                None
            }
            (None, None) => None,
        };
        changes.extend(change);
        // Duplicates of a key this directory does not declare belong to whoever declares it
        // (another directory may share the label prefix): resolved only with --prune.
        let ours = desired.endpoints.contains_key(*key) || options.prune;
        if let Some(kept) = kept.filter(|_| ours) {
            changes.extend(duplicates.iter().map(|duplicate| {
                let of = kept.id.clone();
                delete(key, duplicate, ChangeReason::Duplicate { of })
            }));
        }
    }

    let adopted: BTreeSet<&str> = changes
        .iter()
        .filter_map(|c| match &c.reason {
            Some(ChangeReason::Adopt { id }) => Some(id.as_str()),
            _ => None,
        })
        .collect();
    let unmanaged = unmanaged(project, live)
        .into_iter()
        .filter(|id| !adopted.contains(id.as_str()))
        .collect();
    let mut warnings = warnings(desired, live, options, &keys);
    warnings.extend(notes);
    // Apply keeps the plan to the end: no room to spare (10,000 changes were room for 16,384).
    changes.shrink_to_fit();
    Plan {
        changes,
        unmanaged,
        undeclared,
        warnings,
    }
}

/// The unmanaged live endpoint a manifest asks to adopt, if it is there.
fn adoptee<'a>(
    project: &Project,
    wanted: &DesiredEndpoint,
    live: &'a Live,
) -> Option<&'a LiveEndpoint> {
    let id = wanted.adopt.as_deref()?;
    unique(live)
        .into_iter()
        .find(|endpoint| endpoint.id == id && key_of(project, endpoint).is_none())
}

/// Brings an endpoint made elsewhere under management in place: an update that adds the
/// identity label, keeping its id, and writes its current secret (revealed) to the sink.
fn adopt(
    project: &Project,
    wanted: &DesiredEndpoint,
    found: &LiveEndpoint,
    live: &Live,
) -> Option<Change> {
    let mut change = update(project, wanted, found, live, Some(RecoverReason::Adopted))?;
    change.reason = Some(ChangeReason::Adopt {
        id: found.id.clone(),
    });
    Some(change)
}

fn create(project: &Project, wanted: &DesiredEndpoint) -> Change {
    let secret = &wanted.signing_secret;
    let mut fields = create_fields(project, wanted);
    if enable_blocked(wanted, None, &Live::default()) {
        hold_disabled(&mut fields);
    }
    Change {
        key: wanted.key.clone(),
        action: Action::Create,
        endpoint_id: None,
        reason: None,
        fields,
        secret: Some(SecretStep::Write {
            sink: secret.sink.clone(),
            name: secret.name.clone(),
            reload: project.reloads.contains_key(&secret.sink),
        }),
        keys: key_steps(wanted, &[], None, &[]),
    }
}

/// The update of a kept endpoint, or `None` when it already matches. `recover_secret` writes
/// the endpoint's current secret to the sink even when the sink seems to hold one (after
/// duplicates were removed, or on adoption).
fn update(
    project: &Project,
    wanted: &DesiredEndpoint,
    kept: &LiveEndpoint,
    live: &Live,
    recover_because: Option<RecoverReason>,
) -> Option<Change> {
    let spec = &wanted.signing_secret;
    let state = secret_state(project, kept);
    let applied = state.rotation();
    let secret_missing = live.secret_present.get(&wanted.key) == Some(&false);
    // An endpoint the manifest wants enabled but that is live disabled may be one whose
    // creation was interrupted before its secret reached the sink (a readable sink may even
    // hold an older value under that name), so its secret is written again before enabling.
    let blocked = enable_blocked(wanted, Some(kept), live);
    let enabling = wanted.enabled && !kept.enabled && !blocked;
    let recover = secret_missing
        .then_some(RecoverReason::MissingFromSink)
        .or(live
            .secret_differs
            .contains(&wanted.key)
            .then_some(RecoverReason::DiffersFromApi))
        .or(recover_because)
        .or(enabling.then_some(RecoverReason::BeforeEnabling));
    let unsettled_until = match state {
        SecretState::Unsettled { until, .. } => Some(until),
        SecretState::Settled { .. } => None,
    };
    // A counter moved back below the applied rotation rotates nothing and keeps the label: the
    // label records what the secret in the sink is.
    let reload = project.reloads.contains_key(&spec.sink);
    let secret = if spec.rotation > applied {
        Some(SecretStep::Rotate {
            sink: spec.sink.clone(),
            name: spec.name.clone(),
            from: applied,
            to: spec.rotation,
            unsettled_until,
            reload,
        })
    } else if let Some(until) = unsettled_until {
        Some(SecretStep::Verify {
            sink: spec.sink.clone(),
            name: spec.name.clone(),
            rotation: applied,
            until,
            reload,
        })
    } else {
        recover.map(|because| SecretStep::Recover {
            sink: spec.sink.clone(),
            name: spec.name.clone(),
            because,
            reload,
        })
    };
    let live_keys = live
        .keys
        .get(&kept.id)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut keys = key_steps(
        wanted,
        live_keys,
        live.private_keys.get(&wanted.key),
        live.kept_keys
            .get(&wanted.key)
            .map(Vec::as_slice)
            .unwrap_or_default(),
    );
    // The receiver must hold a new private half before deliveries are encrypted to it.
    for step in &mut keys {
        if let KeyStep::Register {
            generate: true,
            reload,
            ..
        } = step
        {
            *reload = project.reloads.contains_key(&spec.sink);
        }
    }
    let mut fields = changed_fields(project, wanted, kept);
    if blocked {
        fields.retain(|change| change.field() != Field::Enabled);
    }
    let change = Change {
        key: wanted.key.clone(),
        action: Action::Update,
        endpoint_id: Some(kept.id.clone()),
        reason: None,
        fields,
        secret,
        keys,
    };
    let needed = !change.fields.is_empty() || change.secret.is_some() || !change.keys.is_empty();
    needed.then_some(change)
}

/// Whether the manifest wants the endpoint enabled, but it would have no active encryption key:
/// it declares none, and the live endpoint (if any) is disabled with none registered active.
/// Enabled like that, every event would be lost for good, so it is kept disabled.
fn enable_blocked(wanted: &DesiredEndpoint, kept: Option<&LiveEndpoint>, live: &Live) -> bool {
    let has_active_key = |kept: &LiveEndpoint| {
        live.keys
            .get(&kept.id)
            .is_some_and(|keys| keys.iter().any(|key| key.is_active))
    };
    wanted.enabled
        && wanted.encryption_keys.is_empty()
        && kept.is_none_or(|kept| !kept.enabled && !has_active_key(kept))
}

/// A create's fields with `enabled: false`.
fn hold_disabled(fields: &mut [FieldChange]) {
    for change in fields {
        if let FieldChange::Enabled { after, .. } = change {
            *after = false;
        }
    }
}

fn delete(key: &str, endpoint: &LiveEndpoint, reason: ChangeReason) -> Change {
    Change {
        key: key.to_owned(),
        action: Action::Delete,
        endpoint_id: Some(endpoint.id.clone()),
        reason: Some(reason),
        fields: Vec::new(),
        secret: None,
        keys: Vec::new(),
    }
}

fn warnings(
    desired: &Desired,
    live: &Live,
    options: &PlanOptions,
    keys: &BTreeSet<&str>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for (sink, reason) in &live.unreadable_sinks {
        warnings.push(format!(
            "sink {sink} could not be read ({reason}); whether it holds its secrets is unknown"
        ));
    }
    for target in &options.targets {
        if !keys.contains(target.as_str()) {
            warnings.push(format!(
                "--target {target} names no declared or managed endpoint"
            ));
        }
    }
    let managed = managed(&desired.project, live);
    for wanted in desired
        .endpoints
        .values()
        .filter(|e| keys.contains(e.key.as_str()))
    {
        if let Some(id) = &wanted.adopt
            && !managed.contains_key(&wanted.key)
            && adoptee(&desired.project, wanted, live).is_none()
        {
            warnings.push(format!(
                "{}: adopt {id}: no unmanaged endpoint has that id, so nothing is done for it; \
                 fix the id, or remove `adopt` to create a new endpoint",
                wanted.key
            ));
        }
        if !managed.contains_key(&wanted.key) && wanted.adopt.is_none() {
            let twin = unique(live).into_iter().find(|endpoint| {
                endpoint.url == wanted.url && key_of(&desired.project, endpoint).is_none()
            });
            if let Some(twin) = twin {
                warnings.push(format!(
                    "{}: {} already has this URL and is not managed; to take it over instead of \
                     creating a second endpoint, add `adopt: {}`",
                    wanted.key, twin.id, twin.id
                ));
            }
        }
        let kept = managed
            .get(&wanted.key)
            .and_then(|endpoints| endpoints.first());
        let live_keys = kept
            .and_then(|kept| live.keys.get(&kept.id))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for key_id in super::keys::changed_material(wanted, live_keys) {
            warnings.push(format!(
                "{}: key {key_id} is registered with other key material than its file now holds; \
                 a key_id names one key for good, so give the new key a new key_id (listed last) \
                 to rotate to it",
                wanted.key
            ));
        }
        let kept_keys = live.kept_keys.get(&wanted.key).map(Vec::as_slice);
        if let (Some(name), Some(active)) = (
            super::keys::given_back(wanted, kept_keys.unwrap_or_default()),
            wanted.active_key(),
        ) {
            warnings.push(format!(
                "{}: key {} was replaced, and sink {} keeps its private key as {name}; a key_id \
                 names one key for good, so its keys are left as they are: give the active key \
                 a new key_id",
                wanted.key, active.key_id, wanted.signing_secret.sink
            ));
        }
        if live.private_keys.get(&wanted.key) == Some(&model::PrivateKeyHalf::Unusable)
            && let Some(active) = wanted.active_key()
        {
            // Registering the key needs its private half: the apply would stop at it.
            let outcome = if live_keys.iter().any(|key| key.key_id == active.key_id) {
                "it is left as it is, and the registered key is not checked against it"
            } else {
                "the key cannot be registered, and apply fails for this endpoint, until that \
                 value is removed from the sink (a new key is then generated) or replaced with \
                 the key's RSA private key"
            };
            warnings.push(format!(
                "{}: sink {} holds something under the private key name of key {} that is not \
                 a usable private key; {outcome}",
                wanted.key, wanted.signing_secret.sink, active.key_id
            ));
        }
        let target = kept
            .copied()
            .or_else(|| adoptee(&desired.project, wanted, live));
        if enable_blocked(wanted, target, live) {
            warnings.push(format!(
                "{} is not enabled: it has no active encryption key, and an enabled endpoint \
                 without one loses every event for good; declare a key under \
                 `encryption_keys`, or set `enabled: false`",
                wanted.key
            ));
        } else if wanted.enabled && wanted.encryption_keys.is_empty() {
            warnings.push(format!(
                "{} is enabled but declares no encryption key: unless one is registered \
                 elsewhere, every delivery fails and its events are lost",
                wanted.key
            ));
        }
        // The identity label, and one slot for the secret-state label.
        let labels = desired_labels(&desired.project, wanted).len() + 1;
        if labels > model::MAX_LABELS {
            warnings.push(format!(
                "{}: {labels} labels with the identity and secret-state labels, the API keeps at \
                 most {}; declare fewer labels or the write is refused",
                wanted.key,
                model::MAX_LABELS
            ));
        }
        let applied = managed
            .get(&wanted.key)
            .and_then(|endpoints| endpoints.first())
            .map(|kept| applied_rotation(&desired.project, kept))
            .unwrap_or(0);
        if wanted.signing_secret.rotation < applied {
            warnings.push(format!(
                "{}: signing_secret.rotation is {} but rotation {applied} was already applied; \
                 nothing rotates until it is above {applied}",
                wanted.key, wanted.signing_secret.rotation
            ));
        }
    }
    warnings
}
