//! Credentials found by their shape alone, where no prefix of ours or header names them: AWS
//! access key ids and secret access keys, JSON Web Tokens, and the value of a `password=`,
//! `secret=`, `token=` or `api_key=` pair (also quoted, as JSON writes one).

use super::REDACTED;
use super::credentials::replace_spans;

/// How the name of a pair whose value is a credential ends (ASCII lowercase): `DB_PASSWORD`,
/// `client_secret`, `AWS_SESSION_TOKEN`, `--api-key`.
const CREDENTIAL_KEYS: [&str; 10] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "secret_key",
    "private_key",
];

/// How an AWS access key id (20 characters, upper-case letters and digits) begins: a
/// long-term key, a temporary one.
const AWS_KEY_ID_PREFIXES: [&str; 2] = ["AKIA", "ASIA"];

/// The length of an AWS secret access key (base64 letters).
const AWS_SECRET_CHARS: usize = 40;

/// `text` with AWS key ids and secret keys and JWTs replaced; `None` when it holds none.
pub(super) fn shaped(text: &str) -> Option<String> {
    let mut spans = Vec::new();
    // An access key id: a whole word.
    spans.extend(
        runs(text, |b| b.is_ascii_alphanumeric()).filter(|&(start, end)| {
            let word = &text[start..end];
            word.len() == 20
                && AWS_KEY_ID_PREFIXES.iter().any(|p| word.starts_with(p))
                && word
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        }),
    );
    // A secret access key: 40 base64 letters mixing cases and digits, which a commit hash
    // (lower-case hex) or a word does not.
    let base64 = |b: u8| b.is_ascii_alphanumeric() || b == b'/' || b == b'+';
    spans.extend(runs(text, base64).filter(|&(start, end)| {
        let word = &text.as_bytes()[start..end];
        word.len() == AWS_SECRET_CHARS
            && word.iter().any(u8::is_ascii_uppercase)
            && word.iter().any(u8::is_ascii_lowercase)
            && word.iter().any(u8::is_ascii_digit)
    }));
    // A JWT: a base64url JSON header and payload (`eyJ` is `{"`), then the signature.
    let base64url = |b: u8| b.is_ascii_alphanumeric() || b"-_.".contains(&b);
    spans.extend(runs(text, base64url).filter_map(|(start, end)| {
        let word = text[start..end].trim_end_matches('.');
        let parts: Vec<&str> = word.split('.').collect();
        let jwt = parts.len() >= 3 && parts[..2].iter().all(|part| part.starts_with("eyJ"));
        jwt.then_some((start, start + word.len()))
    }));
    replace_spans(text, spans, REDACTED)
}

/// The values of `name=value` pairs (blanks allowed around `=`) and of `"name": "value"`
/// members whose name ends like a credential's ([`CREDENTIAL_KEYS`]): up to a blank, a quote,
/// or a separator (`&,;)]}<>\`). An unquoted `name: value` is left, since prose reads so too
/// ("token: expired").
pub(super) fn key_values(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    for (at, separator) in text.match_indices(['=', ':']) {
        if matches!(bytes.get(at + 1), Some(b'=' | b'>'))
            || bytes.get(at.wrapping_sub(1)) == Some(&b'=')
        {
            continue;
        }
        let mut end = at;
        while end > 0 && matches!(bytes[end - 1], b' ' | b'\t') {
            end -= 1;
        }
        let quoted = end > 0 && matches!(bytes[end - 1], b'"' | b'\'');
        if separator == ":" && !quoted {
            continue;
        }
        if quoted {
            end -= 1;
            // The name's quote escaped, as JSON inside a JSON string writes it.
            if end > 0 && bytes[end - 1] == b'\\' {
                end -= 1;
            }
        }
        let start = text[..end]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "_-.".contains(c)))
            .map_or(0, |n| n + 1);
        let name = text[start..end].to_ascii_lowercase();
        if !CREDENTIAL_KEYS.iter().any(|key| name.ends_with(key)) {
            continue;
        }
        let value = at
            + 1
            + text[at + 1..]
                .find(|c: char| !" \t\\\"'".contains(c))
                .unwrap_or(text.len() - at - 1);
        // Already scrubbed, or an object or a list rather than a credential.
        if text[value..].starts_with(REDACTED) || text[value..].starts_with(['{', '[']) {
            continue;
        }
        let len = text[value..]
            .find(|c: char| c.is_whitespace() || "\"'`&,;)]}<>\\".contains(c))
            .unwrap_or(text.len() - value);
        if len > 0 {
            spans.push((value, value + len));
        }
    }
    replace_spans(text, spans, REDACTED)
}

/// The maximal runs of bytes `in_run` accepts, as byte ranges. `in_run` accepts only ASCII,
/// so every range starts and ends on a character boundary.
fn runs(text: &str, in_run: impl Fn(u8) -> bool) -> impl Iterator<Item = (usize, usize)> {
    let bytes = text.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        let start = at + bytes[at..].iter().position(|&b| in_run(b))?;
        let end = bytes[start..]
            .iter()
            .position(|&b| !in_run(b))
            .map_or(bytes.len(), |n| start + n);
        at = end;
        Some((start, end))
    })
}
