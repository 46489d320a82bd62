//! End to end: a sink that no longer holds what the API uses is found and repaired: a generated
//! private key lost from the sink or replaced there, and (with `--verify-secrets`) a secret
//! changed behind kayle-sync's back. Requests that land late are in `e2e_late_landings`.

use crate::support;

use std::time::Duration;

use kayle_emulator::{Fault, Route};
use secrecy::SecretString;
use support::{Api, Project, id};

const SECRET: &str = "KAYLE_WEBHOOK_SECRET_ORDERS";
const PRIVATE_KEY: &str = "KAYLE_WEBHOOK_PRIVATE_KEY_ORDERS";

/// Longer than the binary's HTTP timeout (2 s), shorter than its late window (3 s).
const LATE: Duration = Duration::from_millis(2500);

fn manifest(rotation: u64, generate: bool) -> String {
    let key = if generate {
        "      - key_id: gen-1\n        generate: true\n"
    } else {
        "      - key_id: k1\n        public_key_file: keys/k1.pem\n"
    };
    format!(
        "endpoints:\n  orders:\n    url: https://hooks.example.com/orders\n    \
         encryption_keys:\n{key}    signing_secret:\n      rotation: {rotation}\n"
    )
}

fn applied(api: &Api, generate: bool) -> Project {
    let project = Project::new();
    project.public_key("keys/k1.pem");
    project.manifest(&manifest(0, generate));
    project.apply(api, &[]);
    project
}

/// The sink holds the API's current secret, and a plan has nothing to do.
fn assert_true_and_converged(api: &Api, project: &Project) {
    let endpoint = api.one("orders");
    assert_eq!(
        project.sink(SECRET),
        Some(api.secret(&id(&endpoint))),
        "the sink holds the API's current secret"
    );
    project.assert_converged(api);
    api.assert_no_violations();
}

/// The public modulus of the private key the sink holds.
fn sink_key_modulus(project: &Project) -> String {
    let pem = project
        .sink(PRIVATE_KEY)
        .expect("a private key in the sink");
    kayle_sync::apply::keys::public_half(&SecretString::from(pem))
        .expect("an RSA private key")
        .n
}

/// The modulus of the endpoint's one active key.
fn active_key_modulus(api: &Api, endpoint_id: &str) -> String {
    let active: Vec<String> = api
        .keys(endpoint_id)
        .iter()
        .filter(|key| key["is_active"] == true)
        .map(|key| key["jwk"]["n"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(active.len(), 1, "one active key");
    active[0].clone()
}

#[test]
fn a_generated_private_key_lost_from_the_sink_or_replaced_is_repaired() {
    let api = Api::start();
    let project = applied(&api, true);
    let endpoint_id = id(&api.one("orders"));
    let registered = active_key_modulus(&api, &endpoint_id);

    // Deleted from the sink: the plan says so, apply generates and registers a new pair.
    let text: String = std::fs::read_to_string(project.sink_path())
        .unwrap()
        .split_inclusive('\n')
        .filter(|line| !line.starts_with(PRIVATE_KEY))
        .collect();
    std::fs::write(project.sink_path(), text).unwrap();
    let plan = project.run(&api, &["plan", "--detailed-exitcode"]);
    plan.expect(2);
    assert!(
        plan.stdout
            .contains("its private key is missing from the sink"),
        "{}",
        plan.stdout
    );
    project.apply(&api, &[]);
    let repaired = active_key_modulus(&api, &endpoint_id);
    assert_ne!(repaired, registered, "a new pair");
    assert_eq!(repaired, sink_key_modulus(&project));
    assert_true_and_converged(&api, &project);

    // Another private key in the sink than the registered one: registered again from it.
    let other = kayle_sync::apply::keys::generate(2048).unwrap();
    let text = std::fs::read_to_string(project.sink_path()).unwrap();
    let kept: String = text
        .split_inclusive('\n')
        .filter(|line| !line.starts_with(PRIVATE_KEY))
        .collect();
    std::fs::write(project.sink_path(), kept).unwrap();
    let sink = kayle_sync::sink::build(
        "local",
        &kayle_sync::model::SinkConfig::Dotenv {
            path: project.sink_path(),
        },
        project.dir(),
    )
    .unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(sink.put(PRIVATE_KEY, &other.private_pem))
        .unwrap();
    let plan = project.run(&api, &["plan", "--detailed-exitcode"]);
    plan.expect(2);
    assert!(
        plan.stdout
            .contains("the registered key is not the private key in the sink"),
        "{}",
        plan.stdout
    );
    project.apply(&api, &[]);
    assert_eq!(active_key_modulus(&api, &endpoint_id), other.public.n);
    assert_true_and_converged(&api, &project);
}

#[test]
fn verify_secrets_finds_and_repairs_a_sink_holding_another_secret() {
    let api = Api::start();
    let project = applied(&api, false);
    let endpoint_id = id(&api.one("orders"));
    // The secret rotated behind kayle-sync's back (the dashboard, say).
    let text = std::fs::read_to_string(project.sink_path()).unwrap();
    let current = api.secret(&endpoint_id);
    std::fs::write(
        project.sink_path(),
        text.replace(&current, "whsec_00000000000000000000000000000000"),
    )
    .unwrap();
    // A plain plan only sees that a value is there.
    project.assert_converged(&api);
    let requests = api.emu.stats().requests.get(&Route::RevealSecret).copied();
    let plan = project.run(&api, &["plan", "--verify-secrets", "--detailed-exitcode"]);
    plan.expect(2);
    assert!(
        plan.stdout.contains("differs from the API's"),
        "{}",
        plan.stdout
    );
    assert_eq!(
        api.emu.stats().requests.get(&Route::RevealSecret).copied(),
        Some(requests.unwrap_or(0) + 1),
        "one reveal per endpoint"
    );
    assert!(!plan.all().contains(&current), "never printed");
    project.apply(&api, &["--verify-secrets"]);
    assert_true_and_converged(&api, &project);
    project
        .run(&api, &["plan", "--verify-secrets", "--detailed-exitcode"])
        .expect(0);
}

/// The update that records the endpoint unsettled before a rotation has its answer lost; it
/// is repeated, the rotation goes ahead, and the first attempt lands after the run recorded
/// `rotation=1`. One lost request in one run: the bump is still rotated once, not again by
/// the next apply.
#[test]
fn a_state_label_update_that_lands_late_does_not_make_the_next_apply_rotate_again() {
    let api = Api::start();
    let project = applied(&api, false);
    project.manifest(&manifest(1, false));
    let rotations = || {
        api.emu
            .stats()
            .requests
            .get(&Route::RotateSecret)
            .copied()
            .unwrap_or(0)
    };

    api.emu.inject(Route::UpdateEndpoint, Fault::Hang(LATE), 1);
    // Whether this run goes on to rotate or stops, is for kayle-sync to choose.
    let _ = project.run(&api, &["apply", "--auto-approve"]);
    // The lost update has landed by now, and no request of that run can land any more.
    api.wait_out_late_window();
    project.apply(&api, &[]);
    api.wait_out_late_window();
    project.apply(&api, &[]);
    assert_true_and_converged(&api, &project);
    assert_eq!(rotations(), 1, "rotation 1 was applied more than once");
}
