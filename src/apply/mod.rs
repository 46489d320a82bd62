//! Carries a plan out through the API and the sinks: the order of work per endpoint,
//! concurrency across endpoints, and recovery from answers that were lost.

mod endpoint;
pub mod keys;
mod preflight;
mod private_keys;
mod receiver;
mod secret;
mod step;

use std::collections::BTreeMap;

use futures::StreamExt;

pub use endpoint::ApplyError;
pub use preflight::{check_sinks, sinks_written};
pub use receiver::{AfterRotation, DEFAULT_SETTLE, ReceiverCheck};
pub use step::{Lost, Step, StepKind};

use crate::api::Client;
use crate::model::Desired;
use crate::plan::{Action, Change, Plan};
use crate::sink::Sinks;

/// How many endpoints apply works on per request allowed in flight: an endpoint spends part
/// of its time writing its secret to a sink, and the others keep the requests busy meanwhile.
pub const ENDPOINTS_PER_REQUEST_SLOT: usize = 4;

/// What apply works with.
pub struct Target<'a> {
    pub client: &'a Client,
    pub sinks: &'a Sinks,
    pub desired: &'a Desired,
    /// How many endpoints are worked on at once.
    pub concurrency: usize,
    /// How long after it was sent a request whose answer was lost may still land on the
    /// server: an endpoint whose rotation was lost stays unsettled that long.
    pub late_window: std::time::Duration,
    /// How long to wait, after a rotation and its sink's reload, for the receiver to accept
    /// the new secret (`--settle`); zero sends no probe.
    pub settle: std::time::Duration,
}

/// The default [`Target::late_window`]; `KAYLE_SYNC_LATE_WINDOW` overrides it.
pub const DEFAULT_LATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// A secret's place in a sink: what was written or removed, never the value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretPlace {
    pub sink: String,
    pub name: String,
}

/// What happened to one change.
#[derive(Debug)]
pub struct Outcome {
    pub key: String,
    pub action: Action,
    /// The endpoint's id once known (a create's new id).
    pub endpoint_id: Option<String>,
    /// What was done, in order; never a secret.
    pub done: Vec<Step>,
    /// The secrets (signing secrets, generated private keys) written to sinks, in order.
    pub written: Vec<SecretPlace>,
    /// The secrets removed from sinks (a pruned endpoint's).
    pub removed: Vec<SecretPlace>,
    /// What followed a rotation of its signing secret.
    pub after_rotation: Option<AfterRotation>,
    pub error: Option<ApplyError>,
}

/// What apply reports while it works, as it happens.
#[derive(Debug)]
pub enum Event {
    /// An RSA key pair is about to be generated for the endpoint `key`, which takes seconds.
    GeneratingKey { key: String, key_id: String },
    /// One change is done, or failed (boxed: an outcome is large, a notice small).
    Finished(Box<Outcome>),
}

/// What one apply did, counted: the outcomes themselves go to the caller as they finish.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    created: usize,
    updated: usize,
    deleted: usize,
    failed: usize,
}

impl Applied {
    /// Counts one outcome.
    pub fn record(&mut self, outcome: &Outcome) {
        let count = match (&outcome.error, outcome.action) {
            (Some(_), _) => &mut self.failed,
            (None, Action::Create) => &mut self.created,
            (None, Action::Update) => &mut self.updated,
            (None, Action::Delete) => &mut self.deleted,
        };
        *count += 1;
    }

    pub fn failed(&self) -> usize {
        self.failed
    }

    /// Changes that completed, by action.
    pub fn completed(&self, action: Action) -> usize {
        match action {
            Action::Create => self.created,
            Action::Update => self.updated,
            Action::Delete => self.deleted,
        }
    }

    /// Every change reported, failed or not.
    pub fn total(&self) -> usize {
        self.created + self.updated + self.deleted + self.failed
    }
}

/// Carries out every change of `plan`, handing `report` each [`Event`] as it happens. Changes
/// of one key run in order; keys run concurrently, at most `target.concurrency` at once. One
/// key failing does not stop others. Outcomes are not kept: at 10,000 endpoints they are
/// megabytes, and the caller prints each and lets it go.
pub async fn apply(target: &Target<'_>, plan: &Plan, report: &mut dyn FnMut(Event)) -> Applied {
    let mut by_key: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
    for change in &plan.changes {
        by_key.entry(change.key.as_str()).or_default().push(change);
    }
    let (notices, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let notices = &notices;
    let mut finished = futures::stream::iter(by_key.into_values())
        .map(|changes| async move {
            // A key's later changes (duplicate deletes) wait for the first to succeed: a
            // duplicate is deleted only once the kept endpoint's secret is safely in the sink.
            let mut outcomes = Vec::with_capacity(changes.len());
            let mut changes = changes.into_iter();
            for change in changes.by_ref() {
                let outcome = endpoint::carry_out(target, change, notices).await;
                let failed = outcome.error.is_some();
                outcomes.push(outcome);
                if failed {
                    break;
                }
            }
            outcomes.extend(changes.map(endpoint::not_attempted));
            outcomes
        })
        .buffer_unordered(target.concurrency.max(1));
    let mut applied = Applied::default();
    loop {
        tokio::select! {
            // A notice is sent before the work it announces, so it is passed on first.
            biased;
            Some(event) = heard.recv() => report(event),
            outcomes = finished.next() => match outcomes {
                Some(outcomes) => {
                    for outcome in outcomes {
                        applied.record(&outcome);
                        report(Event::Finished(Box::new(outcome)));
                    }
                }
                None => break,
            },
        }
    }
    while let Ok(event) = heard.try_recv() {
        report(event);
    }
    applied
}
