//! The read stage against an in-memory twin of the API: what it asks, and the plan it makes.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use secrecy::SecretString;

use super::{Planned, ReadApi, Retention, plan_live};
use crate::api::{ApiError, DeliveryFilter, LiveDelivery};
use crate::model::{LiveEndpoint, LiveKey, SecretSink, SinkError, kept_key_name};
use crate::plan::test_support::{desired, endpoint, generated_key, live_key, live_of};
use crate::plan::{KeyStep, PlanOptions, SecretStep};
use crate::sink::Sinks;

/// The API as a value: endpoints, keys, secrets and deliveries, and a log of the calls made.
#[derive(Default)]
struct Twin {
    endpoints: Vec<LiveEndpoint>,
    keys: BTreeMap<String, Vec<LiveKey>>,
    secrets: BTreeMap<String, String>,
    deliveries: Vec<LiveDelivery>,
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

    async fn list_deliveries_since(
        &self,
        filter: &DeliveryFilter,
        since: jiff::Timestamp,
    ) -> Result<Vec<LiveDelivery>, ApiError> {
        let status = filter.status.as_deref().unwrap_or("any");
        let endpoint = filter.endpoint_id.as_deref().unwrap_or("any");
        self.calls
            .borrow_mut()
            .push(format!("deliveries {status} {endpoint} since {since}"));
        let wanted =
            |value: &str, wanted: &Option<String>| wanted.as_deref().is_none_or(|w| w == value);
        Ok(self
            .deliveries
            .iter()
            .filter(|d| wanted(&d.status, &filter.status))
            .filter(|d| wanted(&d.webhook_endpoint_id, &filter.endpoint_id))
            .filter(|d| d.created().is_none_or(|at| at >= since))
            .cloned()
            .collect())
    }
}

/// A readable sink holding fixed names, counting the questions it is asked.
#[derive(Default)]
struct CountingSink {
    held: BTreeMap<String, String>,
    /// One entry per call: `contains_all` or `read_all`, and how many names.
    asked: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl SecretSink for CountingSink {
    fn name(&self) -> &str {
        "local"
    }

    async fn put(&self, _: &str, _: &SecretString) -> Result<(), SinkError> {
        unreachable!("a read writes nothing")
    }

    async fn contains(&self, name: &str) -> Result<Option<bool>, SinkError> {
        Ok(self.contains_all(&[name.to_owned()]).await?.remove(0))
    }

    async fn contains_all(&self, names: &[String]) -> Result<Vec<Option<bool>>, SinkError> {
        let asked = format!("contains_all {}", names.len());
        self.asked.lock().unwrap().push(asked);
        Ok(names
            .iter()
            .map(|n| Some(self.held.contains_key(n)))
            .collect())
    }

    async fn read_all(
        &self,
        names: &[String],
    ) -> Result<Option<Vec<Option<SecretString>>>, SinkError> {
        self.asked
            .lock()
            .unwrap()
            .push(format!("read_all {}", names.len()));
        let value = |n: &String| self.held.get(n).map(|v| SecretString::from(v.as_str()));
        Ok(Some(names.iter().map(value).collect()))
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

/// `orders`, generating key `k4`, live as `whe_1` with `k1`..`k3` registered before it (each a
/// day apart) and replaced, and a sink keeping the private halves of all three.
fn kept_world() -> (crate::model::Desired, Twin, Sinks, Arc<CountingSink>) {
    let mut orders = endpoint("orders");
    orders.encryption_keys = vec![generated_key("k4")];
    let private_key_name = "k4_PRIVATE_KEY";
    let mut held: BTreeMap<String, String> = ["k1", "k2", "k3"]
        .map(|key_id| (kept_key_name(private_key_name, key_id), "pem".to_owned()))
        .into();
    held.insert(orders.signing_secret.name.clone(), "whsec_same".to_owned());
    let sink = Arc::new(CountingSink {
        held,
        ..CountingSink::default()
    });
    let keys = vec![
        live_key("whk_4", "k4", true, "2026-03-04T00:00:00Z"),
        live_key("whk_3", "k3", false, "2026-03-03T00:00:00Z"),
        live_key("whk_2", "k2", false, "2026-03-02T00:00:00Z"),
        live_key("whk_1", "k1", false, "2026-03-01T00:00:00Z"),
    ];
    // A delivery still encrypted to `k2` and holding its payload: `k2` stays.
    let mut pending =
        crate::api::test_delivery("whd_1", "pending", 2, Some(500), "2026-03-02T12:00:00Z");
    pending.webhook_encryption_key_id = Some("whk_2".to_owned());
    let twin = Twin {
        endpoints: vec![live_of(&orders, "whe_1", "2026-03-01T00:00:00Z")],
        keys: [("whe_1".to_owned(), keys)].into(),
        deliveries: vec![pending],
        ..Twin::default()
    };
    let desired = desired(vec![orders]);
    let mut sinks = Sinks::default();
    sinks.insert("local", Arc::clone(&sink) as Arc<dyn SecretSink>);
    (desired, twin, sinks, sink)
}

async fn planned_kept(twin: &Twin, desired: &crate::model::Desired, sinks: &Sinks) -> Planned {
    let options = PlanOptions::default();
    let retention = Retention::Fixed(std::time::Duration::ZERO);
    plan_live(twin, desired, sinks, &options, false, retention)
        .await
        .expect("the twin never fails")
}

#[tokio::test]
async fn deliveries_are_listed_once_per_endpoint_back_to_its_oldest_kept_key() {
    let (desired, twin, sinks, _) = kept_world();
    let planned = planned_kept(&twin, &desired, &sinks).await;
    // Three kept keys, one endpoint: each status listed once, from `k1`'s registration on.
    assert_eq!(
        *twin.calls.borrow(),
        [
            "list",
            "keys whe_1",
            "deliveries pending whe_1 since 2026-03-01T00:00:00Z",
            "deliveries delivering whe_1 since 2026-03-01T00:00:00Z",
            "deliveries failed whe_1 since 2026-03-01T00:00:00Z",
        ]
    );
    let removed: Vec<&str> = planned
        .plan
        .changes
        .iter()
        .flat_map(|change| &change.keys)
        .filter_map(|step| match step {
            KeyStep::RemoveKept { key_id, .. } => Some(key_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(removed, ["k1", "k3"], "k2 still has a delivery to send");
}

#[tokio::test]
async fn kept_names_are_asked_in_the_signing_secrets_batch() {
    let (desired, twin, sinks, sink) = kept_world();
    planned_kept(&twin, &desired, &sinks).await;
    // One question about the signing secret and the three kept names, one for the active
    // key's private half.
    assert_eq!(
        *sink.asked.lock().unwrap(),
        ["contains_all 4", "read_all 1"]
    );
}
