//! A plan saved with `plan --out` and loaded with `apply --plan`: the plan, the options it was
//! made with and the fingerprint of the live state it was computed from. It holds no secret: a
//! plan never does.

use serde::{Deserialize, Serialize};

use super::{FORMAT_VERSION, Plan, PlanOptions};

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
