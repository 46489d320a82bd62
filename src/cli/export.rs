//! `kayle-sync export`: write the live endpoints as manifests, to start managing an existing
//! organization. Endpoints made elsewhere get `adopt:` so that the first apply takes them over
//! in place, keeping their ids and signing secrets.
//!
//! Everything the server sent is written quoted (see `yaml`), so that no id, name, label or URL
//! can add YAML structure, and keys, which name the files `--out` writes, are only ever
//! endpoint keys (`[a-z0-9-]`).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::Outcome;
use super::args::ExportArgs;
use super::session::Session;
use super::yaml;
use crate::model::{self, Live, LiveEndpoint, Project};
use crate::plan;
use crate::redact::{self, safe_line};

pub async fn run(
    args: &ExportArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let session = Session::open(&args.dir, err).await?;
    let listed = session.client.list_endpoints().await;
    let project = session.loaded.desired.project.clone();
    session.close().await;
    let live = Live {
        endpoints: listed.context("listing endpoints")?,
        ..Live::default()
    };
    let manifests = manifests(&project, &live, err)?;
    match &args.out {
        None => {
            for (i, (_, text)) in manifests.iter().enumerate() {
                if i > 0 {
                    writeln!(out, "---")?;
                }
                out.write_all(text.as_bytes())?;
            }
        }
        Some(dir) => write_files(dir, &manifests, err)?,
    }
    Ok(Outcome::Success)
}

fn write_files(
    dir: &Path,
    manifests: &[(String, String)],
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if let Some((key, _)) = manifests.iter().find(|(key, _)| !model::is_valid_key(key)) {
        anyhow::bail!("refusing to write a manifest for `{key}`, which is not an endpoint key");
    }
    // A symbolic link counts as existing even when it leads nowhere: it is never written through.
    let existing: Vec<String> = manifests
        .iter()
        .map(|(key, _)| dir.join(format!("{key}.yaml")))
        .filter(|path| path.symlink_metadata().is_ok())
        .map(|path| path.display().to_string())
        .collect();
    if !existing.is_empty() {
        anyhow::bail!(
            "refusing to overwrite {}; export into an empty directory",
            existing.join(", ")
        );
    }
    for (key, text) in manifests {
        let path = dir.join(format!("{key}.yaml"));
        // `create_new` refuses a file or link that appeared since the check above.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    writeln!(
        err,
        "Wrote {} manifest(s) to {}.",
        manifests.len(),
        dir.display()
    )?;
    Ok(())
}

/// One manifest per live endpoint (duplicates of a managed key left out), by key.
pub fn manifests(
    project: &Project,
    live: &Live,
    err: &mut dyn Write,
) -> anyhow::Result<Vec<(String, String)>> {
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
        out.push((
            key.clone(),
            manifest(project, key, endpoints[0], false, err)?,
        ));
    }
    let unmanaged = live
        .endpoints
        .iter()
        .filter(|e| !managed.values().flatten().any(|m| m.id == e.id));
    for endpoint in unmanaged {
        let key = derive_key(project, endpoint, &taken);
        taken.insert(key.clone());
        out.push((key.clone(), manifest(project, &key, endpoint, true, err)?));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn manifest(
    project: &Project,
    key: &str,
    endpoint: &LiveEndpoint,
    adopt: bool,
    err: &mut dyn Write,
) -> anyhow::Result<String> {
    // What the server says is scrubbed of anything shaped like a credential, then quoted.
    let quote = |s: &str| yaml::quoted(&redact::scrub(s, &[]));
    let list = |items: &[String]| {
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
    let labels: Vec<String> = endpoint
        .labels
        .iter()
        .filter(|label| !label.starts_with(project.label_prefix.as_str()))
        .cloned()
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
    let mut events: Vec<String> = Vec::new();
    for event in &endpoint.subscribed_event_types {
        if !events.contains(event) {
            events.push(event.clone());
        }
    }
    let all: BTreeSet<&str> = model::ALL_EVENT_TYPES.into_iter().collect();
    if events.iter().map(String::as_str).collect::<BTreeSet<_>>() != all {
        writeln!(text, "    subscribed_event_types: {}", list(&events))?;
    }
    if endpoint.undelivered_payload_retention_hours != model::DEFAULT_RETENTION_HOURS {
        writeln!(
            text,
            "    undelivered_payload_retention_hours: {}",
            endpoint.undelivered_payload_retention_hours
        )?;
    }
    let sink = match (&project.default_sink, project.sinks.len()) {
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
    if rotation > 0 || sink.is_some() {
        writeln!(text, "    signing_secret:")?;
        if let Some(sink) = sink {
            writeln!(text, "      sink: {}", quote(&sink))?;
        }
        if rotation > 0 {
            writeln!(text, "      rotation: {rotation}")?;
        }
    }
    Ok(text)
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
fn slug(text: &str) -> String {
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

#[cfg(test)]
mod tests;
