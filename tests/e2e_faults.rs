//! End to end under faults: a lost create answer, a create that times out, and two applies
//! racing end, after one more apply at most, with exactly one endpoint per key and its current
//! secret in the sink (issue 4).

use crate::support;

use std::collections::BTreeSet;
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
        first.stderr.contains("after a lost answer"),
        "{}",
        first.stderr
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
        Fault::Hang(Duration::from_millis(2300)),
        1,
    );

    apply_once(&api, &project);
    // Let the hung create land before looking.
    api.until_landed();
    project.apply(&api, &[]);
    assert_settled(&api, &project);
}

/// `apply --auto-approve` in `project`, with a client timeout longer than any barrier holds a
/// request: a racer that starts late must not make the first one's listing time out.
fn patient_apply(api: &Api, project: &Project) -> std::process::Child {
    let mut command = project.command(api, &["apply", "--auto-approve"]);
    command.env("KAYLE_SYNC_HTTP_TIMEOUT", "60s");
    support::spawn(command)
}

/// Makes the next `creates` creates wait before they land, so that two applies started
/// together both list before either creates, however late the second one starts (within it).
fn slow_creates(api: &Api, creates: usize) {
    api.emu.inject(
        Route::CreateEndpoint,
        Fault::Hang(Duration::from_millis(1200)),
        creates,
    );
}

/// The race did what it is for: both processes created every endpoint, so there are
/// duplicates to resolve, and neither enabled an endpoint before its key was registered.
#[track_caller]
fn assert_raced(api: &Api) {
    assert_eq!(
        api.endpoints().len(),
        2 * KEYS.len(),
        "both applies created: {:#?}",
        api.endpoints()
    );
    api.assert_no_violations();
}

#[test]
fn applies_of_one_directory_take_turns_and_make_no_duplicates() {
    let api = Api::start();
    let project = project();
    slow_creates(&api, 2 * KEYS.len());
    let first = support::spawn(project.command(&api, &["apply", "--auto-approve"]));
    let second = support::spawn(project.command(&api, &["apply", "--auto-approve"]));
    let (first, second) = (support::wait(first), support::wait(second));
    for run in [&first, &second] {
        assert_eq!(run.code, 0, "{run:#?}");
    }
    assert_eq!(
        api.endpoints().len(),
        KEYS.len(),
        "the second waited, then found them"
    );
    api.assert_no_violations();
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
    api.list_together(2);
    let first = patient_apply(&api, &one);
    let second = patient_apply(&api, &two);
    let (first, second) = (support::wait(first), support::wait(second));
    for run in [&first, &second] {
        assert!(run.code == 0 || run.code == 1, "{run:#?}");
    }
    assert_raced(&api);

    // Either copy settles the organization; the other then has nothing left to do.
    one.apply(&api, &[]);
    assert_settled(&api, &one);
    two.assert_converged(&api);
}

/// Lost answers of calls that can be checked settle within the same apply; a lost update, which
/// could land late over a later record, leaves the endpoint unsettled until it no longer can;
/// a lost rotation is not repeated, and none starts while a lost request may still land.
#[test]
fn lost_answers_on_other_writes_settle_in_the_same_apply() {
    let api = Api::start();
    let project = project();
    api.emu.inject(Route::CreateKey, Fault::DropAfterCommit, 1);
    api.emu
        .inject(Route::UpdateEndpoint, Fault::DropAfterCommit, 1);
    project.apply(&api, &[]);
    for key in KEYS {
        assert_eq!(api.keys(&id(&api.one(key))).len(), 1, "one key for {key}");
    }
    // The update whose answer was lost was made again, with the endpoint recorded unsettled
    // until the lost one can no longer land.
    assert!(
        unsettled(&api),
        "a lost update leaves its endpoint unsettled"
    );
    settle_after_the_window(&api, &project);
    assert_settled(&api, &project);

    // A rotation whose answer is lost: the secret changed, and nobody saw the new one.
    let with_rotation = std::fs::read_to_string(project.path("endpoints.yaml"))
        .unwrap()
        .replace(
            "    name: orders\n",
            "    name: orders\n    signing_secret:\n      rotation: 1\n",
        );
    project.manifest(&with_rotation);
    let before = api.secret(&id(&api.one("orders")));
    api.emu
        .inject(Route::RotateSecret, Fault::DropAfterCommit, 1);
    // Not repeated (a lost rotation can land after a repeat): the apply fails, and the sink
    // gets what the API holds now.
    let run = project.run(&api, &["apply", "--auto-approve"]);
    run.expect(1);
    assert!(run.all().contains("outcome unknown"), "{}", run.all());
    // The step log says what was written, as for any failed entry.
    assert!(
        run.stderr.contains(&format!(
            "Update FAILED after signing secret recovered to sink local as {} (it was unsettled)",
            secret_name("orders")
        )),
        "{}",
        run.stderr
    );
    let now = api.secret(&id(&api.one("orders")));
    assert_ne!(now, before);
    assert_eq!(project.sink(&secret_name("orders")), Some(now.clone()));
    // The lost rotation may still land until the late window has passed: until then no
    // rotation starts, the sink is checked instead, and a plan says so.
    let deferred = project.run(&api, &["apply", "--auto-approve"]);
    deferred.expect(1);
    assert!(
        deferred.all().contains("rotation not started"),
        "{}",
        deferred.all()
    );
    assert_eq!(
        api.secret(&id(&api.one("orders"))),
        now,
        "not rotated again"
    );
    assert_eq!(project.sink(&secret_name("orders")), Some(now.clone()));
    settle_after_the_window(&api, &project);
    assert_ne!(
        api.secret(&id(&api.one("orders"))),
        now,
        "rotated once the window passed"
    );
    assert_settled(&api, &project);

    // A delete whose answer is lost.
    let without_identity = with_rotation.split("  identity:").next().unwrap();
    project.manifest(without_identity);
    api.emu
        .inject(Route::DeleteEndpoint, Fault::DropAfterCommit, 1);
    project.apply(&api, &["--prune"]);
    assert!(api.managed("identity").is_empty());
    assert_eq!(api.endpoints().len(), 1);
    project
        .run(&api, &["plan", "--prune", "--detailed-exitcode"])
        .expect(0);
    api.assert_no_violations();
}

#[test]
fn a_process_killed_after_create_leaves_it_disabled_and_the_next_apply_finishes() {
    let api = Api::start();
    let project = project();
    // The key registration hangs: the endpoint exists (disabled), its secret is not written.
    api.emu
        .inject(Route::CreateKey, Fault::Hang(Duration::from_secs(30)), 2);
    let mut child = support::spawn(project.command(&api, &["apply", "--auto-approve"]));
    let started = std::time::Instant::now();
    while api.emu.stats().requests.get(&Route::CreateKey).copied() < Some(2) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no key registration"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    api.emu.clear_faults();
    for key in KEYS {
        assert_eq!(api.one(key)["enabled"], false, "created disabled");
        assert_eq!(project.sink(&secret_name(key)), None);
    }
    api.assert_no_violations();

    let plan = project.run(&api, &["plan"]);
    assert!(
        plan.stdout
            .contains("the sink may not hold the API's current secret"),
        "{}",
        plan.stdout
    );
    project.apply(&api, &[]);
    assert_settled(&api, &project);
}

#[test]
fn a_page_served_again_never_looks_like_duplicates() {
    let api = Api::start();
    let project = Project::new();
    let entries: String = (0..130)
        .map(|i| {
            format!("  svc-{i:03}:\n    url: https://hooks.example.com/{i}\n    enabled: false\n")
        })
        .collect();
    project.manifest(&format!("endpoints:\n{entries}"));
    project.apply(&api, &[]);
    assert_eq!(api.endpoints().len(), 130);
    for endpoint in api.endpoints() {
        let key = support::labels(&endpoint)[0]
            .strip_prefix(support::PREFIX)
            .unwrap();
        let name = format!(
            "KAYLE_WEBHOOK_SECRET_{}",
            key.to_uppercase().replace('-', "_")
        );
        assert_eq!(
            project.sink(&name),
            Some(api.secret(&id(&endpoint))),
            "130 concurrent writes to one dotenv file all landed"
        );
    }

    // The second page of the next listing waits at a barrier; meanwhile the endpoint its
    // cursor names is deleted, so the server serves page 1 again. A listing of the test's own
    // then fills the barrier.
    api.emu.reset_stats();
    // The first page goes straight through.
    api.emu
        .inject(Route::ListEndpoints, Fault::Hang(Duration::ZERO), 1);
    api.list_together(2);
    let mut command = project.command(&api, &["apply", "--auto-approve", "--prune"]);
    // The held page must not time out while the test deletes.
    command.env("KAYLE_SYNC_HTTP_TIMEOUT", "60s");
    let child = support::spawn(command);
    let started = std::time::Instant::now();
    while api.emu.stats().requests.get(&Route::ListEndpoints).copied() < Some(2) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no second page"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let cursor = api.endpoints()[99].clone();
    let (status, _) = api.request(
        "DELETE",
        &format!("/v1/webhooks/endpoints/{}", id(&cursor)),
        None,
    );
    assert_eq!(status, 200);
    let (status, _) = api.request("GET", "/v1/webhooks/endpoints", None);
    assert_eq!(status, 200);
    let run = support::wait(child);
    run.expect(0);
    assert!(
        api.emu.stats().requests[&Route::ListEndpoints] >= 4,
        "the listing saw the repeated page and listed again (one listing was the test's)"
    );
    assert!(
        run.stdout
            .contains("Plan: 1 to create, 0 to update, 0 to delete."),
        "only the deleted endpoint is re-created: {}",
        run.stdout
    );
    assert_eq!(api.endpoints().len(), 130);
    let managed: BTreeSet<String> = api
        .endpoints()
        .iter()
        .flat_map(|e| {
            support::labels(e)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(managed.len(), 130, "one endpoint per key");
}

#[test]
fn a_refused_create_is_tried_again_and_429_waits_are_honoured() {
    let api = Api::start();
    let project = project();
    api.emu.inject(
        Route::CreateEndpoint,
        Fault::Status {
            status: 500,
            retry_after_secs: None,
        },
        1,
    );
    api.emu.inject(
        Route::ListEndpoints,
        Fault::Status {
            status: 429,
            retry_after_secs: Some(1),
        },
        1,
    );
    let started = std::time::Instant::now();
    project.apply(&api, &[]);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited as Retry-After said"
    );
    assert_settled(&api, &project);
}

#[test]
fn random_faults_on_every_write_settle_after_a_few_applies() {
    for seed in chaos_seeds() {
        let api = Api::start();
        let project = project();
        chaos_applies(&api, &project, seed);

        // Then rotate a secret, rotate a key and rename, under faults again.
        project.public_key("keys/orders-2.pem");
        let changed = std::fs::read_to_string(project.path("endpoints.yaml"))
            .unwrap()
            .replace("    name: orders\n", "    name: orders v2\n    signing_secret:\n      rotation: 1\n")
            .replace(
                "        public_key_file: keys/orders.pem\n",
                "        public_key_file: keys/orders.pem\n      - key_id: orders-2\n        public_key_file: keys/orders-2.pem\n",
            );
        project.manifest(&changed);
        chaos_applies(&api, &project, seed + 1000);
        let orders = api.one("orders");
        assert_eq!(orders["name"], "orders v2", "seed {seed}");
        let active: Vec<_> = api
            .keys(&id(&orders))
            .into_iter()
            .filter(|k| k["is_active"] == true)
            .map(|k| k["key_id"].clone())
            .collect();
        assert_eq!(active, ["orders-2"], "seed {seed}");
    }
}

/// Applies under random faults on every write until one succeeds (at most 4 times), then
/// once more without faults if none did; then everything must be settled.
fn chaos_applies(api: &Api, project: &Project, seed: u64) {
    api.emu.chaos(
        seed,
        0.25,
        vec![
            Fault::DropAfterCommit,
            Fault::Hang(Duration::from_millis(2500)),
            Fault::Status {
                status: 503,
                retry_after_secs: Some(0),
            },
            Fault::Status {
                status: 500,
                retry_after_secs: None,
            },
        ],
    );
    let succeeded = (0..4).any(|_| apply_once(api, project));
    api.emu.clear_faults();
    api.assert_no_violations();
    if !succeeded || unsettled(api) {
        // Once a lost request can no longer land, one more apply without faults settles what
        // the faults left.
        api.wait_out_late_window();
        project.apply(api, &[]);
    }
    assert_settled(api, project);
}

/// A plan says a lost request may still land; once it no longer can, one more apply runs.
#[track_caller]
fn settle_after_the_window(api: &Api, project: &Project) {
    let plan = project.run(api, &["plan", "--detailed-exitcode"]);
    plan.expect(2);
    assert!(
        plan.stdout.contains("may still land until"),
        "{}",
        plan.stdout
    );
    api.wait_out_late_window();
    project.apply(api, &[]);
}

/// Whether some endpoint carries a record that its secret is unsettled.
fn unsettled(api: &Api) -> bool {
    api.endpoints().iter().any(|endpoint| {
        support::labels(endpoint)
            .iter()
            .any(|label| label.starts_with("kayle-sync:verify="))
    })
}

/// Seeds 1 and 2, or 1 to `E2E_CHAOS_SEEDS` (e.g. 30, for a longer hunt).
fn chaos_seeds() -> Vec<u64> {
    match std::env::var("E2E_CHAOS_SEEDS") {
        Ok(n) => (1..=n.parse().unwrap()).collect(),
        Err(_) => vec![1, 2],
    }
}

#[test]
fn duplicates_from_a_race_over_many_endpoints_are_resolved_without_force() {
    let api = Api::start();
    let project = Project::new();
    let entries: String = (0..10)
        .map(|i| {
            format!("  svc-{i}:\n    url: https://hooks.example.com/{i}\n    enabled: false\n")
        })
        .collect();
    project.manifest(&format!("endpoints:\n{entries}"));
    // Another checkout of the same configuration (applies of one directory take turns).
    let other = Project::new();
    other.manifest(&format!("endpoints:\n{entries}"));
    api.list_together(2);
    let first = patient_apply(&api, &project);
    let second = patient_apply(&api, &other);
    let (first, second) = (support::wait(first), support::wait(second));
    for run in [&first, &second] {
        assert!(run.code == 0 || run.code == 1, "{run:#?}");
    }
    assert_eq!(
        api.endpoints().len(),
        20,
        "both applies created every endpoint"
    );

    // Deleting duplicates of declared endpoints is not a mass deletion.
    project.apply(&api, &[]);
    assert_eq!(api.endpoints().len(), 10);
    for i in 0..10 {
        let key = format!("svc-{i}");
        let endpoint = api.one(&key);
        assert_eq!(
            project.sink(&format!("KAYLE_WEBHOOK_SECRET_SVC_{i}")),
            Some(api.secret(&id(&endpoint)))
        );
    }
    project.assert_converged(&api);
}
