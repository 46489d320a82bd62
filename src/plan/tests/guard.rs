//! The deletion guard.

use crate::model::{Desired, Live};
use crate::plan::test_support::{desired, endpoint, live, live_of};
use crate::plan::{GuardError, check_guard};

use super::pruning;

const T1: &str = "2026-03-01T10:00:00Z";

/// `managed` live endpoints `k0..`, of which the first `declared` are still declared.
fn fleet(managed: usize, declared: usize) -> (Desired, Live) {
    let keys: Vec<String> = (0..managed).map(|i| format!("k{i}")).collect();
    let state = live(
        keys.iter()
            .map(|key| live_of(&endpoint(key), &format!("whe_{key}"), T1))
            .collect(),
    );
    let wanted = desired(
        keys.iter()
            .take(declared)
            .map(|key| endpoint(key))
            .collect(),
    );
    (wanted, state)
}

fn guard(managed: usize, declared: usize, force: bool) -> Result<(), GuardError> {
    let (wanted, state) = fleet(managed, declared);
    let plan = pruning(&wanted, &state);
    check_guard(&plan, &wanted, &state, force)
}

#[test]
fn exactly_thirty_percent_of_ten_may_be_deleted_more_is_refused() {
    assert_eq!(guard(10, 7, false), Ok(()));
    assert_eq!(
        guard(10, 6, false),
        Err(GuardError::TooManyDeletes {
            deletes: 4,
            managed: 10
        })
    );
    assert_eq!(guard(10, 6, true), Ok(()));
}

#[test]
fn fewer_than_ten_managed_endpoints_are_not_checked_for_the_share() {
    assert_eq!(guard(9, 1, false), Ok(()));
}

#[test]
fn a_directory_declaring_nothing_is_refused_while_endpoints_are_managed() {
    assert_eq!(
        guard(2, 0, false),
        Err(GuardError::NothingDeclared { managed: 2 })
    );
    // Even without --prune, with nothing to delete: the directory is probably the wrong one.
    let (wanted, state) = fleet(1, 0);
    let plan = super::plan_all(&wanted, &state);
    assert!(plan.is_empty());
    assert!(check_guard(&plan, &wanted, &state, false).is_err());
    assert_eq!(guard(2, 0, true), Ok(()));
    assert_eq!(guard(0, 0, false), Ok(()));
}

#[test]
fn the_refusal_says_how_to_go_ahead() {
    let message = guard(10, 0, false).unwrap_err().to_string();
    assert!(message.contains("--force"), "{message}");
    let message = guard(20, 10, false).unwrap_err().to_string();
    assert!(
        message.contains("10 of 20") && message.contains("--force"),
        "{message}"
    );
}

#[test]
fn deleting_the_duplicates_left_by_racing_applies_is_never_refused() {
    const T2: &str = "2026-03-01T10:00:01Z";
    let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    let mut endpoints = Vec::new();
    for key in &keys {
        endpoints.push(live_of(&endpoint(key), &format!("whe_{key}"), T1));
        endpoints.push(live_of(&endpoint(key), &format!("whe_{key}_again"), T2));
    }
    let state = live(endpoints);
    let wanted = desired(keys.iter().map(|key| endpoint(key)).collect());
    let plan = pruning(&wanted, &state);
    let deletes = plan
        .changes
        .iter()
        .filter(|c| c.action == crate::plan::Action::Delete)
        .count();
    assert_eq!(deletes, 10, "one duplicate of each key is deleted");
    assert_eq!(check_guard(&plan, &wanted, &state, false), Ok(()));

    // Undeclaring 4 of the 10 keys deletes 8 endpoints: 4 keys of 10, refused.
    let wanted = desired(keys.iter().take(6).map(|key| endpoint(key)).collect());
    let plan = pruning(&wanted, &state);
    assert_eq!(
        check_guard(&plan, &wanted, &state, false),
        Err(GuardError::TooManyDeletes {
            deletes: 4,
            managed: 10
        })
    );
}
