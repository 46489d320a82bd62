//! Events and deliveries: what a receiver gets, the retry schedule with a time scale, the
//! statuses a delivery goes through, the listing, and retry and replay with their 409s.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::stub_receiver::{Received, StubReceiver};
use common::{Api, zod_paths};
use kayle_emulator::{RETRY_SCHEDULE, TEST_ORGANIZATION_ID, wire};
use serde_json::{Value, json};

const SUCCEEDED: &str = "verification.session.succeeded";

/// An enabled endpoint at `url` with a key `k1`; returns its id.
async fn endpoint_with_key(api: &Api, url: &str) -> String {
    let id = api
        .create(json!({"url": url, "enabled": false, "undelivered_payload_retention_hours": 24}))
        .await;
    api.add_key(&id, "k1").await;
    let r = api
        .patch(
            &format!("/v1/webhooks/endpoints/{id}"),
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    id
}

fn fire(api: &Api) -> (String, Vec<String>) {
    let fired = api
        .emulator
        .fire_event(TEST_ORGANIZATION_ID, SUCCEEDED, None)
        .unwrap();
    (fired.event_id, fired.delivery_ids)
}

/// The delivery as the listing shows it.
async fn delivery(api: &Api, id: &str) -> Value {
    let r = api.get("/v1/webhooks/deliveries?limit=100").await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no delivery {id} in {}", r.body))
}

/// Waits (at most 20 s) until the delivery has `status`.
async fn until_status(api: &Api, id: &str, status: &str) -> Value {
    let started = std::time::Instant::now();
    loop {
        let found = delivery(api, id).await;
        if found["status"] == status {
            return found;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "still {found}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn retry(api: &Api, delivery: &str) -> common::Reply {
    let path = format!("/v1/webhooks/deliveries/{delivery}/retry");
    api.call(reqwest::Method::POST, &path, None).await
}

async fn replay(api: &Api, event: &str) -> common::Reply {
    let path = format!("/v1/webhooks/events/{event}/replay");
    api.call(reqwest::Method::POST, &path, None).await
}

/// Checks the signature of a received request with `secret`, as a receiver would.
fn signed_with(received: &Received, secret: &str) -> bool {
    let header = received.header("x-kayle-signature");
    let (t, v1) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .unwrap_or_else(|| panic!("signature header {header:?}"));
    v1 == wire::signature(secret, t.parse().unwrap(), received.body.as_bytes())
}

#[tokio::test]
async fn a_delivery_carries_kayles_headers_and_a_jwe_for_the_active_key() {
    let api = Api::start().await;
    let receiver = StubReceiver::start(200).await;
    let endpoint = endpoint_with_key(&api, &receiver.url).await;
    let (event, deliveries) = fire(&api);
    assert_eq!(deliveries.len(), 1);
    let got = receiver.wait_for(1).await;
    let request = &got[0];
    assert_eq!(request.header("content-type"), "application/jose");
    assert_eq!(request.header("x-kayle-delivery-id"), deliveries[0]);
    assert_eq!(request.header("x-kayle-event"), SUCCEEDED);
    let secret = api.emulator.signing_secret(&endpoint).unwrap();
    assert!(signed_with(request, &secret), "{request:?}");
    let parts: Vec<&str> = request.body.split('.').collect();
    assert_eq!(parts.len(), 5, "a compact JWE");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(
        header,
        json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "k1"})
    );
    assert!(!request.body.contains(&event), "the body is encrypted");

    let done = until_status(&api, &deliveries[0], "succeeded").await;
    assert_eq!(done["attempt_count"], 1);
    assert_eq!(done["last_status_code"], 200);
    assert_eq!(done["event_id"], event.as_str());
    assert_eq!(done["webhook_endpoint_id"], endpoint.as_str());
    assert_eq!(done["payload_retention_reason"], "delivered");
    assert!(done["payload_scrubbed_at"].is_string(), "{done}");
    assert!(done["payload_expires_at"].is_null(), "{done}");
    assert!(done["next_attempt_at"].is_null(), "{done}");
    let key = api.emulator.keys(&endpoint)[0]["id"].clone();
    assert_eq!(done["webhook_encryption_key_id"], key);
}

#[tokio::test]
async fn only_enabled_subscribed_endpoints_get_one_and_no_key_fails_at_once() {
    let api = Api::start().await;
    let receiver = StubReceiver::start(200).await;
    let keyed = endpoint_with_key(&api, &receiver.url).await;
    let no_key = api.create(json!({"url": receiver.url})).await;
    api.create(json!({"url": receiver.url, "enabled": false}))
        .await;
    api.create(
        json!({"url": receiver.url, "subscribed_event_types": ["verification.session.failed"]}),
    )
    .await;
    // Stored empty, read back as all four: the server delivers nothing to it.
    api.create(json!({"url": receiver.url, "subscribed_event_types": []}))
        .await;
    let (event, deliveries) = fire(&api);
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    let r = api
        .get(&format!("/v1/webhooks/deliveries?endpoint_id={no_key}"))
        .await;
    let failed = &r.body["data"][0];
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["attempt_count"], 1);
    assert_eq!(failed["payload_retention_reason"], "no_active_key");
    assert!(failed["webhook_encryption_key_id"].is_null());
    assert!(failed["payload_scrubbed_at"].is_string());
    let id = failed["id"].as_str().unwrap();
    let r = retry(&api, id).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.body["error"]["code"], "WEBHOOK_PAYLOAD_EXPIRED");

    until_status(&api, &deliveries[0], "succeeded").await;
    assert_eq!(receiver.received().len(), 1);
    let _ = keyed;
    // Both deliveries of the event are done for: the replay has nothing to send.
    let r = replay(&api, &event).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.body["error"]["code"], "WEBHOOK_PAYLOAD_EXPIRED");
}

#[tokio::test]
async fn refused_attempts_follow_the_schedule_then_the_delivery_fails() {
    let api = Api::start().await;
    // 5 s take 0.08 ms, 10 h 600 ms: the 8 attempts take about 1.7 s.
    let divisor = 60_000;
    api.emulator.set_delivery_time_scale(divisor);
    let receiver = StubReceiver::start(400).await;
    endpoint_with_key(&api, &receiver.url).await;
    let (_, deliveries) = fire(&api);
    let got = receiver.wait_for(8).await;
    let failed = until_status(&api, &deliveries[0], "failed").await;
    assert_eq!(failed["attempt_count"], 8);
    assert_eq!(failed["last_status_code"], 400);
    assert_eq!(
        failed["payload_retention_reason"],
        "terminal_failure_retention"
    );
    assert!(failed["payload_expires_at"].is_string(), "{failed}");
    assert!(failed["payload_scrubbed_at"].is_null(), "{failed}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.received().len(), 8, "no ninth attempt");
    for (i, wait) in RETRY_SCHEDULE.iter().enumerate() {
        let gap = got[i + 1].at - got[i].at;
        assert!(gap >= *wait / divisor, "attempt {}: {gap:?}", i + 2);
    }
    // Every attempt sends the same ciphertext.
    assert!(got.iter().all(|r| r.body == got[0].body));
    // Retained: it can be retried, and then succeeds.
    receiver.answer(200);
    let r = retry(&api, &deliveries[0]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let done = until_status(&api, &deliveries[0], "succeeded").await;
    assert_eq!(done["attempt_count"], 1);
    assert_eq!(receiver.received()[8].body, got[0].body);
}

/// As seen on the real server: a refusing receiver gets attempt 1 at once and attempt 2 after
/// the first wait; the delivery then waits `pending` with `next_attempt_at` null. After a
/// rotation, a retry sends it again at once, signed with the new secret.
#[tokio::test]
async fn a_waiting_delivery_is_pending_and_a_retry_signs_with_the_current_secret() {
    let api = Api::start().await;
    // 5 s take 0.5 s, 5 min take 30 s: the delivery waits there.
    api.emulator.set_delivery_time_scale(10);
    let receiver = StubReceiver::start(400).await;
    let endpoint = endpoint_with_key(&api, &receiver.url).await;
    let old_secret = api.emulator.signing_secret(&endpoint).unwrap();
    let (_, deliveries) = fire(&api);
    let id = &deliveries[0];
    let got = receiver.wait_for(2).await;
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(500), "{gap:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let waiting = delivery(&api, id).await;
    assert_eq!(waiting["status"], "pending", "{waiting}");
    assert_eq!(waiting["attempt_count"], 2);
    assert!(waiting["next_attempt_at"].is_null(), "{waiting}");
    assert_eq!(waiting["payload_retention_reason"], "pending_delivery");

    let r = api
        .call(
            reqwest::Method::POST,
            &format!("/v1/webhooks/endpoints/{endpoint}/signing-secret/rotate"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let new_secret = api.emulator.signing_secret(&endpoint).unwrap();
    receiver.answer(200);
    let r = retry(&api, id).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["data"]["attempt_count"], 0);
    assert_eq!(r.body["data"]["status"], "pending");
    let done = until_status(&api, id, "succeeded").await;
    assert_eq!(done["attempt_count"], 1);
    let got = receiver.received();
    assert_eq!(got.len(), 3, "the old schedule stopped");
    assert!(signed_with(&got[0], &old_secret));
    assert!(signed_with(&got[2], &new_secret));
    assert!(!signed_with(&got[2], &old_secret));
    assert_eq!(got[2].body, got[0].body, "the same ciphertext");
}

#[tokio::test]
async fn a_retry_is_refused_while_an_attempt_is_in_flight() {
    let api = Api::start().await;
    let receiver = StubReceiver::start(200).await;
    receiver.delay(Duration::from_millis(800));
    endpoint_with_key(&api, &receiver.url).await;
    let (event, deliveries) = fire(&api);
    receiver.wait_for(1).await;
    let r = retry(&api, &deliveries[0]).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.body["error"]["code"], "CONFLICT");
    let r = replay(&api, &event).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.body["error"]["code"], "CONFLICT");
    until_status(&api, &deliveries[0], "succeeded").await;
}

#[tokio::test]
async fn a_replay_requeues_every_retained_delivery_of_the_event() {
    let api = Api::start().await;
    api.emulator.set_delivery_time_scale(60_000);
    let receiver = StubReceiver::start(500).await;
    endpoint_with_key(&api, &receiver.url).await;
    endpoint_with_key(&api, &receiver.url).await;
    let (event, deliveries) = fire(&api);
    for id in &deliveries {
        until_status(&api, id, "failed").await;
    }
    receiver.answer(204);
    let r = replay(&api, &event).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.body["data"]["id"], event.as_str());
    assert_eq!(r.body["data"]["deliveries"].as_array().unwrap().len(), 2);
    for id in &deliveries {
        until_status(&api, id, "succeeded").await;
    }
    assert_eq!(receiver.received().len(), 18);
}

#[tokio::test]
async fn the_listing_filters_and_pages_newest_first() {
    let api = Api::start().await;
    let receiver = StubReceiver::start(200).await;
    let a = endpoint_with_key(&api, &receiver.url).await;
    let b = endpoint_with_key(&api, &receiver.url).await;
    let (first, _) = fire(&api);
    let (second, _) = fire(&api);
    receiver.wait_for(4).await;
    let all = api.get("/v1/webhooks/deliveries").await;
    assert_eq!(all.body["data"].as_array().unwrap().len(), 4);
    assert_eq!(
        all.body["data"][0]["event_id"],
        second.as_str(),
        "newest first"
    );
    let of_a = api
        .get(&format!("/v1/webhooks/deliveries?endpoint_id={a}"))
        .await;
    assert!(
        of_a.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["webhook_endpoint_id"] == a.as_str())
    );
    let of_first = api
        .get(&format!(
            "/v1/webhooks/deliveries?event_id={first}&endpoint_id={b}"
        ))
        .await;
    assert_eq!(of_first.body["data"].as_array().unwrap().len(), 1);
    // Paging with the cursor visits each once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/webhooks/deliveries?limit=3&starting_after={c}"),
            None => "/v1/webhooks/deliveries?limit=3".to_owned(),
        };
        let page = api.get(&path).await;
        seen.extend(
            page.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].clone()),
        );
        match page.body["pagination"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);
    until_status(
        &api,
        all.body["data"][0]["id"].as_str().unwrap(),
        "succeeded",
    )
    .await;
    let pending = api.get("/v1/webhooks/deliveries?status=pending").await;
    assert!(
        pending.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "pending")
    );
    let bad = api.get("/v1/webhooks/deliveries?status=lost").await;
    assert_eq!(zod_paths(&bad), vec![json!(["status"])]);
    // Deleting an endpoint deletes its deliveries.
    api.call(
        reqwest::Method::DELETE,
        &format!("/v1/webhooks/endpoints/{a}"),
        None,
    )
    .await;
    let left = api.get("/v1/webhooks/deliveries").await;
    assert_eq!(left.body["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn shutting_the_server_down_stops_the_schedules() {
    let api = Api::start().await;
    // 5 s take 50 ms.
    api.emulator.set_delivery_time_scale(100);
    let receiver = StubReceiver::start(503).await;
    endpoint_with_key(&api, &receiver.url).await;
    fire(&api);
    receiver.wait_for(1).await;
    let Api {
        emulator, server, ..
    } = api;
    server.shutdown().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "no attempt after the shutdown"
    );
    // And none starts afterwards.
    let fired = emulator
        .fire_event(TEST_ORGANIZATION_ID, SUCCEEDED, None)
        .unwrap();
    assert_eq!(fired.delivery_ids.len(), 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn the_admin_api_fires_events() {
    let api = Api::start().await;
    let receiver = StubReceiver::start(200).await;
    endpoint_with_key(&api, &receiver.url).await;
    let fire = |body: Value| {
        let request = api.client.post(api.url("/_emulator/events")).json(&body);
        async move { common::reply(request.send().await.unwrap()).await }
    };
    let r =
        fire(json!({"type": "verification.session.failed", "data": {"failure_code": "x"}})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["event_id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(r.body["delivery_ids"].as_array().unwrap().len(), 1);
    assert_eq!(
        receiver.wait_for(1).await[0].header("x-kayle-event"),
        "verification.session.failed"
    );
    let r = fire(json!({"type": "verification.session.paused"})).await;
    assert_eq!(r.status, 400, "{r:?}");
}
