//! `cargo bench --bench sync`: request economy, speed and memory of plan and apply.
//!
//! A plain benchmark binary (no criterion): it runs the release `kayle-sync` binary as a
//! child process against kayle-emulator served in this process on a free loopback port, and
//! prints one table row per case: the requests per route the emulator counted, the wall time,
//! the floor (listing: ceil(N/100) sequential requests x latency; writes: write count x
//! latency / concurrency; key listings: count x latency / 8, plan's read concurrency), the
//! ratio to the floor, and the child's peak resident memory (`VmHWM`, polled).
//! Then, at each latency, it times `watch` from a saved edit to the edit applied ([`watch`]).
//! Last it checks its targets and prints one line per target.
//!
//! Cases: N endpoints, with no keys or with 10% declaring one shared 2048-bit public key; an
//! apply of N creates into an empty organization, then a plan of the N converged endpoints.
//! An endpoint that declares no key is declared disabled: kayle-sync keeps one without a key
//! disabled anyway, and reads its keys at every plan to see whether one was registered since.
//!
//! Environment (all optional; comma-separated lists):
//! - `KAYLE_BENCH_SIZES` (default `100,1000,10000`)
//! - `KAYLE_BENCH_LATENCIES_MS` (default `0,20`)
//! - `KAYLE_BENCH_CONCURRENCY` (default `8,32`): apply's `--concurrency`
//! - `KAYLE_BENCH_KEYS` (default `none,10pct`)
//! - `KAYLE_BENCH_WATCH_EDITS` (default `20`; `0` skips the watch case)
//! - `KAYLE_BENCH_BINARY`: the `kayle-sync` binary to measure (default: this build's)

#![allow(
    clippy::disallowed_macros,
    reason = "a benchmark binary prints its table"
)]

#[path = "sync/watch.rs"]
mod watch;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kayle_emulator::{Config, Emulator, Route};

const TOKEN: &str = "kk_test";
const PAGE: u64 = 100;
/// `kayle-sync plan`'s key listings run this many at once (src/cli/plan.rs).
const READ_CONCURRENCY: u64 = 8;
const PUBLIC_KEY: &str = include_str!("../tests/fixtures/quickstart/keys/orders-2026-11.pub.pem");
const MEMORY_TARGET_KB: u64 = 40 * 1024;
const APPLY_TARGET_RATIO: f64 = 1.3;
/// A plan's target ratio at sizes of at least [`PLAN_TARGET_SIZE`], with latency added.
const PLAN_TARGET_RATIO: f64 = 1.3;
const PLAN_TARGET_SIZE: u64 = 10_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Keys {
    None,
    TenPercent,
}

impl Keys {
    fn label(self) -> &'static str {
        match self {
            Keys::None => "no keys",
            Keys::TenPercent => "10% keys",
        }
    }

    fn declares(self, i: u64) -> bool {
        self == Keys::TenPercent && i.is_multiple_of(10)
    }

    fn count(self, n: u64) -> u64 {
        (0..n).filter(|i| self.declares(*i)).count() as u64
    }
}

/// One measured run of the kayle-sync binary.
struct Run {
    case: String,
    requests: String,
    wall: Duration,
    floor: Duration,
    /// kayle-sync's own CPU time, user + system.
    cpu: Duration,
    peak_kb: u64,
    /// What the target checks need.
    list_requests: u64,
    list_key_requests: u64,
    total_requests: u64,
}

fn main() {
    let sizes = list_env("KAYLE_BENCH_SIZES", "100,1000,10000");
    let latencies = list_env("KAYLE_BENCH_LATENCIES_MS", "0,20");
    let concurrencies = list_env("KAYLE_BENCH_CONCURRENCY", "8,32");
    let keys: Vec<Keys> = std::env::var("KAYLE_BENCH_KEYS")
        .unwrap_or_else(|_| "none,10pct".into())
        .split(',')
        .map(|k| match k.trim() {
            "none" => Keys::None,
            "10pct" => Keys::TenPercent,
            other => panic!("KAYLE_BENCH_KEYS: unknown variant {other} (none, 10pct)"),
        })
        .collect();
    // Another build (an older commit's, say) can be measured against this one.
    let binary = std::env::var_os("KAYLE_BENCH_BINARY").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_kayle-sync")),
        PathBuf::from,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    println!("kayle-sync benchmark: {}", binary.display());
    println!("sizes {sizes:?}, latencies {latencies:?} ms, apply concurrency {concurrencies:?}\n");
    println!("| case | requests per route | wall | floor | ratio | CPU | peak RSS |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let mut checks = Vec::new();
    for &latency in &latencies {
        for &n in &sizes {
            for &variant in &keys {
                let dir = tempfile::tempdir().expect("temp dir");
                write_config(dir.path(), n, variant);
                for &concurrency in &concurrencies {
                    let (emulator, server) = runtime.block_on(async {
                        let emulator = Emulator::new(Config::test(TOKEN)).expect("emulator");
                        emulator.set_latency(Duration::from_millis(latency));
                        let server = emulator.serve("127.0.0.1:0").await.expect("serve");
                        (emulator, server)
                    });
                    let _ = std::fs::remove_file(dir.path().join("secrets.env"));
                    let bench = Bench {
                        binary: &binary,
                        dir: dir.path(),
                        url: server.url(),
                        emulator: &emulator,
                    };
                    let keyed = variant.count(n);
                    let tag = format!("N={n} {} {latency}ms", variant.label());

                    // Creates: each endpoint is created disabled, then one update once its
                    // secret is written marks it settled (and enables the keyed ones, which
                    // also register their key).
                    let writes = 2 * n + keyed;
                    let apply_floor = ms(latency * (1 + writes.div_ceil(concurrency)));
                    let apply = bench.run(
                        &format!("apply {tag} c={concurrency}"),
                        &[
                            "apply",
                            "--auto-approve",
                            "--concurrency",
                            &concurrency.to_string(),
                        ],
                        apply_floor,
                    );
                    print_row(&apply);
                    if latency > 0 {
                        checks.push(check(
                            &format!(
                                "apply {tag} c={concurrency} within {APPLY_TARGET_RATIO}x of floor"
                            ),
                            ratio(&apply).is_some_and(|r| r <= APPLY_TARGET_RATIO),
                            format!("{:.2}x", ratio(&apply).unwrap_or(f64::NAN)),
                        ));
                    }
                    if n >= 10_000 {
                        checks.push(check(
                            &format!("apply {tag} c={concurrency} peak memory < 40 MB"),
                            apply.peak_kb < MEMORY_TARGET_KB,
                            format!("{:.1} MB", apply.peak_kb as f64 / 1024.0),
                        ));
                    }

                    let pages = n.div_ceil(PAGE).max(1);
                    let plan_floor = ms(latency * (pages + keyed.div_ceil(READ_CONCURRENCY)));
                    let plan = bench.run(
                        &format!("plan {tag} (converged)"),
                        &["plan", "--detailed-exitcode"],
                        plan_floor,
                    );
                    print_row(&plan);
                    checks.push(check(
                        &format!("plan {tag}: exactly {pages} list + {keyed} key-list requests"),
                        plan.list_requests == pages
                            && plan.list_key_requests == keyed
                            && plan.total_requests == pages + keyed,
                        format!(
                            "{} list, {} key-list, {} total",
                            plan.list_requests, plan.list_key_requests, plan.total_requests
                        ),
                    ));
                    if n >= 10_000 {
                        checks.push(check(
                            &format!("plan {tag} peak memory < 40 MB"),
                            plan.peak_kb < MEMORY_TARGET_KB,
                            format!("{:.1} MB", plan.peak_kb as f64 / 1024.0),
                        ));
                    }
                    if n >= PLAN_TARGET_SIZE && latency > 0 && variant == Keys::None {
                        checks.push(check(
                            &format!("plan {tag} within {PLAN_TARGET_RATIO}x of floor"),
                            ratio(&plan).is_some_and(|r| r <= PLAN_TARGET_RATIO),
                            format!("{:.2}x", ratio(&plan).unwrap_or(f64::NAN)),
                        ));
                    }
                    runtime.block_on(server.shutdown());
                }
            }
        }
    }
    let edits = list_env("KAYLE_BENCH_WATCH_EDITS", "20")[0];
    if edits > 0 {
        println!("\nwatch: {edits} edits, each saved once the previous one was applied\n");
        println!("| case | median save-to-applied | worst | requests' floor | peak RSS |");
        println!("|---|---:|---:|---:|---:|");
        for &latency in &latencies {
            let dir = tempfile::tempdir().expect("temp dir");
            write_config(dir.path(), watch::ENDPOINTS, Keys::None);
            let (_emulator, server) = runtime.block_on(async {
                let emulator = Emulator::new(Config::test(TOKEN)).expect("emulator");
                emulator.set_latency(Duration::from_millis(latency));
                let server = emulator.serve("127.0.0.1:0").await.expect("serve");
                (emulator, server)
            });
            let run = watch::measure(&binary, dir.path(), &server.url(), TOKEN, edits as usize);
            // Its requests: one listing page and one update (the debounce comes on top).
            let floor = ms(2 * latency);
            println!(
                "| watch N={} {latency}ms | {:.3} s | {:.3} s | {:.3} s | {:.1} MB |",
                watch::ENDPOINTS,
                run.median().as_secs_f64(),
                run.worst().as_secs_f64(),
                floor.as_secs_f64(),
                run.peak_kb as f64 / 1024.0
            );
            runtime.block_on(server.shutdown());
        }
    }
    println!("\nTargets:");
    for line in &checks {
        println!("{line}");
    }
}

struct Bench<'a> {
    binary: &'a Path,
    dir: &'a Path,
    url: String,
    emulator: &'a Emulator,
}

impl Bench<'_> {
    /// Runs kayle-sync once with `args` and measures it; panics if it fails.
    // The child is reaped by `waitpid` while its memory is polled, not by `Child::wait`.
    #[allow(clippy::zombie_processes)]
    fn run(&self, case: &str, args: &[&str], floor: Duration) -> Run {
        self.emulator.reset_stats();
        let log = |name: &str| std::fs::File::create(self.dir.join(name)).expect("log file");
        let started = Instant::now();
        let child = Command::new(self.binary)
            .args(args)
            .arg(self.dir)
            .env("KAYLE_API_URL", &self.url)
            .env("KAYLE_API_KEY", TOKEN)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log("stdout.log"))
            .stderr(log("stderr.log"))
            .spawn()
            .expect("kayle-sync runs");
        let (code, peak_kb, cpu) = wait_with_peak(child.id());
        let wall = started.elapsed();
        if code != 0 {
            let stderr = std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default();
            let tail: String = stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n");
            panic!("{case}: kayle-sync exited {code}; last stderr lines (reversed):\n{tail}");
        }
        let stats = self.emulator.stats();
        let count = |route: Route| stats.requests.get(&route).copied().unwrap_or(0);
        let mut requests = String::new();
        for (route, n) in &stats.requests {
            let name = serde_json::to_value(route).expect("route name");
            let _ = write!(requests, "{} {n}, ", name.as_str().unwrap_or("?"));
        }
        let _ = write!(requests, "peak in flight {}", stats.peak_in_flight);
        Run {
            case: case.to_owned(),
            requests,
            wall,
            floor,
            cpu,
            peak_kb,
            list_requests: count(Route::ListEndpoints),
            list_key_requests: count(Route::ListKeys),
            total_requests: stats.total,
        }
    }
}

/// Waits for `pid` and returns its exit code (or 128 + signal), its peak RSS in KiB and the
/// CPU time it used (user + system, from `wait4`).
///
/// The peak is `VmHWM` from `/proc/<pid>/status`, polled every 2 ms while the child runs:
/// `wait4`'s `ru_maxrss` is no good here, because Linux carries the parent's high-water mark
/// into a child across `execve` (and std spawns with `CLONE_VM`), so every child would report
/// at least this benchmark's own size.
fn wait_with_peak(pid: u32) -> (i32, u64, Duration) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits");
    let status_path = format!("/proc/{pid}/status");
    let mut peak_kb = 0;
    loop {
        if let Some(kb) = std::fs::read_to_string(&status_path)
            .ok()
            .and_then(|status| vm_hwm_kb(&status))
        {
            peak_kb = peak_kb.max(kb);
        }
        let mut status = 0;
        // SAFETY: rusage is plain data, and zero is a valid value for every field.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 writes only into the two out-pointers, which live for the call.
        let waited = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(waited >= 0, "wait4: {}", std::io::Error::last_os_error());
        if waited == pid {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
            let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            let cpu = Duration::from_secs_f64(seconds(usage.ru_utime) + seconds(usage.ru_stime));
            return (code, peak_kb, cpu);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The `VmHWM:` line of a `/proc/<pid>/status`, in KiB.
fn vm_hwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A config directory of `n` endpoints, 100 per manifest file, one dotenv sink; those that
/// declare no key are disabled.
fn write_config(dir: &Path, n: u64, keys: Keys) {
    std::fs::write(
        dir.join("kayle-sync.yaml"),
        "api:\n  url: https://api.kayle.invalid\nsinks:\n  local:\n    type: dotenv\n    \
         path: secrets.env\ndefaults:\n  signing_secret:\n    sink: local\n",
    )
    .expect("project file");
    std::fs::create_dir_all(dir.join("keys")).expect("keys dir");
    std::fs::write(dir.join("keys/bench.pub.pem"), PUBLIC_KEY).expect("key file");
    std::fs::create_dir_all(dir.join("endpoints")).expect("manifest dir");
    for file in 0..n.div_ceil(PAGE) {
        let mut text = String::from("endpoints:\n");
        for i in file * PAGE..((file + 1) * PAGE).min(n) {
            let _ = write!(
                text,
                "  ep-{i:05}:\n    url: https://hooks.example.com/bench/{i}\n    \
                 name: Bench endpoint {i}\n    labels: [bench]\n"
            );
            if keys.declares(i) {
                text.push_str(
                    "    encryption_keys:\n      - key_id: bench-1\n        \
                     public_key_file: keys/bench.pub.pem\n",
                );
            } else {
                text.push_str("    enabled: false\n");
            }
        }
        std::fs::write(dir.join(format!("endpoints/part-{file:03}.yaml")), text).expect("manifest");
    }
}

fn list_env(name: &str, default: &str) -> Vec<u64> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}: {v} is not a number"))
        })
        .collect()
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn ratio(run: &Run) -> Option<f64> {
    (!run.floor.is_zero()).then(|| run.wall.as_secs_f64() / run.floor.as_secs_f64())
}

fn print_row(run: &Run) {
    let ratio = ratio(run).map_or("-".to_owned(), |r| format!("{r:.2}x"));
    println!(
        "| {} | {} | {:.2} s | {:.2} s | {} | {:.2} s | {:.1} MB |",
        run.case,
        run.requests,
        run.wall.as_secs_f64(),
        run.floor.as_secs_f64(),
        ratio,
        run.cpu.as_secs_f64(),
        run.peak_kb as f64 / 1024.0
    );
}

fn check(what: &str, ok: bool, figure: String) -> String {
    format!("- [{}] {what}: {figure}", if ok { "met" } else { "MISSED" })
}
