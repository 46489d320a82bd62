//! Hostile servers for the end-to-end tests: a Kayle API, a Vault and an AWS Secrets Manager
//! that answer with terminal escape sequences, carriage returns, markdown, and echoes of the
//! credentials and the secrets they were sent.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An OSC 8 hyperlink (a terminal shows `click` and opens `http://evil`), then a carriage
/// return that lets what follows overwrite the line.
pub const LINK: &str = "\u{1b}]8;;http://evil\u{7}click\u{1b}]8;;\u{7}\r";

/// What the hostile Kayle API calls the endpoint of `web`: markdown that closes a code span
/// and shows an image, raw HTML, a terminal hyperlink and a carriage return.
pub fn web_id() -> String {
    format!("whe_`![i](http://evil/i.png)`|<b>x</b>{LINK}")
}

/// What no output may hold: a raw escape, bell or carriage return, or any of `needles`.
#[track_caller]
pub fn assert_clean(what: &str, output: &str, needles: &[&str]) {
    let mut found: Vec<String> = ['\u{1b}', '\r', '\u{7}']
        .into_iter()
        .filter(|c| output.contains(*c))
        .map(|c| format!("{c:?}"))
        .collect();
    found.extend(
        needles
            .iter()
            .filter(|needle| output.contains(**needle))
            .map(|needle| format!("{needle:?}")),
    );
    assert!(
        found.is_empty(),
        "{} in {what}: {output:?}",
        found.join(", ")
    );
}

/// Fails when markdown read as GitHub reads it holds a link, an image or HTML.
#[track_caller]
pub fn assert_inert_markdown(markdown: &str) -> Vec<String> {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let mut code = Vec::new();
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Code(text) => code.push(text.into_string()),
            Event::Start(Tag::Link { .. } | Tag::Image { .. })
            | Event::Html(_)
            | Event::InlineHtml(_) => panic!("{event:?} in\n{markdown}"),
            _ => {}
        }
    }
    code
}

/// A server on 127.0.0.1 with a runtime of its own, so tests stay synchronous.
pub struct Server {
    pub url: String,
    _rt: tokio::runtime::Runtime,
}

impl Server {
    fn serve(router: Router) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        rt.spawn(async move { axum::serve(listener, router).await });
        Server { url, _rt: rt }
    }

    /// A Kayle API that lists hostile endpoints (`web` twice, `old`, and one unmanaged), keys
    /// and a failed delivery, and refuses every write with an error echoing the request, its
    /// credentials included.
    pub fn kayle() -> Server {
        Server::serve(Router::new().fallback(kayle))
    }

    /// A Vault whose reads find nothing until a write was tried, and then are refused; every
    /// refusal echoes the request, its token and body included.
    pub fn vault() -> Server {
        let written = Arc::new(AtomicBool::new(false));
        Server::serve(Router::new().fallback(vault).with_state(written))
    }

    /// An AWS Secrets Manager that finds no secret until a create was tried, and then refuses
    /// even to describe; every refusal echoes the request, with extra headers and fields that
    /// only a raw dump of the response would show.
    pub fn aws() -> Server {
        let tried = Arc::new(AtomicBool::new(false));
        Server::serve(Router::new().fallback(aws).with_state(tried))
    }
}

/// Everything a request carried, as a careless server would quote it back: the credentials
/// bare (as a server naming the key it refused would), then every header, then the body.
fn echo(headers: &HeaderMap, body: &Bytes) -> String {
    let mut echoed = Vec::new();
    for value in headers.get_all(header::AUTHORIZATION) {
        if let Some((_, credential)) = value.to_str().unwrap_or_default().split_once(' ') {
            echoed.push(format!("key {credential} refused"));
        }
    }
    if let Some(token) = headers.get("x-vault-token").and_then(|v| v.to_str().ok()) {
        echoed.push(format!("token {token} refused"));
    }
    echoed.extend(
        headers
            .iter()
            .filter_map(|(name, value)| Some(format!("{name}: {}", value.to_str().ok()?))),
    );
    echoed.push(String::from_utf8_lossy(body).into_owned());
    echoed.join("; ")
}

fn endpoint(id: &str, name: &str, labels: &[&str], created_at: &str) -> Value {
    json!({
        "id": id,
        "organization_id": format!("org{LINK}"),
        "name": name,
        "labels": labels,
        "url": "https://web.example.com/hooks",
        "enabled": true,
        "subscribed_event_types": ["verification.session.succeeded"],
        "undelivered_payload_retention_hours": 72,
        "created_at": created_at,
        "updated_at": created_at,
        "disabled_at": null,
    })
}

/// One page holding all of `data`.
fn page(data: Value) -> Response {
    let page = json!({"data": data, "error": null,
        "pagination": {"limit": 100, "has_more": false, "next_cursor": null}});
    axum::Json(page).into_response()
}

async fn kayle(request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let echoed = echo(&parts.headers, &body);
    let name = format!("``` [l](http://evil) <img src=x> {LINK}");
    let label = format!("tag{LINK}");
    match parts.method {
        Method::GET if parts.uri.path() == "/v1/webhooks/endpoints" => {
            let data = json!([
                endpoint(
                    &web_id(),
                    &name,
                    &["kayle-sync:web", &label],
                    "2026-03-02T00:00:00Z"
                ),
                endpoint(
                    &format!("whe_old`{LINK}"),
                    &name,
                    &["kayle-sync:old"],
                    "2026-03-01T00:00:00Z"
                ),
                endpoint(
                    &format!("whe_dashboard{LINK}`<b>"),
                    &name,
                    &[&label],
                    "2026-03-01T00:00:00Z"
                ),
                endpoint(
                    &format!("whe_twin{LINK}"),
                    &name,
                    &["kayle-sync:web"],
                    "2026-03-03T00:00:00Z"
                ),
            ]);
            page(data)
        }
        Method::GET if parts.uri.path().ends_with("/keys") => page(json!([{
            "id": format!("whk_{LINK}"),
            "key_id": format!("k`{LINK}"),
            "is_active": true,
            "created_at": "2026-03-02T00:00:00Z",
        }])),
        Method::GET if parts.uri.path() == "/v1/webhooks/deliveries" => {
            let now = jiff::Timestamp::now().to_string();
            page(json!([{
                "id": format!("whd_{LINK}"),
                "event_id": format!("evt_{LINK}"),
                "webhook_endpoint_id": web_id(),
                "webhook_encryption_key_id": null,
                "status": "failed",
                "attempt_count": 8,
                "next_attempt_at": null,
                "payload_expires_at": null,
                "payload_scrubbed_at": null,
                "payload_retention_reason": format!("expired{LINK}"),
                "last_status_code": 500,
                "last_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }]))
        }
        Method::PATCH => {
            let error = json!({"error": {
                "code": format!("UNAUTHORIZED{LINK}"),
                "message": format!("{echoed} {LINK}"),
                "hint": format!("[fix](http://evil) {LINK}"),
            }});
            (StatusCode::UNAUTHORIZED, axum::Json(error)).into_response()
        }
        Method::DELETE => {
            let issues = json!([{"path": [format!("labels{LINK}")], "message": echoed}]);
            let error = json!({"success": false,
                "error": {"name": "ZodError", "message": issues.to_string()}});
            (StatusCode::BAD_REQUEST, axum::Json(error)).into_response()
        }
        _ => (StatusCode::BAD_REQUEST, format!("{echoed}{LINK}")).into_response(),
    }
}

async fn vault(State(written): State<Arc<AtomicBool>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let echoed = echo(&parts.headers, &body);
    let (status, message) = match parts.method {
        Method::GET if !written.load(Ordering::SeqCst) => (StatusCode::NOT_FOUND, None),
        Method::GET => (
            StatusCode::FORBIDDEN,
            Some(format!("permission denied: {echoed} {LINK}")),
        ),
        _ => {
            written.store(true, Ordering::SeqCst);
            (
                StatusCode::BAD_REQUEST,
                Some(format!("invalid request: {echoed} {LINK}")),
            )
        }
    };
    (
        status,
        axum::Json(json!({"errors": message.into_iter().collect::<Vec<_>>()})),
    )
        .into_response()
}

async fn aws(State(tried): State<Arc<AtomicBool>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let echoed = echo(&parts.headers, &body);
    let error = if target.ends_with("DescribeSecret") && !tried.load(Ordering::SeqCst) {
        json!({"__type": "ResourceNotFoundException", "message": "no such secret"})
    } else {
        tried.store(true, Ordering::SeqCst);
        json!({
            "__type": "InvalidRequestException",
            "message": format!("refused {echoed} {LINK}"),
            "Raw": "RAW-BODY-FIELD",
        })
    };
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header(header::CONTENT_TYPE, "application/x-amz-json-1.1")
        .header("x-raw-marker", "RAW-HEADER")
        .body(axum::body::Body::from(error.to_string()))
        .unwrap()
}
