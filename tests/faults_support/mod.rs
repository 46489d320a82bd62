//! The fault-injection lab: an emulator served in-process, a config directory, and runs of the
//! real `kayle-sync` binary that can be killed, with every output kept for the leak check.
#![allow(dead_code)]

pub mod check;
pub use crate::support::window;
pub mod world;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kayle_emulator::{Config, Emulator, Fault, Server};
use rsa::pkcs8::{EncodePublicKey, LineEnding};

use world::{KEY_POOL, World};

pub const TOKEN: &str = "kk_test";

/// A run that takes longer than this is a hang, and a failure.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// `KAYLE_SYNC_LATE_WINDOW`: kayle-sync assumes a request whose answer was lost lands within
/// this long or never. Every late landing the suite injects lands well within it.
pub const LATE_WINDOW: Duration = Duration::from_secs(3);

/// A held request that has not landed after this long is a broken emulator.
const LANDING_LIMIT: Duration = Duration::from_secs(60);

/// The shared public keys `k0`.. as PEM, generated once per test process.
fn key_pool() -> &'static [String] {
    static POOL: OnceLock<Vec<String>> = OnceLock::new();
    POOL.get_or_init(|| {
        (0..KEY_POOL)
            .map(|_| {
                let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                    .expect("key generation");
                private
                    .to_public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .expect("PEM")
            })
            .collect()
    })
}

/// How one run of kayle-sync ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Killed,
}

/// One captured run: its arguments, how it ended, its stdout and stderr.
#[derive(Debug, Clone)]
pub struct Captured {
    pub args: String,
    pub ended: Ended,
    pub stdout: String,
    pub stderr: String,
}

/// An emulator, a config directory, and everything kayle-sync printed in it.
pub struct Lab {
    runtime: tokio::runtime::Runtime,
    pub emulator: Emulator,
    server: Option<Server>,
    pub url: String,
    root: tempfile::TempDir,
    /// Every run so far.
    pub runs: Vec<Captured>,
    /// Every signing secret the emulator held after any run.
    pub secrets_seen: BTreeSet<String>,
    /// Known, documented limitations met (not failures), one line each.
    pub limitations: Vec<String>,
    /// `KAYLE_SYNC_HTTP_TIMEOUT` of every run: short, so hangs and held requests time out.
    pub http_timeout: String,
    /// When the last run ended: no request of any run was sent after it.
    last_run_end: Option<Instant>,
}

impl Lab {
    pub fn new() -> Lab {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let emulator = Emulator::new(Config::test(TOKEN)).expect("emulator");
        let server = runtime
            .block_on(emulator.serve("127.0.0.1:0"))
            .expect("serve");
        let root = tempfile::tempdir().expect("temp dir");
        for dir in ["config/keys", "sink", "logs"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("lab dirs");
        }
        for (i, pem) in key_pool().iter().enumerate() {
            std::fs::write(root.path().join(format!("config/keys/k{i}.pub.pem")), pem)
                .expect("key file");
        }
        Lab {
            url: server.url(),
            runtime,
            emulator,
            server: Some(server),
            root,
            runs: Vec::new(),
            secrets_seen: BTreeSet::new(),
            limitations: Vec::new(),
            http_timeout: "1s".to_owned(),
            last_run_end: None,
        }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.root.path().join("config")
    }

    /// Where the command sink writes one file per secret name.
    pub fn sink_dir(&self) -> PathBuf {
        self.root.path().join("sink")
    }

    /// While this file exists, the command sink fails.
    pub fn sink_flag(&self) -> PathBuf {
        self.root.path().join("sink-fails")
    }

    pub fn dotenv_path(&self) -> PathBuf {
        self.config_dir().join("secrets/kayle.env")
    }

    pub fn write(&self, world: &World) {
        world.write(&self.config_dir(), &self.sink_dir(), &self.sink_flag());
    }

    pub fn set_sink_failing(&self, failing: bool) {
        if failing {
            std::fs::write(self.sink_flag(), "").expect("flag file");
        } else {
            let _ = std::fs::remove_file(self.sink_flag());
        }
    }

    pub fn chaos(&self, seed: u64, probability: f64, faults: Vec<Fault>) {
        self.emulator.chaos(seed, probability, faults);
    }

    pub fn clear_faults(&self) {
        self.emulator.clear_faults();
        self.set_sink_failing(false);
    }

    /// Starts kayle-sync with `args` and the config directory; output goes to log files.
    pub fn spawn(&self, args: &[&str], n: usize) -> Child {
        self.spawn_in(&self.config_dir(), args, n)
    }

    /// Starts kayle-sync with `args` on `dir`.
    pub fn spawn_in(&self, dir: &Path, args: &[&str], n: usize) -> Child {
        let logs = self.root.path().join("logs");
        let log = |name: String| std::fs::File::create(logs.join(name)).expect("log file");
        Command::new(env!("CARGO_BIN_EXE_kayle-sync"))
            .args(args)
            .arg(dir)
            .env("KAYLE_API_URL", &self.url)
            .env("KAYLE_API_KEY", TOKEN)
            .env("KAYLE_SYNC_HTTP_TIMEOUT", &self.http_timeout)
            .env(
                "KAYLE_SYNC_LATE_WINDOW",
                format!("{}s", LATE_WINDOW.as_secs()),
            )
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "kayle_sync=debug")
            .stdin(Stdio::null())
            .stdout(log(format!("{n}.out")))
            .stderr(log(format!("{n}.err")))
            .spawn()
            .expect("kayle-sync starts")
    }

    /// Waits for `child` (started as run `n`), SIGKILLing it after `kill_after`, and records
    /// its output and the secrets the emulator then holds.
    pub fn finish(
        &mut self,
        mut child: Child,
        n: usize,
        args: &[&str],
        kill_after: Option<Duration>,
    ) -> Ended {
        let started = Instant::now();
        let ended = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break Ended::Exited(status.code().unwrap_or(-1));
            }
            let elapsed = started.elapsed();
            if kill_after.is_some_and(|limit| elapsed >= limit) {
                child.kill().expect("SIGKILL");
                child.wait().expect("reap");
                break Ended::Killed;
            }
            if elapsed > RUN_LIMIT {
                child.kill().expect("SIGKILL");
                child.wait().expect("reap");
                panic!("kayle-sync {args:?} hung for more than {RUN_LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.last_run_end = Some(Instant::now());
        let logs = self.root.path().join("logs");
        let read = |name: String| std::fs::read_to_string(logs.join(name)).unwrap_or_default();
        self.runs.push(Captured {
            args: args.join(" "),
            ended,
            stdout: read(format!("{n}.out")),
            stderr: read(format!("{n}.err")),
        });
        self.snapshot_secrets();
        ended
    }

    /// Runs kayle-sync once to the end (or to its SIGKILL).
    pub fn run(&mut self, args: &[&str], kill_after: Option<Duration>) -> Ended {
        let n = self.runs.len();
        let child = self.spawn(args, n);
        self.finish(child, n, args, kill_after)
    }

    /// Runs `kayle-sync rotate KEY` once to the end (or to its SIGKILL).
    pub fn rotate(&mut self, key: &str, kill_after: Option<Duration>) -> Ended {
        self.run(&["rotate", key, "--auto-approve", "--dir"], kill_after)
    }

    /// Waits until nothing a fault held can still land.
    pub fn landed(&self) {
        let started = Instant::now();
        while self.emulator.held() > 0 {
            assert!(
                started.elapsed() < LANDING_LIMIT,
                "a held request never landed"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until nothing a fault held can still land and the late window has passed since
    /// the last request: from then on, kayle-sync may rightly assume every lost request has
    /// landed or never will.
    /// Then waits out every late window kayle-sync recorded on an endpoint, which may reach a
    /// little further: it counts from the latest moment a rotation may leave, in whole seconds.
    pub fn settle(&self) {
        self.landed();
        if let Some(end) = self.last_run_end {
            std::thread::sleep((end + LATE_WINDOW).saturating_duration_since(Instant::now()));
        }
        window::wait_out_recorded_windows(
            &self.emulator,
            check::PREFIX,
            LATE_WINDOW + Duration::from_secs(3),
        );
    }

    /// The value the dotenv sink holds under `name`.
    pub fn dotenv_value(&self, name: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.dotenv_path()).unwrap_or_default();
        kayle_sync::sink::dotenv::read_value(&text, name)
            .unwrap_or_else(|e| panic!("the dotenv file does not parse: {e}"))
    }

    /// Runs several kayle-sync processes at once, each to its end.
    pub fn race(&mut self, args: &[&[&str]]) -> Vec<Ended> {
        let first = self.runs.len();
        let children: Vec<Child> = args
            .iter()
            .enumerate()
            .map(|(i, a)| self.spawn(a, first + i))
            .collect();
        children
            .into_iter()
            .zip(args)
            .enumerate()
            .map(|(i, (child, a))| self.finish(child, first + i, a, None))
            .collect()
    }

    /// Copies the config directory to `count` other checkouts (each with its own sinks, as
    /// on separate CI runners, so no lock is shared) and runs `args` in all at once.
    pub fn race_checkouts(&mut self, count: usize, args: &[&str]) -> Vec<Ended> {
        let first = self.runs.len();
        let children: Vec<Child> = (0..count)
            .map(|i| {
                let checkout = self.root.path().join(format!("checkout-{first}-{i}"));
                std::fs::create_dir_all(checkout.join("keys")).expect("checkout");
                for entry in ["kayle-sync.yaml", "endpoints.yaml"]
                    .into_iter()
                    .map(PathBuf::from)
                    .chain((0..KEY_POOL).map(|k| PathBuf::from(format!("keys/k{k}.pub.pem"))))
                {
                    std::fs::copy(self.config_dir().join(&entry), checkout.join(&entry))
                        .expect("copy");
                }
                self.spawn_in(&checkout, args, first + i)
            })
            .collect();
        children
            .into_iter()
            .enumerate()
            .map(|(i, child)| self.finish(child, first + i, args, None))
            .collect()
    }

    pub fn snapshot_secrets(&mut self) {
        for endpoint in self.emulator.endpoints() {
            let id = endpoint["id"].as_str().unwrap_or_default();
            if let Some(secret) = self.emulator.signing_secret(id) {
                self.secrets_seen.insert(secret);
            }
        }
    }

    /// The last run's output, for failure messages.
    pub fn last_output(&self) -> String {
        self.runs
            .last()
            .map(|r| {
                format!(
                    "$ kayle-sync {} -> {:?}\n{}\n{}",
                    r.args, r.ended, r.stdout, r.stderr
                )
            })
            .unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.root.path()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}
