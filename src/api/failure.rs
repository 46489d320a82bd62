//! How one failed attempt is classed (not sent, lost, or answered with an error status) and
//! turned into an [`ApiError`], with descriptions that never quote a body.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderValue;

use super::Repeat;
use super::error::{self, ApiError};

/// The error for a redirect, which is not followed: a followed 301/302/303 can turn a write
/// into a GET that then "succeeds", and the API never redirects, so the base URL is wrong.
/// `known` are the secrets the location could quote.
pub(super) fn redirected(
    doing: &str,
    status: StatusCode,
    to: Option<&HeaderValue>,
    known: &[&str],
) -> ApiError {
    let to = to
        .and_then(|value| value.to_str().ok())
        .unwrap_or("(no location)");
    let text = format!("redirected to {to}; the API does not redirect, so check the base URL");
    error::from_response(doing.to_owned(), status.as_u16(), text.as_bytes(), known)
}

/// Why one attempt failed.
pub(super) enum Failure {
    /// The connection could not be made: the request never left.
    NotSent(String),
    /// The request left, and no complete answer came back.
    Lost(String),
    Status(StatusCode, Option<Duration>, bytes::Bytes),
    /// The answer was larger than any real one, and reading it stopped.
    TooLarge(StatusCode, String),
}

impl Failure {
    /// Whether the call may be sent again, and the server's own wait if it gave one.
    pub(super) fn may_repeat(&self, repeat: Repeat) -> (bool, Option<Duration>) {
        match self {
            Failure::NotSent(_) => (true, None),
            Failure::Lost(_) => (repeat == Repeat::Safe, None),
            Failure::Status(status, retry_after, _) => match *status {
                StatusCode::TOO_MANY_REQUESTS => (true, *retry_after),
                s if s.is_server_error() => (repeat != Repeat::Never, *retry_after),
                _ => (false, None),
            },
            // Sent again, a hostile or broken server answers the same way.
            Failure::TooLarge(..) => (false, None),
        }
    }

    /// The error for this failure; `known` are the secrets an error body could echo.
    pub(super) fn into_error(
        self,
        doing: &str,
        repeat: Repeat,
        attempts: u32,
        known: &[&str],
    ) -> ApiError {
        let doing = doing.to_owned();
        let tries = if attempts > 1 {
            format!(" (after {attempts} attempts)")
        } else {
            String::new()
        };
        match self {
            Failure::NotSent(reason) => ApiError::Transport {
                doing,
                reason: format!("{reason}{tries}"),
            },
            Failure::Lost(reason) if repeat != Repeat::Safe => {
                ApiError::OutcomeUnknown { doing, reason }
            }
            Failure::Lost(reason) => ApiError::Transport {
                doing,
                reason: format!("{reason}{tries}"),
            },
            Failure::Status(status, _, _)
                if status.is_server_error() && repeat == Repeat::Never =>
            {
                ApiError::OutcomeUnknown {
                    doing,
                    reason: format!("the server answered HTTP {}", status.as_u16()),
                }
            }
            Failure::Status(status, _, body) => {
                error::from_response(doing, status.as_u16(), &body, known)
            }
            Failure::TooLarge(status, why) => {
                let reason = format!("HTTP {}: {why}", status.as_u16());
                // An answered create took effect unless refused, but what it made is unknown.
                if repeat == Repeat::Never && !status.is_client_error() {
                    ApiError::OutcomeUnknown { doing, reason }
                } else {
                    ApiError::Decode { doing, reason }
                }
            }
        }
    }
}

pub(super) fn describe_transport(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() || err.is_decode() {
        "the answer was cut off"
    } else {
        "the connection failed"
    };
    // The URL holds no secret; the error's source chain says what the socket saw.
    let mut reason = kind.to_owned();
    let mut source = std::error::Error::source(err);
    if let Some(inner) = source.take() {
        reason.push_str(&format!(": {inner}"));
    }
    reason
}

/// Says why a body did not parse without quoting the body: serde's messages can quote a
/// value, and the value could be a secret.
pub(super) fn describe_decode(err: &serde_json::Error) -> String {
    let message = err.to_string();
    if message.contains('"') || message.contains('`') && !message.starts_with("missing field") {
        format!(
            "the body does not have the expected shape (line {}, column {})",
            err.line(),
            err.column()
        )
    } else {
        // serde_json's own message already ends with the line and column.
        message
    }
}
