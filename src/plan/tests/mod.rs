//! Tests of the planning rules, the key steps, the guard, the fingerprint and saved plans.

mod converge;
mod guard;
mod keys;
mod rules;
mod saved;

use crate::model::{Desired, Live};
use crate::plan::{Action, Change, Plan, PlanOptions, plan};

fn plan_all(desired: &Desired, live: &Live) -> Plan {
    plan(desired, live, &PlanOptions::default())
}

fn pruning(desired: &Desired, live: &Live) -> Plan {
    plan(
        desired,
        live,
        &PlanOptions {
            prune: true,
            targets: Vec::new(),
            verify_secrets: false,
        },
    )
}

/// `(key, action, endpoint id)` of every change, for compact assertions.
fn outline(plan: &Plan) -> Vec<(String, Action, Option<String>)> {
    plan.changes
        .iter()
        .map(|c: &Change| (c.key.clone(), c.action, c.endpoint_id.clone()))
        .collect()
}

fn field_names(change: &Change) -> Vec<&str> {
    change.fields.iter().map(|f| f.field().name()).collect()
}

/// One side of a field change as JSON, for comparing with `json!`.
fn value(side: crate::model::FieldValue<'_>) -> serde_json::Value {
    serde_json::to_value(side).unwrap()
}
