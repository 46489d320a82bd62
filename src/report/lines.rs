//! The lines that describe one change, shared by the text and markdown renderers: a header, a
//! diff of the endpoint's fields as `field: value` lines, the key steps and the secret step.
//! Each line is made safe here, once for both renderers: ids, names and reasons come from the
//! server and the files.

use similar::{ChangeTag, TextDiff};

use crate::model::{EventType, FieldValue};
use crate::plan::{Action, Change, FieldChange, KeyRepair, KeyStep, SecretStep};
use crate::redact::safe_line;

/// How a line reads, which decides its sign and color.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    Add,
    Remove,
    Modify,
    Unchanged,
    Secret,
}

impl Tone {
    pub(crate) fn sign(self) -> char {
        match self {
            Tone::Add => '+',
            Tone::Remove => '-',
            Tone::Modify => '~',
            Tone::Unchanged => ' ',
            Tone::Secret => '*',
        }
    }
}

pub(crate) struct Line {
    pub(crate) tone: Tone,
    pub(crate) text: String,
}

/// `+ create KEY`, `~ update KEY (whe_…)`, `- delete KEY (whe_…)  # reason`, sign included.
pub(crate) fn header(change: &Change) -> Line {
    let (tone, verb) = match change.action {
        Action::Create => (Tone::Add, "create"),
        Action::Update => (Tone::Modify, "update"),
        Action::Delete => (Tone::Remove, "delete"),
    };
    let mut text = format!("{} {verb} {}", tone.sign(), change.key);
    if let Some(id) = &change.endpoint_id {
        text.push_str(&format!(" ({id})"));
    }
    if let Some(reason) = &change.reason {
        text.push_str(&format!("  # {reason}"));
    }
    Line {
        tone,
        text: safe_line(&text),
    }
}

/// The body of a change, each line's text without its sign.
pub(crate) fn body(change: &Change) -> Vec<Line> {
    let mut lines = field_diff(change);
    let active = change
        .keys
        .iter()
        .rposition(|step| matches!(step, KeyStep::Register { .. } | KeyStep::Reactivate { .. }));
    for (index, step) in change.keys.iter().enumerate() {
        lines.push(key_line(step, Some(index) == active));
    }
    if let Some(secret) = &change.secret {
        lines.push(secret_line(secret));
    }
    for line in &mut lines {
        line.text = safe_line(&line.text);
    }
    lines
}

/// The fields a change shows: a create's fields left unset (no name) are not worth a line.
pub(crate) fn shown_fields(change: &Change) -> impl Iterator<Item = &FieldChange> {
    change
        .fields
        .iter()
        .filter(|field| !(change.action == Action::Create && field.after() == FieldValue::Null))
}

/// A diff per field, one after the other, so each field's lines stay together.
fn field_diff(change: &Change) -> Vec<Line> {
    let mut lines = Vec::new();
    for field in shown_fields(change) {
        let name = field.field().name();
        let before = match (change.action, field.before()) {
            (Action::Create, FieldValue::Null) => String::new(),
            (_, before) => document(name, before),
        };
        let after = document(name, field.after());
        let diff = TextDiff::from_lines(&before, &after);
        lines.extend(diff.iter_all_changes().map(|line| Line {
            tone: match line.tag() {
                ChangeTag::Delete => Tone::Remove,
                ChangeTag::Insert => Tone::Add,
                ChangeTag::Equal => Tone::Unchanged,
            },
            text: line.value().trim_end_matches('\n').to_owned(),
        }));
    }
    lines
}

/// One field as YAML-ish lines: `field: value`, or `field:` and one `  - item` line per item, so
/// a diff of a list shows which items come and go. Strings are quoted, so whitespace shows.
fn document(field: &str, value: FieldValue<'_>) -> String {
    let items: Vec<&str> = match value {
        FieldValue::List(items) => items.iter().map(String::as_str).collect(),
        FieldValue::Events(items) => items.iter().map(EventType::name).collect(),
        FieldValue::Null | FieldValue::Text(_) | FieldValue::Flag(_) | FieldValue::Number(_) => {
            Vec::new()
        }
    };
    if items.is_empty() {
        return format!("{field}: {}\n", json(&value));
    }
    let mut text = format!("{field}:\n");
    for item in items {
        text.push_str(&format!("  - {}\n", json(&item)));
    }
    text
}

/// A value as JSON writes it: strings quoted and escaped, so whitespace and control
/// characters show.
fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("plain data serializes")
}

fn key_line(step: &KeyStep, active: bool) -> Line {
    let active = if active { ", active" } else { "" };
    match step {
        KeyStep::Register {
            key_id,
            generate,
            repair,
            replaces,
            reload,
        } => {
            let generated = match (generate, repair, replaces) {
                (_, Some(KeyRepair::DiffersFromSink), _) => {
                    ", again from the private key in the sink (sensitive)"
                }
                (true, _, Some(_)) => {
                    ", generate: new private key to the sink in place of the replaced one \
                     (sensitive)"
                }
                (true, _, None) => {
                    ", generate unless the sink holds it: private key to the sink (sensitive)"
                }
                (false, _, _) => "",
            };
            let why = repair.map_or_else(String::new, |r| format!("; {}", r.as_str()));
            Line {
                tone: Tone::Add,
                text: format!(
                    "key {key_id} (register{generated}{active}{why}){}",
                    if *reload {
                        ", then the sink's reload command"
                    } else {
                        ""
                    }
                ),
            }
        }
        KeyStep::Reactivate { key_id, id } => Line {
            tone: Tone::Modify,
            text: format!("key {key_id} (reactivate {id}{active})"),
        },
        KeyStep::Deactivate { key_id, id } => Line {
            tone: Tone::Modify,
            text: format!("key {key_id} (deactivate {id})"),
        },
        KeyStep::Keep { key_id, name } => Line {
            tone: Tone::Add,
            text: format!(
                "key {key_id} (replaced: its private key kept in the sink as {name} while \
                 deliveries encrypted to it may be sent)"
            ),
        },
        KeyStep::RemoveKept { key_id, name } => Line {
            tone: Tone::Remove,
            text: format!(
                "key {key_id} (replaced: remove its private key {name} from the sink; no \
                 delivery encrypted to it can be sent any more)"
            ),
        },
    }
}

/// The line about an undeclared endpoint; `key` and `id` are already made safe to show.
pub(crate) fn undeclared(key: &str, id: &str) -> String {
    format!("Undeclared: {key} ({id}) is managed but no manifest declares it; `--prune` deletes it")
}

/// Why an unsettled secret is checked, in words.
pub(super) fn verify_reason(until: u64) -> String {
    let base = "reveal, compare and write: the sink may not hold the API's current secret";
    match jiff::Timestamp::from_second(until as i64) {
        Ok(time) if time > jiff::Timestamp::now() => {
            format!("{base}; a request whose answer was lost may still land until {time}")
        }
        _ => format!("{base} (a create, a rotation or a reload was interrupted)"),
    }
}

/// What a rotation waits for, in words: nothing, or a lost request's possible landing.
fn not_before(unsettled_until: Option<u64>) -> String {
    match unsettled_until.and_then(|until| jiff::Timestamp::from_second(until as i64).ok()) {
        Some(time) if time > jiff::Timestamp::now() => format!(
            ", not before {time}: a request whose answer was lost may still land until then \
             (an apply before then checks the sink instead)"
        ),
        _ => String::new(),
    }
}

fn secret_line(step: &SecretStep) -> Line {
    let (sink, name, what) = match step {
        SecretStep::Remove { sink, names } => {
            return Line {
                tone: Tone::Remove,
                text: format!("secrets → remove {} from sink {sink}", names.join(", ")),
            };
        }
        SecretStep::Write { sink, name, .. } => (sink, name, "write".to_owned()),
        SecretStep::Recover {
            sink,
            name,
            because,
            ..
        } => (sink, name, format!("recover from API, {because}")),
        SecretStep::Rotate {
            sink,
            name,
            from,
            to,
            unsettled_until,
            ..
        } => {
            let what = if from == to {
                format!("rotate now (rotation {to})")
            } else {
                format!("rotate {from} → {to}")
            };
            (sink, name, what + &not_before(*unsettled_until))
        }
        SecretStep::Verify {
            sink, name, until, ..
        } => (sink, name, verify_reason(*until)),
    };
    let then = match step.reloads() {
        true => format!(", then sink {sink}'s reload command"),
        false => String::new(),
    };
    Line {
        tone: Tone::Secret,
        text: format!("signing secret → sink {sink} as {name}: {what} (sensitive){then}"),
    }
}
