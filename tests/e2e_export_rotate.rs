//! End to end: taking over an organization with `export` and `adopt`, and `rotate KEY`.

use crate::support;

use serde_json::json;
use support::manifests::{applied, secret_name};
use support::{Api, Project, id, labels};

#[test]
fn export_then_apply_adopts_dashboard_endpoints_in_place_and_converges() {
    let api = Api::start();
    let made = api.create_endpoint(json!({
        "url": "https://dash.example.com/hook",
        "name": "Made in the dashboard",
        "labels": ["team-b"],
        "subscribed_event_types": ["verification.session.failed"],
        "undelivered_payload_retention_hours": 24,
        "enabled": false,
    }));
    let made_id = id(&made);
    let secret_before = api.secret(&made_id);

    let project = Project::new();
    let run = project.run(&api, &["export", ".", "--out", "exported"]);
    run.expect(0);
    let file = project.path("exported/made-in-the-dashboard.yaml");
    let text = std::fs::read_to_string(&file).expect("one manifest per endpoint");
    assert!(text.contains(&format!("adopt: \"{made_id}\"")), "{text}");

    // Before it is applied, the exported manifest plans an adoption: an update, no create.
    let plan = project.run(&api, &["plan", "--format", "json"]);
    plan.expect(0);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(
        plan["summary"],
        json!({"create": 0, "update": 1, "delete": 0})
    );
    assert_eq!(plan["changes"][0]["endpoint_id"], json!(made_id));

    project.apply(&api, &[]);
    assert_eq!(api.endpoints().len(), 1, "adopted, never re-created");
    let adopted = api.one("made-in-the-dashboard");
    assert_eq!(id(&adopted), made_id, "same id");
    assert!(labels(&adopted).contains(&"team-b"), "its own labels kept");
    assert_eq!(api.secret(&made_id), secret_before, "same secret");
    assert_eq!(
        project.sink(&secret_name("made-in-the-dashboard")),
        Some(secret_before.clone()),
        "its secret is now in the sink"
    );
    project.assert_converged(&api);
    assert!(
        !plan_text(&project, &api).contains(&secret_before),
        "no secret in output"
    );
}

#[test]
fn export_refuses_to_overwrite_and_writes_nothing_then() {
    let api = Api::start();
    let project = applied(&api, &["orders"]);
    project.write("exported/orders.yaml", "# mine\n");
    let run = project.run(&api, &["export", ".", "--out", "exported"]);
    run.expect(1);
    run.stderr_has(&["refusing to overwrite"]);
    assert_eq!(
        std::fs::read_to_string(project.path("exported/orders.yaml")).unwrap(),
        "# mine\n"
    );
}

#[test]
fn export_never_writes_through_a_link_in_the_output_directory() {
    let api = Api::start();
    api.create_endpoint(json!({"url": "https://dash.example.com/hook", "name": "Orders"}));
    let project = Project::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = elsewhere.path().join("exported");
    std::fs::create_dir(&out).unwrap();
    // A link to a file that does not exist yet, outside the output directory.
    std::os::unix::fs::symlink("../outside.yaml", out.join("orders.yaml")).unwrap();
    let run = project.run(&api, &["export", ".", "--out", out.to_str().unwrap()]);
    run.expect(1);
    run.stderr_has(&["refusing to overwrite"]);
    assert!(
        !elsewhere.path().join("outside.yaml").exists(),
        "written through the link"
    );
}

#[test]
fn exported_keys_that_read_as_other_scalars_stay_keys() {
    let api = Api::start();
    for key in ["null", "123", "0x1f"] {
        api.create_endpoint(json!({
            "url": format!("https://dash.example.com/{key}"),
            "labels": [format!("kayle-sync:{key}")],
            "enabled": false,
        }));
    }
    let project = Project::new();
    project
        .run(&api, &["export", ".", "--out", "exported"])
        .expect(0);
    let plan = project.run(&api, &["plan", "--format", "json"]);
    plan.expect(0);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(plan["summary"]["create"], 0, "{plan}");
    assert_eq!(plan["summary"]["delete"], 0, "{plan}");
    let mut keys: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, ["0x1f", "123", "null"], "{plan}");
}

#[test]
fn rotate_key_replaces_the_secret_and_writes_the_new_one_to_the_sink() {
    let api = Api::start();
    let project = applied(&api, &["orders"]);
    let endpoint_id = id(&api.one("orders"));
    let before = api.secret(&endpoint_id);

    let refused = project.run(&api, &["rotate", "orders"]);
    refused.expect(1);
    assert_eq!(
        api.secret(&endpoint_id),
        before,
        "no terminal, no --auto-approve: nothing"
    );

    let run = project.run(&api, &["rotate", "orders", "--auto-approve"]);
    run.expect(0);
    let after = api.secret(&endpoint_id);
    assert_ne!(after, before, "rotated");
    assert_eq!(project.sink(&secret_name("orders")), Some(after.clone()));
    for secret in [&before, &after] {
        assert!(!run.all().contains(secret.as_str()), "no secret in output");
    }
    // The manifest's rotation counter did not move: nothing more to do.
    project.assert_converged(&api);

    let unknown = project.run(&api, &["rotate", "nope", "--auto-approve"]);
    unknown.expect(64);
    unknown.stderr_has(&["nope is not declared"]);
}

#[test]
fn rotate_takes_the_directory_like_every_command_and_speaks_of_a_rotation() {
    let api = Api::start();
    let project = applied(&api, &["orders"]);
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = project.dir().to_str().unwrap();

    let refused = project.run(&api, &["rotate", "orders", dir]);
    refused.expect(1);
    refused.stderr_has(&["refusing to rotate"]);
    assert!(!refused.stderr.contains("apply"), "{}", refused.stderr);

    let positional: &[&str] = &["rotate", "orders", dir, "--auto-approve"];
    let option: &[&str] = &["rotate", "orders", "--dir", dir, "--auto-approve"];
    for args in [positional, option] {
        let mut command = project.command(&api, args);
        command.current_dir(elsewhere.path());
        let run = support::finish(command);
        run.expect(0);
        assert!(
            run.stdout
                .contains("Rotation complete: orders has a new signing secret."),
            "{}",
            run.stdout
        );
        assert!(!run.all().to_lowercase().contains("apply"), "{}", run.all());
        assert!(
            run.stderr.contains("orders (whe_")
                && run
                    .stderr
                    .contains("signing secret rotated, written to sink local"),
            "the endpoint's result: {}",
            run.stderr
        );
    }
    let help = project.run(&api, &["rotate", "--help"]);
    help.expect(0);
    help.stdout_has(&["[DIR]"]);
    assert!(!help.stdout.contains("--dir"), "{}", help.stdout);
    project.assert_converged(&api);
}

fn plan_text(project: &Project, api: &Api) -> String {
    project.run(api, &["plan"]).all()
}

#[test]
fn export_out_then_plan_of_that_directory_is_no_changes_without_warnings() {
    let api = Api::start();
    let project = Project::new();
    for key in ["orders-1", "orders-2", "identity-1"] {
        project.public_key(&format!("keys/{key}.pem"));
    }
    project.manifest(
        "endpoints:
  orders:
    url: https://hooks.example.com/orders
    name: Orders
    labels: [team-a, production]
    subscribed_event_types: [verification.session.succeeded]
    undelivered_payload_retention_hours: 24
    encryption_keys:
      - key_id: orders-1
        public_key_file: keys/orders-1.pem
      - key_id: orders-2
        public_key_file: keys/orders-2.pem
  identity:
    url: https://hooks.example.com/identity
    encryption_keys:
      - key_id: identity-1
        public_key_file: keys/identity-1.pem
      - key_id: identity-gen
        generate: true
    signing_secret:
      name: KAYLE_IDENTITY_SIGNING_SECRET
      rotation: 2
  paused:
    url: https://hooks.example.com/paused
    labels: [team-b]
    enabled: false
",
    );
    project.apply(&api, &[]);
    project.assert_converged(&api);

    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("exported");
    let out_arg = out_dir.to_str().unwrap();
    let run = project.run(&api, &["export", ".", "--out", out_arg]);
    run.expect(0);
    let written = std::fs::read_to_string(out_dir.join("kayle-sync.yaml"))
        .expect("a project file is written");
    assert!(written.contains("label_prefix:"), "{written}");
    let orders = std::fs::read_to_string(out_dir.join("orders.yaml")).unwrap();
    assert!(
        orders.find("orders-1").unwrap() < orders.find("orders-2").unwrap(),
        "the active key is listed last: {orders}"
    );

    let plan = project.run(&api, &["plan", out_arg, "--detailed-exitcode"]);
    plan.expect(0);
    plan.stdout_has(&["No changes."]);
    assert!(
        !plan.all().to_lowercase().contains("warning"),
        "no warnings: {}",
        plan.all()
    );
    let json = project.run(&api, &["plan", out_arg, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["warnings"], json!([]), "{json:#}");
    assert_eq!(json["changes"], json!([]), "{json:#}");

    // A second export into the same directory overwrites nothing: neither a manifest, nor a
    // key file, nor the project file.
    let before = std::fs::read_to_string(out_dir.join("kayle-sync.yaml")).unwrap();
    let again = project.run(&api, &["export", ".", "--out", out_arg]);
    again.expect(1);
    again.stderr_has(&["refusing to overwrite"]);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("kayle-sync.yaml")).unwrap(),
        before
    );
}
