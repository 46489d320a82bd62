//! The watch case: how long after a manifest is saved `kayle-sync watch` has applied it.
//!
//! The benchmark starts `watch --format json` on a directory of [`ENDPOINTS`] endpoints, waits
//! for its first reconcile, then saves one edit at a time (a new name for one endpoint, a second
//! after the previous edit was applied) and times each from the moment the file is written to
//! the moment the watch log's line for the reconcile that applied it is read. That includes
//! watch's debounce of file events (400 ms).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Endpoints in the watched directory (one manifest file).
pub const ENDPOINTS: u64 = 100;

/// How long after an edit was applied the next one is saved: file events that trail a save
/// are handled by then, so no reconcile already on its way picks up the next edit early.
const SETTLE: Duration = Duration::from_secs(1);

/// The longest wait for one reconcile before the benchmark fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// The edited endpoint and the file that declares it.
const EDITED_KEY: &str = "ep-00000";
const EDITED_FILE: &str = "endpoints/part-000.yaml";

/// What one watch run measured.
pub struct WatchRun {
    /// Save-to-applied latency of each edit, sorted.
    pub latencies: Vec<Duration>,
    /// The watch process's peak resident memory, in KiB.
    pub peak_kb: u64,
}

impl WatchRun {
    pub fn median(&self) -> Duration {
        let n = self.latencies.len();
        match n {
            0 => Duration::ZERO,
            _ if n % 2 == 1 => self.latencies[n / 2],
            _ => (self.latencies[n / 2 - 1] + self.latencies[n / 2]) / 2,
        }
    }

    pub fn worst(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }
}

/// Runs `kayle-sync watch` on `dir` (its first reconcile creates the endpoints), saves `edits`
/// edits one after the other, each once the previous one was applied, and stops it with
/// SIGTERM. Panics when watch fails, exits early or does not apply an edit in time.
pub fn measure(binary: &Path, dir: &Path, url: &str, token: &str, edits: usize) -> WatchRun {
    let mut child = Command::new(binary)
        .args(["watch", "--format", "json"])
        .arg(dir)
        .env("KAYLE_API_URL", url)
        .env("KAYLE_API_KEY", token)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("watch-stderr.log")).expect("log file"))
        .spawn()
        .expect("kayle-sync watch runs");
    // Each line is stamped when it is read, on its own thread, so that a wait here never
    // delays the stamp.
    let (lines, heard) = mpsc::channel::<(Instant, String)>();
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let next_reconcile = |trigger: &str| -> (Instant, serde_json::Value) {
        loop {
            let (at, line) = heard
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("watch: no {trigger} reconcile within {PATIENCE:?}"));
            let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
            if event["event"] == "reconcile" && event["trigger"] == trigger {
                let outcome = event["outcome"].as_str().unwrap_or_default();
                assert!(
                    matches!(outcome, "applied" | "in-sync"),
                    "watch: reconcile {outcome}: {line}"
                );
                return (at, event);
            }
        }
    };
    next_reconcile("start");

    let path = dir.join(EDITED_FILE);
    let mut name = "Bench endpoint 0".to_owned();
    let mut latencies = Vec::with_capacity(edits);
    for edit in 1..=edits {
        std::thread::sleep(SETTLE);
        let text = std::fs::read_to_string(&path).expect("manifest");
        let renamed = format!("Bench endpoint 0, edit {edit}");
        let text = text.replacen(&format!("name: {name}\n"), &format!("name: {renamed}\n"), 1);
        name = renamed;
        std::fs::write(&path, text).expect("manifest saved");
        let saved = Instant::now();
        // A save can reach watch as two bursts of events; the reconcile that applied the edit
        // is the one that counts.
        let applied = loop {
            let (at, event) = next_reconcile("change");
            let updated = event["changes"]["update"]
                .as_array()
                .is_some_and(|keys| keys.iter().any(|key| key == EDITED_KEY));
            if updated {
                break at;
            }
        };
        latencies.push(applied.duration_since(saved));
    }

    let peak_kb = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|status| super::vm_hwm_kb(&status))
        .unwrap_or(0);
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
    // SAFETY: kill(2) with a pid this process spawned and has not reaped yet.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = child.wait().expect("watch exits");
    assert!(status.success(), "watch: exited {status} after SIGTERM");
    let _ = reader.join();
    latencies.sort();
    WatchRun { latencies, peak_kb }
}
