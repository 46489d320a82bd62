//! The response shapes of the Kayle API: the success envelope, the list envelope, the
//! handler error envelope, the bare 401/403/413 error, the ZodError 400 and plain text.

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::zod::{self, Issue};

/// Where the server's error `docs` links point.
pub(crate) const DOCS: &str = "https://kayle.id/docs/api/webhooks";

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// Plain text, as the server answers malformed JSON, unknown routes and unhandled errors.
pub(crate) fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        text,
    )
        .into_response()
}

/// `{"data": ..., "error": null}`.
pub(crate) fn ok(data: impl Serialize) -> Response {
    #[derive(Serialize)]
    struct Envelope<T> {
        data: T,
        error: Option<()>,
    }
    json_response(StatusCode::OK, &Envelope { data, error: None })
}

/// `{"data": [...], "error": null, "pagination": {...}}`.
pub(crate) fn list<T: Serialize>(
    data: Vec<T>,
    limit: usize,
    has_more: bool,
    next: Option<String>,
) -> Response {
    #[derive(Serialize)]
    struct Pagination {
        limit: usize,
        has_more: bool,
        next_cursor: Option<String>,
    }
    #[derive(Serialize)]
    struct ListEnvelope<T> {
        data: Vec<T>,
        error: Option<()>,
        pagination: Pagination,
    }
    json_response(
        StatusCode::OK,
        &ListEnvelope {
            data,
            error: None,
            pagination: Pagination {
                limit,
                has_more,
                next_cursor: next,
            },
        },
    )
}

/// The documented handler envelope: `{"data": null, "error": {code, message, hint, docs}}`.
pub(crate) fn handler_error(
    status: StatusCode,
    code: &str,
    message: &str,
    hint: &str,
    docs: &str,
) -> Response {
    #[derive(Serialize)]
    struct ErrorBody<'a> {
        code: &'a str,
        message: &'a str,
        hint: &'a str,
        docs: &'a str,
    }
    #[derive(Serialize)]
    struct Envelope<'a> {
        data: Option<()>,
        error: ErrorBody<'a>,
    }
    json_response(
        status,
        &Envelope {
            data: None,
            error: ErrorBody {
                code,
                message,
                hint,
                docs,
            },
        },
    )
}

/// `{"error": {code, message}}`, the bare shape of 401, 403 and 413.
pub(crate) fn bare_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        &serde_json::json!({"error": {"code": code, "message": message}}),
    )
}

/// The request-validation 400: `{"success": false, "error": {"name": "ZodError", ...}}`.
pub(crate) fn zod_error(issues: &[Issue]) -> Response {
    #[derive(Serialize)]
    struct ZodBody {
        name: &'static str,
        message: String,
    }
    #[derive(Serialize)]
    struct Envelope {
        success: bool,
        error: ZodBody,
    }
    json_response(
        StatusCode::BAD_REQUEST,
        &Envelope {
            success: false,
            error: ZodBody {
                name: "ZodError",
                message: zod::message(issues),
            },
        },
    )
}

pub(crate) fn endpoint_not_found(anchor: &str) -> Response {
    handler_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "Webhook endpoint not found.",
        "The webhook endpoint with the given ID was not found.",
        &format!("{DOCS}/{anchor}"),
    )
}

pub(crate) fn key_not_found(anchor: &str) -> Response {
    handler_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "Webhook encryption key not found.",
        "The webhook encryption key with the given ID was not found.",
        &format!("{DOCS}/keys#{anchor}"),
    )
}

/// Anything no route takes: a CORS preflight gets the server's 204, the rest a plain 404
/// (unknown paths, trailing slashes and unsupported methods alike).
pub(crate) async fn unrouted(method: Method) -> Response {
    if method == Method::OPTIONS {
        return (
            StatusCode::NO_CONTENT,
            [
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, "http://localhost:3000"),
                (
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    "Authorization,Content-Type",
                ),
                (
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    "GET,POST,PUT,DELETE,OPTIONS",
                ),
            ],
        )
            .into_response();
    }
    plain(StatusCode::NOT_FOUND, "404 Not Found")
}
