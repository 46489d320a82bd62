//! Building the plan: per key, compare the desired endpoint with the live ones carrying its
//! identity label.

use std::collections::BTreeSet;

use super::fields::{changed_fields, create_fields, desired_labels};
use super::identity::{applied_rotation, managed, unmanaged};
use super::keys::key_steps;
use super::{Action, Change, Plan, SecretStep};
use crate::model::{self, Desired, DesiredEndpoint, Live, LiveEndpoint, Project};

/// What the command line asks of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Delete managed endpoints that no manifest declares any more.
    pub prune: bool,
    /// Only these keys; empty means every key.
    pub targets: Vec<String>,
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
    for key in &keys {
        let endpoints = managed.get(*key).map(Vec::as_slice).unwrap_or_default();
        let (kept, duplicates) = match endpoints.split_first() {
            Some((kept, duplicates)) => (Some(*kept), duplicates),
            None => (None, &[][..]),
        };
        let change = match (desired.endpoints.get(*key), kept) {
            (Some(wanted), None) => Some(create(project, wanted)),
            (Some(wanted), Some(kept)) => {
                update(project, wanted, kept, live, !duplicates.is_empty())
            }
            (None, Some(kept)) if options.prune => {
                Some(delete(key, kept, "no longer declared".to_owned()))
            }
            (None, _) => None,
        };
        changes.extend(change);
        if let Some(kept) = kept {
            changes.extend(
                duplicates
                    .iter()
                    .map(|duplicate| delete(key, duplicate, format!("duplicate of {}", kept.id))),
            );
        }
    }

    Plan {
        changes,
        unmanaged: unmanaged(project, live),
        warnings: warnings(desired, live, options, &keys),
    }
}

fn create(project: &Project, wanted: &DesiredEndpoint) -> Change {
    let secret = &wanted.signing_secret;
    Change {
        key: wanted.key.clone(),
        action: Action::Create,
        endpoint_id: None,
        reason: None,
        fields: create_fields(project, wanted, secret.rotation),
        secret: Some(SecretStep::Write {
            sink: secret.sink.clone(),
            name: secret.name.clone(),
        }),
        keys: key_steps(wanted, &[]),
    }
}

/// The update of a kept endpoint, or `None` when it already matches.
fn update(
    project: &Project,
    wanted: &DesiredEndpoint,
    kept: &LiveEndpoint,
    live: &Live,
    had_duplicates: bool,
) -> Option<Change> {
    let spec = &wanted.signing_secret;
    let applied = applied_rotation(project, kept);
    // A counter moved back below the applied rotation rotates nothing and keeps the label: the
    // label records what the secret in the sink is.
    let rotation = spec.rotation.max(applied);
    let secret_missing = live.secret_present.get(&wanted.key) == Some(&false);
    // A sink that cannot be read (a command) cannot say that it lacks the secret. An apply that
    // stopped between creating an endpoint and writing its secret leaves the endpoint disabled,
    // so the secret is written again (revealed, then put) before such an endpoint is enabled:
    // one reveal, and never an enabled endpoint whose secret no sink may hold.
    let enabling_unchecked =
        wanted.enabled && !kept.enabled && !live.secret_present.contains_key(&wanted.key);
    let secret = if spec.rotation > applied {
        Some(SecretStep::Rotate {
            sink: spec.sink.clone(),
            name: spec.name.clone(),
            from: applied,
            to: spec.rotation,
        })
    } else if secret_missing || had_duplicates || enabling_unchecked {
        Some(SecretStep::Recover {
            sink: spec.sink.clone(),
            name: spec.name.clone(),
        })
    } else {
        None
    };
    let live_keys = live
        .keys
        .get(&kept.id)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let change = Change {
        key: wanted.key.clone(),
        action: Action::Update,
        endpoint_id: Some(kept.id.clone()),
        reason: None,
        fields: changed_fields(project, wanted, kept, rotation),
        secret,
        keys: key_steps(wanted, live_keys),
    };
    let needed = !change.fields.is_empty() || change.secret.is_some() || !change.keys.is_empty();
    needed.then_some(change)
}

fn delete(key: &str, endpoint: &LiveEndpoint, reason: String) -> Change {
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
        if wanted.enabled && wanted.encryption_keys.is_empty() {
            warnings.push(format!(
                "{} is enabled but declares no encryption key: unless one is registered \
                 elsewhere, every delivery fails and its events are lost",
                wanted.key
            ));
        }
        let labels = desired_labels(&desired.project, wanted, wanted.signing_secret.rotation);
        if labels.len() > model::MAX_LABELS {
            warnings.push(format!(
                "{}: {} labels with the identity and rotation labels, the API keeps at most {}; \
                 declare fewer labels or the write is refused",
                wanted.key,
                labels.len(),
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
