//! Managed endpoints that no manifest declares any more: listed in every plan, and deleted with
//! `--prune` together with the secrets kayle-sync wrote for them.

use serde::{Deserialize, Serialize};

use super::SecretStep;
use crate::manifest::{default_private_key_name, default_secret_name};
use crate::model::{Project, SinkConfig};

/// A managed endpoint whose key no manifest declares; left alone without `--prune`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undeclared {
    pub key: String,
    pub endpoint_id: String,
}

/// The names an undeclared endpoint's secrets had by default: the manifest that named them is
/// gone, so only the default names in the default sink can be derived from the key.
pub(super) fn default_names(key: &str) -> Vec<String> {
    vec![
        default_secret_name(key),
        default_private_key_name(key, "", false),
    ]
}

/// The step that removes a pruned endpoint's secrets from the default sink, or why none can:
/// there is no default sink, or it is write-only.
pub(super) fn removal(project: &Project, key: &str) -> Result<SecretStep, String> {
    let Some(sink) = &project.default_sink else {
        return Err(format!(
            "{key}: no default sink is declared, so where its secrets were written is unknown; \
             nothing is removed from any sink"
        ));
    };
    if matches!(
        project.sinks.get(sink),
        Some(SinkConfig::Command { .. }) | None
    ) {
        return Err(format!(
            "{key}: the default sink {sink} is write-only; nothing can be removed from it"
        ));
    }
    Ok(SecretStep::Remove {
        sink: sink.clone(),
        names: default_names(key),
    })
}
