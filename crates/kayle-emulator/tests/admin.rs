//! The `/_emulator/` admin API: scripting faults and reading state over HTTP, and turning the
//! whole admin API off.

mod common;

use std::time::{Duration, Instant};

use common::{Api, TOKEN};
use kayle_emulator::Config;
use serde_json::{Value, json};

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
        .json(
            &json!({"route": "list_endpoints", "fault": {"kind": "hang", "ms": 3000}, "times": 3}),
        )
        .send()
        .await
        .unwrap();
    api.client.delete(admin("faults")).send().await.unwrap();
    let started = Instant::now();
    api.get("/v1/webhooks/endpoints").await;
    assert!(started.elapsed() < Duration::from_secs(2), "faults cleared");
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
async fn admin_api_holds_requests_to_land_late_and_counts_them() {
    let api = Api::start().await;
    let admin = |path: &str| api.url(&format!("/_emulator/{path}"));
    let held = || async {
        let body: Value = api
            .client
            .get(admin("held"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["held"].as_u64().unwrap()
    };
    let id = api.create(json!({"url": "https://example.com/a"})).await;
    let before = api.emulator.signing_secret(&id).unwrap();
    let r = api
        .client
        .post(admin("faults"))
        .json(&json!({"route": "rotate_secret", "fault": {"kind": "land_late", "ms": 300, "hang_up": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(held().await, 0);
    let lost = api
        .client
        .post(api.url(&format!(
            "/v1/webhooks/endpoints/{id}/signing-secret/rotate"
        )))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send()
        .await;
    assert!(lost.is_err(), "never answered");
    assert_eq!(held().await, 1);
    api.client
        .post(admin("faults"))
        .json(&json!({"route": "rotate_secret", "fault": {"kind": "land_late", "ms": 600000}}))
        .send()
        .await
        .unwrap();
    let timed_out = api
        .client
        .post(api.url(&format!(
            "/v1/webhooks/endpoints/{id}/signing-secret/rotate"
        )))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(timed_out.expect_err("held").is_timeout());
    assert_eq!(held().await, 2);
    let r = api.client.post(admin("held/land")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let started = Instant::now();
    while held().await > 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "never landed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_ne!(api.emulator.signing_secret(&id).unwrap(), before, "landed");

    let r = api
        .client
        .post(admin("faults"))
        .json(&json!({"route": "list_endpoints", "fault": {"kind": "barrier", "count": 2, "timeout_ms": 300}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let started = Instant::now();
    assert_eq!(api.get("/v1/webhooks/endpoints").await.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "waited for a second listing until the deadline"
    );
}

#[tokio::test]
async fn without_admin_routes_every_admin_route_is_not_found() {
    let mut config = Config::test(TOKEN);
    config.admin_routes = false;
    let api = Api::with_config(config).await;
    let id = api.create(json!({"url": "https://example.com/a"})).await;
    let admin = |path: &str| api.url(&format!("/_emulator/{path}"));
    for path in ["state", "stats", "violations", "held"] {
        let r = api.client.get(admin(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "GET {path}");
        let text = r.text().await.unwrap();
        assert!(!text.contains("whsec_"), "{text}");
    }
    let writes = [
        (
            "faults",
            json!({"route": "create_endpoint", "fault": {"kind": "status", "status": 500}}),
        ),
        ("latency", json!({"ms": 1000})),
        (
            "chaos",
            json!({"seed": 1, "probability": 1.0, "faults": [{"kind": "status", "status": 500}]}),
        ),
        (
            "frozen",
            json!({"organization_id": kayle_emulator::TEST_ORGANIZATION_ID, "frozen": true}),
        ),
    ];
    for (path, body) in writes {
        let r = api
            .client
            .post(admin(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "POST {path}");
    }
    let r = api.client.post(admin("held/land")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404, "POST held/land");
    for path in ["faults", "stats"] {
        let r = api.client.delete(admin(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "DELETE {path}");
    }
    // None of those took effect, and the API still serves.
    let started = Instant::now();
    let r = api.get(&format!("/v1/webhooks/endpoints/{id}")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "no latency was set"
    );
    api.create(json!({"url": "https://example.com/b"})).await;
    assert_eq!(api.emulator.stats().total, 3, "stats were not reset");
}
