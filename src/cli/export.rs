//! `kayle-sync export`: write the live endpoints as manifests, to start managing an existing
//! organization. Endpoints made elsewhere get `adopt:` so that the first apply takes them over
//! in place, keeping their ids and signing secrets.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::Outcome;
use super::args::ExportArgs;
use super::session::Session;
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
    let existing: Vec<String> = manifests
        .iter()
        .map(|(key, _)| dir.join(format!("{key}.yaml")))
        .filter(|path| path.exists())
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
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
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
    // A JSON string is a YAML string with every control character escaped; what the server
    // says is also scrubbed of anything shaped like a credential.
    let quote = |s: &str| serde_json::to_string(&redact::scrub(s, &[])).expect("strings serialize");
    let list = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
        format!("[{}]", quoted.join(", "))
    };
    let mut text = String::new();
    writeln!(text, "endpoints:")?;
    writeln!(text, "  {key}:")?;
    if adopt {
        writeln!(
            text,
            "    adopt: {}  # made elsewhere: the first apply takes it over in place",
            if is_plain(&endpoint.id) {
                endpoint.id.clone()
            } else {
                quote(&endpoint.id)
            }
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
    // One label slot holds the identity label, one more the rotation label once rotated.
    let rotation = plan::applied_rotation(project, endpoint);
    let room = model::MAX_LABELS - 1 - usize::from(rotation > 0);
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

/// Whether `id` can stand in YAML as it is: only letters, digits, `_` and `-`.
fn is_plain(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A key for an endpoint made elsewhere: its name made key-shaped, short enough for the
/// identity label, and not taken; else `endpoint-` and the start of its id.
fn derive_key(project: &Project, endpoint: &LiveEndpoint, taken: &BTreeSet<String>) -> String {
    let room = model::MAX_LABEL_UNITS.saturating_sub(project.label_prefix.encode_utf16().count());
    let mut slug = String::new();
    for c in endpoint.name.as_deref().unwrap_or_default().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let id_part: String = endpoint
        .id
        .trim_start_matches("whe_")
        .chars()
        .take(8)
        .collect();
    let base = match slug.trim_matches('-') {
        "" => format!("endpoint-{id_part}"),
        slug => slug.to_owned(),
    };
    let base: String = base.chars().take(room.saturating_sub(3)).collect();
    let base = base.trim_end_matches('-').to_owned();
    let mut key = base.clone();
    let mut n = 2;
    while taken.contains(&key) || !model::is_valid_key(&key) {
        key = format!("{base}-{n}");
        n += 1;
        if n > 99 {
            return format!("endpoint-{id_part}");
        }
    }
    key
}
