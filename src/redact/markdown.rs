//! Markdown that untrusted text cannot break out of: inline code spans fenced with more
//! backticks than any run inside, and text outside code with its markup characters escaped.

use super::safe_line;

/// The characters escaped outside code: those that open emphasis, links and images, autolinks
/// and raw HTML, entities, strikethrough, math, table cells, and a heading's closing sequence.
/// CommonMark lets any ASCII punctuation be escaped with a backslash, and renders the escape as
/// the character itself.
const MARKUP: &str = "\\`*_[]<>!&|~$#";

/// `text` as markdown outside code: scrubbed, made printable, and every markup character
/// escaped, so it reads as written and can start no link, image or HTML.
pub fn markdown_text(text: &str) -> String {
    let clean = safe_line(text);
    let mut out = String::with_capacity(clean.len() + 8);
    for c in clean.chars() {
        if MARKUP.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text` as an inline code span that nothing in it can close: scrubbed, made printable (a
/// line break would end a table row), and fenced with one backtick more than its longest run
/// of backticks (CommonMark 6.1). Padded with a space on each side when it starts or ends with
/// a backtick or a space (and is not all spaces), which the reader strips again. In a table, the caller still escapes
/// `|` as `\|`, which GitHub's table reader removes before the span is read.
pub fn code_span(text: &str) -> String {
    let clean = safe_line(text);
    if clean.is_empty() {
        return "` `".to_owned();
    }
    let longest = clean.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let all_blank = clean.chars().all(|c| c == ' ');
    let pad = if !all_blank && (clean.starts_with(['`', ' ']) || clean.ends_with(['`', ' '])) {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{clean}{pad}{fence}")
}
