//! Secret sinks: where signing secrets and generated private keys are written, one file per kind.
//!
//! [`build`] turns a sink's configuration into a [`SecretSink`]; [`Sinks`] holds every sink a
//! project declares, by name.
//!
//! # Readable and write-only sinks
//!
//! The `dotenv`, `json`, `aws-secrets-manager` and `vault` sinks can be read: before planning,
//! kayle-sync asks them whether they hold each managed endpoint's secret, and a plan shows
//! "secret missing from sink" for one that is absent (an entry with an empty value counts as
//! absent); apply then recovers the secret with the API's reveal call and writes it again.
//!
//! The `command` sink is **write-only**: kayle-sync hands the secret to the command and learns
//! only whether the command exited successfully. It cannot tell whether the secret is still
//! there later (someone may have deleted the GitHub secret or the Kubernetes object), so a plan
//! never reports a command sink's secret as missing and never recovers it on its own. The
//! secret is written again only when it is rotated (`signing_secret.rotation` bumped, or
//! `kayle-sync rotate KEY`), when duplicate endpoints are resolved, or when a create or a
//! recovery writes it for another reason. To repair a lost secret in a write-only sink, rotate.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::model::{Project, SecretSink, SinkConfig, SinkError};

pub use git::{GitAnswers, ignore_sink_files, tracked_sink_files};

#[cfg(feature = "aws")]
pub mod aws;
mod batch;
pub mod command;
pub mod dotenv;
mod file;
mod file_sink;
mod git;
pub mod json;
pub mod vault;

/// The sink `name` configured by `config`; relative paths are resolved against `project_dir`.
pub fn build(
    name: &str,
    config: &SinkConfig,
    project_dir: &Path,
) -> Result<Arc<dyn SecretSink>, SinkError> {
    build_asking(name, config, project_dir, &Arc::default())
}

/// [`build`], a file sink asking git about its file through `git`.
fn build_asking(
    name: &str,
    config: &SinkConfig,
    project_dir: &Path,
    git: &Arc<GitAnswers>,
) -> Result<Arc<dyn SecretSink>, SinkError> {
    let git = Arc::clone(git);
    Ok(match config {
        SinkConfig::Dotenv { path } => {
            Arc::new(dotenv::DotenvSink::new(name, project_dir.join(path), git))
        }
        SinkConfig::Json { path } => {
            Arc::new(json::JsonSink::new(name, project_dir.join(path), git))
        }
        SinkConfig::Command {
            command,
            timeout_seconds,
        } => Arc::new(command::CommandSink::new(
            name,
            command.clone(),
            Duration::from_secs(*timeout_seconds),
        )?),
        #[cfg(feature = "aws")]
        SinkConfig::AwsSecretsManager {
            region,
            endpoint_url,
            prefix,
        } => Arc::new(aws::AwsSecretsManagerSink::new(
            name,
            region.clone(),
            endpoint_url
                .as_deref()
                .map(|url| aws_endpoint(name, url))
                .transpose()?,
            prefix,
        )),
        #[cfg(not(feature = "aws"))]
        SinkConfig::AwsSecretsManager { .. } => {
            return Err(SinkError::Config {
                sink: name.to_owned(),
                message: "this kayle-sync was built without the `aws` feature".to_owned(),
            });
        }
        SinkConfig::Vault {
            address,
            mount,
            path,
            token_env,
        } => Arc::new(vault::VaultSink::new(
            name, address, mount, path, token_env,
        )?),
    })
}

/// `url` as the endpoint of the AWS sink `name`, if AWS credentials may be sent there.
#[cfg(feature = "aws")]
fn aws_endpoint(name: &str, url: &str) -> Result<String, SinkError> {
    crate::http::check_aws_endpoint_url(url)
        .map(|_| url.to_owned())
        .map_err(|e| SinkError::Config {
            sink: name.to_owned(),
            message: format!("endpoint_url {}: {e}", crate::http::redact(url)),
        })
}

/// Every sink a project declares, by name, and the `reload` commands of those that have one.
#[derive(Clone, Default)]
pub struct Sinks {
    by_name: BTreeMap<String, Arc<dyn SecretSink>>,
    reloads: BTreeMap<String, Arc<Reload>>,
    /// What git said about the file sinks' files in this run.
    git: Arc<GitAnswers>,
}

/// A sink's `reload` command, and when it last started: endpoints rotated together share one
/// run (three endpoints in one sink must not restart the receiver three times at once).
pub struct Reload {
    command: command::CommandSink,
    last_started: tokio::sync::Mutex<Option<std::time::Instant>>,
}

/// What [`Reload::after`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloaded {
    /// The command ran.
    Ran,
    /// A run that started after the write already covers it.
    Covered,
}

impl Reload {
    /// Whether the command can be run: its program is an executable file.
    pub async fn check(&self) -> Result<(), SinkError> {
        match SecretSink::check_writable(&self.command).await {
            Err(SinkError::Config { sink, message }) => Err(SinkError::Config {
                sink,
                message: format!("its reload: {message}"),
            }),
            other => other,
        }
    }

    /// Runs the command unless a run started after `written_at` (the moment the caller's write
    /// to the sink ended); concurrent callers wait for a run in progress, then find it covers
    /// them. `written` is scrubbed from what an error shows.
    pub async fn after(
        &self,
        written_at: std::time::Instant,
        written: &secrecy::SecretString,
    ) -> Result<Reloaded, SinkError> {
        let mut last = self.last_started.lock().await;
        if last.is_some_and(|started| started >= written_at) {
            return Ok(Reloaded::Covered);
        }
        let started = std::time::Instant::now();
        self.command.run_without_input(written).await?;
        *last = Some(started);
        Ok(Reloaded::Ran)
    }
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.by_name.keys()).finish()
    }
}

impl Sinks {
    /// Builds every sink in `project.sinks`; the first one that cannot be built is the error.
    pub fn from_project(project: &Project) -> Result<Sinks, SinkError> {
        // A command sink gets the secret it is handed and no credential of ours.
        let mut hidden: Vec<String> = vec![project.api.token_env.clone()];
        hidden.extend(project.sinks.values().filter_map(|config| match config {
            SinkConfig::Vault { token_env, .. } => Some(token_env.clone()),
            _ => None,
        }));
        let git = Arc::default();
        let by_name = project
            .sinks
            .iter()
            .map(|(name, config)| {
                let sink = match config {
                    SinkConfig::Command {
                        command,
                        timeout_seconds,
                    } => Arc::new(
                        command::CommandSink::new(
                            name,
                            command.clone(),
                            Duration::from_secs(*timeout_seconds),
                        )?
                        .hiding_env(hidden.iter().cloned()),
                    ),
                    _ => build_asking(name, config, &project.dir, &git)?,
                };
                Ok((name.clone(), sink))
            })
            .collect::<Result<_, SinkError>>()?;
        // A reload is handed nothing secret, and no credential of ours either.
        let reloads = project
            .reloads
            .iter()
            .map(|(name, reload)| {
                let command = command::CommandSink::new(
                    name,
                    reload.command.clone(),
                    Duration::from_secs(reload.timeout_seconds),
                )?
                .hiding_env(hidden.iter().cloned());
                let reload = Reload {
                    command,
                    last_started: tokio::sync::Mutex::new(None),
                };
                Ok((name.clone(), Arc::new(reload)))
            })
            .collect::<Result<_, SinkError>>()?;
        Ok(Sinks {
            by_name,
            reloads,
            git,
        })
    }

    /// The `reload` command of the sink called `name`, if it has one.
    pub fn reload(&self, name: &str) -> Option<&Reload> {
        self.reloads.get(name).map(Arc::as_ref)
    }

    /// What git said about the file sinks' files so far: asked through it, git hears about
    /// each file once while these sinks are in use.
    pub fn git(&self) -> &GitAnswers {
        &self.git
    }

    /// The sink called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn SecretSink>> {
        self.by_name.get(name)
    }

    /// Adds or replaces the sink called `name` (tests put fakes here).
    pub fn insert(&mut self, name: &str, sink: Arc<dyn SecretSink>) {
        self.by_name.insert(name.to_owned(), sink);
    }
}

#[cfg(test)]
mod reload_tests {
    use std::time::{Duration, Instant};

    use secrecy::SecretString;

    use super::{Reload, Reloaded, command::CommandSink};

    fn counting(file: &std::path::Path) -> Reload {
        let script = format!("sleep 0.2; echo run >> '{}'", file.display());
        Reload {
            command: CommandSink::new(
                "local",
                vec!["sh".into(), "-c".into(), script],
                Duration::from_secs(10),
            )
            .unwrap(),
            last_started: tokio::sync::Mutex::new(None),
        }
    }

    /// A configuration error, so that `watch` waits for a change instead of retrying.
    #[tokio::test]
    async fn a_reload_whose_program_is_not_executable_is_a_configuration_error() {
        let reload = Reload {
            command: CommandSink::new(
                "local",
                vec!["/nonexistent/prog".into()],
                Duration::from_secs(10),
            )
            .unwrap(),
            last_started: tokio::sync::Mutex::new(None),
        };
        let error = reload.check().await.unwrap_err();
        assert!(
            matches!(&error, crate::model::SinkError::Config { .. }),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "local: its reload: the command `/nonexistent/prog` is not an executable file"
        );
    }

    #[tokio::test]
    async fn writes_made_before_a_run_share_it_and_a_later_write_gets_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("runs");
        let reload = counting(&file);
        let secret = SecretString::from("whsec_x");
        let written = Instant::now();
        let (a, b, c) = tokio::join!(
            reload.after(written, &secret),
            reload.after(written, &secret),
            reload.after(written, &secret),
        );
        let mut outcomes = [a.unwrap(), b.unwrap(), c.unwrap()];
        outcomes.sort_by_key(|r| *r == Reloaded::Covered);
        assert_eq!(
            outcomes,
            [Reloaded::Ran, Reloaded::Covered, Reloaded::Covered]
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 1);
        let later = Instant::now();
        assert_eq!(reload.after(later, &secret).await.unwrap(), Reloaded::Ran);
        assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 2);
    }
}
