//! `kayle-sync export`: write the live endpoints as manifests, to start managing an existing
//! organization. Endpoints made elsewhere get `adopt:` so that the first apply takes them over
//! in place, keeping their ids and signing secrets.
//!
//! The text is rendered by [`crate::report::export`], which quotes everything the server sent;
//! this side lists the organization and writes the files.
//!
//! With `--out DIR`, the registered public keys are written as key files that the manifests'
//! `encryption_keys` name, and DIR gets a project file naming the same API and sinks, so that
//! a plan of DIR right after finds nothing to change. Nothing existing is ever overwritten.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::Outcome;
use super::args::ExportArgs;
use super::session::Session;
use crate::model::{self, Live, Project, SecretSpec};
use crate::report::export::{Exported, manifests, project_file};

pub async fn run(
    args: &ExportArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let mut session = Session::open(&args.dir, err).await?;
    let listed = list(&session, args.out.is_some()).await;
    let project = session.loaded.desired.project.clone();
    // Only each declared endpoint's secret spec is read, and the session is done with them:
    // moved out, not copied (at 10,000 endpoints the declarations are megabytes).
    let declared: BTreeMap<String, SecretSpec> =
        std::mem::take(&mut session.loaded.desired.endpoints)
            .into_iter()
            .map(|(key, endpoint)| (key, endpoint.signing_secret))
            .collect();
    session.close().await;
    let live = listed?;
    let within: Option<Option<std::path::PathBuf>> = match &args.out {
        Some(dir) => Some(within(&project, dir)?),
        None => None,
    };
    let keys_at = within.as_ref().map(Option::as_deref);
    let manifests = manifests(&project, &declared, &live, keys_at, err)?;
    match &args.out {
        None => {
            for (i, exported) in manifests.iter().enumerate() {
                if i > 0 {
                    writeln!(out, "---")?;
                }
                out.write_all(exported.text.as_bytes())?;
            }
        }
        Some(dir) => write_files(&project, dir, within.flatten().is_some(), &manifests, err)?,
    }
    Ok(Outcome::Success)
}

/// Where the config directory that will read `out` sees it: `None` when `out` is a config
/// directory of its own, else `out` relative to the project's directory, which it lies in
/// (and whose project file then applies to it). Creates `out`.
fn within(project: &Project, out: &Path) -> anyhow::Result<Option<std::path::PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let canonical = |dir: &Path| {
        std::fs::canonicalize(dir).with_context(|| format!("resolving {}", dir.display()))
    };
    let (from, out) = (canonical(&project.dir)?, canonical(out)?);
    Ok(match out.strip_prefix(&from) {
        Ok(relative) if !relative.as_os_str().is_empty() => Some(relative.to_path_buf()),
        _ => None,
    })
}

/// The endpoints, and with `keys` the keys of each (one request per endpoint).
async fn list(session: &Session, keys: bool) -> anyhow::Result<Live> {
    use futures::{StreamExt, TryStreamExt};
    let client = &session.client;
    let endpoints = client.list_endpoints().await.context("listing endpoints")?;
    if !keys {
        return Ok(Live {
            endpoints,
            ..Live::default()
        });
    }
    let keys = futures::stream::iter(&endpoints)
        .map(|endpoint| async move {
            let keys = client.list_keys(&endpoint.id).await?;
            Ok::<_, crate::api::ApiError>((endpoint.id.clone(), keys))
        })
        .buffer_unordered(crate::read::READ_CONCURRENCY)
        .try_collect()
        .await
        .context("listing encryption keys")?;
    Ok(Live {
        endpoints,
        keys,
        ..Live::default()
    })
}

/// Writes the manifests and key files into `dir`, and a project file unless `dir` lies inside
/// the project's directory or has one already.
fn write_files(
    project: &Project,
    dir: &Path,
    inside_project: bool,
    manifests: &[Exported],
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    if let Some(exported) = manifests.iter().find(|e| !model::is_valid_key(&e.key)) {
        anyhow::bail!(
            "refusing to write a manifest for `{}`, which is not an endpoint key",
            exported.key
        );
    }
    let mut files: Vec<(std::path::PathBuf, &str)> = Vec::new();
    for exported in manifests {
        files.push((dir.join(format!("{}.yaml", exported.key)), &exported.text));
        for key in &exported.key_files {
            files.push((dir.join(&key.path), &key.jwk));
        }
    }
    // A symbolic link counts as existing even when it leads nowhere: it is never written through.
    let exists = |path: &Path| path.symlink_metadata().is_ok();
    let existing: Vec<String> = files
        .iter()
        .map(|(path, _)| path)
        .filter(|path| exists(path))
        .map(|path| path.display().to_string())
        .collect();
    if !existing.is_empty() {
        anyhow::bail!(
            "refusing to overwrite {}; export into an empty directory",
            existing.join(", ")
        );
    }
    let project_path = dir.join(crate::manifest::PROJECT_FILES[0]);
    let project_exists = crate::manifest::PROJECT_FILES
        .iter()
        .any(|name| exists(&dir.join(name)));
    let project_text = project_file(project, dir)
        .with_context(|| format!("writing a project file for {}", dir.display()))?;
    let write_project = !project_exists && !inside_project;
    if write_project {
        files.push((project_path.clone(), &project_text));
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        // `create_new` refuses a file or link that appeared since the check above.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let key_files: usize = manifests.iter().map(|e| e.key_files.len()).sum();
    writeln!(
        err,
        "Wrote {} manifest(s) and {key_files} public key file(s) to {}.",
        manifests.len(),
        dir.display()
    )?;
    if inside_project {
        writeln!(
            err,
            "{} lies in the config directory {}, whose project file applies to it.",
            dir.display(),
            project.dir.display()
        )?;
    } else if project_exists {
        writeln!(
            err,
            "{} has a project file already: it was left as it is.",
            dir.display()
        )?;
    } else {
        writeln!(
            err,
            "Wrote {}, naming the same API and sinks as {}.",
            project_path.display(),
            project.dir.display()
        )?;
        if project.api.url == model::ApiUrl::Sandbox {
            writeln!(
                err,
                "The sandbox keeps its state in its config directory: {} starts with an empty \
                 one unless {} is copied into it.",
                dir.display(),
                crate::api::sandbox::STATE_FILE
            )?;
        }
    }
    Ok(())
}
