//! Finding credentials in free text: the values a caller knows and those of the environment,
//! and anything shaped like a Kayle signing secret or API key, a bearer token, a credential
//! header, a Vault, GitHub, Stripe or Slack token, a PEM private key, or the userinfo of a URL
//! (the other shapes are in `shapes`).

use std::borrow::Cow;

use super::REDACTED;

/// Known values shorter than this are not looked for: replacing every `root` in a message
/// would garble it, and no real token or secret is that short.
const MIN_KNOWN_CHARS: usize = 6;

/// How credentials begin, and how many letters, digits, `_` and `-` at least follow: Kayle
/// signing secrets and API keys, Vault and OpenBao tokens, GitHub tokens (classic, OAuth,
/// user, server and refresh; fine-grained), Stripe secret and restricted keys, Slack tokens.
/// The longer minimums keep prose such as "sk_live_ keys" intact.
const PREFIXES: [(&str, usize); 20] = [
    ("whsec_", 1),
    ("kk_", 1),
    ("hvs.", 1),
    ("hvb.", 1),
    ("hvr.", 1),
    ("ghp_", 30),
    ("gho_", 30),
    ("ghu_", 30),
    ("ghs_", 30),
    ("ghr_", 30),
    ("github_pat_", 40),
    ("sk_live_", 10),
    ("sk_test_", 10),
    ("rk_live_", 10),
    ("rk_test_", 10),
    ("xoxb-", 8),
    ("xoxp-", 8),
    ("xoxa-", 8),
    ("xoxr-", 8),
    ("xoxs-", 8),
];

/// Authorization schemes (any case) whose credential follows them.
const SCHEMES: [&str; 2] = ["bearer", "basic"];

/// Names (any case) whose value is a credential, as a header (`Name: value`) or a parameter
/// (`name=value`): `authorization` also finds `Proxy-Authorization`, `signature` an AWS
/// request signature and `X-Amz-Signature`.
const CREDENTIAL_NAMES: [&str; 4] = [
    "authorization",
    "x-vault-token",
    "x-amz-security-token",
    "signature",
];

/// `text` with every credential in it replaced by [`REDACTED`]: each of the `known` values
/// and of the credentials in the environment (see `environment`), also as a JSON string or
/// base64 would hold them, and each long line of a multi-line one; PEM private key blocks
/// (also cut short), `Authorization` / `X-Vault-Token` values, `Bearer` and `Basic`
/// credentials, anything starting like a Kayle secret or key (`whsec_`, `kk_`) or another
/// service's token ([`PREFIXES`]), AWS keys, JWTs, `password=`-like pairs, and the userinfo
/// of URLs (replaced by `***`).
pub fn scrub<'a>(text: &'a str, known: &[&str]) -> Cow<'a, str> {
    let mut text = Cow::Borrowed(text);
    let mut forms: Vec<String> = known.iter().flat_map(|value| known_forms(value)).collect();
    // A whole value before its lines, so that it is replaced by one marker.
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    for form in forms.iter().chain(super::environment::forms()) {
        if text.contains(form.as_str()) {
            text = Cow::Owned(text.replace(form.as_str(), REDACTED));
        }
    }
    let rules: [fn(&str) -> Option<String>; 7] = [
        private_keys,
        credential_headers,
        scheme_tokens,
        prefixed,
        super::shapes::key_values,
        super::shapes::shaped,
        hide_userinfo,
    ];
    for rule in rules {
        if let Some(changed) = rule(&text) {
            text = Cow::Owned(changed);
        }
    }
    text
}

/// Every URL in `text` with its userinfo replaced by `***`; `None` when there was none.
pub(super) fn hide_userinfo(text: &str) -> Option<String> {
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let start = from + found + 3;
        let end = text[start..]
            .find(|c: char| c.is_whitespace() || "/?#\"'<>\\)]},`".contains(c))
            .map_or(text.len(), |n| start + n);
        if let Some(at) = text[start..end].rfind('@')
            && at > 0
        {
            spans.push((start, start + at));
        }
        from = end.max(start);
    }
    replace_spans(text, spans, "***")
}

/// `value` and the forms a server or a command may echo it in; nothing when it is too short.
pub(super) fn known_forms(value: &str) -> Vec<String> {
    let value = value.trim();
    if value.chars().count() < MIN_KNOWN_CHARS {
        return Vec::new();
    }
    let mut forms = vec![value.to_owned()];
    // Echoed inside a JSON body, a PEM key has `\n` for its line breaks.
    let json = serde_json::to_string(value).expect("strings serialize");
    let json = &json[1..json.len() - 1];
    if json != value {
        forms.push(json.to_owned());
    }
    // A Basic credential is `user:password` in base64; a server may echo any value encoded.
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    forms.push(STANDARD.encode(value));
    forms.push(URL_SAFE_NO_PAD.encode(value));
    if value.contains('\n') {
        forms.extend(
            value
                .lines()
                .map(str::trim)
                .filter(|line| line.chars().count() >= 16)
                .map(str::to_owned),
        );
    }
    forms
}

/// PEM blocks whose label ends in `PRIVATE KEY`, through their END line, or through the end of
/// the base64 body when the text was cut before it.
fn private_keys(text: &str) -> Option<String> {
    const BEGIN: &str = "-----BEGIN ";
    const END: &str = "-----END ";
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find(BEGIN) {
        let start = from + found;
        let label_start = start + BEGIN.len();
        let Some(label_len) = text[label_start..].find("-----") else {
            break;
        };
        let label = &text[label_start..label_start + label_len];
        let body_start = label_start + label_len + "-----".len();
        if label.len() > 40 || !label.ends_with("PRIVATE KEY") {
            from = body_start;
            continue;
        }
        let end = match text[body_start..].find(END) {
            Some(at) => {
                let end_label = body_start + at + END.len();
                text[end_label..]
                    .find("-----")
                    .map_or(text.len(), |n| end_label + n + "-----".len())
            }
            None => body_start + pem_body_len(&text[body_start..]),
        };
        spans.push((start, end));
        from = end;
    }
    replace_spans(text, spans, REDACTED)
}

/// How far a PEM body runs: through its last line that is base64 only, lines broken by line
/// breaks (and indented) or by the `\n` escapes of a body quoted in JSON, the last one ended
/// by a quote or the end of the text. A line that is not base64 through its end (the next
/// message) ends the body before it, untouched.
fn pem_body_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let is_base64 = |b: u8| b.is_ascii_alphanumeric() || b"+/=".contains(&b);
    let mut len = 0;
    let mut at = 0;
    loop {
        while at < bytes.len() {
            match bytes[at] {
                b'\\' if matches!(bytes.get(at + 1), Some(b'n' | b'r')) => at += 2,
                b' ' | b'\t' | b'\r' | b'\n' => at += 1,
                _ => break,
            }
        }
        let line = bytes[at..].iter().take_while(|&&b| is_base64(b)).count();
        let ends_line = match bytes.get(at + line) {
            None => true,
            Some(b'\\') => matches!(bytes.get(at + line + 1), Some(b'n' | b'r')),
            Some(b) => b"\r\n\"'".contains(b),
        };
        if line == 0 || !ends_line {
            return len;
        }
        at += line;
        len = at;
    }
}

/// The value after `Authorization:`, `"x-vault-token": "`, `Signature=` and the like, to the
/// end of the quoted string or the line.
fn credential_headers(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let mut spans = Vec::new();
    for name in CREDENTIAL_NAMES {
        for at in word_starts(text, &lower, name) {
            let from = at + name.len();
            let separator = text[from..]
                .find(|c: char| !"\"'\\:= \t".contains(c))
                .unwrap_or(text.len() - from);
            if !text[from..from + separator].contains([':', '=']) {
                continue;
            }
            let start = from + separator;
            let end = text[start..]
                .find(['"', '\'', '\\', '\n', '\r'])
                .map_or(text.len(), |n| start + n);
            if end > start {
                spans.push((start, end));
            }
        }
    }
    replace_spans(text, spans, REDACTED)
}

/// The credential after an authorization scheme, `Bearer` or `Basic`, when it looks like one
/// rather than like prose.
fn scheme_tokens(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let mut spans = Vec::new();
    for (at, scheme) in SCHEMES
        .iter()
        .flat_map(|scheme| word_starts(text, &lower, scheme).map(move |at| (at, scheme)))
    {
        let from = at + scheme.len();
        let blanks = text[from..]
            .find(|c: char| c != ' ' && c != '\t')
            .unwrap_or(text.len() - from);
        if blanks == 0 {
            continue;
        }
        let start = from + blanks;
        let len = token_len(&text[start..], "._~+/=-");
        let token = &text[start..start + len];
        // Real credentials are long, or mix letters with digits and punctuation; "Bearer
        // token missing" and "Basic authentication" are prose.
        let looks_like_token = token.len() >= 20
            || token.len() >= 6 && token.chars().any(|c| !c.is_ascii_alphabetic());
        if looks_like_token {
            spans.push((start, start + len));
        }
    }
    replace_spans(text, spans, REDACTED)
}

/// How a Kayle signing secret begins. Looked for anywhere, not only at the start of a word:
/// a server's message may glue one to other letters.
pub(super) const SIGNING_SECRET_PREFIX: &str = "whsec_";

/// Whole words that start with one of [`PREFIXES`], followed by at least its minimum; a
/// signing secret wherever it starts.
fn prefixed(text: &str) -> Option<String> {
    let mut spans = Vec::new();
    for (prefix, min) in PREFIXES {
        let starts: Vec<usize> = match prefix {
            SIGNING_SECRET_PREFIX => text.match_indices(prefix).map(|(at, _)| at).collect(),
            _ => word_starts(text, text, prefix).collect(),
        };
        for at in starts {
            let from = at + prefix.len();
            let len = token_len(&text[from..], "_-");
            if len >= min {
                spans.push((at, from + len));
            }
        }
    }
    replace_spans(text, spans, REDACTED)
}

/// Where `needle` starts a word of `text`, found in `haystack`: `text` itself, or its ASCII
/// lowercase, which has the same byte offsets.
fn word_starts<'a>(
    text: &'a str,
    haystack: &'a str,
    needle: &'a str,
) -> impl Iterator<Item = usize> + 'a {
    haystack
        .match_indices(needle)
        .map(|(at, _)| at)
        .filter(move |&at| starts_word(text, at))
}

/// Whether a word starts at byte `at`: the character before is not part of one.
fn starts_word(text: &str, at: usize) -> bool {
    text[..at]
        .chars()
        .next_back()
        .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
}

/// The length of the run of ASCII letters, digits and `also` that `text` starts with.
fn token_len(text: &str, also: &str) -> usize {
    text.find(|c: char| !(c.is_ascii_alphanumeric() || also.contains(c)))
        .unwrap_or(text.len())
}

/// `text` with each span replaced by `with`; spans overlapping an earlier one are dropped, and
/// spans that already read `with` are left, so that scrubbing twice changes nothing. `None`
/// when nothing changed.
pub(super) fn replace_spans(
    text: &str,
    mut spans: Vec<(usize, usize)>,
    with: &str,
) -> Option<String> {
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut changed = false;
    for (start, end) in spans {
        if start < copied || &text[start..end] == with {
            continue;
        }
        out.push_str(&text[copied..start]);
        out.push_str(with);
        copied = end;
        changed = true;
    }
    out.push_str(&text[copied..]);
    changed.then_some(out)
}
