//! End to end: the command line's contract for plan and apply (issue 4): confirmation,
//! saved plans, the JSON plan, exit codes, and API errors.

use crate::support;

use serde_json::{Value, json};
use support::manifests::{applied, assert_one_with_secret, disabled, endpoint, manifest, url};
use support::{Api, Project, id};

#[test]
fn apply_without_a_terminal_needs_auto_approve() {
    let api = Api::start();
    let project = Project::new();
    project.public_key("keys/orders.pem");
    project.manifest(&manifest(&[endpoint("orders", "Orders", &url("orders"))]));

    let refused = project.run(&api, &["apply"]);
    refused.expect(1);
    assert!(
        refused.stderr.contains("--auto-approve"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stdout.contains("+ create orders"),
        "the plan is still shown"
    );
    assert!(api.endpoints().is_empty(), "nothing was created");
    assert!(!project.sink_path().exists(), "nothing was written");

    // With JSON, stdout holds the plan alone, as whenever nothing is carried out.
    let refused = project.run(&api, &["apply", "--format", "json"]);
    refused.expect(1);
    assert!(
        refused.stderr.contains("--auto-approve"),
        "{}",
        refused.stderr
    );
    let plan: Value = serde_json::from_str(&refused.stdout).expect("one JSON document");
    assert_eq!(plan["changes"][0]["key"], "orders", "{plan:#}");
    assert!(plan.get("applied").is_none(), "{plan:#}");
    assert!(api.endpoints().is_empty(), "nothing was created");
}

#[test]
fn saved_plan_applies_exactly() {
    let api = Api::start();
    let project = applied(&api, &["orders"]);
    project.public_key("keys/billing.pem");
    project.manifest(&manifest(&[
        endpoint("orders", "Orders v2", &url("orders")),
        endpoint("billing", "Billing", &url("billing")),
    ]));
    project.run(&api, &["plan", "--out", "plan.json"]).expect(0);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(project.path("plan.json")).unwrap()).unwrap();
    assert!(saved.is_object(), "the saved plan is JSON");

    let run = project.run(&api, &["apply", "--plan", "plan.json", "--auto-approve"]);
    run.expect(0);
    assert!(
        run.stdout.contains("1 created, 1 updated, 0 deleted"),
        "{}",
        run.stdout
    );
    assert_eq!(api.one("orders")["name"], "Orders v2");
    assert_one_with_secret(&api, &project, "billing");
    api.assert_no_violations();
    project.assert_converged(&api);
}

#[test]
fn saved_plan_is_refused_when_live_state_moved() {
    let api = Api::start();
    let project = applied(&api, &["orders"]);
    project.manifest(&manifest(&[endpoint(
        "orders",
        "Orders v2",
        &url("orders"),
    )]));
    project.run(&api, &["plan", "--out", "plan.json"]).expect(0);
    let live = api.one("orders");
    let moved = api.patch(
        &id(&live),
        json!({"undelivered_payload_retention_hours": 24}),
    );

    let refused = project.run(&api, &["apply", "--plan", "plan.json", "--auto-approve"]);
    refused.expect(1);
    assert!(
        refused.stderr.contains("live state changed"),
        "{}",
        refused.stderr
    );
    assert_eq!(api.one("orders"), moved, "nothing was changed");

    // A saved plan from another configuration is refused too.
    project.run(&api, &["plan", "--out", "plan.json"]).expect(0);
    project.manifest(&manifest(&[endpoint(
        "orders",
        "Orders v3",
        &url("orders"),
    )]));
    let refused = project.run(&api, &["apply", "--plan", "plan.json", "--auto-approve"]);
    refused.expect(1);
    assert_eq!(api.one("orders"), moved, "nothing was changed");
}

#[test]
fn json_plan_has_the_documented_shape() {
    let api = Api::start();
    let other =
        api.create_endpoint(json!({"url": "https://hooks.example.com/x", "enabled": false}));
    let project = applied(&api, &["orders"]);
    project.public_key("keys/billing.pem");
    project.manifest(&manifest(&[
        endpoint("orders", "Orders v2", &url("orders")),
        endpoint("billing", "Billing", &url("billing")),
    ]));

    let run = project.run(&api, &["plan", "--format", "json"]);
    run.expect(0);
    let plan: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(plan["format_version"].is_u64(), "{plan:#}");
    assert_eq!(
        plan["summary"],
        json!({"create": 1, "update": 1, "delete": 0})
    );
    assert_eq!(plan["unmanaged"], json!([id(&other)]));
    let changes = plan["changes"].as_array().unwrap();
    let billing = changes.iter().find(|c| c["key"] == "billing").unwrap();
    assert_eq!(billing["action"], "create");
    assert!(billing["endpoint_id"].is_null());
    assert_eq!(billing["fields"]["url"]["after"], url("billing"));
    let orders = changes.iter().find(|c| c["key"] == "orders").unwrap();
    assert_eq!(orders["action"], "update");
    assert_eq!(orders["endpoint_id"], id(&api.one("orders")));
    assert_eq!(
        orders["fields"]["name"],
        json!({"before": "orders service", "after": "Orders v2"})
    );
    assert!(orders["fields"].get("url").is_none(), "only changed fields");
}

#[test]
fn exit_codes() {
    let api = Api::start();
    let project = Project::new();
    project.manifest(&manifest(&[disabled("orders")]));

    project.run(&api, &["plan", "--no-such-flag"]).expect(64);
    project.run(&api, &["no-such-command"]).expect(64);
    project.run(&api, &["plan"]).expect(0);
    project
        .run(&api, &["plan", "--detailed-exitcode"])
        .expect(2);
    project.apply(&api, &[]);
    project
        .run(&api, &["plan", "--detailed-exitcode"])
        .expect(0);
    project.run(&api, &["--version"]).expect(0);

    project
        .manifest("endpoints:\n  orders:\n    url: https://hooks.example.com/x\n    colour: red\n");
    let invalid = project.run(&api, &["plan", "--detailed-exitcode"]);
    invalid.expect(1);
    assert!(
        invalid.stderr.contains("endpoints.yaml"),
        "{}",
        invalid.stderr
    );

    let unreachable = Api::start();
    let url = unreachable.url.clone();
    drop(unreachable);
    project.manifest(&manifest(&[disabled("orders")]));
    let mut command = project.command(&api, &["plan", "--detailed-exitcode"]);
    command.env("KAYLE_API_URL", url);
    support::finish(command).expect(1);

    let mut command = project.command(&api, &["plan", "--detailed-exitcode"]);
    command.env_remove("KAYLE_API_KEY");
    let run = support::finish(command);
    run.expect(1);
    assert!(
        run.stderr.contains("KAYLE_API_KEY"),
        "names the variable: {}",
        run.stderr
    );

    let mut command = project.command(&api, &["plan", "--detailed-exitcode"]);
    command.env("KAYLE_API_KEY", "kk_wrong");
    let run = support::finish(command);
    run.expect(1);
    assert!(
        !run.all().contains("kk_wrong"),
        "the token is never printed"
    );

    let run = project.run(&api, &["apply", "--plan", "missing.json", "--auto-approve"]);
    run.expect(1);
    assert!(run.stderr.contains("missing.json"), "{}", run.stderr);
}

#[test]
fn a_saved_plan_still_needs_auto_approve_without_a_terminal() {
    let api = Api::start();
    let project = Project::new();
    project.manifest(&manifest(&[disabled("orders")]));
    project.run(&api, &["plan", "--out", "plan.json"]).expect(0);
    let refused = project.run(&api, &["apply", "--plan", "plan.json"]);
    refused.expect(1);
    assert!(
        refused.stderr.contains("--auto-approve"),
        "{}",
        refused.stderr
    );
    assert!(api.endpoints().is_empty());
}

#[test]
fn api_error_is_reported_and_other_endpoints_still_apply() {
    let api = Api::start();
    let project = applied(&api, &["aaa", "bbb"]);
    project.manifest(&manifest(&[
        endpoint("aaa", "A v2", &url("aaa")),
        endpoint("bbb", "B v2", &url("bbb")),
    ]));
    // Whichever update comes first gets the 400 (endpoints are worked on concurrently).
    api.emu.inject(
        kayle_emulator::Route::UpdateEndpoint,
        kayle_emulator::Fault::Status {
            status: 400,
            retry_after_secs: None,
        },
        1,
    );
    let run = project.run(&api, &["apply", "--auto-approve", "--concurrency", "1"]);
    run.expect(1);
    let all = run.all();
    assert!(all.contains("Bad request."), "the API's message: {all}");
    let names = [
        api.one("aaa")["name"].clone(),
        api.one("bbb")["name"].clone(),
    ];
    let (failed, applied) = if names[0] == "aaa service" {
        ("aaa", &names[1])
    } else {
        ("bbb", &names[0])
    };
    assert!(
        all.contains(&format!("{failed} (whe_")) && all.contains("FAILED"),
        "names the endpoint that failed: {all}"
    );
    assert!(
        *applied == "A v2" || *applied == "B v2",
        "the other one applied: {names:?}"
    );
    assert!(
        names.contains(&serde_json::json!(format!("{failed} service"))),
        "the failed one is unchanged: {names:?}"
    );
    project.apply(&api, &[]);

    // 500s beyond the retry budget (5 attempts) fail the same way.
    project.manifest(&manifest(&[
        endpoint("aaa", "A v3", &url("aaa")),
        endpoint("bbb", "B v3", &url("bbb")),
    ]));
    api.emu.inject(
        kayle_emulator::Route::UpdateEndpoint,
        kayle_emulator::Fault::Status {
            status: 500,
            retry_after_secs: None,
        },
        10,
    );
    let run = project.run(&api, &["apply", "--auto-approve", "--concurrency", "1"]);
    run.expect(1);
    assert!(
        run.all().contains("Internal server error."),
        "{}",
        run.all()
    );
    api.emu.clear_faults();

    project.apply(&api, &[]);
    assert_eq!(api.one("aaa")["name"], "A v3");
    assert_eq!(api.one("bbb")["name"], "B v3");
    api.assert_no_violations();
    project.assert_converged(&api);
}

#[test]
fn target_limits_apply_to_the_named_endpoints() {
    let api = Api::start();
    let project = applied(&api, &["aaa", "bbb"]);
    project.manifest(&manifest(&[
        endpoint("aaa", "A v2", &url("aaa")),
        endpoint("bbb", "B v2", &url("bbb")),
    ]));
    let run = project.apply(&api, &["--target", "bbb"]);
    assert!(!run.stdout.contains("aaa"), "{}", run.stdout);
    assert_eq!(api.one("aaa")["name"], "aaa service");
    assert_eq!(api.one("bbb")["name"], "B v2");

    let plan = project.run(&api, &["plan", "--target", "bbb", "--detailed-exitcode"]);
    plan.expect(0);
    let plan = project.run(&api, &["plan", "--target", "nope"]);
    plan.expect(64);
    assert!(
        plan.stderr.contains("--target nope names no"),
        "a target matching nothing is a usage error: {}",
        plan.stderr
    );
    project
        .run(&api, &["plan", "--target", "Not A Key"])
        .expect(64);
    api.assert_no_violations();
}

#[test]
fn a_saved_plan_applies_with_the_options_it_was_made_with() {
    let api = Api::start();
    let project = applied(&api, &["aaa", "bbb", "ccc"]);
    project.manifest(&manifest(&[
        endpoint("aaa", "A v2", &url("aaa")),
        endpoint("bbb", "B v2", &url("bbb")),
    ]));

    // Made with --prune and --target: the command plan prints applies it as it is.
    project
        .run(
            &api,
            &[
                "plan", "--prune", "--target", "aaa", "--target", "ccc", "--out", "p.json",
            ],
        )
        .expect(0);
    let run = project.run(&api, &["apply", "--plan", "p.json", "--auto-approve"]);
    run.expect(0);
    assert!(api.managed("ccc").is_empty(), "pruned as planned");
    assert_eq!(api.one("aaa")["name"], "A v2");
    assert_eq!(api.one("bbb")["name"], "bbb service", "not targeted");

    // Options the plan was not made with are refused.
    project.run(&api, &["plan", "--out", "q.json"]).expect(0);
    for extra in [&["--prune"][..], &["--target", "aaa"][..]] {
        let mut args = vec!["apply", "--plan", "q.json", "--auto-approve"];
        args.extend_from_slice(extra);
        let refused = project.run(&api, &args);
        refused.expect(64);
        assert!(
            refused.stderr.contains("run plan again"),
            "{}",
            refused.stderr
        );
    }
    assert_eq!(api.one("bbb")["name"], "bbb service", "nothing changed");
    project
        .run(&api, &["apply", "--plan", "q.json", "--auto-approve"])
        .expect(0);
    assert_eq!(api.one("bbb")["name"], "B v2");
    api.assert_no_violations();
}

#[test]
fn the_quickstart_runs_against_the_embedded_sandbox() {
    // About the example itself (the README's quickstart), so it reads examples/, in a copy.
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart");
    let project = Project::with_project_file(
        &std::fs::read_to_string(example.join("kayle-sync.yaml")).unwrap(),
    );
    for file in ["endpoints.yaml", "keys/orders-2026-11.pub.pem"] {
        project.write(file, &std::fs::read_to_string(example.join(file)).unwrap());
    }
    // No API in the environment: the project file's `url: sandbox` is used.
    let unused = Api::start();
    let sandbox = |args: &[&str]| {
        let mut command = project.command(&unused, args);
        command
            .env_remove("KAYLE_API_URL")
            .env_remove("KAYLE_API_KEY");
        support::finish(command)
    };

    sandbox(&["plan", "--detailed-exitcode"]).expect(2);
    let run = sandbox(&["apply", "--auto-approve"]);
    run.expect(0);
    assert!(run.stderr.contains("sandbox"), "{}", run.stderr);
    assert!(
        project.path(".kayle-sync").is_dir(),
        "state kept in the directory"
    );
    for name in [
        "KAYLE_WEBHOOK_SECRET_ORDERS",
        "KAYLE_WEBHOOK_SECRET_IDENTITY",
    ] {
        assert!(
            project.sink(name).is_some_and(|s| s.starts_with("whsec_")),
            "{name} written"
        );
    }
    // The state persisted: a second run sees what the first made.
    let again = sandbox(&["plan", "--detailed-exitcode"]);
    again.expect(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    assert!(
        unused.endpoints().is_empty(),
        "the test's emulator was not used"
    );
}

#[test]
fn apply_with_json_format_keeps_stdout_one_json_document() {
    let api = Api::start();
    let project = Project::new();
    project.manifest(&manifest(&[disabled("orders")]));
    let run = project.run(&api, &["apply", "--auto-approve", "--format", "json"]);
    run.expect(0);
    let plan: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", run.stdout));
    assert_eq!(plan["summary"]["create"], 1);
    assert!(run.stderr.contains("Apply complete"), "{}", run.stderr);
    api.one("orders");
}

/// `RUST_LOG` diagnostics follow `--color` like everything else on stderr: no escape codes
/// with `--color never`, nor with `auto` when stderr is not a terminal (a CI log).
#[test]
fn debug_logs_carry_no_color_codes_off_a_terminal_or_with_color_never() {
    let api = Api::start();
    let project = applied(&api, &["orders"]);
    for args in [&["plan"][..], &["plan", "--color", "never"]] {
        let mut command = project.command(&api, args);
        command.env_remove("NO_COLOR").env("RUST_LOG", "debug");
        let run = support::finish(command);
        run.expect(0);
        assert!(
            run.stderr.contains("DEBUG"),
            "{args:?}: RUST_LOG=debug logged"
        );
        assert!(
            !run.stderr.contains('\u{1b}'),
            "{args:?}: escape codes on stderr: {:?}",
            run.stderr.lines().find(|line| line.contains('\u{1b}'))
        );
    }
}

/// Reads a child's stderr line by line on a thread, so the test sees each line when it is
/// written, not when the process ends.
fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    received
}

#[test]
fn apply_prints_each_endpoints_result_to_stderr_as_it_finishes() {
    let api = Api::start();
    let project = Project::new();
    project.public_key("keys/alpha.pem");
    project.manifest(&format!(
        "{}  zeta:\n    url: https://hooks.example.com/zeta\n    encryption_keys:\n      - key_id: \
         gen-1\n        generate: true\n",
        manifest(&[endpoint("alpha", "Alpha", &url("alpha")), disabled("beta")])
    ));
    // Two keys are registered (alpha's and zeta's); the emulator holds the first until the
    // second arrives, and the test sends a third call once it has seen beta's result.
    api.emu.inject(
        kayle_emulator::Route::CreateKey,
        kayle_emulator::Fault::Barrier {
            count: 3,
            timeout: std::time::Duration::from_secs(60),
        },
        1,
    );
    let mut command = project.command(&api, &["apply", "--auto-approve"]);
    command.env("KAYLE_SYNC_HTTP_TIMEOUT", "120s");
    let mut child = support::spawn(command);
    let lines = stderr_lines(&mut child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.starts_with("beta (")) {
        match lines.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    let streamed = seen.iter().any(|l| l.starts_with("beta ("));
    // Releases the held key registrations (this call itself is refused: no such endpoint).
    api.request(
        "POST",
        "/v1/webhooks/endpoints/whe_none/keys",
        Some(json!({})),
    );
    seen.extend(lines.iter());
    let run = support::wait(child);
    let stderr = seen.join("\n");
    run.expect(0);
    assert!(
        streamed,
        "beta's result is printed while the others are still at work: {stderr}"
    );
    for key in ["alpha", "beta", "zeta"] {
        let own: Vec<&String> = seen
            .iter()
            .filter(|l| l.starts_with(&format!("{key} (whe_")))
            .collect();
        assert_eq!(own.len(), 1, "one line for {key}: {stderr}");
        assert!(own[0].contains("Creation complete"), "{stderr}");
    }
    let notice = seen
        .iter()
        .position(|l| l == "generating a 4096-bit RSA key for zeta; this takes a few seconds")
        .unwrap_or_else(|| panic!("the key generation is announced: {stderr}"));
    let zeta = seen.iter().position(|l| l.starts_with("zeta (")).unwrap();
    assert!(notice < zeta, "announced before it starts: {stderr}");
    assert!(
        !stderr.contains(['\r', '\u{1b}']),
        "no live count off a terminal: {stderr:?}"
    );
    assert!(
        run.stdout.contains("Apply complete: 3 created"),
        "the summary stays: {}",
        run.stdout
    );
    assert!(!run.stdout.contains("beta (whe_"), "{}", run.stdout);
}

#[test]
fn apply_json_holds_the_plan_and_what_was_done() {
    let api = Api::start();
    let project = Project::new();
    project.public_key("keys/orders.pem");
    let keep = [disabled("kept"), disabled("quiet")];
    let mut entries = vec![
        endpoint("orders", "Orders", &url("orders")),
        disabled("old"),
    ];
    entries.extend(keep.clone());
    project.manifest(&manifest(&entries));
    project.apply(&api, &[]);
    let mut entries = vec![
        endpoint("orders", "Orders v2", &url("orders")),
        disabled("fresh"),
    ];
    entries.extend(keep);
    project.manifest(&manifest(&entries));
    // kept's secret goes missing from the sink: the apply writes it again.
    let text: String = project
        .sink_text()
        .lines()
        .filter(|l| !l.starts_with("KAYLE_WEBHOOK_SECRET_KEPT="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(project.sink_path(), text).unwrap();
    api.emu.inject(
        kayle_emulator::Route::CreateEndpoint,
        kayle_emulator::Fault::Status {
            status: 400,
            retry_after_secs: None,
        },
        1,
    );

    let run = project.run(
        &api,
        &["apply", "--auto-approve", "--prune", "--format", "json"],
    );
    run.expect(1);
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", run.stdout));
    assert_eq!(doc["format_version"], 1, "the plan's version: {doc:#}");
    assert_eq!(
        doc["summary"],
        json!({"create": 1, "update": 2, "delete": 1})
    );
    let applied = &doc["applied"];
    assert_eq!(applied["format_version"], 2, "{doc:#}");
    assert_eq!(
        applied["totals"],
        json!({"created": 0, "updated": 2, "deleted": 1, "unchanged": 1, "failed": 1}),
        "{doc:#}"
    );
    let by_key = |key: &str| -> Value {
        applied["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no {key} in {doc:#}"))
    };
    assert_eq!(by_key("orders")["outcome"], "updated");
    assert_eq!(by_key("orders")["endpoint_id"], id(&api.one("orders")));
    assert_eq!(
        by_key("orders")["steps"],
        json!([{"kind": "updated", "fields": ["name"], "text": "updated name"}])
    );
    assert_eq!(by_key("quiet")["outcome"], "unchanged");
    assert_eq!(by_key("quiet")["endpoint_id"], id(&api.one("quiet")));
    let kept = by_key("kept");
    assert_eq!(kept["outcome"], "updated");
    assert_eq!(
        kept["secret_writes"],
        json!([{"sink": "local", "name": "KAYLE_WEBHOOK_SECRET_KEPT"}])
    );
    assert_eq!(
        kept["steps"],
        json!([{
            "kind": "secret-recovered",
            "sink": "local",
            "name": "KAYLE_WEBHOOK_SECRET_KEPT",
            "unsettled": false,
            "text": "signing secret recovered to sink local as KAYLE_WEBHOOK_SECRET_KEPT"
        }])
    );
    let old = by_key("old");
    assert_eq!(old["outcome"], "deleted");
    assert_eq!(
        old["secret_removals"],
        json!([{"sink": "local", "name": "KAYLE_WEBHOOK_SECRET_OLD"}])
    );
    assert_eq!(
        old["steps"],
        json!([
            {"kind": "deleted", "text": "deleted"},
            {
                "kind": "secret-removed",
                "sink": "local",
                "name": "KAYLE_WEBHOOK_SECRET_OLD",
                "text": "removed KAYLE_WEBHOOK_SECRET_OLD from sink local"
            }
        ])
    );
    let fresh = by_key("fresh");
    assert_eq!(fresh["outcome"], "failed");
    assert!(
        fresh["error"].as_str().unwrap().contains("Bad request."),
        "{fresh:#}"
    );
    for secret in api.all_secrets() {
        assert!(!run.all().contains(&secret), "no secret in the output");
    }
    assert!(run.stderr.contains("Apply failed"), "{}", run.stderr);
}

/// Runs `kayle-sync ARGS > stdout.txt` on a terminal (util-linux `script` gives it one: stdin
/// and stderr are the terminal, stdout the file), answering `answer` to its prompt; returns
/// what the terminal showed and what the file holds. `CI` is unset unless `env` sets it.
fn on_a_terminal(
    project: &Project,
    api: &Api,
    args: &str,
    answer: &str,
    env: &[(&str, &str)],
) -> (String, String) {
    use std::io::Write;
    use std::process::Stdio;

    let template = project.command(api, &[]);
    let mut command = std::process::Command::new("script");
    command.env_remove("CI");
    for (name, value) in template.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    command.envs(env.iter().copied());
    let line = format!(
        "'{}' {args} > stdout.txt",
        template.get_program().to_str().unwrap()
    );
    let mut child = command
        .args(["-qec", &line, "/dev/null"])
        .current_dir(project.dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{answer}\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n");
    let file = std::fs::read_to_string(project.path("stdout.txt")).unwrap();
    (shown, file)
}

/// With stdout going to a file, whoever answers the prompt on the terminal still sees what
/// they are asked to approve: the plan, or the endpoint to rotate.
#[test]
fn a_prompt_shows_what_it_asks_about_when_stdout_is_a_file() {
    let api = Api::start();
    let project = Project::new();
    project.manifest(&manifest(&[disabled("orders")]));

    // `args` answered "no": `what` is in the file, and on the terminal before `question`.
    let declined = |args: &str, what: &str, question: &str| {
        let (shown, file) = on_a_terminal(&project, &api, args, "no", &[]);
        assert!(file.contains(what), "{file}");
        let asked = shown
            .find(question)
            .unwrap_or_else(|| panic!("no prompt: {shown}"));
        assert!(shown[..asked].contains(what), "{shown}");
        shown
    };

    let shown = declined("apply", "+ create orders", "Apply these changes?");
    assert!(
        shown.contains("Apply cancelled; nothing was changed."),
        "{shown}"
    );
    assert!(api.endpoints().is_empty(), "nothing created");

    project.apply(&api, &[]);
    declined(
        "rotate orders",
        "Rotating the signing secret of orders",
        "Rotate this signing secret?",
    );
}

/// On a terminal, apply keeps a live count of the endpoints done below its lines; in a CI log
/// (`CI` set), where each redraw would be a line of its own, it draws none.
#[test]
fn the_live_count_is_drawn_on_a_terminal_but_not_in_ci() {
    let count = "endpoints done";
    for (env, drawn) in [(&[][..], true), (&[("CI", "true")][..], false)] {
        let api = Api::start();
        // Every request takes a while: the count's 200 ms tick draws it more than once.
        api.emu.set_latency(std::time::Duration::from_millis(300));
        let project = Project::new();
        project.manifest(&manifest(&[disabled("orders"), disabled("billing")]));
        let (shown, file) = on_a_terminal(&project, &api, "apply --auto-approve", "", env);
        assert!(file.contains("Apply complete"), "{file}");
        assert!(shown.contains("Creation complete"), "{shown}");
        assert_eq!(shown.contains(count), drawn, "{env:?}: {shown}");
    }
}
