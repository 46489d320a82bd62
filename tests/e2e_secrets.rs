//! End to end: the signing-secret lifecycle and encryption keys (issue 5), with the real
//! binary against an in-process emulator.

use crate::support;

use rsa::pkcs8::DecodePrivateKey;
use serde_json::Value;
use support::{Api, Project, id, labels};

const SECRET: &str = "KAYLE_WEBHOOK_SECRET_ORDERS";

/// The manifest of one enabled endpoint `orders`; `extra` is appended to its entry.
fn orders(keys: &[&str], extra: &str) -> String {
    let mut yaml = String::from(
        "endpoints:\n  orders:\n    url: https://hooks.example.com/orders\n    name: Orders\n",
    );
    if !keys.is_empty() {
        yaml.push_str("    encryption_keys:\n");
        for key in keys {
            yaml.push_str(&format!(
                "      - key_id: {key}\n        public_key_file: keys/{key}.pem\n"
            ));
        }
    }
    yaml.push_str(extra);
    yaml
}

fn rotation(n: u64) -> String {
    format!("    signing_secret:\n      rotation: {n}\n")
}

/// `orders` with key `k1`, applied.
fn applied(api: &Api, extra: &str) -> Project {
    let project = Project::new();
    project.public_key("keys/k1.pem");
    project.manifest(&orders(&["k1"], extra));
    project.apply(api, &[]);
    project
}

/// `(key_id, is_active)` of every key of an endpoint, sorted by key id.
fn key_states(api: &Api, endpoint_id: &str) -> Vec<(String, bool)> {
    let mut keys: Vec<(String, bool)> = api
        .keys(endpoint_id)
        .iter()
        .map(|k| {
            (
                k["key_id"].as_str().unwrap().to_owned(),
                k["is_active"].as_bool().unwrap(),
            )
        })
        .collect();
    keys.sort();
    keys
}

/// The sink file without the line that sets `name`.
fn remove_line(project: &Project, name: &str) {
    let text: String = project
        .sink_text()
        .lines()
        .filter(|line| !line.starts_with(&format!("{name}=")))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(project.sink_path(), text).unwrap();
}

#[test]
fn missing_secret_is_recovered_from_the_api() {
    let api = Api::start();
    let project = applied(&api, "");
    project.write(
        "secrets/kayle.env",
        &format!("# kept\nOTHER=1\n{}", project.sink_text()),
    );
    let endpoint = api.one("orders");
    let secret = api.secret(&id(&endpoint));
    remove_line(&project, SECRET);
    assert_eq!(project.sink(SECRET), None);

    let plan = project.run(&api, &["plan", "--detailed-exitcode"]);
    plan.expect(2);
    assert!(
        plan.stdout.contains(&format!("{SECRET}: recover")),
        "{}",
        plan.stdout
    );
    let json = project.run(&api, &["plan", "--format", "json"]);
    let json: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["changes"][0]["secret"]["step"], "recover", "{json:#}");

    project.apply(&api, &[]);
    assert_eq!(project.sink(SECRET), Some(secret.clone()), "written back");
    assert_eq!(api.secret(&id(&endpoint)), secret, "revealed, not rotated");
    assert_eq!(id(&api.one("orders")), id(&endpoint));
    assert!(
        project.sink_text().starts_with("# kept\nOTHER=1\n"),
        "other lines are kept: {}",
        project.sink_text().lines().next().unwrap_or_default()
    );
    api.assert_no_violations();
    project.assert_converged(&api);
}

#[test]
fn failed_sink_write_fails_the_apply_and_the_next_apply_recovers() {
    let api = Api::start();
    let project = Project::new();
    project.public_key("keys/k1.pem");
    project.manifest(&orders(&["k1"], ""));
    // A file where the sink's directory should be: the write cannot succeed, which is found
    // before the API is changed.
    project.write("secrets", "not a directory");

    let failed = project.run(&api, &["apply", "--auto-approve"]);
    failed.expect(1);
    let all = failed.all();
    assert!(all.contains("sink local"), "names the sink: {all}");
    assert!(all.contains("nothing was changed"), "{all}");
    assert!(api.endpoints().is_empty(), "nothing created");
    api.assert_no_violations();

    std::fs::remove_file(project.path("secrets")).unwrap();
    project.apply(&api, &[]);
    let endpoint = api.one("orders");
    assert_eq!(endpoint["enabled"], true);
    assert_eq!(project.sink(SECRET), Some(api.secret(&id(&endpoint))));
    api.assert_no_violations();
    project.assert_converged(&api);
}

#[test]
fn rotation_is_applied_exactly_once() {
    let api = Api::start();
    let project = applied(&api, "");
    let endpoint = api.one("orders");
    let first = api.secret(&id(&endpoint));

    project.manifest(&orders(&["k1"], &rotation(1)));
    let plan = project.run(&api, &["plan"]);
    plan.expect(0);
    assert!(plan.stdout.contains("rotate 0 → 1"), "{}", plan.stdout);
    project.apply(&api, &[]);
    let second = api.secret(&id(&endpoint));
    assert_ne!(second, first, "rotated");
    assert_eq!(project.sink(SECRET), Some(second.clone()));
    assert!(
        labels(&api.one("orders")).contains(&"kayle-sync:rotation=1"),
        "the applied rotation is recorded: {:?}",
        api.one("orders")
    );

    let again = project.apply(&api, &[]);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    assert_eq!(api.secret(&id(&endpoint)), second, "not rotated again");
    project.assert_converged(&api);

    project.manifest(&orders(&["k1"], &rotation(2)));
    project.apply(&api, &[]);
    let third = api.secret(&id(&endpoint));
    assert_ne!(third, second);
    assert_eq!(project.sink(SECRET), Some(third.clone()));
    project.apply(&api, &[]);
    assert_eq!(api.secret(&id(&endpoint)), third);
    assert_eq!(
        id(&api.one("orders")),
        id(&endpoint),
        "same endpoint throughout"
    );
    api.assert_no_violations();
}

#[test]
fn an_endpoint_created_with_a_rotation_counter_is_not_rotated() {
    let api = Api::start();
    let project = applied(&api, &rotation(3));
    let endpoint = api.one("orders");
    assert!(labels(&endpoint).contains(&"kayle-sync:rotation=3"));
    assert_eq!(
        api.emu
            .stats()
            .requests
            .get(&kayle_emulator::Route::RotateSecret),
        None
    );
    assert_eq!(project.sink(SECRET), Some(api.secret(&id(&endpoint))));
    project.assert_converged(&api);
}

#[test]
fn key_rotation_keeps_old_keys_registered_and_inactive() {
    let api = Api::start();
    let project = applied(&api, "");
    let endpoint = id(&api.one("orders"));
    assert_eq!(key_states(&api, &endpoint), [("k1".into(), true)]);

    // A second entry: the last one is the active key, the first stays registered.
    project.public_key("keys/k2.pem");
    project.manifest(&orders(&["k1", "k2"], ""));
    project.apply(&api, &[]);
    assert_eq!(
        key_states(&api, &endpoint),
        [("k1".into(), false), ("k2".into(), true)]
    );
    project.assert_converged(&api);

    // Dropping the old entry: it is already inactive, so nothing changes (keys are never
    // deleted, so history stays decryptable).
    project.manifest(&orders(&["k2"], ""));
    project.assert_converged(&api);
    assert_eq!(
        key_states(&api, &endpoint),
        [("k1".into(), false), ("k2".into(), true)]
    );

    // Listing the old key last again reactivates it.
    project.manifest(&orders(&["k2", "k1"], ""));
    let plan = project.run(&api, &["plan"]);
    assert!(plan.stdout.contains("reactivate"), "{}", plan.stdout);
    project.apply(&api, &[]);
    assert_eq!(
        key_states(&api, &endpoint),
        [("k1".into(), true), ("k2".into(), false)]
    );
    project.assert_converged(&api);
    assert_eq!(api.one("orders")["enabled"], true);
    api.assert_no_violations();
}

#[test]
fn a_key_no_entry_names_is_deactivated() {
    let api = Api::start();
    let project = applied(&api, "");
    let endpoint = id(&api.one("orders"));
    project.public_key("keys/k2.pem");
    project.manifest(&orders(&["k1", "k2"], ""));
    project.apply(&api, &[]);
    // Someone switches the old key back on behind kayle-sync's back.
    let k1 = api
        .keys(&endpoint)
        .into_iter()
        .find(|k| k["key_id"] == "k1")
        .unwrap();
    let (status, body) = api.request(
        "POST",
        &format!("/v1/webhooks/keys/{}/reactivate", id(&k1)),
        None,
    );
    assert!(status < 300, "{status} {body}");
    assert_eq!(
        key_states(&api, &endpoint),
        [("k1".into(), true), ("k2".into(), false)]
    );

    project.apply(&api, &[]);
    assert_eq!(
        key_states(&api, &endpoint),
        [("k1".into(), false), ("k2".into(), true)]
    );
    project.assert_converged(&api);
    api.assert_no_violations();
}

#[test]
fn generated_key_pair_private_half_goes_to_the_sink() {
    let api = Api::start();
    let project = Project::new();
    project.manifest(
        "endpoints:
  orders:
    url: https://hooks.example.com/orders
    encryption_keys:
      - key_id: gen-1
        generate: true
",
    );
    let run = project.apply(&api, &[]);
    let endpoint = api.one("orders");
    let pem = project
        .sink("KAYLE_WEBHOOK_PRIVATE_KEY_ORDERS")
        .expect("the private key is in the sink");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM");
    assert!(!run.all().contains("PRIVATE KEY-----"), "never printed");
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap();
    let public = kayle_sync::apply::keys::public_jwk(&private.to_public_key());
    let keys = api.keys(&id(&endpoint));
    assert_eq!(keys.len(), 1, "{keys:#?}");
    assert_eq!(keys[0]["key_id"], "gen-1");
    assert_eq!(keys[0]["is_active"], true);
    assert_eq!(
        keys[0]["jwk"]["n"],
        public.n.as_str(),
        "the public half matches"
    );
    assert_eq!(keys[0]["jwk"]["e"], public.e.as_str());
    assert_eq!(
        project.sink(SECRET),
        Some(api.secret(&id(&endpoint))),
        "and the signing secret next to it"
    );
    assert_eq!(endpoint["enabled"], true);
    api.assert_no_violations();

    project.assert_converged(&api);
    assert_eq!(
        project.sink("KAYLE_WEBHOOK_PRIVATE_KEY_ORDERS"),
        Some(pem),
        "not generated again"
    );
}

#[test]
fn failing_command_sink_fails_the_apply_and_leaves_the_endpoint_disabled() {
    let api = Api::start();
    let project = Project::with_project_file(
        "\
api:
  url: http://127.0.0.1:9
sinks:
  ci:
    type: command
    command: [\"sh\", \"-c\", \"echo refused by the store: >&2; cat >&2; exit 3\"]
defaults:
  signing_secret:
    sink: ci
",
    );
    project.public_key("keys/k1.pem");
    project.manifest(&orders(&["k1"], ""));

    let run = project.run(&api, &["apply", "--auto-approve"]);
    run.expect(1);
    let all = run.all();
    assert!(all.contains("orders"), "names the endpoint: {all}");
    assert!(all.contains("sink ci"), "names the sink: {all}");
    assert!(
        all.contains("refused by the store"),
        "shows the command's stderr: {all}"
    );
    let endpoint = api.one("orders");
    assert_eq!(
        endpoint["enabled"], false,
        "never enabled without its secret"
    );
    assert!(
        !all.contains(&api.secret(&id(&endpoint))),
        "the command echoed the secret on stderr; it is not shown: {all}"
    );
    assert_eq!(key_states(&api, &id(&endpoint)), [("k1".into(), true)]);
    api.assert_no_violations();
}

#[test]
fn a_renamed_secret_is_written_under_its_new_name_without_rotating() {
    let api = Api::start();
    let project = applied(&api, "");
    let endpoint = api.one("orders");
    let secret = api.secret(&id(&endpoint));

    project.manifest(&orders(
        &["k1"],
        "    signing_secret:\n      name: ORDERS_WEBHOOK_SECRET\n",
    ));
    project.apply(&api, &[]);
    assert_eq!(project.sink("ORDERS_WEBHOOK_SECRET"), Some(secret.clone()));
    assert_eq!(api.secret(&id(&endpoint)), secret, "not rotated");
    assert_eq!(
        api.emu
            .stats()
            .requests
            .get(&kayle_emulator::Route::RotateSecret),
        None
    );
    project.assert_converged(&api);
    api.assert_no_violations();
}

#[test]
fn an_endpoint_without_a_key_is_never_enabled_and_the_plan_says_how_to_fix_it() {
    let api = Api::start();
    let project = Project::new();
    project.manifest(&orders(&[], ""));
    let validate = project.run(&api, &["validate"]);
    validate.expect(0);
    assert!(
        validate.all().contains("without an encryption key"),
        "{}",
        validate.all()
    );
    let plan = project.run(&api, &["plan"]);
    plan.expect(0);
    assert!(
        plan.all().contains("orders is not enabled")
            && plan.all().contains("declare a key under `encryption_keys`"),
        "{}",
        plan.all()
    );
    project.apply(&api, &[]);
    let endpoint = api.one("orders");
    assert_eq!(endpoint["enabled"], false, "not enabled without a key");
    assert_eq!(project.sink(SECRET), Some(api.secret(&id(&endpoint))));
    // Nothing more can be done until a key is declared: the plan says so, and changes nothing.
    let again = project.run(&api, &["plan", "--detailed-exitcode"]);
    again.expect(0);
    assert!(
        again.all().contains("orders is not enabled"),
        "{}",
        again.all()
    );

    // Once a key is declared, it is registered and the endpoint enabled.
    project.public_key("keys/k1.pem");
    project.manifest(&orders(&["k1"], ""));
    project.apply(&api, &[]);
    assert_eq!(api.one("orders")["enabled"], true);
    project.assert_converged(&api);
    api.assert_no_violations();
}

#[test]
fn a_sink_that_cannot_be_read_is_a_plan_warning_not_a_failure() {
    let api = Api::start();
    let project = applied(&api, "");
    // The secret now goes to a Vault nobody can reach from here (a pull-request job without
    // its credentials): whether it holds the secret is unknown, and the plan says so.
    project.write(
        "kayle-sync.yaml",
        &support::PROJECT_FILE.replace(
            "defaults:",
            "  vault:\n    type: vault\n    address: http://127.0.0.1:1\n    \
             token_env: VAULT_KAYLE_TEST_UNSET_TOKEN\ndefaults:",
        ),
    );
    project.manifest(&orders(&["k1"], "    signing_secret:\n      sink: vault\n"));
    let run = project.run(&api, &["plan", "--detailed-exitcode"]);
    run.expect(0);
    assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    assert!(
        run.all().contains("sink vault could not be read"),
        "{}",
        run.all()
    );
}

/// Junk under a generated key's private key name is the sink's problem, not the plan's: the
/// error names the sink, the name and what to do, never the value, and no step says the junk
/// was used. The junk is left where it is, and the endpoint disabled with no key.
#[test]
fn junk_under_a_generated_keys_private_key_name_is_named_not_shown() {
    const JUNK: &str = "notakey-x7q";
    const NAME: &str = "KAYLE_WEBHOOK_PRIVATE_KEY_ZETA";
    let api = Api::start();
    let project = Project::new();
    project.write("secrets/kayle.env", &format!("{NAME}={JUNK}\n"));
    project.manifest(
        "endpoints:\n  zeta:\n    url: https://hooks.example.com/zeta\n    encryption_keys:\n      \
         - key_id: zeta-1\n        generate: true\n",
    );
    let said = format!(
        "zeta: key zeta-1 is not registered: sink local holds a value under {NAME} that is not \
         a usable private key"
    );
    // The first apply creates the endpoint; the second finds it and tries the key again.
    for format in ["text", "json"] {
        let run = project.run(&api, &["apply", "--auto-approve", "--format", format]);
        run.expect(1);
        let all = run.all();
        assert!(all.contains(&said), "{format}: {all}");
        assert!(all.contains("remove that value from the sink"), "{all}");
        assert!(!all.contains(JUNK), "the value is never shown: {all}");
        assert!(!all.contains("using the private key"), "{all}");
        assert!(!all.contains("does not match"), "{all}");
    }
    // Once the endpoint exists, its plan reads the sink and says the apply will fail.
    let plan = project.run(&api, &["plan"]);
    plan.expect(0).stderr_has(&[
        "zeta: sink local holds something under the private key name of key zeta-1",
        "the key cannot be registered, and apply fails",
    ]);
    assert!(!plan.all().contains(JUNK), "{}", plan.all());
    assert_eq!(project.sink(NAME).as_deref(), Some(JUNK), "left as it is");
    let endpoint = api.one("zeta");
    assert_eq!(endpoint["enabled"], false);
    assert!(api.keys(&id(&endpoint)).is_empty());
    api.assert_no_violations();
}
