//! When reconciles come without a file change: the interval, the verify interval, retries
//! with backoff, and failures no retry can fix.

use super::*;

#[tokio::test(start_paused = true)]
async fn interval_reconciles_come_an_interval_apart_give_or_take_the_jitter() {
    let world = World::new(Duration::from_secs(60));
    let mut steps = vec![Step::in_sync(), Step::updated(&["orders"])];
    steps.extend(Step::in_sync_until_signalled(11));
    let ran = world.run(steps, |_| async {}).await;

    let triggers = ran.triggers();
    assert_eq!(triggers[0], ("start".into(), "in-sync".into()));
    assert_eq!(triggers[1], ("interval".into(), "applied".into()));
    assert!(
        triggers[2..].iter().all(|(t, _)| t == "interval"),
        "{triggers:?}"
    );
    let gaps = ran.gaps();
    for gap in &gaps {
        assert_jittered(*gap, 60.0);
    }
    assert!(
        gaps.iter().any(|gap| (gap - gaps[0]).abs() > 0.01),
        "every wait the same, no jitter: {gaps:?}"
    );
    assert!(
        ran.metrics
            .contains("\nkayle_sync_drift_corrections_total 1\n"),
        "{}",
        ran.metrics
    );
    assert_eq!(ran.events().last().unwrap(), "stop");
}

#[tokio::test(start_paused = true)]
async fn retryable_failures_back_off_doubling_and_a_success_starts_over() {
    let world = World::new(Duration::from_secs(60));
    let outage = || Step::failing(api_failure(503));
    let steps = vec![
        outage(),
        outage(),
        outage(),
        outage(),
        Step::in_sync(),
        outage(),
        Step::in_sync().signalled(),
    ];
    let ran = world.run(steps, |_| async {}).await;

    assert_eq!(
        ran.triggers(),
        pairs(&[
            ("start", "failed"),
            ("retry", "failed"),
            ("retry", "failed"),
            ("retry", "failed"),
            ("retry", "in-sync"),
            ("interval", "failed"),
            ("retry", "in-sync"),
        ])
    );
    let gaps = ran.gaps();
    let waits = [1.0, 2.0, 4.0, 8.0, 60.0, 1.0];
    for (gap, wait) in gaps.iter().zip(waits) {
        assert_jittered(*gap, wait);
    }
    let retries = [0, 1, 2, 3, 5];
    assert!(
        retries.iter().any(|&n| (gaps[n] - waits[n]).abs() > 0.01),
        "retries without jitter: {gaps:?}"
    );
    // Each failure's line says when its retry comes, to the tenth of a second.
    let outcomes = ran.outcomes();
    for (n, gap) in retries.map(|n| (n, gaps[n])) {
        let said = Ran::retry_in(outcomes[n]).unwrap_or_else(|| panic!("{}", outcomes[n]));
        assert!((gap - 0.102..=gap).contains(&said), "{said} for {gap}");
        assert!(outcomes[n]["error"].as_str().unwrap().contains("503"));
    }
    assert!(
        ran.metrics
            .contains("\nkayle_sync_reconcile_failures_total 5\n")
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_no_retry_can_fix_waits_for_the_interval_instead_of_retrying() {
    let guard = crate::plan::GuardError::TooManyDeletes {
        deletes: 2,
        managed: 2,
    };
    let invalid = || ReconcileError::Invalid {
        diagnostics: not_a_url(),
    };
    let sink = crate::model::SinkError::Config {
        sink: "local".into(),
        message: "its reload: the command `/nonexistent/prog` is not an executable file".into(),
    };
    let cases = [
        (
            api_failure(401),
            "failed",
            Some("the API refused the API key (HTTP 401)"),
        ),
        (
            api_failure(403),
            "failed",
            Some("the API key lacks a scope the call needs (HTTP 403)"),
        ),
        (
            api_failure(422),
            "failed",
            Some("the API refused a request as invalid"),
        ),
        (
            api_failure(301),
            "failed",
            Some("the API answered with a redirect: check the base URL"),
        ),
        (
            ReconcileError::Sinks(sink),
            "failed",
            Some("a sink cannot work as configured"),
        ),
        (invalid(), "invalid", None),
        (ReconcileError::Refused(guard), "refused", None),
    ];
    for (error, outcome, why) in cases {
        let world = World::new(Duration::from_secs(60));
        let steps = vec![Step::failing(error), Step::in_sync().signalled()];
        let ran = world.run(steps, |_| async {}).await;

        assert_eq!(
            ran.triggers(),
            pairs(&[("start", outcome), ("interval", "in-sync")]),
            "{outcome} {why:?}"
        );
        assert_jittered(ran.gaps()[0], 60.0);
        let line = ran.outcomes()[0];
        assert_eq!(line["retry_in"], Value::Null, "{line}");
        assert_eq!(line["waiting_for_change"].as_str(), why, "{line}");
        if outcome == "invalid" {
            // As `validate --format json` lists them.
            let listed = serde_json::to_value(not_a_url()).unwrap();
            assert_eq!(line["diagnostics"], listed, "{line}");
            assert_eq!(line["diagnostics"][0]["code"], "invalid-url", "{line}");
            assert_eq!(line["diagnostics"][0]["location"]["line"], 2, "{line}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn after_a_failure_that_waits_for_a_change_the_backoff_starts_over() {
    let world = World::new(Duration::from_secs(60));
    let steps = vec![
        Step::failing(api_failure(503)),
        Step::failing(api_failure(401)),
        Step::failing(api_failure(503)),
        Step::in_sync().signalled(),
    ];
    let ran = world.run_edited_at(30.0, steps).await;

    assert_eq!(
        ran.triggers(),
        pairs(&[
            ("start", "failed"),
            ("retry", "failed"),
            ("change", "failed"),
            ("retry", "in-sync"),
        ])
    );
    let at: Vec<f64> = ran.calls.iter().map(|c| c.at.as_secs_f64()).collect();
    assert_jittered(at[1], 1.0);
    assert_about(ran.calls[2].at, 30.0);
    // Not 4 s: the 401 in between was not a retryable failure in a row.
    assert_jittered(at[3] - at[2], 1.0);
}

/// A rotation that a request still in flight could undo is not started; the error policy
/// retries it like an outage, on the backoff (it does not aim at the deferral's end).
#[tokio::test(start_paused = true)]
async fn a_deferred_rotation_is_retried_once_its_time_has_passed() {
    // Far off: retried at the interval (each round checks the sink meanwhile).
    let world = World::new(Duration::from_secs(60));
    let until = jiff::Timestamp::now().as_second() as u64 + 900;
    let steps = vec![
        Step::failing(deferred("orders", until)),
        Step::failing(deferred("orders", until)),
        Step::updated(&["orders"]).signalled(),
    ];
    let ran = world.run(steps, |_| async {}).await;
    // The retry and the interval tick fall due together: either starts the round.
    let outcomes: Vec<String> = ran.triggers().into_iter().map(|(_, o)| o).collect();
    assert_eq!(outcomes, ["failed", "failed", "applied"]);
    let gaps = ran.gaps();
    assert_jittered(gaps[0], 60.0);
    assert_jittered(gaps[1], 60.0);

    // Near: retried just after it, not on the one-second backoff before it.
    let world = World::new(Duration::from_secs(60));
    let until = jiff::Timestamp::now().as_second() as u64 + 10;
    let steps = vec![
        Step::failing(deferred("orders", until)),
        Step::updated(&["orders"]).signalled(),
    ];
    let ran = world.run(steps, |_| async {}).await;
    let gaps = ran.gaps();
    assert!((9.0..=13.0).contains(&gaps[0]), "{gaps:?}");
    let line = ran.outcomes()[0];
    assert!(
        line["error"]
            .as_str()
            .unwrap()
            .contains("orders: rotation not started"),
        "{line}"
    );
    assert_eq!(line.get("waiting_for_change"), None, "{line}");
}

#[tokio::test(start_paused = true)]
async fn the_verify_interval_verifies_on_its_own_clock() {
    let mut world = World::new(Duration::from_secs(3600));
    world.options.verify_interval = Some(Duration::from_secs(30));
    let steps = vec![
        Step::in_sync(),
        Step::in_sync(),
        Step::updated(&["orders"]),
        Step::in_sync().signalled(),
    ];
    let ran = world.run_edited_at(20.0, steps).await;

    assert_eq!(
        ran.triggers(),
        pairs(&[
            ("start", "in-sync"),
            ("change", "in-sync"),
            ("verify", "applied"),
            ("verify", "in-sync"),
        ])
    );
    let verified: Vec<bool> = ran.calls.iter().map(|c| c.verify).collect();
    assert_eq!(verified, [false, false, true, true]);
    // Counted from start: the change in between does not put the verify off.
    assert_jittered(ran.calls[2].at.as_secs_f64(), 30.0);
    assert_jittered(ran.gaps()[2], 30.0);
    assert!(
        ran.metrics
            .contains("\nkayle_sync_drift_corrections_total 1\n"),
        "a verify that repairs a sink corrects drift: {}",
        ran.metrics
    );
}
