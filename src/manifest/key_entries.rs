//! The `encryption_keys` entries of an endpoint: a public key file or a generated pair each,
//! key ids unique, private key names valid for the endpoint's sink.

use super::code::Code;
use super::endpoint::Context;
use super::keys;
use super::node::{Node, Value};
use super::reader::{Reader, join};
use crate::model::{self, DesiredKey, KeyMaterial, SinkConfig};

const KEY_FIELDS: [&str; 4] = ["key_id", "public_key_file", "generate", "private_key_name"];

/// Reads the list; entries with errors are reported and left out.
pub fn read_keys(
    r: &mut Reader,
    cx: &Context,
    key: &str,
    node: &Node,
    field: &str,
    sink: Option<&model::SinkConfig>,
) -> Vec<DesiredKey> {
    let Some(items) = r.list(node, field) else {
        return Vec::new();
    };
    let generated = items.iter().filter(|item| {
        matches!(&item.value, Value::Map(entries) if entries.iter().any(|(k, v)| k.value == Value::Str("generate".into()) && v.value == Value::Bool(true)))
    }).count();
    let mut out: Vec<DesiredKey> = Vec::new();
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_field = format!("{field}[{i}]");
        let Some(fields) = r.fields(item, &item_field, &KEY_FIELDS) else {
            continue;
        };
        let key_id = match fields.get("key_id") {
            None => {
                r.missing(item, &item_field, "key_id");
                None
            }
            Some(value) => r
                .string(value, &join(&item_field, "key_id"))
                .and_then(|id| {
                    let id_field = join(&item_field, "key_id");
                    if id.trim().is_empty() || id.trim() != id {
                        r.error(
                            Code::InvalidKeyId,
                            value,
                            &id_field,
                            "a key id must be non-empty, without leading or trailing whitespace",
                        );
                        None
                    } else if let Some((_, first)) = seen.iter().find(|(s, _)| *s == id) {
                        let first = *first;
                        r.error(
                            Code::DuplicateKeyId,
                            value,
                            &id_field,
                            format!("`{id}` repeats {field}[{first}].key_id"),
                        );
                        None
                    } else {
                        seen.push((id.clone(), i));
                        Some(id)
                    }
                }),
        };
        let generate = fields
            .get("generate")
            .and_then(|v| r.boolean(v, &join(&item_field, "generate")));
        let material = match (fields.get("public_key_file"), generate) {
            (Some(file), None | Some(false)) => {
                if let Some(v) = fields.get("private_key_name") {
                    r.error(
                        Code::UnexpectedField,
                        v,
                        &join(&item_field, "private_key_name"),
                        "`private_key_name` goes with `generate: true` only",
                    );
                }
                let file_field = join(&item_field, "public_key_file");
                r.string(file, &file_field).and_then(|rel| {
                    match keys::read_public_key(&cx.dir.join(&rel)) {
                        Ok(jwk) => Some(KeyMaterial::Public(jwk)),
                        Err(err) => {
                            let message = format!("{}: {err}", cx.dir.join(&rel).display());
                            r.error(err.code(), file, &file_field, message).hint =
                                err.hint().map(str::to_owned);
                            None
                        }
                    }
                })
            }
            (None, Some(true)) => {
                if let Some(sink @ SinkConfig::Command { .. }) = sink {
                    r.error(
                        Code::GenerateNeedsReadableSink,
                        item,
                        &join(&item_field, "generate"),
                        format!(
                            "`generate: true` needs a sink kayle-sync can read, and the \
                             endpoint's sink is a {} sink",
                            sink.kind()
                        ),
                    )
                    .hint = Some(
                        "kayle-sync reads a generated private key back, so that an apply \
                         repeated after an interruption registers the same key instead of \
                         minting another, and so that a plan can check it; use a dotenv, json, \
                         vault or aws-secrets-manager sink, or a public_key_file"
                            .to_owned(),
                    );
                }
                let name_field = join(&item_field, "private_key_name");
                let name = match fields.get("private_key_name") {
                    Some(v) => r.string(v, &name_field).map(|n| (n, v)),
                    None => key_id
                        .as_ref()
                        .map(|id| (keys::default_private_key_name(key, id, generated > 1), item)),
                };
                name.and_then(
                    |(name, at)| match sink.map(|s| s.check_secret_name(&name)) {
                        Some(Err(rule)) => {
                            r.error(
                                Code::InvalidSecretName,
                                at,
                                &name_field,
                                format!("`{name}` cannot name a secret in the endpoint's sink"),
                            )
                            .hint = Some(rule);
                            None
                        }
                        _ => Some(KeyMaterial::Generate {
                            private_key_name: name,
                        }),
                    },
                )
            }
            (Some(_), Some(true)) => {
                r.error(
                    Code::ConflictingKeySource,
                    item,
                    &item_field,
                    "both `public_key_file` and `generate: true`",
                )
                .hint = Some(
                    "give a public key file, or let kayle-sync generate the pair, not both".into(),
                );
                None
            }
            (None, _) => {
                if generate.is_some() || fields.get("generate").is_none() {
                    r.error(Code::MissingKeySource, item, &item_field, "no key material")
                        .hint = Some(
                        "add `public_key_file: keys/<name>.pub.pem` or `generate: true`".into(),
                    );
                }
                None
            }
        };
        if let (Some(key_id), Some(material)) = (key_id, material) {
            out.push(DesiredKey { key_id, material });
        }
    }
    out
}
