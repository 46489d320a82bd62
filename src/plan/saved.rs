//! A plan saved with `plan --out` and loaded with `apply --plan`: the plan, the options it was
//! made with and the fingerprint of the live state it was computed from. It holds no secret: a
//! plan never does.

use serde::{Deserialize, Serialize};

use super::{Action, Change, FORMAT_VERSION, KeyStep, Plan, PlanOptions};

/// The contents of a `--out` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: u32,
    /// [`super::fingerprint`] of the live state the plan was computed from.
    pub fingerprint: String,
    /// `--prune` as the plan was made: `apply --plan` plans again the same way to check that
    /// the saved plan is still exactly what would be done.
    #[serde(default)]
    pub prune: bool,
    /// `--target` keys as the plan was made (empty: every key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// `--verify-secrets` as the plan was made.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verify_secrets: bool,
    pub plan: Plan,
}

impl SavedPlan {
    /// The options the plan was made with.
    pub fn options(&self) -> PlanOptions {
        PlanOptions {
            prune: self.prune,
            targets: self.targets.clone(),
            verify_secrets: self.verify_secrets,
        }
    }
}

/// How the plan made again by `apply --plan` compares with the saved one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replanned {
    /// The same plan.
    Same,
    /// The same, but for replaced keys kept in a sink that may go since the plan was saved
    /// (their `key_id`s): nobody reviewed their removal, so the saved plan is applied as it is
    /// and they wait for the next plan.
    KeptKeysRemovable(Vec<String>),
    /// The same, but for replaced keys the saved plan removes that are needed again (a
    /// delivery encrypted to them can be sent): the saved plan must not be applied.
    KeptKeysNeeded(Vec<String>),
    /// Something else differs.
    Differs,
}

/// How `fresh`, planned again now, compares with `saved`.
pub fn replanned(saved: &Plan, fresh: &Plan) -> Replanned {
    if saved == fresh {
        return Replanned::Same;
    }
    let (trimmed, removable) = without_removals_absent_from(fresh, saved);
    if !removable.is_empty() && trimmed == *saved {
        return Replanned::KeptKeysRemovable(removable);
    }
    let (trimmed, needed) = without_removals_absent_from(saved, fresh);
    if !needed.is_empty() && trimmed == *fresh {
        return Replanned::KeptKeysNeeded(needed);
    }
    Replanned::Differs
}

/// `plan` without the kept-key removals `other` does not make for the same endpoint key, and
/// the `key_id`s of those; an update left with nothing to do goes too.
fn without_removals_absent_from(plan: &Plan, other: &Plan) -> (Plan, Vec<String>) {
    let mut trimmed = plan.clone();
    let mut left_out = Vec::new();
    trimmed.changes.retain_mut(|change| {
        let theirs = other.changes.iter().find(|c| c.key == change.key);
        change.keys.retain(|step| {
            let absent = matches!(step, KeyStep::RemoveKept { .. })
                && theirs.is_none_or(|theirs| !theirs.keys.contains(step));
            if let (true, KeyStep::RemoveKept { key_id, .. }) = (absent, step) {
                left_out.push(key_id.clone());
            }
            !absent
        });
        !is_idle_update(change)
    });
    (trimmed, left_out)
}

/// An update with nothing to do: the planner leaves such a change out.
fn is_idle_update(change: &Change) -> bool {
    change.action == Action::Update
        && change.fields.is_empty()
        && change.secret.is_none()
        && change.keys.is_empty()
}

/// Why a saved plan cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    /// The file is not a saved plan.
    #[error("not a kayle-sync plan file")]
    Malformed(#[source] serde_json::Error),
    /// The file was written by a kayle-sync with another plan format.
    #[error(
        "plan file has format_version {found}, this kayle-sync reads {FORMAT_VERSION}; run plan again"
    )]
    UnsupportedVersion {
        /// The version the file declares.
        found: u32,
    },
}

/// The JSON text of a saved plan (pretty, with a trailing newline).
pub fn to_saved(plan: &Plan, fingerprint: &str, options: &PlanOptions) -> String {
    let saved = SavedPlan {
        format_version: FORMAT_VERSION,
        fingerprint: fingerprint.to_owned(),
        prune: options.prune,
        targets: options.targets.clone(),
        verify_secrets: options.verify_secrets,
        plan: plan.clone(),
    };
    let mut text = serde_json::to_string_pretty(&saved).expect("plain data serializes");
    text.push('\n');
    text
}

/// Reads a saved plan; refuses another format version.
pub fn from_saved(text: &str) -> Result<SavedPlan, SavedPlanError> {
    #[derive(Deserialize)]
    struct Version {
        format_version: u32,
    }
    let version: Version = serde_json::from_str(text).map_err(SavedPlanError::Malformed)?;
    if version.format_version != FORMAT_VERSION {
        return Err(SavedPlanError::UnsupportedVersion {
            found: version.format_version,
        });
    }
    serde_json::from_str(text).map_err(SavedPlanError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(key: &str, keys: Vec<KeyStep>) -> Change {
        Change {
            key: key.to_owned(),
            action: Action::Update,
            endpoint_id: Some(format!("whe_{key}")),
            reason: None,
            fields: Vec::new(),
            secret: None,
            keys,
        }
    }

    fn remove_kept(key_id: &str) -> KeyStep {
        KeyStep::RemoveKept {
            key_id: key_id.to_owned(),
            name: format!("PRIVATE_KEY_{key_id}"),
        }
    }

    fn plan(changes: Vec<Change>) -> Plan {
        Plan {
            changes,
            ..Plan::default()
        }
    }

    #[test]
    fn a_kept_key_that_became_removable_is_told_apart_from_a_changed_configuration() {
        let reactivate = KeyStep::Reactivate {
            key_id: "k2".into(),
            id: "whk_2".into(),
        };
        let saved = plan(vec![update("a", vec![reactivate.clone()])]);
        assert_eq!(replanned(&saved, &saved.clone()), Replanned::Same);

        // A removal added to a change the saved plan has, and a change that is only a removal.
        let fresh = plan(vec![
            update("a", vec![reactivate.clone(), remove_kept("k1")]),
            update("b", vec![remove_kept("k0")]),
        ]);
        assert_eq!(
            replanned(&saved, &fresh),
            Replanned::KeptKeysRemovable(vec!["k1".into(), "k0".into()])
        );
        // The other way round, the saved plan removes keys that are needed again.
        assert_eq!(
            replanned(&fresh, &saved),
            Replanned::KeptKeysNeeded(vec!["k1".into(), "k0".into()])
        );

        // Anything else that differs is not hidden by a removal beside it.
        let mut other = fresh.clone();
        other.changes[0].keys.remove(0);
        assert_eq!(replanned(&saved, &other), Replanned::Differs);
        assert_eq!(replanned(&saved, &plan(Vec::new())), Replanned::Differs);
    }
}
