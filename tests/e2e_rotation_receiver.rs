//! End to end: a rotation loses no delivery. After the new secret is written, the sink's
//! `reload` runs, kayle-sync waits (at most `--settle`) until the receiver accepts the new
//! secret and retries at once what failed meanwhile; a receiver out of reach is reported and
//! not waited for; one that keeps refusing, or a reload that fails, fails the endpoint's step.

use crate::receiver_support;
use crate::support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kayle_emulator::TEST_ORGANIZATION_ID;
use receiver_support::{Mode, Receiver, Source};
use serde_json::Value;
use support::{Api, Project, Run};

const SECRET_NAME: &str = "KAYLE_WEBHOOK_SECRET_WEB";
const KEY_NAME: &str = "KAYLE_WEBHOOK_PRIVATE_KEY_WEB";

/// The emulator's retry schedule runs this many times faster: the 5-second step takes
/// 1.7 s, the 5-minute step 100 s, and an attempt waits 5 s for an answer (a receiver
/// decrypting in a debug build on a busy machine is slow).
const TIME_SCALE: u32 = 3;
const FIVE_MINUTE_STEP: Duration = Duration::from_secs(300 / TIME_SCALE as u64);

/// How long after the reload command the receiver loads the new secret.
/// Longer than the 5-second step: some deliveries are refused twice, then wait for the
/// 5-minute step unless retried.
const RELOAD_DELAY: Duration = Duration::from_millis(3_500);

/// The project file, with `reload` (YAML flow text) on the dotenv sink.
fn project_file(reload: &str) -> String {
    format!(
        "api:\n  url: http://127.0.0.1:9\nsinks:\n  local:\n    type: dotenv\n    path: \
         secrets/kayle.env\n    reload: {reload}\ndefaults:\n  signing_secret:\n    sink: local\n"
    )
}

fn manifest(url: &str, rotation: u64) -> String {
    format!(
        "endpoints:\n  web:\n    url: {url}\n    encryption_keys:\n      - key_id: gen-1\n        \
         generate: true\n    signing_secret:\n      rotation: {rotation}\n"
    )
}

/// A project whose sink's reload touches `reload-requested` in it, and a receiver reading
/// that sink which loads the secret again [`RELOAD_DELAY`] after each touch.
fn reloading(api: &Api, mode: Mode) -> (Project, Receiver) {
    let project = Project::new();
    let trigger = project.path("reload-requested");
    let reload = format!(
        "{{ command: [touch, \"{}\"], timeout_seconds: 5 }}",
        trigger.display()
    );
    project.write("kayle-sync.yaml", &project_file(&reload));
    let receiver = receiver(&project, mode);
    receiver.reload_when_touched(trigger, RELOAD_DELAY);
    project.manifest(&manifest(&receiver.url, 0));
    project.apply(api, &[]);
    (project, receiver)
}

fn receiver(project: &Project, mode: Mode) -> Receiver {
    Receiver::start(mode, Source::defaults(project.sink_path(), "WEB", "gen-1"))
}

/// Fails if any secret the API or the sink ever held appears in `runs`' output.
#[track_caller]
fn assert_no_secret(api: &Api, project: &Project, secrets: &mut Vec<String>, runs: &[&Run]) {
    secrets.extend(api.all_secrets());
    secrets.extend(project.sink(SECRET_NAME));
    if let Some(pem) = project.sink(KEY_NAME) {
        secrets.extend(pem.lines().filter(|l| l.len() > 20).map(str::to_owned));
    }
    for run in runs {
        let all = run.all();
        for secret in secrets.iter() {
            assert!(!all.contains(secret.as_str()), "a secret in:\n{all}");
        }
    }
}

/// How many lines the file at `path` has (0 when there is none): a reload's runs, one each.
fn lines_in(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .count()
}

/// The number in "… N deliveries retried" / "N delivery retried".
fn retried(text: &str) -> usize {
    let at = text
        .find(" retried")
        .unwrap_or_else(|| panic!("no count in {text}"));
    let words: Vec<&str> = text[..at].split_whitespace().collect();
    words[words.len() - 2].parse().unwrap()
}

fn parse_time(text: &Value) -> jiff::Timestamp {
    text.as_str().unwrap().parse().unwrap()
}

#[test]
fn events_firing_through_a_rotation_are_all_delivered_and_none_waits_five_minutes() {
    let api = Api::start();
    api.emu.set_delivery_time_scale(TIME_SCALE);
    let (project, receiver) = reloading(&api, Mode::Correct);
    let mut secrets = Vec::new();
    project.manifest(&manifest(&receiver.url, 1));

    let stop = AtomicBool::new(false);
    let (run, fired) = std::thread::scope(|scope| {
        let firing = scope.spawn(|| {
            let mut fired = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let event = api
                    .emu
                    .fire_event(TEST_ORGANIZATION_ID, "verification.session.failed", None)
                    .unwrap();
                fired.push(event);
                std::thread::sleep(Duration::from_millis(150));
            }
            fired
        });
        // Deliveries are under way before the rotation and go on during it.
        std::thread::sleep(Duration::from_millis(300));
        let run = project.run(
            &api,
            &[
                "apply",
                "--auto-approve",
                "--settle",
                "60s",
                "--format",
                "json",
            ],
        );
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::SeqCst);
        (run, firing.join().unwrap())
    });
    run.expect(0);
    assert!(
        run.stderr
            .contains("sink local's reload command ran; receiver took the new secret after"),
        "{}",
        run.stderr
    );
    let retried_here = retried(&run.stderr);
    assert!(retried_here >= 1, "{}", run.stderr);
    let document: Value = serde_json::from_str(&run.stdout).unwrap();
    let after = &document["applied"]["endpoints"][0]["after_rotation"];
    assert_eq!(after["reloaded"], true, "{after}");
    assert_eq!(after["receiver"], "accepted", "{after}");
    assert_eq!(after["retried"], retried_here, "{after}");
    assert!(after["after_seconds"].as_f64().unwrap() > 0.0, "{after}");

    // Every delivery succeeds, well before the 5-minute step would have sent it again.
    let ids: Vec<&str> = fired
        .iter()
        .flat_map(|e| e.delivery_ids.iter().map(String::as_str))
        .collect();
    assert!(ids.len() > 10, "{} deliveries", ids.len());
    let started = Instant::now();
    let deliveries = loop {
        let all = api.emu.deliveries();
        let ours: Vec<Value> = all
            .into_iter()
            .filter(|d| ids.contains(&d["id"].as_str().unwrap()))
            .collect();
        if ours.iter().all(|d| d["status"] == "succeeded") {
            break ours;
        }
        assert!(
            started.elapsed() < FIVE_MINUTE_STEP - Duration::from_secs(20),
            "not all delivered: {ours:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut refused_twice = 0;
    for delivery in &deliveries {
        let waited = parse_time(&delivery["last_attempt_at"]).as_millisecond()
            - parse_time(&delivery["created_at"]).as_millisecond();
        assert!(
            waited < FIVE_MINUTE_STEP.as_millis() as i64,
            "waited {waited} ms: {delivery:#}"
        );
        assert!(
            delivery["attempt_count"].as_u64().unwrap() <= 2,
            "{delivery:#}"
        );
        let id = delivery["id"].as_str().unwrap();
        let seen: Vec<_> = receiver
            .seen()
            .into_iter()
            .filter(|s| s.delivery_id == id)
            .collect();
        let refused = seen.iter().filter(|s| !s.accepted).count();
        refused_twice += usize::from(refused >= 2);
        assert!(refused <= 2, "{seen:#?}");
        let accepted = seen.iter().find(|s| s.accepted).expect("accepted");
        let event = accepted.event.as_ref().expect("decrypted");
        assert_eq!(event["metadata"]["event_id"], delivery["event_id"]);
    }
    // The schedule's second attempt was refused too for some: those were the retried ones.
    assert!(refused_twice >= 1, "no delivery needed the retry");
    assert_no_secret(&api, &project, &mut secrets, &[&run]);
}

#[test]
fn a_receiver_out_of_reach_is_reported_and_not_waited_for() {
    let api = Api::start();
    let project = Project::new();
    project.write("kayle-sync.yaml", &project_file("{ command: [\"true\"] }"));
    let url = "http://127.0.0.1:9/kayle";
    project.manifest(&manifest(url, 0));
    project.apply(&api, &[]);
    project.manifest(&manifest(url, 1));
    let started = Instant::now();
    // The default --settle is 2 minutes: none of it is spent.
    let run = project.run(&api, &["apply", "--auto-approve"]);
    run.expect(0);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        run.stderr.contains(
            "receiver not reachable from here: the connection was refused or could not be \
             made; not waited for; "
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("failed since the rotation"),
        "{}",
        run.stderr
    );
    assert_no_secret(&api, &project, &mut Vec::new(), &[&run]);
}

#[test]
fn a_receiver_that_keeps_refusing_fails_the_step_after_settle() {
    let api = Api::start();
    let (project, receiver) = reloading(&api, Mode::WrongSecret);
    project.manifest(&manifest(&receiver.url, 1));
    let started = Instant::now();
    let run = project.run(&api, &["apply", "--auto-approve", "--settle", "3s"]);
    run.expect(1);
    assert!(started.elapsed() >= Duration::from_secs(3));
    let all = run.all();
    assert!(
        all.contains(
            "web: the receiver refuses the new signing secret: still refused (HTTP 400) after \
             --settle 3s; check that sink local's reload command"
        ),
        "{all}"
    );
    assert!(all.contains("Apply failed: 1 of 1"), "{all}");
    // The rotation is done and recorded: the next plan does not rotate again.
    project.assert_converged(&api);
    assert_no_secret(&api, &project, &mut Vec::new(), &[&run]);
}

#[test]
fn a_failing_reload_fails_the_step_naming_the_sink_and_the_exit_status() {
    let api = Api::start();
    let project = Project::new();
    let url = "http://127.0.0.1:9/kayle";
    let mut secrets = Vec::new();
    let cases = [
        (
            "{ command: [sh, -c, \"echo the restart failed >&2; exit 3\"] }",
            "web: the reload command of sink local failed: local: `sh` failed (exit status: \
             3): the restart failed",
        ),
        (
            "{ command: [sleep, \"30\"], timeout_seconds: 1 }",
            "web: the reload command of sink local failed: local: `sleep` did not finish \
             within 1 seconds and was killed",
        ),
    ];
    project.write("kayle-sync.yaml", &project_file("{ command: [\"true\"] }"));
    project.manifest(&manifest(url, 0));
    project.apply(&api, &[]);
    for (rotation, (reload, expected)) in (1..).zip(cases) {
        project.write("kayle-sync.yaml", &project_file(reload));
        project.manifest(&manifest(url, rotation));
        let run = project.run(&api, &["apply", "--auto-approve"]);
        run.expect(1);
        assert!(run.all().contains(expected), "{}", run.all());
        // The secret was written before the reload ran, and the endpoint is left recorded
        // unsettled: the next plan says the reload is still to run, not `No changes.`.
        let id = support::id(&api.one("web"));
        assert_eq!(project.sink(SECRET_NAME), Some(api.secret(&id)));
        let plan = project.run(&api, &["plan"]);
        assert!(
            plan.stdout.contains(&format!(
                "signing secret → sink local as {SECRET_NAME}: reveal, compare and write"
            )) && plan.stdout.contains("then sink local's reload command"),
            "{}",
            plan.stdout
        );
        assert_no_secret(&api, &project, &mut secrets, &[&run, &plan]);
    }
    // Once the reload works, the next apply runs it and settles the endpoint, without
    // rotating again; and the receiver, which may have refused deliveries since the rotation,
    // is waited for as after any rotation (here it cannot be reached).
    let id = support::id(&api.one("web"));
    let rotated = api.secret(&id);
    project.write("kayle-sync.yaml", &project_file("{ command: [\"true\"] }"));
    let run = project.run(&api, &["apply", "--auto-approve"]);
    run.expect(0);
    assert!(
        run.stderr.contains("sink local's reload command ran")
            && run.stderr.contains("receiver not reachable from here")
            && run.stderr.contains("failed since the rotation"),
        "{}",
        run.stderr
    );
    assert_eq!(api.secret(&id), rotated, "not rotated again");
    assert_eq!(project.sink(SECRET_NAME), Some(rotated));
    project.assert_converged(&api);
    // A reload whose program is not there is found before anything changes: rotating first
    // would leave the receiver on the old secret.
    project.write(
        "kayle-sync.yaml",
        &project_file("{ command: [/nonexistent/kubectl, rollout, restart] }"),
    );
    project.manifest(&manifest(url, 3));
    let id = support::id(&api.one("web"));
    let before = api.secret(&id);
    let run = project.run(&api, &["apply", "--auto-approve"]);
    run.expect(1);
    assert!(
        run.all().contains(
            "sink local: its reload: the command `/nonexistent/kubectl` is not an executable file"
        ),
        "{}",
        run.all()
    );
    assert_eq!(api.secret(&id), before, "nothing was rotated");
    assert_no_secret(&api, &project, &mut secrets, &[&run]);
}

#[test]
fn plan_and_validate_never_run_the_reload_and_plan_says_it_will() {
    let api = Api::start();
    let (project, receiver) = reloading(&api, Mode::Correct);
    let trigger = project.path("reload-requested");
    // The create ran it; from here on, only an apply may.
    std::fs::remove_file(&trigger).expect("the create ran the reload");
    project.manifest(&manifest(&receiver.url, 1));
    let plan = project.run(&api, &["plan"]);
    plan.expect(0);
    assert!(
        plan.stdout.contains(
            "signing secret → sink local as KAYLE_WEBHOOK_SECRET_WEB: rotate 0 → 1 \
             (sensitive), then sink local's reload command"
        ),
        "{}",
        plan.stdout
    );
    let json = project.run(&api, &["plan", "--format", "json"]);
    let document: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        document["changes"][0]["secret"]["reload"], true,
        "{document}"
    );
    project.run(&api, &["validate"]).expect(0);
    assert!(!trigger.exists(), "plan or validate ran the reload");
    // A cancelled apply does not run it either.
    project.run(&api, &["apply"]).expect(1);
    assert!(!trigger.exists());
    project.run(&api, &["apply", "--auto-approve"]).expect(0);
    assert!(trigger.exists());
}

#[test]
fn kayle_sync_rotate_waits_for_the_receiver_too() {
    let api = Api::start();
    let (project, _receiver) = reloading(&api, Mode::Correct);
    let run = project.run(
        &api,
        &["rotate", "web", "--auto-approve", "--settle", "30s"],
    );
    run.expect(0);
    let all = run.all();
    assert!(
        all.contains("sink local's reload command ran; receiver took the new secret after"),
        "{all}"
    );
    assert!(all.contains("Rotation complete"), "{all}");
    // --settle 0 sends no probe.
    let run = project.run(&api, &["rotate", "web", "--auto-approve", "--settle", "0"]);
    run.expect(0);
    assert!(
        run.all()
            .contains("receiver not probed (--settle 0); 0 deliveries failed since the rotation"),
        "{}",
        run.all()
    );
    assert_no_secret(&api, &project, &mut Vec::new(), &[&run]);
}

#[test]
fn watch_settles_a_rotation_it_applies() {
    use std::io::BufRead;
    let api = Api::start();
    let (project, receiver) = reloading(&api, Mode::Correct);
    let mut command = project.command(
        &api,
        &[
            "watch",
            "--format",
            "json",
            "--settle",
            "30s",
            "--interval",
            "1h",
        ],
    );
    let mut child = command.spawn().unwrap();
    let (sender, lines) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = sender.send(line);
        }
    });
    let mut seen = Vec::new();
    let mut wait_for = |wanted: &dyn Fn(&Value) -> bool| loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no such line in {seen:#?}"));
        let value: Value = serde_json::from_str(&line).unwrap();
        seen.push(line);
        if wanted(&value) {
            return value;
        }
    };
    wait_for(&|line| line["event"] == "reconcile");
    project.manifest(&manifest(&receiver.url, 1));
    let endpoint = wait_for(&|line| line["event"] == "endpoint");
    let message = endpoint["message"].as_str().unwrap_or_default().to_owned();
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        message.contains("sink local's reload command ran; receiver took the new secret after"),
        "{endpoint}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    for secret in api.all_secrets() {
        assert!(!message.contains(&secret) && !stderr.contains(&secret));
    }
}

/// A change that rotates and moves the endpoint to a new URL waits for the receiver at the new
/// URL: the probe follows the field update, not the other way round.
#[test]
fn a_rotation_that_moves_the_endpoint_probes_the_new_url() {
    let api = Api::start();
    let (project, receiver) = reloading(&api, Mode::Correct);
    project.manifest(&manifest("http://127.0.0.1:9/kayle", 0));
    project.apply(&api, &[]);
    project.manifest(&manifest(&receiver.url, 1));
    let run = project.run(&api, &["apply", "--auto-approve", "--settle", "30s"]);
    run.expect(0);
    let all = run.all();
    assert!(all.contains("updated url"), "{all}");
    assert!(all.contains("receiver took the new secret after"), "{all}");
    assert_no_secret(&api, &project, &mut Vec::new(), &[&run]);
}

/// A run killed between writing a secret and running the sink's reload (a crash, an OOM kill,
/// a cancelled CI job) leaves the endpoint recorded unsettled, so the next apply runs the
/// reload: after a create, and after a rotation. The reload here kills kayle-sync itself
/// once, at that very moment.
#[test]
fn a_run_killed_before_its_reload_leaves_the_reload_to_the_next_apply() {
    let api = Api::start();
    let project = Project::new();
    let armed = project.path("armed");
    let reloads = project.path("reloads");
    let reload = format!(
        "{{ command: [sh, -c, \"if [ -e '{armed}' ]; then rm '{armed}'; kill -9 $PPID; exit; \
         fi; echo ran >> '{reloads}'\"] }}",
        armed = armed.display(),
        reloads = reloads.display(),
    );
    let ran = || lines_in(&reloads);
    project.write("kayle-sync.yaml", &project_file(&reload));
    project.manifest(&manifest("http://127.0.0.1:9/kayle", 0));
    let mut secrets = Vec::new();

    // A create: killed after the secret is written, before the reload and the enabling.
    std::fs::write(&armed, "").unwrap();
    let killed = project.run(&api, &["apply", "--auto-approve"]);
    assert_eq!(killed.code, -1, "killed by a signal: {}", killed.stderr);
    assert!(!armed.exists() && ran() == 0);
    let id = support::id(&api.one("web"));
    assert_eq!(
        api.one("web")["enabled"],
        false,
        "not enabled before the reload"
    );
    assert_eq!(project.sink(SECRET_NAME), Some(api.secret(&id)));
    let plan = project.run(&api, &["plan"]);
    assert!(
        plan.stdout.contains("then sink local's reload command"),
        "{}",
        plan.stdout
    );
    let run = project.run(&api, &["apply", "--auto-approve"]);
    run.expect(0);
    assert_eq!(ran(), 1, "{}", run.stderr);
    assert_eq!(api.one("web")["enabled"], true);
    project.assert_converged(&api);
    assert_no_secret(&api, &project, &mut secrets, &[&killed, &plan, &run]);

    // A rotation: killed after the new secret is written, before the reload. The next apply
    // (before a lost request could have landed) does not rotate again, but the receiver gets
    // the secret the sink holds.
    std::fs::write(&armed, "").unwrap();
    project.manifest(&manifest("http://127.0.0.1:9/kayle", 1));
    let killed = project.run(&api, &["apply", "--auto-approve"]);
    assert_eq!(killed.code, -1, "killed by a signal: {}", killed.stderr);
    assert_eq!(ran(), 1);
    let rotated = api.secret(&id);
    assert_eq!(project.sink(SECRET_NAME), Some(rotated.clone()));
    let run = project.run(&api, &["apply", "--auto-approve"]);
    assert_eq!(ran(), 2, "the reload ran: {}", run.stderr);
    assert_eq!(api.secret(&id), rotated);
    assert_eq!(project.sink(SECRET_NAME), Some(rotated));
    assert_no_secret(&api, &project, &mut secrets, &[&killed, &run]);
}

/// A new endpoint's secret is in the sink and the sink reloaded before the endpoint is
/// enabled: the receiver has it before the first delivery.
#[test]
fn a_create_reloads_the_sink_before_enabling_the_endpoint() {
    let api = Api::start();
    let project = Project::new();
    let seen = project.path("seen");
    // The reload records what the sink held when it ran.
    let reload = format!(
        "{{ command: [sh, -c, \"cat '{sink}' > '{seen}'\"] }}",
        sink = project.sink_path().display(),
        seen = seen.display(),
    );
    project.write("kayle-sync.yaml", &project_file(&reload));
    project.manifest(&manifest("http://127.0.0.1:9/kayle", 0));
    let run = project.run(&api, &["apply", "--auto-approve"]);
    run.expect(0);
    assert!(
        run.stderr
            .contains("sink local's reload command ran; enabled"),
        "{}",
        run.stderr
    );
    let id = support::id(&api.one("web"));
    let held = std::fs::read_to_string(&seen).unwrap();
    assert!(
        held.contains(&api.secret(&id)),
        "the reload ran after the write"
    );
    assert!(held.contains(KEY_NAME), "and after the private key's");
    assert_no_secret(&api, &project, &mut Vec::new(), &[&run]);
}

/// A secret recovered to a sink that had lost it runs the sink's reload too (the receiver
/// could not have held it); a reload that fails leaves the endpoint recorded unsettled, so the
/// next plan says the reload is still to run and the next apply runs it.
#[test]
fn a_recovered_secret_reloads_the_sink_and_a_failed_reload_is_run_again() {
    let api = Api::start();
    let project = Project::new();
    let fail = project.path("fail");
    let reloads = project.path("reloads");
    let reload = format!(
        "{{ command: [sh, -c, \"echo ran >> '{reloads}'; test ! -e '{fail}'\"] }}",
        reloads = reloads.display(),
        fail = fail.display(),
    );
    let ran = || lines_in(&reloads);
    project.write("kayle-sync.yaml", &project_file(&reload));
    project.manifest(&manifest("http://127.0.0.1:9/kayle", 0));
    project.apply(&api, &[]);
    assert_eq!(ran(), 1, "the create ran it");
    let id = support::id(&api.one("web"));
    let secret = api.secret(&id);

    // The sink loses the secret; the reload fails this time.
    let text: String = project
        .sink_text()
        .lines()
        .filter(|l| !l.starts_with(&format!("{SECRET_NAME}=")))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(project.sink_path(), text).unwrap();
    std::fs::write(&fail, "").unwrap();
    let failed = project.run(&api, &["apply", "--auto-approve"]);
    failed.expect(1);
    assert_eq!(ran(), 2, "{}", failed.stderr);
    assert!(
        failed
            .stderr
            .contains("the reload command of sink local failed"),
        "{}",
        failed.stderr
    );
    assert_eq!(project.sink(SECRET_NAME), Some(secret.clone()));
    let plan = project.run(&api, &["plan"]);
    assert!(
        plan.stdout.contains("reveal, compare and write")
            && plan.stdout.contains("then sink local's reload command"),
        "{}",
        plan.stdout
    );

    std::fs::remove_file(&fail).unwrap();
    let run = project.run(&api, &["apply", "--auto-approve"]);
    run.expect(0);
    assert_eq!(ran(), 3, "{}", run.stderr);
    assert_eq!(api.secret(&id), secret, "nothing rotated");
    project.assert_converged(&api);
    assert_no_secret(&api, &project, &mut Vec::new(), &[&failed, &plan, &run]);
}

/// A create whose answer was lost, found by its label, then a reload that fails: the endpoint
/// stays recorded unsettled at the manifest's rotation, so the next apply runs the reload and
/// does not rotate (a record at another rotation would make it rotate).
#[test]
fn a_found_create_whose_reload_fails_is_not_rotated_by_the_next_apply() {
    let api = Api::start();
    let project = Project::new();
    let fail = project.path("fail");
    let reload = format!(
        "{{ command: [sh, -c, \"test ! -e '{fail}'\"] }}",
        fail = fail.display()
    );
    project.write("kayle-sync.yaml", &project_file(&reload));
    project.manifest(&manifest("http://127.0.0.1:9/kayle", 2));
    std::fs::write(&fail, "").unwrap();
    api.emu.inject(
        kayle_emulator::Route::CreateEndpoint,
        kayle_emulator::Fault::DropAfterCommit,
        1,
    );
    let failed = project.run(&api, &["apply", "--auto-approve"]);
    failed.expect(1);
    assert!(
        failed.stderr.contains("after a lost answer")
            && failed
                .stderr
                .contains("the reload command of sink local failed"),
        "{}",
        failed.stderr
    );
    let id = support::id(&api.one("web"));
    let secret = api.secret(&id);
    let plan = project.run(&api, &["plan"]);
    assert!(!plan.stdout.contains("rotate"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains("then sink local's reload command"),
        "{}",
        plan.stdout
    );

    std::fs::remove_file(&fail).unwrap();
    project.run(&api, &["apply", "--auto-approve"]).expect(0);
    assert_eq!(api.secret(&id), secret, "not rotated");
    assert_eq!(project.sink(SECRET_NAME), Some(secret));
    project.assert_converged(&api);
    assert_no_secret(&api, &project, &mut Vec::new(), &[&failed, &plan]);
}

/// One delivery's view in the emulator.
fn delivery(api: &Api, id: &str) -> Value {
    api.emu
        .deliveries()
        .into_iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("no delivery {id}"))
}

/// Polls delivery `id` (at most a minute) until `done` says yes; returns its view then.
#[track_caller]
fn wait_for_delivery(api: &Api, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let view = delivery(api, id);
        if done(&view) {
            return view;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: {view:#}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_delivery_made_before_a_rotation_that_fails_for_good_after_it_is_retried() {
    let api = Api::start();
    // Kayle's 33-hour schedule in about 20 s: the seventh attempt some 5.5 s after the event,
    // the eighth and last 7.2 s after that.
    api.emu.set_delivery_time_scale(5000);
    let (project, receiver) = reloading(&api, Mode::WrongSecret);
    let old_secret = project.sink(SECRET_NAME).unwrap();
    let event = api
        .emu
        .fire_event(TEST_ORGANIZATION_ID, "verification.session.failed", None)
        .unwrap();
    let id = event.delivery_ids[0].clone();
    let before = wait_for_delivery(&api, &id, "seven attempts", |d| {
        d["attempt_count"].as_u64() >= Some(7)
    });
    assert_eq!(before["status"], "pending", "{before:#}");

    project.manifest(&manifest(&receiver.url, 1));
    let run = std::thread::scope(|scope| {
        let apply =
            scope.spawn(|| project.run(&api, &["apply", "--auto-approve", "--settle", "120s"]));
        // The rotation is done before the last attempt: that one is signed with the new
        // secret, which the receiver does not take yet, and ends the delivery `failed`.
        let started = Instant::now();
        while project.sink(SECRET_NAME).as_deref() == Some(old_secret.as_str()) {
            assert!(started.elapsed() < Duration::from_secs(30), "no rotation");
            std::thread::sleep(Duration::from_millis(10));
        }
        let rotated = delivery(&api, &id);
        assert_eq!(rotated["attempt_count"], 7, "too late to test: {rotated:#}");
        let failed = wait_for_delivery(&api, &id, "the last attempt", |d| d["status"] == "failed");
        assert_eq!(failed["attempt_count"], 8, "{failed:#}");
        // Now the receiver takes the new secret: apply's probes are accepted.
        receiver.set_mode(Mode::Correct);
        receiver.reload();
        apply.join().unwrap()
    });
    run.expect(0);
    assert_eq!(retried(&run.stderr), 1, "{}", run.stderr);
    // Requeued at once, not left failed until someone retries it by hand.
    wait_for_delivery(&api, &id, "delivered", |d| d["status"] == "succeeded");
    assert!(
        receiver
            .accepted()
            .iter()
            .any(|seen| seen.delivery_id == id),
        "{:#?}",
        receiver.seen()
    );
    assert_no_secret(&api, &project, &mut vec![old_secret], &[&run]);
}

/// When the endpoint's record says a lost request may land (unix seconds), from its labels.
fn recorded_until(api: &Api) -> u64 {
    let endpoint = api.one("web");
    let labels = endpoint["labels"].as_array().unwrap();
    labels
        .iter()
        .filter_map(|label| label.as_str()?.split_once("verify=")?.1.split_once('@'))
        .map(|(_, until)| until.parse().unwrap())
        .next()
        .unwrap_or_else(|| panic!("not unsettled: {endpoint:#}"))
}

/// A run killed after its rotation wrote the new secret, before the sink's reload: the
/// receiver, still on the old secret, refuses what Kayle signs meanwhile. The next apply runs
/// the reload, waits for the receiver to take the secret and retries those deliveries, instead
/// of leaving them to the 5-minute step of Kayle's schedule: whether it rotates again (the
/// killed rotation's request can no longer land) or may not yet (it still could).
#[test]
fn deliveries_refused_after_a_killed_rotation_are_retried_by_the_next_apply() {
    let api = Api::start();
    let project = Project::new();
    let armed = project.path("armed");
    let trigger = project.path("reload-requested");
    let reload = format!(
        "{{ command: [sh, -c, \"if [ -e '{armed}' ]; then rm '{armed}'; kill -9 $PPID; exit; \
         fi; touch '{trigger}'\"] }}",
        armed = armed.display(),
        trigger = trigger.display(),
    );
    project.write("kayle-sync.yaml", &project_file(&reload));
    let receiver = receiver(&project, Mode::Correct);
    project.manifest(&manifest(&receiver.url, 0));
    project.apply(&api, &[]);
    let mut secrets = Vec::new();
    let fire = || {
        let event = api
            .emu
            .fire_event(TEST_ORGANIZATION_ID, "verification.session.failed", None)
            .unwrap();
        event.delivery_ids[0].clone()
    };
    // The receiver takes the first secret.
    let first = fire();
    wait_for_delivery(&api, &first, "delivered", |d| d["status"] == "succeeded");
    // From now on it loads the sink again a moment after each reload.
    receiver.reload_when_touched(trigger, Duration::from_millis(200));

    // A rotation killed before its reload, with the test's late window of a few seconds.
    let kill_rotation = |rotation: u64, env: &[(&str, &str)]| {
        std::fs::write(&armed, "").unwrap();
        project.manifest(&manifest(&receiver.url, rotation));
        let killed = project.run_with(&api, &["apply", "--auto-approve"], env);
        assert_eq!(killed.code, -1, "killed by a signal: {}", killed.stderr);
        // Refused at once and at the 5-second step: the next attempt is 5 minutes away.
        let refused = fire();
        let waiting = wait_for_delivery(&api, &refused, "refused twice", |d| {
            d["attempt_count"].as_u64() >= Some(2)
        });
        assert_eq!(waiting["status"], "pending", "{waiting:#}");
        (killed, refused)
    };
    let settle = ["apply", "--auto-approve", "--settle", "60s"];

    // Once the killed rotation's request can no longer land, the next apply rotates again.
    // The next apply's run reports the reload, the receiver and the one delivery retried, which
    // Kayle then delivers; `says` is what else it must say.
    let mut check = |killed: &Run, run: &Run, refused: &str, says: &[&str]| {
        for text in [
            "sink local's reload command ran",
            "receiver took the new secret after",
        ]
        .iter()
        .chain(says)
        {
            assert!(run.stderr.contains(text), "{text}: {}", run.stderr);
        }
        assert_eq!(retried(&run.stderr), 1, "{}", run.stderr);
        wait_for_delivery(&api, refused, "retried", |d| d["status"] == "succeeded");
        secrets.extend(project.sink(SECRET_NAME));
        assert_no_secret(&api, &project, &mut secrets, &[killed, run]);
    };

    let (killed, refused) = kill_rotation(1, &[]);
    let until = recorded_until(&api);
    while jiff::Timestamp::now().as_second() <= until as i64 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = project.run(&api, &settle);
    run.expect(0);
    check(&killed, &run, &refused, &["signing secret rotated"]);

    // Before then it may not rotate (the step fails, as any apply that soon), but it checks
    // the sink, runs the reload and waits for the receiver all the same.
    let window = [("KAYLE_SYNC_LATE_WINDOW", "2m")];
    let (killed, refused) = kill_rotation(2, &window);
    let run = project.run_with(&api, &settle, &window);
    run.expect(1);
    check(&killed, &run, &refused, &["rotation not started"]);
}

/// A rotation whose answer was lost, on a sink with no reload: the run writes what the API
/// holds and fails; the next apply (too soon to rotate again) checks the sink and waits for the
/// receiver as after any rotation, so that what it refused meanwhile is retried.
#[test]
fn a_lost_rotation_on_a_sink_without_reload_is_followed_by_the_receiver_wait() {
    let api = Api::start();
    let project = Project::new();
    project.write(
        "kayle-sync.yaml",
        "api:\n  url: http://127.0.0.1:9\nsinks:\n  local: { type: dotenv, path: secrets/kayle.env }\n\
         defaults:\n  signing_secret:\n    sink: local\n",
    );
    let url = "http://127.0.0.1:9/kayle";
    project.manifest(&manifest(url, 0));
    project.apply(&api, &[]);
    project.manifest(&manifest(url, 1));
    api.emu.inject(
        kayle_emulator::Route::RotateSecret,
        kayle_emulator::Fault::DropAfterCommit,
        1,
    );
    let window = [("KAYLE_SYNC_LATE_WINDOW", "2m")];
    let lost = project.run_with(&api, &["apply", "--auto-approve"], &window);
    lost.expect(1);
    assert!(lost.all().contains("outcome unknown"), "{}", lost.all());
    let run = project.run_with(&api, &["apply", "--auto-approve"], &window);
    run.expect(1);
    for text in [
        "rotation not started",
        "receiver not reachable from here",
        "failed since the rotation",
    ] {
        assert!(run.stderr.contains(text), "{text}: {}", run.stderr);
    }
    assert_no_secret(&api, &project, &mut Vec::new(), &[&lost, &run]);
}
