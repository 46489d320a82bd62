//! The API client against the Kayle emulator: retries, lost answers, error shapes, paging
//! (including the server's ignored-cursor trap), keys and secrets, with faults injected.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::support::api_emulated::*;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::IntoResponse;
use kayle_emulator::{Config, Emulator, Fault, Route};
use kayle_sync::api::{ApiError, Client, ClientConfig, EndpointFields};
use secrecy::{ExposeSecret, SecretString};

#[tokio::test]
async fn a_503_on_list_and_update_is_retried_and_succeeds() {
    let (emulator, _server, client) = start().await;
    let created = client.create_endpoint(&fields(1)).await.unwrap();
    let id = created.endpoint.id.clone();

    emulator.inject(Route::ListEndpoints, status(503), 1);
    let listed = client
        .list_endpoints()
        .await
        .expect("retried list succeeds");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(count(&emulator, Route::ListEndpoints), 2);

    emulator.inject(Route::UpdateEndpoint, status(503), 1);
    let change = EndpointFields {
        name: Some(Some("renamed".into())),
        ..EndpointFields::default()
    };
    let updated = client.update_endpoint(&id, &change).await.unwrap();
    assert_eq!(updated.name.as_deref(), Some("renamed"));
    assert_eq!(count(&emulator, Route::UpdateEndpoint), 2);
}

#[tokio::test]
async fn a_429_waits_for_retry_after_then_succeeds() {
    let (emulator, _server, client) = start().await;
    emulator.inject(
        Route::ListEndpoints,
        Fault::Status {
            status: 429,
            retry_after_secs: Some(1),
        },
        1,
    );
    let started = Instant::now();
    let listed = client.list_endpoints().await.expect("429 then success");
    let elapsed = started.elapsed();
    assert!(listed.is_empty());
    assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    assert_eq!(count(&emulator, Route::ListEndpoints), 2);
}

#[tokio::test]
async fn a_dropped_create_answer_is_outcome_unknown_and_not_retried() {
    let (emulator, _server, client) = start().await;
    emulator.inject(Route::CreateEndpoint, Fault::DropAfterCommit, 1);
    let err = client.create_endpoint(&fields(1)).await.unwrap_err();
    assert!(matches!(err, ApiError::OutcomeUnknown { .. }), "{err:?}");
    assert!(err.is_outcome_unknown());
    assert_no_secret(&err);
    assert_eq!(count(&emulator, Route::CreateEndpoint), 1);
    let live = emulator.endpoints();
    assert_eq!(live.len(), 1, "the create took effect on the server");
    assert_eq!(live[0]["url"], "https://hooks.example.com/kayle/1");
}

#[tokio::test]
async fn a_500_on_create_is_outcome_unknown_and_not_retried() {
    let (emulator, _server, client) = start().await;
    emulator.inject(Route::CreateEndpoint, status(500), 1);
    let err = client.create_endpoint(&fields(1)).await.unwrap_err();
    assert!(matches!(err, ApiError::OutcomeUnknown { .. }), "{err:?}");
    assert_no_secret(&err);
    assert_eq!(count(&emulator, Route::CreateEndpoint), 1);
    assert!(emulator.endpoints().is_empty());
}

#[tokio::test]
async fn a_create_hanging_past_the_timeout_is_outcome_unknown() {
    let emulator = Emulator::new(Config::test(TOKEN)).unwrap();
    let server = emulator.serve("127.0.0.1:0").await.unwrap();
    let client = client_for(&server.url(), TOKEN, Duration::from_millis(500));
    emulator.inject(
        Route::CreateEndpoint,
        Fault::Hang(Duration::from_secs(4)),
        1,
    );
    let started = Instant::now();
    let err = client.create_endpoint(&fields(1)).await.unwrap_err();
    assert!(matches!(err, ApiError::OutcomeUnknown { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(3000));
    assert_no_secret(&err);
    assert_eq!(count(&emulator, Route::CreateEndpoint), 1);
}

#[tokio::test]
async fn a_create_answered_with_a_garbled_body_is_outcome_unknown() {
    let emulator = Emulator::new(Config::test(TOKEN)).unwrap();
    // The create is carried out, then its 200 answer is cut to a body that does not parse.
    let garble = axum::middleware::from_fn(|request: Request, next: Next| async move {
        let is_create = request.method() == axum::http::Method::POST
            && request.uri().path() == "/v1/webhooks/endpoints";
        let response = next.run(request).await;
        if is_create && response.status().is_success() {
            let (parts, _) = response.into_parts();
            return axum::response::Response::from_parts(
                parts,
                axum::body::Body::from(r#"{"data": {"endpoint": "#),
            );
        }
        response
    });
    let url = serve_router(emulator.router().layer(garble)).await;
    let client = client_for(&url, TOKEN, Duration::from_secs(5));
    let err = client.create_endpoint(&fields(1)).await.unwrap_err();
    assert!(matches!(err, ApiError::OutcomeUnknown { .. }), "{err:?}");
    assert_no_secret(&err);
    assert_eq!(count(&emulator, Route::CreateEndpoint), 1);
    assert_eq!(emulator.endpoints().len(), 1, "the create took effect");
}

#[tokio::test]
async fn a_redirect_is_reported_not_followed() {
    let emulator = Emulator::new(Config::test(TOKEN)).unwrap();
    // Everything under /moved answers 303 See Other to the same path without the prefix: a
    // client that follows it turns the PATCH or DELETE into a GET that "succeeds".
    let redirect = axum::middleware::from_fn(|request: Request, next: Next| async move {
        match request.uri().path().strip_prefix("/moved") {
            Some(rest) => axum::response::Response::builder()
                .status(303)
                .header("location", rest.to_owned())
                .body(axum::body::Body::empty())
                .unwrap(),
            None => next.run(request).await,
        }
    });
    let url = serve_router(emulator.router().layer(redirect)).await;
    let direct = client_for(&url, TOKEN, Duration::from_secs(5));
    let id = direct
        .create_endpoint(&fields(1))
        .await
        .unwrap()
        .endpoint
        .id;
    let moved = client_for(&format!("{url}/moved"), TOKEN, Duration::from_secs(5));
    let change = EndpointFields {
        name: Some(Some("renamed".into())),
        ..EndpointFields::default()
    };
    let err = moved.update_endpoint(&id, &change).await.unwrap_err();
    assert_eq!(err.status(), Some(303), "{err:?}");
    assert!(err.to_string().contains("/v1/webhooks/endpoints/"), "{err}");
    let err = moved.delete_endpoint(&id).await.unwrap_err();
    assert_eq!(err.status(), Some(303), "{err:?}");
    let live = emulator.endpoints();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["name"], "endpoint 1");
}

#[tokio::test]
async fn a_validation_error_names_each_failing_field() {
    let (_emulator, _server, client) = start().await;
    let bad = EndpointFields {
        url: Some("not a url".into()),
        name: Some(Some("n".repeat(300))),
        ..EndpointFields::default()
    };
    let err = client.create_endpoint(&bad).await.unwrap_err();
    let ApiError::Status { status, issues, .. } = &err else {
        panic!("expected a status error, got {err:?}");
    };
    assert_eq!(*status, 400);
    let paths: HashSet<&str> = issues.iter().map(|i| i.path.as_str()).collect();
    assert!(paths.contains("url"), "{issues:?}");
    assert!(paths.contains("name"), "{issues:?}");
    assert!(issues.iter().all(|i| !i.message.is_empty()), "{issues:?}");
    let text = err.to_string();
    assert!(text.contains("url:"), "{text}");
    assert!(text.contains("name:"), "{text}");
    assert!(text.contains("creating an endpoint"), "{text}");
    assert_no_secret(&err);

    // An empty PATCH is refused as a whole: the issue's path is empty.
    let id = new_endpoint(&client).await;
    let err = client
        .update_endpoint(&id, &EndpointFields::default())
        .await
        .unwrap_err();
    let ApiError::Status { issues, .. } = &err else {
        panic!("expected a status error, got {err:?}");
    };
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].path, "");
    assert!(err.to_string().contains("(body)"), "{err}");
}

#[tokio::test]
async fn paging_reads_every_endpoint_once_newest_first() {
    let (emulator, _server, client) = start().await;
    for n in 0..250 {
        client.create_endpoint(&fields(n)).await.unwrap();
    }
    emulator.reset_stats();
    let listed = client.list_endpoints().await.unwrap();
    assert_eq!(count(&emulator, Route::ListEndpoints), 3);
    // The listing is kept while planning: without the room its growth left.
    assert_eq!(listed.capacity(), listed.len());
    let ids: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 250);
    let expected: Vec<String> = emulator
        .endpoints()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, expected, "newest first, as the server orders them");
    assert_eq!(listed[0].url, "https://hooks.example.com/kayle/249");
}

#[tokio::test]
async fn an_ignored_cursor_restarts_the_listing_without_duplicates() {
    let emulator = emulator_with(150).await;
    let url = serve_with_ignored_cursor(&emulator, 1).await;
    let client = client_for(&url, TOKEN, Duration::from_secs(5));
    let listed = client.list_endpoints().await.expect("restart completes");
    let ids: HashSet<&str> = listed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), listed.len(), "no endpoint twice");
    assert_eq!(listed.len(), 150, "complete");
    // page 1, page 1 again (ignored cursor), then page 1 and page 2.
    assert_eq!(count(&emulator, Route::ListEndpoints), 4);
}

#[tokio::test]
async fn a_cursor_ignored_forever_ends_in_unstable_listing() {
    let emulator = emulator_with(150).await;
    let url = serve_with_ignored_cursor(&emulator, usize::MAX).await;
    let client = client_for(&url, TOKEN, Duration::from_secs(5));
    let err = tokio::time::timeout(Duration::from_secs(10), client.list_endpoints())
        .await
        .expect("the client does not loop")
        .unwrap_err();
    assert!(matches!(err, ApiError::UnstableListing { .. }), "{err:?}");
    assert_no_secret(&err);
    // Each of the client's three attempts reads page 1, then page 1 again.
    assert_eq!(count(&emulator, Route::ListEndpoints), 6);
}

#[tokio::test]
async fn auth_not_found_and_repeated_delete() {
    let (emulator, server, client) = start().await;
    let wrong = client_for(&server.url(), "kk_wrong", Duration::from_secs(5));
    let err = wrong.list_endpoints().await.unwrap_err();
    match &err {
        ApiError::Status { status, code, .. } => {
            assert_eq!(*status, 401);
            assert_eq!(code.as_deref(), Some("UNAUTHORIZED"));
        }
        other => panic!("expected a 401, got {other:?}"),
    }
    assert_no_secret(&err);
    assert!(!err.to_string().contains("kk_wrong"), "{err}");

    let unknown = format!("whe_{}", "a".repeat(32));
    let err = client.get_endpoint(&unknown).await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err:?}");
    assert_no_secret(&err);

    let created = client.create_endpoint(&fields(1)).await.unwrap();
    let id = created.endpoint.id;
    client.delete_endpoint(&id).await.expect("first delete");
    assert!(emulator.endpoints().is_empty());
    client
        .delete_endpoint(&id)
        .await
        .expect("deleting a deleted endpoint is fine");
    assert_eq!(count(&emulator, Route::DeleteEndpoint), 2);
}

#[tokio::test]
async fn a_delete_that_reaches_no_api_route_is_an_error() {
    let (emulator, server, client) = start().await;
    let id = new_endpoint(&client).await;
    // A wrong base URL: the server's plain-text 404 for an unknown route, not NOT_FOUND.
    let misrouted = client_for(
        &format!("{}/wrong-prefix", server.url()),
        TOKEN,
        Duration::from_secs(5),
    );
    let err = misrouted.delete_endpoint(&id).await.unwrap_err();
    assert_eq!(err.status(), Some(404), "{err:?}");
    assert_eq!(emulator.endpoints().len(), 1, "nothing was deleted");
}

#[tokio::test]
async fn keys_and_secrets_round_trip() {
    let (emulator, _server, client) = start().await;
    let created = client.create_endpoint(&fields(1)).await.unwrap();
    let id = created.endpoint.id.clone();
    let debug = format!("{created:?}");
    assert!(!debug.contains("whsec_"), "{debug}");
    assert!(created.signing_secret.expose_secret().starts_with("whsec_"));

    let revealed = client.reveal_secret(&id).await.unwrap();
    assert_eq!(
        revealed.expose_secret(),
        created.signing_secret.expose_secret()
    );
    let rotated = client.rotate_secret(&id, later()).await.unwrap();
    assert_ne!(
        rotated.expose_secret(),
        created.signing_secret.expose_secret()
    );
    assert_eq!(
        emulator.signing_secret(&id).as_deref(),
        Some(rotated.expose_secret())
    );
    assert_eq!(
        client.reveal_secret(&id).await.unwrap().expose_secret(),
        rotated.expose_secret()
    );

    let generated = tokio::task::spawn_blocking(|| kayle_sync::apply::keys::generate(2048))
        .await
        .unwrap()
        .unwrap();
    let first = client
        .create_key(&id, "k1", generated.public.to_api_jwk("k1"))
        .await
        .expect("key registered");
    assert_eq!(first.key_id, "k1");
    assert!(first.is_active);
    let second = client
        .create_key(&id, "k2", generated.public.to_api_jwk("k2"))
        .await
        .unwrap();
    let keys = client.list_keys(&id).await.unwrap();
    let listed: Vec<(&str, bool)> = keys
        .iter()
        .map(|k| (k.key_id.as_str(), k.is_active))
        .collect();
    assert_eq!(listed, vec![("k2", true), ("k1", false)], "newest first");

    let off = client.deactivate_key(&second.id).await.unwrap();
    assert!(!off.is_active);
    let on = client.reactivate_key(&first.id).await.unwrap();
    assert!(on.is_active);
    let keys = client.list_keys(&id).await.unwrap();
    let active: Vec<&str> = keys
        .iter()
        .filter(|k| k.is_active)
        .map(|k| k.key_id.as_str())
        .collect();
    assert_eq!(active, vec!["k1"]);
}

#[tokio::test]
async fn reveal_is_repeated_after_a_failure_and_a_lost_rotation_is_not() {
    let (emulator, _server, client) = start().await;
    let id = new_endpoint(&client).await;
    emulator.inject(Route::RevealSecret, status(503), 1);
    let revealed = client.reveal_secret(&id).await.expect("retried reveal");
    assert_eq!(count(&emulator, Route::RevealSecret), 2);
    // A lost rotation may still land after a repeat and replace the secret the repeat
    // returned: it is reported, not repeated.
    emulator.inject(Route::RotateSecret, Fault::DropAfterCommit, 1);
    let err = client.rotate_secret(&id, later()).await.unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert_eq!(count(&emulator, Route::RotateSecret), 1);
    assert_no_secret(&err);
    let rotated = client
        .rotate_secret(&id, later())
        .await
        .expect("a plain rotation");
    assert_ne!(rotated.expose_secret(), revealed.expose_secret());
    assert_eq!(
        emulator.signing_secret(&id).as_deref(),
        Some(rotated.expose_secret()),
        "the secret returned is the current one"
    );
}

#[tokio::test]
async fn retries_are_bounded_in_count_and_in_waiting_time() {
    let (emulator, _server, client) = start().await;
    emulator.inject(Route::ListEndpoints, status(503), 10);
    let err = client.list_endpoints().await.unwrap_err();
    assert_eq!(err.status(), Some(503), "{err:?}");
    assert_eq!(count(&emulator, Route::ListEndpoints), 4, "max_attempts");
    assert_no_secret(&err);

    emulator.clear_faults();
    emulator.reset_stats();
    // A wait longer than the whole budget (5 s) is not waited for at all.
    emulator.inject(
        Route::ListEndpoints,
        Fault::Status {
            status: 429,
            retry_after_secs: Some(60),
        },
        1,
    );
    let started = Instant::now();
    let err = client.list_endpoints().await.unwrap_err();
    assert_eq!(err.status(), Some(429), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(count(&emulator, Route::ListEndpoints), 1);
}

#[tokio::test]
async fn a_read_hanging_past_the_timeout_is_repeated() {
    let emulator = Emulator::new(Config::test(TOKEN)).unwrap();
    let server = emulator.serve("127.0.0.1:0").await.unwrap();
    let setup = client_for(&server.url(), TOKEN, Duration::from_secs(5));
    let client = client_for(&server.url(), TOKEN, Duration::from_millis(500));
    let id = setup.create_endpoint(&fields(1)).await.unwrap().endpoint.id;
    emulator.inject(Route::GetEndpoint, Fault::Hang(Duration::from_secs(4)), 1);
    let started = Instant::now();
    let got = client
        .get_endpoint(&id)
        .await
        .expect("second attempt answers");
    assert_eq!(got.id, id);
    assert!(started.elapsed() < Duration::from_millis(3000));
    assert_eq!(count(&emulator, Route::GetEndpoint), 2);
}

#[tokio::test]
async fn a_failed_key_create_is_outcome_unknown_and_not_retried() {
    let (emulator, _server, client) = start().await;
    let id = new_endpoint(&client).await;
    let generated = tokio::task::spawn_blocking(|| kayle_sync::apply::keys::generate(2048))
        .await
        .unwrap()
        .unwrap();
    emulator.inject(Route::CreateKey, Fault::DropAfterCommit, 1);
    let err = client
        .create_key(&id, "k1", generated.public.to_api_jwk("k1"))
        .await
        .unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert_eq!(count(&emulator, Route::CreateKey), 1);
    assert_eq!(emulator.keys(&id).len(), 1, "the key was registered");
}

#[tokio::test]
async fn a_429_on_create_is_retried_because_nothing_was_done() {
    let (emulator, _server, client) = start().await;
    emulator.inject(Route::CreateEndpoint, status(429), 1);
    client.create_endpoint(&fields(1)).await.expect("created");
    assert_eq!(count(&emulator, Route::CreateEndpoint), 2);
    assert_eq!(emulator.endpoints().len(), 1);
}

#[test]
fn a_base_url_that_is_not_http_is_refused_up_front() {
    for base in [
        "api.kayle.id",
        "ftp://api.kayle.id",
        "",
        "ftp://user:pw123@host",
    ] {
        let config = ClientConfig::new(base, SecretString::from(TOKEN.to_owned()));
        let err = Client::new(config).expect_err(base);
        assert!(err.to_string().contains("base URL"), "{err}");
        assert!(!err.to_string().contains("pw123"), "{err}");
    }
    let config = ClientConfig::new(
        "https://api.kayle.id/",
        SecretString::from(TOKEN.to_owned()),
    );
    assert!(Client::new(config).is_ok());
}

/// An update whose answer was lost may still land after whatever the caller writes next: it
/// is reported, not repeated. One the server refused with a 5xx is repeated.
#[tokio::test]
async fn a_lost_update_answer_is_reported_and_a_refused_one_repeated() {
    let (emulator, _server, client) = start().await;
    let id = new_endpoint(&client).await;
    let change = EndpointFields {
        enabled: Some(false),
        ..EndpointFields::default()
    };
    emulator.inject(Route::UpdateEndpoint, Fault::DropAfterCommit, 1);
    let err = client.update_endpoint(&id, &change).await.unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert_eq!(count(&emulator, Route::UpdateEndpoint), 1);

    emulator.inject(Route::UpdateEndpoint, status(503), 1);
    let updated = client
        .update_endpoint(&id, &change)
        .await
        .expect("repeated after the refusal");
    assert!(!updated.enabled);
    assert_eq!(count(&emulator, Route::UpdateEndpoint), 3);
}

#[tokio::test]
async fn an_error_body_echoing_the_token_and_escape_codes_shows_neither() {
    // Not shaped like a Kayle key: only the client knows it is a credential.
    let token = "opaque-credential-7f3a9c";
    let echo = |request: Request| async move {
        let auth = request
            .headers()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bare = auth.trim_start_matches("Bearer ").to_owned();
        if request.method() == axum::http::Method::DELETE {
            // Plain text, with the token where the 500-character cut would split it.
            let text = format!("{}{bare}", "x".repeat(490));
            return (axum::http::StatusCode::BAD_REQUEST, text).into_response();
        }
        let message = format!(
            "bad key {bare}; you sent {auth} \u{1b}]8;;http://evil\u{7}here\u{1b}]8;;\u{7}\rforged"
        );
        let body = serde_json::json!({"error": {
            "code": "UNAUTHORIZED\u{1b}[2J",
            "message": message,
            "hint": format!("check {bare}"),
        }});
        (axum::http::StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
    };
    let url = serve_router(axum::Router::new().fallback(echo)).await;
    let client = client_for(&url, token, Duration::from_secs(5));
    let errors = [
        client.list_endpoints().await.unwrap_err(),
        client.get_endpoint("whe_\u{1b}[31mred").await.unwrap_err(),
        client.delete_endpoint("whe_x").await.unwrap_err(),
    ];
    for err in &errors {
        let text = format!("{err}\n{err:?}");
        assert!(!text.contains(&token[..10]), "the token shows: {text}");
        assert!(
            !text.contains(['\u{1b}', '\r']),
            "raw control codes: {text:?}"
        );
        assert!(text.contains("(redacted)"), "{text}");
    }
    let shown = errors[1].to_string();
    assert!(shown.contains("whe_\\u{1b}[31mred"), "{shown}");
    assert!(
        shown.contains("\\u{1b}]8;;http://evil"),
        "escaped, not dropped: {shown}"
    );
}

/// A time by which any request here leaves.
fn later() -> std::time::SystemTime {
    std::time::SystemTime::now() + std::time::Duration::from_secs(3600)
}

#[tokio::test]
async fn a_rotation_that_cannot_leave_in_time_is_not_sent() {
    let (emulator, _server, client) = start().await;
    let id = new_endpoint(&client).await;
    let before = emulator.signing_secret(&id);
    let passed = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    let err = client.rotate_secret(&id, passed).await.unwrap_err();
    assert!(matches!(err, ApiError::NotSentInTime { .. }), "{err:?}");
    assert_eq!(count(&emulator, Route::RotateSecret), 0);
    assert_eq!(emulator.signing_secret(&id), before);
}

/// A new endpoint's id.
async fn new_endpoint(client: &Client) -> String {
    client
        .create_endpoint(&fields(1))
        .await
        .unwrap()
        .endpoint
        .id
}

/// Serves the emulator behind a layer that replaces the signing secret of every answer that
/// carries one with `secret`, as a server off the API's contract might.
async fn serving_signing_secrets(secret: &'static str) -> (Emulator, Client) {
    let emulator = Emulator::new(Config::test(TOKEN)).unwrap();
    let swap = axum::middleware::from_fn(move |request: Request, next: Next| async move {
        let response = next.run(request).await;
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let mut value: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(value) => value,
            Err(_) => {
                return axum::response::Response::from_parts(parts, axum::body::Body::from(bytes));
            }
        };
        if value.get("signing_secret").is_some() {
            value["signing_secret"] = secret.into();
        }
        if value["data"].get("signing_secret").is_some() {
            value["data"]["signing_secret"] = secret.into();
        }
        let mut parts = parts;
        parts.headers.remove(axum::http::header::CONTENT_LENGTH);
        axum::response::Response::from_parts(parts, axum::body::Body::from(value.to_string()))
    });
    let url = serve_router(emulator.router().layer(swap)).await;
    (emulator, client_for(&url, TOKEN, Duration::from_secs(5)))
}

#[tokio::test]
async fn a_signing_secret_the_scrubber_cannot_recognize_is_refused_unquoted() {
    let secret = "Zq9xPLmN4rT7vW2yB6cD8fG1hJ3kL5mN";
    let (emulator, client) = serving_signing_secrets(secret).await;
    let err = client.create_endpoint(&fields(1)).await.unwrap_err();
    // The create took effect: the caller must look before creating again.
    assert!(matches!(err, ApiError::OutcomeUnknown { .. }), "{err:?}");
    assert_eq!(emulator.endpoints().len(), 1);
    let id = emulator.endpoints()[0]["id"].as_str().unwrap().to_owned();
    let revealed = client.reveal_secret(&id).await.unwrap_err();
    assert!(matches!(revealed, ApiError::Decode { .. }), "{revealed:?}");
    let rotated = client
        .rotate_secret(&id, std::time::SystemTime::now() + Duration::from_secs(30))
        .await
        .unwrap_err();
    assert!(
        matches!(rotated, ApiError::OutcomeUnknown { .. }),
        "{rotated:?}"
    );
    for err in [err, revealed, rotated] {
        let text = format!("{err} {err:?}");
        assert!(!text.contains(secret), "{text}");
        assert!(
            text.contains("not shaped like a Kayle signing secret"),
            "{text}"
        );
    }
}
