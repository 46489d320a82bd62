//! The credentials of kayle-sync's own environment, known by their variables' names: a
//! command sink inherits the environment (`GITHUB_TOKEN`, `AWS_SECRET_ACCESS_KEY`, ...) and
//! can print it, and a server can echo what it was sent. Their exact values are scrubbed from
//! everything shown, whatever their shape.

use std::sync::OnceLock;

use secrecy::ExposeSecret;

/// Values shorter than this are not looked for: a variable named like a credential may hold a
/// flag or a short word, and replacing those would garble messages.
const MIN_VALUE_CHARS: usize = 8;

/// What the name (upper-cased) of a variable that holds a credential contains.
const NAME_PARTS: [&str; 6] = [
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "PRIVATE_KEY",
];

/// How the names of variables that hold where a credential is, not the credential, end.
const LOCATION_SUFFIXES: [&str; 3] = ["_FILE", "_PATH", "_DIR"];

/// The forms ([`super::credentials`]' known forms) of every credential in the environment
/// when first asked, and of those kayle-sync took out of it at start; longest first.
pub(super) fn forms() -> &'static [String] {
    static FORMS: OnceLock<Vec<String>> = OnceLock::new();
    FORMS.get_or_init(|| {
        let vars = std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        });
        let taken = crate::credentials::taken_all()
            .into_iter()
            .map(|(name, value)| (name, value.expose_secret().to_owned()));
        let mut forms: Vec<String> = credential_values(vars.chain(taken))
            .iter()
            .flat_map(|value| super::credentials::known_forms(value))
            .collect();
        forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
        forms.dedup();
        forms
    })
}

/// The values of `vars` whose names say they hold a credential (they contain `TOKEN`,
/// `SECRET`, `PASSWORD`, `CREDENTIAL`, ... or end in `_KEY`, and do not end in `_FILE`,
/// `_PATH` or `_DIR`), at least [`MIN_VALUE_CHARS`] long.
pub(super) fn credential_values(vars: impl Iterator<Item = (String, String)>) -> Vec<String> {
    let mut values: Vec<String> = vars
        .filter(|(name, value)| {
            is_credential_name(name) && value.trim().chars().count() >= MIN_VALUE_CHARS
        })
        .map(|(_, value)| value)
        .collect();
    values.sort_unstable();
    values.dedup();
    values
}

fn is_credential_name(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    (NAME_PARTS.iter().any(|part| name.contains(part)) || name.ends_with("_KEY"))
        && !LOCATION_SUFFIXES
            .iter()
            .any(|suffix| name.ends_with(suffix))
}
