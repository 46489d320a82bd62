//! One reconcile: load and validate the whole directory, read the live state, plan, and apply
//! (or only plan, for `--dry-run`). Idempotent: a second run over the same state changes nothing.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::controller::Reconcile;
use crate::api::Client;
use crate::apply::{self, ApplyError, Target};
use crate::manifest::{self, Diagnostics, Loaded};
use crate::model::{ApiConfig, SinkError};
use crate::plan::{Action, GuardError, Plan, PlanOptions};
use crate::read::{self, Planned, ReadError};
use crate::report;
use crate::sink::Sinks;

/// The directory's content as loaded at one moment, with a digest to tell whether it changed.
pub struct Snapshot {
    pub loaded: Result<Loaded, Diagnostics>,
    /// Digest of the validated desired state (or of the diagnostics): equal digests mean
    /// nothing that matters changed, e.g. when only kayle-sync's own sink file was written.
    pub digest: [u8; 32],
}

impl Snapshot {
    /// Loads and validates `dir`.
    pub fn load(dir: &Path) -> Snapshot {
        let loaded = manifest::load(dir);
        // The Debug form holds every validated value (public keys included, never a secret);
        // it is only compared within this process, so its format need not be stable.
        let text = match &loaded {
            Ok(loaded) => format!("ok {:?}", loaded.desired),
            Err(diagnostics) => format!("invalid {diagnostics}"),
        };
        Snapshot {
            loaded,
            digest: Sha256::digest(text.as_bytes()).into(),
        }
    }
}

/// Endpoint keys by what happened (or would happen) to them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    pub create: Vec<String>,
    pub update: Vec<String>,
    pub delete: Vec<String>,
}

impl Changes {
    fn push(&mut self, action: Action, key: &str) {
        match action {
            Action::Create => self.create.push(key.to_owned()),
            Action::Update => self.update.push(key.to_owned()),
            Action::Delete => self.delete.push(key.to_owned()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }

    fn of_plan(plan: &Plan) -> Changes {
        let mut changes = Changes::default();
        for change in &plan.changes {
            changes.push(change.action, &change.key);
        }
        changes
    }
}

/// A reconcile that went through.
#[derive(Debug)]
pub enum Done {
    /// The live state already matched.
    InSync,
    /// These changes were applied.
    Applied(Changes),
    /// `--dry-run`: these changes would be applied; `text` is the rendered plan.
    Planned { changes: Changes, text: String },
}

/// Why a reconcile did not go through. Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The directory does not validate; `diagnostics` is every problem, as `validate` gives
    /// them (the log shows them as text, or as `validate --format json` lists them).
    #[error("invalid configuration ({} error(s)); nothing applied", .diagnostics.0.len())]
    Invalid { diagnostics: Diagnostics },
    /// A sink named in the project file could not be set up.
    #[error("setting up the sinks: {0}")]
    Sinks(#[source] SinkError),
    /// The live state could not be read.
    #[error("reading the live state: {0:#}")]
    Read(#[source] ReadError),
    /// The deletion guard refused the plan (`--force` overrides).
    #[error("{0}")]
    Refused(#[source] GuardError),
    /// Some changes failed; the others were applied. Each failure is kept as it happened, for
    /// the error policy to tell a refused key from an outage.
    #[error("{failed} of {of} change(s) failed: {}", joined(errors))]
    Apply {
        failed: usize,
        of: usize,
        errors: Vec<ApplyError>,
    },
}

/// The failures of an apply, one after another.
fn joined(errors: &[ApplyError]) -> String {
    let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    texts.join("; ")
}

/// What every reconcile needs besides the directory's content.
pub struct Reconciler<'a> {
    pub client: &'a Client,
    pub dry_run: bool,
    pub prune: bool,
    pub force: bool,
    pub concurrency: usize,
    /// See [`crate::apply::Target::late_window`].
    pub late_window: std::time::Duration,
    /// See [`crate::apply::Target::settle`].
    pub settle: std::time::Duration,
    /// How long a replaced key's private half is kept ([`read::Retention`]).
    pub kept_keys: read::Retention,
}

impl Reconcile for Reconciler<'_> {
    /// Plans `snapshot` against the live state and applies the plan (or, dry-run, renders it),
    /// handing `report` each event of the apply as it happens.
    /// Returns the changes applied so far along with a failure, for the log.
    /// With `verify_secrets`, every readable sink's secret is compared with the API's.
    async fn reconcile(
        &self,
        snapshot: &Snapshot,
        verify_secrets: bool,
        report: &mut dyn FnMut(&apply::Event),
    ) -> (Result<Done, ReconcileError>, Changes) {
        let loaded = match &snapshot.loaded {
            Ok(loaded) => loaded,
            Err(diagnostics) => {
                let error = ReconcileError::Invalid {
                    diagnostics: diagnostics.clone(),
                };
                return (Err(error), Changes::default());
            }
        };
        let desired = &loaded.desired;
        let sinks = match Sinks::from_project(&desired.project) {
            Ok(sinks) => sinks,
            Err(err) => return (Err(ReconcileError::Sinks(err)), Changes::default()),
        };
        let options = PlanOptions {
            prune: self.prune,
            targets: Vec::new(),
            verify_secrets,
        };
        let planned = read::plan_live(
            self.client,
            desired,
            &sinks,
            &options,
            self.force,
            self.kept_keys,
        )
        .await;
        let plan = match planned {
            Ok(Planned {
                plan,
                guard: Ok(()),
                ..
            }) => plan,
            Ok(Planned {
                guard: Err(refusal),
                ..
            }) => return (Err(ReconcileError::Refused(refusal)), Changes::default()),
            Err(err) => return (Err(ReconcileError::Read(err)), Changes::default()),
        };
        if plan.is_empty() {
            return (Ok(Done::InSync), Changes::default());
        }
        if self.dry_run {
            let mut text = Vec::new();
            // Rendering into memory cannot fail.
            let _ = report::render_text(&plan, &mut text, false);
            let _ = report::render_warnings(&plan, &mut text, false);
            let done = Done::Planned {
                changes: Changes::of_plan(&plan),
                text: String::from_utf8_lossy(&text).into_owned(),
            };
            return (Ok(done), Changes::default());
        }
        let target = Target {
            client: self.client,
            sinks: &sinks,
            desired,
            concurrency: self.concurrency,
            late_window: self.late_window,
            settle: self.settle,
        };
        // A sink that cannot be written fails the round before the API is changed.
        if let Some(first) = apply::check_sinks(&target, &plan).await.into_iter().next() {
            return (Err(ReconcileError::Sinks(first)), Changes::default());
        }
        let mut changes = Changes::default();
        let mut errors = Vec::new();
        let applied = apply::apply(&target, &plan, &mut |event| {
            report(&event);
            if let apply::Event::Finished(outcome) = event {
                match outcome.error {
                    None => changes.push(outcome.action, &outcome.key),
                    Some(error) => errors.push(error),
                }
            }
        })
        .await;
        // Endpoints finish in any order; the log lists them by key.
        for keys in [
            &mut changes.create,
            &mut changes.update,
            &mut changes.delete,
        ] {
            keys.sort();
        }
        let failed = applied.failed();
        if failed == 0 {
            return (Ok(Done::Applied(changes.clone())), changes);
        }
        let error = ReconcileError::Apply {
            failed,
            of: applied.total(),
            errors,
        };
        (Err(error), changes)
    }
}

/// Whether the project file now names a different API than the one connected at start.
pub fn api_changed(first: &ApiConfig, now: &ApiConfig) -> bool {
    first.url != now.url || first.token_env != now.token_env
}
