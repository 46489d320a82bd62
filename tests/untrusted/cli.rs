//! The binary run on files a pull request wrote: what `plan` may and may not be made to do
//! with the credentials in its environment.

use std::process::Command;
use std::time::{Duration, Instant};

use super::support::{self, Api, Project, Run};

/// A directory whose endpoint `orders` was applied with the local sink; then a pull request
/// adds the sink `extra_sink` (YAML under `sinks:`) and sends the endpoint's secret there.
pub fn pull_request(api: &Api, sink_name: &str, extra_sink: &str) -> Project {
    let project = Project::new();
    project.manifest(
        "endpoints:\n  orders:\n    url: https://hooks.example.com/orders\n    enabled: false\n",
    );
    project.apply(api, &[]);
    project.write(
        "kayle-sync.yaml",
        &support::PROJECT_FILE.replace("defaults:", &format!("{extra_sink}defaults:")),
    );
    project.manifest(&format!(
        "endpoints:\n  orders:\n    url: https://hooks.example.com/orders\n    enabled: false\n    \
         signing_secret:\n      sink: {sink_name}\n"
    ));
    project
}

/// Runs `command` to the end, or fails the test when it is still running after `limit`.
pub fn run_within(command: Command, limit: Duration) -> Run {
    let mut child = support::spawn(command);
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let run = support::wait(child);
            panic!("still running after {limit:?}\n{}", run.all());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    support::wait(child)
}

#[test]
fn plan_never_runs_a_command_sink() {
    let api = Api::start();
    let marks = tempfile::tempdir().unwrap();
    let ran = marks.path().join("ran");
    let sink = format!(
        "  ci:\n    type: command\n    command: [\"sh\", \"-c\", \"touch {}; cat > /dev/null\"]\n",
        ran.display()
    );
    let project = pull_request(&api, "ci", &sink);
    // Every way a secret could be written: a rotation, a create, a recovery.
    project.manifest(
        "endpoints:\n  orders:\n    url: https://hooks.example.com/orders\n    enabled: false\n    \
         signing_secret:\n      sink: ci\n      rotation: 1\n  \
         billing:\n    url: https://hooks.example.com/billing\n    enabled: false\n    \
         signing_secret:\n      sink: ci\n",
    );
    for args in [
        &["plan"][..],
        &["plan", "--format", "json"],
        &["plan", "--out", "plan.json"],
    ] {
        let run = project.run(&api, args);
        run.expect(0);
        assert!(
            !ran.exists(),
            "{args:?} ran the command sink\n{}",
            run.all()
        );
    }
    let run = project.run(&api, &["plan"]);
    assert!(run.stdout.contains("+ create billing"), "{}", run.stdout);
    // The check has teeth: apply does run it.
    project.apply(&api, &[]);
    assert!(ran.exists(), "apply ran the command sink");
}
