//! The contract test: a scripted tour of every route, success and error cases, validating
//! each response body against the schema `openapi.json` gives for that route and status,
//! except where FACTS.md records that the real server answers otherwise (those shapes are
//! checked explicitly).
//!
//! The spec is read from `$KAYLE_API_SPEC_DIR/openapi.json`, defaulting to
//! `../../../shared/kayle-api` beside this crate. Without it the test is reported *ignored*,
//! never passed, unless `KAYLE_REQUIRE_SPEC=1`, which makes a missing spec a failure. This file
//! has its own harness (libtest-mimic), because the standard one cannot decide at run time that
//! a test is ignored.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::{Api, Reply, key_body};
use kayle_emulator::{Fault, Route};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use reqwest::Method;
use serde_json::{Value, json};

const ENDPOINTS: &str = "/v1/webhooks/endpoints";
const ENDPOINT: &str = "/v1/webhooks/endpoints/{endpoint_id}";
const REVEAL: &str = "/v1/webhooks/endpoints/{endpoint_id}/signing-secret/reveal";
const ROTATE: &str = "/v1/webhooks/endpoints/{endpoint_id}/signing-secret/rotate";
const KEYS: &str = "/v1/webhooks/endpoints/{endpoint_id}/keys";
const DEACTIVATE: &str = "/v1/webhooks/keys/{key_id}/deactivate";
const REACTIVATE: &str = "/v1/webhooks/keys/{key_id}/reactivate";
const DELIVERIES: &str = "/v1/webhooks/deliveries";
const RETRY: &str = "/v1/webhooks/deliveries/{delivery_id}/retry";
const REPLAY: &str = "/v1/webhooks/events/{event_id}/replay";

/// (path, method, status) the spec documents but the real server answers in another shape,
/// per FACTS.md; the tour checks the real shape instead.
const DEPARTURES: [(&str, &str, u16); 1] = [
    // Request validation answers a ZodError, not the documented envelope.
    (ENDPOINTS, "post", 400),
];

fn spec_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("KAYLE_API_SPEC_DIR") {
        return Some(PathBuf::from(dir));
    }
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kayle-api");
    default.exists().then_some(default)
}

fn main() {
    let args = Arguments::from_args();
    let trials = vec![Trial::ignorable_test(
        "every_route_answers_as_the_spec_or_facts_say",
        || {
            let spec = match load_spec() {
                Ok(spec) => spec,
                Err(missing) => return missing,
            };
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(every_route_answers_as_the_spec_or_facts_say(spec));
            Ok(Completion::Completed)
        },
    )];
    libtest_mimic::run(&args, trials).exit();
}

/// The spec, or how to report the test without it: ignored, or failed under
/// `KAYLE_REQUIRE_SPEC=1`.
fn load_spec() -> Result<Value, Result<Completion, Failed>> {
    let required = std::env::var("KAYLE_REQUIRE_SPEC").as_deref() == Ok("1");
    let file = spec_dir().map(|d| d.join("openapi.json"));
    match file.as_ref().map(std::fs::read) {
        Some(Ok(bytes)) => Ok(serde_json::from_slice(&bytes).expect("openapi.json is JSON")),
        other if required => Err(Err(format!(
            "KAYLE_REQUIRE_SPEC=1 but the spec could not be read at {file:?}: {other:?}"
        )
        .into())),
        _ => Err(Ok(Completion::ignored_with(format!(
            "no openapi.json (set KAYLE_API_SPEC_DIR); looked at {file:?}"
        )))),
    }
}

fn inline_refs(schema: &Value, spec: &Value, depth: usize) -> Value {
    assert!(depth < 32, "$ref cycle in the spec");
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                let pointer = reference.strip_prefix('#').expect("only local refs");
                let target = spec
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("{reference}"));
                return inline_refs(target, spec, depth + 1);
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), inline_refs(v, spec, depth)))
                    .collect(),
            )
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| inline_refs(v, spec, depth)).collect())
        }
        other => other.clone(),
    }
}

struct Contract {
    spec: Value,
    checked: BTreeSet<(String, String, u16)>,
}

impl Contract {
    fn schema(&self, path: &str, method: &str, status: u16) -> Option<Value> {
        let response = self.spec.pointer(&format!(
            "/paths/{}/{method}/responses/{status}",
            path.replace('~', "~0").replace('/', "~1")
        ))?;
        let schema = response.pointer("/content/application~1json/schema")?;
        Some(inline_refs(schema, &self.spec, 0))
    }

    /// Validates a reply against the spec's schema for its route and status.
    fn check(&mut self, path: &str, method: &str, reply: &Reply) {
        let schema = self.schema(path, method, reply.status).unwrap_or_else(|| {
            panic!(
                "spec has no schema for {method} {path} {}: {reply:?}",
                reply.status
            )
        });
        assert!(
            reply.content_type.starts_with("application/json"),
            "{method} {path}: {reply:?}"
        );
        let validator = jsonschema::draft202012::new(&schema).expect("schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(&reply.body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {} does not match the spec:\n{}\nbody: {}",
            reply.status,
            errors.join("\n"),
            reply.body
        );
        self.checked
            .insert((path.to_string(), method.to_string(), reply.status));
    }

    /// Every documented (route, status) of the webhook routes we emulate.
    fn documented(&self) -> BTreeSet<(String, String, u16)> {
        let mut all = BTreeSet::new();
        for path in [
            ENDPOINTS, ENDPOINT, REVEAL, ROTATE, KEYS, DEACTIVATE, REACTIVATE, DELIVERIES, RETRY,
            REPLAY,
        ] {
            let item = &self.spec["paths"][path];
            for (method, op) in item.as_object().expect(path) {
                for status in op["responses"].as_object().expect("responses").keys() {
                    all.insert((path.to_string(), method.clone(), status.parse().unwrap()));
                }
            }
        }
        all
    }
}

/// The real ZodError shape (FACTS.md): no `data`, no `code`, the issues in a JSON string.
fn assert_zod(reply: &Reply, path: Value) {
    assert_eq!(reply.status, 400, "{reply:?}");
    let obj = reply.body.as_object().expect("object");
    assert_eq!(obj.len(), 2, "{reply:?}");
    assert_eq!(obj["success"], false);
    assert_eq!(obj["error"]["name"], "ZodError");
    let issues: Vec<Value> =
        serde_json::from_str(obj["error"]["message"].as_str().unwrap()).unwrap();
    assert!(
        issues
            .iter()
            .all(|i| i["message"].is_string() && i["path"].is_array())
    );
    assert!(issues.iter().any(|i| i["path"] == path), "{issues:?}");
}

/// The bare `{"error": {code, message}}` of 401, 403 and 413 (FACTS.md).
fn assert_bare(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    let obj = reply.body.as_object().expect("object");
    assert_eq!(obj.len(), 1, "{reply:?}");
    let error = obj["error"].as_object().unwrap();
    assert_eq!(error.len(), 2);
    assert_eq!(error["code"], code);
    assert!(error["message"].is_string());
}

fn assert_plain(reply: &Reply, status: u16) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert!(reply.content_type.starts_with("text/plain"), "{reply:?}");
    assert!(reply.body.is_string(), "not JSON: {reply:?}");
}

fn fill(template: &str, id: &str) -> String {
    template
        .replace("{endpoint_id}", id)
        .replace("{key_id}", id)
        .replace("{delivery_id}", id)
        .replace("{event_id}", id)
}

/// Waits (at most 20 s) until the delivery has `status`.
async fn until_status(api: &Api, id: &str, status: &str) {
    let started = std::time::Instant::now();
    loop {
        let r = api.get(&format!("{DELIVERIES}?limit=100")).await;
        let data = r.body["data"].as_array().cloned().unwrap_or_default();
        if data.iter().any(|d| d["id"] == id && d["status"] == status) {
            return;
        }
        assert!(started.elapsed().as_secs() < 20, "{id} never {status}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The delivery routes: list, retry and replay with their 200/202, 404 and 409. Returns a
/// delivery id and an event id for the fault tour.
async fn tour_deliveries(c: &mut Contract, api: &Api) -> (String, String) {
    let post = Method::POST;
    api.emulator.set_delivery_time_scale(60_000);
    let receiver = common::stub_receiver::StubReceiver::start(400).await;
    let ep = api
        .create(json!({"url": receiver.url, "enabled": false}))
        .await;
    api.add_key(&ep, "k1").await;
    api.patch(&fill(ENDPOINT, &ep), json!({"enabled": true}))
        .await;
    let fire = || {
        api.emulator
            .fire_event(
                kayle_emulator::TEST_ORGANIZATION_ID,
                "verification.session.expired",
                None,
            )
            .unwrap()
    };
    let first = fire();
    let delivery = first.delivery_ids[0].clone();
    c.check(DELIVERIES, "get", &api.get(DELIVERIES).await);
    let filtered = format!(
        "{DELIVERIES}?status=pending&endpoint_id={ep}&event_id={}&limit=1&starting_after=whd_x",
        first.event_id
    );
    c.check(DELIVERIES, "get", &api.get(&filtered).await);
    assert_zod(
        &api.get(&format!("{DELIVERIES}?limit=0")).await,
        json!(["limit"]),
    );

    // Failed, payload retained: a retry requeues it, and it succeeds.
    until_status(api, &delivery, "failed").await;
    receiver.answer(200);
    let r = api.call(post.clone(), &fill(RETRY, &delivery), None).await;
    c.check(RETRY, "post", &r);
    assert_eq!(r.status, 200, "{r:?}");
    until_status(api, &delivery, "succeeded").await;
    // Delivered, payload scrubbed: neither a retry nor a replay can send it again.
    let r = api.call(post.clone(), &fill(RETRY, &delivery), None).await;
    c.check(RETRY, "post", &r);
    assert_eq!(r.body["error"]["code"], "WEBHOOK_PAYLOAD_EXPIRED", "{r:?}");
    let r = api
        .call(post.clone(), &fill(REPLAY, &first.event_id), None)
        .await;
    c.check(REPLAY, "post", &r);
    assert_eq!(r.body["error"]["code"], "WEBHOOK_PAYLOAD_EXPIRED", "{r:?}");
    for (template, missing) in [(RETRY, "whd_doesnotexist"), (REPLAY, "evt_doesnotexist")] {
        let r = api.call(post.clone(), &fill(template, missing), None).await;
        assert_eq!(r.status, 404, "{r:?}");
        c.check(template, "post", &r);
    }

    // A replay of an event whose delivery failed: 202 with the event.
    receiver.answer(400);
    let second = fire();
    until_status(api, &second.delivery_ids[0], "failed").await;
    receiver.answer(200);
    let r = api
        .call(post.clone(), &fill(REPLAY, &second.event_id), None)
        .await;
    assert_eq!(r.status, 202, "{r:?}");
    c.check(REPLAY, "post", &r);
    until_status(api, &second.delivery_ids[0], "succeeded").await;
    (delivery, first.event_id)
}

async fn every_route_answers_as_the_spec_or_facts_say(spec: Value) {
    let mut c = Contract {
        spec,
        checked: BTreeSet::new(),
    };
    let api = Api::start().await;
    let post = Method::POST;

    // Create: 200, ZodError 400 (departure), malformed JSON, no Content-Type, 413.
    let r = api
        .post(
            ENDPOINTS,
            json!({"url": "https://example.com/a", "name": "A", "labels": ["x"], "enabled": false}),
        )
        .await;
    c.check(ENDPOINTS, "post", &r);
    let ep = r.body["data"]["endpoint"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api
        .post(ENDPOINTS, json!({"url": "http://example.com"}))
        .await;
    assert_zod(&r, json!(["url"]));
    let raw = |body: String, ct: Option<&'static str>| {
        let mut req = api
            .client
            .post(api.url(ENDPOINTS))
            .header("Authorization", "Bearer kk_test")
            .body(body);
        if let Some(ct) = ct {
            req = req.header("Content-Type", ct);
        }
        async move { common::reply(req.send().await.unwrap()).await }
    };
    assert_plain(
        &raw("{\"url\":".into(), Some("application/json")).await,
        400,
    );
    assert_plain(
        &raw("{\"url\":\"https://example.com/b\"}".into(), None).await,
        500,
    );
    let big = format!("{{\"name\":\"{}\"}}", "a".repeat(2 * 1024 * 1024 + 1));
    assert_bare(
        &raw(big, Some("application/json")).await,
        413,
        "PAYLOAD_TOO_LARGE",
    );

    // List: 200 (with and without filter/cursor), ZodError on a bad query.
    c.check(ENDPOINTS, "get", &api.get(ENDPOINTS).await);
    let r = api
        .get(&format!(
            "{ENDPOINTS}?limit=1&enabled=false&starting_after=whe_unknown"
        ))
        .await;
    c.check(ENDPOINTS, "get", &r);
    assert_zod(
        &api.get(&format!("{ENDPOINTS}?limit=0")).await,
        json!(["limit"]),
    );

    // Get / update / reveal / rotate: 200 and 404; update's handler 400 and ZodError 400.
    let one = fill(ENDPOINT, &ep);
    let missing = fill(ENDPOINT, "whe_doesnotexist");
    c.check(ENDPOINT, "get", &api.get(&one).await);
    c.check(ENDPOINT, "get", &api.get(&missing).await);
    c.check(
        ENDPOINT,
        "patch",
        &api.patch(&one, json!({"name": "B"})).await,
    );
    c.check(
        ENDPOINT,
        "patch",
        &api.patch(&missing, json!({"name": "B"})).await,
    );
    c.check(
        ENDPOINT,
        "patch",
        &api.call(Method::PATCH, &one, None).await,
    );
    assert_zod(&api.patch(&one, json!({})).await, json!([]));
    assert_zod(
        &api.get(&fill(ENDPOINT, "bad.id")).await,
        json!(["endpoint_id"]),
    );
    for template in [REVEAL, ROTATE] {
        c.check(
            template,
            "post",
            &api.call(post.clone(), &fill(template, &ep), None).await,
        );
        let r = api
            .call(post.clone(), &fill(template, "whe_doesnotexist"), None)
            .await;
        c.check(template, "post", &r);
    }

    // Keys: create 200 / 400 (material) / 404, list 200, switch 200 / 404.
    let keys = fill(KEYS, &ep);
    let r = api.post(&keys, key_body("k1", 2048)).await;
    c.check(KEYS, "post", &r);
    let key = r.body["data"]["id"].as_str().unwrap().to_string();
    c.check(
        KEYS,
        "post",
        &api.post(&keys, key_body("small", 1024)).await,
    );
    c.check(
        KEYS,
        "post",
        &api.post(&fill(KEYS, "whe_doesnotexist"), key_body("k", 2048))
            .await,
    );
    let mut bad_alg = key_body("k", 2048);
    bad_alg["algorithm"] = json!("RSA1_5");
    assert_zod(&api.post(&keys, bad_alg).await, json!(["algorithm"]));
    c.check(KEYS, "get", &api.get(&keys).await);
    c.check(
        KEYS,
        "get",
        &api.get(&format!("{keys}?is_active=true&limit=1")).await,
    );
    for template in [DEACTIVATE, REACTIVATE] {
        c.check(
            template,
            "post",
            &api.call(post.clone(), &fill(template, &key), None).await,
        );
        let r = api
            .call(post.clone(), &fill(template, "whk_doesnotexist"), None)
            .await;
        c.check(template, "post", &r);
    }

    // 401 / 403 / unknown routes (FACTS shapes).
    let r = api.call_as("kk_nope", Method::GET, ENDPOINTS, None).await;
    assert_bare(&r, 401, "UNAUTHORIZED");
    assert_plain(&api.get("/v1/webhooks/endpoints/").await, 404);
    assert_plain(&api.call(Method::PUT, &one, None).await, 404);

    let (delivery, event) = tour_deliveries(&mut c, &api).await;

    // 500 on every route, through an injected fault: the documented envelope.
    let routes = [
        (Route::ListEndpoints, ENDPOINTS, Method::GET, None),
        (
            Route::CreateEndpoint,
            ENDPOINTS,
            post.clone(),
            Some(json!({"url": "https://example.com/c"})),
        ),
        (Route::GetEndpoint, ENDPOINT, Method::GET, None),
        (
            Route::UpdateEndpoint,
            ENDPOINT,
            Method::PATCH,
            Some(json!({"name": "C"})),
        ),
        (Route::RevealSecret, REVEAL, post.clone(), None),
        (Route::RotateSecret, ROTATE, post.clone(), None),
        (
            Route::CreateKey,
            KEYS,
            post.clone(),
            Some(key_body("k2", 2048)),
        ),
        (Route::ListKeys, KEYS, Method::GET, None),
        (Route::DeactivateKey, DEACTIVATE, post.clone(), None),
        (Route::ReactivateKey, REACTIVATE, post.clone(), None),
        (Route::ListDeliveries, DELIVERIES, Method::GET, None),
        (Route::RetryDelivery, RETRY, post.clone(), None),
        (Route::ReplayEvent, REPLAY, post.clone(), None),
        (Route::DeleteEndpoint, ENDPOINT, Method::DELETE, None),
    ];
    for (route, template, method, body) in routes {
        let fault = Fault::Status {
            status: 500,
            retry_after_secs: None,
        };
        api.emulator.inject(route, fault, 1);
        let id = if template.contains("{key_id}") {
            &key
        } else if template.contains("{delivery_id}") {
            &delivery
        } else if template.contains("{event_id}") {
            &event
        } else {
            &ep
        };
        let r = api.call(method.clone(), &fill(template, id), body).await;
        assert_eq!(r.status, 500, "{route:?}");
        c.check(template, &method.as_str().to_ascii_lowercase(), &r);
    }

    // Delete last: 200, then 404.
    c.check(
        ENDPOINT,
        "delete",
        &api.call(Method::DELETE, &one, None).await,
    );
    c.check(
        ENDPOINT,
        "delete",
        &api.call(Method::DELETE, &one, None).await,
    );

    let departures: BTreeSet<_> = DEPARTURES
        .iter()
        .map(|(p, m, s)| (p.to_string(), m.to_string(), *s))
        .collect();
    let uncovered: Vec<_> = c
        .documented()
        .difference(&c.checked)
        .filter(|k| !departures.contains(*k))
        .cloned()
        .collect();
    assert!(
        uncovered.is_empty(),
        "documented but not toured: {uncovered:?}"
    );
}
