//! Listing: newest-first order, cursor pagination, the ignored-cursor trap, filters, and the
//! empty-subscription trap.

mod common;

use common::{Api, zod_issues};
use serde_json::{Value, json};

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

async fn create_n(api: &Api, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            api.create(json!({"url": format!("https://example.com/{i}"), "enabled": i % 2 == 0}))
                .await,
        );
    }
    ids.reverse(); // newest first
    ids
}

#[tokio::test]
async fn pages_follow_the_cursor_newest_first() {
    let api = Api::start().await;
    let expected = create_n(&api, 7).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/webhooks/endpoints?limit=2&starting_after={c}"),
            None => "/v1/webhooks/endpoints?limit=2".to_string(),
        };
        let r = api.get(&path).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["error"], Value::Null);
        assert_eq!(r.body["pagination"]["limit"], 2);
        pages += 1;
        let page = ids(&r.body);
        seen.extend(page.clone());
        let has_more = r.body["pagination"]["has_more"].as_bool().unwrap();
        let next = r.body["pagination"]["next_cursor"].clone();
        if !has_more {
            assert_eq!(next, Value::Null);
            break;
        }
        assert_eq!(next, json!(page.last().unwrap()));
        cursor = next.as_str().map(String::from);
    }
    assert_eq!(pages, 4);
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn default_limit_is_ten() {
    let api = Api::start().await;
    create_n(&api, 12).await;
    let r = api.get("/v1/webhooks/endpoints").await;
    assert_eq!(ids(&r.body).len(), 10);
    assert_eq!(r.body["pagination"]["limit"], 10);
    assert_eq!(r.body["pagination"]["has_more"], true);
}

#[tokio::test]
async fn unknown_or_deleted_cursor_serves_page_one_again() {
    let api = Api::start().await;
    let all = create_n(&api, 5).await;
    let first = ids(&api.get("/v1/webhooks/endpoints?limit=2").await.body);
    let r = api
        .get("/v1/webhooks/endpoints?limit=2&starting_after=whe_doesnotexist")
        .await;
    assert_eq!(ids(&r.body), first);
    // Delete the endpoint a cursor names: the next page request silently restarts.
    let cursor = &all[1];
    api.call(
        reqwest::Method::DELETE,
        &format!("/v1/webhooks/endpoints/{cursor}"),
        None,
    )
    .await;
    let r = api
        .get(&format!(
            "/v1/webhooks/endpoints?limit=2&starting_after={cursor}"
        ))
        .await;
    assert_eq!(ids(&r.body), vec![all[0].clone(), all[2].clone()]);
}

#[tokio::test]
async fn enabled_filter_and_query_validation() {
    let api = Api::start().await;
    create_n(&api, 4).await;
    let r = api.get("/v1/webhooks/endpoints?enabled=false").await;
    let disabled = r.body["data"].as_array().unwrap();
    assert_eq!(disabled.len(), 2);
    assert!(disabled.iter().all(|e| e["enabled"] == false));
    let r = api.get("/v1/webhooks/endpoints?enabled=true&limit=1").await;
    assert_eq!(r.body["data"][0]["enabled"], true);
    assert_eq!(r.body["pagination"]["has_more"], true);
    let r = api.get("/v1/webhooks/endpoints?limit=100&foo=bar").await;
    assert_eq!(r.status, 200);
    for (query, code) in [
        ("limit=101", "too_big"),
        ("limit=0", "too_small"),
        ("limit=abc", "invalid_type"),
        ("enabled=maybe", "invalid_type"),
        ("starting_after=bad%20id!", "invalid_format"),
    ] {
        let r = api.get(&format!("/v1/webhooks/endpoints?{query}")).await;
        let issues = zod_issues(&r);
        assert_eq!(issues[0]["code"], code, "{query}");
    }
}

#[tokio::test]
async fn empty_subscription_is_stored_empty_but_read_as_all_four() {
    let api = Api::start().await;
    let all = json!([
        "verification.session.succeeded",
        "verification.session.failed",
        "verification.session.expired",
        "verification.session.cancelled"
    ]);
    let r = api
        .post(
            "/v1/webhooks/endpoints",
            json!({"url": "https://example.com/e", "subscribed_event_types": []}),
        )
        .await;
    assert_eq!(r.body["data"]["endpoint"]["subscribed_event_types"], all);
    let id = r.body["data"]["endpoint"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/webhooks/endpoints/{id}");
    let r = api
        .patch(
            &path,
            json!({"subscribed_event_types": ["verification.session.expired"]}),
        )
        .await;
    assert_eq!(
        r.body["data"]["subscribed_event_types"],
        json!(["verification.session.expired"])
    );
    let r = api
        .patch(&path, json!({"subscribed_event_types": []}))
        .await;
    assert_eq!(r.body["data"]["subscribed_event_types"], all);
    assert_eq!(
        api.get(&path).await.body["data"]["subscribed_event_types"],
        all
    );
    // What is stored is empty: the persisted state says so.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    let mut config = kayle_emulator::Config::test(common::TOKEN);
    config.state_file = Some(file.clone());
    let api = Api::with_config(config).await;
    api.post(
        "/v1/webhooks/endpoints",
        json!({"url": "https://example.com/e", "subscribed_event_types": []}),
    )
    .await;
    let stored: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(stored["endpoints"][0]["subscribed_event_types"], json!([]));
}

#[tokio::test]
async fn organizations_page_their_own_endpoints_and_ignore_each_others_cursors() {
    let token = |value: &str, organization_id: &str| kayle_emulator::Token {
        value: value.into(),
        read: true,
        write: true,
        organization_id: organization_id.into(),
    };
    let mut config = kayle_emulator::Config::test(common::TOKEN);
    config.tokens = vec![token(common::TOKEN, "org-a"), token("kk_other", "org-b")];
    let api = Api::with_config(config).await;
    let (mut own, mut other) = (Vec::new(), Vec::new());
    for i in 0..6 {
        own.push(
            api.create(json!({"url": format!("https://a.example.com/{i}")}))
                .await,
        );
        let r = api
            .call_as(
                "kk_other",
                reqwest::Method::POST,
                "/v1/webhooks/endpoints",
                Some(json!({"url": format!("https://b.example.com/{i}")})),
            )
            .await;
        other.push(
            r.body["data"]["endpoint"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    own.reverse();
    let first = api.get("/v1/webhooks/endpoints?limit=4").await;
    assert_eq!(ids(&first.body), own[..4]);
    let cursor = &own[3];
    let second = api
        .get(&format!(
            "/v1/webhooks/endpoints?limit=4&starting_after={cursor}"
        ))
        .await;
    assert_eq!(ids(&second.body), own[4..]);
    assert_eq!(second.body["pagination"]["has_more"], false);
    // Another organization's endpoint is no cursor here: page 1 again.
    let foreign = &other[2];
    let r = api
        .get(&format!(
            "/v1/webhooks/endpoints?limit=4&starting_after={foreign}"
        ))
        .await;
    assert_eq!(ids(&r.body), own[..4]);
}
