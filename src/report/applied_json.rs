//! What an apply did, for machines: the endpoints' results and their totals, added to the plan's
//! JSON under `applied` (`apply --format json`). Never a secret value: a write names its sink
//! and the secret's name. Every text is made safe as the text output makes it (credentials
//! scrubbed, control characters escaped), not only JSON-escaped.

use serde::Serialize;
use serde_json::Value;

use crate::apply::{AfterRotation, Outcome, ReceiverCheck, SecretPlace, Step};
use crate::plan::Action;
use crate::redact::{safe_line as words, safe_lines};

/// The version of the `applied` object; the plan around it keeps its own `format_version`.
/// Version 2: each step is `{kind, text}` (it was the text alone).
pub const APPLIED_FORMAT_VERSION: u32 = 2;

/// What became of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointOutcome {
    Created,
    Updated,
    Deleted,
    /// Declared (and selected), and the plan had nothing to do for it.
    Unchanged,
    Failed,
}

/// One endpoint's entry in `applied.endpoints`.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointResult {
    pub key: String,
    /// The planned change; absent for an unchanged endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    pub endpoint_id: Option<String>,
    pub outcome: EndpointOutcome,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was done, in order.
    pub steps: Vec<StepJson>,
    /// Secrets written (signing secrets, generated private keys): sink and name only.
    pub secret_writes: Vec<SecretPlace>,
    /// Secrets removed from sinks (a pruned endpoint's): sink and name only.
    pub secret_removals: Vec<SecretPlace>,
    /// After a rotation: whether the sink's reload ran, what the receiver made of the new
    /// secret, and the deliveries retried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_rotation: Option<AfterRotation>,
}

impl EndpointResult {
    /// The entry for a change carried out (or failed); scrubbed of anything shaped like a
    /// credential, as every text from a server is.
    pub fn of(outcome: Outcome) -> EndpointResult {
        let result = match (&outcome.error, outcome.action) {
            (Some(_), _) => EndpointOutcome::Failed,
            (None, Action::Create) => EndpointOutcome::Created,
            (None, Action::Update) => EndpointOutcome::Updated,
            (None, Action::Delete) => EndpointOutcome::Deleted,
        };
        let places = |places: Vec<SecretPlace>| {
            places
                .into_iter()
                .map(|place| SecretPlace {
                    sink: words(&place.sink),
                    name: words(&place.name),
                })
                .collect()
        };
        EndpointResult {
            key: words(&outcome.key),
            action: Some(outcome.action),
            endpoint_id: outcome.endpoint_id.as_deref().map(words),
            outcome: result,
            error: outcome.error.map(|error| safe_lines(&format!("{error:#}"))),
            steps: outcome.done.iter().map(StepJson::of).collect(),
            secret_writes: places(outcome.written),
            secret_removals: places(outcome.removed),
            after_rotation: outcome.after_rotation.map(scrubbed),
        }
    }

    /// The entry for a declared endpoint the plan left alone.
    pub fn unchanged(key: &str, endpoint_id: Option<&str>) -> EndpointResult {
        EndpointResult {
            key: words(key),
            action: None,
            endpoint_id: endpoint_id.map(words),
            outcome: EndpointOutcome::Unchanged,
            error: None,
            steps: Vec::new(),
            secret_writes: Vec::new(),
            secret_removals: Vec::new(),
            after_rotation: None,
        }
    }
}

/// One step of an apply: its `kind`, from a closed set scripts can match on; its fields (the
/// `sink`, `name`, `key_id`, `id`, ... the text names); and `text`, the words of the text
/// output. Every string is made safe as the text output makes it (a server's id cannot drive
/// a terminal that `jq -r` prints it to).
#[derive(Debug, Clone, Serialize)]
pub struct StepJson(Value);

impl StepJson {
    fn of(step: &Step) -> StepJson {
        let mut value = serde_json::to_value(step).expect("a step serializes");
        made_safe(&mut value);
        if let Value::Object(fields) = &mut value {
            fields.insert("text".to_owned(), Value::String(words(&step.to_string())));
        }
        StepJson(value)
    }
}

/// Every string in `value` made safe to show, as [`words`].
fn made_safe(value: &mut Value) {
    match value {
        Value::String(text) => *text = words(text),
        Value::Array(items) => items.iter_mut().for_each(made_safe),
        Value::Object(fields) => fields.values_mut().for_each(made_safe),
        _ => {}
    }
}

/// `after` with the receiver's words (a socket's, a TLS library's) scrubbed.
fn scrubbed(mut after: AfterRotation) -> AfterRotation {
    match &mut after.receiver {
        ReceiverCheck::NotReachable { reason, .. } | ReceiverCheck::NotProbed { reason, .. } => {
            *reason = words(reason);
        }
        ReceiverCheck::Accepted { .. } => {}
    }
    after
}

/// The `applied` object: `{format_version, endpoints, totals}`, endpoints in key order.
#[derive(Debug, Clone, Serialize)]
pub struct AppliedJson {
    format_version: u32,
    endpoints: Vec<EndpointResult>,
    totals: Totals,
}

/// How many endpoints ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub created: usize,
    pub updated: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub failed: usize,
}

impl AppliedJson {
    /// Sorts `endpoints` by key (a duplicate's delete after its key's other entries) and counts
    /// them.
    pub fn new(mut endpoints: Vec<EndpointResult>) -> AppliedJson {
        endpoints.sort_by(|a, b| a.key.cmp(&b.key));
        let mut totals = Totals::default();
        for endpoint in &endpoints {
            *match endpoint.outcome {
                EndpointOutcome::Created => &mut totals.created,
                EndpointOutcome::Updated => &mut totals.updated,
                EndpointOutcome::Deleted => &mut totals.deleted,
                EndpointOutcome::Unchanged => &mut totals.unchanged,
                EndpointOutcome::Failed => &mut totals.failed,
            } += 1;
        }
        AppliedJson {
            format_version: APPLIED_FORMAT_VERSION,
            endpoints,
            totals,
        }
    }
}
