//! Encryption keys (activation rules, material checks) and bearer-token auth with scopes.

mod common;

use common::{Api, key_body, zod_paths};
use kayle_emulator::{Config, Token};
use reqwest::Method;
use serde_json::{Value, json};

fn active(api: &Api, endpoint: &str) -> Vec<String> {
    api.emulator
        .keys(endpoint)
        .iter()
        .filter(|k| k["is_active"] == true)
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn creating_a_key_makes_it_the_only_active_one() {
    let api = Api::start().await;
    let ep = api
        .create(json!({"url": "https://example.com/k", "enabled": false}))
        .await;
    let first = api.add_key(&ep, "k1").await;
    assert_eq!(first["is_active"], true);
    assert_eq!(first["webhook_endpoint_id"], json!(ep));
    assert!(first["id"].as_str().unwrap().starts_with("whk_"));
    assert_eq!(first["disabled_at"], Value::Null);
    let second = api.add_key(&ep, "k2").await;
    assert_eq!(active(&api, &ep), vec![second["id"].as_str().unwrap()]);
    let r = api.get(&format!("/v1/webhooks/endpoints/{ep}/keys")).await;
    let list = r.body["data"].as_array().unwrap();
    assert_eq!(list[0]["id"], second["id"], "newest first");
    assert_eq!(list[1]["is_active"], false);
    assert!(list[1]["disabled_at"].is_string());
    assert_eq!(r.body["pagination"]["has_more"], false);
}

#[tokio::test]
async fn key_id_is_not_unique_and_reactivating_deactivates_the_others() {
    let api = Api::start().await;
    let ep = api
        .create(json!({"url": "https://example.com/k", "enabled": false}))
        .await;
    let a = api.add_key(&ep, "same").await;
    let b = api.add_key(&ep, "same").await;
    assert_ne!(a["id"], b["id"]);
    let a_id = a["id"].as_str().unwrap();
    let r = api
        .call(
            Method::POST,
            &format!("/v1/webhooks/keys/{a_id}/reactivate"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["is_active"], true);
    assert_eq!(active(&api, &ep), vec![a_id.to_string()]);
    let r = api
        .call(
            Method::POST,
            &format!("/v1/webhooks/keys/{a_id}/deactivate"),
            None,
        )
        .await;
    assert_eq!(r.body["data"]["is_active"], false);
    assert!(active(&api, &ep).is_empty());
    let r = api
        .get(&format!(
            "/v1/webhooks/endpoints/{ep}/keys?is_active=false&limit=1"
        ))
        .await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["pagination"]["has_more"], true);
    let r = api
        .call(
            Method::POST,
            "/v1/webhooks/keys/whk_doesnotexist/deactivate",
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body["error"]["message"],
        "Webhook encryption key not found."
    );
}

#[tokio::test]
async fn key_material_rules() {
    let api = Api::start().await;
    let ep = api
        .create(json!({"url": "https://example.com/k", "enabled": false}))
        .await;
    let path = format!("/v1/webhooks/endpoints/{ep}/keys");
    let mut private = key_body("p", 2048);
    private["jwk"]["d"] = json!("AQAB");
    let mut ops = key_body("o", 2048);
    ops["jwk"]["key_ops"] = json!(["encrypt", "decrypt"]);
    for body in [key_body("small", 2047), private, ops] {
        let r = api.post(&path, body.clone()).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.body["data"], Value::Null);
        assert_eq!(r.body["error"]["code"], "BAD_REQUEST");
        assert_eq!(
            r.body["error"]["hint"],
            "Provide an RSA-OAEP-256 public JWK without private key material."
        );
    }
    let mut wrong_alg = key_body("a", 2048);
    wrong_alg["algorithm"] = json!("ECDH-ES");
    let r = api.post(&path, wrong_alg).await;
    assert_eq!(zod_paths(&r), vec![json!(["algorithm"])]);
    let r = api
        .post(
            &path,
            json!({"algorithm": "RSA-OAEP-256", "key_type": "RSA"}),
        )
        .await;
    assert_eq!(zod_paths(&r), vec![json!(["key_id"]), json!(["jwk"])]);
    assert!(api.emulator.keys(&ep).is_empty());
    let r = api
        .post(
            "/v1/webhooks/endpoints/whe_doesnotexist/keys",
            key_body("x", 2048),
        )
        .await;
    assert_eq!(r.status, 404);
    // Deleting the endpoint deletes its keys.
    api.add_key(&ep, "k").await;
    api.call(
        Method::DELETE,
        &format!("/v1/webhooks/endpoints/{ep}"),
        None,
    )
    .await;
    assert!(api.emulator.keys(&ep).is_empty());
}

#[tokio::test]
async fn enabling_without_an_active_key_is_recorded_as_a_violation() {
    let api = Api::start().await;
    let ep = api
        .create(json!({"url": "https://example.com/k", "enabled": false}))
        .await;
    let key = api.add_key(&ep, "k").await;
    api.patch(
        &format!("/v1/webhooks/endpoints/{ep}"),
        json!({"enabled": true}),
    )
    .await;
    assert!(api.emulator.violations().is_empty());
    let key_id = key["id"].as_str().unwrap();
    api.call(
        Method::POST,
        &format!("/v1/webhooks/keys/{key_id}/deactivate"),
        None,
    )
    .await;
    let violations = api.emulator.violations();
    assert_eq!(violations.len(), 1);
    assert!(violations[0].contains(&ep) && violations[0].contains("DeactivateKey"));
    api.create(json!({"url": "https://example.com/enabled-at-once"}))
        .await;
    assert!(api.emulator.violations()[1].contains("CreateEndpoint"));
}

fn token(value: &str, read: bool, write: bool, org: &str) -> Token {
    Token {
        value: value.to_string(),
        read,
        write,
        organization_id: org.to_string(),
    }
}

#[tokio::test]
async fn tokens_scopes_and_organizations() {
    let config = Config {
        tokens: vec![
            token("kk_test", true, true, "org-a"),
            token("kk_read", true, false, "org-a"),
            token("kk_none", false, false, "org-a"),
            token("kk_other", true, true, "org-b"),
        ],
        allow_loopback_urls: true,
        state_file: None,
        admin_routes: true,
    };
    let api = Api::with_config(config).await;
    let ep = api.create(json!({"url": "https://example.com/a"})).await;
    let unauthorized = json!({"error": {"code": "UNAUTHORIZED", "message": "Unauthorized"}});
    for header in [
        None,
        Some("Bearer kk_nope"),
        Some("Bearer "),
        Some("bearer kk_test"),
        Some("Basic Zm9vOmJhcg=="),
    ] {
        let mut req = api.client.get(api.url("/v1/webhooks/endpoints"));
        if let Some(h) = header {
            req = req.header("Authorization", h);
        }
        let r = common::reply(req.send().await.unwrap()).await;
        assert_eq!(r.status, 401, "{header:?}");
        assert_eq!(r.body, unauthorized);
    }
    let r = common::reply(
        api.client
            .get(api.url("/v1/webhooks/endpoints"))
            .header("Authorization", "Bearer   kk_test  ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    let forbidden = json!({"error": {"code": "FORBIDDEN", "message": "Forbidden"}});
    let path = format!("/v1/webhooks/endpoints/{ep}");
    assert_eq!(
        api.call_as("kk_read", Method::GET, &path, None)
            .await
            .status,
        200
    );
    for (method, p, body) in [
        (
            Method::POST,
            "/v1/webhooks/endpoints".to_string(),
            Some(json!({"url": "http://bad"})),
        ),
        (Method::PATCH, path.clone(), Some(json!({"name": "x"}))),
        (Method::DELETE, path.clone(), None),
        (Method::POST, format!("{path}/signing-secret/reveal"), None),
        (Method::POST, format!("{path}/signing-secret/rotate"), None),
    ] {
        let r = api.call_as("kk_read", method, &p, body).await;
        assert_eq!(r.status, 403, "{p}");
        assert_eq!(r.body, forbidden);
    }
    let r = api
        .call_as("kk_none", Method::GET, "/v1/webhooks/endpoints", None)
        .await;
    assert_eq!(r.status, 403);
    let r = api.call_as("kk_other", Method::GET, &path, None).await;
    assert_eq!(r.status, 404);
    let r = api
        .call_as("kk_other", Method::GET, "/v1/webhooks/endpoints", None)
        .await;
    assert_eq!(r.body["data"], json!([]));
    let r = api.call_as("kk_other", Method::DELETE, &path, None).await;
    assert_eq!(r.status, 404);
    assert_eq!(api.emulator.endpoints().len(), 1);
}

#[tokio::test]
async fn a_frozen_organization_answers_410_until_thawed() {
    let api = Api::start().await;
    let org = kayle_emulator::TEST_ORGANIZATION_ID;
    api.emulator.set_organization_frozen(org, true);
    for r in [
        api.get("/v1/webhooks/endpoints").await,
        api.post(
            "/v1/webhooks/endpoints",
            json!({"url": "https://example.com/f"}),
        )
        .await,
    ] {
        assert_eq!(r.status, 410);
        assert_eq!(r.body["data"], Value::Null);
        assert_eq!(r.body["error"]["code"], "ORGANIZATION_FROZEN");
        assert!(r.body["error"]["hint"].is_string());
    }
    assert!(api.emulator.endpoints().is_empty());
    api.emulator.set_organization_frozen(org, false);
    assert_eq!(api.get("/v1/webhooks/endpoints").await.status, 200);
}
