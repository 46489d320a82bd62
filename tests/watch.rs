//! `kayle-sync watch` as a user runs it: the real binary on a temporary config directory,
//! against an in-process emulator, read line by line from its JSON log.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kayle_emulator::{Config, Emulator, Fault, Route, Server};
use serde_json::Value;

/// Generous: the machine running the tests may be slow and busy.
const WAIT: Duration = Duration::from_secs(30);

const PROJECT: &str = "\
api:
  url: http://127.0.0.1:1
sinks:
  local:
    type: dotenv
    path: secrets/kayle.env
defaults:
  signing_secret:
    sink: local
";

const PUBLIC_KEY: &str = include_str!("../examples/quickstart/keys/orders-2026-11.pub.pem");

/// An emulator served on its own runtime, so the test thread may block.
struct Api {
    runtime: tokio::runtime::Runtime,
    emulator: Emulator,
    server: Server,
}

impl Api {
    fn start() -> Api {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let emulator = Emulator::new(Config::test("kk_test")).unwrap();
        let server = runtime.block_on(emulator.serve("127.0.0.1:0")).unwrap();
        Api {
            runtime,
            emulator,
            server,
        }
    }

    /// The live endpoint labelled as `key`'s, if any.
    fn endpoint(&self, key: &str) -> Option<Value> {
        let label = format!("kayle-sync:{key}");
        self.emulator
            .endpoints()
            .into_iter()
            .find(|e| e["labels"].as_array().unwrap().iter().any(|l| l == &label))
    }

    fn url_of(&self, key: &str) -> Option<String> {
        self.endpoint(key)
            .map(|e| e["url"].as_str().unwrap().to_owned())
    }

    /// Changes an endpoint behind kayle-sync's back, as a person in the dashboard would.
    fn patch(&self, id: &str, body: Value) {
        let url = format!("{}/v1/webhooks/endpoints/{id}", self.server.url());
        let status = self.runtime.block_on(async {
            reqwest::Client::new()
                .patch(url)
                .bearer_auth("kk_test")
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        });
        assert!(status.is_success(), "PATCH answered {status}");
    }

    fn get(&self, url: &str) -> (u16, String) {
        self.runtime.block_on(async {
            let response = reqwest::get(url).await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        })
    }
}

/// A config directory in a temporary directory.
fn config_dir(endpoints: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("config");
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::write(dir.join("kayle-sync.yaml"), PROJECT).unwrap();
    std::fs::write(dir.join("keys/k.pub.pem"), PUBLIC_KEY).unwrap();
    std::fs::write(dir.join("endpoints.yaml"), endpoints).unwrap();
    (root, dir)
}

fn manifest(keys: &[(&str, &str)]) -> String {
    let mut text = String::from("endpoints:\n");
    for (key, url) in keys {
        text.push_str(&format!("  {key}:\n    name: {key}\n    url: {url}\n"));
    }
    text
}

/// The running `kayle-sync watch`, its JSON log lines arriving on a channel.
struct Watch {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Watch {
    fn spawn(dir: &Path, api: &Api, args: &[&str]) -> Watch {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kayle-sync"))
            .arg("watch")
            .arg(dir)
            .args(["--format", "json"])
            .args(args)
            .env("KAYLE_API_URL", api.server.url())
            .env("KAYLE_API_KEY", "kk_test")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (pipe, shared) = (child.stderr.take().unwrap(), Arc::clone(&stderr));
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                shared.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        Watch {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    fn context(&self) -> String {
        format!(
            "log so far:\n{}\nstderr:\n{}",
            self.seen.join("\n"),
            self.stderr.lock().unwrap()
        )
    }

    /// The next log line before `deadline`, parsed.
    fn next(&mut self, deadline: Instant) -> Option<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => {
                self.seen.push(line.clone());
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                Some(value)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(left.min(Duration::from_millis(50)));
                None
            }
        }
    }

    /// Waits for the next reconcile outcome; panics after [`WAIT`].
    fn reconcile(&mut self) -> Value {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(line) = self.next(deadline)
                && line["event"] == "reconcile"
            {
                return line;
            }
        }
        panic!("no reconcile within {WAIT:?}; {}", self.context());
    }

    /// Waits for a log line with this `event`.
    fn event(&mut self, event: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(line) = self.next(deadline)
                && line["event"] == event
            {
                return line;
            }
        }
        panic!("no {event} line within {WAIT:?}; {}", self.context());
    }

    /// The reconcile outcomes logged during `quiet`.
    fn reconciles_during(&mut self, quiet: Duration) -> Vec<Value> {
        let deadline = Instant::now() + quiet;
        let mut found = Vec::new();
        while Instant::now() < deadline {
            if let Some(line) = self.next(deadline)
                && line["event"] == "reconcile"
            {
                found.push(line);
            }
        }
        found
    }

    /// The lines logged so far and not read yet.
    fn drain(&mut self) -> Vec<Value> {
        let mut lines = Vec::new();
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line.clone());
            lines.push(serde_json::from_str(&line).unwrap());
        }
        lines
    }

    fn assert_running(&mut self) {
        let status = self.child.try_wait().unwrap();
        assert!(status.is_none(), "exited: {status:?}; {}", self.context());
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("did not exit within {WAIT:?}; {}", self.context());
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keys(line: &Value, action: &str) -> Vec<String> {
    line["changes"][action]
        .as_array()
        .unwrap_or_else(|| panic!("no changes.{action} in {line}"))
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

fn assert_outcome(line: &Value, outcome: &str, trigger: &str) {
    assert_eq!(line["outcome"], outcome, "{line}");
    assert_eq!(line["trigger"], trigger, "{line}");
}

/// Replaces `path` the way editors save: a backup, a temp file written, renamed over it.
fn atomic_save(path: &Path, text: &str) {
    let dir = path.parent().unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    std::fs::write(dir.join(format!(".{name}.swp")), "swap").unwrap();
    std::fs::copy(path, dir.join(format!("{name}~"))).unwrap();
    let temp = dir.join(format!("{name}.tmp123"));
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, path).unwrap();
    std::fs::remove_file(dir.join(format!(".{name}.swp"))).unwrap();
}

fn symlink_over(target: &str, link: &Path) {
    let temp = link.with_extension("tmp-link");
    std::os::unix::fs::symlink(target, &temp).unwrap();
    std::fs::rename(&temp, link).unwrap();
}

#[test]
fn applies_at_start_then_new_files_new_directories_and_atomic_saves_once_each() {
    let api = Api::start();
    let (_root, dir) = config_dir(&manifest(&[("alpha", "https://hooks.example.com/a")]));
    let mut watch = Watch::spawn(&dir, &api, &[]);

    let first = watch.reconcile();
    assert_outcome(&first, "applied", "start");
    assert_eq!(keys(&first, "create"), ["alpha"]);
    let sink = std::fs::read_to_string(dir.join("secrets/kayle.env")).unwrap();
    assert!(sink.contains("KAYLE_WEBHOOK_SECRET_ALPHA="), "{sink}");
    assert!(
        !watch.seen.iter().any(|l| l.contains("whsec_")),
        "a secret reached the log"
    );

    std::fs::write(
        dir.join("more.yaml"),
        manifest(&[("beta", "https://hooks.example.com/b")]),
    )
    .unwrap();
    let added = watch.reconcile();
    assert_outcome(&added, "applied", "change");
    assert_eq!(keys(&added, "create"), ["beta"]);
    assert!(api.endpoint("beta").is_some());

    atomic_save(
        &dir.join("endpoints.yaml"),
        &manifest(&[("alpha", "https://hooks.example.com/a2")]),
    );
    let saved = watch.reconcile();
    assert_outcome(&saved, "applied", "change");
    assert_eq!(keys(&saved, "update"), ["alpha"]);
    assert_eq!(api.url_of("alpha").unwrap(), "https://hooks.example.com/a2");

    // A new directory, its file written at once (before any watch on it can exist).
    std::fs::create_dir_all(dir.join("team/payments")).unwrap();
    std::fs::write(
        dir.join("team/payments/pay.yml"),
        manifest(&[("pay", "https://hooks.example.com/p")]),
    )
    .unwrap();
    let nested = watch.reconcile();
    assert_outcome(&nested, "applied", "change");
    assert_eq!(keys(&nested, "create"), ["pay"]);

    // Deleting it is one reconcile too; without --prune the endpoint stays.
    std::fs::remove_dir_all(dir.join("team")).unwrap();
    assert_outcome(&watch.reconcile(), "in-sync", "change");
    assert!(api.endpoint("pay").is_some());

    // Its own sink writes, the editor's leftovers and reads change nothing: no more reconciles.
    let extra = watch.reconciles_during(Duration::from_millis(1500));
    assert!(extra.is_empty(), "{extra:?}");
    watch.assert_running();
}

#[test]
fn a_configmap_style_symlink_swap_applies_the_new_content_once() {
    let api = Api::start();
    let (_root, dir) = config_dir("");
    std::fs::remove_file(dir.join("endpoints.yaml")).unwrap();
    for (version, url) in [
        ("v1", "https://hooks.example.com/1"),
        ("v2", "https://hooks.example.com/2"),
    ] {
        let data = dir.join("..data").join(version);
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("endpoints.yaml"), manifest(&[("gamma", url)])).unwrap();
    }
    std::os::unix::fs::symlink("..data/v1", dir.join("manifests")).unwrap();
    let mut watch = Watch::spawn(&dir, &api, &[]);
    assert_outcome(&watch.reconcile(), "applied", "start");
    assert_eq!(api.url_of("gamma").unwrap(), "https://hooks.example.com/1");

    symlink_over("..data/v2", &dir.join("manifests"));
    let swapped = watch.reconcile();
    assert_outcome(&swapped, "applied", "change");
    assert_eq!(keys(&swapped, "update"), ["gamma"]);
    assert_eq!(api.url_of("gamma").unwrap(), "https://hooks.example.com/2");
    let extra = watch.reconciles_during(Duration::from_millis(1500));
    assert!(extra.is_empty(), "{extra:?}");
}

#[test]
fn a_git_sync_style_swap_of_the_directory_link_applies_the_new_content_once() {
    let api = Api::start();
    let root = tempfile::tempdir().unwrap();
    // The sink lives outside the swapped revisions, as it must with git-sync.
    let project = PROJECT.replace(
        "secrets/kayle.env",
        &root.path().join("kayle.env").display().to_string(),
    );
    for (rev, url) in [
        ("rev1", "https://hooks.example.com/1"),
        ("rev2", "https://hooks.example.com/2"),
    ] {
        let dir = root.path().join(rev);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("kayle-sync.yaml"), &project).unwrap();
        std::fs::write(dir.join("endpoints.yaml"), manifest(&[("delta", url)])).unwrap();
    }
    let current = root.path().join("current");
    std::os::unix::fs::symlink("rev1", &current).unwrap();
    let mut watch = Watch::spawn(&current, &api, &[]);
    assert_outcome(&watch.reconcile(), "applied", "start");

    symlink_over("rev2", &current);
    let swapped = watch.reconcile();
    assert_outcome(&swapped, "applied", "change");
    assert_eq!(keys(&swapped, "update"), ["delta"]);
    assert_eq!(api.url_of("delta").unwrap(), "https://hooks.example.com/2");

    // Edits inside the new revision are seen: the watch moved with the link.
    std::fs::write(
        root.path().join("rev2/endpoints.yaml"),
        manifest(&[("delta", "https://hooks.example.com/3")]),
    )
    .unwrap();
    assert_outcome(&watch.reconcile(), "applied", "change");
    assert_eq!(api.url_of("delta").unwrap(), "https://hooks.example.com/3");
    let extra = watch.reconciles_during(Duration::from_millis(1500));
    assert!(extra.is_empty(), "{extra:?}");
}

#[test]
fn an_invalid_edit_applies_nothing_and_fixing_it_applies() {
    let api = Api::start();
    let (_root, dir) = config_dir(&manifest(&[("eps", "https://hooks.example.com/e")]));
    let mut watch = Watch::spawn(&dir, &api, &[]);
    assert_outcome(&watch.reconcile(), "applied", "start");

    let broken = "endpoints:\n  eps:\n    name: eps\n    url: https://hooks.example.com/e2\n    colour: red\n";
    std::fs::write(dir.join("endpoints.yaml"), broken).unwrap();
    let invalid = watch.reconcile();
    assert_outcome(&invalid, "invalid", "change");
    assert!(
        invalid["diagnostics"].as_str().unwrap().contains("colour"),
        "{invalid}"
    );
    assert_eq!(api.url_of("eps").unwrap(), "https://hooks.example.com/e");
    watch.assert_running();

    std::fs::write(
        dir.join("endpoints.yaml"),
        manifest(&[("eps", "https://hooks.example.com/e2")]),
    )
    .unwrap();
    let fixed = watch.reconcile();
    assert_outcome(&fixed, "applied", "change");
    assert_eq!(keys(&fixed, "update"), ["eps"]);
    assert_eq!(api.url_of("eps").unwrap(), "https://hooks.example.com/e2");

    // Another API in the project file: said in the log, the first connection is kept.
    let moved = PROJECT.replace("127.0.0.1:1", "127.0.0.1:2");
    std::fs::write(dir.join("kayle-sync.yaml"), moved).unwrap();
    // (Other warnings come first: these endpoints have no encryption key.)
    while !watch.event("warning")["message"]
        .as_str()
        .unwrap()
        .contains("different API")
    {}
    assert_outcome(&watch.reconcile(), "in-sync", "change");
}

#[test]
fn drift_is_corrected_on_the_interval_and_reported_by_metrics() {
    let api = Api::start();
    let (_root, dir) = config_dir(&manifest(&[("zeta", "https://hooks.example.com/z")]));
    let mut watch = Watch::spawn(
        &dir,
        &api,
        &["--interval", "2s", "--health-addr", "127.0.0.1:0"],
    );
    let health = watch.event("health");
    let base = health["message"]
        .as_str()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
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
fn api_errors_are_retried_with_backoff_until_they_stop() {
    let api = Api::start();
    // The client itself tries each read 5 times: this fails the first reconcile whole.
    let fault = Fault::Status {
        status: 503,
        retry_after_secs: None,
    };
    api.emulator.inject(Route::ListEndpoints, fault, 7);
    let (_root, dir) = config_dir(&manifest(&[("eta", "https://hooks.example.com/h")]));
    let mut watch = Watch::spawn(&dir, &api, &["--health-addr", "127.0.0.1:0"]);
    let health = watch.event("health");
    let base = health["message"]
        .as_str()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();

    let failed = watch.reconcile();
    assert_outcome(&failed, "failed", "start");
    assert!(
        failed["error"].as_str().unwrap().contains("503"),
        "{failed}"
    );
    let wait = humantime::parse_duration(failed["retry_in"].as_str().unwrap()).unwrap();
    assert!(
        (900..=1100).contains(&wait.as_millis()),
        "the first backoff is 1s ± 10%: {failed}"
    );
    assert_eq!(api.get(&format!("{base}/healthz")).0, 503);
    assert!(api.endpoint("eta").is_none());

    let recovered = watch.reconcile();
    assert_outcome(&recovered, "applied", "retry");
    assert_eq!(keys(&recovered, "create"), ["eta"]);
    assert_eq!(api.get(&format!("{base}/healthz")).0, 200);
    watch.assert_running();
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
fn a_kubelet_configmap_update_applies_once() {
    // The layout a ConfigMap volume has: every file a link through `..data` to a timestamped
    // directory; an update writes a new directory, swaps `..data`, removes the old one.
    let api = Api::start();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("config");
    let write_version = |name: &str, url: &str| {
        let data = dir.join(name);
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(
            data.join("kayle-sync.yaml"),
            PROJECT.replace(
                "secrets/kayle.env",
                &root.path().join("kayle.env").display().to_string(),
            ),
        )
        .unwrap();
        std::fs::write(data.join("endpoints.yaml"), manifest(&[("lambda", url)])).unwrap();
    };
    write_version("..2026_11_27_09_00_00.1", "https://hooks.example.com/1");
    std::os::unix::fs::symlink("..2026_11_27_09_00_00.1", dir.join("..data")).unwrap();
    for file in ["kayle-sync.yaml", "endpoints.yaml"] {
        std::os::unix::fs::symlink(format!("..data/{file}"), dir.join(file)).unwrap();
    }
    let mut watch = Watch::spawn(&dir, &api, &[]);
    assert_outcome(&watch.reconcile(), "applied", "start");

    write_version("..2026_11_27_09_01_00.2", "https://hooks.example.com/2");
    let temp = dir.join("..data_tmp");
    std::os::unix::fs::symlink("..2026_11_27_09_01_00.2", &temp).unwrap();
    std::fs::rename(&temp, dir.join("..data")).unwrap();
    std::fs::remove_dir_all(dir.join("..2026_11_27_09_00_00.1")).unwrap();

    let updated = watch.reconcile();
    assert_outcome(&updated, "applied", "change");
    assert_eq!(keys(&updated, "update"), ["lambda"]);
    assert_eq!(api.url_of("lambda").unwrap(), "https://hooks.example.com/2");
    let extra = watch.reconciles_during(Duration::from_millis(1500));
    assert!(extra.is_empty(), "{extra:?}");
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
fn a_directory_replaced_at_the_same_path_is_watched_again() {
    let api = Api::start();
    let (root, dir) = config_dir(&manifest(&[("nu", "https://hooks.example.com/n1")]));
    let mut watch = Watch::spawn(&dir, &api, &[]);
    assert_outcome(&watch.reconcile(), "applied", "start");

    // A deploy that builds the new directory aside and swaps it in with two renames.
    let (new, old) = (
        root.path().join("config.new"),
        root.path().join("config.old"),
    );
    std::fs::create_dir_all(new.join("keys")).unwrap();
    std::fs::copy(dir.join("kayle-sync.yaml"), new.join("kayle-sync.yaml")).unwrap();
    std::fs::create_dir_all(new.join("secrets")).unwrap();
    std::fs::copy(dir.join("secrets/kayle.env"), new.join("secrets/kayle.env")).unwrap();
    std::fs::write(
        new.join("endpoints.yaml"),
        manifest(&[("nu", "https://hooks.example.com/n2")]),
    )
    .unwrap();
    std::fs::rename(&dir, &old).unwrap();
    std::fs::rename(&new, &dir).unwrap();
    let swapped = watch.reconcile();
    assert_outcome(&swapped, "applied", "change");
    assert_eq!(api.url_of("nu").unwrap(), "https://hooks.example.com/n2");

    // Edits in the new directory are seen: the watch moved to it.
    std::fs::write(
        dir.join("endpoints.yaml"),
        manifest(&[("nu", "https://hooks.example.com/n3")]),
    )
    .unwrap();
    assert_outcome(&watch.reconcile(), "applied", "change");
    assert_eq!(api.url_of("nu").unwrap(), "https://hooks.example.com/n3");
}
