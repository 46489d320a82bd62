//! The `kayle-sync.yaml` that `export --out DIR` writes, so that DIR plans against the same
//! organization and the same sinks as the project it was exported from.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::yaml::quoted;
use crate::model::{ApiUrl, Project, SinkConfig};

/// The project file for the directory `out`, naming `project`'s API, label prefix, sinks and
/// default sink. A file sink's path is made to reach the same file from `out` (see [`reach`]).
/// Both directories exist.
pub fn project_file(project: &Project, out: &Path) -> std::io::Result<String> {
    let from = std::fs::canonicalize(&project.dir)?;
    let out = std::fs::canonicalize(out)?;
    let mut text = String::new();
    let w = &mut text;
    let _ = writeln!(
        w,
        "# The API, label prefix and sinks of the project this was exported from."
    );
    let _ = writeln!(w, "api:");
    match &project.api.url {
        ApiUrl::Remote(url) => {
            let _ = writeln!(w, "  url: {}", quoted(url));
        }
        ApiUrl::Sandbox => {
            let _ = writeln!(w, "  url: sandbox");
        }
    }
    let _ = writeln!(w, "  token_env: {}", quoted(&project.api.token_env));
    let _ = writeln!(w, "label_prefix: {}", quoted(&project.label_prefix));
    if !project.sinks.is_empty() {
        let _ = writeln!(w, "sinks:");
    }
    for (name, sink) in &project.sinks {
        let _ = writeln!(w, "  {}:", quoted(name));
        let line = |w: &mut String, field: &str, value: &str| {
            let _ = writeln!(w, "    {field}: {}", quoted(value));
        };
        match sink {
            SinkConfig::Dotenv { path } | SinkConfig::Json { path } => {
                let kind = match sink {
                    SinkConfig::Dotenv { .. } => "dotenv",
                    _ => "json",
                };
                line(w, "type", kind);
                let path = reach(&from.join(path), &out);
                line(w, "path", &path.to_string_lossy());
            }
            SinkConfig::Command {
                command,
                timeout_seconds,
            } => {
                line(w, "type", "command");
                let argv: Vec<String> = command.iter().map(|arg| quoted(arg)).collect();
                let _ = writeln!(w, "    command: [{}]", argv.join(", "));
                let _ = writeln!(w, "    timeout_seconds: {timeout_seconds}");
            }
            SinkConfig::AwsSecretsManager {
                region,
                endpoint_url,
                prefix,
            } => {
                line(w, "type", "aws-secrets-manager");
                if let Some(region) = region {
                    line(w, "region", region);
                }
                if let Some(url) = endpoint_url {
                    line(w, "endpoint_url", url);
                }
                if !prefix.is_empty() {
                    line(w, "prefix", prefix);
                }
            }
            SinkConfig::Vault {
                address,
                mount,
                path,
                token_env,
            } => {
                line(w, "type", "vault");
                line(w, "address", address);
                line(w, "mount", mount);
                line(w, "path", path);
                line(w, "token_env", token_env);
            }
        }
        if let Some(reload) = project.reloads.get(name) {
            let argv: Vec<String> = reload.command.iter().map(|arg| quoted(arg)).collect();
            let _ = writeln!(w, "    reload:");
            let _ = writeln!(w, "      command: [{}]", argv.join(", "));
            let _ = writeln!(w, "      timeout_seconds: {}", reload.timeout_seconds);
        }
    }
    if let Some(sink) = &project.default_sink {
        let _ = writeln!(
            w,
            "defaults:\n  signing_secret:\n    sink: {}",
            quoted(sink)
        );
    }
    Ok(text)
}

/// `file` as the project file in `out` must name it: relative to `out` (`../app/kayle.env`)
/// when the two share a directory below the root, so that the pair can be committed and
/// checked out anywhere; absolute otherwise.
fn reach(file: &Path, out: &Path) -> PathBuf {
    // The file's directory may not exist yet; its nearest existing ancestor decides.
    let mut existing = file.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_owned());
                existing = parent.to_path_buf();
            }
            _ => return file.to_path_buf(),
        }
    }
    let mut resolved = std::fs::canonicalize(&existing).unwrap_or(existing);
    resolved.extend(rest.iter().rev());
    let shared = resolved
        .components()
        .zip(out.components())
        .take_while(|(a, b)| a == b)
        .count();
    // The root alone in common: nothing to gain from `../../..`.
    if shared <= 1 {
        return resolved;
    }
    pathdiff::diff_paths(&resolved, out).unwrap_or(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_project_reads_back_with_the_same_sinks() {
        let source = tempfile::tempdir().unwrap();
        std::fs::write(
            source.path().join("kayle-sync.yaml"),
            "api:\n  url: https://api.example.com\n  token_env: KAYLE_OTHER_KEY\n\
             label_prefix: \"ks:\"\nsinks:\n  local: { type: dotenv, path: secrets/kayle.env }\n  \
             gh: { type: command, command: [gh, secret, set, \"{name}\"], timeout_seconds: 9 }\n  \
             k8s:\n    type: dotenv\n    path: k8s.env\n    reload: { command: [kubectl, rollout, restart, \"deploy/a b\"] }\n  \
             vault: { type: vault, address: \"https://vault.example.com\", token_env: VAULT_X }\n\
             defaults:\n  signing_secret: { sink: local }\n",
        )
        .unwrap();
        let project = crate::manifest::load_project(source.path()).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        for out in [
            source.path().join("exported"),
            elsewhere.path().to_path_buf(),
        ] {
            std::fs::create_dir_all(&out).unwrap();
            let text = project_file(&project, &out).unwrap();
            std::fs::write(out.join("kayle-sync.yaml"), &text).unwrap();
            let again = crate::manifest::load_project(&out).unwrap();
            assert_eq!(again.api.url, project.api.url, "{text}");
            assert_eq!(again.api.token_env, "KAYLE_OTHER_KEY", "{text}");
            assert_eq!(again.label_prefix, "ks:");
            assert_eq!(again.default_sink.as_deref(), Some("local"));
            assert_eq!(again.sinks["gh"], project.sinks["gh"], "{text}");
            assert_eq!(again.sinks["vault"], project.sinks["vault"], "{text}");
            assert_eq!(again.reloads, project.reloads, "{text}");
            assert_eq!(again.reloads["k8s"].command[3], "deploy/a b", "{text}");
            assert_eq!(again.reloads["k8s"].timeout_seconds, 30, "{text}");
            let SinkConfig::Dotenv { path } = &again.sinks["local"] else {
                panic!("{text}")
            };
            assert!(path.is_relative(), "{text}");
            assert_eq!(
                reach(&out.join(path), Path::new("/")),
                std::fs::canonicalize(source.path())
                    .unwrap()
                    .join("secrets/kayle.env"),
                "the same file, from {}: {text}",
                out.display()
            );
        }
        let inside = source.path().join("exported");
        let text = project_file(&project, &inside).unwrap();
        assert!(text.contains("path: \"../secrets/kayle.env\""), "{text}");
    }
}
