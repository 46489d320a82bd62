//! Before the first API write: every sink the plan writes to must be writable now, so that a
//! store without credentials fails the run with nothing changed, not halfway through it.

use std::collections::BTreeSet;

use super::Target;
use crate::model::{Desired, SinkError};
use crate::plan::{KeyStep, Plan, SecretStep};

/// The sinks `plan` writes to: those of its secret steps (removals included), and the
/// signing-secret sink of an endpoint that registers a generated key, or keeps or removes a
/// replaced one's private half.
pub fn sinks_written(plan: &Plan, desired: &Desired) -> BTreeSet<String> {
    let mut sinks = BTreeSet::new();
    for change in &plan.changes {
        if let Some(step) = &change.secret {
            sinks.insert(step.sink().to_owned());
        }
        let generates = change.keys.iter().any(|step| {
            matches!(step, KeyStep::Register { generate, repair, .. } if *generate || repair.is_some())
                || matches!(step, KeyStep::Keep { .. } | KeyStep::RemoveKept { .. })
        });
        if generates && let Some(wanted) = desired.endpoints.get(&change.key) {
            sinks.insert(wanted.signing_secret.sink.clone());
        }
    }
    sinks
}

/// Asks every sink `plan` writes to whether it can be written; every failure, in sink order.
pub async fn check_sinks(target: &Target<'_>, plan: &Plan) -> Vec<SinkError> {
    let mut failures = Vec::new();
    for name in sinks_written(plan, target.desired) {
        let Some(sink) = target.sinks.get(&name) else {
            failures.push(SinkError::Store {
                sink: name,
                message: "is not declared in kayle-sync.yaml".to_owned(),
            });
            continue;
        };
        if let Err(e) = sink.check_writable().await {
            failures.push(e);
        }
    }
    // A reload that cannot run would fail only after the secret was written (a rotation
    // done, the receiver left on the old secret).
    let mut reloaded: BTreeSet<&str> = plan
        .changes
        .iter()
        .filter_map(|change| change.secret.as_ref())
        .filter(|step| step.reloads())
        .map(SecretStep::sink)
        .collect();
    for change in &plan.changes {
        let key_reloads = change
            .keys
            .iter()
            .any(|step| matches!(step, KeyStep::Register { reload: true, .. }));
        if key_reloads && let Some(wanted) = target.desired.endpoints.get(&change.key) {
            reloaded.insert(&wanted.signing_secret.sink);
        }
    }
    for name in reloaded {
        if let Some(reload) = target.sinks.reload(name)
            && let Err(e) = reload.check().await
        {
            failures.push(e);
        }
    }
    failures
}
