//! End to end: the real binary's plan and apply against an in-process emulator (issue 4).

mod support;

use serde_json::{Value, json};
use support::{Api, Project, id, labels};

/// One endpoint entry of a manifest, enabled, with one encryption key from `keys/<key>.pem`.
fn endpoint(key: &str, name: &str, url: &str) -> String {
    format!(
        "  {key}:
    url: {url}
    name: {name}
    labels: [team-a]
    subscribed_event_types: [verification.session.succeeded]
    undelivered_payload_retention_hours: 168
    encryption_keys:
      - key_id: {key}-1
        public_key_file: keys/{key}.pem
"
    )
}

/// A disabled endpoint without keys: cheap, for tests about counts.
fn disabled(key: &str) -> String {
    format!("  {key}:\n    url: https://hooks.example.com/{key}\n    enabled: false\n")
}

fn manifest(entries: &[String]) -> String {
    format!("endpoints:\n{}", entries.concat())
}

fn secret_name(key: &str) -> String {
    format!(
        "KAYLE_WEBHOOK_SECRET_{}",
        key.to_uppercase().replace('-', "_")
    )
}

/// A directory declaring `keys` (each with its own public key), applied once.
fn applied(api: &Api, keys: &[&str]) -> Project {
    let project = Project::new();
    for key in keys {
        project.public_key(&format!("keys/{key}.pem"));
    }
    let entries: Vec<String> = keys
        .iter()
        .map(|key| endpoint(key, &format!("{key} service"), &url(key)))
        .collect();
    project.manifest(&manifest(&entries));
    project.apply(api, &[]);
    project
}

fn url(key: &str) -> String {
    format!("https://hooks.example.com/{key}")
}

/// The endpoint of `key` exists once and the sink holds its current secret.
#[track_caller]
fn assert_one_with_secret(api: &Api, project: &Project, key: &str) -> Value {
    let endpoint = api.one(key);
    assert_eq!(
        project.sink(&secret_name(key)).as_deref(),
        Some(api.secret(&id(&endpoint)).as_str()),
        "the sink holds {key}'s current secret"
    );
    endpoint
}

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
    assert!(plan.stdout.contains("+ create orders"), "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains("Plan: 2 to create, 0 to update, 0 to delete."),
        "{}",
        plan.stdout
    );
    assert!(api.endpoints().is_empty(), "plan changes nothing");

    let run = project.apply(&api, &[]);
    assert!(
        run.stdout.contains("Apply complete: 2 created"),
        "{}",
        run.stdout
    );
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
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
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
    assert!(plan.stdout.contains("~ update orders"), "{}", plan.stdout);
    assert!(plan.stdout.contains("Orders v2"), "{}", plan.stdout);
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
    assert!(plan.stdout.contains("~ update orders"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("changed in the dashboard"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("undelivered_payload_retention_hours"),
        "{}",
        plan.stdout
    );

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
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
    project.apply(&api, &[]);
    assert_eq!(
        id(&api.one("billing")),
        id(&billing),
        "kept without --prune"
    );

    let plan = project.run(&api, &["plan", "--prune"]);
    plan.expect(0);
    assert!(plan.stdout.contains("- delete billing"), "{}", plan.stdout);
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
        assert!(
            refused.stderr.contains("declares no endpoints"),
            "{}",
            refused.stderr
        );
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
fn apply_without_a_terminal_needs_auto_approve() {
    let api = Api::start();
    let project = Project::new();
    project.public_key("keys/orders.pem");
    project.manifest(&manifest(&[endpoint("orders", "Orders", &url("orders"))]));

    let refused = project.run(&api, &["apply"]);
    refused.expect(1);
    assert!(
        refused.stderr.contains("--auto-approve"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stdout.contains("+ create orders"),
        "the plan is still shown"
    );
    assert!(api.endpoints().is_empty(), "nothing was created");
    assert!(!project.sink_path().exists(), "nothing was written");
}

#[test]
fn saved_plan_applies_exactly() {
    let api = Api::start();
    let project = applied(&api, &["orders"]);
    project.public_key("keys/billing.pem");
    project.manifest(&manifest(&[
        endpoint("orders", "Orders v2", &url("orders")),
        endpoint("billing", "Billing", &url("billing")),
    ]));
    project.run(&api, &["plan", "--out", "plan.json"]).expect(0);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(project.path("plan.json")).unwrap()).unwrap();
    assert!(saved.is_object(), "the saved plan is JSON");

    let run = project.run(&api, &["apply", "--plan", "plan.json", "--auto-approve"]);
    run.expect(0);
    assert!(
        run.stdout.contains("1 created, 1 updated, 0 deleted"),
        "{}",
        run.stdout
    );
    assert_eq!(api.one("orders")["name"], "Orders v2");
    assert_one_with_secret(&api, &project, "billing");
    api.assert_no_violations();
    project.assert_converged(&api);
}

#[test]
fn saved_plan_is_refused_when_live_state_moved() {
    let api = Api::start();
    let project = applied(&api, &["orders"]);
    project.manifest(&manifest(&[endpoint(
        "orders",
        "Orders v2",
        &url("orders"),
    )]));
    project.run(&api, &["plan", "--out", "plan.json"]).expect(0);
    let live = api.one("orders");
    let moved = api.patch(
        &id(&live),
        json!({"undelivered_payload_retention_hours": 24}),
    );

    let refused = project.run(&api, &["apply", "--plan", "plan.json", "--auto-approve"]);
    refused.expect(1);
    assert!(
        refused.stderr.contains("live state changed"),
        "{}",
        refused.stderr
    );
    assert_eq!(api.one("orders"), moved, "nothing was changed");

    // A saved plan from another configuration is refused too.
    project.run(&api, &["plan", "--out", "plan.json"]).expect(0);
    project.manifest(&manifest(&[endpoint(
        "orders",
        "Orders v3",
        &url("orders"),
    )]));
    let refused = project.run(&api, &["apply", "--plan", "plan.json", "--auto-approve"]);
    refused.expect(1);
    assert_eq!(api.one("orders"), moved, "nothing was changed");
}

#[test]
fn json_plan_has_the_documented_shape() {
    let api = Api::start();
    let other =
        api.create_endpoint(json!({"url": "https://hooks.example.com/x", "enabled": false}));
    let project = applied(&api, &["orders"]);
    project.public_key("keys/billing.pem");
    project.manifest(&manifest(&[
        endpoint("orders", "Orders v2", &url("orders")),
        endpoint("billing", "Billing", &url("billing")),
    ]));

    let run = project.run(&api, &["plan", "--format", "json"]);
    run.expect(0);
    let plan: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(plan["format_version"].is_u64(), "{plan:#}");
    assert_eq!(
        plan["summary"],
        json!({"create": 1, "update": 1, "delete": 0})
    );
    assert_eq!(plan["unmanaged"], json!([id(&other)]));
    let changes = plan["changes"].as_array().unwrap();
    let billing = changes.iter().find(|c| c["key"] == "billing").unwrap();
    assert_eq!(billing["action"], "create");
    assert!(billing["endpoint_id"].is_null());
    assert_eq!(billing["fields"]["url"]["after"], url("billing"));
    let orders = changes.iter().find(|c| c["key"] == "orders").unwrap();
    assert_eq!(orders["action"], "update");
    assert_eq!(orders["endpoint_id"], id(&api.one("orders")));
    assert_eq!(
        orders["fields"]["name"],
        json!({"before": "orders service", "after": "Orders v2"})
    );
    assert!(orders["fields"].get("url").is_none(), "only changed fields");
}

#[test]
fn exit_codes() {
    let api = Api::start();
    let project = Project::new();
    project.manifest(&manifest(&[disabled("orders")]));

    project.run(&api, &["plan", "--no-such-flag"]).expect(64);
    project.run(&api, &["no-such-command"]).expect(64);
    project.run(&api, &["plan"]).expect(0);
    project
        .run(&api, &["plan", "--detailed-exitcode"])
        .expect(2);
    project.apply(&api, &[]);
    project
        .run(&api, &["plan", "--detailed-exitcode"])
        .expect(0);
    project.run(&api, &["--version"]).expect(0);

    project
        .manifest("endpoints:\n  orders:\n    url: https://hooks.example.com/x\n    colour: red\n");
    let invalid = project.run(&api, &["plan", "--detailed-exitcode"]);
    invalid.expect(1);
    assert!(
        invalid.stderr.contains("endpoints.yaml"),
        "{}",
        invalid.stderr
    );

    let unreachable = Api::start();
    let url = unreachable.url.clone();
    drop(unreachable);
    project.manifest(&manifest(&[disabled("orders")]));
    let mut command = project.command(&api, &["plan", "--detailed-exitcode"]);
    command.env("KAYLE_API_URL", url);
    support::finish(command).expect(1);
}

#[test]
fn api_error_is_reported_and_other_endpoints_still_apply() {
    let api = Api::start();
    let project = applied(&api, &["aaa", "bbb"]);
    project.manifest(&manifest(&[
        endpoint("aaa", "A v2", &url("aaa")),
        endpoint("bbb", "B v2", &url("bbb")),
    ]));
    // One endpoint at a time, in key order: the first update (aaa's) gets the 400.
    api.emu.inject(
        kayle_emulator::Route::UpdateEndpoint,
        kayle_emulator::Fault::Status {
            status: 400,
            retry_after_secs: None,
        },
        1,
    );
    let run = project.run(&api, &["apply", "--auto-approve", "--concurrency", "1"]);
    run.expect(1);
    let all = run.all();
    assert!(all.contains("aaa"), "names the endpoint: {all}");
    assert!(all.contains("Bad Request."), "the API's message: {all}");
    assert_eq!(api.one("bbb")["name"], "B v2", "the other one applied");
    assert_eq!(api.one("aaa")["name"], "aaa service");

    // 500s beyond the retry budget (5 attempts) fail the same way.
    project.manifest(&manifest(&[
        endpoint("aaa", "A v3", &url("aaa")),
        endpoint("bbb", "B v3", &url("bbb")),
    ]));
    api.emu.inject(
        kayle_emulator::Route::UpdateEndpoint,
        kayle_emulator::Fault::Status {
            status: 500,
            retry_after_secs: None,
        },
        5,
    );
    let run = project.run(&api, &["apply", "--auto-approve", "--concurrency", "1"]);
    run.expect(1);
    assert!(
        run.all().contains("Internal Server Error."),
        "{}",
        run.all()
    );
    assert_eq!(api.one("bbb")["name"], "B v3", "the other one applied");
    assert_eq!(api.one("aaa")["name"], "aaa service");
    api.emu.clear_faults();

    project.apply(&api, &[]);
    assert_eq!(api.one("aaa")["name"], "A v3");
    assert_eq!(api.one("bbb")["name"], "B v3");
    api.assert_no_violations();
    project.assert_converged(&api);
}
