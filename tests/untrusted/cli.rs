//! The binary run on files a pull request wrote: what `plan` may and may not be made to do
//! with the credentials in its environment.

use std::process::Command;
use std::time::{Duration, Instant};

use super::hostile;
use crate::support::{self, Api, Project, Run};

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

#[test]
fn a_vault_sink_cannot_send_the_kayle_token_to_its_address() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (address, seen) = rt.block_on(hostile::recorder());
    let api = Api::start();
    let sink =
        format!("  v:\n    type: vault\n    address: {address}\n    token_env: KAYLE_API_KEY\n");
    let project = pull_request(&api, "v", &sink);
    for command in ["validate", "plan"] {
        let run = project.run(&api, &[command]);
        run.expect(1);
        assert!(
            run.stderr.contains(
                "kayle-sync.yaml:10:16: sinks.v.token_env: `KAYLE_API_KEY` holds the Kayle API token"
            ),
            "{}",
            run.all()
        );
    }
    assert_eq!(seen.requests(), 0, "the sink's address was called");
}

#[test]
fn the_api_token_variable_cannot_name_another_credential() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (url, seen) = rt.block_on(hostile::recorder());
    let api = Api::start();
    let project = Project::with_project_file(&support::PROJECT_FILE.replace(
        "  url: http://127.0.0.1:9\n",
        &format!("  url: {url}\n  token_env: VAULT_TOKEN\n"),
    ));
    project.manifest(
        "endpoints:\n  orders:\n    url: https://hooks.example.com/orders\n    enabled: false\n",
    );
    let mut command = project.command(&api, &["plan"]);
    // Not pinned: the URL is the project file's.
    command
        .env_remove("KAYLE_API_URL")
        .env("VAULT_TOKEN", "s.kayle-sync-test-vault-token");
    let run = support::finish(command);
    run.expect(1);
    assert!(
        run.stderr.contains(
            "api.token_env: the Kayle API token is read only from a variable starting with `KAYLE_`"
        ),
        "{}",
        run.all()
    );
    assert_eq!(seen.requests(), 0, "the API URL of the file was called");
}

#[test]
fn a_command_sink_cannot_read_our_tokens_from_our_environment() {
    const VAULT_TOKEN: &str = "s.kayle-sync-test-vault-token";
    let marks = tempfile::tempdir().unwrap();
    let out = marks.path().join("environ");
    // `sh` is started by kayle-sync, so its $PPID is kayle-sync's pid.
    let sinks = format!(
        "  ci:\n    type: command\n    command: [\"sh\", \"-c\", \"cat /proc/$PPID/environ > {} \
         2>/dev/null; cat > /dev/null; exit 0\"]\n  v:\n    type: vault\n    \
         address: http://127.0.0.1:1\n",
        out.display()
    );
    let api = Api::start();
    let project = Project::with_project_file(
        &support::PROJECT_FILE.replace("defaults:", &format!("{sinks}defaults:")),
    );
    project.manifest(
        "endpoints:\n  orders:\n    url: https://hooks.example.com/orders\n    enabled: false\n    \
         signing_secret:\n      sink: ci\n",
    );
    let run = project.run_with(
        &api,
        &["apply", "--auto-approve"],
        &[("VAULT_TOKEN", VAULT_TOKEN)],
    );
    run.expect(0);
    let environ = std::fs::read(&out).expect("the command ran");
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        !environ.contains(support::TOKEN),
        "the API token: {environ:?}"
    );
    assert!(
        !environ.contains(VAULT_TOKEN),
        "the Vault token: {environ:?}"
    );
}

#[test]
fn a_sink_file_that_is_a_named_pipe_is_a_plan_warning_not_a_hang() {
    let marks = tempfile::tempdir().unwrap();
    let fifo = marks.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    let api = Api::start();
    for kind in ["dotenv", "json"] {
        let sink = format!("  piped:\n    type: {kind}\n    path: {}\n", fifo.display());
        let project = pull_request(&api, "piped", &sink);
        // Nothing ever writes to the pipe: opening and reading it waits for good.
        let run = run_within(project.command(&api, &["plan"]), Duration::from_secs(30));
        run.expect(0);
        assert!(
            run.all().contains("sink piped could not be read"),
            "{kind}: {}",
            run.all()
        );
    }
}

/// `plan` of a pull request whose API is `url` (not pinned by `KAYLE_API_URL`), its token read
/// from `token_env`, with `env` in the environment and `manifest` as the manifest.
fn plan_unpinned(url: &str, token_env: &str, manifest: &str, env: &[(&str, &str)]) -> Run {
    let api = Api::start();
    let project = Project::with_project_file(&support::PROJECT_FILE.replace(
        "  url: http://127.0.0.1:9\n",
        &format!("  url: {url}\n  token_env: {token_env}\n"),
    ));
    project.manifest(manifest);
    let mut command = project.command(&api, &["plan"]);
    command
        .env_remove("KAYLE_API_URL")
        .envs(env.iter().copied());
    support::finish(command)
}

const WHSEC: &str = "whsec_kayle-sync-test-signing-secret-0123456789";

/// A manifest with one disabled endpoint, `orders`.
const ORDERS: &str =
    "endpoints:\n  orders:\n    url: https://hooks.example.com/orders\n    enabled: false\n";

#[test]
fn the_api_token_variable_cannot_name_a_variable_secrets_are_written_under() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (url, seen) = rt.block_on(hostile::recorder());
    let named = format!("{ORDERS}    signing_secret:\n      name: KAYLE_ORDERS_HOOK\n");
    let cases = [
        // The default names of signing secrets and generated private keys, declared or not.
        ("KAYLE_WEBHOOK_SECRET_ORDERS", ORDERS, "signing secrets"),
        ("KAYLE_WEBHOOK_SECRET_BILLING", ORDERS, "signing secrets"),
        ("KAYLE_WEBHOOK_PRIVATE_KEY_ORDERS", ORDERS, "private keys"),
        // A name a manifest gives a secret.
        (
            "KAYLE_ORDERS_HOOK",
            &named,
            "endpoints.orders.signing_secret.name",
        ),
    ];
    for (token_env, manifest, why) in cases {
        let run = plan_unpinned(&url, token_env, manifest, &[(token_env, WHSEC)]);
        run.expect(1);
        assert!(run.stderr.contains(token_env), "{token_env}: {}", run.all());
        assert!(run.stderr.contains(why), "{token_env}: {}", run.all());
        assert!(!run.all().contains(WHSEC), "{}", run.all());
    }
    assert_eq!(seen.requests(), 0, "the API URL of the file was called");
}

#[test]
fn a_signing_secret_or_a_key_is_never_sent_as_a_token() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (url, seen) = rt.block_on(hostile::recorder());
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
    for value in [WHSEC, pem] {
        // A name the project file's rules allow, holding what a previous step exported.
        let run = plan_unpinned(&url, "KAYLE_HOOK", ORDERS, &[("KAYLE_HOOK", value)]);
        run.expect(1);
        assert!(
            run.stderr.contains("KAYLE_HOOK holds") && run.stderr.contains("not a token"),
            "{}",
            run.all()
        );
        assert!(!run.all().contains("MIIEvQIB"), "{}", run.all());
        assert!(!run.all().contains(WHSEC), "{}", run.all());
    }
    assert_eq!(
        seen.requests(),
        0,
        "the API was sent a signing secret or a key"
    );

    // A vault sink's token likewise: the plan warns, and the sink's address is never called.
    let (address, seen) = rt.block_on(hostile::recorder());
    let api = Api::start();
    let sink =
        format!("  v:\n    type: vault\n    address: {address}\n    token_env: VAULT_HOOK\n");
    let project = pull_request(&api, "v", &sink);
    let run = project.run_with(&api, &["plan"], &[("VAULT_HOOK", WHSEC)]);
    run.expect(0);
    assert!(
        run.stderr.contains("sink v could not be read") && run.stderr.contains("not a token"),
        "{}",
        run.all()
    );
    assert!(!run.all().contains(WHSEC), "{}", run.all());
    assert_eq!(
        seen.requests(),
        0,
        "the vault sink was sent a signing secret"
    );
}
