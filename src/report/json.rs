//! The plan for machines: one JSON object. serde escapes control characters; the credentials
//! a server or a file could have slipped into a value are scrubbed here.

use std::io::{self, Write};

use serde::{Serialize, Serializer};

use super::applied_json::AppliedJson;
use super::json_text as text;
use crate::plan::{Change, FORMAT_VERSION, KeyStep, Plan, SecretStep, Summary, Undeclared};

#[derive(Serialize)]
struct JsonPlan<'a> {
    format_version: u32,
    changes: Scrubbed<'a>,
    unmanaged: Vec<String>,
    undeclared: Vec<Undeclared>,
    warnings: Vec<String>,
    summary: Summary,
    /// What an apply did (`apply --format json`); absent from a plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<&'a AppliedJson>,
}

/// The changes, each scrubbed as it is written, so that a plan of many changes is not
/// copied whole.
struct Scrubbed<'a>(&'a [Change]);

impl Serialize for Scrubbed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(scrubbed))
    }
}

/// Writes `{format_version, changes, unmanaged, undeclared, warnings, summary}`, pretty, one trailing newline.
/// Each change is `{key, action, endpoint_id, reason?, fields: {<field>: {before, after}},
/// secret?, keys?}`, the same shape a saved plan holds.
pub fn render_json(plan: &Plan, out: &mut impl Write) -> io::Result<()> {
    render(plan, None, out)
}

/// The plan's JSON, as [`render_json`] writes it, with what the apply did under `applied`:
/// `{format_version, endpoints: [{key, action?, endpoint_id, outcome, error?, steps,
/// secret_writes, secret_removals}], totals}`.
pub fn render_apply_json(
    plan: &Plan,
    applied: &AppliedJson,
    out: &mut impl Write,
) -> io::Result<()> {
    render(plan, Some(applied), out)
}

fn render(plan: &Plan, applied: Option<&AppliedJson>, out: &mut impl Write) -> io::Result<()> {
    let json = JsonPlan {
        format_version: FORMAT_VERSION,
        changes: Scrubbed(&plan.changes),
        unmanaged: plan.unmanaged.iter().map(|id| text(id)).collect(),
        undeclared: plan
            .undeclared
            .iter()
            .map(|u| Undeclared {
                key: text(&u.key),
                endpoint_id: text(&u.endpoint_id),
            })
            .collect(),
        warnings: plan.warnings.iter().map(|warning| text(warning)).collect(),
        summary: plan.summary(),
        applied,
    };
    serde_json::to_writer_pretty(&mut *out, &json)?;
    writeln!(out)
}

fn scrubbed(change: &Change) -> Change {
    let Change {
        key,
        action,
        endpoint_id,
        reason,
        fields,
        secret,
        keys,
    } = change;
    Change {
        key: text(key),
        action: *action,
        endpoint_id: endpoint_id.as_deref().map(text),
        reason: reason.as_ref().map(|reason| reason.map_ids(text)),
        fields: fields.iter().map(|field| field.map_text(text)).collect(),
        secret: secret.as_ref().map(secret_step),
        keys: keys.iter().map(key_step).collect(),
    }
}

fn secret_step(step: &SecretStep) -> SecretStep {
    match step {
        SecretStep::Write { sink, name, reload } => SecretStep::Write {
            sink: text(sink),
            name: text(name),
            reload: *reload,
        },
        SecretStep::Recover {
            sink,
            name,
            because,
            reload,
        } => SecretStep::Recover {
            sink: text(sink),
            name: text(name),
            because: *because,
            reload: *reload,
        },
        SecretStep::Rotate {
            sink,
            name,
            from,
            to,
            unsettled_until,
            reload,
        } => SecretStep::Rotate {
            sink: text(sink),
            name: text(name),
            from: *from,
            to: *to,
            unsettled_until: *unsettled_until,
            reload: *reload,
        },
        SecretStep::Verify {
            sink,
            name,
            rotation,
            until,
            reload,
        } => SecretStep::Verify {
            sink: text(sink),
            name: text(name),
            rotation: *rotation,
            until: *until,
            reload: *reload,
        },
        SecretStep::Remove { sink, names } => SecretStep::Remove {
            sink: text(sink),
            names: names.iter().map(|name| text(name)).collect(),
        },
    }
}

fn key_step(step: &KeyStep) -> KeyStep {
    match step {
        KeyStep::Register {
            key_id,
            generate,
            repair,
            replaces,
            reload,
        } => KeyStep::Register {
            key_id: text(key_id),
            generate: *generate,
            repair: *repair,
            replaces: replaces.as_deref().map(text),
            reload: *reload,
        },
        KeyStep::Reactivate { key_id, id } => KeyStep::Reactivate {
            key_id: text(key_id),
            id: text(id),
        },
        KeyStep::Deactivate { key_id, id } => KeyStep::Deactivate {
            key_id: text(key_id),
            id: text(id),
        },
        KeyStep::Keep { key_id, name } => KeyStep::Keep {
            key_id: text(key_id),
            name: text(name),
        },
        KeyStep::RemoveKept { key_id, name } => KeyStep::RemoveKept {
            key_id: text(key_id),
            name: text(name),
        },
    }
}
