//! The deletion guard: refuse plans that look like the tool was pointed at the wrong directory.

use std::collections::BTreeSet;

use super::{Action, Plan};
use crate::model::{Desired, Live};

use super::identity::{key_of, unique};

/// The fewest managed endpoints for which the share of deletions is checked.
pub const GUARD_MIN_MANAGED: usize = 10;

/// Why a plan is refused without `--force`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The plan deletes more than 30% of at least 10 managed endpoints.
    #[error(
        "refusing to delete {deletes} of {managed} managed endpoints (more than 30%); \
         check the directory, then pass --force if this is intended"
    )]
    TooManyDeletes {
        /// Undeclared keys whose endpoints the plan deletes.
        deletes: usize,
        /// Keys that live endpoints carry as identity labels.
        managed: usize,
    },
    /// The directory declares no endpoints while endpoints are managed or would be deleted.
    #[error(
        "refusing to act on a directory that declares no endpoints while {managed} managed \
         endpoint(s) exist; check the directory, then pass --force if this is intended"
    )]
    NothingDeclared {
        /// Keys that live endpoints carry as identity labels.
        managed: usize,
    },
}

/// Refuses, unless `force`, a plan that deletes more than 30% of at least
/// [`GUARD_MIN_MANAGED`] managed endpoints (exactly 30% passes: `deletes * 10 > managed * 3`
/// refuses), or any plan from a directory declaring no endpoints when it deletes something or
/// managed endpoints exist.
///
/// Both counts are of keys: `managed` counts the keys that live endpoints carry (ignoring
/// `--target`: the share is of what the organization holds), and `deletes` the keys no manifest
/// declares that the plan deletes. Deleting the duplicates of a declared key (left by applies
/// that raced) resolves a conflict the design says the next apply must resolve; it is no sign
/// of a wrong directory, so it never counts, however many duplicates there are.
pub fn check_guard(
    plan: &Plan,
    desired: &Desired,
    live: &Live,
    force: bool,
) -> Result<(), GuardError> {
    if force {
        return Ok(());
    }
    let managed = unique(live)
        .into_iter()
        .filter_map(|endpoint| key_of(&desired.project, endpoint))
        .collect::<BTreeSet<_>>()
        .len();
    let deletes = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete && !desired.endpoints.contains_key(&c.key))
        .map(|c| c.key.as_str())
        .collect::<BTreeSet<_>>()
        .len();
    if desired.endpoints.is_empty() && (deletes > 0 || managed > 0) {
        return Err(GuardError::NothingDeclared { managed });
    }
    if managed >= GUARD_MIN_MANAGED && deletes * 10 > managed * 3 {
        return Err(GuardError::TooManyDeletes { deletes, managed });
    }
    Ok(())
}
