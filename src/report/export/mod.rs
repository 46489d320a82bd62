//! What `export` writes: each live endpoint as a manifest, its keys as key files, and a
//! project file naming the same API and sinks.
//!
//! Everything the server sent is written quoted (see `yaml`), so that no id, name, label or URL
//! can add YAML structure, and keys, which name the files `--out` writes, are only ever
//! endpoint keys (`[a-z0-9-]`).

mod keys;
mod project_file;
#[cfg(test)]
mod tests;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

pub use project_file::project_file;

use crate::model::{self, EventType, Live, LiveEndpoint, Project, SecretSpec};
use crate::plan;
use crate::redact::{self, safe_line};

/// What export writes for one endpoint: its manifest, and the key files the manifest names.
#[derive(Debug)]
pub struct Exported {
    pub key: String,
    pub text: String,
    pub key_files: Vec<keys::ExportedKey>,
}

/// One manifest per live endpoint (duplicates of a managed key left out), by key. `declared`
/// holds the secret spec of each endpoint the source directory declares.
///
/// With `keys_at`, each endpoint's registered keys (listed in `live.keys`) are declared from
/// key files to write next to the manifests, named from the config directory that reads them:
/// `Some(None)` when that is the output directory itself, `Some(Some(path))` when the output
/// directory is `path` inside it. Without, keys are left out (and `live.keys` is not read).
pub fn manifests(
    project: &Project,
    declared: &BTreeMap<String, SecretSpec>,
    live: &Live,
    keys_at: Option<Option<&Path>>,
    err: &mut dyn Write,
) -> anyhow::Result<Vec<Exported>> {
    let managed = plan::managed(project, live);
    let mut taken: BTreeSet<String> = managed.keys().cloned().collect();
    let mut out = Vec::new();
    for (key, endpoints) in &managed {
        if endpoints.len() > 1 {
            writeln!(
                err,
                "{key}: {} endpoints carry its label; exporting the oldest, {} (apply removes the others)",
                endpoints.len(),
                safe_line(&endpoints[0].id)
            )?;
        }
        // Where the source directory stores this endpoint's secret, it is stored again.
        let secret = declared.get(key);
        out.push(manifest(
            project,
            key,
            endpoints[0],
            false,
            (live, keys_at, secret),
            err,
        )?);
    }
    let unmanaged = live
        .endpoints
        .iter()
        .filter(|e| !managed.values().flatten().any(|m| m.id == e.id));
    for endpoint in unmanaged {
        let key = derive_key(project, endpoint, &taken);
        taken.insert(key.clone());
        out.push(manifest(
            project,
            &key,
            endpoint,
            true,
            (live, keys_at, None),
            err,
        )?);
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    if keys_at.is_none() && !out.is_empty() {
        writeln!(
            err,
            "Encryption keys are exported only with --out DIR, as key files the manifests name."
        )?;
    }
    Ok(out)
}

fn manifest(
    project: &Project,
    key: &str,
    endpoint: &LiveEndpoint,
    adopt: bool,
    (live, keys_at, declared): (&Live, Option<Option<&Path>>, Option<&SecretSpec>),
    err: &mut dyn Write,
) -> anyhow::Result<Exported> {
    // What the server says is scrubbed of anything shaped like a credential, then quoted.
    let quote = |s: &str| yaml::quoted(&redact::scrub(s, &[]));
    let list = |items: &[&str]| {
        let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
        format!("[{}]", quoted.join(", "))
    };
    let mut text = String::new();
    writeln!(text, "endpoints:")?;
    writeln!(text, "  {}:", yaml::key(key))?;
    if adopt {
        writeln!(
            text,
            "    adopt: {}  # made elsewhere: the first apply takes it over in place",
            quote(&endpoint.id)
        )?;
    }
    writeln!(text, "    url: {}", quote(&endpoint.url))?;
    if let Some(name) = &endpoint.name {
        writeln!(text, "    name: {}", quote(name))?;
    }
    let labels: Vec<&str> = endpoint
        .labels
        .iter()
        .map(String::as_str)
        .filter(|label| !label.starts_with(project.label_prefix.as_str()))
        .collect();
    if !labels.is_empty() {
        writeln!(text, "    labels: {}", list(&labels))?;
    }
    // One label slot holds the identity label, one more the secret-state label.
    let rotation = plan::applied_rotation(project, endpoint);
    let room = model::MAX_DECLARED_LABELS;
    if labels.len() > room {
        writeln!(
            err,
            "{key}: {} labels, but a manifest may declare {room} (kayle-sync keeps its own \
             labels in the other slots): drop some before applying",
            labels.len()
        )?;
    }
    if !endpoint.enabled {
        writeln!(text, "    enabled: false")?;
    }
    let mut events: Vec<&str> = Vec::new();
    for event in endpoint.subscribed_event_types.iter().map(EventType::name) {
        if !events.contains(&event) {
            events.push(event);
        }
    }
    let all: BTreeSet<&str> = model::ALL_EVENT_TYPES.into_iter().collect();
    if events.iter().copied().collect::<BTreeSet<_>>() != all {
        writeln!(text, "    subscribed_event_types: {}", list(&events))?;
    }
    if endpoint.undelivered_payload_retention_hours != model::DEFAULT_RETENTION_HOURS {
        writeln!(
            text,
            "    undelivered_payload_retention_hours: {}",
            endpoint.undelivered_payload_retention_hours
        )?;
    }
    let listed = live
        .keys
        .get(&endpoint.id)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let (key_files, notes) = keys::exported_keys(key, listed);
    for note in notes {
        writeln!(err, "{note}")?;
    }
    if let Some(at) = keys_at.filter(|_| !key_files.is_empty()) {
        writeln!(text, "    encryption_keys:")?;
        for exported in &key_files {
            let path = match at {
                Some(at) => at.join(&exported.path).to_string_lossy().into_owned(),
                None => exported.path.clone(),
            };
            writeln!(text, "      - key_id: {}", quote(&exported.key_id))?;
            writeln!(text, "        public_key_file: {}", quote(&path))?;
        }
    }
    let sink = match (&project.default_sink, project.sinks.len()) {
        _ if declared.is_some_and(|d| project.default_sink.as_ref() != Some(&d.sink)) => {
            declared.map(|d| d.sink.clone())
        }
        (Some(_), _) => None,
        (None, 1) => project.sinks.keys().next().cloned(),
        (None, _) => {
            writeln!(
                err,
                "{key}: no default sink in kayle-sync.yaml; set signing_secret.sink"
            )?;
            None
        }
    };
    let name = declared
        .map(|d| &d.name)
        .filter(|name| **name != crate::manifest::default_secret_name(key));
    if rotation > 0 || sink.is_some() || name.is_some() {
        writeln!(text, "    signing_secret:")?;
        if let Some(sink) = sink {
            writeln!(text, "      sink: {}", quote(&sink))?;
        }
        if let Some(name) = name {
            writeln!(text, "      name: {}", quote(name))?;
        }
        if rotation > 0 {
            writeln!(text, "      rotation: {rotation}")?;
        }
    }
    Ok(Exported {
        key: key.to_owned(),
        text,
        key_files: if keys_at.is_some() {
            key_files
        } else {
            Vec::new()
        },
    })
}

/// A key for an endpoint made elsewhere: its name made key-shaped, short enough for the
/// identity label, and not taken; else `endpoint-` and the start of its id made key-shaped.
/// Only `[a-z0-9-]` ever reaches a key, whatever the server sent.
fn derive_key(project: &Project, endpoint: &LiveEndpoint, taken: &BTreeSet<String>) -> String {
    let room = model::MAX_LABEL_UNITS.saturating_sub(project.label_prefix.encode_utf16().count());
    let id_part: String = slug(endpoint.id.trim_start_matches("whe_"))
        .chars()
        .take(8)
        .collect();
    let base = match (slug(endpoint.name.as_deref().unwrap_or_default()), id_part) {
        (name, _) if !name.is_empty() => name,
        (_, id) if !id.is_empty() => format!("endpoint-{}", id.trim_end_matches('-')),
        _ => "endpoint".to_owned(),
    };
    let numbered = |n: usize, room: usize| {
        let suffix = if n == 1 {
            String::new()
        } else {
            format!("-{n}")
        };
        let head: String = base
            .chars()
            .take(room.saturating_sub(suffix.len()))
            .collect();
        format!("{}{suffix}", head.trim_end_matches('-'))
    };
    let free = |key: &String| model::is_valid_key(key) && !taken.contains(key);
    (1..=taken.len() + 1)
        .map(|n| numbered(n, room))
        .find(free)
        // No short key fits beside the label prefix: a longer one, which validate will flag.
        .or_else(|| (1..).map(|n| numbered(n, usize::MAX)).find(free))
        .expect("only finitely many keys are taken")
}

/// `text` lower-cased, each run of other characters than ASCII letters and digits made one `-`,
/// with no `-` at either end.
pub(super) fn slug(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}
