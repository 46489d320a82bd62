//! The plan for pull-request comments: a summary, a table of changes and a diff per change.
//! Whatever the server or the files said is in a code span it cannot close, in a fenced block
//! it cannot close, or escaped: a comment shows no link, image or HTML that a value made.

use std::io::{self, Write};

use super::lines::{body, header, shown_fields, undeclared};
use super::summary_line;
use crate::plan::{Action, Change, Plan, SecretStep};
use crate::redact::{code_span, markdown_text};

/// Writes the plan as GitHub-flavoured markdown.
pub fn render_markdown(plan: &Plan, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "## kayle-sync plan\n")?;
    writeln!(out, "**{}**\n", summary_line(plan))?;
    if !plan.changes.is_empty() {
        writeln!(out, "| Action | Key | Endpoint | Changes |")?;
        writeln!(out, "| --- | --- | --- | --- |")?;
        for change in &plan.changes {
            writeln!(
                out,
                "| {} | {} | {} | {} |",
                action(change.action),
                cell_code(&change.key),
                change
                    .endpoint_id
                    .as_deref()
                    .map_or("(new)".to_owned(), cell_code),
                markdown_text(&what(change)),
            )?;
        }
        writeln!(out)?;
    }
    for change in &plan.changes {
        writeln!(out, "#### {}\n", markdown_text(&header(change).text))?;
        let lines: Vec<String> = body(change)
            .iter()
            .map(|line| format!("{} {}", line.tone.sign(), line.text))
            .collect();
        if lines.is_empty() {
            continue;
        }
        let fence = fence(&lines);
        writeln!(out, "{fence}diff")?;
        for line in &lines {
            writeln!(out, "{line}")?;
        }
        writeln!(out, "{fence}\n")?;
    }
    if !plan.unmanaged.is_empty() {
        let ids: Vec<String> = plan.unmanaged.iter().map(|id| code_span(id)).collect();
        writeln!(out, "Unmanaged (left alone): {}\n", ids.join(", "))?;
    }
    for endpoint in &plan.undeclared {
        let (key, id) = (code_span(&endpoint.key), code_span(&endpoint.endpoint_id));
        writeln!(out, "{}\n", undeclared(&key, &id))?;
    }
    for warning in &plan.warnings {
        writeln!(out, "> **Warning:** {}\n", markdown_text(warning))?;
    }
    Ok(())
}

fn action(action: Action) -> &'static str {
    match action {
        Action::Create => "➕ create",
        Action::Update => "🔄 update",
        Action::Delete => "❌ delete",
    }
}

/// A one-line account of a change for the table.
fn what(change: &Change) -> String {
    let mut parts = Vec::new();
    if let Some(reason) = &change.reason {
        parts.push(reason.to_string());
    }
    let names: Vec<&str> = shown_fields(change).map(|f| f.field().name()).collect();
    if !names.is_empty() {
        parts.push(names.join(", "));
    }
    if !change.keys.is_empty() {
        let noun = if change.keys.len() == 1 {
            "step"
        } else {
            "steps"
        };
        parts.push(format!("{} key {noun}", change.keys.len()));
    }
    if let Some(secret) = &change.secret {
        let verb = match secret {
            SecretStep::Write { .. } => "write".to_owned(),
            SecretStep::Recover { .. } => "recover".to_owned(),
            SecretStep::Rotate { from, to, .. } => format!("rotate {from} → {to}"),
            SecretStep::Verify { .. } => "verify (unsettled)".to_owned(),
            SecretStep::Remove { sink, .. } => {
                parts.push(format!("secrets removed from sink {sink}"));
                return parts.join("; ");
            }
        };
        let then = if secret.reloads() {
            ", then reload"
        } else {
            ""
        };
        parts.push(format!("signing secret: {verb}{then} (sensitive)"));
    }
    parts.join("; ")
}

/// A code span in a table cell: GitHub splits cells at every unescaped `|`, code spans
/// included, and removes the escaping backslash before it reads the span.
fn cell_code(text: &str) -> String {
    code_span(text).replace('|', "\\|")
}

/// A code fence longer than any run of backticks in the block, so values cannot close it.
fn fence(lines: &[String]) -> String {
    let longest = lines
        .iter()
        .flat_map(|line| line.split(|c| c != '`'))
        .map(str::len)
        .max()
        .unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}
