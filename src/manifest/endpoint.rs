//! Manifests: the `endpoints:` map, each entry checked against the API's rules and kayle-sync's
//! own, and normalized the way the server normalizes.

use super::code::Code;
use std::path::Path;

use super::diagnostic::Diagnostic;
use super::node::{Node, Value};
use super::project::unknown_sink;
use super::reader::{Reader, did_you_mean, join, list, utf16_len};
use super::rules::{self, Broken};
use super::{key_entries, keys};
use crate::model::{self, DesiredEndpoint, KeyMaterial, Project, SecretSpec};

const FIELDS: [&str; 9] = [
    "url",
    "name",
    "labels",
    "enabled",
    "subscribed_event_types",
    "undelivered_payload_retention_hours",
    "encryption_keys",
    "signing_secret",
    "adopt",
];

/// What endpoint checks need from the project file; `project` is `None` when it had errors,
/// in which case checks that depend on it (sinks) are skipped.
pub struct Context<'p> {
    pub dir: &'p Path,
    pub project: Option<&'p Project>,
    pub label_prefix: &'p str,
}

/// One entry of `endpoints:`: its key, where the key is written, and the endpoint if it is valid.
pub struct Declared<'d> {
    pub key: String,
    pub key_node: &'d Node,
    pub endpoint: Option<DesiredEndpoint>,
}

/// Reads one manifest document, returning every declared key, valid or not (a key declared
/// twice is reported even while one of the two declarations has other errors).
pub fn read_document<'d>(r: &mut Reader, cx: &Context, doc: &'d Node) -> Vec<Declared<'d>> {
    let mut out = Vec::new();
    r.refuse_aliases(doc, "");
    let Some(fields) = r.fields(doc, "", &["endpoints"]) else {
        return out;
    };
    let Some(endpoints) = fields.get("endpoints") else {
        r.missing(doc, "", "endpoints").hint =
            Some("a manifest declares `endpoints:`, a map from endpoint key to its fields".into());
        return out;
    };
    if endpoints.value == Value::Null {
        return out;
    }
    for (key, key_node, node) in r.entries(endpoints, "endpoints").unwrap_or_default() {
        out.push(Declared {
            key: key.to_owned(),
            key_node,
            endpoint: read_endpoint(r, cx, key, key_node, node),
        });
    }
    out
}

fn broke(r: &mut Reader, code: Code, node: &Node, field: &str, broken: Broken) {
    r.error(code, node, field, broken.message).hint = broken.hint;
}

fn read_endpoint(
    r: &mut Reader,
    cx: &Context,
    key: &str,
    key_node: &Node,
    node: &Node,
) -> Option<DesiredEndpoint> {
    let before = r.problems.len();
    let path = join("endpoints", key);
    if !model::is_valid_key(key) {
        r.error(
            Code::InvalidKey,
            key_node,
            &path,
            format!("`{key}` is not a valid endpoint key"),
        )
        .hint = Some(
            "keys are lower-case letters, digits and `-`, starting with a letter or digit".into(),
        );
    } else if utf16_len(cx.label_prefix) + utf16_len(key) > model::MAX_LABEL_UNITS {
        r.error(
            Code::KeyTooLong,
            key_node,
            &path,
            format!(
                "the identity label `{}{key}` would be longer than {} characters",
                cx.label_prefix,
                model::MAX_LABEL_UNITS
            ),
        )
        .hint = Some(format!(
            "use a key of at most {} characters",
            model::MAX_LABEL_UNITS - utf16_len(cx.label_prefix)
        ));
    }
    let fields = r.fields(node, &path, &FIELDS)?;
    let f = |name: &str| join(&path, name);

    let url = match fields.get("url") {
        Some(value) => r
            .string(value, &f("url"))
            .and_then(|url| match rules::check_url(&url) {
                Ok(()) => Some(url),
                Err(b) => {
                    broke(r, Code::InvalidUrl, value, &f("url"), b);
                    None
                }
            }),
        None => {
            r.missing(node, &path, "url");
            None
        }
    };
    let name = match fields.get("name") {
        None => None,
        Some(value) => match r.nullable_string(value, &f("name")).flatten() {
            None => None,
            Some(name) => match rules::check_name(&name) {
                Ok(name) => Some(name),
                Err(b) => {
                    broke(r, Code::InvalidName, value, &f("name"), b);
                    None
                }
            },
        },
    };
    let adopt = fields.get("adopt").and_then(|value| {
        let id = r.string(value, &f("adopt"))?;
        if is_endpoint_id(&id) {
            Some(id)
        } else {
            r.error(
                Code::InvalidAdopt,
                value,
                &f("adopt"),
                format!("`{id}` is not an endpoint id"),
            )
            .hint = Some("an endpoint id is `whe_` followed by 32 lowercase letters or digits, as `kayle-sync export` writes it".into());
            None
        }
    });
    let enabled = match fields.get("enabled") {
        Some(value) => r.boolean(value, &f("enabled")).unwrap_or(true),
        None => true,
    };
    let subscribed_event_types = match fields.get("subscribed_event_types") {
        Some(value) => read_event_types(r, value, &f("subscribed_event_types")),
        None => model::EventType::KNOWN.to_vec(),
    };
    let retention = match fields.get("undelivered_payload_retention_hours") {
        None => model::DEFAULT_RETENTION_HOURS,
        Some(value) => {
            let field = f("undelivered_payload_retention_hours");
            match r.unsigned(value, &field) {
                Some(n) if model::RETENTION_HOURS.iter().any(|h| u64::from(*h) == n) => n as u32,
                Some(n) => {
                    r.error(
                        Code::InvalidRetention,
                        value,
                        &field,
                        format!("{n} is not an accepted retention"),
                    )
                    .hint = Some("one of 0, 24, 72 or 168 hours".into());
                    model::DEFAULT_RETENTION_HOURS
                }
                None => model::DEFAULT_RETENTION_HOURS,
            }
        }
    };
    let signing_secret = read_secret(
        r,
        cx,
        key,
        node,
        fields.get("signing_secret"),
        &f("signing_secret"),
    );
    let labels = match fields.get("labels") {
        Some(value) => read_labels(r, cx, value, &f("labels")),
        None => Vec::new(),
    };
    let sink = signing_secret
        .as_ref()
        .and_then(|s| cx.project?.sinks.get(&s.sink));
    let encryption_keys = match fields.get("encryption_keys") {
        Some(value) => key_entries::read_keys(r, cx, key, value, &f("encryption_keys"), sink),
        None => Vec::new(),
    };
    if let Some(secret) = &signing_secret {
        for k in &encryption_keys {
            if let KeyMaterial::Generate { private_key_name } = &k.material
                && private_key_name == &secret.name
            {
                r.error(Code::SecretNameClash, node, &path, format!(
                    "the signing secret and the private key of `{}` would both be stored as `{}` in sink `{}`",
                    k.key_id, secret.name, secret.sink
                ));
            }
        }
    }
    if enabled && encryption_keys.is_empty() && r.problems.len() == before {
        r.problems.push(
            Diagnostic::warning(Code::NoEncryptionKey, Some(r.at(key_node)), "enabled without an encryption key: every event would be lost")
                .field(path.clone())
                .hint("add `encryption_keys:` (a public key file, or `generate: true`), or set `enabled: false`"),
        );
    }
    let has_errors = r.problems[before..]
        .iter()
        .any(|d| d.severity == super::Severity::Error);
    if has_errors {
        return None;
    }
    Some(DesiredEndpoint {
        key: key.to_owned(),
        url: url?,
        name,
        labels,
        enabled,
        subscribed_event_types,
        undelivered_payload_retention_hours: retention,
        encryption_keys,
        signing_secret: signing_secret?,
        adopt,
        source: r.at(key_node),
    })
}

/// Whether `id` has the shape of an endpoint id: `whe_` and 32 of `[a-z0-9]`.
fn is_endpoint_id(id: &str) -> bool {
    id.strip_prefix("whe_").is_some_and(|rest| {
        rest.len() == 32
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    })
}

fn read_event_types(r: &mut Reader, node: &Node, field: &str) -> Vec<model::EventType> {
    let mut out: Vec<model::EventType> = Vec::new();
    let Some(items) = r.strings(node, field) else {
        return out;
    };
    if items.is_empty() && matches!(node.value, Value::Seq(_)) {
        r.error(Code::EmptyEventTypes, node, field, "an empty list subscribes to nothing")
            .hint = Some("the server stores an empty list and delivers no events while reporting all four; leave the field out to subscribe to every type".into());
    }
    for (i, (text, item)) in items.iter().enumerate() {
        let Some(known) = model::EventType::known(text) else {
            let hint = match did_you_mean(text, &model::ALL_EVENT_TYPES) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("one of {}", list(&model::ALL_EVENT_TYPES)),
            };
            r.error(
                Code::UnknownEventType,
                item,
                &format!("{field}[{i}]"),
                format!("unknown event type `{text}`"),
            )
            .hint = Some(hint);
            continue;
        };
        if !out.contains(&known) {
            out.push(known);
        }
    }
    out
}

fn read_labels(r: &mut Reader, cx: &Context, node: &Node, field: &str) -> Vec<String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    let Some(items) = r.strings(node, field) else {
        return Vec::new();
    };
    let max = model::MAX_DECLARED_LABELS;
    if items.len() > max {
        r.error(
            Code::TooManyLabels,
            node,
            field,
            format!("{} labels; at most {max} are allowed", items.len()),
        )
        .hint = Some(
            "the API keeps 8: one is kayle-sync's identity label and one records the state of \
             the signing secret (its rotation, or that it is being checked)"
                .to_owned(),
        );
    }
    for (i, (text, item)) in items.iter().enumerate() {
        let item_field = format!("{field}[{i}]");
        match rules::check_label(text, cx.label_prefix) {
            Err(b) => broke(r, Code::InvalidLabel, item, &item_field, b),
            Ok(label) => {
                if let Some((_, first)) = out
                    .iter()
                    .find(|(l, _)| l.to_lowercase() == label.to_lowercase())
                {
                    let first = *first;
                    r.error(
                        Code::DuplicateLabel,
                        item,
                        &item_field,
                        format!("`{label}` repeats {field}[{first}]"),
                    )
                    .hint = Some("labels are unique ignoring case".into());
                } else {
                    out.push((label, i));
                }
            }
        }
    }
    out.into_iter().map(|(l, _)| l).collect()
}

fn read_secret(
    r: &mut Reader,
    cx: &Context,
    key: &str,
    endpoint: &Node,
    node: Option<&Node>,
    field: &str,
) -> Option<SecretSpec> {
    let fields = match node {
        Some(node) => Some(r.fields(node, field, &["sink", "name", "rotation"])?),
        None => None,
    };
    let get = |name: &str| fields.as_ref().and_then(|f| f.get(name));
    let rotation = match get("rotation") {
        Some(value) => {
            let rotation = r.unsigned(value, &join(field, "rotation"))?;
            let label = model::longest_state_label(cx.label_prefix, rotation);
            if utf16_len(&label) > model::MAX_LABEL_UNITS {
                r.error(
                    Code::RotationTooLarge,
                    value,
                    &join(field, "rotation"),
                    format!(
                        "the secret-state label `{label}` would be longer than {} characters",
                        model::MAX_LABEL_UNITS
                    ),
                );
                return None;
            }
            rotation
        }
        None => 0,
    };
    let name_node = get("name");
    let name = match name_node {
        Some(value) => r.string(value, &join(field, "name"))?,
        None => keys::default_secret_name(key),
    };
    let project = cx.project?;
    let sink = match get("sink") {
        Some(value) => {
            let sink = r.string(value, &join(field, "sink"))?;
            if !project.sinks.contains_key(&sink) {
                unknown_sink(r, value, &join(field, "sink"), &sink, &project.sinks);
                return None;
            }
            sink
        }
        None => match &project.default_sink {
            Some(sink) => sink.clone(),
            None => {
                r.error(Code::NoSink, node.unwrap_or(endpoint), &join(field, "sink"), "no sink for the signing secret")
                    .hint = Some("set `signing_secret.sink` here or `defaults.signing_secret.sink` in kayle-sync.yaml".into());
                return None;
            }
        },
    };
    if let Err(rule) = project.sinks[&sink].check_secret_name(&name) {
        let at = name_node.unwrap_or(endpoint);
        r.error(
            Code::InvalidSecretName,
            at,
            &join(field, "name"),
            format!("`{name}` cannot name a secret in sink `{sink}`"),
        )
        .hint = Some(rule);
        return None;
    }
    Some(SecretSpec {
        sink,
        name,
        rotation,
    })
}
