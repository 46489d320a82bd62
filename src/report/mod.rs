//! Renders plans for people (text, colored like `terraform plan`), for machines (JSON) and for
//! pull-request comments (markdown), into any `impl Write`.

use std::ffi::OsStr;

use crate::cli::ColorChoice;

mod applied;
mod applied_json;
mod json;
mod lines;
mod markdown;
mod progress;
mod status;
mod text;

pub use applied::{Closing, event_line, outcome_line, render_closing};
pub use applied_json::{APPLIED_FORMAT_VERSION, AppliedJson, EndpointResult};
pub use json::{render_apply_json, render_json};
pub use markdown::render_markdown;
pub use progress::Progress;
pub use status::{render_status_json, render_status_text};
pub use text::{render_text, render_warnings};

/// Whether to color output. `always` and `never` decide alone; `auto` colors a terminal unless
/// `NO_COLOR` is set to a non-empty value (<https://no-color.org>). `no_color` is the value of
/// the `NO_COLOR` environment variable, passed in so this stays testable.
pub fn color_enabled(choice: ColorChoice, is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_terminal && no_color.is_none_or(OsStr::is_empty),
    }
}

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
