//! What file notices and signals do to the loop, and what it logs for them.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_change_is_reconciled_at_once_and_the_interval_counts_from_it() {
    let world = World::new(Duration::from_secs(60));
    let steps = vec![
        Step::in_sync(),
        Step::updated(&["orders"]),
        Step::in_sync().signalled(),
    ];
    let ran = world.run_edited_at(30.0, steps).await;

    assert_eq!(
        ran.triggers(),
        pairs(&[
            ("start", "in-sync"),
            ("change", "applied"),
            ("interval", "in-sync")
        ])
    );
    assert_about(ran.calls[1].at, 30.0);
    assert_eq!(ran.calls[1].digest, Snapshot::load(world.dir()).digest);
    assert_ne!(ran.calls[0].digest, ran.calls[1].digest);
    assert_jittered(ran.gaps()[1], 60.0);
    let change = &ran.lines[1];
    assert_eq!(change["event"], "change");
    assert_eq!(change["message"], "endpoints.yaml");
    assert!(
        ran.metrics
            .contains("\nkayle_sync_drift_corrections_total 0\n"),
        "a change is not drift: {}",
        ran.metrics
    );
}

#[tokio::test(start_paused = true)]
async fn notices_that_leave_the_configuration_as_it_was_cause_no_reconcile() {
    let world = World::new(Duration::from_secs(3600));
    let steps = vec![Step::in_sync(), Step::in_sync()];
    let ran = world
        .run(steps, |driver| async move {
            driver.at(10.0).await;
            // Same endpoints, other bytes: the validated desired state is what counts.
            let text = manifest("orders", "https://a.example.com/");
            driver.write("endpoints.yaml", &format!("{text}# reviewed\n"));
            driver.at(20.0).await;
            // A change only editors' and kayle-sync's own files tell of is not looked at.
            std::fs::write(
                driver.dir.join("endpoints.yaml"),
                manifest("orders", "https://b.example.com/"),
            )
            .unwrap();
            driver.notice(&[
                ".endpoints.yaml.swp",
                ".kayle-sync/state.json",
                "endpoints.yaml~",
            ]);
            driver
                .notices
                .send(Err(vec!["inotify queue overflow".into()]))
                .unwrap();
            driver.at(30.0).await;
            driver.notice(&["endpoints.yaml"]);
            driver.at(40.0).await;
            driver.signal();
        })
        .await;

    assert_eq!(
        ran.triggers(),
        pairs(&[("start", "in-sync"), ("change", "in-sync")])
    );
    assert_about(ran.calls[1].at, 30.0);
    assert_eq!(
        ran.events(),
        ["reconcile", "warning", "change", "reconcile", "stop"]
    );
    assert_eq!(
        ran.lines[1]["message"],
        "file watch: inotify queue overflow"
    );
    assert_about(ran.stopped, 40.0);
}

#[tokio::test(start_paused = true)]
async fn changes_during_a_reconcile_become_one_more_of_the_newest_content() {
    let world = World::new(Duration::from_secs(3600));
    let steps = vec![
        Step::in_sync().taking(Duration::from_secs(10)),
        Step::updated(&["billing", "orders"]).signalled(),
    ];
    let ran = world
        .run(steps, |driver| async move {
            driver.at(2.0).await;
            driver.edit("https://b.example.com/");
            driver.at(4.0).await;
            driver.write(
                "billing.yaml",
                &manifest("billing", "https://c.example.com/"),
            );
        })
        .await;

    assert_eq!(
        ran.triggers(),
        pairs(&[("start", "in-sync"), ("change", "applied")])
    );
    assert_about(ran.calls[1].at, 10.0);
    assert_eq!(ran.calls[1].digest, Snapshot::load(world.dir()).digest);
    let change = ran.lines.iter().find(|l| l["event"] == "change").unwrap();
    assert_eq!(change["message"], "billing.yaml, endpoints.yaml");
}

#[tokio::test(start_paused = true)]
async fn a_signal_while_idle_stops_the_loop_at_once() {
    let world = World::new(Duration::from_secs(60));
    let ran = world
        .run(vec![Step::in_sync()], |driver| async move {
            driver.at(10.0).await;
            driver.signal();
        })
        .await;

    assert_eq!(ran.calls.len(), 1);
    assert_about(ran.stopped, 10.0);
    let stop = ran.lines.last().unwrap();
    assert_eq!(stop["event"], "stop");
    assert_eq!(
        stop["message"],
        "signal received; no reconcile was cut short; exiting"
    );
}

#[tokio::test(start_paused = true)]
async fn a_signal_during_a_reconcile_lets_it_finish_and_starts_no_other() {
    let world = World::new(Duration::from_secs(60));
    let key = Event::GeneratingKey {
        key: "orders".into(),
        key_id: "orders-k1".into(),
    };
    let steps = vec![
        Step::in_sync(),
        Step::updated(&["orders"])
            .reporting(key)
            .taking(Duration::from_secs(20)),
    ];
    let ran = world
        .run(steps, |driver| async move {
            driver.at(5.0).await;
            driver.edit("https://b.example.com/");
            driver.at(10.0).await;
            driver.signal();
            driver.at(12.0).await;
            driver.edit("https://c.example.com/");
        })
        .await;

    assert_about(ran.calls[1].ended, 25.0);
    assert_about(ran.stopped, 25.0);
    assert_eq!(
        ran.events(),
        ["reconcile", "change", "key", "reconcile", "stop"]
    );
    assert!(
        ran.lines[2]["message"]
            .as_str()
            .unwrap()
            .contains("RSA key for orders"),
        "{}",
        ran.lines[2]
    );
    assert_eq!(ran.triggers()[1], ("change".into(), "applied".into()));
}

#[tokio::test(start_paused = true)]
async fn a_manifest_warning_is_logged_once_for_the_content_that_has_it() {
    let world = World::new(Duration::from_secs(60));
    let steps = Step::in_sync_until_signalled(3);
    let ran = world
        .run(steps, |driver| async move {
            driver.at(5.0).await;
            let quiet = manifest("orders", "https://a.example.com/");
            driver.write("endpoints.yaml", &quiet.replace("    enabled: false\n", ""));
        })
        .await;

    assert_eq!(ran.trigger_names(), ["start", "change", "interval"]);
    assert_eq!(
        ran.events(),
        [
            "reconcile",
            "change",
            "warning",
            "reconcile",
            "reconcile",
            "stop"
        ]
    );
    let warning = ran.lines[2]["message"].as_str().unwrap();
    assert!(warning.contains("endpoints.yaml:2:3"), "{warning}");
    assert!(warning.contains("without an encryption key"), "{warning}");
}

#[tokio::test(start_paused = true)]
async fn a_project_file_naming_another_api_is_warned_about_once_while_it_does() {
    let world = World::new(Duration::from_secs(60));
    let project = std::fs::read_to_string(world.dir().join("kayle-sync.yaml")).unwrap();
    let moved = project.replace("127.0.0.1:1", "127.0.0.1:2");
    let steps = Step::in_sync_until_signalled(5);
    let ran = world
        .run(steps, |driver| async move {
            driver.at(5.0).await;
            driver.write("kayle-sync.yaml", &moved);
            // The interval reconcile in between (about 65 s) says nothing again.
            driver.at(100.0).await;
            driver.write("kayle-sync.yaml", &project);
            driver.at(110.0).await;
            driver.write("kayle-sync.yaml", &moved);
        })
        .await;

    assert_eq!(
        ran.trigger_names(),
        ["start", "change", "interval", "change", "change"]
    );
    let warned = |line: &Value| {
        line["event"] == "warning"
            && line["message"]
                .as_str()
                .unwrap()
                .starts_with("the project file names a different API")
    };
    assert_eq!(ran.lines.iter().filter(|l| warned(l)).count(), 2);
}
