//! End to end: the real binary's plan and apply against an in-process emulator (issue 4):
//! create, converge, update in place, drift, prune and its guard, what is not ours, adoption.

use crate::support;

use serde_json::{Value, json};
use support::manifests::{
    applied, assert_one_with_secret, disabled, endpoint, manifest, secret_name, url,
};
use support::{Api, Project, id, labels};

#[test]
fn create_then_converge() {
    let api = Api::start();
    let project = Project::new();
    let (n, e) = project.public_key("keys/orders.pem");
    project.public_key("keys/identity.pem");
    project.manifest(&manifest(&[
        endpoint("orders", "Orders", &url("orders")),
        endpoint("identity", "Identity", &url("identity")),
    ]));

    let plan = project.run(&api, &["plan", "--detailed-exitcode"]);
    plan.expect(2);
    plan.stdout_has(&["+ create orders"]);
    assert!(
        plan.stdout
            .contains("Plan: 2 to create, 0 to update, 0 to delete."),
        "{}",
        plan.stdout
    );
    assert!(api.endpoints().is_empty(), "plan changes nothing");

    let run = project.apply(&api, &[]);
    run.stdout_has(&["Apply complete: 2 created"]);
    let orders = assert_one_with_secret(&api, &project, "orders");
    assert_one_with_secret(&api, &project, "identity");
    assert_eq!(orders["url"], url("orders"));
    assert_eq!(orders["name"], "Orders");
    assert_eq!(orders["enabled"], true);
    assert_eq!(
        orders["subscribed_event_types"],
        json!(["verification.session.succeeded"])
    );
    assert_eq!(orders["undelivered_payload_retention_hours"], 168);
    let mut got = labels(&orders);
    got.sort();
    assert_eq!(got, ["kayle-sync:orders", "team-a"]);
    let keys = api.keys(&id(&orders));
    assert_eq!(keys.len(), 1, "{keys:#?}");
    assert_eq!(keys[0]["key_id"], "orders-1");
    assert_eq!(keys[0]["is_active"], true);
    assert_eq!(keys[0]["jwk"]["n"], n.as_str());
    assert_eq!(keys[0]["jwk"]["e"], e.as_str());
    api.assert_no_violations();

    project.assert_converged(&api);
    let again = project.apply(&api, &[]);
    again.stdout_has(&["No changes."]);
    assert_eq!(api.endpoints().len(), 2);
}

#[test]
fn update_in_place_keeps_id_and_secret() {
    let api = Api::start();
    let project = applied(&api, &["orders"]);
    let before = api.one("orders");
    let secret = api.secret(&id(&before));

    project.manifest(&manifest(&[endpoint(
        "orders",
        "Orders v2",
        "https://hooks.example.com/orders-v2",
    )]));
    let plan = project.run(&api, &["plan"]);
    plan.expect(0);
    plan.stdout_has(&["~ update orders", "Orders v2"]);
    assert!(
        plan.stdout
            .contains("Plan: 0 to create, 1 to update, 0 to delete."),
        "{}",
        plan.stdout
    );

    project.apply(&api, &[]);
    let after = api.one("orders");
    assert_eq!(id(&after), id(&before), "updated in place");
    assert_eq!(after["name"], "Orders v2");
    assert_eq!(after["url"], "https://hooks.example.com/orders-v2");
    assert_eq!(api.secret(&id(&after)), secret, "the secret did not change");
    assert_eq!(project.sink(&secret_name("orders")), Some(secret));
    assert_eq!(api.endpoints().len(), 1);
    api.assert_no_violations();
    project.assert_converged(&api);
}

#[test]
fn drift_is_shown_and_reverted() {
    let api = Api::start();
    let project = applied(&api, &["orders"]);
    let endpoint = api.one("orders");
    api.patch(
        &id(&endpoint),
        json!({
            "name": "changed in the dashboard",
            "undelivered_payload_retention_hours": 24,
            "subscribed_event_types": ["verification.session.failed"],
        }),
    );

    let plan = project.run(&api, &["plan", "--detailed-exitcode"]);
    plan.expect(2);
    plan.stdout_has(&[
        "~ update orders",
        "changed in the dashboard",
        "undelivered_payload_retention_hours",
    ]);

    project.apply(&api, &[]);
    let reverted = api.one("orders");
    assert_eq!(id(&reverted), id(&endpoint));
    assert_eq!(reverted["name"], "orders service");
    assert_eq!(reverted["undelivered_payload_retention_hours"], 168);
    assert_eq!(
        reverted["subscribed_event_types"],
        json!(["verification.session.succeeded"])
    );
    api.assert_no_violations();
    project.assert_converged(&api);
}

#[test]
fn prune_deletes_only_with_prune() {
    let api = Api::start();
    let project = applied(&api, &["orders", "billing"]);
    let billing = api.one("billing");
    project.manifest(&manifest(&[endpoint(
        "orders",
        "orders service",
        &url("orders"),
    )]));

    let plan = project.run(&api, &["plan", "--detailed-exitcode"]);
    plan.expect(0);
    plan.stdout_has(&["No changes."]);
    project.apply(&api, &[]);
    assert_eq!(
        id(&api.one("billing")),
        id(&billing),
        "kept without --prune"
    );

    let plan = project.run(&api, &["plan", "--prune"]);
    plan.expect(0);
    plan.stdout_has(&["- delete billing"]);
    assert!(
        plan.stdout
            .contains("Plan: 0 to create, 0 to update, 1 to delete."),
        "{}",
        plan.stdout
    );
    project.apply(&api, &["--prune"]);
    assert!(api.managed("billing").is_empty(), "pruned");
    assert_one_with_secret(&api, &project, "orders");
    api.assert_no_violations();
    let converged = project.run(&api, &["plan", "--prune", "--detailed-exitcode"]);
    converged.expect(0);
}

#[test]
fn deletion_guard_refuses_mass_deletes_without_force() {
    let api = Api::start();
    let project = Project::new();
    let keys: Vec<String> = (0..13).map(|i| format!("svc-{i:02}")).collect();
    let declare = |from: usize| {
        project.manifest(&manifest(
            &keys[from..].iter().map(|k| disabled(k)).collect::<Vec<_>>(),
        ))
    };
    let prune = &["apply", "--auto-approve", "--prune"];
    declare(0);
    project.apply(&api, &[]);
    assert_eq!(api.endpoints().len(), 13);

    // 4 of 13 (31%) is refused.
    declare(4);
    let refused = project.run(&api, prune);
    refused.expect(1);
    assert!(
        refused.stderr.contains("--force"),
        "the refusal says how to override: {}",
        refused.stderr
    );
    assert_eq!(api.endpoints().len(), 13, "nothing was deleted");

    // 3 of 13 (23%) passes.
    declare(3);
    project.apply(&api, &["--prune"]);
    assert_eq!(api.endpoints().len(), 10);

    // 4 of 10 (40%) is refused, and applied with --force.
    declare(7);
    project.run(&api, prune).expect(1);
    assert_eq!(api.endpoints().len(), 10);
    project.apply(&api, &["--prune", "--force"]);
    assert_eq!(api.endpoints().len(), 6);

    // Under 10 managed endpoints the share is not checked: 4 of 6 passes.
    declare(11);
    project.apply(&api, &["--prune"]);
    assert_eq!(api.endpoints().len(), 2);
}

#[test]
fn a_directory_declaring_no_endpoints_is_refused() {
    let api = Api::start();
    let project = applied(&api, &["orders"]);
    std::fs::remove_file(project.path("endpoints.yaml")).unwrap();

    for args in [
        &["apply", "--auto-approve"][..],
        &["apply", "--auto-approve", "--prune"][..],
    ] {
        let refused = project.run(&api, args);
        refused.expect(1);
        refused.stderr_has(&["declares no endpoints"]);
        api.one("orders");
    }
    let plan = project.run(&api, &["plan", "--prune"]);
    plan.expect(0);
    assert!(
        plan.stderr.contains("apply would refuse"),
        "plan warns: {}",
        plan.stderr
    );

    project.apply(&api, &["--prune", "--force"]);
    assert!(api.endpoints().is_empty());
}

#[test]
fn unmanaged_endpoints_are_untouched_even_with_prune() {
    let api = Api::start();
    let other = api.create_endpoint(json!({
        "url": "https://hooks.example.com/by-hand",
        "name": "made in the dashboard",
        "labels": ["team-a", "kayle-sync"],
        "enabled": false,
    }));
    let other_secret = api.secret(&id(&other));
    let project = applied(&api, &["orders"]);

    let plan = project.run(&api, &["plan", "--prune", "--format", "json"]);
    plan.expect(0);
    let json: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(json["unmanaged"], json!([id(&other)]));
    assert_eq!(json["changes"], json!([]));

    project.apply(&api, &["--prune"]);
    let all = api.endpoints();
    assert_eq!(all.len(), 2);
    let still = all.iter().find(|e| e["id"] == other["id"]).unwrap();
    assert_eq!(*still, other, "not even touched (updated_at unchanged)");
    assert_eq!(api.secret(&id(&other)), other_secret);
    api.assert_no_violations();
}

#[test]
fn values_the_server_normalizes_converge() {
    let api = Api::start();
    let project = Project::new();
    project.manifest(
        "endpoints:
  tricky:
    url: https://hooks.example.com/é?x=1
    name: \"  Padded   name  \"
    labels: [\" Team-B \", zeta, alpha]
    enabled: false
    subscribed_event_types:
      - verification.session.failed
      - verification.session.succeeded
      - verification.session.failed
  emoji:
    url: https://hooks.example.com/emoji
    name: \"ünïcødé 🎉\"
    enabled: false
    undelivered_payload_retention_hours: 0
",
    );
    project.apply(&api, &[]);
    assert_eq!(api.endpoints().len(), 2);
    project.assert_converged(&api);
}

#[test]
fn an_endpoint_labelled_by_hand_is_adopted_in_place_with_its_secret() {
    let api = Api::start();
    let made = api.create_endpoint(json!({
        "url": "https://hooks.example.com/old",
        "name": "made in the dashboard",
        "labels": ["kayle-sync:orders"],
        "enabled": false,
    }));
    let secret = api.secret(&id(&made));
    let project = Project::new();
    project.public_key("keys/orders.pem");
    project.manifest(&manifest(&[endpoint("orders", "Orders", &url("orders"))]));

    let plan = project.run(&api, &["plan"]);
    plan.expect(0);
    plan.stdout_has(&["~ update orders"]);
    assert!(!plan.stdout.contains("+ create"), "{}", plan.stdout);

    project.apply(&api, &[]);
    let adopted = api.one("orders");
    assert_eq!(
        id(&adopted),
        id(&made),
        "updated in place, never re-created"
    );
    assert_eq!(adopted["url"], url("orders"));
    assert_eq!(adopted["enabled"], true);
    assert_eq!(api.secret(&id(&made)), secret, "its secret is kept");
    assert_eq!(
        project.sink(&secret_name("orders")),
        Some(secret),
        "and revealed into the sink"
    );
    api.assert_no_violations();
    project.assert_converged(&api);
}
