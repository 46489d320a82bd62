//! End to end: no signing secret and no generated private key ever appears in what the binary
//! prints or saves, with every log level on, over scenarios that create, rotate and recover
//! secrets and that fail (issue 5); and nothing a hostile server answers (an echo of the
//! credentials it was sent, escape sequences, markdown) reaches the output as it was.

use crate::hostile_support;
use crate::receiver_support;
use crate::support;

use std::collections::BTreeSet;
use std::time::Duration;

use hostile_support::{Server, assert_clean, assert_inert_markdown, web_id};
use kayle_emulator::{Fault, Route};
use support::{Api, Project, Run};

const PRIVATE_KEY: &str = "KAYLE_WEBHOOK_PRIVATE_KEY_IDENTITY";

fn manifest(orders_keys: &[&str], rotation: u64) -> String {
    let keys: String = orders_keys
        .iter()
        .map(|k| format!("      - key_id: {k}\n        public_key_file: keys/{k}.pem\n"))
        .collect();
    format!(
        "endpoints:
  orders:
    url: https://hooks.example.com/orders
    name: Orders
    encryption_keys:
{keys}    signing_secret:
      rotation: {rotation}
  identity:
    url: https://hooks.example.com/identity
    encryption_keys:
      - key_id: gen-1
        generate: true
"
    )
}

/// Everything printed or saved, and every secret that existed at any point.
struct Watch<'a> {
    api: &'a Api,
    project: &'a Project,
    outputs: Vec<(String, String)>,
    secrets: BTreeSet<String>,
}

impl Watch<'_> {
    /// Records the secrets that exist now.
    fn collect(&mut self) {
        self.secrets.extend(self.api.all_secrets());
        for name in [
            "KAYLE_WEBHOOK_SECRET_ORDERS",
            "KAYLE_WEBHOOK_SECRET_IDENTITY",
            PRIVATE_KEY,
        ] {
            self.secrets.extend(self.project.sink(name));
        }
    }

    /// Runs the binary with every log on, recording secrets before and after.
    fn run(&mut self, args: &[&str]) -> Run {
        self.collect();
        let run = self
            .project
            .run_with(self.api, args, &[("RUST_LOG", "trace,kayle_sync=trace")]);
        self.collect();
        self.outputs
            .push((format!("{args:?} stdout"), run.stdout.clone()));
        self.outputs
            .push((format!("{args:?} stderr"), run.stderr.clone()));
        run
    }

    fn save(&mut self, file: &str) {
        let text = std::fs::read_to_string(self.project.path(file)).unwrap();
        self.outputs.push((file.to_owned(), text));
    }

    /// What must never be printed: each secret, and each line of a private key's body.
    fn needles(&self) -> Vec<String> {
        let mut needles = Vec::new();
        for secret in &self.secrets {
            if secret.contains("PRIVATE KEY") {
                needles.extend(
                    secret
                        .lines()
                        .filter(|line| !line.starts_with("-----") && line.len() >= 32)
                        .map(str::to_owned),
                );
            } else {
                needles.push(secret.clone());
            }
        }
        needles
    }
}

#[test]
fn no_secret_or_private_key_appears_in_any_output() {
    let api = Api::start();
    let project = Project::new();
    project.public_key("keys/k1.pem");
    project.public_key("keys/k2.pem");
    project.manifest(&manifest(&["k1"], 0));
    let mut watch = Watch {
        api: &api,
        project: &project,
        outputs: Vec::new(),
        secrets: BTreeSet::new(),
    };

    // Create, through a saved plan, with one create answer lost (adopted, then revealed).
    watch.run(&["validate"]).expect(0);
    watch.run(&["plan"]).expect(0);
    watch.run(&["plan", "--format", "json"]).expect(0);
    watch.run(&["plan", "--format", "markdown"]).expect(0);
    watch.run(&["plan", "--out", "create.json"]).expect(0);
    watch.save("create.json");
    api.emu
        .inject(Route::CreateEndpoint, Fault::DropAfterCommit, 1);
    watch
        .run(&["apply", "--plan", "create.json", "--auto-approve"])
        .expect(0);
    watch.run(&["plan", "--detailed-exitcode"]).expect(0);

    // Rotate by counter, through every plan format and a saved plan.
    project.manifest(&manifest(&["k1"], 1));
    watch.run(&["plan", "--format", "json"]).expect(0);
    watch.run(&["plan", "--format", "markdown"]).expect(0);
    watch.run(&["plan", "--out", "rotate.json"]).expect(0);
    watch.save("rotate.json");
    watch
        .run(&["apply", "--plan", "rotate.json", "--auto-approve"])
        .expect(0);

    // Recover a secret missing from the sink; first with the reveal failing, then for real.
    let text: String = project
        .sink_text()
        .lines()
        .filter(|l| !l.starts_with("KAYLE_WEBHOOK_SECRET_IDENTITY="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(project.sink_path(), text).unwrap();
    watch.run(&["plan", "--format", "json"]).expect(0);
    api.emu.inject(
        Route::RevealSecret,
        Fault::Status {
            status: 503,
            retry_after_secs: Some(0),
        },
        5,
    );
    watch.run(&["apply", "--auto-approve"]).expect(1);
    watch.run(&["apply", "--auto-approve"]).expect(0);

    // Rotate a key, and a create that times out.
    project.manifest(&manifest(&["k1", "k2"], 2));
    watch.run(&["plan"]).expect(0);
    watch.run(&["apply", "--auto-approve"]).expect(0);
    project.manifest(&format!(
        "{}  billing:\n    url: https://hooks.example.com/billing\n    enabled: false\n",
        manifest(&["k1", "k2"], 2)
    ));
    api.emu.inject(
        Route::CreateEndpoint,
        Fault::Hang(Duration::from_millis(2300)),
        1,
    );
    watch.run(&["apply", "--auto-approve"]);
    // The hung create lands late; the next apply must see it to settle.
    api.until_landed();
    watch.run(&["apply", "--auto-approve"]).expect(0);
    watch.run(&["plan", "--detailed-exitcode"]).expect(0);
    api.assert_no_violations();

    // Probe, to a local receiver that takes anything (the endpoints' own hosts are not real):
    // the JWEs it got, and their parts, are never printed either.
    let receiver = receiver_support::Receiver::start(
        receiver_support::Mode::AcceptsAnything,
        receiver_support::Source {
            sink: project.sink_path(),
            secret_name: String::new(),
            private_key_name: String::new(),
            kid: String::new(),
        },
    );
    watch
        .run(&["probe", "orders", "--url", &receiver.url])
        .expect(1);
    watch
        .run(&[
            "probe",
            "identity",
            "--url",
            &receiver.url,
            "--format",
            "json",
        ])
        .expect(1);
    // Status, comparing every sink's secret with the one the API reveals.
    watch.run(&["status"]).expect(0);
    let status = watch.run(&["status", "--verify-secrets", "--format", "json"]);
    status.expect(0);
    assert!(
        status.stdout.contains("\"state\": \"current\""),
        "{}",
        status.stdout
    );
    let sent: Vec<String> = receiver.seen().into_iter().map(|s| s.body).collect();
    assert_eq!(sent.len(), 6, "both probes sent their three requests");
    for jwe in &sent {
        watch.secrets.insert(jwe.clone());
        // The encrypted key, the IV, the ciphertext and the tag, each on its own.
        watch.secrets.extend(
            jwe.split('.')
                .skip(1)
                .filter(|p| p.len() >= 16)
                .map(str::to_owned),
        );
    }

    // The scenario did what it is for: secrets were issued, rotated and logged about.
    let needles = watch.needles();
    assert!(
        watch
            .secrets
            .iter()
            .filter(|s| s.starts_with("whsec_"))
            .count()
            >= 5,
        "creates and rotations issued secrets: {}",
        watch.secrets.len()
    );
    assert!(
        watch.secrets.iter().any(|s| s.contains("PRIVATE KEY")),
        "a private key was generated"
    );
    let logs: String = watch
        .outputs
        .iter()
        .map(|(_, text)| text.as_str())
        .collect();
    assert!(logs.contains("TRACE"), "RUST_LOG=trace logged");
    assert!(logs.contains("(sensitive)"), "secret steps are shown");
    // The lines printed as each endpoint finishes are among the outputs searched.
    assert!(logs.contains("orders (whe_"), "endpoint results are shown");
    assert!(
        logs.contains("Creation complete"),
        "endpoint results are shown"
    );
    assert!(
        logs.contains("generating a 4096-bit RSA key for identity"),
        "the key generation is announced"
    );

    for (what, text) in &watch.outputs {
        assert!(
            !text.contains(support::TOKEN),
            "the API key appears in {what}"
        );
        for needle in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "a secret appears in {what} (value withheld)"
            );
        }
    }
}

/// Every kind of output a hostile Kayle API can reach: the plan in each format, apply's
/// failures, and export's manifests; through a URL with userinfo and a token the API echoes.
#[test]
fn a_hostile_api_cannot_leak_credentials_or_drive_the_terminal() {
    let server = Server::kayle();
    let project = Project::new();
    project.manifest(
        "endpoints:\n  web:\n    url: https://hooks.example.com/web\n  fresh:\n    \
         url: https://hooks.example.com/fresh\n",
    );
    let token = "opaque-kayle-token-5150";
    let url = server.url.clone();
    let needles = [token, "pw-in-url-42"];
    let run_at = |url: &str, args: &[&str]| {
        let mut command = project.command_at(url, args);
        command.env("KAYLE_API_KEY", token).env("RUST_LOG", "debug");
        support::finish(command)
    };
    let run = |args: &[&str]| run_at(&url, args);

    // A URL with userinfo is refused before anything is sent, and its password never shown.
    let with_userinfo = url.replace("http://", "http://kayle-user:pw-in-url-42@");
    let refused = run_at(&with_userinfo, &["plan"]);
    refused.expect(1);
    assert!(
        refused
            .stderr
            .contains("must not carry a user name or password"),
        "{}",
        refused.stderr
    );
    assert_clean("refused plan", &refused.stdout, &needles);
    assert_clean("refused plan", &refused.stderr, &needles);

    let plans = [
        run(&["plan", "--prune"]),
        run(&["plan", "--prune", "--format", "json"]),
        run(&["plan", "--prune", "--format", "markdown"]),
    ];
    let applied = run(&["apply", "--auto-approve", "--prune"]);
    let applied_json = run(&["apply", "--auto-approve", "--prune", "--format", "json"]);
    let exported = run(&["export"]);
    let rotated = run(&["rotate", "web", "--auto-approve"]);
    let statuses = [run(&["status"]), run(&["status", "--format", "json"])];
    for (what, run) in [
        ("plan", &plans[0]),
        ("plan json", &plans[1]),
        ("plan markdown", &plans[2]),
        ("apply", &applied),
        ("apply json", &applied_json),
        ("export", &exported),
        ("rotate", &rotated),
        ("status", &statuses[0]),
        ("status json", &statuses[1]),
    ] {
        assert_clean(what, &run.stdout, &needles);
        assert_clean(what, &run.stderr, &needles);
    }

    // The scenario did what it is for: the plan showed the hostile values, escaped.
    plans[0].expect(0);
    assert!(
        plans[0].stdout.contains("\\u{1b}]8;;http://evil"),
        "{}",
        plans[0].stdout
    );
    let json: serde_json::Value = serde_json::from_str(&plans[1].stdout).unwrap();
    assert_eq!(json["changes"].as_array().unwrap().len(), 4, "{json:#}");
    let code = assert_inert_markdown(&plans[2].stdout);
    let shown_id = web_id().split('\u{1b}').next().unwrap().to_owned();
    assert!(
        code.iter().any(|span| span.starts_with(&shown_id)),
        "the id is one code span: {code:#?}"
    );
    // Each write was refused with an echo of the request, and each refusal is shown.
    applied.expect(1);
    assert!(
        applied.stderr.matches("FAILED").count() >= 2,
        "{}",
        applied.stderr
    );
    assert!(applied.stderr.contains("(redacted)"), "{}", applied.stderr);
    // In JSON too, what the server said cannot drive the terminal `jq -r` prints it to.
    applied_json.expect(1);
    let document: serde_json::Value = serde_json::from_str(&applied_json.stdout).unwrap();
    let mut strings = Vec::new();
    collect_strings(&document["applied"], &mut strings);
    assert!(
        strings.iter().any(|s| s.contains("\\u{1b}")),
        "{document:#}"
    );
    for text in &strings {
        assert!(!text.contains(['\u{1b}', '\r', '\u{7}']), "{text:?}");
    }
    rotated.expect(1);
    assert!(
        rotated
            .stdout
            .contains("Rotating the signing secret of web (whe_`!["),
        "{}",
        rotated.stdout
    );
    exported.expect(0);
    assert!(
        exported.stdout.contains("adopt: \"whe_dashboard"),
        "{}",
        exported.stdout
    );
    // The hostile key id is shown escaped, and its failed delivery counted.
    statuses[0].expect(1);
    assert!(
        statuses[0].stdout.contains("k`\\u{1b}]8;;http://evil"),
        "{}",
        statuses[0].stdout
    );
    assert!(
        statuses[0]
            .stdout
            .contains("web: 1 delivery(ies) failed after every attempt"),
        "{}",
        statuses[0].stdout
    );
    let report: serde_json::Value = serde_json::from_str(&statuses[1].stdout).unwrap();
    let web = report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "web")
        .unwrap();
    assert_eq!(
        web["deliveries"]["last_failure"]["status_code"], 500,
        "{report:#}"
    );
}

/// A project whose one sink is `sink` (YAML under `sinks:`).
fn project_with_sink(sink: &str) -> Project {
    let project = Project::with_project_file(&format!(
        "api:\n  url: http://127.0.0.1:9\nsinks:\n{sink}defaults:\n  signing_secret:\n    \
         sink: store\n"
    ));
    project.manifest("endpoints:\n  web:\n    url: https://hooks.example.com/web\n");
    project
}

/// Apply (whose check of the sink, before any API write, fails), then plan in two formats (whose sink read fails): what the
/// store said is shown, without the secret, the store's credentials, `extra` or raw control
/// codes. Returns the three runs.
fn assert_store_refusals_are_clean(
    project: &Project,
    api: &Api,
    env: &[(&str, &str)],
    extra: &[&str],
) -> [Run; 3] {
    let applied = project.run_with(api, &["apply", "--auto-approve"], env);
    let plans = [
        project.run_with(api, &["plan"], env),
        project.run_with(api, &["plan", "--format", "markdown"], env),
    ];
    let secrets = api.all_secrets();
    let mut needles: Vec<&str> = secrets.iter().map(String::as_str).collect();
    needles.extend(extra);
    for (what, run) in [
        ("apply", &applied),
        ("plan", &plans[0]),
        ("markdown", &plans[1]),
    ] {
        assert_clean(what, &run.stdout, &needles);
        assert_clean(what, &run.stderr, &needles);
    }
    applied.expect(1);
    assert!(
        applied.stderr.contains("error: sink store: "),
        "{}",
        applied.stderr
    );
    assert!(api.endpoints().is_empty(), "nothing was created");
    // Nothing is managed, so the plans do not read the sink.
    plans[0].expect(0);
    plans[1].expect(0);
    assert_inert_markdown(&plans[1].stdout);
    let [plan, markdown] = plans;
    [applied, plan, markdown]
}

#[test]
fn a_vault_echoing_the_request_shows_neither_the_secret_nor_its_token() {
    let vault = Server::vault();
    let project = project_with_sink(&format!(
        "  store:\n    type: vault\n    address: {}\n    token_env: VAULT_HOSTILE_TOKEN\n",
        vault.url
    ));
    let api = Api::start();
    let token = "opaque-vault-token-8086";
    let env = [("VAULT_HOSTILE_TOKEN", token)];
    assert_store_refusals_are_clean(&project, &api, &env, &[token]);
}

#[cfg(feature = "aws")]
#[test]
fn aws_errors_show_the_service_message_not_the_raw_response() {
    let aws = Server::aws();
    let project = project_with_sink(&format!(
        "  store:\n    type: aws-secrets-manager\n    region: us-east-1\n    \
         endpoint_url: {}\n    prefix: kayle/\n",
        aws.url
    ));
    let api = Api::start();
    let key = "hostile-aws-secret-key-2718";
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIDHOSTILE"),
        ("AWS_SECRET_ACCESS_KEY", key),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/nonexistent"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
    ];
    let runs = assert_store_refusals_are_clean(
        &project,
        &api,
        &env,
        &[key, "RAW-HEADER", "RAW-BODY-FIELD"],
    );
    // The echoed request signature is not shown either.
    for run in &runs {
        let all = run.all();
        for (at, _) in all.match_indices("Signature=") {
            let shown = &all[at + "Signature=".len()..];
            assert!(shown.starts_with("(redacted)"), "{all}");
        }
    }
}

/// Every string in `value`, object keys included.
fn collect_strings(value: &serde_json::Value, into: &mut Vec<String>) {
    match value {
        serde_json::Value::String(text) => into.push(text.clone()),
        serde_json::Value::Array(items) => {
            items.iter().for_each(|item| collect_strings(item, into))
        }
        serde_json::Value::Object(map) => {
            for (name, item) in map {
                into.push(name.clone());
                collect_strings(item, into);
            }
        }
        _ => {}
    }
}
