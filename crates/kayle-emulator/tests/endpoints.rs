//! Endpoint routes against the emulator, each case taken from the real-server transcript.

mod common;

use common::{Api, zod_issues, zod_paths};
use reqwest::Method;
use serde_json::{Value, json};

const ALL_TYPES: [&str; 4] = [
    "verification.session.succeeded",
    "verification.session.failed",
    "verification.session.expired",
    "verification.session.cancelled",
];

#[tokio::test]
async fn create_answers_200_with_normalized_endpoint_and_secret() {
    let api = Api::start().await;
    let r = api
        .post(
            "/v1/webhooks/endpoints",
            json!({"url": "https://example.com/hooks/lws", "labels": ["  padded  "], "name": "  padded name  ", "foo": "bar"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/json");
    let e = &r.body["data"]["endpoint"];
    assert_eq!(r.body["error"], Value::Null);
    assert_eq!(e["name"], "padded name");
    assert_eq!(e["labels"], json!(["padded"]));
    assert_eq!(e["enabled"], true);
    assert_eq!(e["subscribed_event_types"], json!(ALL_TYPES));
    assert_eq!(e["undelivered_payload_retention_hours"], 72);
    assert_eq!(e["disabled_at"], Value::Null);
    assert!(e.get("foo").is_none());
    let id = e["id"].as_str().unwrap();
    assert!(id.starts_with("whe_") && id.len() == 36, "{id}");
    let secret = r.body["data"]["signing_secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_") && secret.len() == 38);
    assert!(
        secret[6..]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    );
    let created = e["created_at"].as_str().unwrap();
    assert_eq!(created.len(), "2026-11-26T22:57:31.344Z".len(), "{created}");
    assert!(created.ends_with('Z'));
}

#[tokio::test]
async fn create_disabled_sets_disabled_at() {
    let api = Api::start().await;
    let r = api
        .post(
            "/v1/webhooks/endpoints",
            json!({"url": "https://example.com/d", "enabled": false}),
        )
        .await;
    assert_eq!(r.body["data"]["endpoint"]["enabled"], false);
    assert!(r.body["data"]["endpoint"]["disabled_at"].is_string());
}

#[tokio::test]
async fn url_is_stored_verbatim_and_duplicates_are_allowed() {
    let api = Api::start().await;
    let url = "https://Example.COM:443/a/../b?x=1#frag";
    let a = api.create(json!({"url": url})).await;
    let b = api.create(json!({"url": url})).await;
    assert_ne!(a, b);
    let r = api.get(&format!("/v1/webhooks/endpoints/{a}")).await;
    assert_eq!(r.body["data"]["url"], url);
    let r = api
        .post(
            "/v1/webhooks/endpoints",
            json!({"url": "https://example.com/ws "}),
        )
        .await;
    assert_eq!(r.body["data"]["endpoint"]["url"], "https://example.com/ws ");
}

#[tokio::test]
async fn rejected_urls_are_zod_errors_on_url() {
    let api = Api::start().await;
    for url in [
        "http://example.com/hook",
        "ftp://example.com/hook",
        "not a url",
        "https://10.0.0.1/hook",
        "https://93.184.216.34/hook",
        "https://foo.internal/hook",
        "https://foo.localhost/hook",
        "https://intranet/hook",
        "https://user:pw@example.com/hook",
    ] {
        let r = api
            .post("/v1/webhooks/endpoints", json!({"url": url}))
            .await;
        let issues = zod_issues(&r);
        assert_eq!(issues.len(), 1, "{url}: {issues:?}");
        assert_eq!(issues[0]["path"], json!(["url"]));
        assert_eq!(issues[0]["code"], "custom");
        assert_eq!(
            issues[0]["message"],
            "Must be an https:// URL pointing to a public host with no embedded credentials."
        );
    }
}

#[tokio::test]
async fn loopback_urls_need_a_development_server() {
    let mut config = kayle_emulator::Config::test(common::TOKEN);
    config.allow_loopback_urls = false;
    let api = Api::with_config(config).await;
    let r = api
        .post(
            "/v1/webhooks/endpoints",
            json!({"url": "http://localhost:9999/hook"}),
        )
        .await;
    assert_eq!(zod_paths(&r), vec![json!(["url"])]);
    let dev = Api::start().await;
    dev.create(json!({"url": "http://localhost:9999/hook"}))
        .await;
    dev.create(json!({"url": "http://127.0.0.1:9999/hook"}))
        .await;
}

#[tokio::test]
async fn url_length_limit_is_2048() {
    let api = Api::start().await;
    let base = "https://example.com/";
    let ok = format!("{base}{}", "a".repeat(2048 - base.len()));
    api.create(json!({"url": ok})).await;
    let long = format!("{ok}a");
    let r = api
        .post("/v1/webhooks/endpoints", json!({"url": long}))
        .await;
    let issues = zod_issues(&r);
    assert_eq!(issues.len(), 2, "{issues:?}");
    assert_eq!(issues[0]["code"], "too_big");
    assert_eq!(issues[0]["maximum"], 2048);
    assert_eq!(issues[0]["path"], json!(["url"]));
    assert_eq!(issues[1]["code"], "custom");
    assert_eq!(issues[1]["path"], json!(["url"]));
}

#[tokio::test]
async fn name_rules_count_utf16_units_and_trim() {
    let api = Api::start().await;
    api.create(json!({"url": "https://example.com/a", "name": "n".repeat(120)}))
        .await;
    api.create(json!({"url": "https://example.com/a", "name": "\u{e9}".repeat(120)}))
        .await;
    for (name, code) in [
        (json!("n".repeat(121)), "too_big"),
        (json!("\u{1F600}".repeat(61)), "too_big"),
        (json!("   "), "too_small"),
        (Value::Null, "invalid_type"),
    ] {
        let r = api
            .post(
                "/v1/webhooks/endpoints",
                json!({"url": "https://example.com/a", "name": name}),
            )
            .await;
        let issues = zod_issues(&r);
        assert_eq!(issues[0]["code"], code, "{name}");
        assert_eq!(issues[0]["path"], json!(["name"]));
    }
}

#[tokio::test]
async fn label_rules() {
    let api = Api::start().await;
    let eight: Vec<String> = (0..7)
        .map(|i| format!("l{i}"))
        .chain(["x".repeat(40)])
        .collect();
    api.create(json!({"url": "https://example.com/a", "labels": eight}))
        .await;
    let cases = [
        (
            json!(["l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8"]),
            json!(["labels"]),
            "Too big: expected array to have <=8 items",
        ),
        (
            json!(["x".repeat(41)]),
            json!(["labels", 0]),
            "Labels must be 40 characters or fewer.",
        ),
        (
            json!(["\u{1F600}".repeat(21)]),
            json!(["labels", 0]),
            "Labels must be 40 characters or fewer.",
        ),
        (
            json!(["prod", "PROD"]),
            json!(["labels", 1]),
            "Labels must be unique case-insensitively.",
        ),
        (
            json!([" prod", "prod"]),
            json!(["labels", 1]),
            "Labels must be unique case-insensitively.",
        ),
        (
            json!([""]),
            json!(["labels", 0]),
            "Labels must be non-empty strings.",
        ),
        (
            json!([1]),
            json!(["labels", 0]),
            "Invalid input: expected string, received number",
        ),
    ];
    for (labels, path, message) in cases {
        let r = api
            .post(
                "/v1/webhooks/endpoints",
                json!({"url": "https://example.com/a", "labels": labels}),
            )
            .await;
        let issues = zod_issues(&r);
        assert_eq!(issues.len(), 1, "{labels}: {issues:?}");
        assert_eq!(issues[0]["path"], path, "{labels}");
        assert_eq!(issues[0]["message"], message, "{labels}");
    }
}

#[tokio::test]
async fn event_types_and_retention_rules() {
    let api = Api::start().await;
    let r = api
        .post(
            "/v1/webhooks/endpoints",
            json!({"url": "https://example.com/a", "subscribed_event_types": ["verification.session.bogus"]}),
        )
        .await;
    let issues = zod_issues(&r);
    assert_eq!(issues[0]["code"], "invalid_value");
    assert_eq!(issues[0]["path"], json!(["subscribed_event_types", 0]));
    let r = api
        .post(
            "/v1/webhooks/endpoints",
            json!({"url": "https://example.com/a", "undelivered_payload_retention_hours": 5}),
        )
        .await;
    let issues = zod_issues(&r);
    assert_eq!(issues[0]["code"], "invalid_union");
    assert_eq!(issues[0]["errors"].as_array().unwrap().len(), 4);
    for hours in [0, 24, 72, 168] {
        let r = api
            .post(
                "/v1/webhooks/endpoints",
                json!({"url": "https://example.com/a", "undelivered_payload_retention_hours": hours}),
            )
            .await;
        assert_eq!(
            r.body["data"]["endpoint"]["undelivered_payload_retention_hours"],
            hours
        );
    }
    let dup = json!(["verification.session.failed", "verification.session.failed"]);
    let r = api
        .post(
            "/v1/webhooks/endpoints",
            json!({"url": "https://example.com/a", "subscribed_event_types": dup}),
        )
        .await;
    assert_eq!(r.body["data"]["endpoint"]["subscribed_event_types"], dup);
}

#[tokio::test]
async fn several_issues_are_listed_together_in_field_order() {
    let api = Api::start().await;
    let r = api
        .post(
            "/v1/webhooks/endpoints",
            json!({"url": "http://example.com", "name": "n".repeat(121), "undelivered_payload_retention_hours": 5}),
        )
        .await;
    assert_eq!(
        zod_paths(&r),
        vec![
            json!(["name"]),
            json!(["url"]),
            json!(["undelivered_payload_retention_hours"])
        ]
    );
    let r = api
        .post("/v1/webhooks/endpoints", json!({"name": "no url"}))
        .await;
    assert_eq!(
        zod_issues(&r)[0]["message"],
        "Invalid input: expected string, received undefined"
    );
    let r = api
        .post(
            "/v1/webhooks/endpoints",
            json!({"url": "https://example.com/a", "enabled": "true"}),
        )
        .await;
    assert_eq!(zod_paths(&r), vec![json!(["enabled"])]);
    let r = api.post("/v1/webhooks/endpoints", json!([1])).await;
    assert_eq!(
        zod_issues(&r)[0]["message"],
        "Invalid input: expected object, received array"
    );
}

#[tokio::test]
async fn malformed_json_missing_content_type_and_big_bodies() {
    let api = Api::start().await;
    let send = |ct: Option<&'static str>, body: String| {
        let mut req = api
            .client
            .post(api.url("/v1/webhooks/endpoints"))
            .header("Authorization", "Bearer kk_test")
            .body(body);
        if let Some(ct) = ct {
            req = req.header("Content-Type", ct);
        }
        async move { common::reply(req.send().await.unwrap()).await }
    };
    let r = send(Some("application/json"), "{\"url\": ".into()).await;
    assert_eq!(r.status, 400);
    assert!(r.content_type.starts_with("text/plain"));
    assert_eq!(r.text, "Malformed JSON in request body");
    let r = send(None, "{\"url\":\"https://example.com/noct\"}".into()).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.text, "Internal Server Error");
    let r = send(
        Some("text/plain"),
        "{\"url\":\"https://example.com/noct\"}".into(),
    )
    .await;
    assert_eq!(r.status, 500);
    assert!(api.emulator.endpoints().is_empty());
    let r = send(
        Some("application/json; charset=utf-8"),
        "{\"url\":\"https://example.com/c\"}".into(),
    )
    .await;
    assert_eq!(r.status, 200);
    let big = format!(
        "{{\"url\":\"https://example.com/x\",\"name\":\"{}\"}}",
        "a".repeat(2 * 1024 * 1024)
    );
    let r = send(Some("application/json"), big).await;
    assert_eq!(r.status, 413);
    assert_eq!(
        r.body,
        json!({"error": {"code": "PAYLOAD_TOO_LARGE", "message": "Request body is too large."}})
    );
}

#[tokio::test]
async fn get_update_delete_and_not_found() {
    let api = Api::start().await;
    let id = api
        .create(json!({"url": "https://example.com/hooks/minimal"}))
        .await;
    let path = format!("/v1/webhooks/endpoints/{id}");
    let r = api.patch(&path, json!({"name": "Renamed", "foo": 1})).await;
    assert_eq!(r.body["data"]["name"], "Renamed");
    let r = api.patch(&path, json!({"name": null})).await;
    assert_eq!(r.body["data"]["name"], Value::Null);
    let before = api.get(&path).await.body["data"]["updated_at"].clone();
    let r = api.patch(&path, json!({"enabled": false})).await;
    assert!(r.body["data"]["disabled_at"].is_string());
    assert_ne!(r.body["data"]["updated_at"], before);
    let r = api.patch(&path, json!({"enabled": true})).await;
    assert_eq!(r.body["data"]["disabled_at"], Value::Null);
    for body in [json!({}), json!({"foo": "bar"})] {
        let r = api.patch(&path, body).await;
        let issues = zod_issues(&r);
        assert_eq!(issues[0]["path"], json!([]));
    }
    let r = api.call(Method::PATCH, &path, None).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["data"], Value::Null);
    assert_eq!(r.body["error"]["code"], "BAD_REQUEST");
    let r = api.call(Method::DELETE, &path, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"data": {"message": "Webhook endpoint deleted.", "status": "success"}, "error": null})
    );
    for (method, anchor) in [(Method::DELETE, "delete"), (Method::GET, "get-by-id")] {
        let r = api.call(method, &path, None).await;
        assert_eq!(r.status, 404);
        assert_eq!(r.body["error"]["code"], "NOT_FOUND");
        assert!(r.body["error"]["docs"].as_str().unwrap().ends_with(anchor));
    }
    let r = api.get("/v1/webhooks/endpoints/bad.id").await;
    assert_eq!(zod_paths(&r), vec![json!(["endpoint_id"])]);
}

#[tokio::test]
async fn unknown_routes_methods_and_trailing_slash_are_plain_404() {
    let api = Api::start().await;
    let id = api.create(json!({"url": "https://example.com/a"})).await;
    for (method, path) in [
        (Method::GET, "/v1/webhooks/nope".to_string()),
        (Method::GET, "/v1/webhooks/endpoints/".to_string()),
        (Method::PUT, format!("/v1/webhooks/endpoints/{id}")),
        (
            Method::GET,
            format!("/v1/webhooks/endpoints/{id}/signing-secret/reveal"),
        ),
    ] {
        let r = api.call(method.clone(), &path, None).await;
        assert_eq!(r.status, 404, "{method} {path}");
        assert_eq!(r.text, "404 Not Found");
        assert!(r.content_type.starts_with("text/plain"));
    }
}

#[tokio::test]
async fn reveal_returns_the_create_secret_and_rotate_replaces_it() {
    let api = Api::start().await;
    let r = api
        .post(
            "/v1/webhooks/endpoints",
            json!({"url": "https://example.com/a"}),
        )
        .await;
    let id = r.body["data"]["endpoint"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let first = r.body["data"]["signing_secret"].clone();
    let reveal = format!("/v1/webhooks/endpoints/{id}/signing-secret/reveal");
    let rotate = format!("/v1/webhooks/endpoints/{id}/signing-secret/rotate");
    let r = api.call(Method::POST, &reveal, None).await;
    assert_eq!(
        r.body["data"],
        json!({"endpoint_id": id, "signing_secret": first})
    );
    let r = api.call(Method::POST, &rotate, None).await;
    let second = r.body["data"]["signing_secret"].clone();
    assert_ne!(second, first);
    let r = api.post(&reveal, json!({})).await;
    assert_eq!(r.body["data"]["signing_secret"], second);
    assert_eq!(api.emulator.signing_secret(&id).as_deref(), second.as_str());
    let r = api
        .call(
            Method::POST,
            "/v1/webhooks/endpoints/whe_doesnotexist/signing-secret/rotate",
            None,
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn zod_error_body_is_byte_for_byte_the_servers() {
    let api = Api::start().await;
    let r = api
        .post(
            "/v1/webhooks/endpoints",
            json!({"url": "https://example.com/n", "labels": ["a", "A"]}),
        )
        .await;
    let expected = concat!(
        r#"{"success":false,"error":{"name":"ZodError","message":"[\n  {\n    \"code\": \"custom\",\n"#,
        r#"    \"message\": \"Labels must be unique case-insensitively.\",\n    \"path\": [\n"#,
        r#"      \"labels\",\n      1\n    ]\n  }\n]"}}"#
    );
    assert_eq!(r.text, expected);
}

#[tokio::test]
async fn cors_preflight_answers_204() {
    let api = Api::start().await;
    let id = api.create(json!({"url": "https://example.com/a"})).await;
    let r = api
        .client
        .request(
            Method::OPTIONS,
            api.url(&format!("/v1/webhooks/endpoints/{id}")),
        )
        .header("Access-Control-Request-Method", "PATCH")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(
        r.headers()["access-control-allow-headers"],
        "Authorization,Content-Type"
    );
}
