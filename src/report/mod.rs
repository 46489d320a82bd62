//! Renders what kayle-sync has to say: plans for people (text, colored like `terraform plan`),
//! for machines (JSON) and for pull-request comments (markdown); what an apply did; `status`
//! and `validate`. Renderers get plain values and a writer: the command line decides colors
//! and streams.

mod applied;
mod applied_json;
mod json;
mod lines;
mod markdown;
mod progress;
mod status;
mod text;
mod validate;

pub use applied::{Closing, event_line, outcome_line, render_closing};
pub use applied_json::{APPLIED_FORMAT_VERSION, AppliedJson, EndpointResult};
pub use json::{render_apply_json, render_json};
pub use markdown::render_markdown;
pub use progress::Progress;
pub use status::{render_status_json, render_status_text};
pub use text::{render_text, render_warnings};
pub use validate::{render_validate_json, render_validate_text};

/// A text a server or a file gave, as the JSON renderers write it: anything shaped like a
/// credential scrubbed (serde escapes control characters).
fn json_text(text: &str) -> String {
    crate::redact::scrub(text, &[]).into_owned()
}

/// The summary line: `Plan: 1 to create, 2 to update, 0 to delete.` or `No changes.`
pub(crate) fn summary_line(plan: &crate::plan::Plan) -> String {
    if plan.is_empty() {
        return "No changes.".to_owned();
    }
    let summary = plan.summary();
    format!(
        "Plan: {} to create, {} to update, {} to delete.",
        summary.create, summary.update, summary.delete
    )
}

#[cfg(test)]
mod tests;
