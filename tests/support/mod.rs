//! Shared helpers for the end-to-end tests: an in-process emulator served on loopback, config
//! directories in temp dirs, and the real `kayle-sync` binary run against them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub mod api_emulated;
pub mod manifests;
pub mod window;

use kayle_emulator::{Config, Emulator, Server};
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::Value;

/// The API key the emulator accepts.
pub const TOKEN: &str = "kk_test";

/// `KAYLE_SYNC_LATE_WINDOW` for every run of the binary.
pub const LATE_WINDOW: &str = "3s";

/// The furthest a late window recorded during a run reaches past its end: the window, the
/// time a rotation's record may take to make, and a second rounded up.
pub const LONGEST_RECORDED_WINDOW: std::time::Duration = std::time::Duration::from_secs(3 + 2 + 1);

/// The default label prefix.
pub const PREFIX: &str = "kayle-sync:";

/// The project file every test directory starts with: one dotenv sink, the default one. The
/// URL is never used: `KAYLE_API_URL` points the binary at the test's emulator.
pub const PROJECT_FILE: &str = "\
api:
  url: http://127.0.0.1:9
sinks:
  local:
    type: dotenv
    path: secrets/kayle.env
defaults:
  signing_secret:
    sink: local
";

/// An emulator serving on 127.0.0.1, with a runtime of its own so tests stay synchronous.
pub struct Api {
    pub emu: Emulator,
    pub url: String,
    rt: tokio::runtime::Runtime,
    server: Option<Server>,
    http: reqwest::Client,
}

impl Api {
    /// Waits until a request lost now can no longer land, and every late window the binary
    /// recorded on an endpoint has passed.
    pub fn wait_out_late_window(&self) {
        std::thread::sleep(std::time::Duration::from_millis(3_100));
        window::wait_out_recorded_windows(&self.emu, PREFIX, LONGEST_RECORDED_WINDOW);
    }

    pub fn start() -> Api {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let emu = Emulator::new(Config::test(TOKEN)).unwrap();
        let server = rt.block_on(emu.serve("127.0.0.1:0")).unwrap();
        Api {
            emu,
            url: server.url(),
            rt,
            server: Some(server),
            http: reqwest::Client::new(),
        }
    }

    /// Every endpoint, newest first, as the API returns them.
    pub fn endpoints(&self) -> Vec<Value> {
        self.emu.endpoints()
    }

    /// The endpoints carrying the identity label of `key`.
    pub fn managed(&self, key: &str) -> Vec<Value> {
        let label = format!("{PREFIX}{key}");
        self.endpoints()
            .into_iter()
            .filter(|e| labels(e).iter().any(|l| *l == label))
            .collect()
    }

    /// The one endpoint of `key`; fails when there are none or several.
    pub fn one(&self, key: &str) -> Value {
        let found = self.managed(key);
        assert_eq!(
            found.len(),
            1,
            "expected exactly one endpoint for {key}, found {found:#?}"
        );
        found.into_iter().next().unwrap()
    }

    /// The endpoint's current signing secret.
    pub fn secret(&self, endpoint_id: &str) -> String {
        self.emu
            .signing_secret(endpoint_id)
            .unwrap_or_else(|| panic!("no endpoint {endpoint_id}"))
    }

    /// Every endpoint's current signing secret.
    pub fn all_secrets(&self) -> Vec<String> {
        self.endpoints()
            .iter()
            .filter_map(|e| self.emu.signing_secret(e["id"].as_str()?))
            .collect()
    }

    /// The endpoint's keys, newest first.
    pub fn keys(&self, endpoint_id: &str) -> Vec<Value> {
        self.emu.keys(endpoint_id)
    }

    /// Waits until no request a fault held can still land (hung or held to land late).
    #[track_caller]
    pub fn until_landed(&self) {
        let started = std::time::Instant::now();
        while self.emu.held() > 0 {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "a held request never landed"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// The next `count` listings of the endpoints wait for each other (at most 30 s), so that
    /// as many applies started together all see the organization as it was before any of
    /// them changed it, however they are scheduled. Their client timeout must be longer than
    /// the wait for the last one to start.
    pub fn list_together(&self, count: usize) {
        self.emu.inject(
            kayle_emulator::Route::ListEndpoints,
            kayle_emulator::Fault::Barrier {
                count,
                timeout: std::time::Duration::from_secs(30),
            },
            1,
        );
    }

    /// Fails when any request left an endpoint enabled without an active key.
    pub fn assert_no_violations(&self) {
        let violations = self.emu.violations();
        assert!(violations.is_empty(), "violations: {violations:#?}");
    }

    /// Calls the API directly, as someone in the dashboard would; returns status and body.
    pub fn request(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let url = format!("{}{path}", self.url);
        self.rt.block_on(async {
            let mut request = self.http.request(method, url).bearer_auth(TOKEN);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        })
    }

    /// Creates an endpoint directly through the API; returns the endpoint object.
    pub fn create_endpoint(&self, body: Value) -> Value {
        let (status, body) = self.request("POST", "/v1/webhooks/endpoints", Some(body));
        assert!(status < 300, "create failed: {status} {body}");
        endpoint_of(body)
    }

    /// Changes an endpoint directly through the API (drift).
    pub fn patch(&self, endpoint_id: &str, body: Value) -> Value {
        let path = format!("/v1/webhooks/endpoints/{endpoint_id}");
        let (status, body) = self.request("PATCH", &path, Some(body));
        assert!(status < 300, "patch failed: {status} {body}");
        endpoint_of(body)
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.rt.block_on(server.shutdown());
        }
    }
}

/// The endpoint object in an API answer (bare, or under `data` / `endpoint`).
fn endpoint_of(body: Value) -> Value {
    for field in ["data", "endpoint", "webhook_endpoint"] {
        if let Some(inner) = body.get(field)
            && inner.get("id").is_some()
        {
            return inner.clone();
        }
        if let Some(inner) = body.get(field).and_then(|d| d.get("endpoint"))
            && inner.get("id").is_some()
        {
            return inner.clone();
        }
    }
    assert!(body.get("id").is_some(), "no endpoint in {body}");
    body
}

/// An endpoint's labels.
pub fn labels(endpoint: &Value) -> Vec<&str> {
    endpoint["labels"]
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// An endpoint's id.
pub fn id(endpoint: &Value) -> String {
    endpoint["id"].as_str().unwrap().to_owned()
}

/// What one run of the binary printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Fails, showing both streams, unless the exit code is `code`.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Both streams, for searching.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Fails, showing stdout, unless it holds each of `parts`.
    #[track_caller]
    pub fn stdout_has(&self, parts: &[&str]) -> &Run {
        assert_holds("stdout", &self.stdout, parts);
        self
    }

    /// Fails, showing stderr, unless it holds each of `parts`.
    #[track_caller]
    pub fn stderr_has(&self, parts: &[&str]) -> &Run {
        assert_holds("stderr", &self.stderr, parts);
        self
    }
}

/// Fails, naming the first of `parts` that `text` lacks and showing `text`.
#[track_caller]
fn assert_holds(stream: &str, text: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            text.contains(part),
            "{stream} lacks {part:?}\n--- {stream}\n{text}"
        );
    }
}

/// A config directory in a temp dir.
pub struct Project {
    tmp: tempfile::TempDir,
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

impl Project {
    /// A directory with [`PROJECT_FILE`] and no manifest.
    pub fn new() -> Project {
        Project::with_project_file(PROJECT_FILE)
    }

    pub fn with_project_file(text: &str) -> Project {
        let project = Project {
            tmp: tempfile::tempdir().unwrap(),
        };
        project.write("kayle-sync.yaml", text);
        project
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir().join(relative)
    }

    /// Writes a file, creating its directory.
    pub fn write(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Replaces the manifest `endpoints.yaml`.
    pub fn manifest(&self, yaml: &str) {
        self.write("endpoints.yaml", yaml);
    }

    /// Writes a fresh RSA-2048 public key (SPKI PEM) and returns its JWK `n` and `e`.
    pub fn public_key(&self, relative: &str) -> (String, String) {
        let private = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let public = RsaPublicKey::from(&private);
        self.write(relative, &public.to_public_key_pem(LineEnding::LF).unwrap());
        let jwk = kayle_sync::apply::keys::public_jwk(&public);
        (jwk.n, jwk.e)
    }

    /// The dotenv sink's file.
    pub fn sink_path(&self) -> PathBuf {
        self.path("secrets/kayle.env")
    }

    /// The dotenv sink's text, empty when it does not exist.
    pub fn sink_text(&self) -> String {
        std::fs::read_to_string(self.sink_path()).unwrap_or_default()
    }

    /// The value the dotenv sink holds under `name`.
    pub fn sink(&self, name: &str) -> Option<String> {
        kayle_sync::sink::dotenv::read_value(&self.sink_text(), name).unwrap()
    }

    /// The binary, set up to run in this directory against `api`, stdin not a terminal.
    pub fn command(&self, api: &Api, args: &[&str]) -> Command {
        self.command_at(&api.url, args)
    }

    /// The binary, set up to run in this directory against the API at `url`.
    pub fn command_at(&self, url: &str, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kayle-sync"));
        command
            .args(args)
            .current_dir(self.dir())
            .env("KAYLE_API_URL", url)
            .env("KAYLE_API_KEY", TOKEN)
            .env("KAYLE_SYNC_HTTP_TIMEOUT", "2s")
            // A lost request lands within 3 s in these tests (the emulator's hangs are
            // shorter), so an unsettled endpoint settles 3 s after its last lost request.
            .env("KAYLE_SYNC_LATE_WINDOW", LATE_WINDOW)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs the binary to the end.
    pub fn run(&self, api: &Api, args: &[&str]) -> Run {
        Run::from(self.command(api, args).output().unwrap())
    }

    /// Runs the binary with extra environment variables.
    pub fn run_with(&self, api: &Api, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command(api, args);
        command.envs(env.iter().copied());
        Run::from(command.output().unwrap())
    }

    /// `apply --auto-approve` plus `args`, expected to succeed.
    #[track_caller]
    pub fn apply(&self, api: &Api, args: &[&str]) -> Run {
        let mut all = vec!["apply", "--auto-approve"];
        all.extend_from_slice(args);
        let run = self.run(api, &all);
        run.expect(0);
        run
    }

    /// `plan --detailed-exitcode`, expected to find nothing to do.
    #[track_caller]
    pub fn assert_converged(&self, api: &Api) {
        let run = self.run(api, &["plan", "--detailed-exitcode"]);
        run.expect(0);
        assert!(run.stdout.contains("No changes."), "{}", run.stdout);
    }
}

/// Runs a prepared command to the end.
pub fn finish(mut command: Command) -> Run {
    Run::from(command.output().unwrap())
}

/// Spawns a prepared command.
pub fn spawn(mut command: Command) -> std::process::Child {
    command.spawn().unwrap()
}

/// Waits for a spawned command.
pub fn wait(child: std::process::Child) -> Run {
    Run::from(child.wait_with_output().unwrap())
}
