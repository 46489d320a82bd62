//! Carries a plan out through the API and the sinks: the order of work per endpoint,
//! concurrency across endpoints, and recovery from answers that were lost.

mod endpoint;
pub mod keys;
mod live;
pub mod lock;
mod preflight;
mod secret;

use std::collections::BTreeMap;

use futures::StreamExt;

pub use endpoint::ApplyError;
pub use live::{ReadError, ReadOptions, read_live};
pub use preflight::{check_sinks, sinks_written};

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
}

/// The default [`Target::late_window`]; `KAYLE_SYNC_LATE_WINDOW` overrides it.
pub const DEFAULT_LATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// What happened to one change.
#[derive(Debug)]
pub struct Outcome {
    pub key: String,
    pub action: Action,
    /// The endpoint's id once known (a create's new id).
    pub endpoint_id: Option<String>,
    /// What was done, in order, in the user's words; never a secret.
    pub done: Vec<String>,
    pub error: Option<ApplyError>,
}

/// Everything one apply did.
#[derive(Debug, Default)]
pub struct Applied {
    pub outcomes: Vec<Outcome>,
}

impl Applied {
    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.error.is_some()).count()
    }

    /// Changes that completed, by action.
    pub fn completed(&self, action: Action) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.error.is_none() && o.action == action)
            .count()
    }
}

/// Carries out every change of `plan`. Changes of one key run in order; keys run
/// concurrently, at most `target.concurrency` at once. One key failing does not stop others.
pub async fn apply(target: &Target<'_>, plan: &Plan) -> Applied {
    let mut by_key: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
    for change in &plan.changes {
        by_key.entry(change.key.as_str()).or_default().push(change);
    }
    let mut outcomes: Vec<Outcome> = futures::stream::iter(by_key.into_values())
        .map(|changes| async move {
            // A key's later changes (duplicate deletes) wait for the first to succeed: a
            // duplicate is deleted only once the kept endpoint's secret is safely in the sink.
            let mut outcomes = Vec::with_capacity(changes.len());
            for change in changes {
                let outcome = endpoint::carry_out(target, change).await;
                let failed = outcome.error.is_some();
                outcomes.push(outcome);
                if failed {
                    break;
                }
            }
            outcomes
        })
        .buffer_unordered(target.concurrency.max(1))
        .flat_map(futures::stream::iter)
        .collect()
        .await;
    outcomes.sort_by(|a, b| a.key.cmp(&b.key));
    Applied { outcomes }
}
