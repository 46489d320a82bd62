//! The Kayle API client against hostile servers: it reads no answer past its size limit, no
//! listing past its page bound, follows no redirect, sends its cursor encoded, and never
//! sends its token in clear to another machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::Query;
use kayle_sync::api::{ApiError, Client, ClientConfig};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::hostile::{self, Seen};

const TOKEN: &str = "kk_hostile_test_token";

fn client(url: &str) -> Client {
    let mut config = ClientConfig::new(url, SecretString::from(TOKEN));
    // Long enough that a client without a size limit reads far past it before giving up.
    config.timeout = Duration::from_secs(20);
    Client::new(config).expect("client builds")
}

fn endpoint(id: &str) -> Value {
    json!({
        "id": id, "name": null, "labels": [], "url": "https://hooks.example.com/x",
        "enabled": true, "subscribed_event_types": [], "undelivered_payload_retention_hours": 72,
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        "disabled_at": null
    })
}

#[tokio::test]
async fn an_endless_answer_is_cut_off_at_the_size_limit() {
    for declared in [false, true] {
        let (url, seen) = hostile::endless_answer(declared).await;
        let err = client(&url).list_endpoints().await.unwrap_err();
        assert!(matches!(err, ApiError::Decode { .. }), "{err:?}");
        hostile::assert_cut_off(&err.to_string(), &seen);
        assert_eq!(
            seen.requests(),
            1,
            "an oversized answer is not asked for again"
        );
    }
}

/// A listing that answers `has_more` forever, one fresh key per page; after `stop_after`
/// pages it ends, so that a client without a bound finishes (and fails the test).
async fn endless_key_listing(stop_after: u64) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let page = Arc::new(AtomicU64::new(0));
    let router = Router::new().fallback(move || {
        let n = page.fetch_add(1, Ordering::SeqCst);
        async move {
            Json(json!({
                "data": [{"id": format!("whk_{n:032}"), "key_id": format!("k{n}"),
                          "is_active": false, "created_at": "2026-01-01T00:00:00Z"}],
                "pagination": {"has_more": n + 1 < stop_after, "next_cursor": format!("whk_{n:032}")}
            }))
        }
    });
    (hostile::serve(router, seen.clone()).await, seen)
}

#[tokio::test]
async fn a_listing_that_never_ends_stops_at_its_page_bound() {
    let (url, seen) = endless_key_listing(1_000).await;
    let err = client(&url).list_keys("whe_x").await.unwrap_err();
    assert!(
        matches!(err, ApiError::EndlessListing { pages: 100, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("the listing did not end after 100 pages"),
        "{err}"
    );
    assert_eq!(seen.requests(), 100);
}

#[tokio::test]
async fn a_page_larger_than_asked_for_is_refused() {
    let seen = Arc::new(Seen::default());
    let router = Router::new().fallback(|| async {
        let data: Vec<Value> = (0..101)
            .map(|n| endpoint(&format!("whe_{n:032}")))
            .collect();
        Json(json!({"data": data, "pagination": {"has_more": true, "next_cursor": "whe_x"}}))
    });
    let url = hostile::serve(router, seen.clone()).await;
    let err = client(&url).list_endpoints().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("a page holds 101 items, more than the 100 asked for"),
        "{err}"
    );
    assert_eq!(seen.requests(), 1);
}

#[tokio::test]
async fn the_cursor_is_sent_encoded() {
    const CURSOR: &str = "a&limit=1 #x%2F+y";
    let seen = Arc::new(Seen::default());
    let router = Router::new().fallback(|Query(query): Query<Vec<(String, String)>>| async move {
        let first = !query.iter().any(|(name, _)| name == "starting_after");
        Json(json!({
            "data": if first { vec![endpoint("whe_first")] } else { vec![] },
            "pagination": {"has_more": first, "next_cursor": CURSOR}
        }))
    });
    let url = hostile::serve(router, seen.clone()).await;
    let listed = client(&url).list_endpoints().await.unwrap();
    assert_eq!(listed.len(), 1);
    let queries = seen.queries();
    assert_eq!(queries.len(), 2, "{queries:?}");
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(queries[1].as_bytes())
        .into_owned()
        .collect();
    assert_eq!(
        pairs,
        [
            ("limit".to_owned(), "100".to_owned()),
            ("starting_after".to_owned(), CURSOR.to_owned())
        ]
    );
}

#[tokio::test]
async fn a_redirect_to_another_server_does_not_take_the_token_along() {
    let (elsewhere, received) = hostile::recorder().await;
    let (url, seen) = hostile::redirecting_to(&elsewhere).await;
    let err = client(&url).list_endpoints().await.unwrap_err();
    assert_eq!(err.status(), Some(307), "{err:?}");
    assert!(err.to_string().contains("redirected to"), "{err}");
    assert_eq!(seen.requests(), 1);
    assert_eq!(received.requests(), 0, "the redirect was followed");
}

#[test]
fn the_token_is_never_sent_in_clear_to_another_machine() {
    for base in ["http://api.example.com", "http://192.168.1.10:8787"] {
        let err = Client::new(ClientConfig::new(base, SecretString::from(TOKEN))).unwrap_err();
        assert!(err.to_string().contains("unencrypted"), "{base}: {err}");
    }
    let err = Client::new(ClientConfig::new(
        "https://kayle:hunter2@api.kayle.id",
        SecretString::from(TOKEN),
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("must not carry a user name or password"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    for base in [
        "http://127.0.0.1:8787",
        "http://localhost:8787",
        "http://[::1]:8787",
    ] {
        assert!(
            Client::new(ClientConfig::new(base, SecretString::from(TOKEN))).is_ok(),
            "{base}"
        );
    }
}
