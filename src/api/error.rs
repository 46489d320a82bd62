//! The one error type for every way a Kayle API call can fail, and parsing of the several
//! error-body shapes the real server uses.

use serde::Deserialize;

use crate::redact;

/// One failing field from a request-validation error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    /// Dotted path of the field, e.g. `labels.2`; empty for the whole body.
    pub path: String,
    pub message: String,
}

/// A failed API call. Never holds a secret: bodies are parsed for their error fields only, and
/// every text in it is scrubbed of credentials and made printable ([`crate::redact`]).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with an error status.
    #[error("{doing}: {}", describe_status(*.status, .code.as_deref(), .message, .hint.as_deref(), .issues))]
    Status {
        doing: String,
        status: u16,
        code: Option<String>,
        message: String,
        hint: Option<String>,
        issues: Vec<FieldIssue>,
    },
    /// A call that must not be repeated blindly was sent, and no usable answer came back: it
    /// may or may not have taken effect. Look before trying again.
    #[error(
        "{doing}: outcome unknown ({reason}); not retried, because repeating it could act twice"
    )]
    OutcomeUnknown { doing: String, reason: String },
    /// The server could not be reached, or kept failing, within the retry budget.
    #[error("{doing}: {reason}")]
    Transport { doing: String, reason: String },
    /// A call that had to leave by a given time (a rotation, see
    /// [`super::Client::rotate_secret`]) could not, and was not sent.
    #[error("{doing}: not sent, because it could not leave in time")]
    NotSentInTime { doing: String },
    /// The server answered something that is not what the API describes.
    #[error("{doing}: unexpected response: {reason}")]
    Decode { doing: String, reason: String },
    /// Pages kept repeating (the server ignores a cursor it does not know, e.g. one deleted
    /// meanwhile), so a complete listing could not be read.
    #[error(
        "{doing}: the listing changed while it was being read ({attempts} attempts); try again"
    )]
    UnstableListing { doing: String, attempts: u32 },
    /// The server kept answering that more pages follow, past any real organization's size;
    /// reading stopped rather than go on for good.
    #[error(
        "{doing}: the listing did not end after {pages} pages; stopped reading (the server \
         keeps answering `has_more`)"
    )]
    EndlessListing { doing: String, pages: u32 },
}

impl ApiError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the call may have taken effect although it reported failure.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, ApiError::OutcomeUnknown { .. })
    }

    /// The same error with every text in it made safe to show: the `known` secrets and
    /// anything shaped like a credential scrubbed, control characters escaped. `doing` names
    /// ids the server chose, and a reason can quote what a socket or a redirect said.
    pub(super) fn redacted(self, known: &[&str]) -> ApiError {
        let clean = |text: String| redact::untrusted(&text, known);
        match self {
            ApiError::Status {
                doing,
                status,
                code,
                message,
                hint,
                issues,
            } => ApiError::Status {
                doing: clean(doing),
                status,
                code: code.map(clean),
                message: clean(message),
                hint: hint.map(clean),
                issues: issues
                    .into_iter()
                    .map(|FieldIssue { path, message }| FieldIssue {
                        path: clean(path),
                        message: clean(message),
                    })
                    .collect(),
            },
            ApiError::OutcomeUnknown { doing, reason } => ApiError::OutcomeUnknown {
                doing: clean(doing),
                reason: clean(reason),
            },
            ApiError::Transport { doing, reason } => ApiError::Transport {
                doing: clean(doing),
                reason: clean(reason),
            },
            ApiError::NotSentInTime { doing } => ApiError::NotSentInTime {
                doing: clean(doing),
            },
            ApiError::Decode { doing, reason } => ApiError::Decode {
                doing: clean(doing),
                reason: clean(reason),
            },
            ApiError::UnstableListing { doing, attempts } => ApiError::UnstableListing {
                doing: clean(doing),
                attempts,
            },
            ApiError::EndlessListing { doing, pages } => ApiError::EndlessListing {
                doing: clean(doing),
                pages,
            },
        }
    }
}

fn describe_status(
    status: u16,
    code: Option<&str>,
    message: &str,
    hint: Option<&str>,
    issues: &[FieldIssue],
) -> String {
    let mut text = format!("HTTP {status}");
    if let Some(code) = code {
        text.push_str(&format!(" {code}"));
    }
    text.push_str(&format!(": {message}"));
    for issue in issues {
        let path = if issue.path.is_empty() {
            "(body)"
        } else {
            &issue.path
        };
        text.push_str(&format!("\n  {path}: {}", issue.message));
    }
    if let Some(hint) = hint {
        text.push_str(&format!("\n  hint: {hint}"));
    }
    text
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<ErrorFields>,
}

#[derive(Deserialize)]
struct ErrorFields {
    code: Option<String>,
    name: Option<String>,
    message: Option<String>,
    hint: Option<String>,
}

#[derive(Deserialize)]
struct ZodIssue {
    #[serde(default)]
    path: Vec<serde_json::Value>,
    message: String,
}

/// Builds the error for a non-success answer from its status and body, whatever shape the
/// body has: the documented envelope, a ZodError, the bare `{"error"}` of 401/403/413, or text.
/// A body can echo the request (its `Authorization` header, say): every text taken from it is
/// scrubbed of the `known` secrets and of anything shaped like a credential, and made printable.
pub(super) fn from_response(doing: String, status: u16, body: &[u8], known: &[&str]) -> ApiError {
    parse(doing, status, body, known).redacted(known)
}

fn parse(doing: String, status: u16, body: &[u8], known: &[&str]) -> ApiError {
    let parsed = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|body| body.error);
    let Some(fields) = parsed else {
        let text = String::from_utf8_lossy(body);
        // Scrubbed before it is cut, so that a cut cannot leave half a token unrecognized.
        let text = redact::scrub(text.trim(), known);
        let message = if text.is_empty() {
            "(empty response)".to_owned()
        } else {
            text.chars().take(500).collect()
        };
        return ApiError::Status {
            doing,
            status,
            code: None,
            message,
            hint: None,
            issues: Vec::new(),
        };
    };
    if fields.name.as_deref() == Some("ZodError") {
        let issues = fields
            .message
            .as_deref()
            .and_then(|inner| serde_json::from_str::<Vec<ZodIssue>>(inner).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|issue| FieldIssue {
                path: issue
                    .path
                    .iter()
                    .map(|part| match part {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("."),
                message: issue.message,
            })
            .collect();
        return ApiError::Status {
            doing,
            status,
            code: Some("VALIDATION_ERROR".to_owned()),
            message: "the request was refused by validation".to_owned(),
            hint: None,
            issues,
        };
    }
    ApiError::Status {
        doing,
        status,
        code: fields.code,
        message: fields.message.unwrap_or_else(|| "(no message)".to_owned()),
        hint: fields.hint,
        issues: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zod_error_names_each_failing_field() {
        let inner = r#"[{"code":"too_big","path":["name"],"message":"Too big"},{"code":"custom","path":["labels",2],"message":"Bad label"}]"#;
        let body =
            serde_json::json!({"success": false, "error": {"name": "ZodError", "message": inner}});
        let err = from_response("creating".into(), 400, body.to_string().as_bytes(), &[]);
        let ApiError::Status { issues, .. } = &err else {
            panic!("expected a status error, got {err:?}");
        };
        assert_eq!(
            issues,
            &vec![
                FieldIssue {
                    path: "name".into(),
                    message: "Too big".into()
                },
                FieldIssue {
                    path: "labels.2".into(),
                    message: "Bad label".into()
                },
            ]
        );
        let text = err.to_string();
        assert!(text.contains("name: Too big"), "{text}");
        assert!(text.contains("labels.2: Bad label"), "{text}");
    }

    #[test]
    fn envelope_error_keeps_code_message_and_hint() {
        let body = r#"{"data":null,"error":{"code":"NOT_FOUND","message":"Webhook endpoint not found.","hint":"Check the id.","docs":"x"}}"#;
        let err = from_response("getting endpoint whe_x".into(), 404, body.as_bytes(), &[]);
        assert_eq!(
            err.to_string(),
            "getting endpoint whe_x: HTTP 404 NOT_FOUND: Webhook endpoint not found.\n  hint: Check the id."
        );
    }

    #[test]
    fn bare_auth_error_and_plain_text_are_understood() {
        let err = from_response(
            "listing".into(),
            401,
            br#"{"error":{"code":"UNAUTHORIZED","message":"Invalid API key."}}"#,
            &[],
        );
        assert_eq!(
            err.to_string(),
            "listing: HTTP 401 UNAUTHORIZED: Invalid API key."
        );
        let err = from_response(
            "creating".into(),
            400,
            b"Malformed JSON in request body",
            &[],
        );
        assert_eq!(
            err.to_string(),
            "creating: HTTP 400: Malformed JSON in request body"
        );
    }

    #[test]
    fn an_echoed_credential_or_escape_code_is_not_kept() {
        let body = serde_json::json!({"error": {
            "code": "UNAUTHORIZED",
            "message": "Invalid API key: Authorization: Bearer kk_live_abc123\u{1b}[2J\rok",
            "hint": "secret whsec_0123456789abcdef was refused",
        }});
        let err = from_response("listing".into(), 401, body.to_string().as_bytes(), &[]);
        let text = err.to_string();
        assert!(
            !text.contains("kk_live") && !text.contains("whsec_"),
            "{text}"
        );
        assert!(!text.contains(['\u{1b}', '\r']), "{text:?}");
        assert_eq!(
            text,
            "listing: HTTP 401 UNAUTHORIZED: Invalid API key: Authorization: (redacted)\\rok\n  \
             hint: secret (redacted) was refused"
        );
    }
}
