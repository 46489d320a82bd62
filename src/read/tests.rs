//! The read stage against an in-memory twin of the API: what it asks, and the plan it makes.

use std::cell::RefCell;
use std::collections::BTreeMap;

use secrecy::SecretString;

use super::{Planned, ReadApi, plan_live};
use crate::api::{ApiError, DeliveryFilter, LiveDelivery};
use crate::model::{LiveEndpoint, LiveKey};
use crate::plan::test_support::{desired, endpoint, live_of};
use crate::plan::{PlanOptions, SecretStep};
use crate::sink::Sinks;

/// The API as a value: endpoints, keys and secrets, and a log of the calls made.
#[derive(Default)]
struct Twin {
    endpoints: Vec<LiveEndpoint>,
    keys: BTreeMap<String, Vec<LiveKey>>,
    secrets: BTreeMap<String, String>,
    calls: RefCell<Vec<String>>,
}

impl ReadApi for Twin {
    async fn list_endpoints(&self) -> Result<Vec<LiveEndpoint>, ApiError> {
        self.calls.borrow_mut().push("list".to_owned());
        Ok(self.endpoints.clone())
    }

    async fn list_keys(&self, endpoint_id: &str) -> Result<Vec<LiveKey>, ApiError> {
        self.calls.borrow_mut().push(format!("keys {endpoint_id}"));
        Ok(self.keys.get(endpoint_id).cloned().unwrap_or_default())
    }

    async fn reveal_secret(&self, endpoint_id: &str) -> Result<SecretString, ApiError> {
        self.calls
            .borrow_mut()
            .push(format!("reveal {endpoint_id}"));
        let secret = self.secrets.get(endpoint_id).expect("a known endpoint");
        Ok(SecretString::from(secret.as_str()))
    }

    async fn list_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<LiveDelivery>, ApiError> {
        self.calls
            .borrow_mut()
            .push(format!("deliveries {filter:?}"));
        Ok(Vec::new())
    }
}

/// `orders`, declared, live as `whe_1`, with the API holding `api_secret`, and a dotenv sink
/// in a temporary directory holding `sink_secret`.
fn world(
    api_secret: &str,
    sink_secret: &str,
) -> (tempfile::TempDir, crate::model::Desired, Twin, Sinks) {
    let dir = tempfile::tempdir().unwrap();
    let orders = endpoint("orders");
    let name = orders.signing_secret.name.clone();
    std::fs::write(dir.path().join(".env"), format!("{name}={sink_secret}\n")).unwrap();
    let mut desired = desired(vec![orders.clone()]);
    desired.project.dir = dir.path().to_owned();
    let twin = Twin {
        endpoints: vec![live_of(&orders, "whe_1", "2026-03-01T10:00:00Z")],
        secrets: [("whe_1".to_owned(), api_secret.to_owned())].into(),
        ..Twin::default()
    };
    let sinks = Sinks::from_project(&desired.project).unwrap();
    (dir, desired, twin, sinks)
}

async fn planned(
    twin: &Twin,
    desired: &crate::model::Desired,
    sinks: &Sinks,
    verify: bool,
) -> Planned {
    let options = PlanOptions {
        verify_secrets: verify,
        ..PlanOptions::default()
    };
    plan_live(
        twin,
        desired,
        sinks,
        &options,
        false,
        super::Retention::Kayle,
    )
    .await
    .expect("the twin never fails")
}

#[tokio::test]
async fn a_converged_endpoint_costs_one_listing_and_plans_nothing() {
    let (_dir, desired, twin, sinks) = world("whsec_same", "whsec_same");
    let planned = planned(&twin, &desired, &sinks, false).await;
    assert!(planned.plan.is_empty(), "{:?}", planned.plan);
    assert!(planned.guard.is_ok());
    assert_eq!(*twin.calls.borrow(), ["list"]);
    assert_eq!(planned.live.secret_present.get("orders"), Some(&true));
}

#[tokio::test]
async fn verifying_secrets_reveals_once_and_plans_the_write_of_a_differing_one() {
    let (_dir, desired, twin, sinks) = world("whsec_new", "whsec_old");
    let unverified = planned(&twin, &desired, &sinks, false).await;
    assert!(unverified.plan.is_empty(), "without --verify-secrets");
    twin.calls.borrow_mut().clear();
    let verified = planned(&twin, &desired, &sinks, true).await;
    assert_eq!(*twin.calls.borrow(), ["list", "reveal whe_1"]);
    let change = verified.plan.changes.first().expect("a change");
    assert_eq!(change.key, "orders");
    assert!(
        matches!(change.secret, Some(SecretStep::Recover { .. })),
        "{:?}",
        change.secret
    );
}
