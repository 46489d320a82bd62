//! The plan for people: per change a header and a diff, like `terraform plan`.

use std::io::{self, Write};

use anstyle::{AnsiColor, Style};

use super::lines::{Line, Tone, body, header, undeclared};
use super::summary_line;
use crate::plan::Plan;
use crate::redact::safe_line;

/// Writes the plan as text, its warnings left out; `color` adds ANSI colors (green add, red
/// remove, yellow modify).
pub fn render_text(plan: &Plan, out: &mut impl Write, color: bool) -> io::Result<()> {
    let paint = Painter { color };
    for change in &plan.changes {
        let head = header(change);
        paint.line(out, &head, &head.text, true)?;
        for line in body(change) {
            paint.line(
                out,
                &line,
                &format!("  {} {}", line.tone.sign(), line.text),
                false,
            )?;
        }
        writeln!(out)?;
    }
    if !plan.unmanaged.is_empty() {
        let count = plan.unmanaged.len();
        let noun = if count == 1 { "endpoint" } else { "endpoints" };
        let ids: Vec<String> = plan.unmanaged.iter().map(|id| safe_line(id)).collect();
        writeln!(
            out,
            "Unmanaged: {count} {noun} without an identity label, left alone: {}",
            ids.join(", ")
        )?;
    }
    for endpoint in &plan.undeclared {
        let (key, id) = (safe_line(&endpoint.key), safe_line(&endpoint.endpoint_id));
        writeln!(out, "{}", undeclared(&key, &id))?;
    }
    if !plan.unmanaged.is_empty() || !plan.undeclared.is_empty() {
        writeln!(out)?;
    }
    let style = paint.style(Style::new().bold());
    writeln!(out, "{style}{}{style:#}", summary_line(plan))
}

/// Writes the plan's warnings, one `Warning:` line each. Apart from [`render_text`]: warnings
/// go to stderr, so that stdout holds the plan alone.
pub fn render_warnings(plan: &Plan, out: &mut dyn Write, color: bool) -> io::Result<()> {
    let paint = Painter { color };
    let style = paint.style(Style::new().fg_color(Some(AnsiColor::Yellow.into())).bold());
    for warning in &plan.warnings {
        writeln!(out, "{style}Warning:{style:#} {}", safe_line(warning))?;
    }
    Ok(())
}

struct Painter {
    color: bool,
}

impl Painter {
    fn style(&self, style: Style) -> Style {
        if self.color { style } else { Style::new() }
    }

    fn line(&self, out: &mut impl Write, line: &Line, text: &str, bold: bool) -> io::Result<()> {
        let color = match line.tone {
            Tone::Add => Some(AnsiColor::Green),
            Tone::Remove => Some(AnsiColor::Red),
            Tone::Modify => Some(AnsiColor::Yellow),
            Tone::Secret => Some(AnsiColor::Cyan),
            Tone::Unchanged => None,
        };
        let mut style = Style::new().fg_color(color.map(Into::into));
        if bold {
            style = style.bold();
        }
        let style = self.style(style);
        writeln!(out, "{style}{text}{style:#}")
    }
}
