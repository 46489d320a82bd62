//! The delivery routes: the listing, a delivery's retry and an event's replay, with the
//! server's 404s and 409s.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};

use super::{Blocked, worker};
use crate::Shared;
use crate::faults::Route;
use crate::responses::{handler_error, list, ok, zod_error};
use crate::routes::begin;
use crate::validation;

const DELIVERY_DOCS: &str = "https://kayle.id/docs/api/webhooks/deliveries";
const EVENT_DOCS: &str = "https://kayle.id/docs/api/webhooks/events";

/// `router` with the delivery routes added.
pub(crate) fn add(router: Router<Arc<Shared>>) -> Router<Arc<Shared>> {
    router
        .route("/v1/webhooks/deliveries", get(list_deliveries))
        .route(
            "/v1/webhooks/deliveries/{delivery_id}/retry",
            post(retry_delivery),
        )
        .route("/v1/webhooks/events/{event_id}/replay", post(replay_event))
}

fn either(result: Result<Response, Response>) -> Response {
    result.unwrap_or_else(|response| response)
}

fn payload_expired() -> Response {
    handler_error(
        StatusCode::CONFLICT,
        "WEBHOOK_PAYLOAD_EXPIRED",
        "Webhook payload is no longer retained.",
        "Payload expired; create a new verification session or handle the event manually.",
        &format!("{DELIVERY_DOCS}#payload-retention"),
    )
}

fn delivery_not_found() -> Response {
    handler_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "Webhook delivery not found.",
        "The webhook delivery with the given ID was not found.",
        &format!("{DELIVERY_DOCS}#retry"),
    )
}

fn event_not_found() -> Response {
    handler_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "Webhook event not found.",
        "The webhook event with the given ID was not found.",
        &format!("{EVENT_DOCS}#replay"),
    )
}

async fn list_deliveries(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    either(
        async {
            let (org, _) = begin(&shared, &headers, body, Route::ListDeliveries, None).await?;
            let q = validation::delivery_query(query.as_deref()).map_err(|i| zod_error(&i))?;
            let store = shared.lock_store();
            let page = store.list_deliveries(&org, &q);
            let views: Vec<_> = page.items.iter().map(|d| d.view()).collect();
            Ok(list(views, q.limit, page.has_more, page.next_cursor))
        }
        .await,
    )
}

async fn retry_delivery(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    either(
        async {
            let target = Some((id.as_str(), "delivery_id"));
            let (org, _) = begin(&shared, &headers, body, Route::RetryDelivery, target).await?;
            let (generation, view) = {
                let mut store = shared.lock_store();
                if store.delivery(&org, &id).is_none() {
                    return Err(delivery_not_found());
                }
                let generation = store.requeue(&id).map_err(|blocked| match blocked {
                    Blocked::Delivering => handler_error(
                        StatusCode::CONFLICT,
                        "CONFLICT",
                        "Webhook delivery cannot be retried.",
                        "The webhook delivery is already in progress.",
                        &format!("{DELIVERY_DOCS}#retry"),
                    ),
                    Blocked::PayloadGone => payload_expired(),
                })?;
                shared.persist(&store);
                let view = store.delivery(&org, &id).map(|d| d.view());
                (generation, view)
            };
            worker::start(&shared, id.clone(), generation);
            Ok(ok(view))
        }
        .await,
    )
}

async fn replay_event(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    either(
        async {
            let target = Some((id.as_str(), "event_id"));
            let (org, _) = begin(&shared, &headers, body, Route::ReplayEvent, target).await?;
            let (requeued, view) = {
                let mut store = shared.lock_store();
                let event = store
                    .event(&org, &id)
                    .cloned()
                    .ok_or_else(event_not_found)?;
                let ids: Vec<String> = store
                    .deliveries_of(&id)
                    .iter()
                    .map(|d| d.id.clone())
                    .collect();
                let outcomes: Vec<_> = ids
                    .into_iter()
                    .map(|delivery| (store.requeue(&delivery), delivery))
                    .collect();
                let requeued: Vec<(String, u64)> = outcomes
                    .iter()
                    .filter_map(|(outcome, d)| outcome.ok().map(|g| (d.clone(), g)))
                    .collect();
                if requeued.is_empty() {
                    let all_gone = !outcomes.is_empty()
                        && outcomes
                            .iter()
                            .all(|(outcome, _)| *outcome == Err(Blocked::PayloadGone));
                    return Err(if all_gone {
                        payload_expired()
                    } else {
                        handler_error(
                            StatusCode::CONFLICT,
                            "CONFLICT",
                            "Webhook event cannot be replayed.",
                            "Only webhook events with replayable deliveries can be replayed.",
                            &format!("{EVENT_DOCS}#replay"),
                        )
                    });
                }
                shared.persist(&store);
                (requeued, store.event_view(&event))
            };
            for (delivery, generation) in requeued {
                worker::start(&shared, delivery, generation);
            }
            let mut response = ok(view);
            *response.status_mut() = StatusCode::ACCEPTED;
            Ok(response)
        }
        .await,
    )
}
