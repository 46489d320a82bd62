//! The `aws-secrets-manager` sink: the SDK's client follows no redirect, every call has a
//! time limit, and AWS credentials go only to AWS or to this machine.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;

use kayle_sync::model::SinkConfig;

use super::cli::{pull_request, run_within};
use super::hostile;
use crate::support::{Api, Run};

/// The variables the AWS SDK needs to sign a request, pointing at nothing real.
const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLEKAYLESYNC"),
    ("AWS_SECRET_ACCESS_KEY", "kayle-sync-test-secret-access-key"),
    ("AWS_SESSION_TOKEN", "kayle-sync-test-session-token"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

fn aws_sink(endpoint_url: &str) -> String {
    format!(
        "  aws:\n    type: aws-secrets-manager\n    region: us-east-1\n    \
         endpoint_url: {endpoint_url}\n"
    )
}

/// Plans a pull request that sends a secret to an AWS sink at `endpoint_url`, with AWS
/// credentials and `env` in the environment; the plan must end, warning that the sink could
/// not be read.
fn plan_with_aws_sink(endpoint_url: &str, env: &[(&str, &str)]) -> Run {
    let api = Api::start();
    let project = pull_request(&api, "aws", &aws_sink(endpoint_url));
    let mut command = project.command(&api, &["plan"]);
    command.envs(AWS_ENV).envs(env.iter().copied());
    let run = run_within(command, Duration::from_secs(60));
    run.expect(0);
    assert!(
        run.all().contains("sink aws could not be read"),
        "{}",
        run.all()
    );
    run
}

#[test]
fn the_aws_sdk_follows_no_redirect() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (elsewhere, received) = rt.block_on(hostile::recorder());
    let (endpoint_url, seen) = rt.block_on(hostile::redirecting_to(&elsewhere));
    plan_with_aws_sink(&endpoint_url, &[]);
    assert!(seen.requests() >= 1, "the sink was asked");
    assert_eq!(received.requests(), 0, "the redirect was followed");
}

#[test]
fn an_aws_endpoint_that_never_answers_times_out() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (endpoint_url, seen) = rt.block_on(hostile::silent());
    let run = plan_with_aws_sink(&endpoint_url, &[("KAYLE_SYNC_HTTP_TIMEOUT", "1s")]);
    assert!(run.all().contains("timeout"), "{}", run.all());
    assert!(seen.requests() >= 1, "the sink was asked");
}

#[test]
fn aws_credentials_go_only_to_aws_or_to_this_machine() {
    let build = |url: &str| {
        let config = SinkConfig::AwsSecretsManager {
            region: Some("us-east-1".into()),
            endpoint_url: Some(url.into()),
            prefix: String::new(),
        };
        kayle_sync::sink::build("aws", &config, Path::new("/")).map(|_| ())
    };
    for foreign in [
        "https://collector.example.com",
        // Hosted by AWS, but at an address its customer controls.
        "https://abc123.execute-api.us-east-1.amazonaws.com",
        "https://attacker-bucket.s3.amazonaws.com",
    ] {
        let err = build(foreign).unwrap_err().to_string();
        let host = foreign.trim_start_matches("https://");
        assert!(
            err.contains(&format!("{host} is not a Secrets Manager endpoint")),
            "{err}"
        );
    }
    let err = build("http://secretsmanager.us-east-1.amazonaws.com")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unencrypted"), "{err}");
    assert!(build("https://secretsmanager.us-east-1.amazonaws.com").is_ok());
    assert!(build("https://vpce-0a1b.secretsmanager.us-east-1.vpce.amazonaws.com").is_ok());
    assert!(build("http://127.0.0.1:4566").is_ok());
}

/// A server that refuses every request with an AWS-shaped error whose message quotes the
/// request's credential headers back, as a hostile endpoint on this machine can.
async fn echoing_credentials() -> (String, Arc<hostile::Seen>) {
    let seen = Arc::new(hostile::Seen::default());
    let router = Router::new().fallback(|request: Request| async move {
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let message = format!(
            "denied for session {} of key {}",
            header("x-amz-security-token"),
            header("authorization")
        );
        let body = serde_json::json!({"__type": "AccessDeniedException", "message": message});
        (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/x-amz-json-1.1")],
            body.to_string(),
        )
    });
    (hostile::serve(router, seen.clone()).await, seen)
}

#[test]
fn an_aws_endpoint_that_echoes_the_session_token_does_not_get_it_printed() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (endpoint_url, seen) = rt.block_on(echoing_credentials());
    let run = plan_with_aws_sink(&endpoint_url, &[]);
    assert!(seen.requests() >= 1, "the sink was asked");
    assert!(
        run.all().contains("denied for session"),
        "the server's message is shown: {}",
        run.all()
    );
    let (_, session_token) = AWS_ENV[2];
    assert!(
        !run.all().contains(session_token),
        "the session token was printed: {}",
        run.all()
    );
}

#[test]
fn a_pull_request_cannot_point_aws_credentials_at_an_aws_hosted_address() {
    let api = Api::start();
    for endpoint_url in [
        "https://abc123.execute-api.us-east-1.amazonaws.com",
        "https://attacker-bucket.s3.amazonaws.com",
    ] {
        let project = pull_request(&api, "aws", &aws_sink(endpoint_url));
        for command in ["validate", "plan"] {
            let mut run = project.command(&api, &[command]);
            run.envs(AWS_ENV);
            let run = run_within(run, Duration::from_secs(60));
            run.expect(1);
            assert!(
                run.stderr.contains("sinks.aws.endpoint_url: ")
                    && run.stderr.contains("is not a Secrets Manager endpoint"),
                "{command} {endpoint_url}: {}",
                run.all()
            );
            assert!(!run.all().contains(AWS_ENV[0].1), "{}", run.all());
        }
    }
}
