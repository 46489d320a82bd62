//! The Kayle webhook API routes: auth, body handling and the handlers.

// Handlers return early with a finished `Response`; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::Value;

use crate::faults::Route;
use crate::key_validation;
use crate::responses::{
    bare_error, endpoint_not_found, handler_error, key_not_found, list, ok, plain, zod_error,
};
use crate::store::Page;
use crate::validation;
use crate::{Shared, Token};

/// The largest body the server takes: 2 MiB.
pub(crate) const BODY_LIMIT: usize = 2 * 1024 * 1024;
use crate::responses::DOCS;

pub(crate) fn router(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    crate::deliveries::routes::add(Router::new())
        .route(
            "/v1/webhooks/endpoints",
            get(list_endpoints).post(create_endpoint),
        )
        .route(
            "/v1/webhooks/endpoints/{endpoint_id}",
            get(get_endpoint)
                .patch(update_endpoint)
                .delete(delete_endpoint),
        )
        .route(
            "/v1/webhooks/endpoints/{endpoint_id}/signing-secret/reveal",
            post(reveal_secret),
        )
        .route(
            "/v1/webhooks/endpoints/{endpoint_id}/signing-secret/rotate",
            post(rotate_secret),
        )
        .route(
            "/v1/webhooks/endpoints/{endpoint_id}/keys",
            get(list_keys).post(create_key),
        )
        .route(
            "/v1/webhooks/keys/{key_id}/deactivate",
            post(deactivate_key),
        )
        .route(
            "/v1/webhooks/keys/{key_id}/reactivate",
            post(reactivate_key),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            shared,
            crate::faults::middleware,
        ))
}

/// The token's organization when it is valid and carries the scope the route needs.
fn authorize(shared: &Shared, headers: &HeaderMap, route: Route) -> Result<String, Response> {
    let unauthorized = || bare_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Unauthorized");
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthorized)?;
    let token = value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(unauthorized)?;
    let found: &Token = shared
        .config
        .tokens
        .iter()
        .find(|t| t.value == token)
        .ok_or_else(unauthorized)?;
    let allowed = if route.is_write() {
        found.write
    } else {
        found.read
    };
    if !allowed {
        return Err(bare_error(StatusCode::FORBIDDEN, "FORBIDDEN", "Forbidden"));
    }
    if shared.is_frozen(&found.organization_id) {
        return Err(handler_error(
            StatusCode::GONE,
            "ORGANIZATION_FROZEN",
            "This organization is scheduled for deletion. API keys and verification flows are disabled until the deletion is canceled.",
            "Cancel the pending deletion from the dashboard, then retry.",
            "https://kayle.id/docs/errors/organization-frozen",
        ));
    }
    Ok(found.organization_id.clone())
}

/// A request body: absent when it was not sent as JSON (the server then skips validation).
enum JsonBody {
    NotJson,
    Json(Value),
}

async fn read_body(body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|_| {
        bare_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "Request body is too large.",
        )
    })
}

fn parse_json(headers: &HeaderMap, bytes: &[u8]) -> Result<JsonBody, Response> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        return Ok(JsonBody::NotJson);
    }
    serde_json::from_slice(bytes)
        .map(JsonBody::Json)
        .map_err(|_| {
            (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
                "Malformed JSON in request body",
            )
                .into_response()
        })
}

/// Body limit, then auth, then the path id, in the server's order.
pub(crate) async fn begin(
    shared: &Shared,
    headers: &HeaderMap,
    body: Body,
    route: Route,
    id: Option<(&str, &'static str)>,
) -> Result<(String, Bytes), Response> {
    let bytes = read_body(body).await?;
    let org = authorize(shared, headers, route)?;
    if let Some((id, field)) = id {
        validation::path_id(id, field).map_err(|issues| zod_error(&issues))?;
    }
    Ok((org, bytes))
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(response) => return response,
        }
    };
}

async fn list_endpoints(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (org, _) = tri!(begin(&shared, &headers, body, Route::ListEndpoints, None).await);
    let q = tri!(validation::list_query(query.as_deref(), "enabled").map_err(|i| zod_error(&i)));
    let store = shared.lock_store();
    let Page {
        items,
        has_more,
        next_cursor,
    } = store.list_endpoints(&org, q.filter, q.limit, q.starting_after.as_deref());
    let views: Vec<_> = items.iter().map(|e| e.view()).collect();
    list(views, q.limit, has_more, next_cursor)
}

async fn create_endpoint(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let route = Route::CreateEndpoint;
    let (org, bytes) = tri!(begin(&shared, &headers, body, route, None).await);
    let JsonBody::Json(json) = tri!(parse_json(&headers, &bytes)) else {
        // Without a JSON content type the server skips validation and fails later.
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let new = tri!(
        validation::create_endpoint(&json, shared.config.allow_loopback_urls)
            .map_err(|i| zod_error(&i))
    );
    let mut store = shared.lock_store();
    let record = store.create_endpoint(&org, new);
    shared.after_write(&store, Some(&record.id), route);
    #[derive(Serialize)]
    struct Created<'a> {
        endpoint: crate::store::EndpointView<'a>,
        signing_secret: &'a str,
    }
    ok(Created {
        endpoint: record.view(),
        signing_secret: &record.signing_secret,
    })
}

async fn get_endpoint(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let target = Some((id.as_str(), "endpoint_id"));
    let (org, _) = tri!(begin(&shared, &headers, body, Route::GetEndpoint, target).await);
    let store = shared.lock_store();
    match store.endpoint(&org, &id) {
        Some(record) => ok(record.view()),
        None => endpoint_not_found("endpoints#get-by-id"),
    }
}

async fn update_endpoint(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let route = Route::UpdateEndpoint;
    let target = Some((id.as_str(), "endpoint_id"));
    let (org, bytes) = tri!(begin(&shared, &headers, body, route, target).await);
    let JsonBody::Json(json) = tri!(parse_json(&headers, &bytes)) else {
        return handler_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "Bad request.",
            validation::empty_patch_hint(),
            &format!("{DOCS}/endpoints#update"),
        );
    };
    let patch = tri!(
        validation::update_endpoint(&json, shared.config.allow_loopback_urls)
            .map_err(|i| zod_error(&i))
    );
    let mut store = shared.lock_store();
    match store.update_endpoint(&org, &id, patch) {
        Some(record) => {
            shared.after_write(&store, Some(&record.id), route);
            ok(record.view())
        }
        None => endpoint_not_found("endpoints#update"),
    }
}

async fn delete_endpoint(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let route = Route::DeleteEndpoint;
    let target = Some((id.as_str(), "endpoint_id"));
    let (org, _) = tri!(begin(&shared, &headers, body, route, target).await);
    let mut store = shared.lock_store();
    if !store.delete_endpoint(&org, &id) {
        return endpoint_not_found("endpoints#delete");
    }
    shared.after_write(&store, None, route);
    ok(serde_json::json!({"message": "Webhook endpoint deleted.", "status": "success"}))
}

#[derive(Serialize)]
struct Secret<'a> {
    endpoint_id: &'a str,
    signing_secret: &'a str,
}

async fn reveal_secret(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let target = Some((id.as_str(), "endpoint_id"));
    let (org, _) = tri!(begin(&shared, &headers, body, Route::RevealSecret, target).await);
    let store = shared.lock_store();
    match store.endpoint(&org, &id) {
        Some(record) => ok(Secret {
            endpoint_id: &record.id,
            signing_secret: &record.signing_secret,
        }),
        None => endpoint_not_found("endpoints#reveal-signing-secret"),
    }
}

async fn rotate_secret(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let route = Route::RotateSecret;
    let target = Some((id.as_str(), "endpoint_id"));
    let (org, _) = tri!(begin(&shared, &headers, body, route, target).await);
    let mut store = shared.lock_store();
    match store.rotate_secret(&org, &id) {
        Some(secret) => {
            shared.after_write(&store, None, route);
            ok(Secret {
                endpoint_id: &id,
                signing_secret: &secret,
            })
        }
        None => endpoint_not_found("endpoints#rotate-signing-secret"),
    }
}

async fn create_key(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let route = Route::CreateKey;
    let target = Some((id.as_str(), "endpoint_id"));
    let (org, bytes) = tri!(begin(&shared, &headers, body, route, target).await);
    let JsonBody::Json(json) = tri!(parse_json(&headers, &bytes)) else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let new = tri!(key_validation::create_key(&json).map_err(|i| zod_error(&i)));
    let mut store = shared.lock_store();
    if store.endpoint(&org, &id).is_none() {
        return endpoint_not_found("keys#create");
    }
    if !key_validation::key_material_is_acceptable(&new.jwk) {
        return handler_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "Bad request.",
            key_validation::KEY_HINT,
            &format!("{DOCS}/keys#create"),
        );
    }
    match store.create_key(&org, &id, new) {
        Some(key) => {
            shared.after_write(&store, Some(&id), route);
            ok(key.view())
        }
        None => endpoint_not_found("keys#create"),
    }
}

async fn list_keys(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let target = Some((id.as_str(), "endpoint_id"));
    let (org, _) = tri!(begin(&shared, &headers, body, Route::ListKeys, target).await);
    let q = tri!(validation::list_query(query.as_deref(), "is_active").map_err(|i| zod_error(&i)));
    let store = shared.lock_store();
    match store.list_keys(&org, &id, q.filter, q.limit, q.starting_after.as_deref()) {
        Some(page) => {
            let views: Vec<_> = page.items.iter().map(|k| k.view()).collect();
            list(views, q.limit, page.has_more, page.next_cursor)
        }
        None => endpoint_not_found("keys#list"),
    }
}

async fn switch_key(
    shared: Arc<Shared>,
    id: String,
    headers: HeaderMap,
    body: Body,
    active: bool,
) -> Response {
    let (route, anchor) = if active {
        (Route::ReactivateKey, "reactivate")
    } else {
        (Route::DeactivateKey, "deactivate")
    };
    let target = Some((id.as_str(), "key_id"));
    let (org, _) = tri!(begin(&shared, &headers, body, route, target).await);
    let mut store = shared.lock_store();
    match store.set_key_active(&org, &id, active) {
        Some(key) => {
            shared.after_write(&store, Some(&key.webhook_endpoint_id), route);
            ok(key.view())
        }
        None => key_not_found(anchor),
    }
}

async fn deactivate_key(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    switch_key(shared, id, headers, body, false).await
}

async fn reactivate_key(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    switch_key(shared, id, headers, body, true).await
}
