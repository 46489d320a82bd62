//! The plan: what must change for the live state to match the desired state, as plain data.
//!
//! Pure: no I/O, no async. `apply/` carries a [`Plan`] out; `report/` renders it.

use serde::{Deserialize, Serialize};

mod build;
mod fields;
mod fingerprint;
mod guard;
mod identity;
mod keys;
mod reason;
mod saved;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
mod undeclared;

pub use crate::model::FieldChange;
pub use build::{PlanOptions, plan};
pub use fields::{desired_labels, with_state_label};
pub use fingerprint::fingerprint;
pub use guard::{GuardError, check_guard};
pub use identity::{applied_rotation, managed, secret_state};
pub(crate) use keys::repair as key_repair;
pub use reason::{ChangeReason, RecoverReason};
pub use saved::{Replanned, SavedPlan, SavedPlanError, from_saved, replanned, to_saved};
pub use undeclared::Undeclared;

/// The version of the JSON plan format (`--format json` and `--out` files).
pub const FORMAT_VERSION: u32 = 1;

/// What one `plan` found.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Plan {
    /// One entry per endpoint that needs work, in key order (deletes of duplicates after
    /// the kept endpoint's entry).
    pub changes: Vec<Change>,
    /// Ids of live endpoints that carry no identity label: never touched.
    pub unmanaged: Vec<String>,
    /// Managed endpoints no manifest declares any more, left alone (`--prune` deletes them;
    /// they are then changes, not listed here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undeclared: Vec<Undeclared>,
    /// Things worth a person's attention that change nothing (an enabled endpoint with no key).
    pub warnings: Vec<String>,
}

/// The work for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub key: String,
    pub action: Action,
    /// The live endpoint's id; `None` for a create.
    pub endpoint_id: Option<String>,
    /// Why, when it is not obvious: "duplicate of whe_…", "no longer declared".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ChangeReason>,
    /// Field changes, in the API's field order ([`crate::model::Field::ALL`]). For a create,
    /// `before` is `None`. In JSON an object keyed by field name (in this order), each with
    /// `before` and `after`.
    #[serde(default, with = "fields::as_map")]
    pub fields: Vec<FieldChange>,
    /// The signing-secret step, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretStep>,
    /// Encryption-key steps, in the order they must run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyStep>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
}

/// What happens to an endpoint's signing secret. Never holds the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum SecretStep {
    /// A new endpoint: the secret the create returns is written to the sink.
    Write {
        sink: String,
        name: String,
        /// The sink has a `reload` command, which runs once the sink holds the secret (before
        /// the endpoint is recorded settled or enabled).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reload: bool,
    },
    /// The sink lacks the secret (or may: duplicates were removed): reveal it and write it.
    Recover {
        sink: String,
        name: String,
        /// Why the sink may not hold it.
        because: RecoverReason,
        /// The sink has a `reload` command, which runs once the sink holds the secret (before
        /// the endpoint is recorded settled or enabled).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reload: bool,
    },
    /// The manifest's rotation counter moved past the applied one, or `kayle-sync rotate`
    /// asked for it (`from` = `to`): rotate and write.
    Rotate {
        sink: String,
        name: String,
        from: u64,
        to: u64,
        /// The endpoint was unsettled, and a lost request may still land until this unix
        /// time: no rotation starts before then (apply checks the sink instead), since the
        /// lost request could land after the record made before the rotation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unsettled_until: Option<u64>,
        /// The sink has a `reload` command, which runs once the new secret is written.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reload: bool,
    },
    /// A pruned endpoint's secrets: its signing secret and generated private key, under their
    /// default names in the default sink (the manifest that named them is gone). A name the
    /// sink does not hold is skipped.
    Remove { sink: String, names: Vec<String> },
    /// The endpoint's secret is unsettled (a create or rotation was interrupted, or its
    /// answer was lost): reveal it, write it to the sink, and record it settled once no lost
    /// request can still land (`until`, a unix time; 0 when none can).
    Verify {
        sink: String,
        name: String,
        rotation: u64,
        until: u64,
        /// The sink has a `reload` command, which runs once the sink holds the secret (before
        /// the endpoint is recorded settled or enabled).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reload: bool,
    },
}

impl SecretStep {
    /// The sink the step writes to or removes from.
    pub fn sink(&self) -> &str {
        let (SecretStep::Write { sink, .. }
        | SecretStep::Recover { sink, .. }
        | SecretStep::Rotate { sink, .. }
        | SecretStep::Verify { sink, .. }
        | SecretStep::Remove { sink, .. }) = self;
        sink
    }

    /// Whether the sink's `reload` command runs after this step.
    pub fn reloads(&self) -> bool {
        match self {
            SecretStep::Write { reload, .. }
            | SecretStep::Recover { reload, .. }
            | SecretStep::Rotate { reload, .. }
            | SecretStep::Verify { reload, .. } => *reload,
            SecretStep::Remove { .. } => false,
        }
    }
}

/// One encryption-key step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum KeyStep {
    /// Register a key from the manifest; registering makes it the active one.
    Register {
        key_id: String,
        generate: bool,
        /// Set when the key is registered already but its private half, in the sink, is not
        /// the registered one: the sink's key (or a new one, when the sink has none) is
        /// registered again under the same `key_id`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        repair: Option<KeyRepair>,
        /// Set when the generated key replaces the registered key of this `key_id`, whose
        /// private half the sink holds under the private key name: that half is kept under its
        /// own name first ([`KeyStep::Keep`]), and then a new pair takes the name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaces: Option<String>,
        /// A generated key of an existing endpoint whose sink has a `reload` command: it runs
        /// once the private half is in the sink, before the key is registered (deliveries are
        /// encrypted to it from then on). A new endpoint's reload runs after its secret's write.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reload: bool,
    },
    /// Reactivate a registered key (it is listed last again).
    Reactivate { key_id: String, id: String },
    /// Deactivate a key that is no longer the last entry, or that no entry names.
    Deactivate { key_id: String, id: String },
    /// Keep the private half of the generated key `key_id`, about to be replaced, in the sink
    /// under `name` (see [`crate::model::kept_key_name`]): deliveries encrypted to it may
    /// still be sent after the new key is registered.
    Keep { key_id: String, name: String },
    /// Remove the private half of the replaced key `key_id`, kept under `name`: no delivery
    /// encrypted to it can be sent any more.
    RemoveKept { key_id: String, name: String },
}

/// Why a registered generated key is registered again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyRepair {
    /// The sink holds a private key whose public half is not the registered one.
    DiffersFromSink,
    /// The sink holds no private key for it: a new pair is generated.
    MissingFromSink,
}

impl KeyRepair {
    /// In the user's words.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRepair::DiffersFromSink => "the registered key is not the private key in the sink",
            KeyRepair::MissingFromSink => "its private key is missing from the sink",
        }
    }
}

/// The counts on the summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for change in &self.changes {
            match change.action {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Delete => summary.delete += 1,
            }
        }
        summary
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}
