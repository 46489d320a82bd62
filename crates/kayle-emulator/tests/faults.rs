//! Fault injection, latency, chaos and counters, through the library API.

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

/// A rotation whose request is sent with `timeout` and held by the next fault on the route.
async fn rotate(api: &Api, id: &str, timeout: Duration) -> reqwest::Result<reqwest::Response> {
    api.client
        .post(api.url(&format!(
            "/v1/webhooks/endpoints/{id}/signing-secret/rotate"
        )))
        .header("Authorization", "Bearer kk_test")
        .timeout(timeout)
        .send()
        .await
}

/// Polls until no request is held any more.
async fn until_landed(api: &Api) {
    let started = Instant::now();
    while api.emulator.held() > 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "never landed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_late_rotation_lands_after_a_later_one_and_replaces_its_secret() {
    let api = Api::start().await;
    let id = api.create(json!({"url": "https://example.com/a"})).await;
    let before = api.emulator.signing_secret(&id).unwrap();
    api.emulator.inject(
        Route::RotateSecret,
        Fault::LandLate {
            after: Duration::from_secs(2),
            hang_up: true,
        },
        1,
    );
    let error = rotate(&api, &id, Duration::from_secs(30))
        .await
        .expect_err("a held request is never answered");
    assert!(error.status().is_none() && !error.is_timeout(), "{error:?}");
    assert_eq!(api.emulator.held(), 1, "hung up before it landed");
    assert_eq!(api.emulator.signing_secret(&id).unwrap(), before, "not yet");

    // A rotation sent meanwhile succeeds, and its secret is the one the client learns.
    let r = api
        .post(
            &format!("/v1/webhooks/endpoints/{id}/signing-secret/rotate"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let learned = r.body["data"]["signing_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(api.emulator.signing_secret(&id).unwrap(), learned);

    until_landed(&api).await;
    let now = api.emulator.signing_secret(&id).unwrap();
    assert_ne!(
        now, learned,
        "the late rotation replaced the secret when it landed"
    );
    assert_ne!(now, before);
}

#[tokio::test]
async fn a_late_key_lands_as_the_active_one_and_outlives_the_client_timeout() {
    let api = Api::start().await;
    let id = api
        .create(json!({"url": "https://example.com/a", "enabled": false}))
        .await;
    api.emulator.inject(
        Route::CreateKey,
        Fault::LandLate {
            after: Duration::from_millis(500),
            hang_up: false,
        },
        1,
    );
    let result = api
        .client
        .post(api.url(&format!("/v1/webhooks/endpoints/{id}/keys")))
        .header("Authorization", "Bearer kk_test")
        .json(&common::key_body("late", 2048))
        .timeout(Duration::from_millis(150))
        .send()
        .await;
    assert!(result.expect_err("the client gives up").is_timeout());
    assert!(api.emulator.keys(&id).is_empty(), "held, not carried out");
    api.add_key(&id, "meanwhile").await;

    until_landed(&api).await;
    let keys = api.emulator.keys(&id);
    let active: Vec<_> = keys
        .iter()
        .map(|k| (k["key_id"].as_str().unwrap(), k["is_active"] == true))
        .collect();
    assert_eq!(
        active,
        [("late", true), ("meanwhile", false)],
        "made when it landed, it deactivated the one active then"
    );
}

#[tokio::test]
async fn a_late_create_makes_the_endpoint_when_it_lands_and_the_client_sees_no_answer() {
    let api = Api::start().await;
    api.emulator.inject(
        Route::CreateEndpoint,
        Fault::LandLate {
            after: Duration::from_millis(300),
            hang_up: false,
        },
        1,
    );
    let started = Instant::now();
    let error = api
        .client
        .post(api.url("/v1/webhooks/endpoints"))
        .header("Authorization", "Bearer kk_test")
        .json(&json!({"url": "https://example.com/late"}))
        .send()
        .await
        .expect_err("the connection closes without an answer");
    assert!(error.status().is_none() && !error.is_timeout(), "{error:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "kept open until it landed"
    );
    let meanwhile = api
        .create(json!({"url": "https://example.com/meanwhile"}))
        .await;
    let endpoints = api.emulator.endpoints();
    assert_eq!(endpoints.len(), 2);
    assert_eq!(endpoints[0]["id"], meanwhile, "newest first");
    assert_eq!(endpoints[1]["url"], "https://example.com/late");
    assert_eq!(api.emulator.held(), 0);
}

#[tokio::test]
async fn held_requests_land_at_once_when_told() {
    let api = Api::start().await;
    let id = api.create(json!({"url": "https://example.com/a"})).await;
    let before = api.emulator.signing_secret(&id).unwrap();
    let hold = Fault::LandLate {
        after: Duration::from_secs(600),
        hang_up: true,
    };
    api.emulator.inject(Route::RotateSecret, hold.clone(), 2);
    api.emulator.inject(Route::CreateEndpoint, hold, 1);
    assert!(rotate(&api, &id, Duration::from_secs(5)).await.is_err());
    assert!(rotate(&api, &id, Duration::from_secs(5)).await.is_err());
    let r = api
        .client
        .post(api.url("/v1/webhooks/endpoints"))
        .header("Authorization", "Bearer kk_test")
        .json(&json!({"url": "https://example.com/b"}))
        .send()
        .await;
    assert!(r.is_err());
    assert_eq!(api.emulator.held(), 3);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(api.emulator.signing_secret(&id).unwrap(), before, "held");
    let started = Instant::now();
    api.emulator.land_held();
    until_landed(&api).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_ne!(api.emulator.signing_secret(&id).unwrap(), before);
    assert_eq!(api.emulator.endpoints().len(), 2, "the create landed too");
}

#[tokio::test]
async fn a_barrier_holds_calls_until_all_have_arrived() {
    let api = Api::start().await;
    api.emulator.inject(
        Route::ListEndpoints,
        Fault::Barrier {
            count: 2,
            timeout: Duration::from_secs(30),
        },
        1,
    );
    let first = tokio::spawn({
        let client = api.client.clone();
        let url = api.url("/v1/webhooks/endpoints");
        async move {
            let response = client
                .get(url)
                .header("Authorization", "Bearer kk_test")
                .send()
                .await
                .unwrap();
            (Instant::now(), common::reply(response).await)
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!first.is_finished(), "the first call waits for the second");
    // Other routes are not held.
    api.create(json!({"url": "https://example.com/a"})).await;
    let second_sent = Instant::now();
    let second = api.get("/v1/webhooks/endpoints").await;
    let (first_answered, first) = first.await.unwrap();
    assert_eq!((first.status, second.status), (200, 200));
    assert!(
        first_answered >= second_sent,
        "answered once the second came"
    );
    for listed in [first, second] {
        let data = listed.body["data"].as_array().unwrap().len();
        assert_eq!(data, 1, "carried out when released, after the create");
    }
    // Only those two: the third goes straight through (well before the 30 s deadline).
    let started = Instant::now();
    assert_eq!(api.get("/v1/webhooks/endpoints").await.status, 200);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_barrier_never_filled_lets_its_calls_go_at_the_deadline() {
    let api = Api::start().await;
    api.emulator.inject(
        Route::ListEndpoints,
        Fault::Barrier {
            count: 3,
            timeout: Duration::from_secs(2),
        },
        1,
    );
    let started = Instant::now();
    assert_eq!(api.get("/v1/webhooks/endpoints").await.status, 200);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1900), "{waited:?}");
    let started = Instant::now();
    assert_eq!(api.get("/v1/webhooks/endpoints").await.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "an expired barrier holds nobody"
    );
}
