//! The deletion guard: refuse plans that look like the tool was pointed at the wrong directory.

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
        /// Endpoints the plan deletes.
        deletes: usize,
        /// Live endpoints carrying an identity label.
        managed: usize,
    },
    /// The directory declares no endpoints while endpoints are managed or would be deleted.
    #[error(
        "refusing to act on a directory that declares no endpoints while {managed} managed \
         endpoint(s) exist; check the directory, then pass --force if this is intended"
    )]
    NothingDeclared {
        /// Live endpoints carrying an identity label.
        managed: usize,
    },
}

/// Refuses, unless `force`, a plan that deletes more than 30% of at least
/// [`GUARD_MIN_MANAGED`] managed endpoints (exactly 30% passes: `deletes * 10 > managed * 3`
/// refuses), or any plan from a directory declaring no endpoints when it deletes something or
/// managed endpoints exist.
///
/// `managed` counts every live endpoint carrying an identity label, duplicates included, and
/// ignores `--target`: the share is of what the organization holds.
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
        .filter(|endpoint| key_of(&desired.project, endpoint).is_some())
        .count();
    let deletes = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .count();
    if desired.endpoints.is_empty() && (deletes > 0 || managed > 0) {
        return Err(GuardError::NothingDeclared { managed });
    }
    if managed >= GUARD_MIN_MANAGED && deletes * 10 > managed * 3 {
        return Err(GuardError::TooManyDeletes { deletes, managed });
    }
    Ok(())
}
