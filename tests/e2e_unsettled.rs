//! End to end: requests whose answer was lost land late, processes are killed, and still one
//! more apply (once no lost request can land) leaves the sink holding the API's current secret
//! and the private key of the active key; a plan in between never says `No changes.`.
//!
//! The emulator's `Hang` carries a request out after the client gave up (the tests run the
//! binary with a 2 s HTTP timeout and a 3 s late window; the hangs are 2.5 s).

mod support;

use std::time::{Duration, Instant};

use kayle_emulator::{Fault, Route};
use secrecy::SecretString;
use support::{Api, Project, id};

const SECRET: &str = "KAYLE_WEBHOOK_SECRET_ORDERS";
const PRIVATE_KEY: &str = "KAYLE_WEBHOOK_PRIVATE_KEY_ORDERS";

/// Longer than the binary's HTTP timeout, shorter than its late window.
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

/// Waits until the emulator has received `count` requests of `route` from `child`, however
/// long it takes (a generated RSA key takes seconds, many more on a loaded machine); fails
/// when `child` ends first. The long backstop only keeps a hung child from hanging the suite.
fn wait_for_requests(api: &Api, child: &mut std::process::Child, route: Route, count: u64) {
    let started = Instant::now();
    while api.emu.stats().requests.get(&route).copied().unwrap_or(0) < count {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("kayle-sync ended ({status}) before sending {route:?}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no {route:?} request in 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the API's secret of `endpoint_id` is no longer `old`: the late request landed.
fn wait_for_secret_change(api: &Api, endpoint_id: &str, old: &str) {
    let started = Instant::now();
    while api.secret(endpoint_id) == old {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the late rotation never landed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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

/// A plan right now must not say `No changes.`: the sink may be stale.
fn assert_plan_doubts(api: &Api, project: &Project) {
    let plan = project.run(api, &["plan", "--detailed-exitcode"]);
    plan.expect(2);
    assert!(
        plan.stdout
            .contains("the sink may not hold the API's current secret"),
        "{}",
        plan.stdout
    );
}

#[test]
fn a_declarative_rotation_that_lands_late_is_caught_by_the_next_plan_and_settled() {
    let api = Api::start();
    let project = applied(&api, false);
    project.manifest(&manifest(1, false));
    let endpoint_id = id(&api.one("orders"));

    api.emu.inject(Route::RotateSecret, Fault::Hang(LATE), 1);
    let lost = project.run(&api, &["apply", "--auto-approve"]);
    lost.expect(1);
    assert!(lost.all().contains("outcome unknown"), "{}", lost.all());
    // Apply again at once: it rotates again, and succeeds.
    project.apply(&api, &[]);
    let rotated = api.secret(&endpoint_id);
    assert_eq!(project.sink(SECRET), Some(rotated.clone()));
    // Then the first rotation lands, replacing the secret the sink holds.
    wait_for_secret_change(&api, &endpoint_id, &rotated);
    assert_ne!(project.sink(SECRET), Some(api.secret(&endpoint_id)));
    assert_plan_doubts(&api, &project);

    support::wait_out_late_window();
    project.apply(&api, &[]);
    assert_true_and_converged(&api, &project);
    let labels = support::labels(&api.one("orders"))
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert!(
        labels.contains(&"kayle-sync:rotation=1".to_owned()),
        "{labels:?}"
    );
}

#[test]
fn an_imperative_rotation_that_times_out_or_is_killed_is_settled_by_the_next_apply() {
    let api = Api::start();
    let project = applied(&api, false);
    let endpoint_id = id(&api.one("orders"));

    // Times out: the rotation lands after kayle-sync gave up and wrote what it could see.
    let before = api.secret(&endpoint_id);
    api.emu.inject(Route::RotateSecret, Fault::Hang(LATE), 1);
    let rotate = project.run(&api, &["rotate", "orders", "--auto-approve"]);
    rotate.expect(1);
    wait_for_secret_change(&api, &endpoint_id, &before);
    assert_ne!(project.sink(SECRET), Some(api.secret(&endpoint_id)));
    assert_plan_doubts(&api, &project);
    support::wait_out_late_window();
    project.apply(&api, &[]);
    assert_true_and_converged(&api, &project);

    // Killed while the rotation is in flight: it lands after the process is gone.
    let before = api.secret(&endpoint_id);
    let requests = api
        .emu
        .stats()
        .requests
        .get(&Route::RotateSecret)
        .copied()
        .unwrap_or(0);
    api.emu.inject(Route::RotateSecret, Fault::Hang(LATE), 1);
    let mut child = support::spawn(project.command(&api, &["rotate", "orders", "--auto-approve"]));
    wait_for_requests(&api, &mut child, Route::RotateSecret, requests + 1);
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for_secret_change(&api, &endpoint_id, &before);
    assert_plan_doubts(&api, &project);
    support::wait_out_late_window();
    project.apply(&api, &[]);
    assert_true_and_converged(&api, &project);
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
fn a_generated_key_registration_that_lands_after_a_kill_registers_the_same_key() {
    let api = Api::start();
    let project = Project::new();
    project.manifest(&manifest(0, true));
    // The key registration hangs; the apply is killed meanwhile.
    api.emu.inject(Route::CreateKey, Fault::Hang(LATE), 1);
    let mut child = support::spawn(project.command(&api, &["apply", "--auto-approve"]));
    wait_for_requests(&api, &mut child, Route::CreateKey, 1);
    child.kill().unwrap();
    child.wait().unwrap();
    let endpoint_id = id(&api.one("orders"));
    assert_eq!(api.one("orders")["enabled"], false, "created disabled");

    // Applied again at once: the sink's key is registered again, not a new one minted.
    let run = project.apply(&api, &[]);
    assert!(
        run.stdout
            .contains("using the private key sink local holds"),
        "{}",
        run.stdout
    );
    // Then the first registration lands, and becomes the active key.
    let started = Instant::now();
    while api.keys(&endpoint_id).len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(10), "never landed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        active_key_modulus(&api, &endpoint_id),
        sink_key_modulus(&project),
        "the active key is the one whose private half the sink holds"
    );
    assert_eq!(api.one("orders")["enabled"], true);
    assert_true_and_converged(&api, &project);
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
