//! End to end: requests whose answer was lost land later, after kayle-sync has moved on (the
//! real server carried out rotations its client had abandoned). Each scenario holds a request
//! with the emulator's late-landing fault, lets kayle-sync time out or kills it, moves on,
//! then lands the request within `KAYLE_SYNC_LATE_WINDOW` of its sending. Then one more apply
//! must leave a generated key's private half in the sink matching the endpoint's active key;
//! and once the window has passed, one more apply must leave the sink holding the API's
//! current secret, while a plan right after a late rotation must not say `No changes.`.
//!
//! Key generation (RSA-4096) takes seconds, so the scenarios with generated keys use a long
//! window and do not wait for it to pass.

use crate::support;

use std::process::Child;
use std::time::{Duration, Instant};

use kayle_emulator::{Fault, Route};
use rsa::pkcs8::DecodePrivateKey;
use support::{Api, Project, Run, id};

const WINDOW_ENV: &str = "KAYLE_SYNC_LATE_WINDOW";
const SECRET: &str = "KAYLE_WEBHOOK_SECRET_ORDERS";
const PRIVATE_KEY: &str = "KAYLE_WEBHOOK_PRIVATE_KEY_ORDERS";

/// The late window of the scenarios that generate keys: longer than any of them takes.
const GENERATING_WINDOW: Duration = Duration::from_secs(120);

/// The late window of the rotation scenarios, which wait for it to pass.
const ROTATING_WINDOW: Duration = Duration::from_secs(8);

/// One endpoint whose key pair kayle-sync generates.
const GENERATED: &str = "endpoints:
  orders:
    url: https://hooks.example.com/orders
    encryption_keys:
      - key_id: gen-1
        generate: true
";

/// kayle-sync runs with a late window of `window`; the held requests were sent after `held`.
struct Scenario<'a> {
    api: &'a Api,
    window: Duration,
    held: Option<Instant>,
    last_run: Instant,
}

impl<'a> Scenario<'a> {
    fn new(api: &'a Api, window: Duration) -> Scenario<'a> {
        Scenario {
            api,
            window,
            held: None,
            last_run: Instant::now(),
        }
    }

    fn window_env(&self) -> String {
        format!("{}s", self.window.as_secs())
    }

    /// Runs kayle-sync in `project` to the end.
    fn run(&mut self, project: &Project, args: &[&str]) -> Run {
        let window = self.window_env();
        let run = project.run_with(self.api, args, &[(WINDOW_ENV, &window)]);
        self.last_run = Instant::now();
        run
    }

    /// Starts kayle-sync in `project`, with a client timeout long enough for any barrier.
    fn spawn(&self, project: &Project, args: &[&str]) -> Child {
        let mut command = project.command(self.api, args);
        command
            .env(WINDOW_ENV, self.window_env())
            .env("KAYLE_SYNC_HTTP_TIMEOUT", "60s");
        support::spawn(command)
    }

    /// The next `times` calls of `route` are held until the test lands them, and never
    /// answered: their client times out (or is killed) long before.
    fn hold(&mut self, route: Route, times: usize) {
        let fault = Fault::LandLate {
            after: Duration::from_secs(600),
            hang_up: false,
        };
        self.api.emu.inject(route, fault, times);
        self.held = Some(Instant::now());
    }

    /// Waits until `route` has been called `count` times in all.
    fn sent(&self, route: Route, count: u64) {
        let started = Instant::now();
        while self
            .api
            .emu
            .stats()
            .requests
            .get(&route)
            .copied()
            .unwrap_or(0)
            < count
        {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{route:?} was never called {count} times"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills `child` with SIGKILL.
    fn kill(&mut self, mut child: Child) {
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        self.last_run = Instant::now();
    }

    /// Lands every held request now, which must be within the window of its sending (later,
    /// kayle-sync may rightly assume it never will), and waits until it has.
    fn land(&self) {
        let held = self.held.expect("a request was held");
        assert!(
            held.elapsed() < self.window,
            "the scenario took {:?}, longer than the late window {:?}: a landing this late \
             breaks kayle-sync's assumption and proves nothing (a very loaded machine?)",
            held.elapsed(),
            self.window
        );
        self.api.emu.land_held();
        self.api.until_landed();
    }

    /// Waits until the window has passed since the last run, and every late window
    /// kayle-sync recorded with it: no lost request can land now.
    fn after_the_window(&self) {
        let settled = self.last_run + self.window;
        std::thread::sleep(settled.saturating_duration_since(Instant::now()));
        support::window::wait_out_recorded_windows(
            &self.api.emu,
            support::PREFIX,
            self.window + Duration::from_secs(3),
        );
    }
}

/// The one endpoint of `orders`, failing with what is there otherwise.
fn orders(api: &Api) -> serde_json::Value {
    api.one("orders")
}

/// Fails unless the private key in the sink is the private half of the endpoint's active key.
#[track_caller]
fn assert_key_matches(api: &Api, project: &Project, when: &str) {
    let endpoint = orders(api);
    let keys = api.keys(&id(&endpoint));
    let active: Vec<_> = keys.iter().filter(|k| k["is_active"] == true).collect();
    let pem = project
        .sink(PRIVATE_KEY)
        .unwrap_or_else(|| panic!("{when}: the sink holds no private key"));
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).expect("a PKCS#8 private key");
    let public = kayle_sync::apply::keys::public_jwk(&private.to_public_key());
    let [key] = active.as_slice() else {
        panic!(
            "{when}: the endpoint has {} active keys: {keys:#?}",
            active.len()
        );
    };
    assert!(
        key["jwk"]["n"] == public.n.as_str() && key["jwk"]["e"] == public.e.as_str(),
        "{when}: the endpoint's active key {} is not the public half of the private key in \
         the sink; events would be encrypted to a key the receiver does not hold",
        key["key_id"]
    );
}

/// Fails unless the sink holds the API's current signing secret of `orders`.
#[track_caller]
fn assert_secret_current(api: &Api, project: &Project, when: &str) {
    let current = api.secret(&id(&orders(api)));
    assert!(
        project.sink(SECRET).as_deref() == Some(current.as_str()),
        "{when}: the sink does not hold the API's current signing secret of orders (it holds \
         {})",
        if project.sink(SECRET).is_some() {
            "another one"
        } else {
            "none"
        }
    );
}

/// Fails if a plan says there is nothing to do while the sink's secret is not the API's.
#[track_caller]
fn assert_plan_sees_it(scenario: &mut Scenario, project: &Project, when: &str) {
    let current = scenario.api.secret(&id(&orders(scenario.api)));
    assert_ne!(
        project.sink(SECRET),
        Some(current),
        "{when}: the scenario did what it is for: the sink's secret is no longer the API's"
    );
    let plan = scenario.run(project, &["plan", "--detailed-exitcode"]);
    assert!(
        plan.code != 0 && !plan.stdout.contains("No changes."),
        "{when}: the sink holds another secret than the API, yet the plan says there is \
         nothing to do (exit {}):\n{}",
        plan.code,
        plan.stdout
    );
}

/// a. The key registration is held and the apply killed; the next apply registers a key; then
/// the first registration lands, as the active key. One more apply, and the active key must
/// be the public half of the private key in the sink.
#[test]
fn a_generated_key_registration_landing_after_the_next_apply_still_matches_the_sink() {
    let api = Api::start();
    let project = Project::new();
    project.manifest(GENERATED);
    let mut scenario = Scenario::new(&api, GENERATING_WINDOW);
    scenario.hold(Route::CreateKey, 1);
    let child = scenario.spawn(&project, &["apply", "--auto-approve"]);
    scenario.sent(Route::CreateKey, 1);
    scenario.kill(child);

    let again = scenario.run(&project, &["apply", "--auto-approve"]);
    assert!(again.code == 0 || again.code == 1, "{again:#?}");
    scenario.land();
    let last = scenario.run(&project, &["apply", "--auto-approve"]);
    assert_key_matches(
        &api,
        &project,
        &format!(
            "after the late registration and one more apply (exit {})",
            last.code
        ),
    );
    last.expect(0);
    assert_secret_current(&api, &project, "after one more apply");
}

/// b. Two copies of one directory, one dotenv sink, apply at once and both create (their
/// listings wait for each other); both key registrations are held and both applies killed.
/// The next apply resolves the duplicates; then the registrations land, the kept endpoint's
/// among them. The kept endpoint's active key must match the sink's private key, after the
/// resolving apply and after one more.
#[test]
fn racing_applies_with_a_generated_key_leave_the_kept_endpoint_matching_the_sink() {
    let api = Api::start();
    let one = Project::new();
    one.manifest(GENERATED);
    let two = Project::with_project_file(&support::PROJECT_FILE.replace(
        "path: secrets/kayle.env",
        &format!("path: {}", one.sink_path().display()),
    ));
    two.manifest(GENERATED);
    let mut scenario = Scenario::new(&api, GENERATING_WINDOW);
    api.list_together(2);
    scenario.hold(Route::CreateKey, 2);
    let first = scenario.spawn(&one, &["apply", "--auto-approve"]);
    let second = scenario.spawn(&two, &["apply", "--auto-approve"]);
    scenario.sent(Route::CreateKey, 2);
    scenario.kill(first);
    scenario.kill(second);
    assert_eq!(api.managed("orders").len(), 2, "both applies created");

    let resolved = scenario.run(&one, &["apply", "--auto-approve"]);
    assert_eq!(api.managed("orders").len(), 1, "resolved: {resolved:#?}");
    assert_key_matches(
        &api,
        &one,
        &format!(
            "after the apply that resolved the duplicates (exit {})",
            resolved.code
        ),
    );
    scenario.land();
    let last = scenario.run(&one, &["apply", "--auto-approve"]);
    assert_key_matches(
        &api,
        &one,
        &format!(
            "after the late registrations and one more apply (exit {})",
            last.code
        ),
    );
    last.expect(0);
    assert_secret_current(&api, &one, "after one more apply");
}

/// One endpoint with a public key, applied and settled.
fn settled(scenario: &mut Scenario) -> Project {
    let project = Project::new();
    project.public_key("keys/orders.pem");
    project.manifest(&public_manifest(0));
    scenario
        .run(&project, &["apply", "--auto-approve"])
        .expect(0);
    project
}

fn public_manifest(rotation: u32) -> String {
    format!(
        "endpoints:
  orders:
    url: https://hooks.example.com/orders
    encryption_keys:
      - key_id: orders-1
        public_key_file: keys/orders.pem
    signing_secret:
      rotation: {rotation}
"
    )
}

/// Fails unless `run` refused to start a rotation while a lost one may still land.
#[track_caller]
fn assert_deferred(run: &Run) {
    run.expect(1);
    assert!(
        run.all().contains("rotation not started"),
        "a rotation started while a lost one may still land:\n{}",
        run.all()
    );
}

/// The end of c and d: right after the late rotation lands a plan must see that the sink is
/// stale; once the window has passed, one more apply writes the API's current secret.
fn land_then_settle(api: &Api, scenario: &mut Scenario, project: &Project) {
    scenario.land();
    assert_plan_sees_it(scenario, project, "right after the lost rotation landed");
    scenario.after_the_window();
    let last = scenario.run(project, &["apply", "--auto-approve"]);
    assert_secret_current(
        api,
        project,
        &format!("after the window and one more apply (exit {})", last.code),
    );
    last.expect(0);
    project.assert_converged(api);
    api.assert_no_violations();
}

/// c. A bumped rotation whose request is held past the client's timeout; the next apply does
/// not rotate while the first may land, and checks the sink instead; then the first rotation
/// lands.
#[test]
fn a_declared_rotation_landing_after_the_next_apply_is_seen_and_settled() {
    let api = Api::start();
    let mut scenario = Scenario::new(&api, ROTATING_WINDOW);
    let project = settled(&mut scenario);
    project.manifest(&public_manifest(1));
    scenario.hold(Route::RotateSecret, 1);
    scenario.run(&project, &["apply", "--auto-approve"]);
    scenario.sent(Route::RotateSecret, 1);
    assert_deferred(&scenario.run(&project, &["apply", "--auto-approve"]));
    assert_secret_current(&api, &project, "after the second apply");
    land_then_settle(&api, &mut scenario, &project);
}

/// d. `kayle-sync rotate KEY` whose request is held past the client's timeout; a second
/// `rotate` does not start while the first may land; then the first rotation lands.
#[test]
fn an_imperative_rotation_that_timed_out_and_lands_late_is_seen_and_settled() {
    let api = Api::start();
    let mut scenario = Scenario::new(&api, ROTATING_WINDOW);
    let project = settled(&mut scenario);
    scenario.hold(Route::RotateSecret, 1);
    let rotate = ["rotate", "orders", "--auto-approve"];
    scenario.run(&project, &rotate);
    scenario.sent(Route::RotateSecret, 1);
    assert_deferred(&scenario.run(&project, &rotate));
    assert_secret_current(&api, &project, "after the second rotate");
    land_then_settle(&api, &mut scenario, &project);
}

/// d. `kayle-sync rotate KEY` killed while its request is held; then the rotation lands.
#[test]
fn an_imperative_rotation_killed_in_flight_that_lands_late_is_seen_and_settled() {
    let api = Api::start();
    let mut scenario = Scenario::new(&api, ROTATING_WINDOW);
    let project = settled(&mut scenario);
    scenario.hold(Route::RotateSecret, 1);
    let child = scenario.spawn(&project, &["rotate", "orders", "--auto-approve"]);
    scenario.sent(Route::RotateSecret, 1);
    scenario.kill(child);
    land_then_settle(&api, &mut scenario, &project);
}

/// e. The record made before a rotation is slow to answer, so the rotation leaves seconds
/// after kayle-sync read the clock for the record; the rotation is then held and lands near
/// the end of the window counted from its sending. The record must still say, when it lands,
/// that a lost rotation may land: otherwise a run in between could settle the endpoint and a
/// plan say `No changes.` over a stale sink.
#[test]
fn a_rotation_sent_after_a_slow_record_lands_within_what_the_record_says() {
    let api = Api::start();
    let mut scenario = Scenario::new(&api, ROTATING_WINDOW);
    let project = settled(&mut scenario);
    project.manifest(&public_manifest(1));
    // The first update is the record; it takes longer than kayle-sync allows for it.
    api.emu.inject(
        Route::UpdateEndpoint,
        Fault::Hang(Duration::from_secs(3)),
        1,
    );
    scenario.hold(Route::RotateSecret, 1);
    let mut command = project.command(&api, &["apply", "--auto-approve"]);
    command
        .env(WINDOW_ENV, scenario.window_env())
        .env("KAYLE_SYNC_HTTP_TIMEOUT", "30s");
    let child = support::spawn(command);
    scenario.sent(Route::RotateSecret, 1);
    let sent = Instant::now();
    scenario.held = Some(sent);
    std::thread::sleep(ROTATING_WINDOW - Duration::from_secs(1));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let until = support::window::recorded_until(&api.emu, support::PREFIX);
    assert!(
        until > now,
        "the rotation may still land, yet the endpoint's record says none can after {until} \
         (now {now})"
    );
    scenario.land();
    support::wait(child);
    scenario.last_run = Instant::now();
    scenario.after_the_window();
    scenario
        .run(&project, &["apply", "--auto-approve"])
        .expect(0);
    assert_secret_current(&api, &project, "after the window and one more apply");
    project.assert_converged(&api);
    api.assert_no_violations();
}

/// f. An update whose answer was lost (here a change of URL, carrying the endpoint's settled
/// record) lands after a later `kayle-sync rotate` would have made its record; had that
/// rotation started and its answer been lost too, the landing would have erased the only
/// sign that the sink may be stale. So the update is recorded unsettled, no rotation starts
/// until it can no longer land, and at no point does a plan say `No changes.` over a stale sink.
#[test]
fn a_rotation_waits_for_an_update_whose_answer_was_lost() {
    let api = Api::start();
    let mut scenario = Scenario::new(&api, ROTATING_WINDOW);
    let project = settled(&mut scenario);
    project.manifest(&public_manifest(0).replace("/orders\n", "/orders-v2\n"));
    scenario.hold(Route::UpdateEndpoint, 1);
    let updated = scenario.run(&project, &["apply", "--auto-approve"]);
    updated.expect(0);
    assert!(
        updated
            .all()
            .contains("an update whose answer was lost may still land"),
        "{}",
        updated.all()
    );
    scenario.hold(Route::RotateSecret, 1);
    let deferred = scenario.run(&project, &["rotate", "orders", "--auto-approve"]);
    assert_deferred(&deferred);
    // An apply does not repeat an imperative rotation: the message must not promise it.
    assert!(
        deferred
            .all()
            .contains("Run `kayle-sync rotate orders` again after that time"),
        "{}",
        deferred.all()
    );
    // The rotation was never sent: its hold is left unused.
    api.emu.clear_faults();
    scenario.land();
    assert_secret_current(&api, &project, "after the lost update landed");
    let plan = scenario.run(&project, &["plan", "--detailed-exitcode"]);
    assert!(!plan.stdout.contains("No changes."), "{}", plan.stdout);
    scenario.after_the_window();
    scenario
        .run(&project, &["rotate", "orders", "--auto-approve"])
        .expect(0);
    assert_secret_current(&api, &project, "after the rotation once the window passed");
    scenario
        .run(&project, &["apply", "--auto-approve"])
        .expect(0);
    project.assert_converged(&api);
    api.assert_no_violations();
}
