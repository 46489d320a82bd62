//! The API client's delivery calls against the emulator: the filtered listing over several
//! pages, and retry and replay with their refusals.

use crate::support::api_emulated::*;
use kayle_emulator::{Fault, Route, TEST_ORGANIZATION_ID};
use kayle_sync::api::{ApiError, DeliveryFilter, EndpointFields};

const EXPIRED: &str = "verification.session.expired";

#[tokio::test]
async fn deliveries_are_listed_over_every_page_with_filters() {
    let (emulator, _server, client) = start().await;
    // Without a key, each event's delivery fails at once: no receiver needed.
    let a = client
        .create_endpoint(&fields(1))
        .await
        .unwrap()
        .endpoint
        .id;
    let b = client
        .create_endpoint(&fields(2))
        .await
        .unwrap()
        .endpoint
        .id;
    let mut events = Vec::new();
    for _ in 0..60 {
        events.push(
            emulator
                .fire_event(TEST_ORGANIZATION_ID, EXPIRED, None)
                .unwrap(),
        );
    }
    let all = client
        .list_deliveries(&DeliveryFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 120, "two pages of 100 and 20");
    assert!(all.iter().all(|d| d.status == "failed"));
    let of_a = client
        .list_deliveries(&DeliveryFilter {
            endpoint_id: Some(a.clone()),
            status: Some("failed".into()),
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(of_a.len(), 60);
    assert!(of_a.iter().all(|d| d.webhook_endpoint_id == a));
    let of_event = client
        .list_deliveries(&DeliveryFilter {
            event_id: Some(events[7].event_id.clone()),
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    let endpoints: Vec<&str> = of_event
        .iter()
        .map(|d| d.webhook_endpoint_id.as_str())
        .collect();
    assert_eq!(endpoints.len(), 2);
    assert!(endpoints.contains(&a.as_str()) && endpoints.contains(&b.as_str()));
    let pending = client
        .list_deliveries(&DeliveryFilter {
            status: Some("pending".into()),
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    assert!(pending.is_empty());

    // A 503 on a page is retried, as for every listing.
    emulator.inject(Route::ListDeliveries, status(503), 1);
    assert_eq!(
        client
            .list_deliveries(&DeliveryFilter::default())
            .await
            .unwrap()
            .len(),
        120
    );
}

#[tokio::test]
async fn a_listing_since_a_time_stops_at_the_first_page_that_reaches_back_before_it() {
    let (emulator, _server, client) = start().await;
    client.create_endpoint(&fields(1)).await.unwrap();
    for _ in 0..150 {
        emulator
            .fire_event(TEST_ORGANIZATION_ID, EXPIRED, None)
            .unwrap();
    }
    // The emulator's clock runs ahead of the wall clock by a millisecond a record at most.
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    let since = jiff::Timestamp::now();
    let mut recent = Vec::new();
    for _ in 0..5 {
        let fired = emulator
            .fire_event(TEST_ORGANIZATION_ID, EXPIRED, None)
            .unwrap();
        recent.extend(fired.delivery_ids);
    }
    emulator.reset_stats();
    let found = client
        .list_deliveries_since(&DeliveryFilter::default(), since)
        .await
        .unwrap();
    let ids: Vec<&str> = found.iter().map(|d| d.id.as_str()).collect();
    let newest_first: Vec<&str> = recent.iter().rev().map(String::as_str).collect();
    assert_eq!(ids, newest_first);
    assert_eq!(
        count(&emulator, Route::ListDeliveries),
        1,
        "the first page reaches back before the time: no second page is read"
    );
}

#[tokio::test]
async fn a_retry_or_replay_without_a_payload_is_a_conflict() {
    let (emulator, _server, client) = start().await;
    client
        .create_endpoint(&EndpointFields {
            url: Some("https://hooks.example.com/none".into()),
            ..EndpointFields::default()
        })
        .await
        .unwrap();
    let fired = emulator
        .fire_event(TEST_ORGANIZATION_ID, EXPIRED, None)
        .unwrap();
    for err in [
        client
            .retry_delivery(&fired.delivery_ids[0])
            .await
            .unwrap_err(),
        client.replay_event(&fired.event_id).await.unwrap_err(),
    ] {
        match err {
            ApiError::Status { status, code, .. } => {
                assert_eq!(status, 409);
                assert_eq!(code.as_deref(), Some("WEBHOOK_PAYLOAD_EXPIRED"));
            }
            other => panic!("{other:?}"),
        }
    }
    let missing = client.retry_delivery("whd_missing").await.unwrap_err();
    assert!(
        matches!(missing, ApiError::Status { status: 404, .. }),
        "{missing:?}"
    );
    emulator.inject(
        Route::RetryDelivery,
        Fault::Status {
            status: 500,
            retry_after_secs: None,
        },
        1,
    );
    // Retried after the 500, then the real answer: still the conflict.
    let err = client
        .retry_delivery(&fired.delivery_ids[0])
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApiError::Status { status: 409, .. }),
        "{err:?}"
    );
}
