//! The work for one endpoint, in the order that never loses an event or a secret: a new
//! endpoint is created disabled, gets its keys, has its secret written, and only then is
//! enabled; an update switches keys and writes secrets before it changes fields.

use secrecy::SecretString;

use super::receiver::AfterRotation;
use super::step::Step;
use super::{Event, Outcome, SecretPlace, Target};
use crate::api::{ApiError, EndpointFields};
use crate::model::{KeyMaterial, LiveEndpoint, SecretState, SinkError};
use crate::plan::{Action, Change, KeyStep, SecretStep};

/// How many times a create whose outcome was unknown, and which was then not found, is tried.
const CREATE_ATTEMPTS: u32 = 3;

/// Why one endpoint's work stopped. Never holds a secret value.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// An API call failed.
    #[error("{key}: {source}")]
    Api {
        key: String,
        #[source]
        source: Box<ApiError>,
    },
    /// Writing a secret (or a generated private key) to its sink failed.
    #[error("{key}: writing {name} to sink {sink} failed: {source}")]
    Sink {
        key: String,
        sink: String,
        name: String,
        #[source]
        source: Box<SinkError>,
    },
    /// Removing a secret from its sink failed: a pruned endpoint's (the endpoint is deleted), or
    /// a replaced key's kept private key.
    #[error("{key}: removing {name} from sink {sink} failed: {source}")]
    SinkRemove {
        key: String,
        sink: String,
        name: String,
        #[source]
        source: Box<SinkError>,
    },
    /// The plan names something the configuration does not have (a stale saved plan).
    #[error("{key}: {message}")]
    Inconsistent { key: String, message: String },
    /// A generated key's private key name holds a value that is not a private key kayle-sync
    /// can use, so the key is not registered. The sink's content needs a person, not a new
    /// plan; the value is never shown.
    #[error(
        "{key}: key {key_id} is not registered: sink {sink} holds a value under {name} that is \
         not a usable private key (an RSA private key in PEM, PKCS#8 or PKCS#1); remove that \
         value from the sink to have a new key generated, or put the key's RSA private key there"
    )]
    UnusablePrivateKey {
        key: String,
        key_id: String,
        sink: String,
        name: String,
    },
    /// The sink's `reload` command failed, after the new secret was written and recorded.
    #[error("{key}: the reload command of sink {sink} failed: {source}")]
    Reload {
        key: String,
        sink: String,
        #[source]
        source: Box<SinkError>,
    },
    /// The receiver still refused a delivery signed with the new secret when `--settle` ran
    /// out (the secret is written and recorded).
    #[error(
        "{key}: the receiver refuses the new signing secret: still {last} after --settle \
         {settle}; check {}that the receiver reads its secret from sink {sink} as {name}",
        if *reload {
            format!("that sink {sink}'s reload command makes the receiver read the sink again, and ")
        } else {
            format!("what makes the receiver read the sink again (sink {sink} has no `reload`), and ")
        }
    )]
    ReceiverRefuses {
        key: String,
        sink: String,
        name: String,
        settle: String,
        last: String,
        /// The sink has a reload command.
        reload: bool,
    },
    /// An earlier change of the same key failed, so this one was not tried.
    #[error("{key}: not attempted, since an earlier change of this endpoint failed")]
    NotAttempted { key: String },
    /// A rotation was not started, because a request whose answer was lost may still land on
    /// the endpoint until `until` (unix seconds): landing after the record made before the
    /// rotation, it could undo that record. The sink was checked against the API instead.
    #[error(
        "{key}: rotation not started, the signing secret is unchanged: a request whose answer \
         was lost may still land on the endpoint until {}, and could undo the record \
         kayle-sync makes before rotating; the sink holds the API's current secret. {}",
        super::secret::unix_time(*until),
        if *by_command {
            format!("Run `kayle-sync rotate {key}` again after that time.")
        } else {
            "An apply after that time rotates.".to_owned()
        }
    )]
    RotationDeferred {
        key: String,
        until: u64,
        /// Asked by `kayle-sync rotate`, which a later apply does not repeat.
        by_command: bool,
    },
}

/// Where a run announces what is worth saying before it happens.
pub(super) type Notices = tokio::sync::mpsc::UnboundedSender<Event>;

pub(super) struct Run<'a, 'b> {
    pub(super) target: &'a Target<'b>,
    pub(super) key: &'a str,
    pub(super) endpoint_id: Option<String>,
    /// The endpoint's labels as last read or written in this run.
    pub(super) labels: Option<Vec<String>>,
    /// The secret state this run recorded on the endpoint, if it recorded one.
    pub(super) state: Option<SecretState>,
    pub(super) done: Vec<Step>,
    pub(super) written: Vec<SecretPlace>,
    pub(super) removed: Vec<SecretPlace>,
    /// What followed a rotation: the reload, the receiver, the deliveries retried.
    pub(super) after_rotation: Option<AfterRotation>,
    /// A rotation this run made, whose receiver is still to be waited for.
    pub(super) rotated: Option<super::secret::Rotated>,
    pub(super) notices: &'a Notices,
}

pub(super) async fn carry_out(target: &Target<'_>, change: &Change, notices: &Notices) -> Outcome {
    let mut run = Run {
        target,
        key: &change.key,
        endpoint_id: change.endpoint_id.clone(),
        labels: None,
        state: None,
        done: Vec::new(),
        written: Vec::new(),
        removed: Vec::new(),
        after_rotation: None,
        rotated: None,
        notices,
    };
    let result = match change.action {
        Action::Create => run.create(change).await,
        Action::Update => run.update(change).await,
        Action::Delete => run.delete(change).await,
    };
    if let Err(err) = &result {
        tracing::debug!(key = change.key, error = %err, "change failed");
    }
    Outcome {
        key: change.key.clone(),
        action: change.action,
        endpoint_id: run.endpoint_id,
        done: run.done,
        written: run.written,
        removed: run.removed,
        after_rotation: run.after_rotation,
        error: result.err(),
    }
}

/// The outcome of a change that was not tried because an earlier one of its key failed.
pub(super) fn not_attempted(change: &Change) -> Outcome {
    Outcome {
        key: change.key.clone(),
        action: change.action,
        endpoint_id: change.endpoint_id.clone(),
        done: Vec::new(),
        written: Vec::new(),
        removed: Vec::new(),
        after_rotation: None,
        error: Some(ApplyError::NotAttempted {
            key: change.key.clone(),
        }),
    }
}

/// Now, as a unix time in seconds.
pub(super) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl Run<'_, '_> {
    /// A new endpoint is created disabled and unsettled (the sink does not hold its secret
    /// yet), gets its keys and has its secret written; then one update records it settled and
    /// enables it. Interrupted anywhere, the next plan finds it unsettled and disabled.
    async fn create(&mut self, change: &Change) -> Result<(), ApplyError> {
        let mut fields = EndpointFields::of_changes(&change.fields);
        // No name is the create route's default, and it refuses an explicit null (only an
        // update takes null, to clear the name).
        if fields.name == Some(None) {
            fields.name = None;
        }
        let enable = fields.enabled.unwrap_or(true);
        fields.enabled = Some(false);
        let rotation = self.wanted_rotation()?;
        let labels = fields.labels.take().unwrap_or_default();
        fields.labels =
            Some(self.with_state(&labels, SecretState::Unsettled { rotation, until: 0 }));
        let (endpoint, secret) = self.create_or_find(&fields).await?;
        let id = endpoint.id.clone();
        self.endpoint_id = Some(id.clone());
        self.labels = Some(labels);
        for step in &change.keys {
            self.key_step(&id, step).await?;
        }
        if let Some(step) = &change.secret {
            self.secret_step(&id, step, secret).await?;
        }
        self.settle(&id, SecretState::Settled { rotation }, enable)
            .await?;
        if enable {
            self.done.push(Step::Enabled);
        }
        Ok(())
    }

    async fn update(&mut self, change: &Change) -> Result<(), ApplyError> {
        let id = self.id()?;
        for step in &change.keys {
            self.key_step(&id, step).await?;
        }
        if let Some(step) = &change.secret {
            self.secret_step(&id, step, None).await?;
        }
        if !change.fields.is_empty() {
            let mut fields = EndpointFields::of_changes(&change.fields);
            // A state this run recorded replaces the one the plan read.
            if let (Some(labels), Some(state)) = (&fields.labels, self.state) {
                fields.labels = Some(self.with_state(labels, state));
            }
            self.update_recorded(&id, fields).await?;
            let fields = change.fields.iter().map(|f| f.field()).collect();
            self.done.push(Step::Updated { fields });
        }
        if let Some(rotated) = self.rotated.take() {
            self.settle_receiver(&id, rotated).await?;
        }
        Ok(())
    }

    /// Deletes the endpoint, then the secrets it had in the sink: were the delete to fail,
    /// the endpoint would still sign with the secret its receiver reads.
    async fn delete(&mut self, change: &Change) -> Result<(), ApplyError> {
        let id = self.id()?;
        self.api(self.target.client.delete_endpoint(&id).await)?;
        self.done.push(Step::Deleted);
        if let Some(SecretStep::Remove { sink, names }) = &change.secret {
            for name in names {
                if self.remove_from_sink(sink, name).await? {
                    self.done.push(Step::SecretRemoved {
                        sink: sink.clone(),
                        name: name.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Creates the endpoint. When the answer is lost, looks for it by its identity label
    /// before creating again, and adopts what it finds (its secret is then revealed).
    async fn create_or_find(
        &mut self,
        fields: &EndpointFields,
    ) -> Result<(LiveEndpoint, Option<SecretString>), ApplyError> {
        let client = self.target.client;
        let label = self.target.desired.project.identity_label(self.key);
        for attempt in 1..=CREATE_ATTEMPTS {
            match client.create_endpoint(fields).await {
                Ok(created) => {
                    self.done.push(Step::Created {
                        id: created.endpoint.id.clone(),
                    });
                    return Ok((created.endpoint, Some(created.signing_secret)));
                }
                Err(err) if err.is_outcome_unknown() && attempt < CREATE_ATTEMPTS => {
                    tracing::debug!(key = self.key, "create outcome unknown; looking for it");
                    let live = self.api(client.list_endpoints().await)?;
                    let found = live
                        .into_iter()
                        .filter(|e| e.labels.contains(&label))
                        .min_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
                    if let Some(found) = found {
                        self.done.push(Step::Found {
                            id: found.id.clone(),
                        });
                        return Ok((found, None));
                    }
                }
                Err(err) => return Err(self.api_error(err)),
            }
        }
        unreachable!("the last attempt returns")
    }

    async fn key_step(&mut self, endpoint_id: &str, step: &KeyStep) -> Result<(), ApplyError> {
        let client = self.target.client;
        match step {
            KeyStep::Register {
                key_id,
                repair,
                replaces,
                reload,
                ..
            } => {
                if let Some(repair) = repair {
                    self.done.push(Step::KeyRepaired {
                        key_id: key_id.clone(),
                        repair: *repair,
                    });
                }
                self.register_key(endpoint_id, key_id, replaces.as_deref(), *reload)
                    .await
            }
            KeyStep::Reactivate { key_id, id } => {
                self.api(client.reactivate_key(id).await)?;
                self.done.push(Step::KeyReactivated {
                    key_id: key_id.clone(),
                });
                Ok(())
            }
            KeyStep::Deactivate { key_id, id } => {
                self.api(client.deactivate_key(id).await)?;
                self.done.push(Step::KeyDeactivated {
                    key_id: key_id.clone(),
                });
                Ok(())
            }
            KeyStep::Keep { key_id, name } => self.keep_replaced(key_id, name).await,
            KeyStep::RemoveKept { key_id, name } => self.remove_kept(key_id, name).await,
        }
    }

    /// Registers a key from the manifest. A generated key's private half is in the sink before
    /// its public half is registered, so no event is ever encrypted to a key whose private half
    /// was lost; and a key the sink already holds is registered again rather than a new one
    /// generated, so that a registration whose answer was lost, landing late, registers the
    /// same key. A key that `replaces` another gets a new pair unless the sink holds one
    /// already (see [`Run::private_key`]).
    async fn register_key(
        &mut self,
        endpoint_id: &str,
        key_id: &str,
        replaces: Option<&str>,
        reload: bool,
    ) -> Result<(), ApplyError> {
        let wanted = self
            .target
            .desired
            .endpoints
            .get(self.key)
            .and_then(|endpoint| endpoint.encryption_keys.iter().find(|k| k.key_id == key_id))
            .ok_or_else(|| self.inconsistent(format!("key {key_id} is not declared any more")))?;
        let public = match &wanted.material {
            KeyMaterial::Public(jwk) => jwk.clone(),
            KeyMaterial::Generate { private_key_name } => {
                self.private_key(key_id, private_key_name, replaces, reload)
                    .await?
            }
        };
        let client = self.target.client;
        let jwk = public.to_api_jwk(key_id);
        match client.create_key(endpoint_id, key_id, jwk.clone()).await {
            Ok(_) => {}
            Err(err) if err.is_outcome_unknown() => {
                let keys = self.api(client.list_keys(endpoint_id).await)?;
                let landed = keys.iter().any(|k| {
                    k.key_id == key_id
                        && k.is_active
                        && k.jwk.as_ref().is_some_and(|registered| {
                            registered.get("n") == jwk.get("n")
                                && registered.get("e") == jwk.get("e")
                        })
                });
                if !landed {
                    self.api(client.create_key(endpoint_id, key_id, jwk).await)?;
                }
            }
            Err(err) => return Err(self.api_error(err)),
        }
        self.done.push(Step::KeyRegistered {
            key_id: key_id.to_owned(),
        });
        Ok(())
    }

    /// Writes `value` to `sink` as `name`, and records that it did.
    pub(super) async fn put(
        &mut self,
        sink: &str,
        name: &str,
        value: &SecretString,
    ) -> Result<(), ApplyError> {
        self.store(sink)?
            .put(name, value)
            .await
            .map_err(|source| self.sink_error(sink, name, source))?;
        let place = SecretPlace {
            sink: sink.to_owned(),
            name: name.to_owned(),
        };
        // A secret written twice in one run (a rotation settling) is one write to report.
        if !self.written.contains(&place) {
            self.written.push(place);
        }
        Ok(())
    }

    pub(super) fn store(
        &self,
        sink: &str,
    ) -> Result<&std::sync::Arc<dyn crate::model::SecretSink>, ApplyError> {
        self.target
            .sinks
            .get(sink)
            .ok_or_else(|| self.inconsistent(format!("sink {sink} is not declared")))
    }

    pub(super) fn sink_error(&self, sink: &str, name: &str, source: SinkError) -> ApplyError {
        ApplyError::Sink {
            key: self.key.to_owned(),
            sink: sink.to_owned(),
            name: name.to_owned(),
            source: Box::new(source),
        }
    }

    /// The sink of this endpoint's signing secret, where generated private keys go too.
    pub(super) fn secret_sink(&self) -> Result<String, ApplyError> {
        self.target
            .desired
            .endpoints
            .get(self.key)
            .map(|endpoint| endpoint.signing_secret.sink.clone())
            .ok_or_else(|| self.inconsistent("the endpoint is not declared any more".into()))
    }

    fn id(&self) -> Result<String, ApplyError> {
        self.endpoint_id
            .clone()
            .ok_or_else(|| self.inconsistent("the plan names no endpoint id".into()))
    }

    pub(super) fn api<T>(&self, result: Result<T, ApiError>) -> Result<T, ApplyError> {
        result.map_err(|err| self.api_error(err))
    }

    pub(super) fn api_error(&self, source: ApiError) -> ApplyError {
        ApplyError::Api {
            key: self.key.to_owned(),
            source: Box::new(source),
        }
    }

    pub(super) fn inconsistent(&self, message: String) -> ApplyError {
        ApplyError::Inconsistent {
            key: self.key.to_owned(),
            message,
        }
    }
}
