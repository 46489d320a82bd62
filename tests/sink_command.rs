//! The `command` sink: the secret reaches the command on stdin only; timeouts and failures.

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kayle_sync::model::{SecretSink, SinkConfig};
use kayle_sync::sink;
use secrecy::SecretString;

const SECRET: &str = "whsec_Y29tbWFuZC1zaW5rLXNlY3JldC12YWx1ZQ==";

fn secret(value: &str) -> SecretString {
    SecretString::from(value.to_owned())
}

fn command_sink(argv: &[&str], timeout_seconds: u64) -> Arc<dyn SecretSink> {
    let config = SinkConfig::Command {
        command: argv.iter().map(|a| a.to_string()).collect(),
        timeout_seconds,
    };
    sink::build("ci", &config, Path::new("/")).unwrap()
}

#[tokio::test]
async fn command_gets_the_secret_on_stdin_and_nowhere_else() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let script = r#"cat > "$1/stdin"; printf '%s' "$*" > "$1/args"; env > "$1/env""#;
    let sink = command_sink(
        &["sh", "-c", script, "sh", out, "{name}", "--for={name}"],
        10,
    );

    sink.put("KAYLE_SECRET", &secret(SECRET)).await.unwrap();

    let read = |file: &str| std::fs::read_to_string(dir.path().join(file)).unwrap();
    assert_eq!(
        read("stdin"),
        SECRET,
        "stdin carries the exact value, then end of input"
    );
    assert_eq!(
        read("args"),
        format!("{out} KAYLE_SECRET --for=KAYLE_SECRET")
    );
    assert!(
        !read("env").contains(SECRET),
        "the secret leaked into the environment"
    );
    assert!(
        read("env").contains("PATH="),
        "the environment is inherited"
    );
}

#[tokio::test]
async fn command_sink_is_write_only() {
    let sink = command_sink(&["true"], 10);
    assert_eq!(sink.contains("ANY").await.unwrap(), None);
    assert_eq!(sink.name(), "ci");
}

#[tokio::test]
async fn command_timeout_kills_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = r#"echo $$ > "$1"; exec sleep 30"#;
    let sink = command_sink(&["sh", "-c", script, "sh", pid_file.to_str().unwrap()], 1);

    let started = Instant::now();
    let error = sink
        .put("X", &secret(SECRET))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(error.contains("did not finish within 1 seconds"), "{error}");

    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_owned();
    let stat = Path::new("/proc").join(&pid).join("stat");
    let deadline = Instant::now() + Duration::from_secs(5);
    // Gone, or a zombie waiting to be reaped: either way no longer running.
    while let Ok(stat) = std::fs::read_to_string(&stat) {
        let state = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        if state == "Z" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the command is still running (state {state})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn command_failure_shows_stderr_without_the_secret() {
    let script = r#"v=$(cat); echo "rejected $v for $1" >&2; echo "second line" >&2; exit 3"#;
    let sink = command_sink(&["sh", "-c", script, "sh", "{name}"], 10);

    let error = sink
        .put("KAYLE_SECRET", &secret(SECRET))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("ci: `sh` failed (exit status: 3)"),
        "{error}"
    );
    assert!(
        error.contains("rejected (sensitive) for KAYLE_SECRET\nsecond line"),
        "{error}"
    );
    assert!(!error.contains(SECRET), "{error}");
}

#[tokio::test]
async fn command_failure_shows_escape_codes_and_other_credentials_escaped() {
    let script = r#"printf 'auth \033]8;;http://evil\007x\033]8;;\007 Bearer kk_live_1\rforged\n' >&2; exit 1"#;
    let sink = command_sink(&["sh", "-c", script], 10);
    let error = sink
        .put("KEY", &secret(SECRET))
        .await
        .unwrap_err()
        .to_string();
    assert!(!error.contains(['\u{1b}', '\r', '\u{7}']), "{error:?}");
    assert!(!error.contains("kk_live"), "{error}");
    assert!(error.contains("auth \\u{1b}]8;;http://evil"), "{error}");
}

#[tokio::test]
async fn command_failure_scrubs_each_line_of_a_multi_line_secret() {
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
    let script = r#"sed -n 2p >&2; exit 1"#;
    let sink = command_sink(&["sh", "-c", script], 10);
    let error = sink.put("KEY", &secret(pem)).await.unwrap_err().to_string();
    assert!(
        !error.contains("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
        "{error}"
    );
    assert!(error.ends_with(": (sensitive)"), "{error}");
}

#[tokio::test]
async fn command_failure_bounds_long_stderr() {
    let script = r#"cat > /dev/null; head -c 200000 /dev/zero | tr '\0' x >&2; exit 1"#;
    let sink = command_sink(&["sh", "-c", script], 10);
    let error = sink
        .put("X", &secret(SECRET))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.len() < 2200, "error is {} bytes", error.len());
    assert!(
        error.ends_with("[stderr truncated]"),
        "{}",
        &error[error.len() - 40..]
    );
}

#[tokio::test]
async fn command_that_ignores_stdin_is_judged_by_its_exit_status() {
    let sink = command_sink(&["true"], 10);
    sink.put("X", &secret(&"x".repeat(1 << 20))).await.unwrap();
    let sink = command_sink(&["false"], 10);
    let error = sink
        .put("X", &secret(SECRET))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(error, "ci: `false` failed (exit status: 1)");
}

#[tokio::test]
async fn command_missing_program_and_empty_argv_are_errors() {
    let sink = command_sink(&["/nonexistent/kayle-sync-test-program", "{name}"], 10);
    let error = sink
        .put("X", &secret(SECRET))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("cannot run `/nonexistent/kayle-sync-test-program`"),
        "{error}"
    );

    let config = SinkConfig::Command {
        command: vec![],
        timeout_seconds: 10,
    };
    let error = sink::build("ci", &config, Path::new("/"))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(error, "ci: the command is empty");
}

#[tokio::test]
async fn command_timeout_kills_what_the_command_started() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    // The background sleep keeps stderr open and outlives its shell unless its group is killed.
    let script = r#"sleep 30 & echo $! > "$1"; wait"#;
    let sink = command_sink(&["sh", "-c", script, "sh", pid_file.to_str().unwrap()], 1);
    let error = sink
        .put("X", &secret(SECRET))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("did not finish"), "{error}");

    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_owned();
    let stat = Path::new("/proc").join(&pid).join("stat");
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Ok(stat) = std::fs::read_to_string(&stat) {
        let state = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        if state == "Z" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the background process survived (state {state})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn command_from_a_project_does_not_inherit_our_tokens() {
    use kayle_sync::model::{ApiConfig, ApiUrl, Project};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("env");
    let script = format!("cat > /dev/null; env > {}", out.display());
    // HOME is always set here, so it stands in for the API token's variable.
    let project = Project {
        dir: dir.path().to_path_buf(),
        api: ApiConfig {
            url: ApiUrl::Sandbox,
            token_env: "HOME".into(),
        },
        label_prefix: "kayle-sync:".into(),
        sinks: [(
            "ci".to_owned(),
            SinkConfig::Command {
                command: vec!["/bin/sh".into(), "-c".into(), script],
                timeout_seconds: 10,
            },
        )]
        .into(),
        reloads: Default::default(),
        default_sink: Some("ci".into()),
    };
    let sinks = sink::Sinks::from_project(&project).unwrap();
    sinks
        .get("ci")
        .unwrap()
        .put("KAYLE_SECRET", &secret(SECRET))
        .await
        .unwrap();
    let env = std::fs::read_to_string(&out).unwrap();
    assert!(env.contains("PATH="), "the rest of the environment is kept");
    assert!(!env.lines().any(|l| l.starts_with("HOME=")), "{env}");
}

#[tokio::test]
async fn command_failure_scrubs_encoded_echoes_of_the_secret() {
    let sink = command_sink(&["sh", "-c", "base64 >&2; exit 1"], 10);
    let error = sink
        .put("X", &secret("whsec_abc123"))
        .await
        .unwrap_err()
        .to_string();
    let encoded = "d2hzZWNfYWJjMTIz";
    assert!(!error.contains(encoded), "{error}");
    assert!(error.contains("(sensitive)"), "{error}");
}

/// What a failing command prints: credentials of many services, by shape, and the values of
/// credentials in the environment it inherited (which have no shape of their own).
const LEAKS: &str = "\
ghp ghp_6EfmMNw4D4LmwBH8DtOKJ0M2BeGwAheqhTBX
ghpat github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyzABCDEFGHIJ0123456789abcdefghijklmnopq
akia AKIA1YC952RZ9UY2Q5WL
asia ASIAIOSFODNN7EXAMPLE
awssecret 1RWoECqDNDmpnT6clg0JxkzVeQjSPpKHV0M/3Vka
jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.I6uEF7MMhrmZ0oQU3NGoegIF6Y0y716wwiM8dl2MMGZ
sk sk_live_rT0plas3ZBwDm1eBIhmW9kpW sk_test_4eC39HqLyjWDarjtT1zdp7dc
slack xoxb-862367499299-843486441839-zhkRFmUL4SvcSMmkFdDvdT8m xoxp-1234-5678-abcdefgh
kv password=hunter2 secret=s3cr3t-v token=t0k3n-v api_key=k3y-v
pem -----BEGIN RSA PRIVATE KEY-----
db_url https://db.example.com/x
";

/// The credential in each line of [`LEAKS`] (the part after its label).
const LEAKED: [&str; 19] = [
    "ghp_6EfmMNw4D4LmwBH8DtOKJ0M2BeGwAheqhTBX",
    "github_pat_11ABCDEFG0abcdefghijkl",
    "AKIA1YC952RZ9UY2Q5WL",
    "ASIAIOSFODNN7EXAMPLE",
    "1RWoECqDNDmpnT6clg0JxkzVeQjSPpKHV0M/3Vka",
    "eyJhbGciOiJIUzI1NiJ9",
    "I6uEF7MMhrmZ0oQU3NGoegIF6Y0y716wwiM8dl2MMGZ",
    "sk_live_rT0plas3ZBwDm1eBIhmW9kpW",
    "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
    "xoxb-862367499299",
    "xoxp-1234-5678-abcdefgh",
    "hunter2",
    "s3cr3t-v",
    "t0k3n-v",
    "k3y-v",
    "BEGIN RSA PRIVATE KEY",
    // From the environment.
    "plain-github-token-value",
    "plain-aws-secret-value",
    "plain-aws-session-value",
];

#[test]
fn a_failing_command_prints_no_credential_in_any_output() {
    let api = support::Api::start();
    let marks = tempfile::tempdir().unwrap();
    let leaks = marks.path().join("leaks.txt");
    std::fs::write(&leaks, LEAKS).unwrap();
    let script = format!(
        "cat > /dev/null; cat {} >&2; echo \"env $GITHUB_TOKEN $AWS_SECRET_ACCESS_KEY \
         $AWS_SESSION_TOKEN\" >&2; exit 1",
        leaks.display()
    );
    let sink = format!(
        "  echo:\n    type: command\n    command: [\"sh\", \"-c\", {}]\n",
        serde_json::to_string(&script).unwrap()
    );
    let project = support::Project::with_project_file(
        &support::PROJECT_FILE.replace("defaults:", &format!("{sink}defaults:")),
    );
    project.manifest(
        "endpoints:\n  c:\n    url: https://hooks.example.com/c\n    enabled: false\n    \
         signing_secret:\n      sink: echo\n",
    );
    let env = [
        ("GITHUB_TOKEN", "plain-github-token-value"),
        ("AWS_SECRET_ACCESS_KEY", "plain-aws-secret-value"),
        ("AWS_SESSION_TOKEN", "plain-aws-session-value"),
    ];
    for format in ["text", "json"] {
        let run = project.run_with(&api, &["apply", "--auto-approve", "--format", format], &env);
        run.expect(1);
        let all = run.all();
        // The command's output is shown, a redacted credential and all.
        assert!(all.contains("ghp (redacted)"), "{format}: {all}");
        assert!(
            all.contains("db_url https://db.example.com/x"),
            "{format}: {all}"
        );
        for leaked in LEAKED {
            assert!(!all.contains(leaked), "{format}: {leaked} in\n{all}");
        }
    }
}
