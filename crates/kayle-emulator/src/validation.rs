//! The server's validation rules for endpoint bodies, key bodies, query strings and path ids.

use serde_json::{Map, Value};

use crate::store::{EVENT_TYPES, EndpointPatch, NewEndpoint};
use crate::zod::{Issue, Seg, js_len, type_name};

const URL_MESSAGE: &str =
    "Must be an https:// URL pointing to a public host with no embedded credentials.";
const EMPTY_PATCH_MESSAGE: &str = "At least one of `name`, `labels`, `url`, `enabled`, `subscribed_event_types` or `undelivered_payload_retention_hours` must be provided.";
const RESERVED_SUFFIXES: [&str; 6] = [
    ".local",
    ".localhost",
    ".localdomain",
    ".internal",
    ".lan",
    ".home.arpa",
];
const RETENTION_HOURS: [i64; 4] = [0, 24, 72, 168];

/// The body as an object, or the issue the server reports for any other JSON value.
pub(crate) fn object(body: &Value) -> Result<&Map<String, Value>, Vec<Issue>> {
    body.as_object()
        .ok_or_else(|| vec![Issue::invalid_type("object", type_name(Some(body)), &[])])
}

/// Whether a webhook URL passes the server's safety rules.
pub(crate) fn url_is_safe(raw: &str, allow_loopback: bool) -> bool {
    // The server's safety check has its own length limit, so an over-long URL gets both
    // the `too_big` issue and this one.
    if js_len(raw) > 2048 {
        return false;
    }
    let Ok(url) = url::Url::parse(raw) else {
        return false;
    };
    if !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    let host = url.host();
    let loopback = match &host {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() && ip.octets() == [127, 0, 0, 1],
        _ => false,
    };
    if loopback {
        return allow_loopback && matches!(url.scheme(), "http" | "https");
    }
    if url.scheme() != "https" {
        return false;
    }
    match host {
        Some(url::Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            let d = d.trim_end_matches('.');
            d.contains('.') && !RESERVED_SUFFIXES.iter().any(|s| d.ends_with(s))
        }
        _ => false,
    }
}

fn check_name(v: &Value, nullable: bool, issues: &mut Vec<Issue>) -> Option<Option<String>> {
    let path = [Seg::Key("name")];
    match v {
        Value::Null if nullable => Some(None),
        Value::String(raw) => {
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                issues.push(Issue::too_small("string", 1, &path));
                None
            } else if js_len(trimmed) > 120 {
                issues.push(Issue::too_big("string", 120, &path));
                None
            } else {
                Some(Some(trimmed.to_string()))
            }
        }
        other => {
            issues.push(Issue::invalid_type("string", type_name(Some(other)), &path));
            None
        }
    }
}

fn check_labels(v: &Value, issues: &mut Vec<Issue>) -> Option<Vec<String>> {
    let Value::Array(items) = v else {
        issues.push(Issue::invalid_type(
            "array",
            type_name(Some(v)),
            &[Seg::Key("labels")],
        ));
        return None;
    };
    let before = issues.len();
    let mut labels = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) => labels.push(s.trim().to_string()),
            other => issues.push(Issue::invalid_type(
                "string",
                type_name(Some(other)),
                &[Seg::Key("labels"), Seg::Index(i)],
            )),
        }
    }
    if items.len() > 8 {
        issues.push(Issue::too_big("array", 8, &[Seg::Key("labels")]));
    }
    if issues.len() != before {
        return None;
    }
    let mut seen: Vec<String> = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let path = [Seg::Key("labels"), Seg::Index(i)];
        if label.is_empty() {
            issues.push(Issue::custom_message_first(
                "Labels must be non-empty strings.",
                &path,
            ));
        } else if js_len(label) > 40 {
            issues.push(Issue::custom_message_first(
                "Labels must be 40 characters or fewer.",
                &path,
            ));
        } else if seen.contains(&label.to_lowercase()) {
            issues.push(Issue::custom_message_first(
                "Labels must be unique case-insensitively.",
                &path,
            ));
        }
        seen.push(label.to_lowercase());
    }
    (issues.len() == before).then_some(labels)
}

fn check_url(v: Option<&Value>, allow_loopback: bool, issues: &mut Vec<Issue>) -> Option<String> {
    let path = [Seg::Key("url")];
    let Some(Value::String(url)) = v else {
        issues.push(Issue::invalid_type("string", type_name(v), &path));
        return None;
    };
    let before = issues.len();
    if js_len(url) > 2048 {
        issues.push(Issue::too_big("string", 2048, &path));
    }
    if !url_is_safe(url, allow_loopback) {
        issues.push(Issue::custom(URL_MESSAGE, &path));
    }
    (issues.len() == before).then(|| url.clone())
}

fn check_enabled(v: &Value, issues: &mut Vec<Issue>) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        other => {
            issues.push(Issue::invalid_type(
                "boolean",
                type_name(Some(other)),
                &[Seg::Key("enabled")],
            ));
            None
        }
    }
}

fn check_event_types(v: &Value, issues: &mut Vec<Issue>) -> Option<Vec<String>> {
    let key = Seg::Key("subscribed_event_types");
    let Value::Array(items) = v else {
        issues.push(Issue::invalid_type("array", type_name(Some(v)), &[key]));
        return None;
    };
    let before = issues.len();
    let mut types = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.as_str().filter(|t| EVENT_TYPES.contains(t)) {
            Some(t) => types.push(t.to_string()),
            None => issues.push(Issue::invalid_option(
                &EVENT_TYPES,
                &[key.clone(), Seg::Index(i)],
            )),
        }
    }
    (issues.len() == before).then_some(types)
}

fn check_retention(v: &Value, issues: &mut Vec<Issue>) -> Option<u32> {
    match v.as_i64().filter(|h| RETENTION_HOURS.contains(h)) {
        Some(h) if v.is_i64() || v.is_u64() => Some(h as u32),
        _ => {
            issues.push(Issue::invalid_literal_union(
                &RETENTION_HOURS,
                &[Seg::Key("undelivered_payload_retention_hours")],
            ));
            None
        }
    }
}

/// Validates and normalizes a create body. Unknown fields are dropped.
pub(crate) fn create_endpoint(
    body: &Value,
    allow_loopback: bool,
) -> Result<NewEndpoint, Vec<Issue>> {
    let obj = object(body)?;
    let mut issues = Vec::new();
    let name = obj
        .get("name")
        .map(|v| check_name(v, false, &mut issues))
        .unwrap_or(Some(None));
    let labels = obj
        .get("labels")
        .map(|v| check_labels(v, &mut issues))
        .unwrap_or(Some(Vec::new()));
    let url = check_url(obj.get("url"), allow_loopback, &mut issues);
    let enabled = obj
        .get("enabled")
        .map(|v| check_enabled(v, &mut issues))
        .unwrap_or(Some(true));
    let types = obj
        .get("subscribed_event_types")
        .map(|v| check_event_types(v, &mut issues))
        .unwrap_or_else(|| Some(EVENT_TYPES.iter().map(|t| t.to_string()).collect()));
    let retention = obj
        .get("undelivered_payload_retention_hours")
        .map(|v| check_retention(v, &mut issues))
        .unwrap_or(Some(72));
    match (name, labels, url, enabled, types, retention) {
        (Some(name), Some(labels), Some(url), Some(enabled), Some(types), Some(hours))
            if issues.is_empty() =>
        {
            Ok(NewEndpoint {
                name,
                labels,
                url,
                enabled,
                subscribed_event_types: types,
                undelivered_payload_retention_hours: hours,
            })
        }
        _ => Err(issues),
    }
}

/// Validates a PATCH body: any non-empty subset of the writable fields.
pub(crate) fn update_endpoint(
    body: &Value,
    allow_loopback: bool,
) -> Result<EndpointPatch, Vec<Issue>> {
    let obj = object(body)?;
    let mut issues = Vec::new();
    let patch = EndpointPatch {
        name: obj
            .get("name")
            .and_then(|v| check_name(v, true, &mut issues)),
        labels: obj.get("labels").and_then(|v| check_labels(v, &mut issues)),
        url: obj
            .get("url")
            .and_then(|v| check_url(Some(v), allow_loopback, &mut issues)),
        enabled: obj
            .get("enabled")
            .and_then(|v| check_enabled(v, &mut issues)),
        subscribed_event_types: obj
            .get("subscribed_event_types")
            .and_then(|v| check_event_types(v, &mut issues)),
        undelivered_payload_retention_hours: obj
            .get("undelivered_payload_retention_hours")
            .and_then(|v| check_retention(v, &mut issues)),
    };
    if !issues.is_empty() {
        return Err(issues);
    }
    let empty = patch.name.is_none()
        && patch.labels.is_none()
        && patch.url.is_none()
        && patch.enabled.is_none()
        && patch.subscribed_event_types.is_none()
        && patch.undelivered_payload_retention_hours.is_none();
    if empty {
        return Err(vec![Issue::custom(EMPTY_PATCH_MESSAGE, &[])]);
    }
    Ok(patch)
}

/// The hint of the handler's 400 for a PATCH that has no JSON body at all.
pub(crate) fn empty_patch_hint() -> &'static str {
    EMPTY_PATCH_MESSAGE
}

/// Validates a path id (endpoint_id or key_id) as the server's schema does.
pub(crate) fn path_id(id: &str, field: &'static str) -> Result<(), Vec<Issue>> {
    let path = [Seg::Key(field)];
    if id.len() > 128 {
        return Err(vec![Issue::too_big("string", 128, &path)]);
    }
    let ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(vec![Issue::bad_pattern(&path)])
    }
}

/// The query of a list call (endpoints or keys).
pub(crate) struct ListQuery {
    pub limit: usize,
    pub filter: Option<bool>,
    pub starting_after: Option<String>,
}

/// Parses `limit`, `starting_after` and the boolean filter (`enabled` or `is_active`).
/// Unknown parameters are ignored, as on the server.
pub(crate) fn list_query(raw: Option<&str>, filter: &'static str) -> Result<ListQuery, Vec<Issue>> {
    let pairs = query_pairs(raw);
    let get = |k: &str| last_value(&pairs, k);
    let mut issues = Vec::new();
    let mut query = ListQuery {
        limit: 10,
        filter: None,
        starting_after: None,
    };
    if let Some(v) = get(filter) {
        match v.as_str() {
            "true" => query.filter = Some(true),
            "false" => query.filter = Some(false),
            _ => issues.push(Issue::invalid_type(
                "boolean",
                "string",
                &[Seg::Key(filter)],
            )),
        }
    }
    (query.limit, query.starting_after) = page_params(&pairs, &mut issues);
    if issues.is_empty() {
        Ok(query)
    } else {
        Err(issues)
    }
}

/// The query of the delivery listing.
pub(crate) struct DeliveryQuery {
    pub limit: usize,
    pub status: Option<&'static str>,
    pub endpoint_id: Option<String>,
    pub event_id: Option<String>,
    pub starting_after: Option<String>,
}

/// The statuses a delivery can have, in the server's order.
pub(crate) const DELIVERY_STATUSES: [&str; 4] = ["pending", "delivering", "succeeded", "failed"];

/// Parses the delivery listing's `status`, `endpoint_id`, `event_id`, `limit` and
/// `starting_after`.
pub(crate) fn delivery_query(raw: Option<&str>) -> Result<DeliveryQuery, Vec<Issue>> {
    let pairs = query_pairs(raw);
    let mut issues = Vec::new();
    let status = last_value(&pairs, "status").and_then(|v| {
        let found = DELIVERY_STATUSES.iter().copied().find(|s| s == v);
        if found.is_none() {
            issues.push(Issue::invalid_option(
                &DELIVERY_STATUSES,
                &[Seg::Key("status")],
            ));
        }
        found
    });
    let mut id = |field: &'static str| {
        let v = last_value(&pairs, field)?;
        match path_id(v, field) {
            Ok(()) => Some(v.clone()),
            Err(more) => {
                issues.extend(more);
                None
            }
        }
    };
    let endpoint_id = id("endpoint_id");
    let event_id = id("event_id");
    let (limit, starting_after) = page_params(&pairs, &mut issues);
    if !issues.is_empty() {
        return Err(issues);
    }
    Ok(DeliveryQuery {
        limit,
        status,
        endpoint_id,
        event_id,
        starting_after,
    })
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// The last value given for `key` (the server takes the last of repeated parameters).
fn last_value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a String> {
    pairs.iter().rev().find(|(n, _)| n == key).map(|(_, v)| v)
}

/// `limit` (default 10) and `starting_after`, with their issues added to `issues`.
fn page_params(pairs: &[(String, String)], issues: &mut Vec<Issue>) -> (usize, Option<String>) {
    let mut limit = 10;
    let mut starting_after = None;
    if let Some(v) = last_value(pairs, "limit") {
        let path = [Seg::Key("limit")];
        let n: f64 = if v.trim().is_empty() {
            0.0
        } else {
            v.trim().parse().unwrap_or(f64::NAN)
        };
        if n.is_nan() {
            issues.push(Issue::not_a_number(&path));
        } else if n.fract() != 0.0 {
            issues.push(Issue::not_an_int(&path));
        } else if n < 1.0 {
            issues.push(Issue::too_small("number", 1, &path));
        } else if n > 100.0 {
            issues.push(Issue::too_big("number", 100, &path));
        } else {
            limit = n as usize;
        }
    }
    if let Some(v) = last_value(pairs, "starting_after") {
        match path_id(v, "starting_after") {
            Ok(()) => starting_after = Some(v.clone()),
            Err(more) => issues.extend(more),
        }
    }
    (limit, starting_after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_rules_follow_the_server() {
        for ok in [
            "https://example.com/hook",
            "https://Example.COM:443/a/../b?x=1#frag",
            "https://example.com/ws ",
        ] {
            assert!(url_is_safe(ok, false), "{ok}");
        }
        for bad in [
            "http://example.com/hook",
            "ftp://example.com/hook",
            "not a url",
            "https://10.0.0.1/hook",
            "https://93.184.216.34/hook",
            "https://[::1]/hook",
            "https://foo.internal/hook",
            "https://foo.localhost/hook",
            "https://foo.home.arpa/hook",
            "https://intranet/hook",
            "https://user:pw@example.com/hook",
            "http://localhost:9999/hook",
        ] {
            assert!(!url_is_safe(bad, false), "{bad}");
        }
        assert!(url_is_safe("http://localhost:9999/hook", true));
        assert!(url_is_safe("http://127.0.0.1:9999/hook", true));
        assert!(!url_is_safe("http://127.0.0.2:9999/hook", true));
    }
}
