//! The reconcile loop in-process, on tokio's paused clock: a scripted reconcile stands in for
//! the API, a temporary directory holds the manifests, and the test sends the file notices
//! and the shutdown itself. Time only moves when every task waits, so a test of a five-minute
//! interval takes milliseconds and its timings are exact.

mod events;
mod schedule;

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::controller::{Controller, Reconcile, Watched};
use super::files::{FilesError, Notice};
use super::{Changes, Done, Log, Metrics, Options, ReconcileError, Snapshot};
use crate::api::ApiError;
use crate::apply::{ApplyError, Event};

/// Long enough for any test; a loop still running then never stops on its own.
const LIMIT: Duration = Duration::from_secs(86_400);

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

/// A manifest declaring one endpoint `key` at `url`, disabled so that it needs no key and
/// draws no warning.
fn manifest(key: &str, url: &str) -> String {
    format!("endpoints:\n  {key}:\n    name: {key}\n    url: {url}\n    enabled: false\n")
}

/// One scripted reconcile: what it returns, how long it takes and what it reports meanwhile.
struct Step {
    result: Result<Done, ReconcileError>,
    applied: Changes,
    takes: Duration,
    events: Vec<Event>,
    /// A signal arrives while this reconcile runs.
    signalled: bool,
}

impl Step {
    fn in_sync() -> Step {
        Step::returning(Ok(Done::InSync))
    }

    /// Applied: `keys` updated.
    fn updated(keys: &[&str]) -> Step {
        let changes = Changes {
            update: keys.iter().map(|k| (*k).to_owned()).collect(),
            ..Changes::default()
        };
        Step {
            applied: changes.clone(),
            ..Step::returning(Ok(Done::Applied(changes)))
        }
    }

    fn failing(error: ReconcileError) -> Step {
        Step::returning(Err(error))
    }

    fn returning(result: Result<Done, ReconcileError>) -> Step {
        Step {
            result,
            applied: Changes::default(),
            takes: Duration::ZERO,
            events: Vec::new(),
            signalled: false,
        }
    }

    /// `n` reconciles that find everything in sync, a signal arriving during the last.
    fn in_sync_until_signalled(n: usize) -> Vec<Step> {
        let mut steps: Vec<Step> = (1..n).map(|_| Step::in_sync()).collect();
        steps.push(Step::in_sync().signalled());
        steps
    }

    fn taking(self, takes: Duration) -> Step {
        Step { takes, ..self }
    }

    fn reporting(self, event: Event) -> Step {
        let mut events = self.events;
        events.push(event);
        Step { events, ..self }
    }

    fn signalled(self) -> Step {
        Step {
            signalled: true,
            ..self
        }
    }
}

/// A failure the API answered with `status` while the live state was read.
fn api_failure(status: u16) -> ReconcileError {
    ReconcileError::Read(crate::read::ReadError::Api(ApiError::Status {
        doing: "listing endpoints".into(),
        status,
        code: None,
        message: "no".into(),
        hint: None,
        issues: Vec::new(),
    }))
}

/// What loading a directory whose `orders` has a bad URL finds.
pub(super) fn not_a_url() -> crate::manifest::Diagnostics {
    use crate::manifest::{Code, Diagnostic, Diagnostics};
    let location = crate::model::Location {
        file: "endpoints.yaml".into(),
        line: 2,
        column: 5,
    };
    Diagnostics(vec![
        Diagnostic::error(Code::InvalidUrl, Some(location), "not a URL")
            .field("endpoints.orders.url"),
    ])
}

/// A rotation of `key` deferred until unix time `until`.
fn deferred(key: &str, until: u64) -> ReconcileError {
    ReconcileError::Apply {
        failed: 1,
        of: 1,
        errors: vec![ApplyError::RotationDeferred {
            key: key.into(),
            until,
            by_command: false,
        }],
    }
}

/// One reconcile the loop asked for.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    /// When it started and ended, from the test's start.
    at: Duration,
    ended: Duration,
    verify: bool,
    digest: [u8; 32],
}

/// Plays the steps in order; a reconcile beyond them fails the test.
struct Scripted {
    steps: Mutex<VecDeque<Step>>,
    calls: Mutex<Vec<Call>>,
    start: Instant,
    shutdown: Arc<watch::Sender<bool>>,
}

impl Reconcile for &Scripted {
    async fn reconcile(
        &self,
        snapshot: &Snapshot,
        verify_secrets: bool,
        report: &mut dyn FnMut(&Event),
    ) -> (Result<Done, ReconcileError>, Changes) {
        let at = self.start.elapsed();
        let step = self.steps.lock().unwrap().pop_front();
        let Some(step) = step else {
            let calls = self.calls.lock().unwrap();
            panic!("an unscripted reconcile at {at:?}, after {calls:#?}");
        };
        for event in &step.events {
            report(event);
        }
        if step.signalled {
            self.shutdown.send_replace(true);
        }
        tokio::time::sleep(step.takes).await;
        self.calls.lock().unwrap().push(Call {
            at,
            ended: self.start.elapsed(),
            verify: verify_secrets,
            digest: snapshot.digest,
        });
        (step.result, step.applied)
    }
}

/// The directory as the notices name it: never replaced, relevance as the real watch has it.
struct StillDir(PathBuf);

impl Watched for StillDir {
    fn retarget(&mut self) -> Result<bool, FilesError> {
        Ok(false)
    }

    fn relevant(&self, paths: &[PathBuf]) -> Vec<PathBuf> {
        super::files::relevant(&self.0, paths)
    }
}

/// A log written into memory.
#[derive(Clone, Default)]
pub(super) struct Shared(pub(super) Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A config directory and the options a test watches it with.
struct World {
    _root: tempfile::TempDir,
    options: Options,
}

impl World {
    /// A directory declaring one endpoint, watched every `interval`.
    fn new(interval: Duration) -> World {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("config");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("kayle-sync.yaml"), PROJECT).unwrap();
        std::fs::write(
            dir.join("endpoints.yaml"),
            manifest("orders", "https://a.example.com/"),
        )
        .unwrap();
        let options = Options {
            dir,
            interval,
            dry_run: false,
            prune: false,
            force: false,
            concurrency: 1,
            late_window: Duration::from_secs(900),
            kept_keys: crate::read::Retention::Kayle,
            settle: Duration::ZERO,
            verify_interval: None,
        };
        World {
            _root: root,
            options,
        }
    }

    fn dir(&self) -> &Path {
        &self.options.dir
    }

    /// Runs the loop through `steps` while `script` plays, until the loop ends; a loop that
    /// does not end within [`LIMIT`] of paused time fails the test.
    async fn run<F: Future<Output = ()>>(
        &self,
        steps: Vec<Step>,
        script: impl FnOnce(Driver) -> F,
    ) -> Ran {
        let start = Instant::now();
        let (sender, shutdown) = watch::channel(false);
        let sender = Arc::new(sender);
        let (notices, mut incoming) = mpsc::unbounded_channel();
        let reconciler = Scripted {
            steps: Mutex::new(steps.into()),
            calls: Mutex::new(Vec::new()),
            start,
            shutdown: Arc::clone(&sender),
        };
        let out = Shared::default();
        let mut log = Log::new(Box::new(out.clone()), true);
        let metrics = Metrics::default();
        let first_api = crate::manifest::load_project(self.dir()).unwrap().api;
        let mut files = StillDir(self.options.dir.clone());
        let controller =
            Controller::new(&self.options, &reconciler, &first_api, &mut log, &metrics);
        let watching = async {
            let result = controller.run(&mut files, &mut incoming, shutdown).await;
            (result, start.elapsed())
        };
        let driver = Driver {
            start,
            dir: self.options.dir.clone(),
            notices,
            shutdown: sender,
        };
        let ((result, stopped), ()) =
            tokio::time::timeout(LIMIT, async { tokio::join!(watching, script(driver)) })
                .await
                .expect("the loop never stopped");
        result.unwrap();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let left = reconciler.steps.lock().unwrap().len();
        assert_eq!(left, 0, "steps never played");
        Ran {
            calls: reconciler.calls.into_inner().unwrap(),
            lines,
            stopped,
            metrics: metrics.render(),
        }
    }

    /// Runs the loop through `steps` while the endpoint's URL is edited `secs` after start.
    async fn run_edited_at(&self, secs: f64, steps: Vec<Step>) -> Ran {
        self.run(steps, |driver| async move {
            driver.at(secs).await;
            driver.edit("https://b.example.com/");
        })
        .await
    }
}

/// What a test does to the running loop.
struct Driver {
    start: Instant,
    dir: PathBuf,
    notices: mpsc::UnboundedSender<Notice>,
    shutdown: Arc<watch::Sender<bool>>,
}

impl Driver {
    /// Waits (in paused time) until `secs` seconds after the test started.
    async fn at(&self, secs: f64) {
        tokio::time::sleep_until(self.start + Duration::from_secs_f64(secs)).await;
    }

    /// Writes `text` to `name` in the directory and sends the notice a file watch would.
    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).unwrap();
        self.notice(&[name]);
    }

    /// Points the one endpoint at `url` and sends the notice.
    fn edit(&self, url: &str) {
        self.write("endpoints.yaml", &manifest("orders", url));
    }

    /// Sends a notice naming `names` in the directory.
    fn notice(&self, names: &[&str]) {
        let paths = names.iter().map(|n| self.dir.join(n)).collect();
        self.notices.send(Ok(paths)).unwrap();
    }

    /// SIGINT or SIGTERM.
    fn signal(&self) {
        self.shutdown.send_replace(true);
    }
}

/// What a run did.
struct Ran {
    calls: Vec<Call>,
    /// The JSON log, line by line.
    lines: Vec<Value>,
    /// When the loop ended, from the test's start.
    stopped: Duration,
    /// The Prometheus text of the loop's metrics.
    metrics: String,
}

impl Ran {
    /// The `reconcile` lines.
    fn outcomes(&self) -> Vec<&Value> {
        self.lines
            .iter()
            .filter(|l| l["event"] == "reconcile")
            .collect()
    }

    /// `(trigger, outcome)` of each reconcile, in order.
    fn triggers(&self) -> Vec<(String, String)> {
        self.outcomes()
            .iter()
            .map(|l| (text(&l["trigger"]), text(&l["outcome"])))
            .collect()
    }

    /// The trigger of each reconcile, in order.
    fn trigger_names(&self) -> Vec<String> {
        self.triggers().into_iter().map(|(t, _)| t).collect()
    }

    /// The `event` of each line, in order.
    fn events(&self) -> Vec<String> {
        self.lines.iter().map(|l| text(&l["event"])).collect()
    }

    /// Seconds between the starts of one reconcile and the next.
    fn gaps(&self) -> Vec<f64> {
        let starts: Vec<f64> = self.calls.iter().map(|c| c.at.as_secs_f64()).collect();
        starts.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// The wait a reconcile line says its retry comes after, in seconds; its text and its
    /// number must agree.
    fn retry_in(line: &Value) -> Option<f64> {
        let seconds = line["retry_in_seconds"].as_f64();
        let Some(text) = line["retry_in"].as_str() else {
            assert_eq!(seconds, None, "{line}");
            return None;
        };
        let parsed = humantime::parse_duration(text).unwrap().as_secs_f64();
        assert_eq!(seconds, Some(parsed), "{line}");
        Some(parsed)
    }
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Asserts `secs` lies within `wait` ±10% (the jitter), give or take the timer's millisecond.
#[track_caller]
fn assert_jittered(secs: f64, wait: f64) {
    let (low, high) = (wait * 0.9 - 0.002, wait * 1.1 + 0.002);
    assert!(
        (low..=high).contains(&secs),
        "{secs}s is not within {wait}s ±10%"
    );
}

/// Asserts `at` is `secs` seconds, give or take the timer's millisecond.
#[track_caller]
fn assert_about(at: Duration, secs: f64) {
    let at = at.as_secs_f64();
    assert!((at - secs).abs() <= 0.002, "{at}s, not {secs}s");
}
