//! What the `dotenv` sink writes, read back by the loaders people use on it: `sh`
//! (`set -a; . FILE`), python-dotenv and Node's `dotenv`. Each must read every value byte for
//! byte, and sourcing or loading the file must run nothing written in a value.
//!
//! A loader that is not installed makes its test *ignored*, with the reason, never passed.
//! python-dotenv is installed by `scripts/test-services`; with `KAYLE_REQUIRE_SERVICES=1` (as
//! `.ci/run` sets) its absence fails the test. Node's `dotenv` is installed by npm into a
//! temporary directory when `node` is present; with `KAYLE_REQUIRE_SERVICES=1` a failed install
//! fails the test.
//!
//! This file has its own harness (libtest-mimic), because the standard one cannot decide at
//! run time that a test is ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use kayle_sync::model::SinkConfig;
use kayle_sync::sink;
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use secrecy::SecretString;

/// How long a loader, or an npm install, may take.
const DEADLINE: Duration = Duration::from_secs(180);

fn main() {
    let args = Arguments::from_args();
    let trials = vec![
        Trial::test("sh_reads_every_value_exactly_and_runs_nothing", sh),
        Trial::ignorable_test("python_dotenv_reads_every_value_exactly", python_dotenv),
        Trial::ignorable_test("node_dotenv_16_reads_every_value_exactly", || {
            node_dotenv("16")
        }),
        Trial::ignorable_test("node_dotenv_18_reads_every_value_exactly", || {
            node_dotenv("18")
        }),
    ];
    libtest_mimic::run(&args, trials).exit();
}

/// A dotenv file written through the sink, and the values it must hold.
struct Written {
    dir: tempfile::TempDir,
    file: PathBuf,
    /// Files that exist only if something in a value was run.
    markers: [PathBuf; 2],
    /// (name, value), in the order written.
    values: Vec<(String, String)>,
}

const PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC7VJTUt9Us8cKj
MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu
NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ
-----END PRIVATE KEY-----
";

impl Written {
    fn new() -> Written {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kayle.env");
        let markers = [
            dir.path().join("ran-dollar"),
            dir.path().join("ran-backtick"),
        ];
        let values: Vec<String> = vec![
            "whsec_c2VjcmV0LXZhbHVlLWZvci10ZXN0cw==".into(),
            PEM.into(),
            // With a line break: earlier versions put these in double quotes, where sh runs them.
            format!("$(touch {})\nsecond line", markers[0].display()),
            format!("`touch {}`\n", markers[1].display()),
            "$HOME".into(),
            "$HOME/bin:$PATH $1 $".into(),
            "back\\slash, \\n and \\t".into(),
            "C:\\Users\\kayle\\secrets".into(),
            "say \"hi\"".into(),
            "#not a comment".into(),
            "hash # inside".into(),
            "  leading and trailing spaces  ".into(),
            "a=b=c".into(),
            "=leading equals".into(),
            "it's".into(),
            "it's\non two lines".into(),
            "tab\tand ünïcødé 🔑".into(),
            "; echo injected && exit 1 | cat > /dev/null".into(),
            "* ? [a] ~ ! & < >".into(),
            "line\u{2028}and paragraph\u{2029}separators".into(),
            "\n\nblank lines around\n\n".into(),
            "NEXT=not a variable\nV0=not either".into(),
            String::new(),
        ];
        let values: Vec<(String, String)> = values
            .into_iter()
            .enumerate()
            .map(|(i, value)| (format!("V{i}"), value))
            .collect();
        let config = SinkConfig::Dotenv { path: file.clone() };
        let sink = sink::build("local", &config, Path::new("/")).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        for (name, value) in &values {
            runtime
                .block_on(sink.put(name, &SecretString::from(value.clone())))
                .unwrap();
        }
        let written = Written {
            dir,
            file,
            markers,
            values,
        };
        written.nothing_ran().unwrap();
        written
    }

    fn nothing_ran(&self) -> Result<(), Failed> {
        match self.markers.iter().find(|m| m.exists()) {
            Some(marker) => Err(format!("a value was run: {} exists", marker.display()).into()),
            None => Ok(()),
        }
    }

    /// Compares what a loader read (`None`: the name was not set) with what was written.
    fn compare(&self, loader: &str, read: &BTreeMap<String, Option<String>>) -> Result<(), Failed> {
        let wrong: Vec<String> = self
            .values
            .iter()
            .filter(|(name, value)| read.get(name).cloned().flatten().as_ref() != Some(value))
            .map(|(name, value)| {
                let got = read.get(name).cloned().flatten();
                format!("{name}: wrote {value:?}, {loader} read {got:?}")
            })
            .collect();
        if wrong.is_empty() {
            Ok(())
        } else {
            let text = std::fs::read_to_string(&self.file).unwrap_or_default();
            Err(format!("{}\n--- the file:\n{text}", wrong.join("\n")).into())
        }
    }
}

fn sh() -> Result<(), Failed> {
    let written = Written::new();
    let mut read = BTreeMap::new();
    for (name, _) in &written.values {
        // `?` makes an unset variable an error rather than an empty value.
        let script = format!("set -a; . \"$1\"; printf %s \"${{{name}?}}\"");
        let output = run(Command::new("sh")
            .args(["-c", &script, "sh"])
            .arg(&written.file)
            .current_dir(written.dir.path()))?;
        let value = output
            .status
            .success()
            .then(|| String::from_utf8(output.stdout).unwrap());
        read.insert(name.clone(), value);
    }
    written.nothing_ran()?;
    written.compare("sh", &read)
}

fn python_dotenv() -> Result<Completion, Failed> {
    let probe = Command::new("python3")
        .args(["-c", "import dotenv"])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|status| status.success()) {
        return missing(
            "python3 with python-dotenv is not installed (scripts/test-services installs it)",
        );
    }
    let written = Written::new();
    let script = "import json, sys\nfrom dotenv import dotenv_values\nsys.stdout.write(json.dumps(dotenv_values(sys.argv[1])))";
    let output = run(Command::new("python3")
        .args(["-c", script])
        .arg(&written.file))?;
    let read = json_map("python-dotenv", &output)?;
    written.nothing_ran()?;
    written.compare("python-dotenv", &read)?;
    Ok(Completion::Completed)
}

fn node_dotenv(major: &str) -> Result<Completion, Failed> {
    if Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        return Ok(Completion::ignored_with("node is not installed"));
    }
    let modules = tempfile::tempdir().unwrap();
    let install = run(Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--no-package-lock"])
        .args(["--loglevel=error", "--prefix"])
        .arg(modules.path())
        .arg(format!("dotenv@{major}")));
    match install {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let why = stderr.lines().next().unwrap_or("no message").to_owned();
            return missing(&format!("npm could not install dotenv@{major}: {why}"));
        }
        Err(failed) => return missing(&format!("npm could not run: {failed:?}")),
    }
    let written = Written::new();
    let script = "const dotenv = require(process.argv[1]);
        const text = require('fs').readFileSync(process.argv[2]);
        process.stdout.write(JSON.stringify(dotenv.parse(text)));";
    let output = run(Command::new("node")
        .args(["-e", script])
        .arg(modules.path().join("node_modules/dotenv"))
        .arg(&written.file))?;
    let read = json_map("node dotenv", &output)?;
    written.nothing_ran()?;
    written.compare(&format!("node dotenv@{major}"), &read)?;
    Ok(Completion::Completed)
}

/// A loader that is not there: a failure where every loader is required, else ignored.
fn missing(why: &str) -> Result<Completion, Failed> {
    if std::env::var("KAYLE_REQUIRE_SERVICES").as_deref() == Ok("1") {
        Err(format!("{why}, but KAYLE_REQUIRE_SERVICES=1").into())
    } else {
        Ok(Completion::ignored_with(why))
    }
}

/// The JSON object a loader printed, as name to value (`None` for a name without a value).
fn json_map(loader: &str, output: &Output) -> Result<BTreeMap<String, Option<String>>, Failed> {
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("{loader} failed: {stderr}").into());
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("{loader} printed no JSON object: {e}").into())
}

/// Runs `command` to the end, killing it after [`DEADLINE`].
fn run(command: &mut Command) -> Result<Output, Failed> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {command:?}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    match outcome.recv_timeout(DEADLINE) {
        Ok(output) => Ok(output?),
        Err(_) => {
            // SAFETY: kill(2) on the child we started, which has not been waited for yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            Err(format!("{command:?} took longer than {DEADLINE:?}").into())
        }
    }
}
