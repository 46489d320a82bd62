//! End to end under faults: a lost create answer, a create that times out, and two applies
//! racing end, after one more apply at most, with exactly one endpoint per key and its current
//! secret in the sink (issue 4).

mod support;

use std::time::Duration;

use kayle_emulator::{Fault, Route};
use support::{Api, Project, id};

const KEYS: [&str; 2] = ["orders", "identity"];

/// Two enabled endpoints, each with a public key.
fn project() -> Project {
    let project = Project::new();
    let mut yaml = String::from("endpoints:\n");
    for key in KEYS {
        project.public_key(&format!("keys/{key}.pem"));
        yaml.push_str(&format!(
            "  {key}:
    url: https://hooks.example.com/{key}
    name: {key}
    encryption_keys:
      - key_id: {key}-1
        public_key_file: keys/{key}.pem
"
        ));
    }
    project.manifest(&yaml);
    project
}

fn secret_name(key: &str) -> String {
    format!("KAYLE_WEBHOOK_SECRET_{}", key.to_uppercase())
}

/// Exactly one endpoint per key, enabled with its key active, its current secret in the sink,
/// nothing ever enabled without a key, and nothing left to do.
#[track_caller]
fn assert_settled(api: &Api, project: &Project) {
    assert_eq!(api.endpoints().len(), KEYS.len(), "{:#?}", api.endpoints());
    for key in KEYS {
        let endpoint = api.one(key);
        assert_eq!(endpoint["enabled"], true, "{endpoint:#}");
        let keys = api.keys(&id(&endpoint));
        assert!(
            keys.iter().any(|k| k["is_active"] == true),
            "{key} has an active key: {keys:#?}"
        );
        assert_eq!(
            project.sink(&secret_name(key)),
            Some(api.secret(&id(&endpoint))),
            "the sink holds {key}'s current secret"
        );
    }
    api.assert_no_violations();
    project.assert_converged(api);
}

/// Runs `apply --auto-approve`; returns whether it succeeded. A failure is allowed once: the
/// contract is that one more apply settles.
fn apply_once(api: &Api, project: &Project) -> bool {
    let run = project.run(api, &["apply", "--auto-approve"]);
    assert!(run.code == 0 || run.code == 1, "{run:#?}");
    run.code == 0
}

#[test]
fn lost_create_answer_adopts_the_endpoint_and_recovers_its_secret() {
    let api = Api::start();
    let project = project();
    api.emu
        .inject(Route::CreateEndpoint, Fault::DropAfterCommit, 1);

    let first = project.run(&api, &["apply", "--auto-approve"]);
    first.expect(0);
    assert!(
        first.stdout.contains("after a lost answer"),
        "{}",
        first.stdout
    );
    assert_eq!(
        api.emu.stats().requests[&Route::CreateEndpoint],
        2,
        "the lost create is not repeated: one per key"
    );
    assert_settled(&api, &project);
}

#[test]
fn timed_out_create_settles_after_one_more_apply() {
    let api = Api::start();
    let project = project();
    // Longer than KAYLE_SYNC_HTTP_TIMEOUT (2s): the client gives up, then the create lands.
    api.emu.inject(
        Route::CreateEndpoint,
        Fault::Hang(Duration::from_secs(3)),
        1,
    );

    apply_once(&api, &project);
    // Let the hung create land before looking.
    std::thread::sleep(Duration::from_millis(1500));
    project.apply(&api, &[]);
    assert_settled(&api, &project);
}

/// Added to every call while two applies race, so that both list before either creates.
const RACE_LATENCY: Duration = Duration::from_millis(300);

/// The race did what it is for: both processes created, so there are duplicates to resolve,
/// and neither enabled an endpoint before its key was registered.
#[track_caller]
fn assert_raced(api: &Api) {
    assert!(
        api.endpoints().len() > KEYS.len(),
        "both applies created: {:#?}",
        api.endpoints()
    );
    api.assert_no_violations();
}

#[test]
fn racing_applies_settle_after_one_more_apply() {
    let api = Api::start();
    let project = project();
    api.emu.set_latency(RACE_LATENCY);
    let first = support::spawn(project.command(&api, &["apply", "--auto-approve"]));
    let second = support::spawn(project.command(&api, &["apply", "--auto-approve"]));
    let (first, second) = (support::wait(first), support::wait(second));
    for run in [&first, &second] {
        assert!(run.code == 0 || run.code == 1, "{run:#?}");
    }
    assert_raced(&api);
    api.emu.set_latency(Duration::ZERO);

    project.apply(&api, &[]);
    assert_settled(&api, &project);
}

#[test]
fn racing_applies_from_two_copies_of_the_directory_settle() {
    let api = Api::start();
    let one = project();
    // Another checkout of the same configuration, writing to the same secret store.
    let sink = one.sink_path();
    let two = Project::with_project_file(&support::PROJECT_FILE.replace(
        "path: secrets/kayle.env",
        &format!("path: {}", sink.display()),
    ));
    for file in ["endpoints.yaml", "keys/orders.pem", "keys/identity.pem"] {
        two.write(file, &std::fs::read_to_string(one.path(file)).unwrap());
    }
    api.emu.set_latency(RACE_LATENCY);
    let first = support::spawn(one.command(&api, &["apply", "--auto-approve"]));
    let second = support::spawn(two.command(&api, &["apply", "--auto-approve"]));
    let (first, second) = (support::wait(first), support::wait(second));
    for run in [&first, &second] {
        assert!(run.code == 0 || run.code == 1, "{run:#?}");
    }
    api.emu.set_latency(Duration::ZERO);
    assert_raced(&api);

    // Either copy settles the organization; the other then has nothing left to do.
    one.apply(&api, &[]);
    assert_settled(&api, &one);
    two.assert_converged(&api);
}
