//! The project file, `kayle-sync.yaml`: API, label prefix, sinks and defaults.

use super::code::Code;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::credentials;
use super::node::{Node, Value};
use super::reader::{Fields, Reader, did_you_mean, join, list, utf16_len};
use crate::http;
use crate::model::{self, ApiConfig, ApiUrl, Project, ReloadCommand, SinkConfig};

/// The API URL used when the project file names none.
pub const DEFAULT_API_URL: &str = "https://api.kayle.id";
/// The variable holding the bearer token when the project file names none.
pub const DEFAULT_TOKEN_ENV: &str = "KAYLE_API_KEY";

const TOP: [&str; 4] = ["api", "label_prefix", "sinks", "defaults"];
const SINK_KINDS: [&str; 5] = ["dotenv", "json", "command", "aws-secrets-manager", "vault"];

/// Reads the project file's one document; `None` when it has errors (already recorded).
pub fn read(r: &mut Reader, doc: &Node, dir: &Path) -> Option<Project> {
    let before = r.problems.len();
    r.refuse_aliases(doc, "");
    let fields = r.fields(doc, "", &TOP)?;
    let api = match fields.get("api") {
        Some(node) => read_api(r, node),
        None => Some(ApiConfig {
            url: ApiUrl::Remote(DEFAULT_API_URL.to_owned()),
            token_env: DEFAULT_TOKEN_ENV.to_owned(),
        }),
    };
    let label_prefix = match fields.get("label_prefix") {
        Some(node) => read_prefix(r, node),
        None => Some(model::DEFAULT_LABEL_PREFIX.to_owned()),
    };
    let mut sinks = BTreeMap::new();
    let mut reloads = BTreeMap::new();
    let mut broken_sinks = Vec::new();
    if let Some(node) = fields.get("sinks") {
        for (name, key_node, value) in r.entries(node, "sinks").unwrap_or_default() {
            broken_sinks.push(name.to_owned());
            let field = join("sinks", name);
            if !is_sink_name(name) {
                r.error(
                    Code::InvalidSinkName,
                    key_node,
                    &field,
                    "a sink name is letters, digits, `-` and `_`, starting with a letter or digit",
                );
            }
            let api_token_env = api.as_ref().map(|api| api.token_env.as_str());
            if let Some((sink, reload)) = read_sink(r, value, &field, api_token_env) {
                broken_sinks.pop();
                sinks.insert(name.to_owned(), sink);
                if let Some(reload) = reload {
                    reloads.insert(name.to_owned(), reload);
                }
            }
        }
    }
    let default_sink = fields
        .get("defaults")
        .and_then(|node| read_defaults(r, node, &sinks, &broken_sinks));
    if r.problems.len() > before {
        return None;
    }
    Some(Project {
        dir: dir.to_path_buf(),
        api: api?,
        label_prefix: label_prefix?,
        sinks,
        reloads,
        default_sink,
    })
}

fn read_api(r: &mut Reader, node: &Node) -> Option<ApiConfig> {
    let fields = r.fields(node, "api", &["url", "token_env"])?;
    let url = match fields.get("url") {
        None => Some(ApiUrl::Remote(DEFAULT_API_URL.to_owned())),
        Some(node) => {
            let text = r.string(node, "api.url")?;
            if text == "sandbox" {
                Some(ApiUrl::Sandbox)
            } else if http_url(&text) {
                credentials::credential_url(r, node, "api.url", Code::InvalidApiUrl, text)
                    .map(ApiUrl::Remote)
            } else {
                r.error(
                    Code::InvalidApiUrl,
                    node,
                    "api.url",
                    "expected an http(s) URL or `sandbox`",
                )
                .hint = Some(format!(
                    "for example `{DEFAULT_API_URL}`, or `sandbox` for the embedded emulator"
                ));
                None
            }
        }
    };
    let token_env = match fields.get("token_env") {
        None => Some(DEFAULT_TOKEN_ENV.to_owned()),
        Some(node) => env_name(r, node, "api.token_env")
            .and_then(|name| credentials::api_token_env(r, node, name)),
    };
    Some(ApiConfig {
        url: url?,
        token_env: token_env?,
    })
}

fn http_url(text: &str) -> bool {
    url::Url::parse(text)
        .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .unwrap_or(false)
}

fn env_name(r: &mut Reader, node: &Node, field: &str) -> Option<String> {
    let name = r.string(node, field)?;
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Some(name)
    } else {
        r.error(
            Code::InvalidEnvName,
            node,
            field,
            "an environment variable name is letters, digits and `_`, not starting with a digit",
        )
        .hint = Some("name the variable, not its value: a token never goes in a file".into());
        None
    }
}

fn read_prefix(r: &mut Reader, node: &Node) -> Option<String> {
    let prefix = r.string(node, "label_prefix")?;
    let problem = if prefix.is_empty() {
        Some("the label prefix must not be empty")
    } else if prefix.trim() != prefix {
        Some("the label prefix must not start or end with whitespace (the server trims labels)")
    } else if utf16_len(&model::longest_state_label(&prefix, 0)) > model::MAX_LABEL_UNITS {
        Some(
            "the label prefix leaves no room in a 40-character label for kayle-sync's \
             secret-state label (`<prefix>verify=N@<unix time>`); use at most 21 characters",
        )
    } else {
        None
    };
    match problem {
        Some(message) => {
            r.error(Code::InvalidLabelPrefix, node, "label_prefix", message);
            None
        }
        None => Some(prefix),
    }
}

fn is_sink_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Reads one sink and its `reload`; `api_token_env` is the API token's variable, which no sink
/// may read.
fn read_sink(
    r: &mut Reader,
    node: &Node,
    field: &str,
    api_token_env: Option<&str>,
) -> Option<(SinkConfig, Option<ReloadCommand>)> {
    let Value::Map(entries) = &node.value else {
        // Reports the wrong type.
        r.entries(node, field);
        return None;
    };
    let type_node = entries
        .iter()
        .find(|(k, _)| k.value == Value::Str("type".into()))
        .map(|(_, v)| v);
    let Some(type_node) = type_node else {
        r.missing(node, field, "type").hint = Some(format!("one of {}", list(&SINK_KINDS)));
        return None;
    };
    let type_field = join(field, "type");
    let kind = r.string(type_node, &type_field)?;
    let known: &[&str] = match kind.as_str() {
        "dotenv" | "json" => &["type", "path", "reload"],
        "command" => &["type", "command", "timeout_seconds", "reload"],
        "aws-secrets-manager" => &["type", "region", "endpoint_url", "prefix", "reload"],
        "vault" => &["type", "address", "mount", "path", "token_env", "reload"],
        _ => {
            let hint = match did_you_mean(&kind, &SINK_KINDS) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("one of {}", list(&SINK_KINDS)),
            };
            r.error(
                Code::UnknownSinkType,
                type_node,
                &type_field,
                format!("unknown sink type `{kind}`"),
            )
            .hint = Some(hint);
            return None;
        }
    };
    let fields = r.fields(node, field, known)?;
    let reload = fields
        .get("reload")
        .map(|value| read_reload(r, value, &join(field, "reload")));
    let config = read_sink_config(r, node, field, &kind, &fields, api_token_env);
    Some((config?, reload.flatten()))
}

/// The settings of one sink of kind `kind`, whose fields are `fields`.
fn read_sink_config(
    r: &mut Reader,
    node: &Node,
    field: &str,
    kind: &str,
    fields: &Fields<'_>,
    api_token_env: Option<&str>,
) -> Option<SinkConfig> {
    let text = |r: &mut Reader, name: &str, default: Option<&str>| -> Option<String> {
        match (fields.get(name), default) {
            (Some(value), _) => {
                let s = r.string(value, &join(field, name))?;
                if s.is_empty() {
                    r.error(
                        Code::InvalidValue,
                        value,
                        &join(field, name),
                        "must not be empty",
                    );
                    return None;
                }
                Some(s)
            }
            (None, Some(default)) => Some(default.to_owned()),
            (None, None) => {
                r.missing(node, field, name);
                None
            }
        }
    };
    match kind {
        "dotenv" => Some(SinkConfig::Dotenv {
            path: PathBuf::from(text(r, "path", None)?),
        }),
        "json" => Some(SinkConfig::Json {
            path: PathBuf::from(text(r, "path", None)?),
        }),
        "command" => Some(SinkConfig::Command {
            command: argv(
                r,
                node,
                field,
                fields,
                "an argv list, e.g. [\"gh\", \"secret\", \"set\", \"{name}\"]",
            )?,
            timeout_seconds: timeout_seconds(r, field, fields)?,
        }),
        "aws-secrets-manager" => {
            let region = fields
                .get("region")
                .and_then(|v| r.string(v, &join(field, "region")));
            let endpoint_url = match fields.get("endpoint_url") {
                Some(v) => Some(url_field(
                    r,
                    v,
                    &join(field, "endpoint_url"),
                    http::check_aws_endpoint_url,
                )?),
                None => None,
            };
            let prefix = match fields.get("prefix") {
                Some(v) => r.string(v, &join(field, "prefix"))?,
                None => String::new(),
            };
            Some(SinkConfig::AwsSecretsManager {
                region,
                endpoint_url,
                prefix,
            })
        }
        "vault" => {
            let address = match fields.get("address") {
                Some(v) => url_field(r, v, &join(field, "address"), http::check_credential_url),
                None => {
                    r.missing(node, field, "address");
                    None
                }
            };
            let mount = text(r, "mount", Some("secret"));
            let path = text(r, "path", Some("kayle-sync/{name}"));
            let token_env = match fields.get("token_env") {
                Some(v) => {
                    let field = join(field, "token_env");
                    env_name(r, v, &field).and_then(|name| {
                        credentials::vault_token_env(r, v, &field, name, api_token_env)
                    })
                }
                None => Some("VAULT_TOKEN".to_owned()),
            };
            Some(SinkConfig::Vault {
                address: address?,
                mount: mount?,
                path: path?,
                token_env: token_env?,
            })
        }
        _ => None,
    }
}

/// A sink's `reload`: `{command: [argv…], timeout_seconds: N}`, declared as the `command`
/// sink declares its command.
fn read_reload(r: &mut Reader, node: &Node, field: &str) -> Option<ReloadCommand> {
    let fields = r.fields(node, field, &["command", "timeout_seconds"])?;
    let command = argv(
        r,
        node,
        field,
        &fields,
        "an argv list, e.g. [\"kubectl\", \"rollout\", \"restart\", \"deployment/identity\"]",
    );
    let timeout_seconds = timeout_seconds(r, field, &fields);
    Some(ReloadCommand {
        command: command?,
        timeout_seconds: timeout_seconds?,
    })
}

/// The non-empty argv list under `command`; `example` is the hint when it is missing.
fn argv(
    r: &mut Reader,
    node: &Node,
    field: &str,
    fields: &Fields<'_>,
    example: &str,
) -> Option<Vec<String>> {
    let Some(value) = fields.get("command") else {
        r.missing(node, field, "command").hint = Some(example.to_owned());
        return None;
    };
    let items = r.strings(value, &join(field, "command"))?;
    if items.is_empty() {
        r.error(
            Code::InvalidValue,
            value,
            &join(field, "command"),
            "the command must not be empty",
        );
        return None;
    }
    Some(items.into_iter().map(|(s, _)| s).collect())
}

/// `timeout_seconds`, at least 1; [`model::DEFAULT_COMMAND_TIMEOUT_SECONDS`] when absent.
fn timeout_seconds(r: &mut Reader, field: &str, fields: &Fields<'_>) -> Option<u64> {
    let Some(value) = fields.get("timeout_seconds") else {
        return Some(model::DEFAULT_COMMAND_TIMEOUT_SECONDS);
    };
    let n = r.unsigned(value, &join(field, "timeout_seconds"))?;
    if n == 0 {
        r.error(
            Code::InvalidValue,
            value,
            &join(field, "timeout_seconds"),
            "the timeout must be at least 1 second",
        );
        return None;
    }
    Some(n)
}

/// A sink's URL, which receives the sink's credential: `check` says where that may go.
fn url_field(
    r: &mut Reader,
    node: &Node,
    field: &str,
    check: fn(&str) -> Result<url::Url, http::UrlError>,
) -> Option<String> {
    let text = r.string(node, field)?;
    credentials::url(r, node, field, Code::InvalidUrl, text, check)
}

fn read_defaults(
    r: &mut Reader,
    node: &Node,
    sinks: &BTreeMap<String, SinkConfig>,
    broken: &[String],
) -> Option<String> {
    let fields = r.fields(node, "defaults", &["signing_secret"])?;
    let secret = fields.get("signing_secret")?;
    let fields = r.fields(secret, "defaults.signing_secret", &["sink"])?;
    let sink_node = fields.get("sink")?;
    let field = "defaults.signing_secret.sink";
    let name = r.string(sink_node, field)?;
    if broken.contains(&name) {
        // The sink itself was reported; a second message about it would be noise.
        return None;
    }
    if !sinks.contains_key(&name) {
        unknown_sink(r, sink_node, field, &name, sinks);
        return None;
    }
    Some(name)
}

/// Reports a reference to a sink the project file does not declare.
pub fn unknown_sink(
    r: &mut Reader,
    node: &Node,
    field: &str,
    name: &str,
    sinks: &BTreeMap<String, SinkConfig>,
) {
    let names: Vec<&str> = sinks.keys().map(String::as_str).collect();
    let hint = match did_you_mean(name, &names) {
        Some(close) => format!("did you mean `{close}`?"),
        None if names.is_empty() => "declare it under `sinks:` in kayle-sync.yaml".to_owned(),
        None => format!("kayle-sync.yaml declares {}", list(&names)),
    };
    r.error(
        Code::UnknownSink,
        node,
        field,
        format!("no sink named `{name}`"),
    )
    .hint = Some(hint);
}

/// Whether a document is empty (a file with nothing but comments, say).
pub fn is_empty(doc: &Node) -> bool {
    matches!(doc.value, Value::Null)
}
