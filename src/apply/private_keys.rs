//! The private halves of generated keys in their sinks: generated and written before the
//! public half is registered, kept under their own name when a new key replaces them, and
//! removed once no delivery encrypted to them can be sent.
//!
//! The order of writes is what keeps every delivery decryptable, whatever is interrupted: a
//! replaced key's half is written under its kept name before the new key takes the current
//! name, and the new key is registered (so Kayle encrypts to it) only after that.

use secrecy::{ExposeSecret, SecretString};

use super::endpoint::{ApplyError, Run};
use super::keys::{GENERATED_KEY_BITS, GeneratedKey, generate, public_half};
use super::step::Step;
use super::{Event, SecretPlace};
use crate::model::{KeyMaterial, RsaPublicJwk, kept_key_name};

impl Run<'_, '_> {
    /// The public half of a generated key: of the private key the sink holds under
    /// `private_key_name`, or of a new pair whose private half is written there first (unless
    /// another apply wrote one meanwhile, which is then used).
    ///
    /// When the key `replaces` another, the sink's key is the replaced one's while it is also
    /// kept under its kept name: then a new pair takes the name. A key there that the kept
    /// name does not hold is a new key an interrupted run wrote, and is used.
    ///
    /// With `reload`, the sink's reload runs once the private half is there, before the key is
    /// registered and deliveries are encrypted to it.
    pub(super) async fn private_key(
        &mut self,
        key_id: &str,
        private_key_name: &str,
        replaces: Option<&str>,
        reload: bool,
    ) -> Result<RsaPublicJwk, ApplyError> {
        let sink = self.secret_sink()?;
        let held = self.read_one(&sink, private_key_name).await?;
        let pem = match (held, replaces) {
            (Some(held), Some(replaced)) => {
                let kept_name = kept_key_name(private_key_name, replaced);
                match self.read_one(&sink, &kept_name).await? {
                    Some(kept) if kept.expose_secret() == held.expose_secret() => {
                        let generated = self.generate_pair(key_id).await?;
                        self.put(&sink, private_key_name, &generated.private_pem)
                            .await?;
                        self.done.push(Step::KeyGenerated {
                            key_id: key_id.to_owned(),
                            sink: sink.clone(),
                            name: private_key_name.to_owned(),
                            replaced: Some(replaced.to_owned()),
                        });
                        generated.private_pem
                    }
                    Some(_) => self.use_held(key_id, &sink, private_key_name, held)?,
                    None => {
                        return Err(self.inconsistent(format!(
                            "key {replaced}'s private key is not kept in sink {sink} as \
                             {kept_name}, so it is not replaced; plan again"
                        )));
                    }
                }
            }
            (Some(held), None) => self.use_held(key_id, &sink, private_key_name, held)?,
            (None, _) => self.generate_into(key_id, &sink, private_key_name).await?,
        };
        let public = public_half(&pem)
            .ok_or_else(|| self.unusable_private_key(key_id, &sink, private_key_name))?;
        if reload {
            // Should it fail, the key stays unregistered: the next apply finds the private
            // half in the sink and runs the reload again before registering it.
            self.reload_written(&sink, &pem).await?;
        }
        Ok(public)
    }

    /// Keeps the private half the sink holds under the active key's name under `name` too,
    /// before a new key replaces it: it is the half of `key_id`, which deliveries may still be
    /// encrypted to. A kept name already holding that half is fine; one holding another value,
    /// or one the sink cannot take, stops the replacement, and nothing is overwritten.
    pub(super) async fn keep_replaced(
        &mut self,
        key_id: &str,
        name: &str,
    ) -> Result<(), ApplyError> {
        let sink = self.secret_sink()?;
        if let Some(Err(rule)) = self
            .target
            .desired
            .project
            .sinks
            .get(&sink)
            .map(|config| config.check_secret_name(name))
        {
            return Err(self.inconsistent(format!(
                "key {key_id}'s private key cannot be kept in sink {sink} as {name} ({rule}), \
                 so it is not replaced; give the keys shorter key_ids or a shorter \
                 private_key_name"
            )));
        }
        let current = self.active_private_key_name()?;
        let Some(held) = self.read_one(&sink, &current).await? else {
            return Err(self.inconsistent(format!(
                "sink {sink} no longer holds key {key_id}'s private key as {current}; plan again"
            )));
        };
        let store = self.store(&sink)?.clone();
        let raced = store
            .put_if_absent(name, &held)
            .await
            .map_err(|source| self.sink_error(&sink, name, source))?;
        match raced {
            None => {
                self.written.push(SecretPlace {
                    sink: sink.clone(),
                    name: name.to_owned(),
                });
                self.done.push(Step::KeyKept {
                    key_id: key_id.to_owned(),
                    sink: sink.clone(),
                    name: name.to_owned(),
                    already: false,
                });
                Ok(())
            }
            Some(kept) if kept.expose_secret() == held.expose_secret() => {
                self.done.push(Step::KeyKept {
                    key_id: key_id.to_owned(),
                    sink: sink.clone(),
                    name: name.to_owned(),
                    already: true,
                });
                Ok(())
            }
            Some(_) => Err(self.inconsistent(format!(
                "sink {sink} holds another value as {name}, so key {key_id}'s private key \
                 cannot be kept there and the key is not replaced; move that value away and \
                 apply again"
            ))),
        }
    }

    /// Removes a replaced key's private half, kept under `name`: no delivery encrypted to it
    /// can be sent any more.
    pub(super) async fn remove_kept(&mut self, key_id: &str, name: &str) -> Result<(), ApplyError> {
        let sink = self.secret_sink()?;
        if self.remove_from_sink(&sink, name).await? {
            self.done.push(Step::KeptKeyRemoved {
                key_id: key_id.to_owned(),
                sink: sink.clone(),
                name: name.to_owned(),
            });
        }
        Ok(())
    }

    /// Removes `name` from `sink`; whether it held a value, recorded when it did.
    pub(super) async fn remove_from_sink(
        &mut self,
        sink: &str,
        name: &str,
    ) -> Result<bool, ApplyError> {
        let removed =
            self.store(sink)?
                .remove(name)
                .await
                .map_err(|source| ApplyError::SinkRemove {
                    key: self.key.to_owned(),
                    sink: sink.to_owned(),
                    name: name.to_owned(),
                    source: Box::new(source),
                })?;
        if removed {
            self.removed.push(SecretPlace {
                sink: sink.to_owned(),
                name: name.to_owned(),
            });
        }
        Ok(removed)
    }

    /// The private key name of the endpoint's active key, which is generated.
    fn active_private_key_name(&self) -> Result<String, ApplyError> {
        let active = self
            .target
            .desired
            .endpoints
            .get(self.key)
            .and_then(|endpoint| endpoint.active_key());
        match active.map(|key| &key.material) {
            Some(KeyMaterial::Generate { private_key_name }) => Ok(private_key_name.clone()),
            _ => Err(self.inconsistent("the active key is not generated any more".into())),
        }
    }

    /// What the sink holds under `name`; `None` for nothing (or a write-only sink).
    async fn read_one(&self, sink: &str, name: &str) -> Result<Option<SecretString>, ApplyError> {
        Ok(self
            .store(sink)?
            .read_all(&[name.to_owned()])
            .await
            .map_err(|source| self.sink_error(sink, name, source))?
            .and_then(|values| values.into_iter().next().flatten()))
    }

    /// The private key the sink holds, once it is known to be one: a step saying it is used
    /// is never followed by its refusal.
    fn use_held(
        &mut self,
        key_id: &str,
        sink: &str,
        private_key_name: &str,
        held: SecretString,
    ) -> Result<SecretString, ApplyError> {
        if public_half(&held).is_none() {
            return Err(self.unusable_private_key(key_id, sink, private_key_name));
        }
        self.done.push(Step::KeyFromSink {
            key_id: key_id.to_owned(),
            sink: sink.to_owned(),
            name: private_key_name.to_owned(),
        });
        Ok(held)
    }

    fn unusable_private_key(&self, key_id: &str, sink: &str, name: &str) -> ApplyError {
        ApplyError::UnusablePrivateKey {
            key: self.key.to_owned(),
            key_id: key_id.to_owned(),
            sink: sink.to_owned(),
            name: name.to_owned(),
        }
    }

    /// A new pair whose private half is written under `private_key_name` unless another run
    /// wrote one there meanwhile: then that one.
    async fn generate_into(
        &mut self,
        key_id: &str,
        sink: &str,
        private_key_name: &str,
    ) -> Result<SecretString, ApplyError> {
        let generated = self.generate_pair(key_id).await?;
        let raced = self
            .store(sink)?
            .put_if_absent(private_key_name, &generated.private_pem)
            .await
            .map_err(|source| self.sink_error(sink, private_key_name, source))?;
        Ok(match raced {
            Some(theirs) => {
                self.done.push(Step::KeyFromOtherRun {
                    key_id: key_id.to_owned(),
                    sink: sink.to_owned(),
                });
                theirs
            }
            None => {
                self.done.push(Step::KeyGenerated {
                    key_id: key_id.to_owned(),
                    sink: sink.to_owned(),
                    name: private_key_name.to_owned(),
                    replaced: None,
                });
                self.written.push(SecretPlace {
                    sink: sink.to_owned(),
                    name: private_key_name.to_owned(),
                });
                generated.private_pem
            }
        })
    }

    /// Generates a pair off the async threads, announcing it first: it takes seconds.
    async fn generate_pair(&mut self, key_id: &str) -> Result<GeneratedKey, ApplyError> {
        // Nobody is waiting on the announcement: a closed channel is no failure.
        let _ = self.notices.send(Event::GeneratingKey {
            key: self.key.to_owned(),
            key_id: key_id.to_owned(),
        });
        tokio::task::spawn_blocking(|| generate(GENERATED_KEY_BITS))
            .await
            .map_err(|err| self.inconsistent(format!("generating key {key_id}: {err}")))?
            .map_err(|err| self.inconsistent(format!("generating key {key_id}: {err}")))
    }
}
