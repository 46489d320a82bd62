//! `kayle-sync watch` as a long-running process: drift correction, API errors, the deletion
//! guard, dry runs, SIGTERM, health and metrics, and its log. When the loop reconciles
//! (intervals, backoff, waiting for a change, shutdown) is tested in-process on paused time in
//! `src/watch/tests`; these prove the binary, the API, the files and the signals.

use crate::watch_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kayle_emulator::{Fault, Route};
use serde_json::Value;
use watch_support::*;

#[test]
fn drift_is_corrected_on_the_interval_and_reported_by_metrics() {
    let api = Api::start();
    let (_root, dir) = config_dir(&manifest(&[("zeta", "https://hooks.example.com/z")]));
    let mut watch = Watch::spawn(
        &dir,
        &api,
        &["--interval", "2s", "--health-addr", "127.0.0.1:0"],
    );
    let base = watch.health_base();
    assert_outcome(&watch.reconcile(), "applied", "start");
    assert_eq!(api.get(&format!("{base}/healthz")).0, 200);

    let id = api.endpoint("zeta").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.patch(
        &id,
        serde_json::json!({"url": "https://elsewhere.example.com/"}),
    );
    let corrected = loop {
        let line = watch.reconcile();
        if line["outcome"] != "in-sync" {
            break line;
        }
    };
    assert_outcome(&corrected, "applied", "interval");
    assert_eq!(keys(&corrected, "update"), ["zeta"]);
    assert_eq!(api.url_of("zeta").unwrap(), "https://hooks.example.com/z");

    let (status, metrics) = api.get(&format!("{base}/metrics"));
    assert_eq!(status, 200);
    assert!(
        metrics.contains("\nkayle_sync_drift_corrections_total 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("\nkayle_sync_reconcile_failures_total 0\n"));
    assert!(!metrics.contains("kayle_sync_last_success_timestamp_seconds 0\n"));
}

#[test]
fn sigterm_during_an_apply_finishes_it_and_exits_zero() {
    let api = Api::start();
    let names: Vec<String> = (1..=6).map(|n| format!("svc-{n}")).collect();
    let mut text = String::from("endpoints:\n");
    for name in &names {
        text.push_str(&format!(
            "  {name}:\n    name: {name}\n    url: https://hooks.example.com/{name}\n    encryption_keys:\n      \
             - key_id: {name}-k1\n        public_key_file: keys/k.pub.pem\n"
        ));
    }
    let (_root, dir) = config_dir(&text);
    api.emulator.set_latency(Duration::from_millis(250));
    let mut watch = Watch::spawn(&dir, &api, &["--concurrency", "2"]);
    watch.event("start");
    let deadline = Instant::now() + WAIT;
    while api.emulator.endpoints().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no create began; {}",
            watch.context()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !watch.drain().iter().any(|l| l["event"] == "reconcile"),
        "the apply ended before the signal; {}",
        watch.context()
    );
    watch.signal("TERM");
    let status = watch.wait_exit();
    assert!(status.success(), "{status:?}; {}", watch.context());
    let outcomes: Vec<Value> = watch
        .seen
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["event"] == "reconcile")
        .collect();
    assert_eq!(outcomes.len(), 1, "{}", watch.context());
    assert_outcome(&outcomes[0], "applied", "start");
    assert_eq!(
        keys(&outcomes[0], "create"),
        names,
        "the apply in flight finished"
    );
    // Each endpoint's result was logged as it finished, before the reconcile's line.
    let lines: Vec<Value> = watch
        .seen
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect();
    let reconciled = lines
        .iter()
        .position(|l| l["event"] == "reconcile")
        .unwrap();
    let mut logged: Vec<&str> = lines[..reconciled]
        .iter()
        .filter(|l| l["event"] == "endpoint")
        .filter_map(|l| l["message"].as_str())
        .filter(|m| m.contains(": Creation complete"))
        .filter_map(|m| m.split(' ').next())
        .collect();
    logged.sort();
    assert_eq!(logged, names, "{}", watch.context());
    assert!(
        watch.seen.last().unwrap().contains("\"stop\""),
        "{}",
        watch.context()
    );

    let sink = std::fs::read_to_string(dir.join("secrets/kayle.env")).unwrap_or_default();
    let endpoints = api.emulator.endpoints();
    assert!(!endpoints.is_empty());
    for endpoint in &endpoints {
        let id = endpoint["id"].as_str().unwrap();
        let secret = api.emulator.signing_secret(id).unwrap();
        assert!(
            sink.contains(&secret),
            "{id}: its secret is not in the sink"
        );
        assert_eq!(endpoint["enabled"], true, "{endpoint}");
        let active = api
            .emulator
            .keys(id)
            .iter()
            .filter(|k| k["is_active"] == true)
            .count();
        assert_eq!(active, 1, "{id} has no active key");
    }
    assert!(
        api.emulator.violations().is_empty(),
        "{:?}",
        api.emulator.violations()
    );
}

#[test]
fn emptying_the_directory_is_refused_by_the_deletion_guard() {
    let api = Api::start();
    let (_root, dir) = config_dir(&manifest(&[("theta", "https://hooks.example.com/t")]));
    let mut watch = Watch::spawn(&dir, &api, &["--prune"]);
    assert_outcome(&watch.reconcile(), "applied", "start");

    // A half-finished checkout or an emptied ConfigMap must not delete everything.
    std::fs::remove_file(dir.join("endpoints.yaml")).unwrap();
    let refused = watch.reconcile();
    assert_outcome(&refused, "refused", "change");
    assert!(refused["retry_in"].is_null(), "not retried: {refused}");
    assert!(api.endpoint("theta").is_some());

    std::fs::write(
        dir.join("other.yaml"),
        manifest(&[("iota", "https://hooks.example.com/i")]),
    )
    .unwrap();
    let replaced = watch.reconcile();
    assert_outcome(&replaced, "applied", "change");
    assert_eq!(keys(&replaced, "create"), ["iota"]);
    assert_eq!(keys(&replaced, "delete"), ["theta"]);
    assert!(api.endpoint("theta").is_none());
}

#[test]
fn dry_run_plans_and_prints_but_changes_nothing() {
    let api = Api::start();
    let (_root, dir) = config_dir(&manifest(&[("kappa", "https://hooks.example.com/k")]));
    let mut watch = Watch::spawn(&dir, &api, &["--dry-run"]);
    let planned = watch.reconcile();
    assert_outcome(&planned, "planned", "start");
    assert_eq!(keys(&planned, "create"), ["kappa"]);
    assert!(
        planned["plan"].as_str().unwrap().contains("kappa"),
        "{planned}"
    );
    assert!(api.emulator.endpoints().is_empty());
    assert!(!dir.join("secrets/kayle.env").exists());
}

#[test]
fn the_text_log_has_one_timestamped_line_per_event() {
    let api = Api::start();
    let (_root, dir) = config_dir(&manifest(&[("mu", "https://hooks.example.com/m")]));
    let mut child = Command::new(env!("CARGO_BIN_EXE_kayle-sync"))
        .arg("watch")
        .arg(&dir)
        .env("KAYLE_API_URL", api.server.url())
        .env("KAYLE_API_KEY", "kk_test")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !seen
        .iter()
        .any(|l: &String| l.contains(" reconcile (start): "))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no reconcile line: {seen:?}"),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    // Multi-line messages (a warning's hint) continue on indented lines.
    for line in seen.iter().filter(|l| !l.starts_with("    ")) {
        let ts = line.split(' ').next().unwrap();
        assert!(
            ts.parse::<jiff::Timestamp>().is_ok(),
            "no timestamp: {line}"
        );
    }
    let last = seen.last().unwrap();
    assert!(
        last.ends_with(" reconcile (start): applied: 1 created (mu), 0 updated, 0 deleted"),
        "{last}"
    );
}

#[test]
fn sigint_while_idle_exits_zero_at_once() {
    let api = Api::start();
    let (_root, dir) = config_dir(&manifest(&[("xi", "https://hooks.example.com/x")]));
    let mut watch = Watch::spawn(&dir, &api, &[]);
    assert_outcome(&watch.reconcile(), "applied", "start");
    let sent = Instant::now();
    watch.signal("INT");
    let status = watch.wait_exit();
    assert!(status.success(), "{status:?}; {}", watch.context());
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "waited {:?} for an idle watch to stop",
        sent.elapsed()
    );
    assert!(watch.seen.last().unwrap().contains("\"stop\""));
}

#[test]
fn the_verify_interval_finds_and_repairs_a_sink_holding_another_secret() {
    let api = Api::start();
    let (_root, dir) = config_dir(&manifest(&[("zeta", "https://hooks.example.com/z")]));
    let mut watch = Watch::spawn(&dir, &api, &["--interval", "1h", "--verify-interval", "2s"]);
    assert_outcome(&watch.reconcile(), "applied", "start");
    let id = api.endpoint("zeta").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let current = api.emulator.signing_secret(&id).unwrap();
    let sink = dir.join("secrets/kayle.env");
    let text = std::fs::read_to_string(&sink).unwrap();
    assert!(text.contains(&current));
    // The secret changed behind kayle-sync's back; the sink still has a value, so only a
    // reveal can tell.
    std::fs::write(
        &sink,
        text.replace(&current, "whsec_00000000000000000000000000000000"),
    )
    .unwrap();
    let repaired = loop {
        let line = watch.reconcile();
        if line["trigger"] == "verify" && line["outcome"] != "in-sync" {
            break line;
        }
    };
    assert_outcome(&repaired, "applied", "verify");
    assert!(
        std::fs::read_to_string(&sink).unwrap().contains(&current),
        "{}",
        watch.context()
    );
    assert!(!watch.context().contains(&current), "never logged");
}

/// A zero interval would reconcile (and with `--verify-interval`, reveal every secret) back
/// to back, as fast as the API answers: a usage error, like `--concurrency 0`.
#[test]
fn a_zero_interval_is_a_usage_error() {
    let api = Api::start();
    let (_root, dir) = config_dir(&manifest(&[("zeta", "https://hooks.example.com/z")]));
    for args in [
        &["--interval", "0s"][..],
        &["--verify-interval", "0s"],
        &["--interval", "1ns"],
        &["--status-interval", "0s", "--health-addr", "127.0.0.1:0"],
        // Delivery metrics are only served with --health-addr.
        &["--status-interval", "1m"],
    ] {
        let mut watch = Watch::spawn(&dir, &api, args);
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(status) = watch.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let reconciles = watch.drain().len();
                // Dropping the watch kills it.
                panic!("{args:?} was accepted: {reconciles} log lines in 5 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(64), "{args:?}; {}", watch.context());
    }
}

/// The `status` figures as gauges: refreshed on `--status-interval`, not on a scrape.
#[test]
fn delivery_metrics_are_refreshed_on_their_own_interval() {
    let api = Api::start();
    let (_root, dir) = config_dir(
        "endpoints:\n  zeta:\n    url: https://hooks.example.com/z\n    enabled: false\n",
    );
    // Labelled as ours, enabled and without a key: each delivery to it fails at once.
    let created = api.runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/v1/webhooks/endpoints", api.server.url()))
            .bearer_auth("kk_test")
            .json(&serde_json::json!({
                "url": "https://hooks.example.com/bulk",
                "labels": ["kayle-sync:bulk"],
            }))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert!(created.is_success(), "{created}");
    let mut watch = Watch::spawn(
        &dir,
        &api,
        &["--health-addr", "127.0.0.1:0", "--status-interval", "1s"],
    );
    let base = watch.health_base();
    assert_outcome(&watch.reconcile(), "applied", "start");
    for _ in 0..2 {
        api.emulator
            .fire_event(
                kayle_emulator::TEST_ORGANIZATION_ID,
                "verification.session.failed",
                None,
            )
            .unwrap();
    }
    let wanted = [
        "kayle_sync_deliveries{endpoint=\"bulk\",status=\"failed\"} 2",
        "kayle_sync_deliveries{endpoint=\"zeta\",status=\"succeeded\"} 0",
        "kayle_sync_endpoint_problems{endpoint=\"bulk\"} 2",
        "kayle_sync_endpoint_problems{endpoint=\"zeta\"} 0",
        "kayle_sync_oldest_pending_delivery_age_seconds{endpoint=\"bulk\"} 0",
        "kayle_sync_status_refresh_failures_total 0",
    ];
    let started = Instant::now();
    let metrics = loop {
        let (status, metrics) = api.get(&format!("{base}/metrics"));
        assert_eq!(status, 200);
        if wanted
            .iter()
            .all(|line| metrics.contains(&format!("\n{line}\n")))
        {
            break metrics;
        }
        assert!(
            started.elapsed() < WAIT,
            "never refreshed: {metrics}\n{}",
            watch.context()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let failed_at: i64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("kayle_sync_last_delivery_failure_timestamp_seconds{endpoint=\"bulk\"} ")
        })
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    let now = jiff::Timestamp::now().as_second();
    assert!((now - 120..=now).contains(&failed_at), "{failed_at} {now}");
    assert!(
        !metrics.contains("kayle_sync_sink_secret_current{"),
        "secrets are not compared without --verify-interval: {metrics}"
    );
    assert!(
        !metrics.contains("whe_"),
        "no endpoint id in a label: {metrics}"
    );

    // Scrapes do not list deliveries: twenty of them cost what the refreshes during them do.
    api.emulator.reset_stats();
    let scraping = Instant::now();
    for _ in 0..20 {
        api.get(&format!("{base}/metrics"));
    }
    let refreshes = scraping.elapsed().as_secs() + 1;
    let listed = api
        .emulator
        .stats()
        .requests
        .get(&Route::ListDeliveries)
        .copied()
        .unwrap_or(0);
    assert!(
        listed <= 2 * refreshes,
        "{listed} listings in {refreshes} s"
    );
}

/// Calls of `route` the emulator has answered so far.
fn calls(api: &Api, route: Route) -> u64 {
    api.emulator
        .stats()
        .requests
        .get(&route)
        .copied()
        .unwrap_or(0)
}

/// Watches a directory declaring `key` while every call of `route` answers `status`; asserts
/// that the first reconcile fails, its line schedules no retry and `route` was called once.
/// That no retry follows on the timer is the loop's tests' (`src/watch/tests`).
fn watch_refused(api: &Api, route: Route, status: u16, key: &str) -> (tempfile::TempDir, Watch) {
    let fault = Fault::Status {
        status,
        retry_after_secs: None,
    };
    api.emulator.inject(route, fault, 1000);
    let (root, dir) = config_dir(&manifest(&[(key, "https://hooks.example.com/a")]));
    let mut watch = Watch::spawn(&dir, api, &[]);
    let failed = watch.reconcile();
    assert_outcome(&failed, "failed", "start");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains(&status.to_string()), "{failed}");
    assert_eq!(failed["retry_in"], Value::Null, "{failed}");
    assert!(failed["waiting_for_change"].is_string(), "{failed}");
    assert_eq!(calls(api, route), 1, "no retry in a loop");
    (root, watch)
}

/// Changes the URL of `key`, the one endpoint the directory declares.
fn edit(root: &tempfile::TempDir, key: &str) {
    let text = manifest(&[(key, "https://hooks.example.com/b")]);
    std::fs::write(root.path().join("config/endpoints.yaml"), text).unwrap();
}

#[test]
fn a_refused_api_key_waits_for_a_change_instead_of_retrying() {
    let api = Api::start();
    let (root, mut watch) = watch_refused(&api, Route::ListEndpoints, 401, "iota");

    // A change is tried again at once; with the key accepted again it goes through.
    api.emulator.clear_faults();
    edit(&root, "iota");
    watch.assert_creates("change", "iota");
    watch.assert_running();
}

#[test]
fn a_rejected_request_waits_for_a_change_and_an_outage_in_apply_is_retried() {
    let api = Api::start();
    let (root, mut watch) = watch_refused(&api, Route::CreateEndpoint, 422, "kappa");

    // The same apply failing with a 503 is an outage: retried with backoff.
    api.emulator.clear_faults();
    let down = Fault::Status {
        status: 503,
        retry_after_secs: None,
    };
    api.emulator.inject(Route::CreateEndpoint, down, 1000);
    edit(&root, "kappa");
    let failed = watch.reconcile();
    assert_outcome(&failed, "failed", "change");
    assert!(failed["retry_in"].is_string(), "{failed}");
    assert_eq!(failed.get("waiting_for_change"), None, "{failed}");
    let again = watch.reconcile();
    assert_outcome(&again, "failed", "retry");
    api.emulator.clear_faults();
    watch.assert_creates("retry", "kappa");
    watch.assert_running();
}

/// Requests are driven from the main thread: no runtime worker per core sits idle with its
/// stack and its allocator arena. Blocking sink work runs on `kayle-sync-io` threads.
#[test]
fn watch_runs_no_runtime_worker_threads() {
    let api = Api::start();
    let (_root, dir) = config_dir(&manifest(&[("omicron", "https://hooks.example.com/o")]));
    let mut watch = Watch::spawn(&dir, &api, &[]);
    assert_outcome(&watch.reconcile(), "applied", "start");
    let tasks = format!("/proc/{}/task", watch.child.id());
    let names: Vec<String> = std::fs::read_dir(tasks)
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect();
    assert!(names.contains(&"kayle-sync".to_owned()), "{names:?}");
    assert!(
        !names.iter().any(|name| name.starts_with("tokio")),
        "{names:?}"
    );
    watch.signal("TERM");
    assert!(watch.wait_exit().success(), "{}", watch.context());
}

/// A disabled endpoint (no key needed) in a directory whose sink's `reload` runs `program`.
fn reloading_dir(program: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let endpoints = "endpoints:\n  sigma:\n    name: sigma\n    url: https://hooks.example.com/s\n    \
                     enabled: false\n";
    let (root, dir) = config_dir(endpoints);
    let project = PROJECT.replace(
        "    path: secrets/kayle.env\n",
        &format!("    path: secrets/kayle.env\n    reload:\n      command: [\"{program}\"]\n"),
    );
    std::fs::write(dir.join("kayle-sync.yaml"), project).unwrap();
    (root, dir)
}

#[test]
fn a_reload_that_cannot_run_waits_for_a_change_instead_of_retrying() {
    let api = Api::start();
    let (_root, dir) = reloading_dir("/nonexistent/prog");
    let mut watch = Watch::spawn(&dir, &api, &[]);
    let failed = watch.reconcile();
    assert_outcome(&failed, "failed", "start");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("its reload: the command `/nonexistent/prog` is not an executable file"),
        "{failed}"
    );
    assert_eq!(failed["retry_in"], Value::Null, "{failed}");
    assert_eq!(
        failed["waiting_for_change"], "a sink cannot work as configured",
        "{failed}"
    );
    assert!(api.emulator.endpoints().is_empty(), "{failed}");

    // Fixed in the project file, it goes through at once.
    std::fs::write(dir.join("kayle-sync.yaml"), PROJECT).unwrap();
    watch.assert_creates("change", "sigma");
    watch.assert_running();
}

/// Serves, on `api`'s runtime, an API that answers every request with a redirect.
fn redirecting_api(api: &Api) -> String {
    api.runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let moved = axum::Router::new().fallback(|| async {
            (
                axum::http::StatusCode::MOVED_PERMANENTLY,
                [("location", "https://api.example.com/v1/webhooks/endpoints")],
            )
        });
        tokio::spawn(async move { axum::serve(listener, moved).await });
        format!("http://{addr}")
    })
}

#[test]
fn an_api_that_redirects_waits_for_a_change_instead_of_retrying() {
    let api = Api::start();
    let url = redirecting_api(&api);
    let (_root, dir) = config_dir(&manifest(&[("tau", "https://hooks.example.com/t")]));
    let mut watch = Watch::spawn_at(&dir, &url, &[]);
    let failed = watch.reconcile();
    assert_outcome(&failed, "failed", "start");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("check the base URL"),
        "{failed}"
    );
    assert_eq!(failed["retry_in"], Value::Null, "{failed}");
    assert_eq!(
        failed["waiting_for_change"], "the API answered with a redirect: check the base URL",
        "{failed}"
    );
    watch.assert_running();
}

/// As `kayle-sync watch | head -1`: the reader takes a line and goes away.
#[test]
fn a_log_reader_that_goes_away_ends_watch_with_exit_1_naming_the_cause_once() {
    let api = Api::start();
    let (_root, dir) = config_dir(&manifest(&[("upsilon", "https://hooks.example.com/u")]));
    // The interval makes sure another line is written after the reader has gone.
    let mut child = command(&dir, &api.server.url(), &["--interval", "1s"])
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains(" start: watching "), "{first}");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("watch did not exit within {WAIT:?} of its reader going away");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: writing the log: Broken pipe (os error 32)\n"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("Broken pipe").count(), 1, "{stderr}");
}
