//! End to end: `kayle-sync status` against the emulator delivering to test receivers, one that
//! verifies and one holding the wrong secret: counts by status, the last failure, the oldest
//! pending delivery, the sink checks, the exit code, and what the report costs in requests.

use crate::receiver_support;
use crate::support;

use std::time::{Duration, Instant};

use kayle_emulator::{Route, TEST_ORGANIZATION_ID};
use receiver_support::{Mode, Receiver, Source};
use serde_json::Value;
use support::{Api, Project, Run};

const SUCCEEDED: &str = "verification.session.succeeded";

fn requests(api: &Api, route: Route) -> u64 {
    api.emu.stats().requests.get(&route).copied().unwrap_or(0)
}

/// The API requests of one run of `status`, by route.
#[track_caller]
fn status_costs(api: &Api, project: &Project, args: &[&str]) -> (Run, [u64; 4]) {
    api.emu.reset_stats();
    let mut all = vec!["status"];
    all.extend_from_slice(args);
    let run = project.run(api, &all);
    let costs = [
        Route::ListEndpoints,
        Route::ListKeys,
        Route::ListDeliveries,
        Route::RevealSecret,
    ]
    .map(|route| requests(api, route));
    (run, costs)
}

/// The deliveries to `endpoint_id`, newest first.
fn deliveries_of(api: &Api, endpoint_id: &str) -> Vec<Value> {
    api.emu
        .deliveries()
        .into_iter()
        .filter(|d| d["webhook_endpoint_id"] == endpoint_id)
        .collect()
}

/// Waits (at most 30 s) until `done` holds of the deliveries to `endpoint_id`.
#[track_caller]
fn until(api: &Api, endpoint_id: &str, what: &str, done: impl Fn(&[Value]) -> bool) {
    let started = Instant::now();
    while !done(&deliveries_of(api, endpoint_id)) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never {what}: {:#?}",
            deliveries_of(api, endpoint_id)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn endpoint<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == key)
        .unwrap_or_else(|| panic!("no {key} in {report:#}"))
}

fn codes(endpoint: &Value) -> Vec<&str> {
    endpoint["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect()
}

/// The cells of the table row whose first cell is `first`.
#[track_caller]
fn row(run: &Run, first: &str) -> Vec<String> {
    let line = run
        .stdout
        .lines()
        .find(|l| l.split(' ').next() == Some(first))
        .unwrap_or_else(|| panic!("no row {first}:\n{}", run.stdout));
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[test]
fn status_counts_each_endpoints_deliveries_and_exits_1_when_one_fails() {
    let api = Api::start();
    let project = Project::new();
    let good = Receiver::start(
        Mode::Correct,
        Source {
            sink: project.sink_path(),
            secret_name: "KAYLE_WEBHOOK_SECRET_GOOD".into(),
            private_key_name: "KAYLE_WEBHOOK_PRIVATE_KEY_GOOD".into(),
            kid: "gen-1".into(),
        },
    );
    let bad = Receiver::start(
        Mode::WrongSecret,
        Source {
            sink: project.sink_path(),
            secret_name: "KAYLE_WEBHOOK_SECRET_BAD".into(),
            private_key_name: String::new(),
            kid: String::new(),
        },
    );
    project.public_key("keys/bad.pem");
    project.manifest(&format!(
        "endpoints:\n  good:\n    url: {}\n    encryption_keys:\n      - key_id: gen-1\n        \
         generate: true\n  bad:\n    url: {}\n    encryption_keys:\n      - key_id: bad-1\n        \
         public_key_file: keys/bad.pem\n",
        good.url, bad.url
    ));
    project.apply(&api, &[]);
    let bad_id = support::id(&api.one("bad"));
    let good_id = support::id(&api.one("good"));

    // Nothing delivered yet: healthy, at the listings' minimum.
    let (run, costs) = status_costs(&api, &project, &[]);
    run.expect(0);
    assert_eq!(costs, [1, 2, 2, 0], "endpoints, keys, deliveries, reveals");
    assert!(run.stdout.starts_with("ENDPOINT "), "{}", run.stdout);
    run.stdout_has(&["All 2 endpoint(s) healthy", "checked for presence only"]);

    // Three events: the good receiver takes them, the bad one refuses every attempt until
    // the schedule (a millisecond an hour) gives up.
    api.emu.set_delivery_time_scale(100_000);
    for _ in 0..3 {
        api.emu
            .fire_event(TEST_ORGANIZATION_ID, SUCCEEDED, None)
            .unwrap();
    }
    until(&api, &bad_id, "failed", |all| {
        all.len() == 3 && all.iter().all(|d| d["status"] == "failed")
    });
    // One more, on a slow schedule: refused twice, then waiting 15 s for its third attempt.
    api.emu.set_delivery_time_scale(20);
    api.emu
        .fire_event(TEST_ORGANIZATION_ID, SUCCEEDED, None)
        .unwrap();
    until(&api, &bad_id, "retried", |all| {
        all[0]["status"] == "pending" && all[0]["attempt_count"] == 2
    });
    until(&api, &good_id, "delivered", |all| {
        all.len() == 4 && all.iter().all(|d| d["status"] == "succeeded")
    });
    let waiting = deliveries_of(&api, &bad_id)[0]["id"].clone();

    let (run, costs) = status_costs(&api, &project, &["--format", "json"]);
    run.expect(1);
    assert_eq!(costs, [1, 2, 2, 0]);
    let report = json(&run);
    assert_eq!(report["format_version"], 1);
    assert_eq!(report["healthy"], false);
    assert_eq!(report["window"]["seconds"], 86_400);
    let good_status = endpoint(&report, "good");
    assert_eq!(good_status["deliveries"]["succeeded"], 4, "{report:#}");
    assert_eq!(good_status["deliveries"]["failed"], 0);
    assert_eq!(good_status["encryption_key"]["key_id"], "gen-1");
    assert_eq!(good_status["encryption_key"]["private_key"], "matches");
    assert_eq!(good_status["secret"]["state"], "present");
    assert!(codes(good_status).is_empty(), "{report:#}");
    let bad_status = endpoint(&report, "bad");
    let counted = &bad_status["deliveries"];
    assert_eq!(
        [
            &counted["succeeded"],
            &counted["failed"],
            &counted["pending"],
            &counted["retrying"]
        ],
        [0, 3, 1, 1],
        "{report:#}"
    );
    assert_eq!(counted["last_failure"]["status_code"], 400);
    assert_eq!(counted["last_failure"]["delivery_id"], waiting);
    assert_eq!(counted["oldest_pending"]["delivery_id"], waiting);
    assert_eq!(bad_status["encryption_key"]["private_key"], "not-generated");
    assert_eq!(
        codes(bad_status),
        ["failed-deliveries", "retrying-deliveries"]
    );

    let run = project.run(&api, &["status"]);
    run.expect(1);
    let cells = row(&run, "bad");
    assert_eq!(
        cells[..7],
        ["bad", "yes", "bad-1", "present", "0", "3", "1"]
    );
    assert!(cells[7].starts_with("400, "), "{cells:?}");
    assert!(
        run.stdout
            .contains("bad: 3 delivery(ies) failed after every attempt"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("1 of 2 endpoint(s) need attention"));

    // A short window leaves the failed deliveries out, but not the one still pending; one
    // endpoint's report lists that endpoint's deliveries only.
    std::thread::sleep(Duration::from_millis(1_100));
    let (run, costs) = status_costs(
        &api,
        &project,
        &["--since", "1s", "--target", "bad", "--format", "json"],
    );
    run.expect(1);
    assert_eq!(costs, [1, 1, 2, 0]);
    let report = json(&run);
    assert_eq!(report["endpoints"].as_array().unwrap().len(), 1);
    let counted = &endpoint(&report, "bad")["deliveries"];
    assert_eq!(
        [&counted["failed"], &counted["pending"]],
        [0, 1],
        "{report:#}"
    );
    assert!(counted["oldest_pending"]["age_seconds"].as_u64().unwrap() >= 1);

    // Secrets compared with Kayle's, one reveal an endpoint: the same, then another.
    let (run, costs) = status_costs(
        &api,
        &project,
        &["--target", "good", "--verify-secrets", "--format", "json"],
    );
    run.expect(0);
    assert_eq!(costs, [1, 1, 2, 1]);
    assert_eq!(endpoint(&json(&run), "good")["secret"]["state"], "current");
    let text = project.sink_text().replace(
        "KAYLE_WEBHOOK_SECRET_GOOD=",
        "KAYLE_WEBHOOK_SECRET_GOOD=whsec_stale",
    );
    std::fs::write(project.sink_path(), text).unwrap();
    let run = project.run(&api, &["status", "--target", "good", "--verify-secrets"]);
    run.expect(1);
    run.stdout_has(&["DIFFERS"]);
    assert!(
        run.stdout
            .contains("good: the sink holds a secret other than the one Kayle signs with"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("presence only"), "{}", run.stdout);

    // A target that names nothing is a usage error.
    let run = project.run(&api, &["status", "--target", "god"]);
    run.expect(64);
    run.stderr_has(&["did you mean --target good?"]);
}

#[test]
fn the_window_costs_the_pages_that_hold_it_and_undeclared_endpoints_are_reported() {
    let api = Api::start();
    let project = Project::new();
    project.manifest(
        "endpoints:\n  quiet:\n    url: https://hooks.example.com/quiet\n    enabled: false\n",
    );
    project.apply(&api, &[]);
    // Made elsewhere with our label, enabled, and no key: each delivery fails at once.
    api.create_endpoint(serde_json::json!({
        "url": "https://hooks.example.com/bulk",
        "labels": ["kayle-sync:bulk"],
    }));
    project.manifest(
        "endpoints:\n  quiet:\n    url: https://hooks.example.com/quiet\n    enabled: false\n  \
         later:\n    url: https://hooks.example.com/later\n",
    );
    for _ in 0..150 {
        api.emu
            .fire_event(TEST_ORGANIZATION_ID, SUCCEEDED, None)
            .unwrap();
    }
    let old = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    for _ in 0..3 {
        api.emu
            .fire_event(TEST_ORGANIZATION_ID, SUCCEEDED, None)
            .unwrap();
    }
    // A window starting a second after the first batch (the emulator's clock may run ahead
    // of the wall clock by a millisecond a record) and before the second. It is counted back
    // from when status runs, so it starts later by however long the binary takes to get
    // there: a second here leaves four for that on a loaded machine.
    let since = format!("{}ms", old.elapsed().as_millis() - 1_000);
    let (run, costs) = status_costs(&api, &project, &["--since", &since]);
    run.expect(1);
    // One page of the window (100 deliveries, the 3 recent ones first), one of pending ones;
    // a key listing for each endpoint, neither of which declares keys.
    assert_eq!(costs, [1, 2, 2, 0], "{}", run.stdout);
    let bulk = row(&run, "bulk*");
    assert_eq!(bulk[..7], ["bulk*", "yes", "NONE", "-", "0", "3", "0"]);
    assert!(bulk[7].starts_with("no answer, "), "{bulk:?}");
    assert_eq!(row(&run, "quiet")[..4], ["quiet", "no", "none", "present"]);
    assert_eq!(row(&run, "later")[..4], ["later", "not created", "-", "-"]);
    for line in [
        "bulk: enabled without an active encryption key",
        "bulk: 3 delivery(ies) failed after every attempt",
        "later: declared but not created: run apply",
        "* managed (labelled) but declared by no manifest",
        "2 of 3 endpoint(s) need attention",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
}
