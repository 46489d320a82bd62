//! End to end: a managed endpoint no manifest declares any more is shown by every plan, and
//! `--prune` deletes it together with the secrets it had in the default sink.

use crate::support;

use serde_json::Value;
use support::manifests::{applied, endpoint, manifest, secret_name, url};
use support::{Api, Project, id};

/// `orders` and `billing` applied, then `billing` removed from the manifest.
fn billing_undeclared(api: &Api) -> Project {
    let project = applied(api, &["orders", "billing"]);
    project.manifest(&manifest(&[endpoint(
        "orders",
        "orders service",
        &url("orders"),
    )]));
    project
}

#[test]
fn plan_shows_an_undeclared_endpoint_in_every_format() {
    let api = Api::start();
    let project = billing_undeclared(&api);
    let billing = id(&api.one("billing"));

    let text = project.run(&api, &["plan", "--detailed-exitcode"]);
    text.expect(0);
    let line = format!("Undeclared: billing ({billing})");
    assert!(text.stdout.contains(&line), "{}", text.stdout);
    assert!(
        text.stdout.contains("`--prune` deletes it"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("No changes."), "{}", text.stdout);

    let json = project.run(&api, &["plan", "--format", "json"]);
    json.expect(0);
    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["format_version"], 1);
    assert_eq!(
        doc["undeclared"],
        serde_json::json!([{ "key": "billing", "endpoint_id": billing }])
    );

    let markdown = project.run(&api, &["plan", "--format", "markdown"]);
    markdown.expect(0);
    assert!(
        markdown
            .stdout
            .contains(&format!("`billing` (`{billing}`)")),
        "{}",
        markdown.stdout
    );
}

#[test]
fn prune_removes_the_secret_from_the_default_sink_and_says_so() {
    let api = Api::start();
    let project = billing_undeclared(&api);
    assert!(project.sink(&secret_name("billing")).is_some());

    let plan = project.run(&api, &["plan", "--prune"]);
    plan.expect(0);
    assert!(
        plan.stdout.contains(
            "remove KAYLE_WEBHOOK_SECRET_BILLING, KAYLE_WEBHOOK_PRIVATE_KEY_BILLING from sink local"
        ),
        "{}",
        plan.stdout
    );
    let json = project.run(&api, &["plan", "--prune", "--format", "json"]);
    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["undeclared"], serde_json::json!([]), "a change now");
    assert_eq!(doc["changes"][0]["secret"]["step"], "remove");
    assert_eq!(doc["changes"][0]["secret"]["sink"], "local");

    let run = project.apply(&api, &["--prune"]);
    assert!(
        run.stderr
            .contains("removed KAYLE_WEBHOOK_SECRET_BILLING from sink local"),
        "{}",
        run.stderr
    );
    assert!(api.managed("billing").is_empty(), "pruned");
    assert_eq!(project.sink(&secret_name("billing")), None);
    assert!(project.sink(&secret_name("orders")).is_some(), "kept");
    project.assert_converged(&api);
}

#[test]
fn prune_without_a_default_sink_says_nothing_can_be_removed() {
    let api = Api::start();
    let project = billing_undeclared(&api);
    project.write(
        "kayle-sync.yaml",
        &support::PROJECT_FILE.replace("defaults:\n  signing_secret:\n    sink: local\n", ""),
    );
    project.manifest(&manifest(&[endpoint(
        "orders",
        "orders service",
        &url("orders"),
    )
    .replace(
        "    encryption_keys:",
        "    signing_secret:\n      sink: local\n    encryption_keys:",
    )]));

    let plan = project.run(&api, &["plan", "--prune"]);
    plan.expect(0);
    assert!(plan.stdout.contains("- delete billing"), "{}", plan.stdout);
    assert!(
        plan.all()
            .contains("billing: no default sink is declared, so where its secrets were written is unknown; nothing is removed"),
        "{}",
        plan.all()
    );
    project.apply(&api, &["--prune"]);
    assert!(
        project.sink(&secret_name("billing")).is_some(),
        "left in place"
    );
}
