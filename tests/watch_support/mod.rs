//! Shared by the `watch` integration tests: the real binary run on a temporary config
//! directory against an in-process emulator, its JSON log read line by line.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kayle_emulator::{Config, Emulator, Server};
use serde_json::Value;

/// Generous: the machine running the tests may be slow and busy.
pub const WAIT: Duration = Duration::from_secs(30);

pub const PROJECT: &str = "\
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

pub const PUBLIC_KEY: &str = include_str!("../fixtures/quickstart/keys/orders-2026-11.pub.pem");

/// An emulator served on its own runtime, so the test thread may block.
pub struct Api {
    pub runtime: tokio::runtime::Runtime,
    pub emulator: Emulator,
    pub server: Server,
}

impl Api {
    pub fn start() -> Api {
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
    pub fn endpoint(&self, key: &str) -> Option<Value> {
        let label = format!("kayle-sync:{key}");
        self.emulator
            .endpoints()
            .into_iter()
            .find(|e| e["labels"].as_array().unwrap().iter().any(|l| l == &label))
    }

    pub fn url_of(&self, key: &str) -> Option<String> {
        self.endpoint(key)
            .map(|e| e["url"].as_str().unwrap().to_owned())
    }

    /// Changes an endpoint behind kayle-sync's back, as a person in the dashboard would.
    pub fn patch(&self, id: &str, body: Value) {
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

    pub fn get(&self, url: &str) -> (u16, String) {
        self.runtime.block_on(async {
            let response = reqwest::get(url).await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        })
    }
}

/// `kayle-sync watch DIR ARGS` with the API at `url`, stdout and stderr piped.
pub fn command(dir: &Path, url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kayle-sync"));
    command
        .arg("watch")
        .arg(dir)
        .args(args)
        .env("KAYLE_API_URL", url)
        .env("KAYLE_API_KEY", "kk_test")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A config directory in a temporary directory.
pub fn config_dir(endpoints: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("config");
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::write(dir.join("kayle-sync.yaml"), PROJECT).unwrap();
    std::fs::write(dir.join("keys/k.pub.pem"), PUBLIC_KEY).unwrap();
    std::fs::write(dir.join("endpoints.yaml"), endpoints).unwrap();
    (root, dir)
}

pub fn manifest(keys: &[(&str, &str)]) -> String {
    let mut text = String::from("endpoints:\n");
    for (key, url) in keys {
        text.push_str(&format!("  {key}:\n    name: {key}\n    url: {url}\n"));
    }
    text
}

/// The running `kayle-sync watch`, its JSON log lines arriving on a channel.
pub struct Watch {
    pub child: Child,
    pub lines: Receiver<String>,
    pub seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Watch {
    pub fn spawn(dir: &Path, api: &Api, args: &[&str]) -> Watch {
        Watch::spawn_at(dir, &api.server.url(), args)
    }

    /// Watches `dir` with the API at `url`.
    pub fn spawn_at(dir: &Path, url: &str, args: &[&str]) -> Watch {
        let mut child = command(dir, url, &[&["--format", "json"], args].concat())
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

    pub fn context(&self) -> String {
        format!(
            "log so far:\n{}\nstderr:\n{}",
            self.seen.join("\n"),
            self.stderr.lock().unwrap()
        )
    }

    /// The next log line before `deadline`, parsed.
    pub fn next(&mut self, deadline: Instant) -> Option<Value> {
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
    pub fn reconcile(&mut self) -> Value {
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
    pub fn event(&mut self, event: &str) -> Value {
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

    /// The base URL of `/healthz` and `/metrics`, from the log line announcing them.
    pub fn health_base(&mut self) -> String {
        let health = self.event("health");
        let message = health["message"].as_str().unwrap();
        message.rsplit(' ').next().unwrap().to_owned()
    }

    /// The reconcile outcomes logged during `quiet`.
    pub fn reconciles_during(&mut self, quiet: Duration) -> Vec<Value> {
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
    pub fn drain(&mut self) -> Vec<Value> {
        let mut lines = Vec::new();
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line.clone());
            lines.push(serde_json::from_str(&line).unwrap());
        }
        lines
    }

    pub fn assert_running(&mut self) {
        let status = self.child.try_wait().unwrap();
        assert!(status.is_none(), "exited: {status:?}; {}", self.context());
    }

    /// Waits for the next reconcile and checks that `trigger` started it and that it
    /// created `key`, and only that; returns its line.
    #[track_caller]
    pub fn assert_creates(&mut self, trigger: &str, key: &str) -> Value {
        let applied = self.reconcile();
        assert_outcome(&applied, "applied", trigger);
        assert_eq!(keys(&applied, "create"), [key], "{applied}");
        applied
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
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

pub fn keys(line: &Value, action: &str) -> Vec<String> {
    line["changes"][action]
        .as_array()
        .unwrap_or_else(|| panic!("no changes.{action} in {line}"))
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

pub fn assert_outcome(line: &Value, outcome: &str, trigger: &str) {
    assert_eq!(line["outcome"], outcome, "{line}");
    assert_eq!(line["trigger"], trigger, "{line}");
}

/// Replaces `path` the way editors save: a backup, a temp file written, renamed over it.
pub fn atomic_save(path: &Path, text: &str) {
    let dir = path.parent().unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    std::fs::write(dir.join(format!(".{name}.swp")), "swap").unwrap();
    std::fs::copy(path, dir.join(format!("{name}~"))).unwrap();
    let temp = dir.join(format!("{name}.tmp123"));
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, path).unwrap();
    std::fs::remove_file(dir.join(format!(".{name}.swp"))).unwrap();
}

pub fn symlink_over(target: &str, link: &Path) {
    let temp = link.with_extension("tmp-link");
    std::os::unix::fs::symlink(target, &temp).unwrap();
    std::fs::rename(&temp, link).unwrap();
}
