//! The plan for machines: one JSON object.

use std::io::{self, Write};

use serde::Serialize;

use crate::plan::{Change, FORMAT_VERSION, Plan, Summary};

#[derive(Serialize)]
struct JsonPlan<'a> {
    format_version: u32,
    changes: &'a [Change],
    unmanaged: &'a [String],
    warnings: &'a [String],
    summary: Summary,
}

/// Writes `{format_version, changes, unmanaged, warnings, summary}`, pretty, one trailing newline.
/// Each change is `{key, action, endpoint_id, reason?, fields: {<field>: {before, after}},
/// secret?, keys?}`, the same shape a saved plan holds.
pub fn render_json(plan: &Plan, out: &mut impl Write) -> io::Result<()> {
    let json = JsonPlan {
        format_version: FORMAT_VERSION,
        changes: &plan.changes,
        unmanaged: &plan.unmanaged,
        warnings: &plan.warnings,
        summary: plan.summary(),
    };
    serde_json::to_writer_pretty(&mut *out, &json)?;
    writeln!(out)
}
