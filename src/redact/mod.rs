//! Text that came from a server or a file, made safe to show: control characters escaped so
//! that they cannot drive the terminal or forge a line, credentials taken out, URL userinfo
//! hidden, and markdown that cannot be broken out of.
//!
//! It sits at the top of the crate, beside `model/`, because two kinds of code use it: the
//! boundaries where such text enters kayle-sync's errors (`api/` parsing an error body, the
//! sinks building theirs) and every place that prints (`report/`, the `watch/` log, `cli/`).
//! Under `report/` it would make the API client and the sinks depend on the renderers.
//!
//! Every function here is idempotent: cleaning clean text changes nothing, so the boundaries
//! and the renderers can both apply it, and a new place that prints cannot show what a
//! boundary forgot.

use std::borrow::Cow;

use serde_json::Value;

mod credentials;
mod environment;
mod markdown;
mod shapes;
#[cfg(test)]
mod tests;

pub use credentials::scrub;
pub use markdown::{code_span, markdown_text};

/// What a credential, a secret or a private key is replaced with.
pub const REDACTED: &str = "(redacted)";

/// Whether [`scrub`] takes `secret` out of any text by its shape alone: a Kayle signing
/// secret, `whsec_` and letters, digits, `_` and `-`. One that is not could only be kept out
/// of output by its value, which a message from the server may quote cut or glued.
pub fn is_recognized_signing_secret(secret: &str) -> bool {
    secret
        .strip_prefix(credentials::SIGNING_SECRET_PREFIX)
        .is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

/// `text` with every control character written as a visible escape (`\u{1b}`, `\r`, `\n`),
/// and so are the characters that reorder text (bidirectional overrides) or break lines
/// without being a control character (U+2028, U+2029). Nothing is dropped: what a server said
/// stays readable, it just cannot move the cursor, set a title, make a link or forge a line.
pub fn printable(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// [`printable`], keeping line breaks: for a message of several lines kayle-sync composed,
/// such as an error chain with a hint on its own line.
pub fn printable_lines(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

/// One line of output made safe: credentials scrubbed, then [`printable`].
pub fn safe_line(text: &str) -> String {
    printable(&scrub(text, &[])).into_owned()
}

/// Several lines of output made safe: credentials scrubbed, then [`printable_lines`].
pub fn safe_lines(text: &str) -> String {
    printable_lines(&scrub(text, &[])).into_owned()
}

/// What a server or a command said, made safe to keep in an error: the `known` secrets (a
/// token, the value being written) and anything shaped like a credential scrubbed, then
/// [`printable`].
pub fn untrusted(text: &str, known: &[&str]) -> String {
    printable(&scrub(text, known)).into_owned()
}

/// A JSON value as it may be shown: every string in it, names included, [`scrub`]bed.
/// Control characters are left to the JSON writer, which escapes them.
pub fn scrub_json(value: &Value) -> Value {
    match value {
        Value::String(text) => Value::String(scrub(text, &[]).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(scrub_json).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(name, item)| (scrub(name, &[]).into_owned(), scrub_json(item)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The credentials a URL's userinfo holds, as an HTTP client sends them: the password and
/// `user:password`, percent-decoded. Empty when the URL has none (or is no URL).
pub fn url_credentials(url: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(url) else {
        return Vec::new();
    };
    if url.username().is_empty() && url.password().is_none() {
        return Vec::new();
    }
    let user = percent_decoded(url.username());
    let password = percent_decoded(url.password().unwrap_or_default());
    let pair = format!("{user}:{password}");
    vec![password, pair]
}

fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A URL as it may be shown: userinfo replaced by `***` (`https://***@host/path`), control
/// characters escaped. Anything that is not a URL is only made [`printable`].
pub fn scrub_url(url: &str) -> Cow<'_, str> {
    match credentials::hide_userinfo(url) {
        Some(hidden) => Cow::Owned(printable(&hidden).into_owned()),
        None => printable(url),
    }
}

fn escape(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let needs_escape = |c: char| {
        (c.is_control() && !(keep_newlines && c == '\n'))
            || matches!(
                c,
                '\u{061c}'
                    | '\u{200e}'
                    | '\u{200f}'
                    | '\u{2028}'
                    | '\u{2029}'
                    | '\u{202a}'..='\u{202e}'
                    | '\u{2066}'..='\u{2069}'
            )
    };
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            _ if !needs_escape(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ => out.extend(c.escape_unicode()),
        }
    }
    Cow::Owned(out)
}
