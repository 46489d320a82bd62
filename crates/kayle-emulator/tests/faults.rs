//! Fault injection, latency, chaos, counters, and the `/_emulator/` admin API.

mod common;

use std::time::{Duration, Instant};

use common::Api;
use kayle_emulator::{Fault, Route};
use serde_json::json;

#[tokio::test]
async fn status_fault_answers_without_committing() {
    let api = Api::start().await;
    api.emulator.inject(
        Route::CreateEndpoint,
        Fault::Status {
            status: 429,
            retry_after_secs: Some(3),
        },
        1,
    );
    let response = api
        .client
        .post(api.url("/v1/webhooks/endpoints"))
        .header("Authorization", "Bearer kk_test")
        .header("Content-Type", "application/json")
        .body(r#"{"url":"https://example.com/a"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    let r = common::reply(response).await;
    assert_eq!(r.body["data"], serde_json::Value::Null);
    assert_eq!(r.body["error"]["code"], "TOO_MANY_REQUESTS");
    assert!(r.body["error"]["hint"].is_string() && r.body["error"]["docs"].is_string());
    assert!(api.emulator.endpoints().is_empty());
    // Only the next call was faulted.
    api.create(json!({"url": "https://example.com/a"})).await;
    assert_eq!(api.emulator.endpoints().len(), 1);
}

#[tokio::test]
async fn status_fault_applies_the_given_number_of_times() {
    let api = Api::start().await;
    let fault = Fault::Status {
        status: 503,
        retry_after_secs: None,
    };
    api.emulator.inject(Route::ListEndpoints, fault, 2);
    let statuses = [
        api.get("/v1/webhooks/endpoints").await.status,
        api.get("/v1/webhooks/endpoints").await.status,
        api.get("/v1/webhooks/endpoints").await.status,
    ];
    assert_eq!(statuses, [503, 503, 200]);
}

#[tokio::test]
async fn drop_after_commit_commits_then_closes_without_a_response() {
    let api = Api::start().await;
    api.emulator
        .inject(Route::CreateEndpoint, Fault::DropAfterCommit, 1);
    let result = api
        .client
        .post(api.url("/v1/webhooks/endpoints"))
        .header("Authorization", "Bearer kk_test")
        .header("Content-Type", "application/json")
        .body(r#"{"url":"https://example.com/lost"}"#)
        .send()
        .await;
    let error = result.expect_err("the response must be lost");
    assert!(error.status().is_none(), "{error:?}");
    assert!(!error.is_timeout(), "{error:?}");
    let endpoints = api.emulator.endpoints();
    assert_eq!(endpoints.len(), 1, "the create happened");
    assert_eq!(endpoints[0]["url"], "https://example.com/lost");
    // The server keeps serving afterwards.
    assert_eq!(api.get("/v1/webhooks/endpoints").await.status, 200);
}

#[tokio::test]
async fn hang_trips_a_client_timeout_and_then_answers_normally() {
    let api = Api::start().await;
    api.emulator.inject(
        Route::GetEndpoint,
        Fault::Hang(Duration::from_millis(1500)),
        1,
    );
    let id = api.create(json!({"url": "https://example.com/a"})).await;
    let result = api
        .client
        .get(api.url(&format!("/v1/webhooks/endpoints/{id}")))
        .header("Authorization", "Bearer kk_test")
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(result.expect_err("timeout").is_timeout());
    api.emulator.inject(
        Route::GetEndpoint,
        Fault::Hang(Duration::from_millis(300)),
        1,
    );
    let started = Instant::now();
    let r = api.get(&format!("/v1/webhooks/endpoints/{id}")).await;
    assert_eq!(r.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn latency_and_peak_in_flight() {
    let api = Api::start().await;
    api.emulator.set_latency(Duration::from_millis(200));
    let started = Instant::now();
    let list = "/v1/webhooks/endpoints";
    let (a, b, c, d) = tokio::join!(api.get(list), api.get(list), api.get(list), api.get(list));
    assert!([a, b, c, d].iter().all(|r| r.status == 200));
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(
        elapsed < Duration::from_millis(790),
        "ran concurrently: {elapsed:?}"
    );
    let stats = api.emulator.stats();
    assert_eq!(stats.peak_in_flight, 4);
    assert_eq!(stats.requests[&Route::ListEndpoints], 4);
    assert_eq!(stats.total, 4);
    api.emulator.reset_stats();
    assert_eq!(api.emulator.stats().total, 0);
}

async fn chaos_outcomes(seed: u64) -> Vec<u16> {
    let api = Api::start().await;
    let fault = Fault::Status {
        status: 500,
        retry_after_secs: None,
    };
    api.emulator.chaos(seed, 0.5, vec![fault]);
    let mut statuses = Vec::new();
    for i in 0..20 {
        statuses.push(
            api.post(
                "/v1/webhooks/endpoints",
                json!({"url": format!("https://example.com/{i}")}),
            )
            .await
            .status,
        );
        assert_eq!(
            api.get("/v1/webhooks/endpoints").await.status,
            200,
            "reads are spared"
        );
    }
    statuses
}

#[tokio::test]
async fn chaos_is_deterministic_by_seed_and_spares_reads() {
    let a = chaos_outcomes(42).await;
    assert_eq!(a, chaos_outcomes(42).await);
    assert!(a.contains(&500) && a.contains(&200), "{a:?}");
    let api = Api::start().await;
    api.emulator.chaos(1, 1.0, vec![Fault::DropAfterCommit]);
    api.emulator.chaos(1, 0.0, vec![Fault::DropAfterCommit]);
    api.create(json!({"url": "https://example.com/a"})).await;
    api.emulator.chaos(1, 1.0, vec![Fault::DropAfterCommit]);
    api.emulator.clear_faults();
    api.create(json!({"url": "https://example.com/b"})).await;
}

#[tokio::test]
async fn admin_api_scripts_faults_and_reads_state() {
    let api = Api::start().await;
    let admin = |path: &str| api.url(&format!("/_emulator/{path}"));
    let r = api
        .client
        .post(admin("faults"))
        .json(&json!({"route": "create_endpoint", "fault": {"kind": "status", "status": 503, "retry_after_secs": 1}, "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = api
        .post(
            "/v1/webhooks/endpoints",
            json!({"url": "https://example.com/a"}),
        )
        .await;
    assert_eq!(r.status, 503);
    api.client
        .post(admin("faults"))
        .json(&json!({"route": "create_endpoint", "fault": {"kind": "drop_after_commit"}}))
        .send()
        .await
        .unwrap();
    assert!(
        api.client
            .post(api.url("/v1/webhooks/endpoints"))
            .header("Authorization", "Bearer kk_test")
            .header("Content-Type", "application/json")
            .body(r#"{"url":"https://example.com/lost"}"#)
            .send()
            .await
            .is_err()
    );
    api.client
        .post(admin("faults"))
        .json(&json!({"route": "list_endpoints", "fault": {"kind": "hang", "ms": 50}, "times": 3}))
        .send()
        .await
        .unwrap();
    api.client.delete(admin("faults")).send().await.unwrap();
    let started = Instant::now();
    api.get("/v1/webhooks/endpoints").await;
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "faults cleared"
    );
    api.client
        .post(admin("latency"))
        .json(&json!({"ms": 60}))
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    api.get("/v1/webhooks/endpoints").await;
    assert!(started.elapsed() >= Duration::from_millis(60));
    let r = api
        .client
        .post(admin("chaos"))
        .json(
            &json!({"seed": 3, "probability": 1.0, "faults": [{"kind": "status", "status": 500}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        api.post(
            "/v1/webhooks/endpoints",
            json!({"url": "https://example.com/c"})
        )
        .await
        .status,
        500
    );
    let stats: serde_json::Value = api
        .client
        .get(admin("stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requests"]["create_endpoint"], 3);
    assert_eq!(stats["requests"]["list_endpoints"], 2);
    let state: serde_json::Value = api
        .client
        .get(admin("state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoints = state["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0]["endpoint"]["url"], "https://example.com/lost");
    assert!(
        endpoints[0]["signing_secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    assert_eq!(endpoints[0]["keys"], json!([]));
    let v: serde_json::Value = api
        .client
        .get(admin("violations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["violations"].as_array().unwrap().len(),
        1,
        "created enabled without a key"
    );
    let r = api
        .client
        .post(admin("faults"))
        .json(&json!({"route": "nope", "fault": {"kind": "drop_after_commit"}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
}

#[tokio::test]
async fn a_hung_create_still_commits_after_the_client_gave_up() {
    let api = Api::start().await;
    api.emulator.inject(
        Route::CreateEndpoint,
        Fault::Hang(Duration::from_millis(300)),
        1,
    );
    let result = api
        .client
        .post(api.url("/v1/webhooks/endpoints"))
        .header("Authorization", "Bearer kk_test")
        .header("Content-Type", "application/json")
        .body(r#"{"url":"https://example.com/slow"}"#)
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(result.expect_err("timeout").is_timeout());
    assert!(api.emulator.endpoints().is_empty(), "not yet");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        api.emulator.endpoints().len(),
        1,
        "the server finished the work"
    );
}

#[test]
fn token_debug_hides_the_value() {
    let config = kayle_emulator::Config::test("kk_secret_value");
    let shown = format!("{config:?}");
    assert!(!shown.contains("kk_secret_value"), "{shown}");
}

#[tokio::test]
async fn drop_after_commit_also_loses_the_response_under_axum_serve() {
    let emulator = kayle_emulator::Emulator::new(kayle_emulator::Config::test("kk_test")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = emulator.router();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    emulator.inject(Route::CreateEndpoint, Fault::DropAfterCommit, 1);
    let result = reqwest::Client::new()
        .post(format!("http://{addr}/v1/webhooks/endpoints"))
        .header("Authorization", "Bearer kk_test")
        .header("Content-Type", "application/json")
        .body(r#"{"url":"https://example.com/x"}"#)
        .send()
        .await;
    let error = result.expect_err("no response, not even a status line");
    assert!(error.status().is_none() && !error.is_timeout(), "{error:?}");
    assert_eq!(emulator.endpoints().len(), 1);
    server.abort();
}
